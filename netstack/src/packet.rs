//! The packet link: the stack on a host interface through an AF_PACKET socket.
//!
//! The sandbox has one smoltcp interface carrying both the loopback and the interface's
//! addresses, so [`PacketLink`] shows the stack bare IP packets ([`Medium::Ip`]) and does the
//! Ethernet layer itself ([`EtherLayer`]):
//! - Sending: a packet to a loopback address or one of the interface's own addresses comes back
//!   in as received (Linux's local delivery); any other goes to its next hop (on-link when the
//!   destination is in an address's subnet, else the family's gateway), whose MAC comes from the
//!   link's neighbor cache (ARP for IPv4, neighbor solicitations for IPv6; packets wait while an
//!   address resolves, see `neigh.rs`).
//! - Receiving: frames to our MAC, broadcast or multicast. ARP requests and neighbor
//!   solicitations for our addresses are answered here, and ARP/neighbor advertisements fill the
//!   cache; IPv4/IPv6 packets go up without their Ethernet header. Frames we sent are ignored.
//! - Offloads (`offload.rs`): PACKET_VNET_HDR on the socket. Received super-packets and partial
//!   checksums from the host are taken as the kernel marks them; sent TCP packets leave their
//!   checksum to the kernel, and IPv4 TCP segments up to 64 KiB go out as one GSO packet.
//!
//! Frames are read in batches of up to [`sys::RECV_BATCH`] with recvmmsg(2) and written in
//! batches with sendmmsg(2) when the stack flushes the link after each poll round.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use smoltcp::phy::{ChecksumCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use crate::hostif::{self, HostIfError, IfConfig};
use crate::link::{Link, Offloads};
use crate::neigh::{self, Neighbors, Resolve};
use crate::offload::{self, BufPool, IpInfo, VnetHdr, ETH_HDR_LEN, PROTO_ICMPV6, VNET_HDR_LEN};
use crate::stack::StackConfig;
use crate::sys;

/// Socket buffer size asked for in each direction (SO_RCVBUFFORCE when allowed): a few
/// windows' worth of 64 KiB super-packets.
const SOCKET_BUFFER: libc::c_int = 4 << 20;
/// Room in each receive buffer beyond the largest IP packet: vnet and Ethernet headers, a VLAN
/// tag, slack.
const RX_FRAME_EXTRA: usize = VNET_HDR_LEN + ETH_HDR_LEN + 64;
/// Largest IP packet read by default: a 64 KiB GSO packet. An interface with a larger GSO limit
/// (BIG TCP) gets buffers to match; frames that still do not fit are dropped and counted.
const RX_PACKET_MAX: usize = 65536;
/// Largest GSO packet any interface makes (the kernel's GSO_MAX_SIZE with BIG TCP).
const BIG_TCP_MAX: usize = 512 * 1024;
/// Largest IPv4 TCP super-packet handed to the kernel (what an IPv4 length field holds).
const TSO_MAX: usize = 65535;
/// Frames waiting for the socket (it was full) before new ones are dropped.
const TX_QUEUE_MAX: usize = 4096;
/// Socket batches read per `recv` when they brought nothing for the stack (ARP only, say).
const RECV_ROUNDS: usize = 4;
/// How soon to retry when the socket would not take more frames.
const SEND_RETRY: Duration = Duration::from_millis(1);

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
// PACKET_IGNORE_OUTGOING (linux/if_packet.h, 4.20+).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
// sll_pkttype values (linux/if_packet.h).
const PACKET_HOST: u8 = 0;
const PACKET_BROADCAST: u8 = 1;
const PACKET_MULTICAST: u8 = 2;

/// Why opening a packet link failed.
#[derive(Debug, thiserror::Error)]
pub enum PacketLinkError {
    /// The interface could not be read.
    #[error("cannot read interface {name}")]
    Probe {
        /// The interface.
        name: String,
        /// What went wrong.
        #[source]
        source: HostIfError,
    },
    /// The interface is not an Ethernet device the link can drive.
    #[error("interface {0} is not an Ethernet interface")]
    NotEthernet(String),
    /// The interface is down.
    #[error("interface {0} is down")]
    Down(String),
    /// The packet socket could not be opened or bound.
    #[error("cannot open a packet socket on interface {index}")]
    Socket {
        /// The interface index.
        index: u32,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A socket option the link needs was refused.
    #[error("cannot set {option} on the packet socket")]
    SocketOption {
        /// The option.
        option: &'static str,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The interface's addresses could not be taken from the host.
    #[error("cannot take the addresses of interface {name}")]
    TakeAddrs {
        /// The interface.
        name: String,
        /// What went wrong.
        #[source]
        source: HostIfError,
    },
}

/// Counters of a packet link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames read from the socket.
    pub rx_frames: u64,
    /// IP packets handed to the stack from the wire.
    pub rx_packets: u64,
    /// Frames dropped on receipt: malformed, truncated, bad checksum, unknown type.
    pub rx_dropped: u64,
    /// Frames written to the socket.
    pub tx_frames: u64,
    /// Packets dropped on the way out: no route, unresolved next hop, full queues, errors.
    pub tx_dropped: u64,
    /// Packets delivered locally (loopback and own addresses).
    pub looped: u64,
    /// ARP requests and neighbor solicitations sent.
    pub probes_sent: u64,
    /// ARP replies and neighbor advertisements sent.
    pub answers_sent: u64,
}

/// A frame on its way out: vnet and Ethernet headers, then the packet.
struct Outgoing {
    head: [u8; VNET_HDR_LEN + ETH_HDR_LEN],
    packet: Vec<u8>,
}

impl Outgoing {
    fn new(vnet: VnetHdr, src: [u8; 6], ethertype: u16, packet: Vec<u8>) -> Self {
        let mut head = [0u8; VNET_HDR_LEN + ETH_HDR_LEN];
        head[..VNET_HDR_LEN].copy_from_slice(&vnet.emit());
        head[VNET_HDR_LEN + 6..VNET_HDR_LEN + 12].copy_from_slice(&src);
        head[VNET_HDR_LEN + 12..].copy_from_slice(&ethertype.to_be_bytes());
        Self { head, packet }
    }

