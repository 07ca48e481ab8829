//! A host network interface's configuration, read and changed through rtnetlink in the calling
//! thread's network namespace: [`probe`] reads index, MAC, MTU, addresses and default gateways;
//! [`remove_addrs`] takes the addresses off the interface (RTM_DELADDR), so the host kernel in
//! that namespace stops answering ARP, neighbor solicitations and connections for them and the
//! netstack owns them alone, as gVisor's runsc does.
//!
//! Netlink messages are built and parsed here by hand over a plain NETLINK_ROUTE socket. Replies
//! are parsed through checked views: a malformed message is an error, never a panic.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use crate::stack::StackConfig;
use crate::sys;

// rtnetlink numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_GSO_MAX_SIZE: u16 = 41;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

/// How long to wait for the kernel's reply to a request.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest netlink reply datagram read at once (the kernel sends dump parts of about a page).
const RECV_BUF: usize = 64 * 1024;

/// Why reading or changing a host interface failed.
#[derive(Debug, thiserror::Error)]
pub enum HostIfError {
    /// The NETLINK_ROUTE socket could not be opened.
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),
    /// Sending a request or reading its reply failed.
    #[error("netlink request {what} failed")]
    Request {
        /// The request.
        what: &'static str,
        /// The socket error, or the kernel's errno for the request.
        #[source]
        source: io::Error,
    },
    /// The kernel's reply did not parse.
    #[error("malformed netlink reply to {0}")]
    Malformed(&'static str),
    /// No interface has the name.
    #[error("no interface named {0}")]
    NoSuchInterface(String),
    /// The kernel refused to remove an address.
    #[error("cannot remove {addr}/{prefix_len} from interface {index}")]
    RemoveAddr {
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface index.
        index: u32,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
}

/// A host interface as [`probe`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfConfig {
    /// Interface name.
    pub name: String,
    /// Interface index (ifindex).
    pub index: u32,
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IP MTU.
    pub mtu: u32,
    /// Whether the interface is administratively up (IFF_UP).
    pub up: bool,
    /// Whether it is a loopback interface (IFF_LOOPBACK).
    pub loopback: bool,
    /// Largest GSO packet the interface takes (IFLA_GSO_MAX_SIZE), when the kernel says.
    pub gso_max_size: Option<u32>,
    /// IPv4 addresses and IPv6 addresses other than link-local, with prefix lengths: what the
    /// netstack takes over.
    pub addrs: Vec<(IpAddr, u8)>,
    /// IPv6 link-local addresses (fe80::/10), left to the host.
    pub link_local_v6: Vec<(Ipv6Addr, u8)>,
    /// Gateway of the IPv4 default route through this interface (lowest metric).
    pub gateway_v4: Option<Ipv4Addr>,
    /// Gateway of the IPv6 default route through this interface (lowest metric).
    pub gateway_v6: Option<Ipv6Addr>,
}

impl IfConfig {
    /// The stack configuration for a stack on this interface: its addresses and the loopback's
    /// (127.0.0.1/8, ::1/128), its gateways and MAC.
    pub fn stack_config(&self, random_seed: u64) -> StackConfig {
        let mut config = StackConfig::loopback(random_seed);
        let mut addrs = self.addrs.clone();
        addrs.append(&mut config.addrs);
        config.addrs = addrs;
        config.gateway_v4 = self.gateway_v4;
        config.gateway_v6 = self.gateway_v6;
        config.mac = Some(self.mac);
        config
    }
}

