//! moat-gofer: the only process of a pod that opens host files.
//! May touch: the pod's rootfs and volumes, through fds resolved beneath its root.
//! Never: follows a link out of the root, or trusts a path the sentry sent without resolving it.
//!
//! - [`channel`]: a unix SOCK_SEQPACKET socket carrying one message and its fds per packet;
//!   used by the gofer, the sentry and the runtime.
//! - [`client`]: what the sentry calls to reach its gofer.
//! - [`server`]: the gofer's request loop (runs inside the `moat-gofer` process).
//!
//! Unsafe code lives only in [`sys`].

pub mod channel;
pub mod client;
pub mod server;
pub mod sys;

pub use channel::{Channel, ChannelError};
pub use client::{GoferClient, GoferError};
