//! moat-proto: the messages Moat's processes exchange, and their wire codec.
//! May touch: nothing at run time; it only encodes and decodes bytes.
//! Never: trusts a length or count it reads: every decode is checked and fails with
//! [`DecodeError`] instead of panicking, since the peer may be hostile (the sentry runs app
//! code, so the gofer must treat its requests as untrusted).
//!
//! - [`wire`]: the little-endian codec every message uses.
//! - [`gofer`]: sentry ⇄ gofer file requests (one request, one reply, fds over SCM_RIGHTS).
//! - [`boot`]: runtime → sentry and runtime → gofer start-up, and the sentry's exit report.
//! - [`control`]: runtime ⇄ pod sentry: start containers, exec, signal; their exits.

pub mod boot;
pub mod control;
pub mod gofer;
pub mod wire;

pub use wire::{DecodeError, Decoder, Encoder};
