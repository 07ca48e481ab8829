//! Checksum and segmentation offloads between the kernel and the packet link, through the
//! `virtio_net_hdr` that PACKET_VNET_HDR puts before every frame.
//!
//! Received: a frame the host built (a veth peer's TCP) may carry only a partial checksum
//! (NEEDS_CSUM: it never crossed a wire) or be a GSO super-packet of up to 64 KiB; a frame the
//! kernel already checked says DATA_VALID. The stack verifies no TCP/UDP checksum itself: partial
//! and valid ones are trusted, others are verified here. A TCP super-packet that fits an IP
//! length field goes up whole (the stack takes it like one large segment, which is what makes
//! receiving fast); larger ones and UDP super-packets are split at their segment size.
//!
//! Sent: TCP checksums are left to the kernel (NEEDS_CSUM with the pseudo-header sum in place),
//! and large IPv4 TCP segments from the stack go out as one GSO packet the kernel splits (or
//! hands whole to a veth peer).
//!
//! Everything here parses untrusted bytes with checked accesses: bad input is dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of `struct virtio_net_hdr`.
pub(crate) const VNET_HDR_LEN: usize = 10;
/// Length of an Ethernet header without VLAN tag.
pub(crate) const ETH_HDR_LEN: usize = 14;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP: u8 = 3;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// `struct virtio_net_hdr` (host byte order, as packet sockets use it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    pub(crate) flags: u8,
    pub(crate) gso_type: u8,
    pub(crate) hdr_len: u16,
    pub(crate) gso_size: u16,
    pub(crate) csum_start: u16,
    pub(crate) csum_offset: u16,
}

fn u16_be(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn put_u16_be(buf: &mut [u8], at: usize, value: u16) -> Option<()> {
    buf.get_mut(at..at + 2)?
        .copy_from_slice(&value.to_be_bytes());
    Some(())
}

impl VnetHdr {
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        let ne = |at: usize| -> Option<u16> {
            Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
        };
        Some(Self {
            flags: *buf.first()?,
            gso_type: *buf.get(1)?,
            hdr_len: ne(2)?,
            gso_size: ne(4)?,
            csum_start: ne(6)?,
            csum_offset: ne(8)?,
        })
    }

    pub(crate) fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut out = [0u8; VNET_HDR_LEN];
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        out
    }
}

/// One's-complement sum of `data` as big-endian 16-bit words, added to `acc`, not folded.
pub(crate) fn sum(data: &[u8], acc: u64) -> u64 {
    let mut acc = acc;
    let mut add = |word: u64| {
        let (s, carry) = acc.overflowing_add(word);
        acc = s + u64::from(carry);
    };
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        add(u64::from_be_bytes(word));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    add(u64::from_be_bytes(tail));
    acc
}

/// Folds a sum to 16 bits (one's complement, not inverted).
pub(crate) fn fold(sum: u64) -> u16 {
    let mut s = (sum >> 32) + (sum & 0xffff_ffff);
    s = (s >> 32) + (s & 0xffff_ffff);
    s = (s >> 16) + (s & 0xffff);
    s = (s >> 16) + (s & 0xffff);
    s = (s >> 16) + (s & 0xffff);
    // At most 0xffff after the folds above.
    u16::try_from(s).unwrap_or(u16::MAX)
}

/// Sum of the TCP/UDP pseudo-header.
pub(crate) fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    let mut acc = 0u64;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum(&s.octets(), acc);
            acc = sum(&d.octets(), acc);
        }
        (s, d) => {
            acc = sum(&v6_of(s).octets(), acc);
            acc = sum(&v6_of(d).octets(), acc);
        }
    }
    acc + u64::from(proto) + len as u64
}

fn v6_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Where an IP packet's transport header starts and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpInfo {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// Offset of the transport header (IPv6 extension headers skipped).
    pub(crate) l4_offset: usize,
    /// Transport protocol, or the extension header walking stopped at.
    pub(crate) proto: u8,
    /// Length of the packet by its header (0 when an IPv4 header says 0).
    pub(crate) len: usize,
    /// Hop limit / TTL.
    pub(crate) hop_limit: u8,
}

