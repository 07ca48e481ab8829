//! AF_UNIX sockets, entirely inside the sentry.

use std::sync::Arc;

use super::Socket;
use crate::abi::Errno;
use crate::kernel::Task;

/// socket(AF_UNIX, kind, protocol).
pub fn create(_t: &Task, _kind: i32, _protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    Err(Errno::EAFNOSUPPORT)
}

/// socketpair(AF_UNIX, kind, protocol).
pub fn pair(_t: &Task, _kind: i32, _protocol: i32) -> Result<super::SocketPair, Errno> {
    Err(Errno::EAFNOSUPPORT)
}