    fn set_dst(&mut self, mac: [u8; 6]) {
        self.head[VNET_HDR_LEN..VNET_HDR_LEN + 6].copy_from_slice(&mac);
    }
}

impl neigh::Held for Outgoing {
    fn held_bytes(&self) -> usize {
        self.packet.len()
    }
}

/// The interface's addresses and routes, as the link needs them.
struct Addrs {
    mac: [u8; 6],
    v4: Vec<(Ipv4Addr, u8)>,
    v6: Vec<(Ipv6Addr, u8)>,
    gateway_v4: Option<Ipv4Addr>,
    gateway_v6: Option<Ipv6Addr>,
}

fn in_subnet_v4(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(addr) & mask == u32::from(net) & mask
}

fn in_subnet_v6(addr: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    u128::from(addr) & mask == u128::from(net) & mask
}

/// The solicited-node multicast address of `addr` (ff02::1:ffXX:XXXX).
fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let low = u128::from(addr) & 0x00ff_ffff;
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000u128 | low)
}

/// The Ethernet multicast address of an IPv6 multicast address (33:33 and its last 32 bits).
fn multicast_mac_v6(addr: Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The Ethernet multicast address of an IPv4 multicast address (01:00:5e and its last 23 bits).
fn multicast_mac_v4(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

impl Addrs {
    fn from_config(config: &IfConfig) -> Self {
        let mut addrs = Self {
            mac: config.mac,
            v4: Vec::new(),
            v6: Vec::new(),
            gateway_v4: config.gateway_v4,
            gateway_v6: config.gateway_v6,
        };
        for &(ip, prefix) in &config.addrs {
            match ip {
                IpAddr::V4(v4) => addrs.v4.push((v4, prefix)),
                IpAddr::V6(v6) => addrs.v6.push((v6, prefix)),
            }
        }
        addrs
    }

    fn has_v4(&self, ip: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(a, _)| a == ip)
    }

    fn has_v6(&self, ip: Ipv6Addr) -> bool {
        self.v6.iter().any(|&(a, _)| a == ip)
    }

    /// Whether a packet to `dst` stays in this host: loopback or one of our addresses.
    fn is_local(&self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(v4) => v4.is_loopback() || self.has_v4(v4),
            IpAddr::V6(v6) => v6.is_loopback() || self.has_v6(v6),
        }
    }

    /// The MAC of a broadcast or multicast destination.
    fn group_mac(&self, dst: IpAddr) -> Option<[u8; 6]> {
        match dst {
            IpAddr::V4(v4) if v4.is_broadcast() => Some(BROADCAST),
            IpAddr::V4(v4) if v4.is_multicast() => Some(multicast_mac_v4(v4)),
            IpAddr::V4(v4) => self
                .v4
                .iter()
                .any(|&(a, p)| {
                    p < 31 && in_subnet_v4(v4, a, p) && {
                        let host = u32::MAX >> p;
                        u32::from(v4) & host == host
                    }
                })
                .then_some(BROADCAST),
            IpAddr::V6(v6) if v6.is_multicast() => Some(multicast_mac_v6(v6)),
            IpAddr::V6(_) => None,
        }
    }

    /// The next hop towards `dst`: itself when on-link, else the family's gateway.
    fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(v4) => {
                if self.v4.iter().any(|&(a, p)| in_subnet_v4(v4, a, p)) {
                    Some(dst)
                } else {
                    self.gateway_v4.map(IpAddr::V4)
                }
            }
            IpAddr::V6(v6) => {
                let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
                if link_local || self.v6.iter().any(|&(a, p)| in_subnet_v6(v6, a, p)) {
                    Some(dst)
                } else {
                    self.gateway_v6.map(IpAddr::V6)
                }
            }
        }
    }

    /// Our IPv4 address to speak ARP to `target` from: one in its subnet, else the first.
    fn source_v4(&self, target: Ipv4Addr) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .find(|&&(a, p)| in_subnet_v4(target, a, p))
            .or(self.v4.first())
            .map(|&(a, _)| a)
    }

    /// Our IPv6 address to solicit `target` from: one in its subnet, else the first.
    fn source_v6(&self, target: Ipv6Addr) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .find(|&&(a, p)| in_subnet_v6(target, a, p))
            .or(self.v6.first())
            .map(|&(a, _)| a)
    }
}

