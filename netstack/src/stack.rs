//! The stack: one smoltcp interface over one [`Link`], the socket table, ports, and polling.
//!
//! Everything is synchronous and takes the time as an argument: the sentry calls [`Stack::poll`]
//! after socket calls and when [`Stack::poll_delay`] expires, and sleeps otherwise.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::Medium;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::error::NetError;
use crate::icmp::IcmpSock;
use crate::link::{Link, LinkDevice, Loopback};
use crate::tcp::TcpSock;
use crate::udp::UdpSock;

/// Linux's default `ip_local_port_range`.
pub const EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// Default socket buffer size, both directions: large, because smoltcp's per-packet cost makes
/// window size the main lever on throughput.
pub const DEFAULT_BUFFER: usize = 512 * 1024;
/// Smallest buffer a setter leaves (Linux's SOCK_MIN_RCVBUF is about this).
pub const MIN_BUFFER: usize = 4 * 1024;
/// Largest buffer a setter leaves (Linux's default `rmem_max`/`wmem_max` range).
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// A bound on poll rounds in one [`Stack::poll`] call, so a chatty loopback cannot starve the
/// caller.
const MAX_POLL_ROUNDS: usize = 64;
/// How long a closed connection's port stays taken (smoltcp's own TIME_WAIT length).
const TIME_WAIT: Duration = Duration::from_secs(10);
/// Packets taken in per poll round before the stack sends again, so a flood of incoming packets
/// cannot hold back acknowledgements and window updates.
const INGRESS_BUDGET: usize = 256;

/// Where the ephemeral port search starts for a stack seeded with `seed`.
fn first_ephemeral_port(seed: u64) -> u16 {
    let start = *EPHEMERAL_PORTS.start();
    let count = u64::from(EPHEMERAL_PORTS.end() - start) + 1;
    // The remainder is below `count`, which fits in u16.
    start + u16::try_from((seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % count).unwrap_or(0)
}

/// A socket of the stack, as the sentry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u32);

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sock{}", self.0)
    }
}

/// Address family of a socket: AF_INET or AF_INET6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AF_INET.
    V4,
    /// AF_INET6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }

    /// The unspecified address of the family (INADDR_ANY, in6addr_any).
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// How an address appears to a socket of this family: an IPv4 peer of an AF_INET6 socket
    /// as v4-mapped (::ffff:a.b.c.d), as Linux shows it.
    pub(crate) fn present(self, addr: SocketAddr) -> SocketAddr {
        match (self, addr) {
            (Family::V6, SocketAddr::V4(v4)) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            _ => addr,
        }
    }

    pub(crate) fn check(self, addr: &SocketAddr) -> Result<(), NetError> {
        if Family::of(addr) == self {
            Ok(())
        } else {
            Err(NetError::AfNotSupported)
        }
    }
}

/// Which directions `shutdown` closes (SHUT_RD, SHUT_WR, SHUT_RDWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SHUT_RD.
    Read,
    /// SHUT_WR.
    Write,
    /// SHUT_RDWR.
    Both,
}

impl Shutdown {
    pub(crate) fn read(self) -> bool {
        matches!(self, Shutdown::Read | Shutdown::Both)
    }
    pub(crate) fn write(self) -> bool {
        matches!(self, Shutdown::Write | Shutdown::Both)
    }
}

/// What poll/epoll would report for a socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// POLLIN: recv or accept would not block.
    pub readable: bool,
    /// POLLOUT: send would not block.
    pub writable: bool,
    /// POLLHUP: both directions are closed.
    pub hup: bool,
    /// POLLRDHUP: the peer closed its sending side.
    pub rdhup: bool,
    /// POLLERR: an error is pending (see [`Stack::take_error`]).
    pub error: bool,
}

/// What a datagram receive returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// Length of the whole datagram (MSG_TRUNC's answer); above `len` when it was truncated.
    pub full_len: usize,
    /// The sender, when known.
    pub from: Option<SocketAddr>,
}

impl RecvMeta {
    /// Whether the datagram did not fit (MSG_TRUNC in msg_flags).
    pub fn truncated(&self) -> bool {
        self.full_len > self.len
    }
}

/// Addresses and routes of the stack's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// Interface addresses with their prefix lengths. Loopback addresses may come in any place:
    /// the stack puts them last, so that a destination outside every subnet gets the first
    /// other address of its family as source, never 127.0.0.1.
    pub addrs: Vec<(IpAddr, u8)>,
    /// IPv4 default gateway. The stack only needs it to know what is routable; a link that
    /// does its own Ethernet (the packet link) routes with its own copy.
    pub gateway_v4: Option<Ipv4Addr>,
    /// IPv6 default gateway, as `gateway_v4`.
    pub gateway_v6: Option<Ipv6Addr>,
    /// MAC address: the stack's own for an Ethernet-medium link; for an IP-medium link that
    /// does its own Ethernet (the packet link) it is only reported (the interface's address).
    pub mac: Option<[u8; 6]>,
    /// Seed of TCP initial sequence numbers and the like; differs per sandbox in production.
    pub random_seed: u64,
}

