//! AF_UNIX sockets, entirely inside the sentry: SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET,
//! socketpair, path and abstract names (`addr`), SCM_RIGHTS and SCM_CREDENTIALS, with
//! Linux's semantics (net/unix/af_unix.c) for errors, buffering, shutdown and readiness.
//! Connections and the byte stream are in `stream`, datagrams and records in `dgram`,
//! queued messages in `queue`, files in flight in `gc`, socket options in `opts`.
//!
//! A socket's state is one mutex. A message queued at a receiver holds the sender (its name
//! is the source address, its send buffer pays for the message until it is read, as an
//! skb's truesize does on Linux) and the files it carries (`gc`). A stream connect makes
//! the server's end at once and queues it on the listener (Linux's embryo), so a client may
//! write before accept.
//!
//! Locks: a socket's `st` alone, or two in address order (`lock_two`); the name registry,
//! the in-flight table and wait queues are taken after it. Nothing that may drop a message,
//! file or socket runs under a socket lock: removed messages go to `gc::dispose` after.

mod addr;
mod dgram;
mod gc;
mod opts;
mod queue;
mod stream;

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use self::gc::Rights;
use self::queue::Msg;
use super::*;
use crate::abi::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::Task;

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;
/// Linux's net.core.{w,r}mem_default and {w,r}mem_max (the stock values).
const BUF_DEFAULT: usize = 212_992;
const BUF_MAX: usize = 212_992;
const SOCK_MIN_SNDBUF: usize = 4608;
const SOCK_MIN_RCVBUF: usize = 2304;
/// net.unix.max_dgram_qlen: datagrams queued from senders the receiver is not connected to.
const MAX_DGRAM_QLEN: usize = 10;
/// net.core.somaxconn.
const SOMAXCONN: usize = 4096;
/// Socket types are below this (`SOCK_MAX`).
const SOCK_MAX: i32 = 11;
const SO_PRIORITY: i32 = 12;
const POLLRDBAND: u32 = 0x80;
const POLLWRBAND: u32 = 0x200;
const READABLE: u32 = POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND;
const WRITABLE: u32 = POLLOUT | POLLWRNORM | POLLWRBAND;

/// Connection state (Linux's sk_state: TCP_CLOSE, TCP_LISTEN, TCP_ESTABLISHED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Closed,
    Listening,
    Connected,
}

struct State {
    conn: Conn,
    /// The connected peer (a datagram socket's default destination).
    peer: Option<Arc<UnixSocket>>,
    /// Listening: connections not yet accepted; a datagram socket: the queue limit.
    backlog: usize,
    pending: VecDeque<Arc<UnixSocket>>,
    recv: VecDeque<Msg>,
    /// Unread bytes in `recv`.
    recv_bytes: usize,
    shutdown: u8,
    /// Pending error (SO_ERROR): ECONNRESET when a peer closed with unread data.
    err: Option<Errno>,
    /// Closed (the last fd went away).
    dead: bool,
    /// A connection no one accepted yet (Linux: an skb's `sk` without `sk_socket`).
    orphan: bool,
    passcred: bool,
    peercred: Option<Ucred>,
    rcvbuf: usize,
    /// Where the registry has this socket's name.
    key: Option<addr::Key>,
    misc: opts::Misc,
    /// Datagram sockets that found this one's queue full, to wake when it drains.
    wakers: Vec<Weak<UnixSocket>>,
}

/// One AF_UNIX socket.
pub struct UnixSocket {
    kind: i32,
    me: Weak<UnixSocket>,
    st: Mutex<State>,
    /// Readiness changes of this socket: readers, writers, pollers.
    queue: WaitQueue,
    /// Connectors waiting for backlog room, datagram senders for queue room.
    peer_wait: WaitQueue,
    /// Send buffer in use: the charge of our messages not yet read.
    wmem: AtomicUsize,
    sndbuf: AtomicUsize,
    /// The bound name as getsockname reports it; set once.
    name: OnceLock<Vec<u8>>,
    cookie: u64,
}

static COOKIES: AtomicU64 = AtomicU64::new(1);