/// The Ethernet layer of a packet link, without the socket: routing, local delivery, the
/// neighbor cache and the offload headers. [`PacketLink`] moves its frames.
pub(crate) struct EtherLayer {
    addrs: Addrs,
    now: Instant,
    /// Packets delivered locally, for the stack.
    loopback: VecDeque<Vec<u8>>,
    /// Packets received from the wire, for the stack.
    rx: VecDeque<Vec<u8>>,
    /// Frames ready to be written.
    tx: VecDeque<Outgoing>,
    neighbors: Neighbors<Outgoing>,
    /// Received neighbor discovery packets, answered after the frame is parsed.
    ndp: Vec<Vec<u8>>,
    /// Buffers of sent and consumed packets, for the next ones.
    pool: BufPool,
    stats: PacketStats,
}

impl EtherLayer {
    fn new(config: &IfConfig) -> Self {
        Self {
            addrs: Addrs::from_config(config),
            now: Instant::ZERO,
            loopback: VecDeque::new(),
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            neighbors: Neighbors::new(),
            ndp: Vec::new(),
            pool: BufPool::default(),
            stats: PacketStats::default(),
        }
    }

    fn push_tx(&mut self, frame: Outgoing) {
        if self.tx.len() >= TX_QUEUE_MAX {
            self.stats.tx_dropped += 1;
        } else {
            self.tx.push_back(frame);
        }
    }

    /// Takes an IP packet from the stack. `mss`: split it in segments of this payload size.
    fn egress(&mut self, mut packet: Vec<u8>, mss: Option<u16>) {
        let Some(info) = offload::ip_info(&packet) else {
            self.stats.tx_dropped += 1;
            return;
        };
        if self.addrs.is_local(info.dst) {
            self.stats.looped += 1;
            self.loopback.push_back(packet);
            return;
        }
        let vnet = offload::tx_prepare(&mut packet, &info, mss);
        let ethertype = match info.dst {
            IpAddr::V4(_) => ETHERTYPE_IPV4,
            IpAddr::V6(_) => ETHERTYPE_IPV6,
        };
        let mut frame = Outgoing::new(vnet, self.addrs.mac, ethertype, packet);
        if let Some(mac) = self.addrs.group_mac(info.dst) {
            frame.set_dst(mac);
            self.push_tx(frame);
            return;
        }
        let Some(hop) = self.addrs.next_hop(info.dst) else {
            self.stats.tx_dropped += 1;
            return;
        };
        match self.neighbors.resolve(hop, frame, self.now) {
            (Resolve::Ready(mac), Some(mut frame)) => {
                frame.set_dst(mac);
                self.push_tx(frame);
            }
            (Resolve::ReadyProbe(mac), Some(mut frame)) => {
                frame.set_dst(mac);
                self.push_tx(frame);
                self.probe(hop);
            }
            (Resolve::QueuedProbe, _) => self.probe(hop),
            (Resolve::Queued, _) => {}
            _ => self.stats.tx_dropped += 1,
        }
    }