/// Reads interface `name` of the calling thread's network namespace: link, addresses, and
/// default routes of the main table that leave through it.
pub fn probe(name: &str) -> Result<IfConfig, HostIfError> {
    let nl = Netlink::open()?;
    let link = nl.get_link(name)?;
    let mut config = IfConfig {
        name: link.name.unwrap_or_else(|| name.to_owned()),
        index: link.index,
        mac: link.mac.unwrap_or([0; 6]),
        mtu: link.mtu.unwrap_or(1500),
        up: link.flags & IFF_UP != 0,
        loopback: link.flags & IFF_LOOPBACK != 0,
        gso_max_size: link.gso_max_size,
        addrs: Vec::new(),
        link_local_v6: Vec::new(),
        gateway_v4: None,
        gateway_v6: None,
    };
    for addr in nl.get_addrs()? {
        if addr.index != config.index {
            continue;
        }
        match addr.addr {
            IpAddr::V6(v6) if is_link_local_v6(v6) => {
                config.link_local_v6.push((v6, addr.prefix_len))
            }
            ip => config.addrs.push((ip, addr.prefix_len)),
        }
    }
    let mut best_v4: Option<(u32, Ipv4Addr)> = None;
    let mut best_v6: Option<(u32, Ipv6Addr)> = None;
    for route in nl.get_routes()? {
        if route.oif != Some(config.index)
            || route.dst_len != 0
            || route.table != RT_TABLE_MAIN
            || route.kind != RTN_UNICAST
        {
            continue;
        }
        let metric = route.priority.unwrap_or(0);
        match route.gateway {
            Some(IpAddr::V4(gw)) if best_v4.is_none_or(|(m, _)| metric < m) => {
                best_v4 = Some((metric, gw))
            }
            Some(IpAddr::V6(gw)) if best_v6.is_none_or(|(m, _)| metric < m) => {
                best_v6 = Some((metric, gw))
            }
            _ => {}
        }
    }
    config.gateway_v4 = best_v4.map(|(_, gw)| gw);
    config.gateway_v6 = best_v6.map(|(_, gw)| gw);
    Ok(config)
}