/// Locks `a` and `b` in address order; `None` for `b` when they are the same socket.
fn lock_two<'a>(
    a: &'a UnixSocket,
    b: &'a UnixSocket,
) -> (MutexGuard<'a, State>, Option<MutexGuard<'a, State>>) {
    if std::ptr::eq(a, b) {
        return (a.lock(), None);
    }
    if (a as *const UnixSocket) < (b as *const UnixSocket) {
        let ga = a.lock();
        (ga, Some(b.lock()))
    } else {
        let gb = b.lock();
        (a.lock(), Some(gb))
    }
}

fn is(a: &Option<Arc<UnixSocket>>, b: &UnixSocket) -> bool {
    a.as_ref().is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), b))
}

/// Checks the type and protocol of socket(AF_UNIX) and socketpair(AF_UNIX); SOCK_RAW is
/// a datagram socket, as on Linux.
fn check_kind(kind: i32, protocol: i32) -> Result<i32, Errno> {
    if !(0..SOCK_MAX).contains(&kind) {
        return Err(Errno::EINVAL);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    match kind {
        SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET => Ok(kind),
        SOCK_RAW => Ok(SOCK_DGRAM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

/// socket(AF_UNIX, kind, protocol).
pub fn create(_t: &Task, kind: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    let kind = check_kind(kind, protocol)?;
    Ok(UnixSocket::new(kind))
}

/// socketpair(AF_UNIX, kind, protocol): two sockets connected to each other, each with the
/// caller's credentials as SO_PEERCRED.
pub fn pair(t: &Task, kind: i32, protocol: i32) -> Result<super::SocketPair, Errno> {
    let kind = check_kind(kind, protocol)?;
    let (a, b) = (UnixSocket::new(kind), UnixSocket::new(kind));
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut st = x.lock();
        st.conn = Conn::Connected;
        st.peer = Some(y.clone());
        st.peercred = Some(Ucred::effective(t));
    }
    Ok((a as Arc<dyn Socket>, b as Arc<dyn Socket>))
}

impl UnixSocket {
    fn new(kind: i32) -> Arc<UnixSocket> {
        Arc::new_cyclic(|me| UnixSocket {
            kind,
            me: me.clone(),
            st: Mutex::new(State {
                conn: Conn::Closed,
                peer: None,
                backlog: MAX_DGRAM_QLEN,
                pending: VecDeque::new(),
                recv: VecDeque::new(),
                recv_bytes: 0,
                shutdown: 0,
                err: None,
                dead: false,
                orphan: false,
                passcred: false,
                peercred: None,
                rcvbuf: BUF_DEFAULT,
                key: None,
                misc: opts::Misc::default(),
                wakers: Vec::new(),
            }),
            queue: WaitQueue::default(),
            peer_wait: WaitQueue::default(),
            wmem: AtomicUsize::new(0),
            sndbuf: AtomicUsize::new(BUF_DEFAULT),
            name: OnceLock::new(),
            cookie: COOKIES.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arc(&self) -> Arc<UnixSocket> {
        self.me
            .upgrade()
            .expect("a socket being operated on is referenced")
    }

    fn connection_oriented(&self) -> bool {
        self.kind != SOCK_DGRAM
    }

    fn name_bytes(&self) -> Vec<u8> {
        self.name.get().cloned().unwrap_or_else(addr::unnamed)
    }

    /// Linux's `unix_writable`: at most a quarter of the send buffer in use.
    fn writable(&self) -> bool {
        self.wmem.load(Ordering::SeqCst) * 4 <= self.sndbuf.load(Ordering::SeqCst)
    }

    /// Room to queue another message (`sock_alloc_send_pskb`).
    fn has_room(&self) -> bool {
        self.wmem.load(Ordering::SeqCst) < self.sndbuf.load(Ordering::SeqCst)
    }

    /// A message of ours was read or dropped.
    fn uncharge(&self, n: usize) {
        let _ = self
            .wmem
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                Some(w.saturating_sub(n))
            });
        if self.writable() {
            self.queue.notify(WRITABLE);
        }
    }

    /// A message from us of `data`, charged to our send buffer.
    fn message(&self, data: Vec<u8>, rights: Vec<Arc<File>>, creds: Option<Ucred>) -> Msg {
        let charge = queue::truesize(data.len(), self.kind == SOCK_STREAM);
        self.wmem.fetch_add(charge, Ordering::SeqCst);
        Msg {
            data,
            off: 0,
            rights: Rights::new(rights),
            creds,
            from: Some(self.arc()),
            charge,
        }
    }

    /// Credentials to attach to a message without explicit ones: when either end has
    /// SO_PASSCRED or the receiver is not accepted yet (Linux's `unix_maybe_add_creds`).
    fn attach_creds(m: &mut Msg, sender_passcred: bool, receiver: &State, cred: Ucred) {
        if m.creds.is_none() && (sender_passcred || receiver.passcred || receiver.orphan) {
            m.creds = Some(cred);
        }
    }

    /// Wakes datagram senders waiting for room in our queue.
    fn wake_senders(&self) {
        self.peer_wait.notify(WRITABLE);
        let wakers = std::mem::take(&mut self.lock().wakers);
        for w in wakers.iter().filter_map(Weak::upgrade) {
            w.queue.notify(WRITABLE);
        }
    }

    /// Closes the socket (`unix_release_sock`): unbinds, hangs up on a connected peer (with
    /// ECONNRESET if we leave unread data or were never accepted), closes the connections
    /// never accepted, drops what is queued.
    fn close(&self, embryo: bool) {
        let (key, peer, recv, pending) = {
            let mut st = self.lock();
            st.dead = true;
            st.shutdown = SHUTDOWN_MASK;
            st.conn = Conn::Closed;
            st.recv_bytes = 0;
            st.wakers.clear();
            (
                st.key.take(),
                st.peer.take(),
                std::mem::take(&mut st.recv),
                std::mem::take(&mut st.pending),
            )
        };
        if let Some(k) = &key {
            addr::unregister(k, self);
        }
        self.peer_wait.wake_all();
        self.queue.wake_all();
        if let Some(p) = &peer {
            if self.connection_oriented() {
                {
                    let mut ps = p.lock();
                    ps.shutdown = SHUTDOWN_MASK;
                    if !recv.is_empty() || embryo {
                        ps.err = Some(Errno::ECONNRESET);
                    }
                }
                p.queue.wake_all();
            }
        }
        for e in pending {
            e.close(true);
        }
        gc::dispose(recv);
        drop(peer);
        gc::collect();
    }

    /// For the collector: the rights in our queue and in those of connections not accepted.
    fn queued_rights(&self, f: &mut dyn FnMut(&Rights)) {
        let pending: Vec<Arc<UnixSocket>> = {
            let st = self.lock();
            st.recv.iter().for_each(|m| f(&m.rights));
            st.pending.iter().cloned().collect()
        };
        for e in &pending {
            e.lock().recv.iter().for_each(|m| f(&m.rights));
        }
    }

    /// For the collector: empties our queue and those of connections not accepted.
    fn purge(&self, doomed: &mut Vec<Msg>) {
        let pending: Vec<Arc<UnixSocket>> = {
            let mut st = self.lock();
            st.recv_bytes = 0;
            doomed.extend(st.recv.drain(..));
            st.pending.iter().cloned().collect()
        };
        for e in &pending {
            let mut es = e.lock();
            es.recv_bytes = 0;
            doomed.extend(es.recv.drain(..));
        }
    }
}

impl Socket for UnixSocket {
    fn family(&self) -> i32 {
        AF_UNIX
    }
    fn kind(&self) -> i32 {
        self.kind
    }

    fn bind(&self, t: &Task, addr: &[u8]) -> Result<(), Errno> {
        addr::bind(self, t, addr)
    }

    fn listen(&self, t: &Task, backlog: i32) -> Result<(), Errno> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.name.get().is_none() {
            return Err(Errno::EINVAL);
        }
        // Linux compares as unsigned: a negative backlog is somaxconn.
        let backlog = usize::try_from(backlog).unwrap_or(SOMAXCONN).min(SOMAXCONN);
        let grew = {
            let mut st = self.lock();
            if st.conn == Conn::Connected {
                return Err(Errno::EINVAL);
            }
            let grew = backlog > st.backlog;
            st.backlog = backlog;
            st.conn = Conn::Listening;
            st.peercred = Some(Ucred::effective(t));
            grew
        };
        if grew {
            self.peer_wait.wake_all();
        }
        Ok(())
    }

    fn accept(&self, c: &Ctx<'_>) -> Result<(Arc<dyn Socket>, Vec<u8>), Errno> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.lock().conn != Conn::Listening {
            return Err(Errno::EINVAL);
        }
        let e = c.block(&self.queue, || {
            let mut st = self.lock();
            if let Some(e) = st.pending.pop_front() {
                return Ok(Some(e));
            }
            if st.shutdown & RCV_SHUTDOWN != 0 || st.conn != Conn::Listening {
                return Err(Errno::EINVAL);
            }
            Ok(None)
        })?;
        self.peer_wait.notify(WRITABLE);
        let peer = {
            let mut es = e.lock();
            es.orphan = false;
            es.peer.clone()
        };
        let name = peer.map_or_else(addr::unnamed, |p| p.name_bytes());
        Ok((e as Arc<dyn Socket>, name))
    }

    fn connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno> {
        if self.kind == SOCK_DGRAM {
            self.dgram_connect(c, addr)
        } else {
            self.stream_connect(c, addr)
        }
    }

    fn send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno> {
        let rights = msg.rights.iter().any(|f| gc::unix_of(f).is_some());
        let r = if self.kind == SOCK_STREAM {
            self.stream_send(c, msg)
        } else {
            self.dgram_send(c, msg)
        };
        if rights {
            gc::collect();
        }
        r
    }

    fn recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno> {
        if self.kind == SOCK_STREAM {
            self.stream_recv(c, len, flags)
        } else {
            self.dgram_recv(c, len, flags)
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let mode = match how {
            SHUT_RD => RCV_SHUTDOWN,
            SHUT_WR => SEND_SHUTDOWN,
            SHUT_RDWR => SHUTDOWN_MASK,
            _ => return Err(Errno::EINVAL),
        };
        let peer = {
            let mut st = self.lock();
            st.shutdown |= mode;
            st.peer.clone()
        };
        self.queue.wake_all();
        self.peer_wait.wake_all();
        if let Some(p) = peer.filter(|_| self.connection_oriented()) {
            let mut peer_mode = 0;
            if mode & RCV_SHUTDOWN != 0 {
                peer_mode |= SEND_SHUTDOWN;
            }
            if mode & SEND_SHUTDOWN != 0 {
                peer_mode |= RCV_SHUTDOWN;
            }
            p.lock().shutdown |= peer_mode;
            p.queue.wake_all();
            p.peer_wait.wake_all();
        }
        Ok(())
    }

    fn sockname(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.name_bytes())
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let p = self.lock().peer.clone().ok_or(Errno::ENOTCONN)?;
        Ok(p.name_bytes())
    }

    fn setsockopt(&self, t: &Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        self.set_option(t, name, val)
    }

    fn getsockopt(&self, _t: &Task, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        self.get_option(name)
    }

    fn poll(&self) -> u32 {
        let st = self.lock();
        let mut m = 0;
        if st.err.is_some() {
            m |= POLLERR;
        }
        if st.shutdown == SHUTDOWN_MASK {
            m |= POLLHUP;
        }
        if st.shutdown & RCV_SHUTDOWN != 0 {
            m |= POLLRDHUP | POLLIN | POLLRDNORM;
        }
        if !st.recv.is_empty() || !st.pending.is_empty() {
            m |= POLLIN | POLLRDNORM;
        }
        if self.connection_oriented() && st.conn == Conn::Closed {
            m |= POLLHUP;
        }
        let mut writable = st.conn != Conn::Listening && self.writable();
        let peer = st.peer.clone();
        drop(st);
        // A datagram socket connected to one that is not connected back cannot write
        // while that one's queue is full; it is woken when the queue drains.
        let other = peer
            .filter(|o| writable && self.kind == SOCK_DGRAM && !std::ptr::eq(Arc::as_ptr(o), self));
        if let Some(o) = other {
            let mut os = o.lock();
            if !os.dead && !is(&os.peer, self) && os.recv.len() > os.backlog {
                writable = false;
                if !os.wakers.iter().any(|w| w.ptr_eq(&self.me)) {
                    os.wakers.push(self.me.clone());
                }
            }
        }
        if writable {
            m |= WRITABLE;
        }
        m
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }

    fn ioctl(&self, t: &mut Task, cmd: u32, arg: u64) -> SysResult {
        let n = match cmd {
            FIONREAD => {
                let st = self.lock();
                if st.conn == Conn::Listening {
                    return Err(Errno::EINVAL);
                }
                if self.kind == SOCK_DGRAM {
                    st.recv.front().map_or(0, Msg::len)
                } else {
                    st.recv_bytes
                }
            }
            SIOCOUTQ => self.wmem.load(Ordering::SeqCst),
            _ => return Err(Errno::ENOTTY),
        };
        t.mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
        Ok(0)
    }

    fn release(&self) {
        self.close(false);
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        // Normally `close` emptied everything; a socket never closed still frees its queue.
        let st = self.st.get_mut().unwrap_or_else(|e| e.into_inner());
        let recv = std::mem::take(&mut st.recv);
        let pending = std::mem::take(&mut st.pending);
        if let Some(k) = st.key.take() {
            addr::unregister(&k, self);
        }
        for e in pending {
            e.close(true);
        }
        gc::dispose(recv);
    }
}

#[cfg(test)]
mod tests {
    use super::gc::Rights;
    use super::queue::{stream_pass, StreamRead};
    use super::*;

    fn queue(s: &UnixSocket, data: &[u8], files: Vec<Arc<File>>) {
        let mut st = s.lock();
        st.recv_bytes += data.len();
        st.recv.push_back(Msg {
            data: data.to_vec(),
            off: 0,
            rights: Rights::new(files),
            creds: None,
            from: None,
            charge: 0,
        });
    }

    fn read(s: &UnixSocket, len: usize) -> (Vec<u8>, usize) {
        let mut r = StreamRead::default();
        let mut dead = Vec::new();
        stream_pass(&mut s.lock(), &mut r, len, false, &mut dead);
        gc::dispose(dead);
        (r.out.data, r.out.rights.len())
    }

    #[test]
    fn stream_read_joins_bytes_and_stops_after_files() {
        let s = UnixSocket::new(SOCK_STREAM);
        let (pipe, _w) = crate::vfs::fs::pipe::new_pair(0);
        queue(&s, b"AB", vec![]);
        queue(&s, b"CD", vec![pipe.clone()]);
        queue(&s, b"EF", vec![]);
        queue(&s, b"GH", vec![pipe]);
        assert_eq!(read(&s, 100), (b"ABCD".to_vec(), 1));
        assert_eq!(read(&s, 3), (b"EFG".to_vec(), 1));
        assert_eq!(read(&s, 100), (b"H".to_vec(), 0));
        assert_eq!(s.lock().recv_bytes, 0);
    }

    #[test]
    fn socket_queued_in_itself_is_collected() {
        let s = UnixSocket::new(SOCK_DGRAM);
        let f = SocketFile::open(s.clone(), 0);
        queue(&s, b"self", vec![f]);
        gc::collect();
        assert!(s.lock().dead);
        assert!(s.lock().recv.is_empty());
    }

    #[test]
    fn socket_types_and_protocols_checked_like_linux() {
        assert_eq!(check_kind(SOCK_RAW, 0), Ok(SOCK_DGRAM));
        assert_eq!(check_kind(SOCK_SEQPACKET, AF_UNIX), Ok(SOCK_SEQPACKET));
        assert_eq!(check_kind(SOCK_STREAM, 2), Err(Errno::EPROTONOSUPPORT));
        assert_eq!(check_kind(4, 0), Err(Errno::ESOCKTNOSUPPORT));
        assert_eq!(check_kind(11, 0), Err(Errno::EINVAL));
    }
}