    /// Sends an ARP request or a neighbor solicitation for `ip`.
    fn probe(&mut self, ip: IpAddr) {
        let mac = self.addrs.mac;
        match ip {
            IpAddr::V4(target) => {
                let Some(source) = self.addrs.source_v4(target) else {
                    return;
                };
                let repr = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr: EthernetAddress(mac),
                    source_protocol_addr: source,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: target,
                };
                self.send_arp(&repr, BROADCAST);
            }
            IpAddr::V6(target) => {
                let Some(source) = self.addrs.source_v6(target) else {
                    return;
                };
                let dst = solicited_node(target);
                let ns = NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(RawHardwareAddress::from(EthernetAddress(mac))),
                };
                self.send_ndisc(source, dst, &ns, multicast_mac_v6(dst));
            }
        }
        self.stats.probes_sent += 1;
    }

    fn send_arp(&mut self, repr: &ArpRepr, dst: [u8; 6]) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        let mut frame = Outgoing::new(VnetHdr::default(), self.addrs.mac, ETHERTYPE_ARP, buf);
        frame.set_dst(dst);
        self.push_tx(frame);
    }

    fn send_ndisc(&mut self, src: Ipv6Addr, dst: Ipv6Addr, repr: &NdiscRepr, mac: [u8; 6]) {
        let icmp = Icmpv6Repr::Ndisc(*repr);
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let mut buf = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        let Some(payload) = buf.get_mut(ip.buffer_len()..) else {
            return;
        };
        icmp.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(payload),
            &ChecksumCapabilities::default(),
        );
        let mut frame = Outgoing::new(VnetHdr::default(), self.addrs.mac, ETHERTYPE_IPV6, buf);
        frame.set_dst(mac);
        self.push_tx(frame);
    }

    /// Records `ip` at `mac` and sends what waited for it.
    fn learn(&mut self, ip: IpAddr, mac: [u8; 6], create: bool) {
        let released = self.neighbors.learn(ip, mac, self.now, create);
        for mut frame in released {
            frame.set_dst(mac);
            self.push_tx(frame);
        }
    }

    /// Runs the neighbor timers.
    fn set_now(&mut self, now: Instant) {
        self.now = now;
        if self.neighbors.next_deadline().is_some_and(|at| at <= now) {
            let expired = self.neighbors.expire(now);
            self.stats.tx_dropped += expired.dropped as u64;
            for ip in expired.probe {
                self.probe(ip);
            }
        }
    }

    /// Takes in one received frame: vnet header, Ethernet header, payload.
    fn ingress(&mut self, frame: &[u8], pkttype: u8) {
        if !matches!(pkttype, PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST) {
            // Our own frames (PACKET_OUTGOING) and other hosts' (PACKET_OTHERHOST).
            return;
        }
        self.stats.rx_frames += 1;
        let parsed = (|| {
            let vnet = VnetHdr::parse(frame)?;
            let eth = frame.get(VNET_HDR_LEN..)?;
            let dst: [u8; 6] = eth.get(..6)?.try_into().ok()?;
            let src: [u8; 6] = eth.get(6..12)?.try_into().ok()?;
            let ethertype = u16::from_be_bytes(eth.get(12..14)?.try_into().ok()?);
            Some((vnet, dst, src, ethertype, eth.get(ETH_HDR_LEN..)?))
        })();
        let Some((vnet, dst, src, ethertype, payload)) = parsed else {
            self.stats.rx_dropped += 1;
            return;
        };
        if (dst != self.addrs.mac && dst[0] & 1 == 0) || src == self.addrs.mac {
            return;
        }
        match ethertype {
            ETHERTYPE_ARP => self.arp_in(payload),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                let (rx, ndp, stats) = (&mut self.rx, &mut self.ndp, &mut self.stats);
                let result = offload::rx_packets(vnet, payload, &mut self.pool, &mut |packet| {
                    if is_ndisc(&packet) {
                        ndp.push(packet);
                    } else {
                        stats.rx_packets += 1;
                        rx.push_back(packet);
                    }
                });
                if result.is_err() {
                    self.stats.rx_dropped += 1;
                }
                for packet in std::mem::take(&mut self.ndp) {
                    self.ndisc_in(&packet, src);
                    self.pool.give(packet);
                }
            }
            _ => {}
        }
    }

    fn arp_in(&mut self, payload: &[u8]) {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            self.stats.rx_dropped += 1;
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return;
        };
        let for_us = self.addrs.has_v4(tpa);
        if !spa.is_unspecified() && sha.is_unicast() {
            // As Linux: a request for us creates an entry for its sender; anything else only
            // refreshes an entry we have.
            let create = for_us && operation == ArpOperation::Request;
            self.learn(IpAddr::V4(spa), sha.0, create);
        }
        if for_us && operation == ArpOperation::Request {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(self.addrs.mac),
                source_protocol_addr: tpa,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            self.send_arp(&reply, sha.0);
            self.stats.answers_sent += 1;
        }
    }

    fn ndisc_in(&mut self, packet: &[u8], frame_src: [u8; 6]) {
        let Ok(ip) = Ipv6Packet::new_checked(packet) else {
            return;
        };
        let Ok(ip_repr) = Ipv6Repr::parse(&ip) else {
            return;
        };
        if ip_repr.hop_limit != 255 {
            // Neighbor discovery from off-link: ignored (RFC 4861 7.1).
            return;
        }
        let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
            return;
        };
        let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
        let Ok(Icmpv6Repr::Ndisc(repr)) =
            Icmpv6Repr::parse(&src, &dst, &icmp, &ChecksumCapabilities::default())
        else {
            self.stats.rx_dropped += 1;
            return;
        };
        let mac_of = |lladdr: Option<RawHardwareAddress>| -> Option<[u8; 6]> {
            lladdr.and_then(|l| <[u8; 6]>::try_from(l.as_bytes()).ok())
        };
        match repr {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                if !self.addrs.has_v6(target_addr) {
                    return;
                }
                let sender_mac = mac_of(lladdr);
                if !src.is_unspecified() {
                    if let Some(mac) = sender_mac {
                        self.learn(IpAddr::V6(src), mac, true);
                    }
                }
                let (reply_to, reply_mac, flags) = if src.is_unspecified() {
                    // Duplicate address detection: answer all nodes.
                    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                    (all, multicast_mac_v6(all), NdiscNeighborFlags::OVERRIDE)
                } else {
                    (
                        src,
                        sender_mac.unwrap_or(frame_src),
                        NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                    )
                };
                let advert = NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr,
                    lladdr: Some(RawHardwareAddress::from(EthernetAddress(self.addrs.mac))),
                };
                self.send_ndisc(target_addr, reply_to, &advert, reply_mac);
                self.stats.answers_sent += 1;
            }
            NdiscRepr::NeighborAdvert {
                target_addr,
                lladdr,
                ..
            } => {
                let mac = mac_of(lladdr).unwrap_or(frame_src);
                self.learn(IpAddr::V6(target_addr), mac, false);
            }
            // Router discovery and redirects: the link has static routes.
            _ => {}
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        self.neighbors.next_deadline()
    }
}

