//! ICMP echo ("ping") sockets, as Linux's SOCK_DGRAM IPPROTO_ICMP/ICMPV6 sockets: the app sends
//! an echo request header and payload, the stack puts its identifier (the socket's "port") and
//! checksum in, and the app receives the echo replies addressed to that identifier.

use std::net::{IpAddr, SocketAddr};

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress};

use crate::error::NetError;
use crate::stack::{Family, Proto, Readiness, RecvMeta, Sock, SockOpts, SocketId, Stack};
use crate::tcp::remote_addr;

const ICMP_HEADER: usize = 8;
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Echo packets a socket buffer holds at most.
const MAX_QUEUED: usize = 64;
/// Bytes of those packets.
const BUFFER: usize = 64 * 1024;

pub(crate) struct IcmpSock {
    pub(crate) family: Family,
    pub(crate) opts: SockOpts,
    /// The bound address; its port is the echo identifier.
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: Option<SocketAddr>,
    handle: Option<SocketHandle>,
    /// A reply taken out of smoltcp by a peek (smoltcp's ICMP socket cannot peek).
    peeked: Option<(Vec<u8>, IpAddr)>,
}

impl Family {
    fn echo_types(self) -> (u8, u8) {
        match self {
            Family::V4 => (ECHO_REQUEST_V4, ECHO_REPLY_V4),
            Family::V6 => (ECHO_REQUEST_V6, ECHO_REPLY_V6),
        }
    }
}

impl Stack {
    /// socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) or (AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6).
    pub fn icmp_socket(&mut self, family: Family) -> SocketId {
        self.insert(Sock::Icmp(IcmpSock {
            family,
            opts: SockOpts::default(),
            local: None,
            peer: None,
            handle: None,
            peeked: None,
        }))
    }

