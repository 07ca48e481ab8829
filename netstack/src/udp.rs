//! UDP sockets with Linux semantics over smoltcp: implicit binds to ephemeral ports, connected
//! sockets that only hear their peer, datagram boundaries and MSG_TRUNC lengths.

use std::net::SocketAddr;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::error::NetError;
use crate::stack::{Family, Proto, Readiness, RecvMeta, Shutdown, Sock, SockOpts, SocketId, Stack};
use crate::tcp::remote_addr;

/// Datagrams a socket buffer holds at most, whatever their size.
const MAX_QUEUED_DATAGRAMS: usize = 512;
/// UDP header length.
const UDP_HEADER: usize = 8;

pub(crate) struct UdpSock {
    pub(crate) family: Family,
    pub(crate) opts: SockOpts,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: Option<SocketAddr>,
    handle: Option<SocketHandle>,
    shut_rd: bool,
    shut_wr: bool,
}

fn new_socket(opts: &SockOpts) -> udp::Socket<'static> {
    let rx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; MAX_QUEUED_DATAGRAMS],
        vec![0u8; opts.rcvbuf],
    );
    let tx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; MAX_QUEUED_DATAGRAMS],
        vec![0u8; opts.sndbuf],
    );
    udp::Socket::new(rx, tx)
}

impl Stack {
    /// socket(AF_INET or AF_INET6, SOCK_DGRAM, 0).
    pub fn udp_socket(&mut self, family: Family) -> SocketId {
        self.insert(Sock::Udp(UdpSock {
            family,
            opts: SockOpts::default(),
            local: None,
            peer: None,
            handle: None,
            shut_rd: false,
            shut_wr: false,
        }))
    }

