//! A unix SOCK_SEQPACKET socket: one message (and its fds) per packet.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

/// The largest packet we send or accept.
pub const MAX_PACKET: usize = 4 << 20;
/// The most fds one packet carries.
pub const MAX_FDS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot create socket pair")]
    Pair(#[source] std::io::Error),
    #[error("cannot send packet")]
    Send(#[source] std::io::Error),
    #[error("cannot receive packet")]
    Recv(#[source] std::io::Error),
    #[error("peer closed the channel")]
    Closed,
    #[error("packet truncated (over {MAX_PACKET} bytes or {MAX_FDS} fds)")]
    Truncated,
    #[error("bad message")]
    Decode(#[source] moat_proto::DecodeError),
}

/// One end of a seqpacket socket pair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Receive buffer, allocated once (zeroing MAX_PACKET bytes per message would dominate
    /// the cost of small requests).
    buf: std::sync::Mutex<Vec<u8>>,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = sys::seqpacket_pair().map_err(ChannelError::Pair)?;
        Ok((Channel::from_fd(a), Channel::from_fd(b)))
    }

    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel {
            fd,
            buf: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends `data` with `fds` attached.
    pub fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        sys::send_with_fds(self.fd.as_fd(), data, fds).map_err(ChannelError::Send)
    }

    /// Receives one packet and the fds that came with it.
    pub fn recv(&self) -> Result<(Vec<u8>, Vec<OwnedFd>), ChannelError> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        if buf.len() != MAX_PACKET {
            buf.resize(MAX_PACKET, 0);
        }
        let (n, fds, truncated) =
            sys::recv_with_fds(self.fd.as_fd(), &mut buf, MAX_FDS).map_err(ChannelError::Recv)?;
        if truncated {
            return Err(ChannelError::Truncated);
        }
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        Ok((buf[..n].to_vec(), fds))
    }

    /// Sends a message.
    pub fn send_msg<M: moat_proto::wire::Message>(
        &self,
        m: &M,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        self.send(&m.encode(), fds)
    }

    /// Receives and decodes a message.
    pub fn recv_msg<M: moat_proto::wire::Message>(
        &self,
    ) -> Result<(M, Vec<OwnedFd>), ChannelError> {
        let (buf, fds) = self.recv()?;
        let m = M::decode(&buf).map_err(ChannelError::Decode)?;
        Ok((m, fds))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn packets_and_fds_cross_the_pair() {
        let (a, b) = Channel::pair().unwrap();
        let mut f = std::fs::File::from(sys::memfd("t").unwrap());
        f.write_all(b"data").unwrap();
        a.send(b"hello", &[f.as_fd()]).unwrap();
        let (msg, fds) = b.recv().unwrap();
        assert_eq!(msg, b"hello");
        assert_eq!(fds.len(), 1);
        let mut g = std::fs::File::from(fds.into_iter().next().unwrap());
        g.rewind().unwrap();
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }
}