/// Parses the IP header of `packet`; `None` for anything but a well-formed IPv4/IPv6 header.
pub(crate) fn ip_info(packet: &[u8]) -> Option<IpInfo> {
    match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet.first()? & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl {
                return None;
            }
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpInfo {
                src: IpAddr::V4(Ipv4Addr::from(src)),
                dst: IpAddr::V4(Ipv4Addr::from(dst)),
                l4_offset: ihl,
                proto: *packet.get(9)?,
                len: usize::from(u16_be(packet, 2)?),
                hop_limit: *packet.get(8)?,
            })
        }
        6 => {
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            let mut next = *packet.get(6)?;
            let mut offset = 40;
            // Hop-by-hop, routing and destination options headers, a few at most.
            for _ in 0..4 {
                if !matches!(next, 0 | 43 | 60) {
                    break;
                }
                let len = (usize::from(*packet.get(offset + 1)?) + 1) * 8;
                next = *packet.get(offset)?;
                offset += len;
            }
            if packet.len() < offset {
                return None;
            }
            Some(IpInfo {
                src: IpAddr::V6(Ipv6Addr::from(src)),
                dst: IpAddr::V6(Ipv6Addr::from(dst)),
                l4_offset: offset,
                proto: next,
                len: 40 + usize::from(u16_be(packet, 4)?),
                hop_limit: *packet.get(7)?,
            })
        }
        _ => None,
    }
}

/// Where a transport protocol keeps its checksum.
fn csum_field(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        _ => None,
    }
}

/// Prepares an outgoing packet for the kernel and returns its vnet header: a TCP packet (whose
/// checksum the stack left zero) gets its pseudo-header sum and NEEDS_CSUM; with `mss`, it is a
/// super-packet for the kernel to split in segments of that payload size.
pub(crate) fn tx_prepare(packet: &mut [u8], info: &IpInfo, mss: Option<u16>) -> VnetHdr {
    if info.proto != PROTO_TCP {
        return VnetHdr::default();
    }
    let tcp_len = packet.len().saturating_sub(info.l4_offset);
    let pseudo = fold(pseudo_sum(info.src, info.dst, PROTO_TCP, tcp_len));
    if put_u16_be(packet, info.l4_offset + 16, pseudo).is_none() {
        return VnetHdr::default();
    }
    let header_len = packet
        .get(info.l4_offset + 12)
        .map_or(20, |b| usize::from(b >> 4) * 4);
    let start = u16::try_from(ETH_HDR_LEN + info.l4_offset).unwrap_or(u16::MAX);
    let mut hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: start,
        csum_offset: 16,
        ..VnetHdr::default()
    };
    if let Some(mss) = mss {
        hdr.gso_type = match info.dst {
            IpAddr::V4(_) => GSO_TCPV4,
            IpAddr::V6(_) => GSO_TCPV6,
        };
        hdr.gso_size = mss;
        hdr.hdr_len = start.saturating_add(u16::try_from(header_len).unwrap_or(0));
    }
    hdr
}

/// Packet buffers for reuse, so that 64 KiB packets do not cost an allocation (and the page
/// faults of a heap that grows and shrinks) each.
#[derive(Debug, Default)]
pub(crate) struct BufPool {
    bufs: Vec<Vec<u8>>,
}

impl BufPool {
    /// Buffers kept at most.
    const MAX: usize = 64;

    /// An empty buffer, recycled when one is at hand.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        match self.bufs.pop() {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::new(),
        }
    }

    /// A zeroed buffer of `len` bytes.
    pub(crate) fn take_zeroed(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.take();
        buf.resize(len, 0);
        buf
    }

    /// Keeps `buf` for reuse, unless enough are kept already.
    pub(crate) fn give(&mut self, buf: Vec<u8>) {
        if self.bufs.len() < Self::MAX && buf.capacity() > 0 {
            self.bufs.push(buf);
        }
    }
}

/// Why a received frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RxDrop {
    /// Not a well-formed IP packet, or cut short.
    Malformed,
    /// The TCP/UDP checksum is wrong.
    BadChecksum,
    /// A GSO type the link does not handle.
    UnknownGso,
}

