//! The sentry's side of the gofer protocol.

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use moat_proto::gofer::{Reply, Request};

use crate::channel::{Channel, ChannelError};

#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    #[error("gofer channel failed")]
    Channel(#[from] ChannelError),
    #[error("gofer sent {fds} fds with a reply that carries none")]
    UnexpectedFds { fds: usize },
    #[error("gofer sent an open reply without its fd")]
    MissingFd,
}

/// A connection to the gofer. Calls are serialized: one request, one reply.
pub struct GoferClient {
    chan: Mutex<Channel>,
}

impl GoferClient {
    pub fn new(chan: Channel) -> Self {
        GoferClient {
            chan: Mutex::new(chan),
        }
    }

    /// Sends `req` and waits for its reply; an `Opened` reply comes with its fd.
    pub fn call(&self, req: &Request) -> Result<(Reply, Option<OwnedFd>), GoferError> {
        let chan = self.chan.lock().unwrap_or_else(|e| e.into_inner());
        chan.send_msg(req, &[])?;
        let (reply, mut fds) = chan.recv_msg::<Reply>()?;
        drop(chan);
        match (&reply, fds.len()) {
            (Reply::Opened(_), 1) => Ok((reply, fds.pop())),
            (Reply::Opened(_), 0) => Err(GoferError::MissingFd),
            (_, 0) => Ok((reply, None)),
            (_, n) => Err(GoferError::UnexpectedFds { fds: n }),
        }
    }
}