/// Removes `addrs` from interface `index` (RTM_DELADDR each). The kernel drops the routes that
/// depended on them as well, so read routes ([`probe`]) first. An address already gone is not
/// an error.
pub fn remove_addrs(index: u32, addrs: &[(IpAddr, u8)]) -> Result<(), HostIfError> {
    let nl = Netlink::open()?;
    for &(addr, prefix_len) in addrs {
        match nl.del_addr(index, addr, prefix_len) {
            Err(source) if source.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
            Err(source) => {
                return Err(HostIfError::RemoveAddr {
                    addr,
                    prefix_len,
                    index,
                    source,
                })
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

fn is_link_local_v6(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// A NETLINK_ROUTE socket with a request counter.
struct Netlink {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

impl Netlink {
    fn open() -> Result<Self, HostIfError> {
        let fd = sys::netlink_route_socket().map_err(HostIfError::Socket)?;
        // The kernel answers at once; a reply that never comes must not hang the caller.
        sys::set_recv_timeout(fd.as_fd(), REPLY_TIMEOUT).map_err(HostIfError::Socket)?;
        Ok(Self {
            fd,
            seq: std::cell::Cell::new(1),
        })
    }

    /// Sends a request built by `body` and collects the payloads of reply messages of type
    /// `reply_type` until the reply ends (NLMSG_DONE, an ack, or a single non-multipart
    /// message).
    fn request(
        &self,
        what: &'static str,
        msg_type: u16,
        flags: u16,
        body: &[u8],
        reply_type: u16,
    ) -> Result<Vec<Vec<u8>>, HostIfError> {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        let request = message(msg_type, NLM_F_REQUEST | flags, seq, body);
        let fail = |source: io::Error| HostIfError::Request { what, source };
        sys::send(self.fd.as_fd(), &request).map_err(fail)?;
        let mut buf = vec![0u8; RECV_BUF];
        let mut out = Vec::new();
        loop {
            let len = sys::recv_datagram(self.fd.as_fd(), &mut buf).map_err(fail)?;
            let datagram = buf.get(..len).ok_or(HostIfError::Malformed(what))?;
            for msg in Messages::new(datagram) {
                let msg = msg.ok_or(HostIfError::Malformed(what))?;
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = msg.error_code().ok_or(HostIfError::Malformed(what))?;
                        if errno == 0 {
                            return Ok(out);
                        }
                        return Err(fail(io::Error::from_raw_os_error(errno)));
                    }
                    kind if kind == reply_type => {
                        out.push(msg.payload.to_vec());
                        if msg.flags & NLM_F_MULTI == 0 && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn get_link(&self, name: &str) -> Result<LinkMsg, HostIfError> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        let mut ifname = name.as_bytes().to_vec();
        ifname.push(0);
        push_attr(&mut body, IFLA_IFNAME, &ifname);
        let replies = self
            .request("RTM_GETLINK", RTM_GETLINK, 0, &body, RTM_NEWLINK)
            .map_err(|e| match e {
                HostIfError::Request { source, .. }
                    if source.raw_os_error() == Some(libc::ENODEV) =>
                {
                    HostIfError::NoSuchInterface(name.to_owned())
                }
                e => e,
            })?;
        let reply = replies
            .first()
            .ok_or_else(|| HostIfError::NoSuchInterface(name.to_owned()))?;
        LinkMsg::parse(reply).ok_or(HostIfError::Malformed("RTM_GETLINK"))
    }

    fn get_addrs(&self) -> Result<Vec<AddrMsg>, HostIfError> {
        let body = [0u8; IFADDRMSG_LEN];
        let replies = self.request("RTM_GETADDR", RTM_GETADDR, NLM_F_DUMP, &body, RTM_NEWADDR)?;
        // Families other than IPv4 and IPv6 have no address to take.
        Ok(replies.iter().filter_map(|r| AddrMsg::parse(r)).collect())
    }

    fn get_routes(&self) -> Result<Vec<RouteMsg>, HostIfError> {
        let body = [0u8; RTMSG_LEN];
        let replies = self.request(
            "RTM_GETROUTE",
            RTM_GETROUTE,
            NLM_F_DUMP,
            &body,
            RTM_NEWROUTE,
        )?;
        Ok(replies.iter().filter_map(|r| RouteMsg::parse(r)).collect())
    }

    fn del_addr(&self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let mut body = Vec::with_capacity(IFADDRMSG_LEN + 2 * 20);
        body.push(match addr {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        });
        body.push(prefix_len);
        body.push(0); // flags
        body.push(0); // scope
        body.extend_from_slice(&index.to_ne_bytes());
        match addr {
            IpAddr::V4(v4) => {
                push_attr(&mut body, IFA_LOCAL, &v4.octets());
                push_attr(&mut body, IFA_ADDRESS, &v4.octets());
            }
            IpAddr::V6(v6) => push_attr(&mut body, IFA_ADDRESS, &v6.octets()),
        }
        match self.request("RTM_DELADDR", RTM_DELADDR, NLM_F_ACK, &body, 0) {
            Ok(_) => Ok(()),
            Err(HostIfError::Request { source, .. }) => Err(source),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// A netlink message: header, then `body`.
fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR_LEN + body.len();
    let mut msg = Vec::with_capacity(len);
    // Requests are a few hundred bytes at most.
    msg.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills in ours
    msg.extend_from_slice(body);
    msg
}

/// Appends a route attribute, padded to 4 bytes.
fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + align4(len) - len, 0);
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// A checked view of one netlink message.
#[derive(Debug)]
struct Message<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

impl Message<'_> {
    /// The errno of an NLMSG_ERROR message (0 for an ack), positive.
    fn error_code(&self) -> Option<i32> {
        let code = i32::from_ne_bytes(self.payload.get(..4)?.try_into().ok()?);
        Some(code.checked_neg()?.max(0))
    }
}

/// The messages of a netlink datagram; yields `None` once for a truncated or malformed one,
/// then stops.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Self {
        Self { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Option<Message<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = usize::try_from(u32_at(self.rest, 0)?).ok()?;
            if len < NLMSG_HDR_LEN || len > self.rest.len() {
                return None;
            }
            let msg = Message {
                kind: u16_at(self.rest, 4)?,
                flags: u16_at(self.rest, 6)?,
                seq: u32_at(self.rest, 8)?,
                payload: self.rest.get(NLMSG_HDR_LEN..len)?,
            };
            Some((msg, align4(len).min(self.rest.len())))
        })();
        match parsed {
            Some((msg, advance)) => {
                self.rest = self.rest.get(advance..).unwrap_or(&[]);
                Some(Some(msg))
            }
            None => {
                self.rest = &[];
                Some(None)
            }
        }
    }
}

/// The attributes after a fixed header; stops at the first malformed one.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if len < 4 {
            return None;
        }
        let data = rest.get(4..len)?;
        rest = rest.get(align4(len).min(rest.len())..).unwrap_or(&[]);
        Some((kind, data))
    })
}

fn ip_of(family: u8, data: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(data.get(..4)?).ok()?,
        ))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(data.get(..16)?).ok()?,
        ))),
        _ => None,
    }
}

