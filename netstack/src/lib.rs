//! moat-netstack: the sandbox's userspace TCP/IP stack (smoltcp), with Linux socket semantics.
//! May touch: only the link it is handed (the loopback in memory, or the pod's packet socket
//! fd); [`hostif`] and [`PacketLink::open`] read and change the host interface the sandbox takes
//! over, through rtnetlink in the caller's network namespace, when asked to.
//! Never: opens host sockets for the app, reaches the host network stack for the app, reads a
//! clock (time is an argument), or blocks: every call returns at once and the sentry waits
//! (on [`Stack::wait_fd`] for packets).
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
//!   the stack's own table (the search starts at a random port, as Linux's does); closed
//!   connections live on as orphans until smoltcp is done, except in TIME_WAIT, where the
//!   smoltcp socket is freed and only the port stays taken (a retransmitted FIN then meets a
//!   reset): smoltcp visits every socket on each poll.
//! - No ICMP errors to sockets: a port-unreachable answer to a UDP datagram does not make the
//!   next call on a connected socket ECONNREFUSED (a resolver waits out its timeout instead).
//! - Fixed rings: smoltcp's buffers are sized once, from SO_RCVBUF/SO_SNDBUF at connect/listen
//!   time (default [`DEFAULT_BUFFER`]). The receive side still grows like Linux's autotuning:
//!   when the app lags and the ring is half full, received bytes move to a growing queue of the
//!   connection (up to [`RX_GROW_MAX`]) so the window stays open; an explicit SO_RCVBUF turns
//!   that off, as on Linux. The send side does not grow.
//! - Unspecified listen addresses take both families: IPv4 peers of AF_INET6 sockets appear
//!   v4-mapped; IPv6 peers of AF_INET listeners are reset.
//! - No IP fragmentation: a datagram larger than one packet is EMSGSIZE.
//! - No ICMP peek: a peeked ping reply is held by the socket.
//! - One interface: over a [`PacketLink`], the loopback addresses live on the same smoltcp
//!   interface as the external ones, and the link delivers packets to them (and to its own
//!   addresses) locally. So loopback traffic has the external interface's MTU (usually 1500,
//!   not Linux's 65536): larger UDP datagrams to 127.0.0.1 are EMSGSIZE; IPv4 TCP still moves
//!   64 KiB segments, as the link's segmentation offload applies to it too.
//! - No IPv6 segmentation offload: smoltcp drops IPv6 packets above the MTU, so IPv6 TCP is sent
//!   in MSS-sized segments (received super-packets are still taken whole).
//! - Source addresses: smoltcp would pick ::1 for a global IPv6 destination when the interface
//!   has only unique-local addresses; TCP and UDP get theirs from the stack instead (Linux's
//!   choice), but ICMPv6 echo requests still go through smoltcp's.
//! - Routes: on-link subnets and one default gateway per family; a destination with neither is
//!   ENETUNREACH at connect/send.
//!
//! Host interfaces: [`hostif::probe`] reads an interface (index, MAC, MTU, addresses, default
//! gateways) and [`hostif::remove_addrs`] takes its addresses from the host kernel, so that only
//! the netstack answers for them. [`PacketLink::open`] does both and opens the AF_PACKET socket;
//! the stack then runs over it with [`Stack::new`].
//!
//! Locks: none inside; the sentry holds the stack behind one lock of its own.
//!
//! Unsafe code: only in `sys` (host syscalls of the packet and netlink sockets).

mod error;
pub mod hostif;
mod icmp;
mod link;
mod neigh;
mod offload;
mod packet;
mod stack;
mod sys;
mod tcp;
mod udp;

pub use error::NetError;
pub use hostif::{HostIfError, IfConfig};
pub use link::{mem_link_pair, Link, Loopback, MemLink, MemLinkConfig, Offloads};
pub use packet::{PacketLink, PacketLinkError, PacketStats};
pub use smoltcp::phy::Medium;
pub use smoltcp::time::{Duration, Instant};
pub use stack::{
    Family, Readiness, RecvMeta, Shutdown, SocketId, Stack, StackConfig, DEFAULT_BUFFER,
    EPHEMERAL_PORTS, MAX_BUFFER, MIN_BUFFER,
};
pub use tcp::{CONNECT_TIMEOUT, MAX_BACKLOG, RX_GROW_MAX};
