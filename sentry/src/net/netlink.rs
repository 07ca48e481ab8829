//! NETLINK_ROUTE sockets and the interface ioctls: the sandbox's interfaces, addresses and
//! routes as the netstack has them, read-only. Dumps of links, addresses and routes are what
//! `ip addr`, `ip route` and glibc's getifaddrs ask; changes are refused with EPERM.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::stack::{LinkInfo, NetStack};
use super::*;
use crate::abi::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::Task;

const NETLINK_ROUTE: i32 = 0;

const NLMSG_HDR: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RTM_GETRULE: u16 = 34;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;

const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const IFF_MULTICAST: u32 = 0x1000;
const IFF_LOWER_UP: u32 = 0x10000;

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;

/// Largest datagram a dump reply is packed into.
const DUMP_CHUNK: usize = 8192;

/// One netlink message being built: header, fixed part, attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let mut v = vec![0u8; NLMSG_HDR];
        v[4..6].copy_from_slice(&ty.to_le_bytes());
        v[6..8].copy_from_slice(&flags.to_le_bytes());
        v[8..12].copy_from_slice(&seq.to_le_bytes());
        v[12..16].copy_from_slice(&pid.to_le_bytes());
        Msg(v)
    }
    fn raw(mut self, b: &[u8]) -> Msg {
        self.0.extend_from_slice(b);
        self.pad();
        self
    }
    fn attr(mut self, ty: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_le_bytes());
        self.0.extend_from_slice(&ty.to_le_bytes());
        self.0.extend_from_slice(data);
        self.pad();
        self
    }
    fn pad(&mut self) {
        let n = (self.0.len() + 3) & !3;
        self.0.resize(n, 0);
    }
    fn done(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => AF_INET as u8,
        IpAddr::V6(_) => AF_INET6 as u8,
    }
}