/// Turns the IP packet `ip` of a received frame with vnet header `hdr` into packets for the
/// stack, passed to `out`.
pub(crate) fn rx_packets(
    hdr: VnetHdr,
    ip: &[u8],
    pool: &mut BufPool,
    out: &mut dyn FnMut(Vec<u8>),
) -> Result<(), RxDrop> {
    let info = ip_info(ip).ok_or(RxDrop::Malformed)?;
    let gso = hdr.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        let len = if info.len == 0 { ip.len() } else { info.len };
        let mut packet = pool.take();
        packet.extend_from_slice(ip.get(..len).ok_or(RxDrop::Malformed)?);
        if hdr.flags & F_NEEDS_CSUM != 0 {
            if csum_field(info.proto).is_none() {
                // The stack verifies this protocol's checksum itself: finish it.
                let start = usize::from(hdr.csum_start)
                    .checked_sub(ETH_HDR_LEN)
                    .ok_or(RxDrop::Malformed)?;
                complete_checksum(&mut packet, start, usize::from(hdr.csum_offset))
                    .ok_or(RxDrop::Malformed)?;
            }
        } else if hdr.flags & F_DATA_VALID == 0 && !l4_checksum_ok(&packet, &info) {
            return Err(RxDrop::BadChecksum);
        }
        out(packet);
        return Ok(());
    }
    let gso_size = usize::from(hdr.gso_size);
    match (gso, info.proto) {
        (GSO_TCPV4 | GSO_TCPV6, PROTO_TCP) => {
            let mut packet = pool.take();
            packet.extend_from_slice(ip);
            if info.len == packet.len() || set_ip_len(&mut packet, &info).is_some() {
                out(packet);
                Ok(())
            } else {
                pool.give(packet);
                segment(ip, &info, gso_size, pool, out)
            }
        }
        (GSO_UDP_L4 | GSO_UDP, PROTO_UDP) => segment(ip, &info, gso_size, pool, out),
        _ => Err(RxDrop::UnknownGso),
    }
}

/// Writes the one's complement of the sum from `start` to the end at `start + offset`.
fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> Option<()> {
    let covered = packet.get(start..)?;
    let csum = !fold(sum(covered, 0));
    put_u16_be(packet, start.checked_add(offset)?, csum)
}

/// Whether a TCP/UDP checksum is right (other protocols: the stack checks them).
fn l4_checksum_ok(packet: &[u8], info: &IpInfo) -> bool {
    let Some(field) = csum_field(info.proto) else {
        return true;
    };
    let Some(l4) = packet.get(info.l4_offset..) else {
        return false;
    };
    if info.proto == PROTO_UDP && info.src.is_ipv4() && u16_be(l4, field) == Some(0) {
        // An IPv4 UDP sender may leave the checksum out.
        return true;
    }
    if l4.len() < field + 2 {
        return false;
    }
    fold(sum(
        l4,
        pseudo_sum(info.src, info.dst, info.proto, l4.len()),
    )) == 0xffff
}

/// IPv4 header checksum, recomputed in place.
fn fix_ipv4_checksum(packet: &mut [u8], ihl: usize) -> Option<()> {
    put_u16_be(packet, 10, 0)?;
    let csum = !fold(sum(packet.get(..ihl)?, 0));
    put_u16_be(packet, 10, csum)
}

/// Sets the IP length field(s) of `packet` to its length.
fn set_ip_len(packet: &mut [u8], info: &IpInfo) -> Option<()> {
    match info.src {
        IpAddr::V4(_) => {
            put_u16_be(packet, 2, u16::try_from(packet.len()).ok()?)?;
            fix_ipv4_checksum(packet, usize::from(packet.first()? & 0x0f) * 4)
        }
        IpAddr::V6(_) => put_u16_be(
            packet,
            4,
            u16::try_from(packet.len().checked_sub(40)?).ok()?,
        ),
    }
}