/// An RTM_NEWLINK payload.
#[derive(Debug, Default, PartialEq, Eq)]
struct LinkMsg {
    index: u32,
    flags: u32,
    name: Option<String>,
    mac: Option<[u8; 6]>,
    mtu: Option<u32>,
    gso_max_size: Option<u32>,
}

impl LinkMsg {
    fn parse(payload: &[u8]) -> Option<Self> {
        let mut link = LinkMsg {
            index: u32_at(payload, 4)?,
            flags: u32_at(payload, 8)?,
            ..LinkMsg::default()
        };
        for (kind, data) in attrs(payload.get(IFINFOMSG_LEN..)?) {
            match kind {
                IFLA_IFNAME => {
                    let name = data.split(|&b| b == 0).next().unwrap_or(data);
                    link.name = Some(String::from_utf8_lossy(name).into_owned());
                }
                IFLA_ADDRESS => link.mac = data.try_into().ok(),
                IFLA_MTU => link.mtu = u32_at(data, 0),
                IFLA_GSO_MAX_SIZE => link.gso_max_size = u32_at(data, 0),
                _ => {}
            }
        }
        Some(link)
    }
}

/// An RTM_NEWADDR payload of IPv4 or IPv6.
#[derive(Debug, PartialEq, Eq)]
struct AddrMsg {
    index: u32,
    prefix_len: u8,
    flags: u32,
    addr: IpAddr,
}