impl StackConfig {
    /// 127.0.0.1/8 and ::1/128, the loopback's addresses.
    pub fn loopback(random_seed: u64) -> Self {
        Self {
            addrs: vec![
                (IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
            gateway_v4: None,
            gateway_v6: None,
            mac: None,
            random_seed,
        }
    }
}

/// Socket options shared by TCP and UDP.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SockOpts {
    pub(crate) reuse_addr: bool,
    pub(crate) rcvbuf: usize,
    /// SO_RCVBUF was set: the receive buffer stays that size (no growth), as on Linux.
    pub(crate) rcvbuf_set: bool,
    pub(crate) sndbuf: usize,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: bool,
    pub(crate) linger_abort: bool,
}

impl Default for SockOpts {
    fn default() -> Self {
        Self {
            reuse_addr: false,
            rcvbuf: DEFAULT_BUFFER,
            rcvbuf_set: false,
            sndbuf: DEFAULT_BUFFER,
            nodelay: false,
            keepalive: false,
            linger_abort: false,
        }
    }
}

pub(crate) enum Sock {
    Tcp(TcpSock),
    Udp(UdpSock),
    Icmp(IcmpSock),
}

/// A TCP connection the app closed that smoltcp still runs (FIN exchange, TIME_WAIT, a RST to
/// send); it keeps its port taken until it is gone.
pub(crate) struct Orphan {
    pub(crate) handle: SocketHandle,
    pub(crate) local: Option<SocketAddr>,
}

/// Which protocol a port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    /// Echo identifiers of ping sockets.
    Icmp,
}

/// A userspace TCP/IP stack: one interface, its sockets, and the link under it.
pub struct Stack {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    link: Box<dyn Link>,
    pub(crate) socks: HashMap<SocketId, Sock>,
    pub(crate) orphans: Vec<Orphan>,
    /// Sockets in `Mode::Listening`, serviced after every incoming packet.
    pub(crate) listeners: Vec<SocketId>,
    next_id: u32,
    next_port: u16,
    pub(crate) mtu: usize,
    /// Whether a default route exists, per family (IPv4, IPv6).
    gateways: (bool, bool),
    /// The time of the latest poll: the stack's idea of now between polls.
    pub(crate) now: Instant,
    /// Readiness at the end of the previous poll; a socket call forgets its entry.
    pub(crate) ready_cache: HashMap<SocketId, Readiness>,
    /// Sockets whose readiness changed in a poll, for [`Stack::take_changed`].
    changed: HashSet<SocketId>,
    /// Local addresses of closed connections in TIME_WAIT, oldest first, with when it ends.
    /// The smoltcp socket is gone; only the port stays taken.
    time_wait: std::collections::VecDeque<(SocketAddr, Instant)>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("addrs", &self.iface.ip_addrs())
            .field("sockets", &self.socks.len())
            .field("orphans", &self.orphans.len())
            .finish()
    }
}