/// Splits a super-packet in packets of `gso_size` payload bytes each, with the IP and transport
/// headers copied and fixed (lengths, IPv4 id and checksum, TCP sequence numbers and flags).
/// Transport checksums are left as they were: such packets come from the host and are trusted.
fn segment(
    ip: &[u8],
    info: &IpInfo,
    gso_size: usize,
    pool: &mut BufPool,
    out: &mut dyn FnMut(Vec<u8>),
) -> Result<(), RxDrop> {
    let l4 = info.l4_offset;
    let l4_len = match info.proto {
        PROTO_TCP => usize::from(ip.get(l4 + 12).ok_or(RxDrop::Malformed)? >> 4) * 4,
        _ => 8,
    };
    let headers = l4 + l4_len;
    let payload = ip.get(headers..).ok_or(RxDrop::Malformed)?;
    if gso_size == 0 || l4_len < 8 || (info.proto == PROTO_TCP && l4_len < 20) {
        return Err(RxDrop::Malformed);
    }
    let seq = ip
        .get(l4 + 4..l4 + 8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    let ident = u16_be(ip, 4).unwrap_or(0);
    let count = payload.len().div_ceil(gso_size);
    for (i, chunk) in payload.chunks(gso_size).enumerate() {
        let mut packet = pool.take();
        packet.extend_from_slice(ip.get(..headers).ok_or(RxDrop::Malformed)?);
        packet.extend_from_slice(chunk);
        let offset = i * gso_size;
        if info.src.is_ipv4() {
            // The id field wraps, as the kernel's segmentation does.
            let id = ident.wrapping_add(u16::try_from(i & 0xffff).unwrap_or(0));
            put_u16_be(&mut packet, 4, id).ok_or(RxDrop::Malformed)?;
        }
        set_ip_len(&mut packet, info).ok_or(RxDrop::Malformed)?;
        let l4_hdr = packet.get_mut(l4..headers).ok_or(RxDrop::Malformed)?;
        if info.proto == PROTO_TCP {
            // Sequence numbers wrap modulo 2^32.
            let seq = seq.wrapping_add(u32::try_from(offset & 0xffff_ffff).unwrap_or(0));
            l4_hdr[4..8].copy_from_slice(&seq.to_be_bytes());
            if i + 1 < count {
                l4_hdr[13] &= !0x09; // FIN and PSH only on the last segment
            }
            if i > 0 {
                l4_hdr[13] &= !0x80; // CWR only on the first
            }
        } else {
            let len = u16::try_from(8 + chunk.len()).map_err(|_| RxDrop::Malformed)?;
            l4_hdr[4..6].copy_from_slice(&len.to_be_bytes());
        }
        out(packet);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP packet 10.0.0.2:80 -> 10.0.0.1:5000 with `payload`, checksums right.
    fn tcp4(payload: &[u8], flags: u8) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&u16::try_from(total).unwrap_or(0).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_TCP;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        fix_ipv4_checksum(&mut p, 20).unwrap();
        p[20..22].copy_from_slice(&80u16.to_be_bytes());
        p[22..24].copy_from_slice(&5000u16.to_be_bytes());
        p[24..28].copy_from_slice(&1000u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[40..].copy_from_slice(payload);
        let info = ip_info(&p).unwrap();
        let csum = !fold(sum(
            &p[20..],
            pseudo_sum(info.src, info.dst, PROTO_TCP, total - 20),
        ));
        p[36..38].copy_from_slice(&csum.to_be_bytes());
        p
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        // An odd byte counts as the high half of a last word.
        assert_eq!(fold(sum(&[0x01], 0)), 0x0100);
    }

    #[test]
    fn untrusted_packets_are_verified_and_bad_ones_dropped() {
        let good = tcp4(b"hello", 0x18);
        let mut got = Vec::new();
        rx_packets(
            VnetHdr::default(),
            &good,
            &mut BufPool::default(),
            &mut |p| got.push(p),
        )
        .unwrap();
        assert_eq!(got, vec![good.clone()]);
        let mut bad = good.clone();
        bad[44] ^= 1;
        assert_eq!(
            rx_packets(
                VnetHdr::default(),
                &bad,
                &mut BufPool::default(),
                &mut |_| {}
            ),
            Err(RxDrop::BadChecksum)
        );
        // The kernel vouched for it: not checked again.
        let valid = VnetHdr {
            flags: F_DATA_VALID,
            ..VnetHdr::default()
        };
        assert_eq!(
            rx_packets(valid, &bad, &mut BufPool::default(), &mut |_| {}),
            Ok(())
        );
    }

    #[test]
    fn ethernet_padding_is_trimmed() {
        let mut padded = tcp4(b"", 0x10);
        padded.extend_from_slice(&[0; 6]);
        let mut got = Vec::new();
        rx_packets(
            VnetHdr::default(),
            &padded,
            &mut BufPool::default(),
            &mut |p| got.push(p),
        )
        .unwrap();
        assert_eq!(got[0].len(), 40);
    }

    #[test]
    fn tx_prepare_leaves_a_pseudo_header_sum_the_receiver_completes() {
        let mut packet = tcp4(b"payload!", 0x18);
        let expected = packet.clone();
        packet[36..38].copy_from_slice(&[0, 0]);
        let info = ip_info(&packet).unwrap();
        let hdr = tx_prepare(&mut packet, &info, None);
        assert_eq!(hdr.flags, F_NEEDS_CSUM);
        assert_eq!((hdr.csum_start, hdr.csum_offset), (34, 16));
        assert_eq!(hdr.gso_type, GSO_NONE);
        // What the kernel (or the peer's NIC) does with it gives the full checksum.
        complete_checksum(&mut packet, 20, 16).unwrap();
        assert_eq!(packet, expected);
        let hdr = tx_prepare(&mut packet, &info, Some(1000));
        assert_eq!(
            (hdr.gso_type, hdr.gso_size, hdr.hdr_len),
            (GSO_TCPV4, 1000, 54)
        );
        assert_eq!(VnetHdr::parse(&hdr.emit()), Some(hdr));
    }

    #[test]
    fn udp_super_packets_are_split_with_fixed_headers() {
        // IPv6 UDP, 3000 bytes of payload in 1200-byte datagrams.
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut p = vec![0u8; 48 + payload.len()];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
        p[6] = PROTO_UDP;
        p[7] = 64;
        p[8..24].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        p[48..].copy_from_slice(&payload);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            gso_size: 1200,
            ..VnetHdr::default()
        };
        let mut got = Vec::new();
        rx_packets(hdr, &p, &mut BufPool::default(), &mut |p| got.push(p)).unwrap();
        assert_eq!(got.len(), 3);
        let mut joined = Vec::new();
        for seg in &got {
            let info = ip_info(seg).unwrap();
            assert_eq!(info.len, seg.len());
            assert_eq!(
                u16_be(seg, 44),
                Some(u16::try_from(seg.len() - 40).unwrap())
            );
            joined.extend_from_slice(&seg[48..]);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn tcp_super_packets_beyond_64k_are_split_in_sequence() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        // Build the header with a small payload, then append the rest (lengths are wrong, as
        // a BIG TCP packet's are).
        let mut p = tcp4(b"", 0x19);
        p.extend_from_slice(&payload);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            gso_size: 1448,
            ..VnetHdr::default()
        };
        let mut got = Vec::new();
        rx_packets(hdr, &p, &mut BufPool::default(), &mut |p| got.push(p)).unwrap();
        assert_eq!(got.len(), 70_000usize.div_ceil(1448));
        let mut joined = Vec::new();
        for (i, seg) in got.iter().enumerate() {
            let info = ip_info(seg).unwrap();
            assert_eq!(info.len, seg.len());
            assert_eq!(fold(sum(&seg[..20], 0)), 0xffff, "ipv4 header checksum");
            let seq = u32::from_be_bytes(seg[24..28].try_into().unwrap());
            assert_eq!(seq as usize, 1000 + joined.len());
            let last = i + 1 == got.len();
            assert_eq!(seg[33] & 0x09 != 0, last, "FIN/PSH only on the last");
            joined.extend_from_slice(&seg[40..]);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn tcp_super_packets_that_fit_go_up_whole() {
        let payload = vec![7u8; 20_000];
        let mut p = tcp4(b"", 0x10);
        p.extend_from_slice(&payload);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            gso_size: 1448,
            ..VnetHdr::default()
        };
        let mut got = Vec::new();
        rx_packets(hdr, &p, &mut BufPool::default(), &mut |p| got.push(p)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(ip_info(&got[0]).unwrap().len, 20_040);
    }

    #[test]
    fn random_frames_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = tcp4(b"some data here", 0x18);
        let mut pool = BufPool::default();
        let mut pool_back = Vec::new();
        for round in 0..50_000 {
            let mut buf = if round % 2 == 0 {
                base.clone()
            } else {
                let len = usize::try_from(next() % 128).unwrap();
                (0..len).map(|_| next().to_le_bytes()[0]).collect()
            };
            if !buf.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = usize::try_from(next()).unwrap() % buf.len();
                    buf[at] = next().to_le_bytes()[0];
                }
            }
            let bytes = next().to_le_bytes();
            let hdr = VnetHdr::parse(&[
                bytes[0] & 3,
                bytes[1] % 6,
                0,
                0,
                bytes[2],
                bytes[3] & 1,
                bytes[4],
                0,
                bytes[5] & 31,
                0,
            ])
            .unwrap();
            let _ = rx_packets(hdr, &buf, &mut pool, &mut |p| pool_back.push(p));
            for p in pool_back.drain(..) {
                pool.give(p);
            }
            if let Some(info) = ip_info(&buf) {
                let _ = tx_prepare(&mut buf, &info, Some(100));
            }
        }
    }
}
