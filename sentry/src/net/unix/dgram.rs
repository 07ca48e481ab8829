//! Datagrams and records: SOCK_DGRAM (connect as default destination, sends by name, the
//! receive-queue limit for senders the receiver is not connected to) and the messages of
//! SOCK_SEQPACKET, which keep their boundaries the same way.

use std::sync::atomic::Ordering;

use super::queue::NO_CREDS;
use super::*;

impl UnixSocket {
    /// Forgets the datagram peer, dropping what is queued from it (Linux's
    /// `unix_dgram_disconnected`).
    fn dgram_disconnected(&self, old: &UnixSocket, dead: &mut Vec<Msg>) {
        let had = {
            let mut st = self.lock();
            st.recv_bytes = 0;
            dead.extend(st.recv.drain(..));
            !dead.is_empty()
        };
        if !had {
            return;
        }
        self.wake_senders();
        let mut os = old.lock();
        if !os.dead && is(&os.peer, self) {
            os.err = Some(Errno::ECONNRESET);
            drop(os);
            old.queue.wake_all();
        }
    }

    /// connect(2) of a datagram socket: sets (AF_UNSPEC: clears) the default destination,
    /// which must be unconnected or connected to us (else EPERM).
    pub(super) fn dgram_connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno> {
        let family = addr::family(addr).ok_or(Errno::EINVAL)?;
        let other = if family == AF_UNSPEC {
            None
        } else {
            addr::parse(addr)?;
            if self.lock().passcred {
                addr::autobind(self)?;
            }
            loop {
                let o = addr::find(c, addr, self.kind)?;
                let (go, _) = lock_two(&o, self);
                if go.dead {
                    continue;
                }
                if !(go.peer.is_none() || is(&go.peer, self)) {
                    return Err(Errno::EPERM);
                }
                drop(go);
                break Some(o);
            }
        };
        let old = {
            let mut st = self.lock();
            st.conn = if other.is_some() {
                Conn::Connected
            } else {
                Conn::Closed
            };
            std::mem::replace(&mut st.peer, other.clone())
        };
        let mut dead = Vec::new();
        if let Some(old) = &old {
            if !other.as_ref().is_some_and(|o| Arc::ptr_eq(o, old)) {
                self.dgram_disconnected(old, &mut dead);
            }
        }
        self.queue.notify(WRITABLE);
        gc::dispose(dead);
        Ok(())
    }

    /// Queues `m` at `other` (the locked part of `unix_dgram_sendmsg`): `None` while its
    /// queue is full, `Some(false)` when a named destination closed (look it up again).
    fn deliver(
        &self,
        other: &UnixSocket,
        m: &mut Option<Msg>,
        named: bool,
        cred: Ucred,
        dead: &mut Vec<Msg>,
    ) -> Result<Option<bool>, Errno> {
        let (mut go, mut gs) = lock_two(other, self);
        if !(go.peer.is_none() || is(&go.peer, self)) {
            return Err(Errno::EPERM);
        }
        if go.dead {
            if self.kind == SOCK_SEQPACKET {
                return Err(Errno::EPIPE);
            }
            if let Some(gs) = gs.as_mut().filter(|g| is(&g.peer, other)) {
                // Our default destination is gone: disconnect, dropping what it sent us.
                gs.peer = None;
                gs.conn = Conn::Closed;
                gs.recv_bytes = 0;
                dead.extend(gs.recv.drain(..));
                return Err(Errno::ECONNREFUSED);
            }
            if !named {
                return Err(Errno::ECONNRESET);
            }
            return Ok(Some(false));
        }
        if go.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let passcred = gs.as_ref().map_or(go.passcred, |g| g.passcred);
        if gs.is_some() && !is(&go.peer, self) && go.recv.len() > go.backlog {
            if !go.wakers.iter().any(|w| w.ptr_eq(&self.me)) {
                go.wakers.retain(|w| w.strong_count() > 0);
                go.wakers.push(self.me.clone());
            }
            return Ok(None);
        }
        let Some(mut msg) = m.take() else {
            return Ok(Some(true));
        };
        Self::attach_creds(&mut msg, passcred, &go, cred);
        go.recv_bytes += msg.len();
        go.recv.push_back(msg);
        Ok(Some(true))
    }

