//! moat-netstack: the sandbox's userspace TCP/IP stack (smoltcp), with Linux socket semantics.
//! May touch: only the link it is handed (the loopback in memory; later the pod's packet socket fd).
//! Never: opens host sockets of its own, reaches the host network stack for the app, reads a
//! clock (time is an argument), or blocks: every call returns at once and the sentry waits.
//!
//! A [`Stack`] owns one smoltcp interface over one [`Link`] and every socket on it, named by
//! [`SocketId`]. The sentry calls the socket methods from its syscall handlers, then
//! [`Stack::poll`] with the current time, and sleeps until [`Stack::poll_delay`] or a packet.
//! [`Stack::readiness`] answers poll/epoll, and [`Stack::take_changed`] names the sockets whose
//! readiness a poll changed, so only their waiters wake. Errors are [`NetError`], one Linux errno
//! each.
//!
//! smoltcp's limits, and how they are hidden:
//! - One connection per listening socket: a listener keeps a few smoltcp sockets in LISTEN and
//!   refills them after every incoming packet; finished handshakes go to an accept queue bounded
//!   by the backlog; SYNs beyond it, and retransmitted SYNs a fresh listener took, are dropped
//!   before their SYN-ACK leaves (`tcp.rs`).
//! - No error reporting: resets and timeouts are read off state transitions between polls into
//!   SO_ERROR (ECONNREFUSED, ECONNRESET, ETIMEDOUT after [`CONNECT_TIMEOUT`]).
//! - No ports: bind conflicts, SO_REUSEADDR, TIME_WAIT holding a port, and ephemeral ports are
//!   the stack's own table; closed connections live on as orphans until smoltcp is done.
//! - Fixed buffers: sizes come from SO_RCVBUF/SO_SNDBUF at connect/listen time; defaults are
//!   large ([`DEFAULT_BUFFER`]); a live socket cannot grow.
//! - Unspecified listen addresses take both families: IPv4 peers of AF_INET6 sockets appear
//!   v4-mapped; IPv6 peers of AF_INET listeners are reset.
//! - No IP fragmentation: a datagram larger than one packet is EMSGSIZE.
//! - No ICMP peek: a peeked ping reply is held by the socket.
//!
//! Locks: none inside; the sentry holds the stack behind one lock of its own.

mod error;
mod icmp;
mod link;
mod stack;
mod tcp;
mod udp;

pub use error::NetError;
pub use link::{mem_link_pair, Link, Loopback, MemLink, MemLinkConfig};
pub use smoltcp::phy::Medium;
pub use smoltcp::time::{Duration, Instant};
pub use stack::{
    Family, Readiness, RecvMeta, Shutdown, SocketId, Stack, StackConfig, DEFAULT_BUFFER,
    EPHEMERAL_PORTS, MAX_BUFFER, MIN_BUFFER,
};
pub use tcp::{CONNECT_TIMEOUT, MAX_BACKLOG};
