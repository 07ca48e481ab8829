//! The socket layer: every socket of the app is a [`SocketFile`] around one [`Socket`].
//! AF_UNIX lives entirely in the sentry (`unix`), AF_INET/AF_INET6 go through the netstack
//! (`inet`), NETLINK_ROUTE answers from the netstack's interface table (`netlink`).
//! The syscalls (`syscalls::socket`) decode addresses, iovecs and control messages; a socket
//! sees bytes and typed control data only.

pub mod inet;
pub mod netlink;
pub mod stack;
pub mod unix;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::abi::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::{Task, TaskHandle};
use crate::vfs::file::*;
use crate::vfs::File;

pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_NETLINK: i32 = 16;
pub const AF_PACKET: i32 = 17;

pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_SEQPACKET: i32 = 5;
pub const SOCK_NONBLOCK: i32 = 0o4000;
pub const SOCK_CLOEXEC: i32 = 0o2000000;

pub const MSG_OOB: u32 = 0x1;
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_DONTROUTE: u32 = 0x4;
pub const MSG_CTRUNC: u32 = 0x8;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_EOR: u32 = 0x80;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_MORE: u32 = 0x8000;
pub const MSG_WAITFORONE: u32 = 0x10000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

pub const SHUT_RD: i32 = 0;
pub const SHUT_WR: i32 = 1;
pub const SHUT_RDWR: i32 = 2;

pub const SOL_SOCKET: i32 = 1;
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_OOBINLINE: i32 = 10;
pub const SO_LINGER: i32 = 13;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_PASSCRED: i32 = 16;
pub const SO_PEERCRED: i32 = 17;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO: i32 = 20;
pub const SO_SNDTIMEO: i32 = 21;
pub const SO_BINDTODEVICE: i32 = 25;
pub const SO_TIMESTAMP: i32 = 29;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_PEERSEC: i32 = 31;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PASSSEC: i32 = 34;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;
pub const SO_PEEK_OFF: i32 = 42;
pub const SO_BUSY_POLL: i32 = 46;
pub const SO_INCOMING_CPU: i32 = 49;
pub const SO_COOKIE: i32 = 57;

pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;

pub const FIONREAD: u32 = 0x541B;
pub const SIOCOUTQ: u32 = 0x5411;

/// `struct ucred`: who sent a message or connected (SCM_CREDENTIALS, SO_PEERCRED).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// The credentials a message of the calling task carries (SCM_CREDENTIALS): its pid and
    /// real ids, as Linux's `current_uid_gid`.
    pub fn of(t: &Task) -> Ucred {
        Ucred {
            pid: t.tgid(),
            uid: t.creds.uid,
            gid: t.creds.gid,
        }
    }
    /// The credentials a connection records of the calling task (SO_PEERCRED): its pid and
    /// effective ids.
    pub fn effective(t: &Task) -> Ucred {
        Ucred {
            pid: t.tgid(),
            uid: t.creds.euid,
            gid: t.creds.egid,
        }
    }
    pub fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&self.pid.to_le_bytes());
        v.extend_from_slice(&self.uid.to_le_bytes());
        v.extend_from_slice(&self.gid.to_le_bytes());
        v
    }
    pub fn from_bytes(b: &[u8]) -> Option<Ucred> {
        let w = |i: usize| -> Option<[u8; 4]> { b.get(i..i + 4)?.try_into().ok() };
        Some(Ucred {
            pid: i32::from_le_bytes(w(0)?),
            uid: u32::from_le_bytes(w(4)?),
            gid: u32::from_le_bytes(w(8)?),
        })
    }
}

/// How a socket operation may wait: the caller, O_NONBLOCK/MSG_DONTWAIT, SO_RCVTIMEO/SO_SNDTIMEO.
pub struct Ctx<'a> {
    pub h: &'a TaskHandle,
    /// The calling task, in the socket syscalls (not in read/write): what resolves path names.
    pub task: Option<&'a Task>,
    /// The caller's credentials (`Ucred::of`).
    pub cred: Ucred,
    pub nonblock: bool,
    pub timeout: Option<Duration>,
}