    /// Sends one datagram or record (Linux's `unix_dgram_sendmsg`, and
    /// `unix_seqpacket_sendmsg` before it): EMSGSIZE past the send buffer, waits for room in
    /// ours, then in a receiver's queue that is full of others' datagrams.
    pub(super) fn dgram_send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno> {
        let seq = self.kind == SOCK_SEQPACKET;
        let passcred = {
            let mut st = self.lock();
            if seq {
                if let Some(e) = st.err.take() {
                    return Err(e);
                }
                if st.conn != Conn::Connected {
                    return Err(Errno::ENOTCONN);
                }
            }
            st.passcred
        };
        let dest = if seq {
            None
        } else {
            msg.addr.filter(|a| !a.is_empty())
        };
        if let Some(a) = dest {
            addr::parse(a)?;
        }
        if passcred {
            addr::autobind(self)?;
        }
        let len = msg.data.len();
        if len + 32 > self.sndbuf.load(Ordering::SeqCst) {
            return Err(Errno::EMSGSIZE);
        }
        c.block(&self.queue, || {
            let mut st = self.lock();
            if let Some(e) = st.err.take() {
                return Err(e);
            }
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            Ok(self.has_room().then_some(()))
        })?;
        let mut m = Some(self.message(msg.data.to_vec(), msg.rights, msg.creds));
        let mut other = match dest {
            Some(a) => addr::find(c, a, self.kind)?,
            None => self.lock().peer.clone().ok_or(Errno::ENOTCONN)?,
        };
        let mut dead = Vec::new();
        let res = loop {
            let r = c.block(&other.peer_wait, || {
                self.deliver(&other, &mut m, dest.is_some(), c.cred, &mut dead)
            });
            match (r, dest) {
                (Ok(true), _) => break Ok(len),
                (Ok(false), Some(a)) => match addr::find(c, a, self.kind) {
                    Ok(o) => other = o,
                    Err(e) => break Err(e),
                },
                (Ok(false), None) => break Err(Errno::ECONNRESET),
                (Err(e), _) => break Err(e),
            }
        };
        if res.is_ok() {
            other.queue.notify(READABLE);
        }
        if !dead.is_empty() {
            // Disconnected from a closed peer: our queue was emptied.
            self.wake_senders();
        }
        gc::dispose(dead);
        res
    }

    /// Receives one datagram or record, truncated to `len` (MSG_TRUNC in the flags); a
    /// pending error comes first.
    pub(super) fn dgram_recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let seq = self.kind == SOCK_SEQPACKET;
        if seq && self.lock().conn != Conn::Connected {
            return Err(Errno::ENOTCONN);
        }
        let peek = flags & MSG_PEEK != 0;
        // A shut-down datagram socket reads EOF only when it would block (Linux returns
        // EAGAIN when non-blocking); a seqpacket one either way.
        let eof = seq || !c.nonblock;
        let mut dead = None;
        let res = c.block(&self.queue, || {
            let mut st = self.lock();
            if let Some(e) = st.err.take() {
                return Err(e);
            }
            let passcred = st.passcred;
            let Some(m) = st.recv.front_mut() else {
                if eof && st.shutdown & RCV_SHUTDOWN != 0 {
                    return Ok(Some(RecvMsg::default()));
                }
                return Ok(None);
            };
            let n = m.len().min(len);
            let mut out = RecvMsg {
                data: m.data[m.off..m.off + n].to_vec(),
                full_len: m.len(),
                addr: m.source(),
                ..RecvMsg::default()
            };
            if n < m.len() {
                out.flags |= MSG_TRUNC;
            }
            if passcred {
                out.creds = Some(m.creds.unwrap_or(NO_CREDS));
            }
            if peek {
                out.rights = m.rights.peek();
            } else {
                out.rights = m.rights.take();
                dead = st.recv.pop_front();
                st.recv_bytes = st.recv_bytes.saturating_sub(out.full_len);
            }
            Ok(Some(out))
        });
        if dead.is_some() {
            self.wake_senders();
        }
        gc::dispose(dead);
        res
    }
}
