//! AF_INET and AF_INET6 sockets over the sandbox's netstack: TCP (SOCK_STREAM), UDP
//! (SOCK_DGRAM) and ICMP echo (SOCK_DGRAM with IPPROTO_ICMP/ICMPV6, ping sockets).
//! The netstack does the protocol work without blocking; this module adds blocking, the
//! sockaddr encoding and the socket options Linux programs set.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};

use moat_netstack::{Family, NetError, Shutdown, SocketId};

use super::stack::{errno, poll_bits, NetStack};
use super::*;
use crate::abi::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::Task;

pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
pub const IPPROTO_ICMPV6: i32 = 58;

const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_CORK: i32 = 3;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const TCP_SYNCNT: i32 = 7;
const TCP_LINGER2: i32 = 8;
const TCP_DEFER_ACCEPT: i32 = 9;
const TCP_WINDOW_CLAMP: i32 = 10;
const TCP_INFO: i32 = 11;
const TCP_QUICKACK: i32 = 12;
const TCP_CONGESTION: i32 = 13;
const TCP_USER_TIMEOUT: i32 = 18;
const TCP_FASTOPEN: i32 = 23;
const TCP_NOTSENT_LOWAT: i32 = 25;

const IP_TOS: i32 = 1;
const IP_TTL: i32 = 2;
const IP_PKTINFO: i32 = 8;
const IP_MTU_DISCOVER: i32 = 10;
const IP_RECVERR: i32 = 11;
const IP_RECVTTL: i32 = 12;
const IP_RECVTOS: i32 = 13;
const IP_MTU: i32 = 14;
const IP_FREEBIND: i32 = 15;
const IP_MULTICAST_TTL: i32 = 33;
const IP_MULTICAST_LOOP: i32 = 34;
const IP_BIND_ADDRESS_NO_PORT: i32 = 24;

const IPV6_UNICAST_HOPS: i32 = 16;
const IPV6_MULTICAST_HOPS: i32 = 18;
const IPV6_MULTICAST_LOOP: i32 = 19;
const IPV6_MTU_DISCOVER: i32 = 23;
const IPV6_RECVERR: i32 = 25;
const IPV6_V6ONLY: i32 = 26;
const IPV6_RECVPKTINFO: i32 = 49;
const IPV6_TCLASS: i32 = 67;

/// Options that are remembered and reported but change nothing in the netstack.
fn recorded_option(level: i32, name: i32) -> bool {
    match level {
        SOL_SOCKET => matches!(
            name,
            SO_SNDLOWAT | SO_BINDTODEVICE | SO_PASSCRED | SO_BUSY_POLL
        ),
        IPPROTO_TCP => matches!(
            name,
            TCP_CORK
                | TCP_KEEPIDLE
                | TCP_KEEPINTVL
                | TCP_KEEPCNT
                | TCP_SYNCNT
                | TCP_LINGER2
                | TCP_DEFER_ACCEPT
                | TCP_WINDOW_CLAMP
                | TCP_QUICKACK
                | TCP_USER_TIMEOUT
                | TCP_FASTOPEN
                | TCP_NOTSENT_LOWAT
        ),
        IPPROTO_IP => matches!(
            name,
            IP_TOS
                | IP_TTL
                | IP_PKTINFO
                | IP_MTU_DISCOVER
                | IP_RECVERR
                | IP_RECVTTL
                | IP_RECVTOS
                | IP_FREEBIND
                | IP_MULTICAST_TTL
                | IP_MULTICAST_LOOP
                | IP_BIND_ADDRESS_NO_PORT
        ),
        IPPROTO_IPV6 => matches!(
            name,
            IPV6_UNICAST_HOPS
                | IPV6_MULTICAST_HOPS
                | IPV6_MULTICAST_LOOP
                | IPV6_MTU_DISCOVER
                | IPV6_RECVERR
                | IPV6_V6ONLY
                | IPV6_RECVPKTINFO
                | IPV6_TCLASS
        ),
        _ => false,
    }
}