impl Ctx<'_> {
    /// Calls `ready` until it yields, sleeping on `q` in between (see
    /// [`block_on`](crate::vfs::file::block_on): EAGAIN when
    /// non-blocking or when the socket timeout passes, EINTR or ERESTARTSYS on a signal).
    pub fn block<T>(
        &self,
        q: &WaitQueue,
        ready: impl FnMut() -> Result<Option<T>, Errno>,
    ) -> Result<T, Errno> {
        crate::vfs::file::block_on(self.h, q, self.nonblock, self.timeout, ready)
    }
}

/// A message to send: the gathered bytes, the destination, and control data.
#[derive(Default)]
pub struct SendMsg<'a> {
    pub data: &'a [u8],
    /// The raw sockaddr (sendto/sendmsg's name), if any.
    pub addr: Option<&'a [u8]>,
    /// SCM_RIGHTS files.
    pub rights: Vec<Arc<File>>,
    /// SCM_CREDENTIALS as the sender stated them (already checked against the sender).
    pub creds: Option<Ucred>,
    /// MSG_* flags.
    pub flags: u32,
}

/// A received message.
#[derive(Default)]
pub struct RecvMsg {
    pub data: Vec<u8>,
    /// The size of the whole datagram (or what MSG_TRUNC on a stream discarded); what recv
    /// returns when MSG_TRUNC was asked.
    pub full_len: usize,
    /// The sender's sockaddr, when the socket knows it.
    pub addr: Option<Vec<u8>>,
    pub rights: Vec<Arc<File>>,
    pub creds: Option<Ucred>,
    /// MSG_TRUNC, MSG_CTRUNC, MSG_EOR as they go to msg_flags.
    pub flags: u32,
}

/// One socket, whatever its family. Defaults answer what a socket that lacks the operation
/// answers on Linux.
pub trait Socket: Send + Sync + 'static {
    fn family(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET or SOCK_RAW.
    fn kind(&self) -> i32;
    fn protocol(&self) -> i32 {
        0
    }
    fn bind(&self, t: &Task, addr: &[u8]) -> Result<(), Errno>;
    fn listen(&self, _t: &Task, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// A new connection and the peer's sockaddr.
    fn accept(&self, _c: &Ctx<'_>) -> Result<(Arc<dyn Socket>, Vec<u8>), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno>;
    /// Sends; returns bytes taken. EPIPE is returned as is: the syscall raises SIGPIPE.
    fn send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno>;
    /// Receives up to `len` bytes; `flags` are the MSG_* of the call.
    fn recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno>;
    /// Receives bytes straight into `buf`, for sockets whose messages carry nothing else
    /// (no sender address, no control data): read(2) and the stream fast path. None: use
    /// [`Socket::recv`].
    fn recv_into(
        &self,
        _c: &Ctx<'_>,
        _buf: &mut [u8],
        _flags: u32,
    ) -> Option<Result<usize, Errno>> {
        None
    }
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    fn sockname(&self) -> Result<Vec<u8>, Errno>;
    fn peername(&self) -> Result<Vec<u8>, Errno>;
    /// Options of levels other than the common SOL_SOCKET ones the file keeps itself.
    fn setsockopt(&self, _t: &Task, _level: i32, _name: i32, _val: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOPROTOOPT)
    }
    fn getsockopt(&self, _t: &Task, _level: i32, _name: i32) -> Result<Vec<u8>, Errno> {
        Err(Errno::ENOPROTOOPT)
    }
    /// POLL* bits now.
    fn poll(&self) -> u32;
    fn wait_queue(&self) -> &WaitQueue;
    /// FIONREAD, SIOCOUTQ and the interface ioctls.
    fn ioctl(&self, _t: &mut Task, _cmd: u32, _arg: u64) -> SysResult {
        Err(Errno::ENOTTY)
    }
    /// The last fd closed.
    fn release(&self) {}
    /// The concrete socket, for a family that finds its own sockets behind files (AF_UNIX
    /// looks for sockets in flight in SCM_RIGHTS messages).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Two connected sockets (socketpair).
pub type SocketPair = (Arc<dyn Socket>, Arc<dyn Socket>);

/// Socket options every family shares and the file keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonOpts {
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub passcred: bool,
    pub broadcast: bool,
    pub oobinline: bool,
    pub timestamp: bool,
    pub debug: bool,
    pub reuseport: bool,
    pub dontroute: bool,
    pub rcvlowat: i32,
    pub peek_off: i32,
}

/// An open socket: the `FileOps` face of a [`Socket`].
pub struct SocketFile {
    pub sock: Arc<dyn Socket>,
    pub opts: Mutex<CommonOpts>,
}

impl SocketFile {
    pub fn new(sock: Arc<dyn Socket>) -> Arc<SocketFile> {
        Arc::new(SocketFile {
            sock,
            opts: Mutex::new(CommonOpts {
                rcvlowat: 1,
                peek_off: -1,
                ..CommonOpts::default()
            }),
        })
    }
    pub fn opts(&self) -> CommonOpts {
        *self.opts.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// An open file description for `sock` with O_RDWR and the SOCK_NONBLOCK of `flags`.
    pub fn open(sock: Arc<dyn Socket>, flags: i32) -> Arc<File> {
        let inode = crate::vfs::fs::host::AnonInode::make(crate::vfs::S_IFSOCK | 0o777, 0);
        let nb = if flags & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
        File::new(SocketFile::new(sock), Some(inode), None, O_RDWR | nb)
    }
    /// The socket behind an open file, or ENOTSOCK.
    pub fn of(f: &File) -> Result<&SocketFile, Errno> {
        f.ops
            .as_any()
            .and_then(|a| a.downcast_ref::<SocketFile>())
            .ok_or(Errno::ENOTSOCK)
    }
    pub fn ctx<'a>(&self, t: &'a Task, nonblock: bool, send: bool) -> Ctx<'a> {
        Ctx {
            task: Some(t),
            ..self.ctx_io(&t.io(nonblock), send)
        }
    }
    /// The context of a read or write through the generic file path.
    pub fn ctx_io<'a>(&self, io: &Io<'a>, send: bool) -> Ctx<'a> {
        let o = self.opts();
        Ctx {
            h: io.task,
            task: None,
            cred: io.cred,
            nonblock: io.nonblock,
            timeout: if send { o.sndtimeo } else { o.rcvtimeo },
        }
    }
}