/// Whether an IPv6 packet is neighbor discovery (ICMPv6 types 133 to 137), which the link
/// handles itself.
fn is_ndisc(packet: &[u8]) -> bool {
    let Some(IpInfo {
        proto: PROTO_ICMPV6,
        l4_offset,
        dst: IpAddr::V6(_),
        ..
    }) = offload::ip_info(packet)
    else {
        return false;
    };
    packet
        .get(l4_offset)
        .is_some_and(|t| (133..=137).contains(t))
}

/// A [`Link`] on a host interface through an AF_PACKET socket. See the module doc.
pub struct PacketLink {
    fd: OwnedFd,
    mtu: usize,
    tso: Option<NonZeroUsize>,
    batch: sys::RecvBatch,
    layer: EtherLayer,
    /// Set when the socket would not take more frames: retry then.
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for PacketLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketLink")
            .field("fd", &self.fd)
            .field("mtu", &self.mtu)
            .field("stats", &self.layer.stats)
            .finish()
    }
}

impl PacketLink {
    /// Opens a link on interface `ifname` of the calling thread's network namespace: reads its
    /// configuration ([`hostif::probe`]), opens the packet socket, then takes the interface's
    /// addresses off the host ([`hostif::remove_addrs`]; IPv6 link-local ones stay). Returns
    /// the link and the stack configuration to go with it: the interface's addresses, the
    /// loopback's, the gateways and the MAC.
    pub fn open(ifname: &str, random_seed: u64) -> Result<(Self, StackConfig), PacketLinkError> {
        let config = hostif::probe(ifname).map_err(|source| PacketLinkError::Probe {
            name: ifname.to_owned(),
            source,
        })?;
        if config.loopback || config.mac == [0; 6] || config.mac[0] & 1 != 0 {
            return Err(PacketLinkError::NotEthernet(config.name));
        }
        if !config.up {
            return Err(PacketLinkError::Down(config.name));
        }
        let fd = Self::open_socket(config.index)?;
        let link = Self::from_fd(fd, &config)?;
        hostif::remove_addrs(config.index, &config.addrs).map_err(|source| {
            PacketLinkError::TakeAddrs {
                name: config.name.clone(),
                source,
            }
        })?;
        Ok((link, config.stack_config(random_seed)))
    }

    /// A packet socket bound to interface `index`, for [`PacketLink::from_fd`]; opened in the
    /// interface's network namespace, it may be used from any other.
    pub fn open_socket(index: u32) -> Result<OwnedFd, PacketLinkError> {
        let fail = |source| PacketLinkError::Socket { index, source };
        let fd = sys::packet_socket().map_err(fail)?;
        sys::packet_bind(fd.as_fd(), index).map_err(fail)?;
        Ok(fd)
    }

    /// A link over `fd`, a packet socket bound to `config`'s interface (as from
    /// [`PacketLink::open_socket`]). Sets the options the link relies on: non-blocking,
    /// PACKET_VNET_HDR, ignoring its own frames, large buffers, the solicited-node multicast
    /// groups of its IPv6 addresses. Leaves the host's addresses alone.
    pub fn from_fd(fd: OwnedFd, config: &IfConfig) -> Result<Self, PacketLinkError> {
        let option = |option: &'static str| {
            move |source: std::io::Error| PacketLinkError::SocketOption { option, source }
        };
        let sock = fd.as_fd();
        sys::set_nonblocking(sock).map_err(option("O_NONBLOCK"))?;
        sys::set_int_option(sock, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)
            .map_err(option("PACKET_VNET_HDR"))?;
        // Before 4.20 our own frames come back as PACKET_OUTGOING, which `ingress` skips too.
        let _ = sys::set_int_option(sock, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            // FORCE needs CAP_NET_ADMIN; without it the size is capped by rmem_max/wmem_max.
            if sys::set_int_option(sock, libc::SOL_SOCKET, force, SOCKET_BUFFER).is_err() {
                sys::set_int_option(sock, libc::SOL_SOCKET, plain, SOCKET_BUFFER)
                    .map_err(option("SO_RCVBUF/SO_SNDBUF"))?;
            }
        }
        for &(ip, _) in &config.addrs {
            if let IpAddr::V6(v6) = ip {
                let mac = multicast_mac_v6(solicited_node(v6));
                sys::packet_add_multicast(sock, config.index, mac)
                    .map_err(option("PACKET_ADD_MEMBERSHIP"))?;
            }
        }
        let mtu = usize::try_from(config.mtu).unwrap_or(1500);
        let gso_max = config
            .gso_max_size
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(TSO_MAX);
        let tso = NonZeroUsize::new(gso_max.min(TSO_MAX)).filter(|size| size.get() > mtu);
        Ok(Self {
            fd,
            mtu,
            tso,
            batch: sys::RecvBatch::new(gso_max.clamp(RX_PACKET_MAX, BIG_TCP_MAX) + RX_FRAME_EXTRA),
            layer: EtherLayer::new(config),
            retry_at: None,
        })
    }

    /// The link's counters.
    pub fn stats(&self) -> PacketStats {
        self.layer.stats
    }

    /// Reads one batch of frames from the socket into the layer. Returns how many came.
    fn fill(&mut self) -> usize {
        let count = match self.batch.recv(self.fd.as_fd()) {
            Ok(count) => count,
            Err(_) => {
                // ENETDOWN and the like: nothing to read now; the link recovers by itself.
                self.layer.stats.rx_dropped += 1;
                return 0;
            }
        };
        for i in 0..count {
            let Some((frame, meta)) = self.batch.frame(i) else {
                continue;
            };
            if meta.truncated {
                self.layer.stats.rx_dropped += 1;
                continue;
            }
            self.layer.ingress(frame, meta.pkttype);
        }
        count
    }
}