/// What getsockopt reports for a recorded option never set.
fn recorded_default(level: i32, name: i32) -> i32 {
    match (level, name) {
        (IPPROTO_TCP, TCP_KEEPIDLE) => 7200,
        (IPPROTO_TCP, TCP_KEEPINTVL) => 75,
        (IPPROTO_TCP, TCP_KEEPCNT) => 9,
        (IPPROTO_TCP, TCP_SYNCNT) => 6,
        (IPPROTO_TCP, TCP_LINGER2) => 60,
        (IPPROTO_TCP, TCP_NOTSENT_LOWAT) => -1,
        (IPPROTO_IP, IP_TTL) | (IPPROTO_IPV6, IPV6_UNICAST_HOPS) => 64,
        (IPPROTO_IP, IP_MULTICAST_TTL) | (IPPROTO_IPV6, IPV6_MULTICAST_HOPS) => 1,
        (IPPROTO_IP, IP_MULTICAST_LOOP) | (IPPROTO_IPV6, IPV6_MULTICAST_LOOP) => 1,
        (IPPROTO_IP, IP_MTU_DISCOVER) | (IPPROTO_IPV6, IPV6_MTU_DISCOVER) => 1,
        _ => 0,
    }
}

/// Encodes a sockaddr_in / sockaddr_in6 the way a socket of `family` shows `addr`.
pub fn encode(family: i32, addr: SocketAddr) -> Vec<u8> {
    match (family, addr) {
        (AF_INET, SocketAddr::V4(a)) => {
            let mut v = vec![0u8; 16];
            v[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
            v[2..4].copy_from_slice(&a.port().to_be_bytes());
            v[4..8].copy_from_slice(&a.ip().octets());
            v
        }
        (_, a) => {
            let (ip, port, flow, scope) = match a {
                SocketAddr::V6(a) => (*a.ip(), a.port(), a.flowinfo(), a.scope_id()),
                SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), a.port(), 0, 0),
            };
            let mut v = vec![0u8; 28];
            v[0..2].copy_from_slice(&(AF_INET6 as u16).to_le_bytes());
            v[2..4].copy_from_slice(&port.to_be_bytes());
            v[4..8].copy_from_slice(&flow.to_be_bytes());
            v[8..24].copy_from_slice(&ip.octets());
            v[24..28].copy_from_slice(&scope.to_le_bytes());
            v
        }
    }
}

/// A decoded destination or local address.
enum Addr {
    Ip(SocketAddr),
    /// AF_UNSPEC: connect dissolves a datagram association; bind treats it as INADDR_ANY.
    Unspec,
}