    fn icmp_mut(&mut self, id: SocketId) -> Result<&mut IcmpSock, NetError> {
        match self.socks.get_mut(&id) {
            Some(Sock::Icmp(s)) => Ok(s),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    fn icmp_ref(&self, id: SocketId) -> Result<&IcmpSock, NetError> {
        match self.socks.get(&id) {
            Some(Sock::Icmp(s)) => Ok(s),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    pub(crate) fn icmp_bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let s = self.icmp_ref(id)?;
        s.family.check(&addr)?;
        if s.local.is_some() {
            return Err(NetError::InvalidArgument);
        }
        self.check_local(addr.ip())?;
        let ident = match addr.port() {
            0 => self.ephemeral_port(Proto::Icmp, addr.ip())?,
            port if self.port_free(Proto::Icmp, addr.ip(), port, false) => port,
            _ => return Err(NetError::AddrInUse),
        };
        let rx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; MAX_QUEUED],
            vec![0u8; BUFFER],
        );
        let tx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; MAX_QUEUED],
            vec![0u8; BUFFER],
        );
        let mut socket = icmp::Socket::new(rx, tx);
        socket
            .bind(icmp::Endpoint::Ident(ident))
            .map_err(|_| NetError::InvalidArgument)?;
        let handle = self.sockets.add(socket);
        let s = self.icmp_mut(id)?;
        s.local = Some(SocketAddr::new(addr.ip(), ident));
        s.handle = Some(handle);
        Ok(())
    }

    fn icmp_autobind(&mut self, id: SocketId) -> Result<(SocketHandle, u16), NetError> {
        let s = self.icmp_ref(id)?;
        if let (Some(handle), Some(local)) = (s.handle, s.local) {
            return Ok((handle, local.port()));
        }
        let any = SocketAddr::new(s.family.unspecified(), 0);
        self.icmp_bind(id, any)?;
        let s = self.icmp_ref(id)?;
        match (s.handle, s.local) {
            (Some(handle), Some(local)) => Ok((handle, local.port())),
            _ => Err(NetError::InvalidArgument),
        }
    }

    pub(crate) fn icmp_connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.icmp_ref(id)?.family.check(&addr)?;
        self.icmp_autobind(id)?;
        self.icmp_mut(id)?.peer = Some(remote_addr(addr));
        Ok(())
    }

    /// Sends `data`, an ICMP echo request (header and payload); the identifier and checksum
    /// are the stack's, as Linux does for ping sockets.
    pub(crate) fn icmp_send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<usize, NetError> {
        let s = self.icmp_ref(id)?;
        let family = s.family;
        let dest = match to {
            Some(to) => {
                family.check(&to)?;
                remote_addr(to)
            }
            None => s.peer.ok_or(NetError::DestAddrRequired)?,
        };
        if !self.routable(dest.ip()) {
            return Err(NetError::NetUnreachable);
        }
        let (request, _) = family.echo_types();
        let (Some(&kind), Some(&code), Some(seq), Some(payload)) = (
            data.first(),
            data.get(1),
            data.get(6..8),
            data.get(ICMP_HEADER..),
        ) else {
            return Err(NetError::InvalidArgument);
        };
        if kind != request || code != 0 {
            return Err(NetError::InvalidArgument);
        }
        let seq_no = u16::from_be_bytes([seq[0], seq[1]]);
        let ip_header = if family == Family::V4 { 20 } else { 40 };
        if data.len() + ip_header > self.mtu {
            return Err(NetError::MessageTooLong);
        }
        let (handle, ident) = self.icmp_autobind(id)?;
        let caps = ChecksumCapabilities::default();
        let socket = self.sockets.get_mut::<icmp::Socket>(handle);
        let map = |e: icmp::SendError| match e {
            icmp::SendError::BufferFull => NetError::WouldBlock,
            icmp::SendError::Unaddressable => NetError::NetUnreachable,
        };
        match dest.ip() {
            IpAddr::V4(dst) => {
                let repr = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data: payload,
                };
                let buf = socket
                    .send(repr.buffer_len(), IpAddress::Ipv4(dst))
                    .map_err(map)?;
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
            }
            IpAddr::V6(dst) => {
                let src = self.iface.get_source_address_ipv6(&dst);
                let repr = Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data: payload,
                };
                let buf = socket
                    .send(repr.buffer_len(), IpAddress::Ipv6(dst))
                    .map_err(map)?;
                repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(buf), &caps);
            }
        }
        Ok(data.len())
    }

    /// Receives one echo reply (header and payload), truncated to `buf` with its full length.
    pub(crate) fn icmp_recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvMeta, NetError> {
        let Stack { socks, sockets, .. } = self;
        let s = match socks.get_mut(&id) {
            Some(Sock::Icmp(s)) => s,
            Some(_) => return Err(NetError::NotSupported),
            None => return Err(NetError::BadSocket),
        };
        let Some(handle) = s.handle else {
            return Err(NetError::WouldBlock);
        };
        let (_, reply) = s.family.echo_types();
        if s.peeked.is_none() {
            let socket = sockets.get_mut::<icmp::Socket>(handle);
            loop {
                let (packet, from) = socket.recv().map_err(|_| NetError::WouldBlock)?;
                let from = IpAddr::from(from);
                // smoltcp also hands over requests with our identifier (our own, looped back).
                if packet.first() != Some(&reply) || s.peer.is_some_and(|p| p.ip() != from) {
                    continue;
                }
                s.peeked = Some((packet.to_vec(), from));
                break;
            }
        }
        let (packet, from) = if peek {
            s.peeked.clone()
        } else {
            s.peeked.take()
        }
        .ok_or(NetError::WouldBlock)?;
        let len = packet.len().min(buf.len());
        buf[..len].copy_from_slice(&packet[..len]);
        Ok(RecvMeta {
            len,
            full_len: packet.len(),
            from: Some(s.family.present(SocketAddr::new(from, 0))),
        })
    }

    pub(crate) fn icmp_readiness(&self, s: &IcmpSock) -> Readiness {
        let (can_recv, can_send) = match s.handle {
            Some(handle) => {
                let socket = self.sockets.get::<icmp::Socket>(handle);
                (socket.can_recv(), socket.can_send())
            }
            None => (false, true),
        };
        Readiness {
            readable: can_recv || s.peeked.is_some(),
            writable: can_send,
            ..Readiness::default()
        }
    }

    pub(crate) fn icmp_release(&mut self, s: IcmpSock) {
        if let Some(handle) = s.handle {
            self.sockets.remove(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use smoltcp::time::{Duration, Instant};

    use super::*;

    fn settle(stack: &mut Stack) {
        let mut now = Instant::from_secs(1);
        for _ in 0..4 {
            stack.poll(now);
            now += Duration::from_millis(1);
        }
    }

    fn echo_request(kind: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![kind, 0, 0, 0, 0xab, 0xcd];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    #[test]
    fn ping_to_loopback_gets_its_reply() {
        let mut stack = Stack::loopback(5, Instant::from_secs(1));
        for (family, ip, request, reply) in [
            (
                Family::V4,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                ECHO_REQUEST_V4,
                ECHO_REPLY_V4,
            ),
            (
                Family::V6,
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                ECHO_REQUEST_V6,
                ECHO_REPLY_V6,
            ),
        ] {
            let ping = stack.icmp_socket(family);
            let to = SocketAddr::new(ip, 0);
            let packet = echo_request(request, 7, b"payload!");
            assert_eq!(stack.send_to(ping, &packet, Some(to)), Ok(packet.len()));
            settle(&mut stack);
            let ident = stack.local_addr(ping).unwrap().port();
            let mut buf = [0u8; 64];
            let peeked = stack.recv_from(ping, &mut buf, true).unwrap();
            let got = stack.recv_from(ping, &mut buf, false).unwrap();
            assert_eq!(peeked, got);
            assert_eq!(got.len, packet.len());
            assert_eq!(got.from, Some(to));
            assert_eq!(buf[0], reply);
            assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), ident);
            assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 7);
            assert_eq!(&buf[8..16], b"payload!");
            assert_eq!(stack.recv(ping, &mut buf, false), Err(NetError::WouldBlock));
        }
    }

    #[test]
    fn ping_socket_sends_only_echo_requests() {
        let mut stack = Stack::loopback(5, Instant::from_secs(1));
        let ping = stack.icmp_socket(Family::V4);
        let to = Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let reply = echo_request(ECHO_REPLY_V4, 1, b"");
        assert_eq!(
            stack.send_to(ping, &reply, to),
            Err(NetError::InvalidArgument)
        );
        assert_eq!(
            stack.send_to(ping, &[8, 0], to),
            Err(NetError::InvalidArgument)
        );
        assert_eq!(
            stack.send(ping, &echo_request(8, 1, b"")),
            Err(NetError::DestAddrRequired)
        );
    }
}
