//! Socket options of AF_UNIX sockets at SOL_SOCKET (the socket file keeps the timeouts
//! and flags every family shares): SO_PASSCRED, SO_PEERCRED, SO_ERROR, SO_ACCEPTCONN, the
//! buffer sizes (doubled, as Linux stores them), and a few Linux only stores.

use std::sync::atomic::Ordering;

use super::*;

/// SOL_SOCKET options a unix socket only stores.
#[derive(Default)]
pub(super) struct Misc {
    reuseaddr: bool,
    keepalive: bool,
    passsec: bool,
    priority: i32,
    linger: (i32, i32),
}

impl UnixSocket {
    fn set_buf(&self, name: i32, v: i32) {
        // Linux: min(val, max) as unsigned, doubled, at least the minimum; the FORCE
        // variants skip the maximum.
        let forced = name == SO_SNDBUFFORCE || name == SO_RCVBUFFORCE;
        let v = if forced {
            v.max(0) as usize
        } else {
            (v as u32 as usize).min(BUF_MAX)
        };
        let v = v.min(i32::MAX as usize / 2) * 2;
        if name == SO_SNDBUF || name == SO_SNDBUFFORCE {
            self.sndbuf.store(v.max(SOCK_MIN_SNDBUF), Ordering::SeqCst);
            if self.writable() {
                self.queue.notify(WRITABLE);
            }
        } else {
            self.lock().rcvbuf = v.max(SOCK_MIN_RCVBUF);
        }
    }

    /// setsockopt(SOL_SOCKET) of the options the socket file does not keep: Linux's
    /// `sk_setsockopt` for what a unix socket uses or stores.
    pub(super) fn set_option(&self, t: &Task, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = opt_int(val)?;
        match name {
            SO_PASSCRED => self.lock().passcred = v != 0,
            SO_SNDBUF | SO_RCVBUF => self.set_buf(name, v),
            SO_SNDBUFFORCE | SO_RCVBUFFORCE => {
                if t.creds.euid != 0 {
                    return Err(Errno::EPERM);
                }
                self.set_buf(name, v);
            }
            SO_REUSEADDR => self.lock().misc.reuseaddr = v != 0,
            SO_KEEPALIVE => self.lock().misc.keepalive = v != 0,
            SO_PASSSEC => self.lock().misc.passsec = v != 0,
            SO_PRIORITY => {
                if !(0..=6).contains(&v) && t.creds.euid != 0 {
                    return Err(Errno::EPERM);
                }
                self.lock().misc.priority = v;
            }
            SO_LINGER => {
                let secs = val.get(4..8).ok_or(Errno::EINVAL)?;
                let secs = opt_int(secs)?;
                self.lock().misc.linger = (i32::from(v != 0), secs);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// getsockopt(SOL_SOCKET) of the options the socket file does not keep. SO_ERROR
    /// clears the pending error; SO_PEERCRED of an unconnected socket is pid 0, ids -1.
    pub(super) fn get_option(&self, name: i32) -> Result<Vec<u8>, Errno> {
        let mut st = self.lock();
        let flag = |b: bool| int_opt(i32::from(b));
        let size = |n: usize| int_opt(i32::try_from(n).unwrap_or(i32::MAX));
        Ok(match name {
            SO_PASSCRED => flag(st.passcred),
            SO_PEERCRED => st
                .peercred
                .unwrap_or(Ucred {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                })
                .to_bytes(),
            SO_ERROR => int_opt(st.err.take().map_or(0, |e| e.0)),
            SO_ACCEPTCONN => flag(st.conn == Conn::Listening),
            SO_SNDBUF => size(self.sndbuf.load(Ordering::SeqCst)),
            SO_RCVBUF => size(st.rcvbuf),
            SO_REUSEADDR => flag(st.misc.reuseaddr),
            SO_KEEPALIVE => flag(st.misc.keepalive),
            SO_PASSSEC => flag(st.misc.passsec),
            SO_PRIORITY => int_opt(st.misc.priority),
            SO_LINGER => {
                let mut v = int_opt(st.misc.linger.0);
                v.extend(int_opt(st.misc.linger.1));
                v
            }
            SO_COOKIE => self.cookie.to_le_bytes().to_vec(),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}
