//! Queued messages of AF_UNIX sockets and reading them: a stream read gathers bytes across
//! messages but stops after one that carried files and never mixes credentials when
//! SO_PASSCRED is on (Linux's `unix_stream_read_generic`).

use std::sync::Arc;

use super::gc::Rights;
use super::{State, UnixSocket};
use crate::net::{RecvMsg, Ucred};

/// `SKB_MAX_HEAD(0)`: the most of a stream message kept in its head; a stream message holds
/// at most this plus 32 KiB of page fragments.
const STREAM_HEAD: usize = 3776;
pub(super) const STREAM_MSG_MAX: usize = STREAM_HEAD + 32768;
/// `SKB_MAX_ALLOC`: a datagram beyond this puts up to `MAX_SKB_FRAGS` pages in fragments.
const DGRAM_HEAD: usize = 16064;
const DGRAM_FRAGS_MAX: usize = 17 * 4096;

/// What a message of `len` bytes costs its sender's send buffer: Linux's skb truesize (the
/// `struct sk_buff`, the kmalloc bucket of the head with its shared info, whole pages for
/// the fragments, split as unix_stream_sendmsg and unix_dgram_sendmsg split them), so that
/// a buffer fills after as many messages as on Linux.
pub(super) fn truesize(len: usize, stream: bool) -> usize {
    let frags = if stream {
        len.min(len.saturating_sub(STREAM_HEAD).next_multiple_of(4096))
    } else if len > DGRAM_HEAD {
        (len - DGRAM_HEAD)
            .min(DGRAM_FRAGS_MAX)
            .next_multiple_of(4096)
    } else {
        0
    };
    let head = len - frags;
    256 + (head.next_multiple_of(64) + 320).next_power_of_two() + frags.next_multiple_of(4096)
}

/// Credentials a receiver with SO_PASSCRED sees for a message that carried none.
pub(super) const NO_CREDS: Ucred = Ucred {
    pid: 0,
    uid: 65534,
    gid: 65534,
};

/// One queued message (a datagram, a seqpacket record or a piece of a stream write).
pub(super) struct Msg {
    pub data: Vec<u8>,
    /// Bytes of a stream message already read.
    pub off: usize,
    pub rights: Rights,
    pub creds: Option<Ucred>,
    /// The sending socket: its name is the source address, its send buffer is charged.
    pub from: Option<Arc<UnixSocket>>,
    pub charge: usize,
}

impl Msg {
    /// Unread bytes.
    pub fn len(&self) -> usize {
        self.data.len() - self.off
    }
    /// The sender's address, if it is bound.
    pub fn source(&self) -> Option<Vec<u8>> {
        self.from.as_ref()?.name.get().cloned()
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        if let Some(s) = &self.from {
            s.uncharge(self.charge);
        }
    }
}

/// A stream read in progress.
#[derive(Default)]
pub(super) struct StreamRead {
    pub out: RecvMsg,
    /// With SO_PASSCRED: the credentials of the bytes read so far.
    creds: Option<Option<Ucred>>,
    /// Reached a boundary: files delivered, other credentials next, a message read in part.
    pub stop: bool,
}

impl StreamRead {
    /// The SCM_CREDENTIALS to report: those of the bytes read, NO_CREDS for bytes sent
    /// without, zeros when nothing was read (Linux's zeroed `scm_cookie`).
    pub fn creds(&self) -> Ucred {
        match self.creds {
            Some(c) => c.unwrap_or(NO_CREDS),
            None => Ucred::default(),
        }
    }
}

/// Reads from the front of `st`'s queue into `r`, up to `len` bytes in all. Consumed
/// messages go to `dead` (to be dropped once the lock is released). MSG_PEEK copies files
/// instead of taking them; the caller starts each peek with an empty `r`.
pub(super) fn stream_pass(
    st: &mut State,
    r: &mut StreamRead,
    len: usize,
    peek: bool,
    dead: &mut Vec<Msg>,
) {
    let passcred = st.passcred;
    let mut i = 0;
    while r.out.data.len() < len && !r.stop {
        let Some(m) = st.recv.get_mut(if peek { i } else { 0 }) else {
            break;
        };
        if passcred {
            match r.creds {
                Some(c) if c != m.creds => {
                    r.stop = true;
                    break;
                }
                Some(_) => {}
                None => r.creds = Some(m.creds),
            }
        }
        if r.out.addr.is_none() {
            r.out.addr = m.source();
        }
        let chunk = m.len().min(len - r.out.data.len());
        r.out.data.extend_from_slice(&m.data[m.off..m.off + chunk]);
        if peek {
            if !m.rights.is_empty() {
                r.out.rights = m.rights.peek();
                r.stop = true;
            }
            i += 1;
            continue;
        }
        m.off += chunk;
        st.recv_bytes = st.recv_bytes.saturating_sub(chunk);
        if !m.rights.is_empty() {
            r.out.rights = m.rights.take();
        }
        if m.len() > 0 {
            r.stop = true;
            break;
        }
        dead.extend(st.recv.pop_front());
        if !r.out.rights.is_empty() {
            r.stop = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truesize_matches_linux_skbs() {
        // SIOCOUTQ after one send on Linux 6.18.
        for (len, want) in [(1, 768), (16064, 16640), (16065, 20736), (90000, 102_656)] {
            assert_eq!(truesize(len, false), want, "datagram of {len}");
        }
        assert_eq!(truesize(212_960, false), 332_032);
        for (len, want) in [
            (1, 768),
            (3776, 4352),
            (3777, 4864),
            (5000, 6400),
            (20000, 20736),
        ] {
            assert_eq!(truesize(len, true), want, "stream message of {len}");
        }
        assert_eq!(truesize(STREAM_MSG_MAX, true), 37120);
    }
}