impl Link for PacketLink {
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        if let Some(packet) = self.layer.loopback.pop_front() {
            return Some(packet);
        }
        if let Some(packet) = self.layer.rx.pop_front() {
            return Some(packet);
        }
        for _ in 0..RECV_ROUNDS {
            if self.fill() == 0 {
                break;
            }
            if let Some(packet) = self.layer.rx.pop_front() {
                return Some(packet);
            }
        }
        None
    }

    fn tx_buffer(&mut self, len: usize) -> Vec<u8> {
        self.layer.pool.take_zeroed(len)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.layer.pool.give(buf);
    }

    fn send(&mut self, packet: Vec<u8>) {
        self.layer.egress(packet, None);
    }

    fn send_segmented(&mut self, packet: Vec<u8>, mss: u16) {
        self.layer.egress(packet, Some(mss));
    }

    fn has_pending(&self) -> bool {
        !self.layer.loopback.is_empty() || !self.layer.rx.is_empty()
    }

    fn offloads(&self) -> Offloads {
        Offloads {
            rx_l4_checksum: true,
            tx_tcp_checksum: true,
            tcp4_segmentation: self.tso,
        }
    }

    fn set_now(&mut self, now: Instant) {
        self.layer.set_now(now);
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        match (self.layer.poll_at(), self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn flush(&mut self) {
        if self.retry_at.is_some() {
            return;
        }
        while !self.layer.tx.is_empty() {
            let (front, back) = self.layer.tx.as_slices();
            let chunk = if front.is_empty() { back } else { front };
            let mut frames: [(&[u8], &[u8]); sys::SEND_BATCH] = [(&[], &[]); sys::SEND_BATCH];
            let n = chunk.len().min(sys::SEND_BATCH);
            for (slot, out) in frames.iter_mut().zip(chunk) {
                *slot = (&out.head[..], &out.packet[..]);
            }
            match sys::send_batch(self.fd.as_fd(), &frames[..n]) {
                Ok(sent) => {
                    self.layer.stats.tx_frames += sent as u64;
                    let layer = &mut self.layer;
                    for frame in layer.tx.drain(..sent.min(layer.tx.len())) {
                        layer.pool.give(frame.packet);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.retry_at = Some(self.layer.now + SEND_RETRY);
                    return;
                }
                Err(_) => {
                    // The first frame was refused (too big, interface down, no buffer): drop
                    // it as a wire would, and go on with the rest.
                    self.layer.tx.pop_front();
                    self.layer.stats.tx_dropped += 1;
                }
            }
        }
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
    const OUR4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    const PEER4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    const GW4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 254);
    const OUR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);

    fn layer() -> EtherLayer {
        let config = IfConfig {
            name: "eth0".into(),
            index: 2,
            mac: OUR_MAC,
            mtu: 1500,
            up: true,
            loopback: false,
            gso_max_size: Some(65536),
            addrs: vec![(IpAddr::V4(OUR4), 24), (IpAddr::V6(OUR6), 64)],
            link_local_v6: vec![],
            gateway_v4: Some(GW4),
            gateway_v6: None,
        };
        let mut layer = EtherLayer::new(&config);
        layer.set_now(Instant::from_secs(100));
        layer
    }

    /// A UDP/IPv4 packet from `src` to `dst` (checksum left out, as IPv4 allows).
    fn udp4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0u8; 32];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&32u16.to_be_bytes());
        p[8] = 64;
        p[9] = offload::PROTO_UDP;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        p[20..22].copy_from_slice(&1000u16.to_be_bytes());
        p[22..24].copy_from_slice(&2000u16.to_be_bytes());
        p[24..26].copy_from_slice(&12u16.to_be_bytes());
        p[28..32].copy_from_slice(b"ping");
        p
    }

    /// A received frame: zero vnet header, Ethernet header, payload.
    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn arp(op: ArpOperation, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(sha),
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress(tha),
            target_protocol_addr: tpa,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        buf
    }

    fn sent(layer: &mut EtherLayer) -> Vec<Outgoing> {
        layer.tx.drain(..).collect()
    }

    fn dst_of(out: &Outgoing) -> [u8; 6] {
        out.head[VNET_HDR_LEN..VNET_HDR_LEN + 6].try_into().unwrap()
    }

    fn ethertype_of(out: &Outgoing) -> u16 {
        u16::from_be_bytes(out.head[VNET_HDR_LEN + 12..].try_into().unwrap())
    }

    #[test]
    fn packets_to_ourselves_are_delivered_locally() {
        let mut l = layer();
        l.egress(udp4(OUR4, Ipv4Addr::LOCALHOST), None);
        l.egress(udp4(OUR4, OUR4), None);
        assert_eq!(l.loopback.len(), 2);
        assert!(l.tx.is_empty());
    }

    #[test]
    fn arp_resolves_a_peer_and_releases_the_waiting_packet() {
        let mut l = layer();
        l.egress(udp4(OUR4, PEER4), None);
        let out = sent(&mut l);
        assert_eq!(out.len(), 1, "only the ARP request leaves");
        assert_eq!(dst_of(&out[0]), BROADCAST);
        assert_eq!(ethertype_of(&out[0]), ETHERTYPE_ARP);
        let req = ArpRepr::parse(&ArpPacket::new_checked(&out[0].packet[..]).unwrap()).unwrap();
        assert!(matches!(
            req,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_protocol_addr: OUR4,
                target_protocol_addr: PEER4,
                ..
            }
        ));
        let reply = arp(ArpOperation::Reply, PEER_MAC, PEER4, OUR_MAC, OUR4);
        l.ingress(
            &frame(OUR_MAC, PEER_MAC, ETHERTYPE_ARP, &reply),
            PACKET_HOST,
        );
        let out = sent(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(dst_of(&out[0]), PEER_MAC);
        assert_eq!(ethertype_of(&out[0]), ETHERTYPE_IPV4);
        assert_eq!(out[0].packet, udp4(OUR4, PEER4));
        // Now known: straight out.
        l.egress(udp4(OUR4, PEER4), None);
        assert_eq!(dst_of(&sent(&mut l)[0]), PEER_MAC);
    }

    #[test]
    fn off_link_destinations_go_to_the_gateway() {
        let mut l = layer();
        l.learn(IpAddr::V4(GW4), GW_MAC, true);
        l.egress(udp4(OUR4, Ipv4Addr::new(8, 8, 8, 8)), None);
        let out = sent(&mut l);
        assert_eq!(dst_of(&out[0]), GW_MAC);
        // No IPv6 gateway: dropped.
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 59;
        p[8..24].copy_from_slice(&OUR6.octets());
        p[24..40].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        l.egress(p, None);
        assert!(l.tx.is_empty());
        assert_eq!(l.stats.tx_dropped, 1);
    }

    #[test]
    fn arp_requests_for_our_address_are_answered_and_teach_us_the_sender() {
        let mut l = layer();
        let req = arp(ArpOperation::Request, PEER_MAC, PEER4, [0; 6], OUR4);
        l.ingress(
            &frame(BROADCAST, PEER_MAC, ETHERTYPE_ARP, &req),
            PACKET_BROADCAST,
        );
        let out = sent(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(dst_of(&out[0]), PEER_MAC);
        let reply = ArpRepr::parse(&ArpPacket::new_checked(&out[0].packet[..]).unwrap()).unwrap();
        assert_eq!(
            reply,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(OUR_MAC),
                source_protocol_addr: OUR4,
                target_hardware_addr: EthernetAddress(PEER_MAC),
                target_protocol_addr: PEER4,
            }
        );
        assert_eq!(l.neighbors.lookup(IpAddr::V4(PEER4)), Some(PEER_MAC));
        // Someone else's address: neither answered nor learned.
        let other = arp(ArpOperation::Request, GW_MAC, GW4, [0; 6], PEER4);
        l.ingress(
            &frame(BROADCAST, GW_MAC, ETHERTYPE_ARP, &other),
            PACKET_BROADCAST,
        );
        assert!(l.tx.is_empty());
        assert!(!l.neighbors.knows(IpAddr::V4(GW4)));
    }

    fn ndisc_packet(src: Ipv6Addr, dst: Ipv6Addr, repr: &NdiscRepr) -> Vec<u8> {
        let mut l = layer();
        l.send_ndisc(src, dst, repr, [0; 6]);
        l.tx.pop_front().unwrap().packet
    }

    #[test]
    fn neighbor_solicitations_for_our_address_are_answered() {
        let mut l = layer();
        let ns = NdiscRepr::NeighborSolicit {
            target_addr: OUR6,
            lladdr: Some(RawHardwareAddress::from(EthernetAddress(PEER_MAC))),
        };
        let dst = solicited_node(OUR6);
        let packet = ndisc_packet(PEER6, dst, &ns);
        l.ingress(
            &frame(multicast_mac_v6(dst), PEER_MAC, ETHERTYPE_IPV6, &packet),
            PACKET_MULTICAST,
        );
        assert!(l.rx.is_empty(), "neighbor discovery stays in the link");
        let out = sent(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(dst_of(&out[0]), PEER_MAC);
        let ip = Ipv6Packet::new_checked(&out[0].packet[..]).unwrap();
        let ip_repr = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!(
            (ip_repr.src_addr, ip_repr.dst_addr, ip_repr.hop_limit),
            (OUR6, PEER6, 255)
        );
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&OUR6, &PEER6, &icmp, &ChecksumCapabilities::default());
        assert_eq!(
            repr.unwrap(),
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                target_addr: OUR6,
                lladdr: Some(RawHardwareAddress::from(EthernetAddress(OUR_MAC))),
            })
        );
        assert_eq!(l.neighbors.lookup(IpAddr::V6(PEER6)), Some(PEER_MAC));
    }

    #[test]
    fn neighbor_solicitation_resolves_an_ipv6_peer() {
        let mut l = layer();
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&8u16.to_be_bytes());
        p[6] = 59; // no next header
        p[7] = 64;
        p[8..24].copy_from_slice(&OUR6.octets());
        p[24..40].copy_from_slice(&PEER6.octets());
        l.egress(p.clone(), None);
        let out = sent(&mut l);
        assert_eq!(out.len(), 1);
        let dst = solicited_node(PEER6);
        assert_eq!(dst_of(&out[0]), multicast_mac_v6(dst));
        assert_eq!(dst_of(&out[0]), [0x33, 0x33, 0xff, 0, 0, 2]);
        let na = NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED,
            target_addr: PEER6,
            lladdr: Some(RawHardwareAddress::from(EthernetAddress(PEER_MAC))),
        };
        let packet = ndisc_packet(PEER6, OUR6, &na);
        l.ingress(
            &frame(OUR_MAC, PEER_MAC, ETHERTYPE_IPV6, &packet),
            PACKET_HOST,
        );
        let out = sent(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(dst_of(&out[0]), PEER_MAC);
        assert_eq!(out[0].packet, p);
    }

    #[test]
    fn unanswered_resolution_drops_after_three_probes() {
        let mut l = layer();
        l.egress(udp4(OUR4, PEER4), None);
        let start = l.now;
        for i in 1..=3 {
            l.set_now(start + neigh::RETRANSMIT * i);
        }
        let out = sent(&mut l);
        assert_eq!(out.len(), 3, "three ARP requests");
        assert!(out.iter().all(|o| ethertype_of(o) == ETHERTYPE_ARP));
        assert_eq!(l.stats.tx_dropped, 1);
        assert_eq!(l.poll_at(), None);
    }

    #[test]
    fn own_and_foreign_frames_are_ignored() {
        let mut l = layer();
        let p = udp4(PEER4, OUR4);
        l.ingress(&frame(OUR_MAC, PEER_MAC, ETHERTYPE_IPV4, &p), 4); // PACKET_OUTGOING
        l.ingress(&frame(GW_MAC, PEER_MAC, ETHERTYPE_IPV4, &p), PACKET_HOST);
        l.ingress(&frame(OUR_MAC, OUR_MAC, ETHERTYPE_IPV4, &p), PACKET_HOST);
        assert!(l.rx.is_empty());
        l.ingress(&frame(OUR_MAC, PEER_MAC, ETHERTYPE_IPV4, &p), PACKET_HOST);
        assert_eq!(l.rx.pop_front(), Some(p));
    }

    #[test]
    fn tcp_leaves_with_a_partial_checksum_for_the_kernel() {
        let mut l = layer();
        l.learn(IpAddr::V4(PEER4), PEER_MAC, true);
        let mut p = udp4(OUR4, PEER4);
        p[9] = offload::PROTO_TCP;
        p.resize(60, 0);
        p[2..4].copy_from_slice(&60u16.to_be_bytes());
        p[32] = 5 << 4;
        l.egress(p, Some(1000));
        let out = sent(&mut l);
        let vnet = VnetHdr::parse(&out[0].head).unwrap();
        assert_eq!((vnet.flags, vnet.gso_type, vnet.gso_size), (1, 1, 1000));
        assert_eq!((vnet.csum_start, vnet.csum_offset), (34, 16));
        assert_ne!(&out[0].packet[36..38], &[0, 0]);
    }

    #[test]
    fn subnet_broadcast_goes_to_every_host() {
        let mut l = layer();
        l.egress(udp4(OUR4, Ipv4Addr::new(10, 1, 0, 255)), None);
        assert_eq!(dst_of(&sent(&mut l)[0]), BROADCAST);
    }

    #[test]
    fn random_frames_never_panic() {
        let mut l = layer();
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let req = arp(ArpOperation::Request, PEER_MAC, PEER4, [0; 6], OUR4);
        let ns = ndisc_packet(
            PEER6,
            solicited_node(OUR6),
            &NdiscRepr::NeighborSolicit {
                target_addr: OUR6,
                lladdr: Some(RawHardwareAddress::from(EthernetAddress(PEER_MAC))),
            },
        );
        let seeds = [
            frame(BROADCAST, PEER_MAC, ETHERTYPE_ARP, &req),
            frame(OUR_MAC, PEER_MAC, ETHERTYPE_IPV6, &ns),
            frame(OUR_MAC, PEER_MAC, ETHERTYPE_IPV4, &udp4(PEER4, OUR4)),
        ];
        for round in 0..30_000usize {
            let mut buf = seeds[round % 3].clone();
            for _ in 0..(next() % 6) {
                let at = usize::try_from(next()).unwrap() % buf.len();
                buf[at] = next().to_le_bytes()[0];
            }
            buf.truncate(usize::try_from(next()).unwrap() % (buf.len() + 1));
            l.ingress(&buf, PACKET_HOST);
            l.rx.clear();
            l.tx.clear();
        }
    }
}