/// Decodes a sockaddr given to a socket of `family`, with Linux's length and family checks.
fn decode(family: i32, b: &[u8]) -> Result<Addr, Errno> {
    if b.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let fam = i32::from(u16::from_le_bytes([b[0], b[1]]));
    if fam == AF_UNSPEC {
        return Ok(Addr::Unspec);
    }
    match family {
        AF_INET => {
            if b.len() < 16 {
                return Err(Errno::EINVAL);
            }
            if fam != AF_INET {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Ok(Addr::Ip(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        _ => {
            if b.len() < 24 {
                return Err(Errno::EINVAL);
            }
            if fam != AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = if b.len() >= 28 {
                u32::from_le_bytes([b[24], b[25], b[26], b[27]])
            } else {
                0
            };
            let ip = Ipv6Addr::from(o);
            Ok(Addr::Ip(SocketAddr::V6(SocketAddrV6::new(
                ip, port, flow, scope,
            ))))
        }
    }
}

#[derive(Default)]
struct Opts {
    reuseaddr: bool,
    keepalive: bool,
    nodelay: bool,
    linger: Option<i32>,
    listening: bool,
    /// Options kept for getsockopt only.
    recorded: HashMap<(i32, i32), Vec<u8>>,
}

/// One AF_INET/AF_INET6 socket.
pub struct InetSocket {
    net: Arc<NetStack>,
    family: i32,
    kind: i32,
    protocol: i32,
    id: SocketId,
    q: Arc<WaitQueue>,
    opts: Mutex<Opts>,
}

/// socket(AF_INET or AF_INET6, kind, protocol).
pub fn create(t: &Task, family: i32, kind: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    let fam = if family == AF_INET {
        Family::V4
    } else {
        Family::V6
    };
    let icmp = if family == AF_INET {
        IPPROTO_ICMP
    } else {
        IPPROTO_ICMPV6
    };
    let net = t.k.net.clone();
    let (id, protocol) = match (kind, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => (net.lock().tcp_socket(fam), IPPROTO_TCP),
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => (net.lock().udp_socket(fam), IPPROTO_UDP),
        (SOCK_DGRAM, p) if p == icmp => (net.lock().icmp_socket(fam), p),
        (SOCK_RAW, _) => return Err(Errno::EPERM),
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        (SOCK_SEQPACKET, _) => return Err(Errno::ESOCKTNOSUPPORT),
        _ => return Err(Errno::EINVAL),
    };
    Ok(InetSocket::wrap(net, family, kind, protocol, id))
}

impl InetSocket {
    fn wrap(
        net: Arc<NetStack>,
        family: i32,
        kind: i32,
        protocol: i32,
        id: SocketId,
    ) -> Arc<dyn Socket> {
        let q = net.queue(id);
        Arc::new(InetSocket {
            net,
            family,
            kind,
            protocol,
            id,
            q,
            opts: Mutex::new(Opts::default()),
        })
    }

    fn opts(&self) -> std::sync::MutexGuard<'_, Opts> {
        self.opts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tcp(&self) -> bool {
        self.kind == SOCK_STREAM
    }

    /// Runs a non-blocking netstack call until it stops saying WouldBlock.
    fn blocking<T>(
        &self,
        c: &Ctx<'_>,
        mut op: impl FnMut(&mut moat_netstack::Stack) -> Result<T, NetError>,
    ) -> Result<T, Errno> {
        c.block(&self.q, || {
            let mut s = self.net.lock();
            match op(&mut s) {
                Ok(v) => Ok(Some(v)),
                Err(NetError::WouldBlock) => Ok(None),
                Err(e) => Err(errno(e)),
            }
        })
    }

    fn stream_recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno> {
        let peek = flags & MSG_PEEK != 0;
        let waitall = flags & MSG_WAITALL != 0 && !peek;
        let mut data = Vec::new();
        loop {
            let got = data.len();
            // Sized by what has arrived, not by the app's buffer: nothing large is cleared.
            let r = self.blocking(c, |s| {
                let room = (len - got).min(s.recv_queue(self.id).max(1));
                let mut buf = vec![0u8; room];
                let n = s.recv(self.id, &mut buf, peek)?;
                buf.truncate(n);
                Ok(buf)
            });
            match r {
                Ok(b) if b.is_empty() => break,
                Ok(b) => data.extend_from_slice(&b),
                Err(_) if got > 0 => break,
                Err(e) => return Err(e),
            }
            if !waitall || data.len() >= len {
                break;
            }
        }
        Ok(RecvMsg {
            full_len: data.len(),
            data,
            ..RecvMsg::default()
        })
    }

    fn stream_send(&self, c: &Ctx<'_>, data: &[u8]) -> Result<usize, Errno> {
        if data.is_empty() {
            return self.blocking(c, |s| s.send(self.id, data));
        }
        let mut done = 0;
        while done < data.len() {
            match self.blocking(c, |s| s.send(self.id, &data[done..])) {
                Ok(n) => done += n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
            if c.nonblock {
                break;
            }
        }
        Ok(done)
    }

    fn getopt(&self, t: &Task, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let o = self.opts();
        let flag = |b: bool| int_opt(i32::from(b));
        let size = |r: Result<usize, NetError>| -> Result<Vec<u8>, Errno> {
            Ok(int_opt(r.map_err(errno)?.min(i32::MAX as usize) as i32))
        };
        match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => Ok(flag(o.reuseaddr)),
            (SOL_SOCKET, SO_KEEPALIVE) => Ok(flag(o.keepalive)),
            (SOL_SOCKET, SO_ACCEPTCONN) => Ok(flag(o.listening)),
            (SOL_SOCKET, SO_ERROR) => {
                drop(o);
                let e = self.net.lock().take_error(self.id).map_err(errno)?;
                Ok(int_opt(e.map_or(0, |e| e.errno())))
            }
            (SOL_SOCKET, SO_LINGER) => {
                let mut v = int_opt(i32::from(o.linger.is_some()));
                v.extend_from_slice(&o.linger.unwrap_or(0).to_le_bytes());
                Ok(v)
            }
            (SOL_SOCKET, SO_RCVBUF) => size(self.net.with(|s| s.recv_buffer_size(self.id))),
            (SOL_SOCKET, SO_SNDBUF) => size(self.net.with(|s| s.send_buffer_size(self.id))),
            (SOL_SOCKET, SO_PEERCRED) => Err(Errno::ENODATA),
            (IPPROTO_TCP, _) if !self.tcp() => Err(Errno::EOPNOTSUPP),
            (IPPROTO_TCP, TCP_NODELAY) => Ok(flag(o.nodelay)),
            (IPPROTO_TCP, TCP_MAXSEG) => {
                let mtu = self.net.links.iter().map(|l| l.mtu).min().unwrap_or(1500);
                Ok(int_opt(mtu.saturating_sub(52) as i32))
            }
            (IPPROTO_TCP, TCP_CONGESTION) => Ok(b"reno\0".to_vec()),
            (IPPROTO_TCP, TCP_INFO) => {
                drop(o);
                Ok(self.tcp_info())
            }
            (IPPROTO_IP, IP_MTU) | (IPPROTO_IPV6, 24) => {
                drop(o);
                self.peername()?;
                let mtu = self.net.links.iter().map(|l| l.mtu).min().unwrap_or(1500);
                Ok(int_opt(mtu as i32))
            }
            (IPPROTO_IPV6, _) if self.family != AF_INET6 => Err(Errno::ENOPROTOOPT),
            (l, n) if recorded_option(l, n) => Ok(o
                .recorded
                .get(&(l, n))
                .cloned()
                .unwrap_or_else(|| int_opt(recorded_default(l, n)))),
            _ => {
                let _ = t;
                Err(Errno::ENOPROTOOPT)
            }
        }
    }

    /// A `struct tcp_info` with the state and the fields the netstack knows.
    fn tcp_info(&self) -> Vec<u8> {
        let mut v = vec![0u8; 232];
        let r = self.net.with(|s| s.readiness(self.id)).unwrap_or_default();
        let connected = self.peername().is_ok();
        // TCP_ESTABLISHED 1, TCP_CLOSE 7, TCP_LISTEN 10, TCP_CLOSE_WAIT 8.
        v[0] = if self.opts().listening {
            10
        } else if connected && r.rdhup {
            8
        } else if connected {
            1
        } else {
            7
        };
        v
    }
}

impl Socket for InetSocket {
    fn family(&self) -> i32 {
        self.family
    }
    fn kind(&self) -> i32 {
        self.kind
    }
    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, _t: &Task, addr: &[u8]) -> Result<(), Errno> {
        let a = match decode(self.family, addr)? {
            Addr::Ip(a) => a,
            Addr::Unspec if self.family == AF_INET && addr.len() >= 16 => {
                // Linux accepts AF_UNSPEC with INADDR_ANY for old programs.
                if addr[4..8] != [0, 0, 0, 0] {
                    return Err(Errno::EAFNOSUPPORT);
                }
                SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    u16::from_be_bytes([addr[2], addr[3]]),
                )
            }
            Addr::Unspec => return Err(Errno::EAFNOSUPPORT),
        };
        self.net.lock().bind(self.id, a).map_err(errno)
    }

    fn listen(&self, _t: &Task, backlog: i32) -> Result<(), Errno> {
        if !self.tcp() {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = backlog.clamp(0, 4096) as usize;
        self.net.lock().listen(self.id, backlog).map_err(errno)?;
        self.opts().listening = true;
        Ok(())
    }

    fn accept(&self, c: &Ctx<'_>) -> Result<(Arc<dyn Socket>, Vec<u8>), Errno> {
        if !self.tcp() {
            return Err(Errno::EOPNOTSUPP);
        }
        if !self.opts().listening {
            return Err(Errno::EINVAL);
        }
        let (nid, peer) = self.blocking(c, |s| s.accept(self.id))?;
        let new = InetSocket::wrap(self.net.clone(), self.family, self.kind, self.protocol, nid);
        Ok((new, encode(self.family, peer)))
    }

    fn connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno> {
        let a = match decode(self.family, addr)? {
            Addr::Ip(a) => a,
            Addr::Unspec if !self.tcp() => {
                // Dissolves the association; the local port stays.
                return self.net.lock().disconnect(self.id).map_err(errno);
            }
            Addr::Unspec => return Err(Errno::EAFNOSUPPORT),
        };
        let r = self.net.lock().connect(self.id, a);
        match r {
            Ok(()) => Ok(()),
            Err(NetError::InProgress) if c.nonblock => Err(Errno::EINPROGRESS),
            Err(NetError::InProgress) => c.block(&self.q, || {
                let mut s = self.net.lock();
                if let Some(e) = s.take_error(self.id).map_err(errno)? {
                    return Err(errno(e));
                }
                let r = s.readiness(self.id).map_err(errno)?;
                Ok(r.writable.then_some(()))
            }),
            Err(e) => Err(errno(e)),
        }
    }

    fn send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno> {
        if !msg.rights.is_empty() || msg.creds.is_some() {
            return Err(Errno::EINVAL);
        }
        if self.tcp() {
            // A destination on a connected stream socket is ignored (EISCONN only if not).
            return self.stream_send(c, msg.data);
        }
        let to = match msg.addr {
            Some(b) => match decode(self.family, b)? {
                Addr::Ip(a) => Some(a),
                Addr::Unspec => return Err(Errno::EAFNOSUPPORT),
            },
            None => None,
        };
        self.blocking(c, |s| s.send_to(self.id, msg.data, to))
    }

    fn recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EINVAL);
        }
        if self.tcp() {
            return self.stream_recv(c, len, flags);
        }
        let peek = flags & MSG_PEEK != 0;
        // A datagram is at most 64 KiB.
        let mut data = vec![0u8; len.min(65536)];
        let m = self.blocking(c, |s| s.recv_from(self.id, &mut data, peek))?;
        data.truncate(m.len);
        Ok(RecvMsg {
            data,
            full_len: m.full_len,
            addr: m.from.map(|a| encode(self.family, a)),
            flags: if m.truncated() { MSG_TRUNC } else { 0 },
            ..RecvMsg::default()
        })
    }

    fn recv_into(&self, c: &Ctx<'_>, buf: &mut [u8], flags: u32) -> Option<Result<usize, Errno>> {
        if !self.tcp() || flags & (MSG_OOB | MSG_TRUNC) != 0 {
            return None;
        }
        let peek = flags & MSG_PEEK != 0;
        let waitall = flags & MSG_WAITALL != 0 && !peek;
        let mut got = 0;
        loop {
            match self.blocking(c, |s| s.recv(self.id, &mut buf[got..], peek)) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) if got > 0 => break,
                Err(e) => return Some(Err(e)),
            }
            if !waitall || got >= buf.len() {
                break;
            }
        }
        Some(Ok(got))
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let h = match how {
            SHUT_RD => Shutdown::Read,
            SHUT_WR => Shutdown::Write,
            _ => Shutdown::Both,
        };
        self.net.lock().shutdown(self.id, h).map_err(errno)
    }

    fn sockname(&self) -> Result<Vec<u8>, Errno> {
        let a = self.net.with(|s| s.local_addr(self.id)).map_err(errno)?;
        Ok(encode(self.family, a))
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let a = self.net.with(|s| s.peer_addr(self.id)).map_err(errno)?;
        Ok(encode(self.family, a))
    }

    fn setsockopt(&self, _t: &Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut o = self.opts();
        match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => {
                let on = opt_int(val)? != 0;
                self.net.lock().set_reuse_addr(self.id, on).map_err(errno)?;
                o.reuseaddr = on;
            }
            (SOL_SOCKET, SO_KEEPALIVE) => {
                let on = opt_int(val)? != 0;
                if self.tcp() {
                    self.net.lock().set_keepalive(self.id, on).map_err(errno)?;
                }
                o.keepalive = on;
            }
            (SOL_SOCKET, SO_LINGER) => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = opt_int(val)? != 0;
                let secs = opt_int(&val[4..])?;
                o.linger = on.then_some(secs);
                if self.tcp() {
                    self.net
                        .lock()
                        .set_linger_abort(self.id, on && secs == 0)
                        .map_err(errno)?;
                }
            }
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => {
                let n = opt_int(val)?.max(0) as usize;
                self.net
                    .lock()
                    .set_recv_buffer_size(self.id, n.saturating_mul(2))
                    .map_err(errno)?;
            }
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
                let n = opt_int(val)?.max(0) as usize;
                self.net
                    .lock()
                    .set_send_buffer_size(self.id, n.saturating_mul(2))
                    .map_err(errno)?;
            }
            (IPPROTO_TCP, _) if !self.tcp() => return Err(Errno::EOPNOTSUPP),
            (IPPROTO_TCP, TCP_NODELAY) => {
                let on = opt_int(val)? != 0;
                self.net.lock().set_nodelay(self.id, on).map_err(errno)?;
                o.nodelay = on;
            }
            (IPPROTO_TCP, TCP_MAXSEG) => {
                opt_int(val)?;
            }
            (IPPROTO_TCP, TCP_CONGESTION) => {
                let name: Vec<u8> = val.iter().take_while(|&&b| b != 0).copied().collect();
                if !matches!(name.as_slice(), b"reno" | b"cubic") {
                    return Err(Errno::ENOENT);
                }
            }
            (IPPROTO_IPV6, _) if self.family != AF_INET6 => return Err(Errno::ENOPROTOOPT),
            (l, n) if recorded_option(l, n) => {
                let mut v = val.to_vec();
                if v.len() < 4 && l != SOL_SOCKET {
                    // Linux takes one-byte values for some IP options.
                    v.resize(4, 0);
                }
                o.recorded.insert((l, n), v);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn getsockopt(&self, t: &Task, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        self.getopt(t, level, name)
    }

    fn poll(&self) -> u32 {
        self.net
            .with(|s| s.readiness(self.id))
            .map(poll_bits)
            .unwrap_or(POLLNVAL)
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.q
    }

    fn ioctl(&self, t: &mut Task, cmd: u32, arg: u64) -> SysResult {
        match cmd {
            FIONREAD => {
                let n = if self.tcp() {
                    self.net.with(|s| s.recv_queue(self.id))
                } else {
                    let mut buf = vec![0u8; 65536];
                    self.net
                        .lock()
                        .recv_from(self.id, &mut buf, true)
                        .map(|m| m.full_len)
                        .unwrap_or(0)
                };
                t.mm.write_obj(arg, &(n as i32))?;
                Ok(0)
            }
            SIOCOUTQ => {
                t.mm.write_obj(arg, &0i32)?;
                Ok(0)
            }
            // The interface ioctls are answered by `SocketFile` for every family.
            _ => Err(Errno::ENOTTY),
        }
    }

    fn release(&self) {
        self.net.close(self.id);
    }
}
