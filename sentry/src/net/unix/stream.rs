//! Connection-oriented AF_UNIX: connect (the server's end is made at once and queued on
//! the listener), and the byte stream of SOCK_STREAM (SOCK_SEQPACKET records go through
//! `dgram`).

use std::sync::atomic::Ordering;

use super::queue::{self, StreamRead, STREAM_MSG_MAX};
use super::*;

impl UnixSocket {
    /// Connects to the listener `other` (`unix_stream_connect` once it is found): `None`
    /// while its backlog is full, `Some(false)` when it closed meanwhile (look it up again).
    fn try_connect(&self, other: &UnixSocket, cred: Ucred) -> Result<Option<bool>, Errno> {
        let (mut go, gs) = lock_two(other, self);
        if go.dead {
            return Ok(Some(false));
        }
        if go.conn != Conn::Listening || go.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::ECONNREFUSED);
        }
        if go.pending.len() > go.backlog {
            return Ok(None);
        }
        // The listener itself connecting: its state is Listening.
        let Some(mut gs) = gs else {
            return Err(Errno::EINVAL);
        };
        match gs.conn {
            Conn::Connected => return Err(Errno::EISCONN),
            Conn::Listening => return Err(Errno::EINVAL),
            Conn::Closed => {}
        }
        let embryo = UnixSocket::new(self.kind);
        {
            let mut e = embryo.lock();
            e.conn = Conn::Connected;
            e.peer = Some(self.arc());
            e.peercred = Some(cred);
            e.orphan = true;
            e.passcred = go.passcred;
        }
        if let Some(n) = other.name.get() {
            let _ = embryo.name.set(n.clone());
        }
        gs.peer = Some(embryo.clone());
        gs.conn = Conn::Connected;
        gs.peercred = go.peercred;
        go.pending.push_back(embryo);
        Ok(Some(true))
    }

    /// connect(2) of a stream or seqpacket socket: blocks (or EAGAIN) while the listener's
    /// backlog is full; the connection is established before accept.
    pub(super) fn stream_connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno> {
        addr::parse(addr)?;
        if self.lock().passcred {
            addr::autobind(self)?;
        }
        let cred = c.task.map_or(c.cred, Ucred::effective);
        loop {
            let other = addr::find(c, addr, self.kind)?;
            if c.block(&other.peer_wait, || self.try_connect(&other, cred))? {
                other.queue.notify(READABLE);
                return Ok(());
            }
        }
    }

    /// Sends bytes (Linux's `unix_stream_sendmsg`): in messages of at most half the send
    /// buffer, each waiting for room; files go with the first. Short only when interrupted,
    /// timed out or non-blocking after some progress.
    pub(super) fn stream_send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno> {
        let (peer, passcred) = {
            let st = self.lock();
            if msg.addr.is_some_and(|a| !a.is_empty()) {
                return Err(if st.conn == Conn::Connected {
                    Errno::EISCONN
                } else {
                    Errno::EOPNOTSUPP
                });
            }
            let peer = st.peer.clone().ok_or(Errno::ENOTCONN)?;
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            (peer, st.passcred)
        };
        let data = msg.data;
        let mut rights = Some(msg.rights);
        let mut sent = 0;
        while sent < data.len() {
            let room = c.block(&self.queue, || {
                if self.lock().shutdown & SEND_SHUTDOWN != 0 {
                    return Err(Errno::EPIPE);
                }
                Ok(self.has_room().then_some(()))
            });
            if let Err(e) = room {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            let max = (self.sndbuf.load(Ordering::SeqCst) / 2)
                .saturating_sub(64)
                .clamp(1, STREAM_MSG_MAX);
            let size = (data.len() - sent).min(max);
            let mut m = self.message(
                data[sent..sent + size].to_vec(),
                rights.take().unwrap_or_default(),
                msg.creds,
            );
            let refused = {
                let mut ps = peer.lock();
                if ps.dead || ps.shutdown & RCV_SHUTDOWN != 0 {
                    true
                } else {
                    Self::attach_creds(&mut m, passcred, &ps, c.cred);
                    ps.recv_bytes += size;
                    ps.recv.push_back(m);
                    false
                }
            };
            if refused {
                // `m` was not queued; it is dropped here, outside the lock.
                return if sent > 0 {
                    Ok(sent)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            peer.queue.notify(READABLE);
            sent += size;
        }
        Ok(sent)
    }

    /// Receives bytes (Linux's `unix_stream_read_generic`): at least one (all `len` with
    /// MSG_WAITALL) unless at EOF; a pending error only when nothing is queued.
    pub(super) fn stream_recv(
        &self,
        c: &Ctx<'_>,
        len: usize,
        flags: u32,
    ) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EINVAL);
        }
        let passcred = {
            let st = self.lock();
            if st.conn != Conn::Connected {
                return Err(Errno::EINVAL);
            }
            st.passcred
        };
        let peek = flags & MSG_PEEK != 0;
        let target = if flags & MSG_WAITALL != 0 {
            len
        } else {
            len.min(1)
        }
        .max(1);
        let mut r = StreamRead::default();
        let mut dead = Vec::new();
        let res = c.block(&self.queue, || {
            if peek {
                // Peeking again starts over; what the last look copied goes outside the lock.
                drop(std::mem::take(&mut r));
            }
            let mut st = self.lock();
            queue::stream_pass(&mut st, &mut r, len, peek, &mut dead);
            let got = r.out.data.len();
            // A zero-length read returns once there is data, like Linux's (target 1).
            if r.stop || got >= target || (len == 0 && !st.recv.is_empty()) {
                return Ok(Some(()));
            }
            if let Some(e) = st.err.take() {
                return if got > 0 { Ok(Some(())) } else { Err(e) };
            }
            if st.shutdown & RCV_SHUTDOWN != 0 {
                return Ok(Some(()));
            }
            Ok(None)
        });
        gc::dispose(dead);
        match res {
            Ok(()) => {}
            Err(_) if !r.out.data.is_empty() => {}
            Err(e) => return Err(e),
        }
        if passcred {
            r.out.creds = Some(r.creds());
        }
        r.out.full_len = r.out.data.len();
        Ok(r.out)
    }
}
