//! What a CNI ADD returns: the interfaces, addresses, routes and DNS settings of the attachment,
//! parsed from the plugin's JSON (spec 1.0.0 and 0.3.x/0.4.0, and the 0.1.0/0.2.0 `ip4`/`ip6` form).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

/// An address with its prefix length, as CNI writes it (`10.88.0.5/16`, `fd00::5/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IpNet {
    /// Whether `ip` lies in this address's network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} has no prefix length"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = len
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?} has a bad prefix length"))?;
        Ok(Self { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// An interface the plugins created or used.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    /// The namespace path the interface is in; empty for one on the host.
    pub sandbox: String,
}

/// An address given to the attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`] of the interface holding the address.
    pub interface: Option<usize>,
}

/// A route the plugins installed in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

/// DNS settings the plugins suggest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: String,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The result of the last plugin of an ADD: what the pod's network looks like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

impl CniResult {
    /// Parses a result object. Unknown fields are ignored; a malformed address is an error.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let raw = RawResult::deserialize(value).map_err(|e| e.to_string())?;
        let mut ips = Vec::new();
        for ip in raw.ips {
            ips.push(IpConfig {
                address: ip.address.parse()?,
                gateway: parse_opt_ip(ip.gateway.as_deref())?,
                interface: ip.interface,
            });
        }
        let mut routes = Vec::new();
        for r in raw.routes {
            routes.push(r.parse()?);
        }
        // 0.1.0 and 0.2.0 results: one address per family, with its routes beside it.
        for legacy in [raw.ip4, raw.ip6].into_iter().flatten() {
            ips.push(IpConfig {
                address: legacy.ip.parse()?,
                gateway: parse_opt_ip(legacy.gateway.as_deref())?,
                interface: None,
            });
            for r in legacy.routes {
                routes.push(r.parse()?);
            }
        }
        Ok(Self {
            cni_version: raw.cni_version,
            interfaces: raw
                .interfaces
                .into_iter()
                .map(|i| Interface {
                    name: i.name,
                    mac: i.mac,
                    sandbox: i.sandbox,
                })
                .collect(),
            ips,
            routes,
            dns: Dns {
                nameservers: raw.dns.nameservers,
                domain: raw.dns.domain,
                search: raw.dns.search,
                options: raw.dns.options,
            },
        })
    }

    /// The addresses of the pod's interface `ifname` (the pod IPs), in the order the plugins gave
    /// them. Addresses that name no interface count as the pod's (older results never name one).
    pub fn pod_ips(&self, ifname: &str) -> Vec<IpNet> {
        self.ips
            .iter()
            .filter(
                |ip| match ip.interface.and_then(|i| self.interfaces.get(i)) {
                    Some(iface) => iface.name == ifname && !iface.sandbox.is_empty(),
                    None => true,
                },
            )
            .map(|ip| ip.address)
            .collect()
    }
}

fn parse_opt_ip(s: Option<&str>) -> Result<Option<IpAddr>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not an address")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResult {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    interfaces: Vec<RawInterface>,
    #[serde(default)]
    ips: Vec<RawIp>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    dns: RawDns,
    ip4: Option<RawLegacyIp>,
    ip6: Option<RawLegacyIp>,
}

#[derive(Deserialize)]
struct RawInterface {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    sandbox: String,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    gateway: Option<String>,
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    gw: Option<String>,
}

impl RawRoute {
    fn parse(self) -> Result<Route, String> {
        Ok(Route {
            dst: self.dst.parse()?,
            gw: parse_opt_ip(self.gw.as_deref())?,
        })
    }
}

#[derive(Deserialize, Default)]
struct RawDns {
    #[serde(default)]
    nameservers: Vec<String>,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    search: Vec<String>,
    #[serde(default)]
    options: Vec<String>,
}

#[derive(Deserialize)]
struct RawLegacyIp {
    ip: String,
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

/// The error a plugin reports on stdout when it exits non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct PluginErrorReply {
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the bridge plugin (containernetworking-plugins 1.1.1) printed for an ADD with
    /// host-local IPAM at cniVersion 1.0.0.
    const BRIDGE_1_0_0: &str = r#"{
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "cni0", "mac": "8a:23:33:6f:1c:3e"},
            {"name": "veth0c6ae3bb", "mac": "be:7b:38:63:46:40"},
            {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/p1"}
        ],
        "ips": [{"interface": 2, "address": "10.88.0.5/16", "gateway": "10.88.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {}
    }"#;

    #[test]
    fn bridge_result_gives_pod_ip_on_sandbox_interface() {
        let r = CniResult::parse(&serde_json::from_str(BRIDGE_1_0_0).unwrap()).unwrap();
        assert_eq!(r.cni_version, "1.0.0");
        assert_eq!(r.interfaces.len(), 3);
        assert_eq!(r.interfaces[2].sandbox, "/run/netns/p1");
        assert_eq!(
            r.ips[0].gateway,
            Some(IpAddr::from([10, 88, 0, 1])),
            "gateway"
        );
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(r.routes[0].gw, None);
        let ips = r.pod_ips("eth0");
        assert_eq!(ips.len(), 1);
        assert_eq!(ips[0].to_string(), "10.88.0.5/16");
        assert!(r.pod_ips("eth1").is_empty());
    }

    #[test]
    fn version_0_4_0_result_with_ipv6_and_dns_parses() {
        let v = serde_json::json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "eth0", "sandbox": "/x"}],
            "ips": [
                {"version": "4", "interface": 0, "address": "192.0.2.9/24"},
                {"version": "6", "interface": 0, "address": "fd00::9/64", "gateway": "fd00::1"}
            ],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
        });
        let r = CniResult::parse(&v).unwrap();
        assert_eq!(r.pod_ips("eth0").len(), 2);
        assert_eq!(r.ips[1].gateway, Some("fd00::1".parse().unwrap()));
        assert_eq!(r.dns.nameservers, ["10.96.0.10"]);
        assert_eq!(r.dns.search, ["svc.cluster.local"]);
    }

    #[test]
    fn legacy_ip4_result_becomes_an_ip_and_routes() {
        let v = serde_json::json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.1.2.3/8", "gateway": "10.0.0.1", "routes": [{"dst": "0.0.0.0/0"}]}
        });
        let r = CniResult::parse(&v).unwrap();
        assert_eq!(r.pod_ips("eth0")[0].to_string(), "10.1.2.3/8");
        assert_eq!(r.routes.len(), 1);
    }

    #[test]
    fn malformed_addresses_are_errors() {
        for bad in [
            serde_json::json!({"ips": [{"address": "10.0.0.1"}]}),
            serde_json::json!({"ips": [{"address": "10.0.0.1/33"}]}),
            serde_json::json!({"ips": [{"address": "x/8"}]}),
            serde_json::json!({"ips": [{"address": "10.0.0.1/8", "gateway": "nope"}]}),
            serde_json::json!({"ips": "no"}),
        ] {
            assert!(CniResult::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipnet_contains_checks_the_prefix() {
        let net: IpNet = "10.88.3.7/24".parse().unwrap();
        assert!(net.contains("10.88.3.200".parse().unwrap()));
        assert!(!net.contains("10.88.4.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
    }

    #[test]
    fn plugin_error_reply_parses() {
        let e: PluginErrorReply = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no subnet"}"#,
        )
        .unwrap();
        assert_eq!((e.code, e.msg.as_str()), (7, "bad config"));
        assert_eq!(e.details, "no subnet");
    }
}