    fn udp_mut(&mut self, id: SocketId) -> Result<&mut UdpSock, NetError> {
        match self.socks.get_mut(&id) {
            Some(Sock::Udp(s)) => Ok(s),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    fn udp_ref(&self, id: SocketId) -> Result<&UdpSock, NetError> {
        match self.socks.get(&id) {
            Some(Sock::Udp(s)) => Ok(s),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    pub(crate) fn udp_bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let s = self.udp_ref(id)?;
        s.family.check(&addr)?;
        if s.local.is_some() {
            return Err(NetError::InvalidArgument);
        }
        let reuse = s.opts.reuse_addr;
        self.check_local(addr.ip())?;
        let port = match addr.port() {
            0 => self.ephemeral_port(Proto::Udp, addr.ip())?,
            port if self.port_free(Proto::Udp, addr.ip(), port, reuse) => port,
            _ => return Err(NetError::AddrInUse),
        };
        let local = SocketAddr::new(addr.ip(), port);
        let s = self.udp_mut(id)?;
        let mut socket = new_socket(&s.opts);
        socket
            .bind(IpListenEndpoint {
                addr: (!local.ip().is_unspecified()).then(|| local.ip().into()),
                port,
            })
            .map_err(|_| NetError::InvalidArgument)?;
        let handle = self.sockets.add(socket);
        let s = self.udp_mut(id)?;
        s.local = Some(local);
        s.handle = Some(handle);
        Ok(())
    }

    /// Binds to an ephemeral port unless bound already; returns the smoltcp socket.
    fn udp_autobind(&mut self, id: SocketId) -> Result<SocketHandle, NetError> {
        let s = self.udp_ref(id)?;
        if let Some(handle) = s.handle {
            return Ok(handle);
        }
        let any = SocketAddr::new(s.family.unspecified(), 0);
        self.udp_bind(id, any)?;
        self.udp_ref(id)?.handle.ok_or(NetError::InvalidArgument)
    }

    pub(crate) fn udp_connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.udp_ref(id)?.family.check(&addr)?;
        if !self.routable(remote_addr(addr).ip()) {
            return Err(NetError::NetUnreachable);
        }
        self.udp_autobind(id)?;
        self.udp_mut(id)?.peer = Some(remote_addr(addr));
        Ok(())
    }

    /// connect(2) with AF_UNSPEC: forgets the peer, keeps the local address.
    pub fn disconnect(&mut self, id: SocketId) -> Result<(), NetError> {
        self.ready_cache.remove(&id);
        self.udp_mut(id)?.peer = None;
        Ok(())
    }

    pub(crate) fn udp_send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<usize, NetError> {
        let s = self.udp_ref(id)?;
        if s.shut_wr {
            return Err(NetError::BrokenPipe);
        }
        let dest = match to {
            Some(to) => {
                s.family.check(&to)?;
                remote_addr(to)
            }
            None => s.peer.ok_or(NetError::DestAddrRequired)?,
        };
        if !self.routable(dest.ip()) {
            return Err(NetError::NetUnreachable);
        }
        let ip_header = match dest {
            SocketAddr::V4(_) => 20,
            SocketAddr::V6(_) => 40,
        };
        // smoltcp does not fragment: a datagram must fit one packet.
        if data.len() + UDP_HEADER + ip_header > self.mtu {
            return Err(NetError::MessageTooLong);
        }
        let handle = self.udp_autobind(id)?;
        let mut meta = udp::UdpMetadata::from(IpEndpoint::from(dest));
        if self
            .udp_ref(id)?
            .local
            .is_none_or(|l| l.ip().is_unspecified())
        {
            meta.local_address = self.source_for(dest.ip()).map(Into::into);
        }
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        if data.len() > socket.payload_send_capacity() {
            return Err(NetError::MessageTooLong);
        }
        match socket.send_slice(data, meta) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(NetError::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(NetError::NetUnreachable),
        }
    }

    pub(crate) fn udp_recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvMeta, NetError> {
        let s = self.udp_ref(id)?;
        let (peer, shut_rd, family) = (s.peer, s.shut_rd, s.family);
        let Some(handle) = s.handle else {
            return Err(NetError::WouldBlock);
        };
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        loop {
            let (from, len, full_len) = match socket.peek() {
                Ok((payload, meta)) => {
                    let from = SocketAddr::from(meta.endpoint);
                    let len = payload.len().min(buf.len());
                    buf[..len].copy_from_slice(&payload[..len]);
                    (from, len, payload.len())
                }
                Err(_) if shut_rd => {
                    return Ok(RecvMeta {
                        len: 0,
                        full_len: 0,
                        from: None,
                    })
                }
                Err(_) => return Err(NetError::WouldBlock),
            };
            if peer.is_some_and(|peer| peer != from) {
                // A connected socket hears only its peer.
                let _ = socket.recv();
                continue;
            }
            if !peek {
                let _ = socket.recv();
            }
            return Ok(RecvMeta {
                len,
                full_len,
                from: Some(family.present(from)),
            });
        }
    }

    pub(crate) fn udp_shutdown(&mut self, id: SocketId, how: Shutdown) -> Result<(), NetError> {
        let s = self.udp_mut(id)?;
        if s.peer.is_none() {
            return Err(NetError::NotConnected);
        }
        s.shut_rd |= how.read();
        s.shut_wr |= how.write();
        Ok(())
    }

    pub(crate) fn udp_readiness(&self, s: &UdpSock) -> Readiness {
        let (can_recv, can_send) = match s.handle {
            Some(handle) => {
                let socket = self.sockets.get::<udp::Socket>(handle);
                (socket.can_recv(), socket.can_send())
            }
            None => (false, true),
        };
        Readiness {
            readable: can_recv || s.shut_rd,
            writable: can_send || s.shut_wr,
            hup: s.shut_rd && s.shut_wr,
            rdhup: s.shut_rd,
            error: false,
        }
    }

    pub(crate) fn udp_release(&mut self, s: UdpSock) {
        if let Some(handle) = s.handle {
            self.sockets.remove(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use smoltcp::time::{Duration, Instant};

    use super::*;

    const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn settle(stack: &mut Stack) {
        let mut now = Instant::from_secs(1);
        for _ in 0..4 {
            stack.poll(now);
            now += Duration::from_millis(1);
        }
    }

    #[test]
    fn connected_udp_socket_hears_only_its_peer() {
        let mut stack = Stack::loopback(3, Instant::from_secs(1));
        let server = stack.udp_socket(Family::V4);
        stack.bind(server, SocketAddr::new(LO4, 5353)).unwrap();
        let friend = stack.udp_socket(Family::V4);
        let stranger = stack.udp_socket(Family::V4);
        stack.bind(friend, SocketAddr::new(LO4, 0)).unwrap();
        let friend_addr = stack.local_addr(friend).unwrap();
        stack.connect(server, friend_addr).unwrap();
        assert_eq!(stack.peer_addr(server).unwrap(), friend_addr);
        let server_addr = SocketAddr::new(LO4, 5353);
        stack
            .send_to(stranger, b"noise", Some(server_addr))
            .unwrap();
        stack.send_to(friend, b"hello", Some(server_addr)).unwrap();
        settle(&mut stack);
        let mut buf = [0u8; 16];
        let meta = stack.recv_from(server, &mut buf, false).unwrap();
        assert_eq!(&buf[..meta.len], b"hello");
        assert_eq!(meta.from, Some(friend_addr));
        assert_eq!(
            stack.recv_from(server, &mut buf, false),
            Err(NetError::WouldBlock)
        );
    }

    #[test]
    fn udp_peek_leaves_the_datagram_queued() {
        let mut stack = Stack::loopback(3, Instant::from_secs(1));
        let rx = stack.udp_socket(Family::V4);
        stack.bind(rx, SocketAddr::new(LO4, 6000)).unwrap();
        let tx = stack.udp_socket(Family::V4);
        stack.connect(tx, SocketAddr::new(LO4, 6000)).unwrap();
        assert_eq!(stack.send(tx, b"datagram"), Ok(8));
        settle(&mut stack);
        assert!(stack.readiness(rx).unwrap().readable);
        let mut buf = [0u8; 4];
        let peeked = stack.recv_from(rx, &mut buf, true).unwrap();
        assert_eq!((peeked.len, peeked.full_len), (4, 8));
        let mut whole = [0u8; 8];
        assert_eq!(stack.recv(rx, &mut whole, false), Ok(8));
        assert_eq!(&whole, b"datagram");
        assert!(!stack.readiness(rx).unwrap().readable);
    }

    #[test]
    fn udp_errors_match_linux() {
        let mut stack = Stack::loopback(3, Instant::from_secs(1));
        let s = stack.udp_socket(Family::V4);
        assert_eq!(stack.send(s, b"x"), Err(NetError::DestAddrRequired));
        assert_eq!(
            stack.shutdown(s, Shutdown::Write),
            Err(NetError::NotConnected)
        );
        assert_eq!(stack.peer_addr(s), Err(NetError::NotConnected));
        let mut buf = [0u8; 4];
        assert_eq!(stack.recv(s, &mut buf, false), Err(NetError::WouldBlock));
        assert_eq!(stack.listen(s, 1), Err(NetError::NotSupported));
        assert_eq!(stack.accept(s), Err(NetError::NotSupported));
        let big = vec![0u8; 65_508];
        let to = Some(SocketAddr::new(LO4, 9));
        assert_eq!(stack.send_to(s, &big, to), Err(NetError::MessageTooLong));
        assert_eq!(stack.send_to(s, &big[..65_507], to), Ok(65_507));
    }
}