impl AddrMsg {
    fn parse(payload: &[u8]) -> Option<Self> {
        let family = *payload.first()?;
        let prefix_len = *payload.get(1)?;
        let mut flags = u32::from(*payload.get(2)?);
        let index = u32_at(payload, 4)?;
        let (mut local, mut address) = (None, None);
        for (kind, data) in attrs(payload.get(IFADDRMSG_LEN..)?) {
            match kind {
                IFA_LOCAL => local = ip_of(family, data),
                IFA_ADDRESS => address = ip_of(family, data),
                IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on a
        // point-to-point link, and the only one for IPv6.
        Some(AddrMsg {
            index,
            prefix_len,
            flags,
            addr: local.or(address)?,
        })
    }
}

/// An RTM_NEWROUTE payload.
#[derive(Debug, PartialEq, Eq)]
struct RouteMsg {
    dst_len: u8,
    table: u32,
    kind: u8,
    oif: Option<u32>,
    gateway: Option<IpAddr>,
    priority: Option<u32>,
}

impl RouteMsg {
    fn parse(payload: &[u8]) -> Option<Self> {
        let family = *payload.first()?;
        let mut route = RouteMsg {
            dst_len: *payload.get(1)?,
            table: u32::from(*payload.get(4)?),
            kind: *payload.get(7)?,
            oif: None,
            gateway: None,
            priority: None,
        };
        for (kind, data) in attrs(payload.get(RTMSG_LEN..)?) {
            match kind {
                RTA_OIF => route.oif = u32_at(data, 0),
                RTA_GATEWAY => route.gateway = ip_of(family, data),
                RTA_PRIORITY => route.priority = u32_at(data, 0),
                RTA_TABLE => route.table = u32_at(data, 0).unwrap_or(route.table),
                _ => {}
            }
        }
        Some(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr_payload(family: u8, prefix: u8, index: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        for (kind, data) in attrs {
            push_attr(&mut body, *kind, data);
        }
        body
    }

    #[test]
    fn addr_message_prefers_the_local_address() {
        let local = [10, 0, 0, 1];
        let peer = [10, 0, 0, 2];
        let payload = addr_payload(AF_INET, 24, 3, &[(IFA_ADDRESS, &peer), (IFA_LOCAL, &local)]);
        let msg = AddrMsg::parse(&payload).unwrap();
        assert_eq!(msg.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((msg.index, msg.prefix_len), (3, 24));
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7).octets();
        let payload = addr_payload(AF_INET6, 64, 3, &[(IFA_ADDRESS, &v6)]);
        assert_eq!(
            AddrMsg::parse(&payload).unwrap().addr,
            IpAddr::V6(Ipv6Addr::from(v6))
        );
    }

    #[test]
    fn messages_stop_at_a_truncated_header() {
        let mut datagram = message(RTM_NEWADDR, NLM_F_MULTI, 5, &[1, 2, 3, 4]);
        let first_len = datagram.len();
        datagram.extend_from_slice(&message(NLMSG_DONE, NLM_F_MULTI, 5, &[0; 4]));
        datagram.truncate(first_len + 10);
        let msgs: Vec<_> = Messages::new(&datagram).collect();
        assert_eq!(msgs.len(), 2);
        let first = msgs[0].as_ref().unwrap();
        assert_eq!(
            (first.kind, first.seq, first.payload),
            (RTM_NEWADDR, 5, &[1, 2, 3, 4][..])
        );
        assert!(msgs[1].is_none());
    }

    #[test]
    fn error_message_carries_a_positive_errno() {
        let msg = Message {
            kind: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            payload: &(-libc::ENODEV).to_ne_bytes(),
        };
        assert_eq!(msg.error_code(), Some(libc::ENODEV));
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        assert!(is_link_local_v6("fe80::1".parse().unwrap()));
        assert!(is_link_local_v6("febf::1".parse().unwrap()));
        assert!(!is_link_local_v6("fec0::1".parse().unwrap()));
        assert!(!is_link_local_v6("fd00::1".parse().unwrap()));
    }

    #[test]
    fn stack_config_has_the_interface_and_the_loopback() {
        let config = IfConfig {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            up: true,
            loopback: false,
            gso_max_size: None,
            addrs: vec![(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 24)],
            link_local_v6: vec![("fe80::1".parse().unwrap(), 64)],
            gateway_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            gateway_v6: None,
        };
        let stack = config.stack_config(9);
        assert_eq!(
            stack.addrs,
            vec![
                (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 24),
                (IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ]
        );
        assert_eq!(stack.gateway_v4, config.gateway_v4);
        assert_eq!(stack.mac, Some(config.mac));
        assert_eq!(stack.random_seed, 9);
    }

    #[test]
    fn probe_reads_the_loopback_of_this_namespace() {
        let lo = probe("lo").unwrap();
        assert!(lo.loopback);
        assert_eq!(lo.mac, [0; 6]);
        assert!(lo.index > 0);
        if lo.up {
            assert!(lo.addrs.contains(&(IpAddr::V4(Ipv4Addr::LOCALHOST), 8)));
        }
        assert!(matches!(
            probe("no-such-if0"),
            Err(HostIfError::NoSuchInterface(_))
        ));
    }

    /// Seeded random and mutated input through the parsers: they must never panic.
    #[test]
    fn parsers_survive_random_input() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let v6 = Ipv6Addr::LOCALHOST.octets();
        let valid = message(
            RTM_NEWADDR,
            NLM_F_MULTI,
            1,
            &addr_payload(AF_INET6, 128, 1, &[(IFA_ADDRESS, &v6)]),
        );
        for round in 0..20_000 {
            let mut buf = if round % 2 == 0 {
                valid.clone()
            } else {
                let len = usize::try_from(next() % 96).unwrap();
                (0..len).map(|_| next().to_le_bytes()[0]).collect()
            };
            if !buf.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = usize::try_from(next()).unwrap() % buf.len();
                    buf[at] = next().to_le_bytes()[0];
                }
            }
            for msg in Messages::new(&buf).flatten() {
                let _ = msg.error_code();
                let _ = LinkMsg::parse(msg.payload);
                let _ = AddrMsg::parse(msg.payload);
                let _ = RouteMsg::parse(msg.payload);
            }
            let _ = LinkMsg::parse(&buf);
            let _ = AddrMsg::parse(&buf);
            let _ = RouteMsg::parse(&buf);
        }
    }
}