impl FileOps for SocketFile {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let c = self.ctx_io(io, false);
        if let Some(r) = self.sock.recv_into(&c, buf, 0) {
            return r;
        }
        let m = self.sock.recv(&c, buf.len(), 0)?;
        let n = m.data.len().min(buf.len());
        buf[..n].copy_from_slice(&m.data[..n]);
        Ok(n)
    }
    fn write(&self, io: &Io<'_>, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let msg = SendMsg {
            data: buf,
            ..SendMsg::default()
        };
        self.sock.send(&self.ctx_io(io, true), msg)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn sigpipe(&self) -> bool {
        self.sock.kind() == SOCK_STREAM
    }
    fn poll(&self) -> u32 {
        self.sock.poll()
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(self.sock.wait_queue())
    }
    fn ioctl(&self, t: &mut Task, cmd: u32, arg: u64) -> SysResult {
        // Interface ioctls work on a socket of any family, as in Linux's sock_ioctl.
        if (0x8910..=0x89ff).contains(&cmd) {
            let net = t.k.net.clone();
            return netlink::ifreq_ioctl(&net, t, cmd, arg);
        }
        self.sock.ioctl(t, cmd, arg)
    }
    fn release(&self) {
        self.sock.release();
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// Makes a socket of `family`, `kind` (without the flag bits) and `protocol`.
pub fn create(t: &Task, family: i32, kind: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    match family {
        AF_UNIX => unix::create(t, kind, protocol),
        AF_INET | AF_INET6 => inet::create(t, family, kind, protocol),
        AF_NETLINK => netlink::create(t, kind, protocol),
        AF_PACKET => Err(Errno::EPERM),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Reads a C `int` option value (Linux accepts shorter ones for some; we need 4 bytes).
pub fn opt_int(val: &[u8]) -> Result<i32, Errno> {
    let b: [u8; 4] = val
        .get(..4)
        .ok_or(Errno::EINVAL)?
        .try_into()
        .map_err(|_| Errno::EINVAL)?;
    Ok(i32::from_le_bytes(b))
}

/// An `int` option value.
pub fn int_opt(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}