impl Stack {
    /// A stack over `link` with the addresses and routes of `config`, started at `now`.
    pub fn new(
        mut link: Box<dyn Link>,
        config: &StackConfig,
        now: Instant,
    ) -> Result<Self, NetError> {
        let hardware_addr = match link.medium() {
            Medium::Ethernet => {
                let mac = EthernetAddress(config.mac.ok_or(NetError::InvalidArgument)?);
                if !mac.is_unicast() {
                    return Err(NetError::InvalidArgument);
                }
                HardwareAddress::Ethernet(mac)
            }
            _ => HardwareAddress::Ip,
        };
        let mut iface_config = Config::new(hardware_addr);
        iface_config.random_seed = config.random_seed;
        let mtu = link.mtu();
        let mut iface = Interface::new(iface_config, &mut LinkDevice::new(link.as_mut()), now);
        let mut full = false;
        // Loopback addresses last: smoltcp takes the first address of a family as source for a
        // destination in no subnet.
        let mut ordered: Vec<&(IpAddr, u8)> = config.addrs.iter().collect();
        ordered.sort_by_key(|(addr, _)| addr.is_loopback());
        iface.update_ip_addrs(|addrs| {
            for (addr, prefix) in ordered {
                full |= addrs
                    .push(IpCidr::new(IpAddress::from(*addr), *prefix))
                    .is_err();
            }
        });
        if full {
            return Err(NetError::NoBufs);
        }
        if let Some(gw) = config.gateway_v4 {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| NetError::NoBufs)?;
        }
        if let Some(gw) = config.gateway_v6 {
            iface
                .routes_mut()
                .add_default_ipv6_route(gw)
                .map_err(|_| NetError::NoBufs)?;
        }
        Ok(Self {
            iface,
            sockets: SocketSet::new(Vec::new()),
            link,
            socks: HashMap::new(),
            orphans: Vec::new(),
            listeners: Vec::new(),
            next_id: 1,
            // A random start, as Linux randomizes its choice: a sandbox that restarts must not
            // reuse the 4-tuples of its last life, which a peer may still hold in TIME_WAIT
            // or LAST_ACK (a SYN then waits out a retransmission).
            next_port: first_ephemeral_port(config.random_seed),
            mtu,
            gateways: (config.gateway_v4.is_some(), config.gateway_v6.is_some()),
            now,
            ready_cache: HashMap::new(),
            changed: HashSet::new(),
            time_wait: std::collections::VecDeque::new(),
        })
    }

    /// A stack over its own loopback: 127.0.0.1/8 and ::1.
    pub fn loopback(random_seed: u64, now: Instant) -> Self {
        // The loopback config has two addresses and no routes, which always fit.
        Self::new(
            Box::new(Loopback::new()),
            &StackConfig::loopback(random_seed),
            now,
        )
        .expect("loopback config fits the interface")
    }

    /// Advances the stack to `now`: takes in what the link received, runs timers, sends what the
    /// sockets queued. Loops while the link has more (the loopback answers itself), within a
    /// bound. Returns whether any socket may have changed state.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.now = now;
        let mut changed = false;
        self.link.set_now(now);
        self.iface.poll_maintenance(now);
        for _ in 0..MAX_POLL_ROUNDS {
            for _ in 0..INGRESS_BUDGET {
                let result = self.iface.poll_ingress_single(
                    now,
                    &mut LinkDevice::new(self.link.as_mut()),
                    &mut self.sockets,
                );
                match result {
                    PollIngressSingleResult::None => break,
                    PollIngressSingleResult::PacketProcessed => {}
                    PollIngressSingleResult::SocketStateChanged => changed = true,
                }
                // Before any SYN-ACK goes out: move new connections off the listening sockets
                // and put fresh ones in their place, so the next SYN finds a listener.
                self.service_listeners();
            }
            loop {
                let result = self.iface.poll_egress(
                    now,
                    &mut LinkDevice::new(self.link.as_mut()),
                    &mut self.sockets,
                );
                match result {
                    PollResult::None => break,
                    PollResult::SocketStateChanged => changed = true,
                }
            }
            self.link.flush();
            if !self.link.has_pending() {
                break;
            }
        }
        self.service_listeners();
        self.observe_states();
        self.reap_orphans();
        self.note_changes();
        changed
    }

    /// How long the caller may sleep before the next [`Stack::poll`] is due, if any timer runs;
    /// zero when there is work now. New packets on the link or socket calls also call for a poll.
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        if self.link.has_pending() {
            return Some(Duration::ZERO);
        }
        let link = self
            .link
            .poll_at()
            .map(|at| if at > now { at - now } else { Duration::ZERO });
        match (self.iface.poll_delay(now, &self.sockets), link) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The host fd the link's packets arrive on, to sleep on between polls ([`Link::wait_fd`]).
    pub fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.link.wait_fd()
    }

    /// The interface's addresses.
    pub fn addrs(&self) -> Vec<(IpAddr, u8)> {
        self.iface
            .ip_addrs()
            .iter()
            .map(|cidr| (IpAddr::from(cidr.address()), cidr.prefix_len()))
            .collect()
    }

    /// How many sockets the app holds (not counting closed connections still finishing).
    pub fn socket_count(&self) -> usize {
        self.socks.len()
    }

    pub(crate) fn insert(&mut self, sock: Sock) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.socks.insert(id, sock);
        id
    }

    /// SO_REUSEADDR.
    pub fn set_reuse_addr(&mut self, id: SocketId, on: bool) -> Result<(), NetError> {
        self.opts_mut(id)?.reuse_addr = on;
        Ok(())
    }

    /// SO_RCVBUF: the receive buffer of connections made after this call (smoltcp cannot resize a
    /// live socket). Clamped to [`MIN_BUFFER`]..=[`MAX_BUFFER`].
    pub fn set_recv_buffer_size(&mut self, id: SocketId, size: usize) -> Result<(), NetError> {
        let opts = self.opts_mut(id)?;
        opts.rcvbuf = size.clamp(MIN_BUFFER, MAX_BUFFER);
        opts.rcvbuf_set = true;
        Ok(())
    }

    /// SO_SNDBUF, as [`Stack::set_recv_buffer_size`].
    pub fn set_send_buffer_size(&mut self, id: SocketId, size: usize) -> Result<(), NetError> {
        self.opts_mut(id)?.sndbuf = size.clamp(MIN_BUFFER, MAX_BUFFER);
        Ok(())
    }

    /// The receive buffer size in use.
    pub fn recv_buffer_size(&self, id: SocketId) -> Result<usize, NetError> {
        Ok(self.opts(id)?.rcvbuf)
    }

    /// The send buffer size in use.
    pub fn send_buffer_size(&self, id: SocketId) -> Result<usize, NetError> {
        Ok(self.opts(id)?.sndbuf)
    }

    pub(crate) fn opts(&self, id: SocketId) -> Result<&SockOpts, NetError> {
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => Ok(&s.opts),
            Sock::Udp(s) => Ok(&s.opts),
            Sock::Icmp(s) => Ok(&s.opts),
        }
    }

    pub(crate) fn opts_mut(&mut self, id: SocketId) -> Result<&mut SockOpts, NetError> {
        match self.socks.get_mut(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => Ok(&mut s.opts),
            Sock::Udp(s) => Ok(&mut s.opts),
            Sock::Icmp(s) => Ok(&mut s.opts),
        }
    }

    /// bind(2) for either protocol.
    pub fn bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_bind(id, addr),
            Sock::Udp(_) => self.udp_bind(id, addr),
            Sock::Icmp(_) => self.icmp_bind(id, addr),
        }
    }

    /// connect(2) for either protocol. TCP: never blocks, `Err(InProgress)` when started.
    pub fn connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_connect(id, addr),
            Sock::Udp(_) => self.udp_connect(id, addr),
            Sock::Icmp(_) => self.icmp_connect(id, addr),
        }
    }

    /// send(2) without a destination.
    pub fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_send(id, data),
            Sock::Udp(_) => self.udp_send_to(id, data, None),
            Sock::Icmp(_) => self.icmp_send_to(id, data, None),
        }
    }

    /// recv(2); `peek` is MSG_PEEK. A datagram is truncated to `buf` silently, as recv(2) does.
    pub fn recv(&mut self, id: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_recv(id, buf, peek),
            Sock::Udp(_) => Ok(self.udp_recv_from(id, buf, peek)?.len),
            Sock::Icmp(_) => Ok(self.icmp_recv_from(id, buf, peek)?.len),
        }
    }

    /// sendto(2): TCP ignores `to` (as Linux does for connected stream sockets).
    pub fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<usize, NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_send(id, data),
            Sock::Udp(_) => self.udp_send_to(id, data, to),
            Sock::Icmp(_) => self.icmp_send_to(id, data, to),
        }
    }

    /// recvfrom(2) with the sender and the datagram's full length.
    pub fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvMeta, NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => {
                let len = self.tcp_recv(id, buf, peek)?;
                let from = self.peer_addr(id).ok();
                Ok(RecvMeta {
                    len,
                    full_len: len,
                    from,
                })
            }
            Sock::Udp(_) => self.udp_recv_from(id, buf, peek),
            Sock::Icmp(_) => self.icmp_recv_from(id, buf, peek),
        }
    }

    /// Bytes a TCP socket has received and not yet read (FIONREAD); 0 for other sockets.
    pub fn recv_queue(&self, id: SocketId) -> usize {
        match self.socks.get(&id) {
            Some(Sock::Tcp(s)) => self.tcp_recv_queue(s),
            _ => 0,
        }
    }

    /// shutdown(2).
    pub fn shutdown(&mut self, id: SocketId, how: Shutdown) -> Result<(), NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(_) => self.tcp_shutdown(id, how),
            Sock::Udp(_) => self.udp_shutdown(id, how),
            Sock::Icmp(_) => Err(NetError::NotSupported),
        }
    }

    /// getsockname(2). An unbound socket reports the unspecified address and port 0, as Linux.
    pub fn local_addr(&self, id: SocketId) -> Result<SocketAddr, NetError> {
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => Ok(self.tcp_local_addr(s)),
            Sock::Udp(s) => Ok(s
                .local
                .unwrap_or_else(|| SocketAddr::new(s.family.unspecified(), 0))),
            Sock::Icmp(s) => Ok(s
                .local
                .unwrap_or_else(|| SocketAddr::new(s.family.unspecified(), 0))),
        }
    }

    /// getpeername(2); ENOTCONN until connected.
    pub fn peer_addr(&self, id: SocketId) -> Result<SocketAddr, NetError> {
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => self.tcp_peer_addr(s),
            Sock::Udp(s) => s
                .peer
                .map(|peer| s.family.present(peer))
                .ok_or(NetError::NotConnected),
            Sock::Icmp(s) => s
                .peer
                .map(|peer| s.family.present(peer))
                .ok_or(NetError::NotConnected),
        }
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&mut self, id: SocketId) -> Result<Option<NetError>, NetError> {
        self.ready_cache.remove(&id);
        match self.socks.get_mut(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => Ok(s.error.take()),
            Sock::Udp(_) | Sock::Icmp(_) => Ok(None),
        }
    }

    /// What poll(2) would report for the socket now.
    pub fn readiness(&self, id: SocketId) -> Result<Readiness, NetError> {
        match self.socks.get(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => Ok(self.tcp_readiness(s)),
            Sock::Udp(s) => Ok(self.udp_readiness(s)),
            Sock::Icmp(s) => Ok(self.icmp_readiness(s)),
        }
    }

    /// close(2): the id is gone at once; a TCP connection finishes in the background (FIN, or RST
    /// when unread data is left, as Linux).
    pub fn close(&mut self, id: SocketId) -> Result<(), NetError> {
        self.ready_cache.remove(&id);
        match self.socks.remove(&id).ok_or(NetError::BadSocket)? {
            Sock::Tcp(s) => self.tcp_release(s),
            Sock::Udp(s) => self.udp_release(s),
            Sock::Icmp(s) => self.icmp_release(s),
        }
        Ok(())
    }

    /// Whether `port` of `proto` on `addr` is free for a socket with SO_REUSEADDR `reuse`.
    pub(crate) fn port_free(&self, proto: Proto, addr: IpAddr, port: u16, reuse: bool) -> bool {
        let overlaps = |other: &SocketAddr| {
            other.port() == port
                && (other.ip().is_unspecified() || addr.is_unspecified() || other.ip() == addr)
        };
        for sock in self.socks.values() {
            match (proto, sock) {
                (Proto::Tcp, Sock::Tcp(s)) => {
                    if let Some(local) = s.bound {
                        if overlaps(&local) && !(reuse && s.opts.reuse_addr && !s.is_listening()) {
                            return false;
                        }
                    }
                }
                (Proto::Icmp, Sock::Icmp(s)) if s.local.as_ref().is_some_and(overlaps) => {
                    return false;
                }
                (Proto::Udp, Sock::Udp(s)) => {
                    if let Some(local) = s.local {
                        if overlaps(&local) && !(reuse && s.opts.reuse_addr) {
                            return false;
                        }
                    }
                }
                _ => {}
            }
        }
        if proto == Proto::Tcp && !reuse {
            for orphan in &self.orphans {
                if orphan.local.as_ref().is_some_and(overlaps) {
                    return false;
                }
            }
            for (local, until) in &self.time_wait {
                if *until > self.now && overlaps(local) {
                    return false;
                }
            }
        }
        true
    }

    /// A free ephemeral port for `addr`.
    pub(crate) fn ephemeral_port(&mut self, proto: Proto, addr: IpAddr) -> Result<u16, NetError> {
        let start = *EPHEMERAL_PORTS.start();
        let count = EPHEMERAL_PORTS.end() - start + 1;
        for _ in 0..count {
            let port = self.next_port;
            self.next_port = if port >= *EPHEMERAL_PORTS.end() {
                start
            } else {
                port + 1
            };
            if self.port_free(proto, addr, port, false) {
                return Ok(port);
            }
        }
        Err(NetError::AddrNotAvailable)
    }

    /// Whether the stack has a route to `dst`: a loopback or own address, an address in one of
    /// the interface's subnets (or a multicast or broadcast one next to a non-loopback address
    /// of the family), or anything when the family has a default gateway. Linux fails a
    /// connect or send without a route with ENETUNREACH at once.
    pub(crate) fn routable(&self, dst: IpAddr) -> bool {
        let gateway = match dst {
            IpAddr::V4(_) => self.gateways.0,
            IpAddr::V6(_) => self.gateways.1,
        };
        if gateway || dst.is_loopback() {
            return true;
        }
        let group = match dst {
            IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast(),
            IpAddr::V6(v6) => v6.is_multicast() || v6.segments()[0] & 0xffc0 == 0xfe80,
        };
        self.iface.ip_addrs().iter().any(|cidr| {
            let addr = IpAddr::from(cidr.address());
            addr.is_ipv4() == dst.is_ipv4()
                && !addr.is_loopback()
                && (group || cidr.contains_addr(&IpAddress::from(dst)))
        })
    }

    /// The source address for a packet to `dst` from a socket bound to no address, as Linux
    /// picks it: the loopback's for a loopback destination, else an interface address of the
    /// family (IPv4: the one whose subnet holds `dst`, else the first; IPv6: the one sharing
    /// the longest prefix with `dst`), never a loopback address. `None` when the family has
    /// none. (smoltcp's own choice prefers ::1 for global IPv6 destinations when the interface
    /// has only unique-local addresses.)
    pub(crate) fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        if dst.is_loopback() {
            return Some(match dst {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let candidates = self
            .iface
            .ip_addrs()
            .iter()
            .map(|cidr| (IpAddr::from(cidr.address()), cidr.prefix_len()))
            .filter(|(addr, _)| !addr.is_loopback() && addr.is_ipv4() == dst.is_ipv4());
        let mut best: Option<(IpAddr, u32)> = None;
        for (addr, prefix) in candidates {
            let common = match (addr, dst) {
                (IpAddr::V4(a), IpAddr::V4(d)) => {
                    let bits = (u32::from(a) ^ u32::from(d)).leading_zeros();
                    // IPv4 only tells "in the subnet" from "not".
                    u32::from(bits >= u32::from(prefix))
                }
                (IpAddr::V6(a), IpAddr::V6(d)) => (u128::from(a) ^ u128::from(d))
                    .leading_zeros()
                    .min(u32::from(prefix)),
                _ => continue,
            };
            if best.is_none_or(|(_, b)| common > b) {
                best = Some((addr, common));
            }
        }
        best.map(|(addr, _)| addr)
    }

    /// Whether `addr` may be a local address: unspecified or one of the interface's.
    pub(crate) fn check_local(&self, addr: IpAddr) -> Result<(), NetError> {
        if addr.is_unspecified() || self.iface.has_ip_addr(IpAddress::from(addr)) {
            Ok(())
        } else {
            Err(NetError::AddrNotAvailable)
        }
    }

    /// Sockets whose readiness changed during polls since the last call, so the sentry wakes
    /// only their waiters. May name a socket whose readiness a socket call changed back since;
    /// never misses one that changed.
    pub fn take_changed(&mut self) -> Vec<SocketId> {
        self.changed.drain().collect()
    }

    fn note_changes(&mut self) {
        let current: Vec<(SocketId, Readiness)> = self
            .socks
            .keys()
            .filter_map(|&id| Some((id, self.readiness(id).ok()?)))
            .collect();
        for (id, now) in current {
            if self.ready_cache.insert(id, now) != Some(now) {
                self.changed.insert(id);
            }
        }
    }

    /// Frees the smoltcp sockets of finished orphans. One in TIME_WAIT is freed too and only
    /// its port kept taken for [`TIME_WAIT`]: smoltcp visits every socket on every poll, and
    /// a busy server's TIME_WAIT connections would otherwise make each poll slower. (A FIN
    /// the peer retransmits in that time is answered with a reset instead of an ACK.)
    fn reap_orphans(&mut self) {
        let now = self.now;
        let sockets = &mut self.sockets;
        let time_wait = &mut self.time_wait;
        self.orphans.retain(|orphan| {
            let state = sockets.get::<tcp::Socket>(orphan.handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                if let (tcp::State::TimeWait, Some(local)) = (state, orphan.local) {
                    time_wait.push_back((local, now + TIME_WAIT));
                }
                sockets.remove(orphan.handle);
            }
            !done
        });
        while time_wait.front().is_some_and(|(_, until)| *until <= now) {
            time_wait.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    struct Lo {
        stack: Stack,
        now: Instant,
    }

    impl Lo {
        fn new() -> Self {
            let now = Instant::from_secs(1);
            Self {
                stack: Stack::loopback(7, now),
                now,
            }
        }

        fn run(&mut self, steps: usize) {
            for _ in 0..steps {
                self.stack.poll(self.now);
                self.now += Duration::from_millis(1);
            }
        }

        /// Bytes `id` has queued and not yet had acknowledged (still in its send buffer).
        fn unsent(&self, id: SocketId) -> usize {
            match self.stack.socks.get(&id) {
                Some(Sock::Tcp(s)) => match &s.mode {
                    crate::tcp::Mode::Connected(c) => self
                        .stack
                        .sockets
                        .get::<smoltcp::socket::tcp::Socket>(c.handle())
                        .send_queue(),
                    _ => 0,
                },
                _ => 0,
            }
        }

        /// A listener at `addr` and one accepted connection: (listener, client, server side).
        fn pair(&mut self, addr: SocketAddr) -> (SocketId, SocketId, SocketId) {
            let family = Family::of(&addr);
            let listener = self.stack.tcp_socket(family);
            self.stack.bind(listener, addr).unwrap();
            self.stack.listen(listener, 8).unwrap();
            let client = self.stack.tcp_socket(family);
            assert_eq!(self.stack.connect(client, addr), Err(NetError::InProgress));
            self.run(5);
            let (server, peer) = self.stack.accept(listener).unwrap();
            assert_eq!(peer, self.stack.local_addr(client).unwrap());
            (listener, client, server)
        }
    }

    #[test]
    fn loopback_sockets_talk_over_127_0_0_1() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 8000);
        let (_, client, server) = lo.pair(addr);
        assert_eq!(lo.stack.peer_addr(client).unwrap(), addr);
        assert_eq!(lo.stack.local_addr(server).unwrap(), addr);
        assert_eq!(lo.stack.send(client, b"hello"), Ok(5));
        lo.run(2);
        let mut buf = [0u8; 16];
        assert_eq!(lo.stack.recv(server, &mut buf, false), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(lo.stack.send(server, b"world"), Ok(5));
        lo.run(2);
        assert_eq!(lo.stack.recv(client, &mut buf, false), Ok(5));
        assert_eq!(&buf[..5], b"world");
    }

    #[test]
    fn loopback_serves_ipv6_and_unspecified_connects_to_it() {
        let mut lo = Lo::new();
        let listener = lo.stack.tcp_socket(Family::V6);
        lo.stack
            .bind(listener, SocketAddr::new(Family::V6.unspecified(), 9000))
            .unwrap();
        lo.stack.listen(listener, 1).unwrap();
        let client = lo.stack.tcp_socket(Family::V6);
        let any = SocketAddr::new(Family::V6.unspecified(), 9000);
        assert_eq!(lo.stack.connect(client, any), Err(NetError::InProgress));
        lo.run(5);
        let (_, peer) = lo.stack.accept(listener).unwrap();
        assert_eq!(peer.ip(), LO6);
        assert_eq!(
            lo.stack.peer_addr(client).unwrap(),
            SocketAddr::new(LO6, 9000)
        );
    }

    #[test]
    fn ipv6_listener_shows_ipv4_peers_as_v4_mapped() {
        let mut lo = Lo::new();
        let listener = lo.stack.tcp_socket(Family::V6);
        let any = SocketAddr::new(Family::V6.unspecified(), 9001);
        lo.stack.bind(listener, any).unwrap();
        lo.stack.listen(listener, 4).unwrap();
        let v4 = lo.stack.tcp_socket(Family::V4);
        let target = SocketAddr::new(LO4, 9001);
        assert_eq!(lo.stack.connect(v4, target), Err(NetError::InProgress));
        let mapped = lo.stack.tcp_socket(Family::V6);
        let mapped_target: SocketAddr = "[::ffff:127.0.0.1]:9001".parse().unwrap();
        assert_eq!(
            lo.stack.connect(mapped, mapped_target),
            Err(NetError::InProgress)
        );
        lo.run(5);
        let (server, peer) = lo.stack.accept(listener).unwrap();
        assert_eq!(peer.ip().to_string(), "::ffff:127.0.0.1");
        assert_eq!(
            lo.stack.local_addr(server).unwrap().to_string(),
            "[::ffff:127.0.0.1]:9001"
        );
        assert!(lo.stack.accept(listener).is_ok());
        assert_eq!(lo.stack.peer_addr(mapped).unwrap(), mapped_target);
    }

    #[test]
    fn binding_a_taken_port_is_eaddrinuse() {
        let mut lo = Lo::new();
        let a = lo.stack.tcp_socket(Family::V4);
        lo.stack.bind(a, SocketAddr::new(LO4, 7000)).unwrap();
        let b = lo.stack.tcp_socket(Family::V4);
        let any = SocketAddr::new(Family::V4.unspecified(), 7000);
        assert_eq!(lo.stack.bind(b, any), Err(NetError::AddrInUse));
        assert_eq!(lo.stack.bind(a, any), Err(NetError::InvalidArgument));
        // UDP ports are another space.
        let u = lo.stack.udp_socket(Family::V4);
        lo.stack.bind(u, any).unwrap();
        assert_eq!(NetError::AddrInUse.errno(), libc::EADDRINUSE);
    }

    #[test]
    fn reuseaddr_shares_a_port_but_not_two_listeners() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7001);
        let a = lo.stack.tcp_socket(Family::V4);
        let b = lo.stack.tcp_socket(Family::V4);
        lo.stack.set_reuse_addr(a, true).unwrap();
        lo.stack.set_reuse_addr(b, true).unwrap();
        lo.stack.bind(a, addr).unwrap();
        lo.stack.bind(b, addr).unwrap();
        lo.stack.listen(a, 4).unwrap();
        assert_eq!(lo.stack.listen(b, 4), Err(NetError::AddrInUse));
        let c = lo.stack.tcp_socket(Family::V4);
        lo.stack.set_reuse_addr(c, true).unwrap();
        assert_eq!(lo.stack.bind(c, addr), Err(NetError::AddrInUse));
    }

    /// Sends from `from` to `to` without `to` reading, polling in between, until the sender is
    /// blocked for a while; returns the bytes it got rid of.
    fn fill_without_reading(lo: &mut Lo, from: SocketId, limit: usize) -> usize {
        let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        let mut stalled = 0;
        while sent < limit && stalled < 50 {
            let off = sent % 251;
            match lo.stack.send(from, &chunk[off..]) {
                Ok(n) => {
                    sent += n;
                    stalled = 0;
                }
                Err(NetError::WouldBlock) => stalled += 1,
                Err(e) => panic!("send: {e}"),
            }
            lo.run(1);
        }
        sent
    }

    /// Reads everything `sent` bytes long and checks the pattern `fill_without_reading` sent.
    fn drain_and_check(lo: &mut Lo, to: SocketId, sent: usize) {
        let mut got = 0;
        let mut buf = vec![0u8; 70000];
        while got < sent {
            match lo.stack.recv(to, &mut buf, false) {
                Ok(n) => {
                    for (i, b) in buf[..n].iter().enumerate() {
                        assert_eq!(usize::from(*b), (got + i) % 251, "byte {}", got + i);
                    }
                    got += n;
                }
                Err(NetError::WouldBlock) => {}
                Err(e) => panic!("recv: {e}"),
            }
            lo.run(1);
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn the_receive_buffer_grows_for_a_reader_that_lags_and_loses_nothing() {
        let mut lo = Lo::new();
        let (_l, client, server) = lo.pair(SocketAddr::new(LO4, 7011));
        let sent = fill_without_reading(&mut lo, client, 8 << 20);
        // A fixed ring would stop the sender at its send buffer plus the receiver's ring.
        assert!(
            sent > 2 * DEFAULT_BUFFER + (1 << 20),
            "only {sent} bytes went before the window closed"
        );
        assert!(
            sent <= crate::tcp::RX_GROW_MAX + DEFAULT_BUFFER,
            "{sent} bytes buffered"
        );
        assert_eq!(lo.stack.recv_queue(server), sent - lo.unsent(client));
        drain_and_check(&mut lo, server, sent);
    }

    #[test]
    fn an_explicit_so_rcvbuf_keeps_the_receive_buffer_fixed() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7012);
        let listener = lo.stack.tcp_socket(Family::V4);
        lo.stack.set_recv_buffer_size(listener, 64 * 1024).unwrap();
        lo.stack.bind(listener, addr).unwrap();
        lo.stack.listen(listener, 8).unwrap();
        let client = lo.stack.tcp_socket(Family::V4);
        assert_eq!(lo.stack.connect(client, addr), Err(NetError::InProgress));
        lo.run(5);
        let (server, _) = lo.stack.accept(listener).unwrap();
        let sent = fill_without_reading(&mut lo, client, 8 << 20);
        assert!(
            sent <= DEFAULT_BUFFER + 64 * 1024,
            "{sent} bytes went past a 64 KiB receive buffer"
        );
        drain_and_check(&mut lo, server, sent);
    }

    #[test]
    fn a_closed_connection_holds_its_port_until_time_wait_ends_unless_reuseaddr() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7002);
        let (listener, client, server) = lo.pair(addr);
        lo.stack.close(server).unwrap();
        lo.stack.close(listener).unwrap();
        lo.stack.close(client).unwrap();
        lo.run(5);
        let again = lo.stack.tcp_socket(Family::V4);
        assert_eq!(lo.stack.bind(again, addr), Err(NetError::AddrInUse));
        lo.stack.set_reuse_addr(again, true).unwrap();
        lo.stack.bind(again, addr).unwrap();
        lo.run(11_000);
        let late = lo.stack.tcp_socket(Family::V4);
        lo.stack.close(again).unwrap();
        lo.stack.bind(late, addr).unwrap();
    }

    #[test]
    fn port_zero_binds_an_ephemeral_port() {
        let mut lo = Lo::new();
        let a = lo.stack.tcp_socket(Family::V4);
        lo.stack.bind(a, SocketAddr::new(LO4, 0)).unwrap();
        let port = lo.stack.local_addr(a).unwrap().port();
        assert!(EPHEMERAL_PORTS.contains(&port));
        let u = lo.stack.udp_socket(Family::V4);
        assert_eq!(
            lo.stack.local_addr(u).unwrap(),
            SocketAddr::new(Family::V4.unspecified(), 0)
        );
        lo.stack.bind(u, SocketAddr::new(LO4, 0)).unwrap();
        assert!(EPHEMERAL_PORTS.contains(&lo.stack.local_addr(u).unwrap().port()));
    }

    #[test]
    fn binding_a_foreign_address_is_eaddrnotavail() {
        let mut lo = Lo::new();
        let a = lo.stack.tcp_socket(Family::V4);
        let foreign = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 80);
        assert_eq!(lo.stack.bind(a, foreign), Err(NetError::AddrNotAvailable));
        assert_eq!(
            lo.stack.bind(a, SocketAddr::new(LO6, 80)),
            Err(NetError::AfNotSupported)
        );
    }

    #[test]
    fn unconnected_tcp_socket_behaves_like_linux() {
        let mut lo = Lo::new();
        let s = lo.stack.tcp_socket(Family::V4);
        let r = lo.stack.readiness(s).unwrap();
        assert!(r.writable && r.hup && !r.readable);
        let mut buf = [0u8; 4];
        assert_eq!(
            lo.stack.recv(s, &mut buf, false),
            Err(NetError::NotConnected)
        );
        assert_eq!(lo.stack.send(s, b"x"), Err(NetError::BrokenPipe));
        assert_eq!(lo.stack.accept(s), Err(NetError::InvalidArgument));
        assert_eq!(
            lo.stack.shutdown(s, Shutdown::Both),
            Err(NetError::NotConnected)
        );
        assert_eq!(lo.stack.peer_addr(s), Err(NetError::NotConnected));
        lo.stack.close(s).unwrap();
        assert_eq!(lo.stack.readiness(s), Err(NetError::BadSocket));
    }

    #[test]
    fn syns_beyond_the_backlog_wait_for_room_instead_of_being_refused() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7003);
        let listener = lo.stack.tcp_socket(Family::V4);
        lo.stack.bind(listener, addr).unwrap();
        lo.stack.listen(listener, 2).unwrap();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let c = lo.stack.tcp_socket(Family::V4);
                assert_eq!(lo.stack.connect(c, addr), Err(NetError::InProgress));
                c
            })
            .collect();
        lo.run(10);
        let mut accepted = 0;
        while lo.stack.accept(listener).is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 2);
        let waiting = clients
            .iter()
            .filter(|&&c| !lo.stack.readiness(c).unwrap().writable)
            .count();
        assert_eq!(waiting, 2);
        // The dropped SYNs are retransmitted after the initial RTO (1 s) and now find room.
        lo.run(1_500);
        while lo.stack.accept(listener).is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 4);
        for c in clients {
            assert_eq!(lo.stack.take_error(c).unwrap(), None);
            assert!(lo.stack.readiness(c).unwrap().writable);
        }
    }

    #[test]
    fn connect_again_reports_state() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7004);
        let (listener, client, _) = lo.pair(addr);
        assert_eq!(lo.stack.connect(client, addr), Err(NetError::IsConnected));
        assert_eq!(
            lo.stack.connect(listener, addr),
            Err(NetError::InvalidArgument)
        );
    }

    #[test]
    fn closing_a_listener_resets_unaccepted_connections() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7005);
        let listener = lo.stack.tcp_socket(Family::V4);
        lo.stack.bind(listener, addr).unwrap();
        lo.stack.listen(listener, 4).unwrap();
        let client = lo.stack.tcp_socket(Family::V4);
        assert_eq!(lo.stack.connect(client, addr), Err(NetError::InProgress));
        lo.run(5);
        lo.stack.close(listener).unwrap();
        lo.run(5);
        assert_eq!(
            lo.stack.take_error(client).unwrap(),
            Some(NetError::ConnReset)
        );
    }

    #[test]
    fn bulk_transfer_over_loopback_arrives_intact() {
        let mut lo = Lo::new();
        let (_, client, server) = lo.pair(SocketAddr::new(LO4, 7006));
        let data: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
        let mut buf = vec![0u8; 256 * 1024];
        let mut polls = 0;
        while got.len() < data.len() {
            if let Ok(n) = lo.stack.send(client, &data[sent..]) {
                sent += n;
            }
            while let Ok(n) = lo.stack.recv(server, &mut buf, false) {
                got.extend_from_slice(&buf[..n]);
            }
            lo.run(1);
            polls += 1;
            assert!(polls < 10_000, "stalled at {} bytes", got.len());
        }
        assert!(got == data);
    }

    #[test]
    fn poll_reports_the_sockets_whose_readiness_changed() {
        let mut lo = Lo::new();
        let addr = SocketAddr::new(LO4, 7007);
        let (listener, client, server) = lo.pair(addr);
        // Sockets new to the cache (or touched by a call) count as changed once.
        lo.run(1);
        lo.stack.take_changed();
        lo.run(1);
        assert!(lo.stack.take_changed().is_empty());
        lo.stack.send(client, b"x").unwrap();
        lo.run(2);
        let changed = lo.stack.take_changed();
        assert!(changed.contains(&server), "{changed:?}");
        assert!(!changed.contains(&listener));
        let mut buf = [0u8; 1];
        lo.stack.recv(server, &mut buf, false).unwrap();
        lo.stack.send(client, b"y").unwrap();
        lo.run(2);
        assert!(lo.stack.take_changed().contains(&server));
    }

    #[test]
    fn destinations_without_a_route_are_enetunreach() {
        let mut lo = Lo::new();
        let far = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 80);
        let t = lo.stack.tcp_socket(Family::V4);
        assert_eq!(lo.stack.connect(t, far), Err(NetError::NetUnreachable));
        let u = lo.stack.udp_socket(Family::V4);
        assert_eq!(
            lo.stack.send_to(u, b"x", Some(far)),
            Err(NetError::NetUnreachable)
        );
        assert_eq!(lo.stack.connect(u, far), Err(NetError::NetUnreachable));
        let t6 = lo.stack.tcp_socket(Family::V6);
        let far6 = SocketAddr::new(IpAddr::V6("2001:db8::1".parse().unwrap()), 80);
        assert_eq!(lo.stack.connect(t6, far6), Err(NetError::NetUnreachable));
    }

    #[test]
    fn source_address_is_never_loopback_for_the_outside() {
        let config = StackConfig {
            addrs: vec![
                (LO4, 8),
                (LO6, 128),
                (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 24),
                (IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)), 24),
                (IpAddr::V6("fd00::1".parse().unwrap()), 64),
            ],
            gateway_v4: Some(Ipv4Addr::new(10, 0, 0, 254)),
            gateway_v6: Some("fd00::fe".parse().unwrap()),
            mac: None,
            random_seed: 1,
        };
        let stack = Stack::new(Box::new(Loopback::new()), &config, Instant::ZERO).unwrap();
        let src = |dst: &str| stack.source_for(dst.parse().unwrap()).unwrap().to_string();
        assert_eq!(src("8.8.8.8"), "10.0.0.1");
        assert_eq!(src("192.168.1.9"), "192.168.1.5");
        assert_eq!(src("127.0.0.2"), "127.0.0.1");
        // smoltcp's own choice would be ::1 here (its longest-prefix rule).
        assert_eq!(src("2001:db8::1"), "fd00::1");
        assert_eq!(src("::1"), "::1");
        // Loopback addresses go last on the interface.
        assert!(stack.addrs()[0].0 == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn stack_can_move_between_sentry_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Stack>();
    }

    #[test]
    fn idle_stack_has_no_deadline() {
        let mut lo = Lo::new();
        lo.run(1);
        assert_eq!(lo.stack.poll_delay(lo.now), None);
        let u = lo.stack.udp_socket(Family::V4);
        lo.stack
            .send_to(u, b"x", Some(SocketAddr::new(LO4, 9)))
            .unwrap();
        assert_eq!(lo.stack.poll_delay(lo.now), Some(Duration::ZERO));
    }
}