fn link_flags(l: &LinkInfo) -> u32 {
    if l.loopback {
        IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP
    } else {
        IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn link_msg(l: &LinkInfo, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut fixed = vec![0u8; 16];
    let ty = if l.loopback {
        ARPHRD_LOOPBACK
    } else {
        ARPHRD_ETHER
    };
    fixed[2..4].copy_from_slice(&ty.to_le_bytes());
    fixed[4..8].copy_from_slice(&(l.index as i32).to_le_bytes());
    fixed[8..12].copy_from_slice(&link_flags(l).to_le_bytes());
    let mac = l.mac.unwrap_or([0; 6]);
    let bcast = if l.loopback { [0; 6] } else { [0xff; 6] };
    Msg::new(RTM_NEWLINK, flags, seq, pid)
        .raw(&fixed)
        .attr(IFLA_IFNAME, &cstr(&l.name))
        .attr(IFLA_TXQLEN, &1000u32.to_le_bytes())
        .attr(IFLA_OPERSTATE, &[if l.loopback { 0 } else { 6 }])
        .attr(IFLA_LINKMODE, &[0])
        .attr(IFLA_MTU, &l.mtu.to_le_bytes())
        .attr(IFLA_QDISC, &cstr("noqueue"))
        .attr(IFLA_ADDRESS, &mac)
        .attr(IFLA_BROADCAST, &bcast)
        .done()
}

fn scope_of(a: IpAddr) -> u8 {
    match a {
        _ if a.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

fn prefix_mask_v4(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn addr_msg(l: &LinkInfo, a: IpAddr, prefix: u8, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut fixed = vec![0u8; 8];
    fixed[0] = family_of(a);
    fixed[1] = prefix;
    fixed[2] = IFA_F_PERMANENT as u8;
    fixed[3] = scope_of(a);
    fixed[4..8].copy_from_slice(&l.index.to_le_bytes());
    let mut m = Msg::new(RTM_NEWADDR, flags, seq, pid)
        .raw(&fixed)
        .attr(IFA_ADDRESS, &ip_bytes(a));
    if let IpAddr::V4(v4) = a {
        m = m.attr(IFA_LOCAL, &v4.octets());
        if !l.loopback {
            let b = u32::from(v4) | !prefix_mask_v4(prefix);
            m = m.attr(IFA_BROADCAST, &b.to_be_bytes());
        }
        m = m.attr(IFA_LABEL, &cstr(&l.name));
    }
    m.attr(IFA_FLAGS, &IFA_F_PERMANENT.to_le_bytes()).done()
}

/// One route as `ip route` shows it.
struct Route {
    dst: IpAddr,
    dst_len: u8,
    gateway: Option<IpAddr>,
    oif: u32,
    prefsrc: Option<IpAddr>,
    table: u8,
    kind: u8,
    scope: u8,
    proto: u8,
}

fn routes(net: &NetStack) -> Vec<Route> {
    let mut out = Vec::new();
    for l in &net.links {
        for &(a, p) in &l.addrs {
            if !l.loopback {
                out.push(Route {
                    dst: mask(a, p),
                    dst_len: p,
                    gateway: None,
                    oif: l.index,
                    prefsrc: Some(a).filter(|a| a.is_ipv4()),
                    table: RT_TABLE_MAIN,
                    kind: RTN_UNICAST,
                    scope: RT_SCOPE_LINK,
                    proto: RTPROT_KERNEL,
                });
            }
            out.push(Route {
                dst: a,
                dst_len: if a.is_ipv4() { 32 } else { 128 },
                gateway: None,
                oif: l.index,
                prefsrc: Some(a).filter(|a| a.is_ipv4()),
                table: RT_TABLE_LOCAL,
                kind: RTN_LOCAL,
                scope: RT_SCOPE_HOST,
                proto: RTPROT_KERNEL,
            });
        }
    }
    for (gw, oif) in net.gateways() {
        let dst = match gw {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        out.push(Route {
            dst,
            dst_len: 0,
            gateway: Some(gw),
            oif,
            prefsrc: None,
            table: RT_TABLE_MAIN,
            kind: RTN_UNICAST,
            scope: RT_SCOPE_UNIVERSE,
            proto: RTPROT_BOOT,
        });
    }
    out
}

fn mask(a: IpAddr, p: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4((u32::from(v) & prefix_mask_v4(p)).into()),
        IpAddr::V6(v) => {
            let m = if p == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(p.min(128)))
            };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

fn route_msg(r: &Route, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let fixed = [
        family_of(r.dst),
        r.dst_len,
        0,
        0,
        r.table,
        r.proto,
        r.scope,
        r.kind,
        0,
        0,
        0,
        0,
    ];
    let mut m = Msg::new(RTM_NEWROUTE, flags, seq, pid)
        .raw(&fixed)
        .attr(RTA_TABLE, &u32::from(r.table).to_le_bytes());
    if r.dst_len > 0 {
        m = m.attr(RTA_DST, &ip_bytes(r.dst));
    }
    if let Some(s) = r.prefsrc {
        m = m.attr(RTA_PREFSRC, &ip_bytes(s));
    }
    if let Some(g) = r.gateway {
        m = m.attr(RTA_GATEWAY, &ip_bytes(g));
    }
    m.attr(RTA_OIF, &r.oif.to_le_bytes()).done()
}

fn error_msg(err: i32, req: &[u8], seq: u32, pid: u32) -> Vec<u8> {
    let mut body = (-err).to_le_bytes().to_vec();
    body.extend_from_slice(&req[..NLMSG_HDR.min(req.len())]);
    Msg::new(NLMSG_ERROR, 0, seq, pid).raw(&body).done()
}

struct State {
    /// Our port id (nl_pid), 0 until bound.
    port: u32,
    /// Reply datagrams not read yet.
    queue: VecDeque<Vec<u8>>,
}

/// A NETLINK_ROUTE socket.
pub struct NetlinkSocket {
    net: Arc<NetStack>,
    kind: i32,
    st: Mutex<State>,
    q: WaitQueue,
}

/// socket(AF_NETLINK, kind, protocol).
pub fn create(t: &Task, kind: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    if kind != SOCK_RAW && kind != SOCK_DGRAM {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if protocol != NETLINK_ROUTE {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(Arc::new(NetlinkSocket {
        net: t.k.net.clone(),
        kind,
        st: Mutex::new(State {
            port: 0,
            queue: VecDeque::new(),
        }),
        q: WaitQueue::default(),
    }))
}

impl NetlinkSocket {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ensure_port(&self, st: &mut State, pid: i32) {
        if st.port == 0 {
            st.port = pid as u32;
        }
    }

    /// Answers one request message; returns the reply messages.
    fn answer(&self, req: &[u8], port: u32) -> Vec<Vec<u8>> {
        let ty = u16::from_le_bytes([req[4], req[5]]);
        let flags = u16::from_le_bytes([req[6], req[7]]);
        let seq = u32::from_le_bytes([req[8], req[9], req[10], req[11]]);
        let body = &req[NLMSG_HDR..];
        let family = body.first().copied().unwrap_or(0);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let multi = if dump { NLM_F_MULTI } else { 0 };
        let want_family = |a: &IpAddr| family == 0 || family == family_of(*a);
        let mut out = Vec::new();
        match ty {
            NLMSG_NOOP => {}
            RTM_GETLINK => {
                let index = body
                    .get(4..8)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                let links: Vec<&LinkInfo> = self
                    .net
                    .links
                    .iter()
                    .filter(|l| dump || index == 0 || l.index as i32 == index)
                    .collect();
                if !dump && links.is_empty() {
                    return vec![error_msg(Errno::ENODEV.0, req, seq, port)];
                }
                for l in links {
                    out.push(link_msg(l, multi, seq, port));
                    if !dump {
                        break;
                    }
                }
            }
            RTM_GETADDR => {
                for l in &self.net.links {
                    for &(a, p) in &l.addrs {
                        if want_family(&a) {
                            out.push(addr_msg(l, a, p, multi, seq, port));
                        }
                    }
                }
            }
            RTM_GETROUTE => {
                for r in routes(&self.net) {
                    if want_family(&r.dst) {
                        out.push(route_msg(&r, multi, seq, port));
                    }
                }
            }
            RTM_GETNEIGH | RTM_GETRULE => {}
            t if t >= RTM_NEWLINK && t % 4 != 2 => {
                return vec![error_msg(Errno::EPERM.0, req, seq, port)];
            }
            _ => return vec![error_msg(Errno::EOPNOTSUPP.0, req, seq, port)],
        }
        if dump {
            let done = Msg::new(NLMSG_DONE, NLM_F_MULTI, seq, port)
                .raw(&0i32.to_le_bytes())
                .done();
            out.push(done);
        } else if flags & NLM_F_ACK != 0 {
            out.push(error_msg(0, req, seq, port));
        }
        out
    }
}

impl Socket for NetlinkSocket {
    fn family(&self) -> i32 {
        AF_NETLINK
    }
    fn kind(&self) -> i32 {
        self.kind
    }
    fn protocol(&self) -> i32 {
        NETLINK_ROUTE
    }

    fn bind(&self, t: &Task, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < 12 {
            return Err(Errno::EINVAL);
        }
        if i32::from(u16::from_le_bytes([addr[0], addr[1]])) != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        let pid = u32::from_le_bytes([addr[4], addr[5], addr[6], addr[7]]);
        let mut st = self.lock();
        if pid != 0 {
            if st.port != 0 && st.port != pid {
                return Err(Errno::EINVAL);
            }
            st.port = pid;
        } else {
            self.ensure_port(&mut st, t.tgid());
        }
        Ok(())
    }

    fn connect(&self, c: &Ctx<'_>, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < 12 {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        self.ensure_port(&mut st, c.cred.pid);
        Ok(())
    }

    fn send(&self, c: &Ctx<'_>, msg: SendMsg<'_>) -> Result<usize, Errno> {
        let port = {
            let mut st = self.lock();
            self.ensure_port(&mut st, c.cred.pid);
            st.port
        };
        let data = msg.data;
        let mut off = 0;
        let mut replies = Vec::new();
        while off + NLMSG_HDR <= data.len() {
            let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            if len < NLMSG_HDR || off + len > data.len() {
                break;
            }
            let req = &data[off..off + len];
            let flags = u16::from_le_bytes([req[6], req[7]]);
            if flags & NLM_F_REQUEST != 0 {
                replies.extend(self.answer(req, port));
            }
            off += (len + 3) & !3;
        }
        // Pack the replies into datagrams, as the kernel fills a dump skb.
        let mut st = self.lock();
        let mut cur: Vec<u8> = Vec::new();
        for r in replies {
            if !cur.is_empty() && cur.len() + r.len() > DUMP_CHUNK {
                st.queue.push_back(std::mem::take(&mut cur));
            }
            cur.extend_from_slice(&r);
        }
        if !cur.is_empty() {
            st.queue.push_back(cur);
        }
        drop(st);
        self.q.notify(POLLIN | POLLRDNORM);
        Ok(data.len())
    }

    fn recv(&self, c: &Ctx<'_>, len: usize, flags: u32) -> Result<RecvMsg, Errno> {
        let peek = flags & MSG_PEEK != 0;
        let d = c.block(&self.q, || {
            let mut st = self.lock();
            Ok(if peek {
                st.queue.front().cloned()
            } else {
                st.queue.pop_front()
            })
        })?;
        let full = d.len();
        let mut data = d;
        data.truncate(len);
        let mut from = vec![0u8; 12];
        from[0..2].copy_from_slice(&(AF_NETLINK as u16).to_le_bytes());
        Ok(RecvMsg {
            data,
            full_len: full,
            addr: Some(from),
            flags: if full > len { MSG_TRUNC } else { 0 },
            ..RecvMsg::default()
        })
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        Ok(())
    }

    fn sockname(&self) -> Result<Vec<u8>, Errno> {
        let mut v = vec![0u8; 12];
        v[0..2].copy_from_slice(&(AF_NETLINK as u16).to_le_bytes());
        v[4..8].copy_from_slice(&self.lock().port.to_le_bytes());
        Ok(v)
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let mut v = vec![0u8; 12];
        v[0..2].copy_from_slice(&(AF_NETLINK as u16).to_le_bytes());
        Ok(v)
    }

    fn setsockopt(&self, _t: &Task, level: i32, _name: i32, val: &[u8]) -> Result<(), Errno> {
        const SOL_NETLINK: i32 = 270;
        match level {
            SOL_NETLINK | SOL_SOCKET => {
                opt_int(val)?;
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, _t: &Task, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        match (level, name) {
            (SOL_SOCKET, SO_RCVBUF | SO_SNDBUF) => Ok(int_opt(212_992)),
            (SOL_SOCKET, SO_ERROR | SO_ACCEPTCONN) => Ok(int_opt(0)),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn poll(&self) -> u32 {
        if self.lock().queue.is_empty() {
            POLLOUT | POLLWRNORM
        } else {
            POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM
        }
    }

    fn wait_queue(&self) -> &WaitQueue {
        &self.q
    }
}

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFTXQLEN: u32 = 0x8942;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const IFREQ: usize = 40;

fn sockaddr_in(ip: [u8; 4]) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
    s[4..8].copy_from_slice(&ip);
    s
}

/// The interface ioctls of any socket (`struct ifreq`, SIOCGIFCONF); setters are EPERM.
pub fn ifreq_ioctl(net: &NetStack, t: &mut Task, cmd: u32, arg: u64) -> SysResult {
    if cmd == SIOCGIFCONF {
        // struct ifconf { int len; char *buf; }: one entry per interface with an IPv4 address.
        let len: i32 = t.mm.read_obj(arg)?;
        let buf: u64 = t.mm.read_obj(arg + 8)?;
        let mut out = Vec::new();
        for l in &net.links {
            if let Some(IpAddr::V4(v4)) = l.addrs.iter().map(|a| a.0).find(IpAddr::is_ipv4) {
                let mut r = [0u8; IFREQ];
                let n = l.name.len().min(15);
                r[..n].copy_from_slice(&l.name.as_bytes()[..n]);
                r[16..32].copy_from_slice(&sockaddr_in(v4.octets()));
                out.extend_from_slice(&r);
            }
        }
        let used = if buf == 0 {
            out.len()
        } else {
            let n = (len.max(0) as usize / IFREQ * IFREQ).min(out.len());
            t.mm.copy_out(buf, &out[..n])?;
            n
        };
        t.mm.write_obj(arg, &(used as i32))?;
        return Ok(0);
    }
    if !(0x8910..=0x89ff).contains(&cmd) {
        return Err(Errno::ENOTTY);
    }
    let mut req = [0u8; IFREQ];
    t.mm.copy_in(arg, &mut req)?;
    let link = if cmd == SIOCGIFNAME {
        let idx = u32::from_le_bytes([req[16], req[17], req[18], req[19]]);
        net.links.iter().find(|l| l.index == idx)
    } else {
        let end = req[..16].iter().position(|&b| b == 0).unwrap_or(16);
        let name = &req[..end];
        net.links.iter().find(|l| l.name.as_bytes() == name)
    };
    let Some(l) = link else {
        return Err(Errno::ENODEV);
    };
    let v4 = l.addrs.iter().find_map(|(a, p)| match a {
        IpAddr::V4(v) => Some((*v, *p)),
        _ => None,
    });
    let mut data = [0u8; 24];
    match cmd {
        SIOCGIFNAME => {
            let n = l.name.len().min(15);
            req[..16].fill(0);
            req[..n].copy_from_slice(&l.name.as_bytes()[..n]);
            t.mm.copy_out(arg, &req)?;
            return Ok(0);
        }
        SIOCGIFFLAGS => data[0..2].copy_from_slice(&(link_flags(l) as u16).to_le_bytes()),
        SIOCGIFINDEX => data[0..4].copy_from_slice(&l.index.to_le_bytes()),
        SIOCGIFMTU => data[0..4].copy_from_slice(&l.mtu.to_le_bytes()),
        SIOCGIFTXQLEN => data[0..4].copy_from_slice(&1000u32.to_le_bytes()),
        SIOCGIFMETRIC => data[0..4].copy_from_slice(&0u32.to_le_bytes()),
        SIOCGIFHWADDR => {
            let fam = if l.loopback {
                ARPHRD_LOOPBACK
            } else {
                ARPHRD_ETHER
            };
            data[0..2].copy_from_slice(&fam.to_le_bytes());
            data[2..8].copy_from_slice(&l.mac.unwrap_or([0; 6]));
        }
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR => {
            let (a, p) = v4.ok_or(Errno::EADDRNOTAVAIL)?;
            let ip = match cmd {
                SIOCGIFADDR => u32::from(a),
                SIOCGIFNETMASK => prefix_mask_v4(p),
                _ => u32::from(a) | !prefix_mask_v4(p),
            };
            data[..16].copy_from_slice(&sockaddr_in(ip.to_be_bytes()));
        }
        // SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFDSTADDR, SIOCSIFBRDADDR, SIOCSIFNETMASK,
        // SIOCSIFMTU, SIOCSIFHWADDR: the app may not change interfaces.
        0x8914 | 0x8916 | 0x8918 | 0x891a | 0x891c | 0x8922 | 0x8924 => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    t.mm.copy_out(arg + 16, &data)?;
    Ok(0)
}
