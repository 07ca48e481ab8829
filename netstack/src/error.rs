//! The netstack's error type: one variant per Linux errno a socket call can fail with.

/// Why a socket call failed. Each variant is exactly one Linux errno ([`NetError::errno`]), so the
/// sentry returns it to the app unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// EAGAIN: the call would block; retry after readiness says so.
    #[error("operation would block")]
    WouldBlock,
    /// EINPROGRESS: a non-blocking connect was started.
    #[error("connection in progress")]
    InProgress,
    /// EALREADY: a connect is already under way on this socket.
    #[error("connect already in progress")]
    Already,
    /// EBADF: no socket has this id.
    #[error("no such socket")]
    BadSocket,
    /// EINVAL: the argument or the socket's state does not allow the call.
    #[error("invalid argument")]
    InvalidArgument,
    /// EADDRINUSE: the local address is taken.
    #[error("address in use")]
    AddrInUse,
    /// EADDRNOTAVAIL: the local address is not one of the stack's, or no port is free.
    #[error("address not available")]
    AddrNotAvailable,
    /// EAFNOSUPPORT: address family does not match the socket's.
    #[error("address family not supported")]
    AfNotSupported,
    /// ECONNREFUSED: the peer answered the connection request with a reset.
    #[error("connection refused")]
    ConnRefused,
    /// ECONNRESET: the peer reset an established connection.
    #[error("connection reset by peer")]
    ConnReset,
    /// ETIMEDOUT: the peer stopped answering.
    #[error("connection timed out")]
    TimedOut,
    /// ENOTCONN: the socket is not connected.
    #[error("socket not connected")]
    NotConnected,
    /// EISCONN: the socket is already connected.
    #[error("socket already connected")]
    IsConnected,
    /// EPIPE: the socket cannot send any more (shut down or never connected).
    #[error("broken pipe")]
    BrokenPipe,
    /// EDESTADDRREQ: a datagram needs a destination and the socket has no peer.
    #[error("destination address required")]
    DestAddrRequired,
    /// EMSGSIZE: the datagram does not fit in one packet.
    #[error("message too long")]
    MessageTooLong,
    /// ENETUNREACH: no route to the destination's network.
    #[error("network unreachable")]
    NetUnreachable,
    /// EOPNOTSUPP: the socket type does not support the call.
    #[error("operation not supported")]
    NotSupported,
    /// ENOBUFS: the stack is out of buffer space.
    #[error("no buffer space")]
    NoBufs,
}

impl NetError {
    /// The Linux errno of this error (positive).
    pub fn errno(self) -> i32 {
        match self {
            NetError::WouldBlock => libc::EAGAIN,
            NetError::InProgress => libc::EINPROGRESS,
            NetError::Already => libc::EALREADY,
            NetError::BadSocket => libc::EBADF,
            NetError::InvalidArgument => libc::EINVAL,
            NetError::AddrInUse => libc::EADDRINUSE,
            NetError::AddrNotAvailable => libc::EADDRNOTAVAIL,
            NetError::AfNotSupported => libc::EAFNOSUPPORT,
            NetError::ConnRefused => libc::ECONNREFUSED,
            NetError::ConnReset => libc::ECONNRESET,
            NetError::TimedOut => libc::ETIMEDOUT,
            NetError::NotConnected => libc::ENOTCONN,
            NetError::IsConnected => libc::EISCONN,
            NetError::BrokenPipe => libc::EPIPE,
            NetError::DestAddrRequired => libc::EDESTADDRREQ,
            NetError::MessageTooLong => libc::EMSGSIZE,
            NetError::NetUnreachable => libc::ENETUNREACH,
            NetError::NotSupported => libc::EOPNOTSUPP,
            NetError::NoBufs => libc::ENOBUFS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_matches_linux_numbers() {
        assert_eq!(NetError::WouldBlock.errno(), 11);
        assert_eq!(NetError::ConnRefused.errno(), 111);
        assert_eq!(NetError::ConnReset.errno(), 104);
        assert_eq!(NetError::InProgress.errno(), 115);
        assert_eq!(NetError::AddrInUse.errno(), 98);
        assert_eq!(NetError::BrokenPipe.errno(), 32);
        assert_eq!(NetError::NotConnected.errno(), 107);
    }
}
