//! Between the stored records and CRI v1's messages: records out (list items and statuses),
//! filters and the checked pieces of requests in. An enum value CRI does not define, a port
//! beyond 16 bits or a malformed address is refused with [`FromCriError`], which RuntimeService
//! answers with InvalidArgument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::db::{ContainerFilter, PodFilter};
use super::records::{
    Container, ContainerMetadata, ContainerState, DnsConfig, Mount, NamespaceMode, NamespaceModes,
    PodMetadata, PodSandbox, PodState, PortMapping, Propagation, Protocol, Resources,
    SecurityProfile, StringMap,
};
use crate::{api, cni};

/// Why a CRI value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromCriError {
    #[error("{what} {value} is not a value CRI v1 defines")]
    UnknownEnum { what: &'static str, value: i32 },
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: i64 },
    #[error("{what} {value:?} is not an IP address")]
    Ip { what: &'static str, value: String },
}

fn to_hash_map(m: &StringMap) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A CRI map as a [`StringMap`].
pub fn string_map(m: &HashMap<String, String>) -> StringMap {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn unknown(what: &'static str, value: i32) -> FromCriError {
    FromCriError::UnknownEnum { what, value }
}

impl PodState {
    /// The CRI enum value (PodSandboxState).
    pub fn to_cri(self) -> i32 {
        let s = match self {
            Self::Ready => api::PodSandboxState::SandboxReady,
            Self::NotReady => api::PodSandboxState::SandboxNotready,
        };
        s as i32
    }

    pub fn from_cri(value: i32) -> Result<Self, FromCriError> {
        match api::PodSandboxState::try_from(value) {
            Ok(api::PodSandboxState::SandboxReady) => Ok(Self::Ready),
            Ok(api::PodSandboxState::SandboxNotready) => Ok(Self::NotReady),
            Err(_) => Err(unknown("pod sandbox state", value)),
        }
    }
}

impl ContainerState {
    /// The CRI enum value (ContainerState).
    pub fn to_cri(self) -> i32 {
        let s = match self {
            Self::Created => api::ContainerState::ContainerCreated,
            Self::Running => api::ContainerState::ContainerRunning,
            Self::Exited => api::ContainerState::ContainerExited,
            Self::Unknown => api::ContainerState::ContainerUnknown,
        };
        s as i32
    }

    pub fn from_cri(value: i32) -> Result<Self, FromCriError> {
        match api::ContainerState::try_from(value) {
            Ok(api::ContainerState::ContainerCreated) => Ok(Self::Created),
            Ok(api::ContainerState::ContainerRunning) => Ok(Self::Running),
            Ok(api::ContainerState::ContainerExited) => Ok(Self::Exited),
            Ok(api::ContainerState::ContainerUnknown) => Ok(Self::Unknown),
            Err(_) => Err(unknown("container state", value)),
        }
    }
}

impl From<&api::PodSandboxMetadata> for PodMetadata {
    fn from(m: &api::PodSandboxMetadata) -> Self {
        Self {
            name: m.name.clone(),
            uid: m.uid.clone(),
            namespace: m.namespace.clone(),
            attempt: m.attempt,
        }
    }
}

impl From<&PodMetadata> for api::PodSandboxMetadata {
    fn from(m: &PodMetadata) -> Self {
        Self {
            name: m.name.clone(),
            uid: m.uid.clone(),
            namespace: m.namespace.clone(),
            attempt: m.attempt,
        }
    }
}

impl From<&api::ContainerMetadata> for ContainerMetadata {
    fn from(m: &api::ContainerMetadata) -> Self {
        Self {
            name: m.name.clone(),
            attempt: m.attempt,
        }
    }
}

impl From<&ContainerMetadata> for api::ContainerMetadata {
    fn from(m: &ContainerMetadata) -> Self {
        Self {
            name: m.name.clone(),
            attempt: m.attempt,
        }
    }
}

impl From<&PodSandbox> for api::PodSandbox {
    fn from(p: &PodSandbox) -> Self {
        Self {
            id: p.id.clone(),
            metadata: Some((&p.metadata).into()),
            state: p.state.to_cri(),
            created_at: p.created_at,
            labels: to_hash_map(&p.labels),
            annotations: to_hash_map(&p.annotations),
            runtime_handler: p.runtime_handler.clone(),
        }
    }
}

impl PodSandbox {
    /// The PodSandboxStatus of this pod (the response's `info` and container statuses are the
    /// caller's).
    pub fn to_cri_status(&self) -> api::PodSandboxStatus {
        let mut ips = self.network.ips.iter().map(IpAddr::to_string);
        let network = api::PodSandboxNetworkStatus {
            ip: ips.next().unwrap_or_default(),
            additional_ips: ips.map(|ip| api::PodIp { ip }).collect(),
        };
        api::PodSandboxStatus {
            id: self.id.clone(),
            metadata: Some((&self.metadata).into()),
            state: self.state.to_cri(),
            created_at: self.created_at,
            network: Some(network),
            linux: Some(api::LinuxPodSandboxStatus {
                namespaces: Some(api::Namespace {
                    options: Some((&self.linux.security.namespaces).into()),
                }),
            }),
            labels: to_hash_map(&self.labels),
            annotations: to_hash_map(&self.annotations),
            runtime_handler: self.runtime_handler.clone(),
        }
    }
}

impl Container {
    fn cri_image(&self) -> api::ImageSpec {
        api::ImageSpec {
            image: self.image.clone(),
            user_specified_image: self.user_specified_image.clone(),
            ..Default::default()
        }
    }

    /// The ContainerStatus of this container; `log_directory` is its pod's, which a relative
    /// `log_path` is joined to (kubelet reads the logs at the path the status gives).
    pub fn to_cri_status(&self, log_directory: &str) -> api::ContainerStatus {
        let log_path = if self.log_path.is_empty() {
            String::new()
        } else {
            Path::new(log_directory)
                .join(&self.log_path)
                .to_string_lossy()
                .into_owned()
        };
        api::ContainerStatus {
            id: self.id.clone(),
            metadata: Some((&self.metadata).into()),
            state: self.state.to_cri(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit_code: self.exit_code,
            image: Some(self.cri_image()),
            image_ref: self.image_ref.clone(),
            reason: self.reason.clone(),
            message: self.message.clone(),
            labels: to_hash_map(&self.labels),
            annotations: to_hash_map(&self.annotations),
            mounts: self.mounts.iter().map(api::Mount::from).collect(),
            log_path,
            resources: Some(api::ContainerResources {
                linux: Some((&self.resources).into()),
                ..Default::default()
            }),
            image_id: self.image_id.clone(),
            user: Some(api::ContainerUser {
                linux: Some(api::LinuxContainerUser {
                    uid: self.user.uid.into(),
                    gid: self.user.gid.into(),
                    supplemental_groups: self
                        .user
                        .supplemental_groups
                        .iter()
                        .map(|&g| g.into())
                        .collect(),
                }),
            }),
        }
    }
}

impl From<&Container> for api::Container {
    fn from(c: &Container) -> Self {
        Self {
            id: c.id.clone(),
            pod_sandbox_id: c.pod_id.clone(),
            metadata: Some((&c.metadata).into()),
            image: Some(c.cri_image()),
            image_ref: c.image_ref.clone(),
            state: c.state.to_cri(),
            created_at: c.created_at,
            labels: to_hash_map(&c.labels),
            annotations: to_hash_map(&c.annotations),
            image_id: c.image_id.clone(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl TryFrom<&api::PodSandboxFilter> for PodFilter {
    type Error = FromCriError;

    fn try_from(f: &api::PodSandboxFilter) -> Result<Self, FromCriError> {
        Ok(Self {
            id: non_empty(&f.id),
            state: f
                .state
                .as_ref()
                .map(|s| PodState::from_cri(s.state))
                .transpose()?,
            labels: string_map(&f.label_selector),
        })
    }
}

impl TryFrom<&api::ContainerFilter> for ContainerFilter {
    type Error = FromCriError;

    fn try_from(f: &api::ContainerFilter) -> Result<Self, FromCriError> {
        Ok(Self {
            id: non_empty(&f.id),
            pod_id: non_empty(&f.pod_sandbox_id),
            state: f
                .state
                .as_ref()
                .map(|s| ContainerState::from_cri(s.state))
                .transpose()?,
            labels: string_map(&f.label_selector),
        })
    }
}

impl From<&api::DnsConfig> for DnsConfig {
    fn from(d: &api::DnsConfig) -> Self {
        Self {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }
    }
}

impl From<&DnsConfig> for api::DnsConfig {
    fn from(d: &DnsConfig) -> Self {
        Self {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }
    }
}

fn port(what: &'static str, value: i32) -> Result<u16, FromCriError> {
    u16::try_from(value).map_err(|_| FromCriError::OutOfRange {
        what,
        value: value.into(),
    })
}

impl TryFrom<&api::PortMapping> for PortMapping {
    type Error = FromCriError;

    fn try_from(m: &api::PortMapping) -> Result<Self, FromCriError> {
        let protocol = match api::Protocol::try_from(m.protocol) {
            Ok(api::Protocol::Tcp) => Protocol::Tcp,
            Ok(api::Protocol::Udp) => Protocol::Udp,
            Ok(api::Protocol::Sctp) => Protocol::Sctp,
            Err(_) => return Err(unknown("port mapping protocol", m.protocol)),
        };
        let host_ip = match m.host_ip.as_str() {
            "" => None,
            ip => Some(ip.parse().map_err(|_| FromCriError::Ip {
                what: "port mapping host IP",
                value: ip.to_owned(),
            })?),
        };
        Ok(Self {
            protocol,
            container_port: port("container port", m.container_port)?,
            host_port: port("host port", m.host_port)?,
            host_ip,
        })
    }
}

impl From<&PortMapping> for api::PortMapping {
    fn from(m: &PortMapping) -> Self {
        let protocol = match m.protocol {
            Protocol::Tcp => api::Protocol::Tcp,
            Protocol::Udp => api::Protocol::Udp,
            Protocol::Sctp => api::Protocol::Sctp,
        };
        Self {
            protocol: protocol as i32,
            container_port: m.container_port.into(),
            host_port: m.host_port.into(),
            host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        }
    }
}

impl From<&PortMapping> for cni::PortMapping {
    fn from(m: &PortMapping) -> Self {
        Self {
            host_port: m.host_port,
            container_port: m.container_port,
            protocol: match m.protocol {
                Protocol::Tcp => cni::Protocol::Tcp,
                Protocol::Udp => cni::Protocol::Udp,
                Protocol::Sctp => cni::Protocol::Sctp,
            },
            host_ip: m.host_ip,
        }
    }
}

fn namespace_mode(what: &'static str, value: i32) -> Result<NamespaceMode, FromCriError> {
    match api::NamespaceMode::try_from(value) {
        Ok(api::NamespaceMode::Pod) => Ok(NamespaceMode::Pod),
        Ok(api::NamespaceMode::Container) => Ok(NamespaceMode::Container),
        Ok(api::NamespaceMode::Node) => Ok(NamespaceMode::Node),
        Ok(api::NamespaceMode::Target) => Ok(NamespaceMode::Target),
        Err(_) => Err(unknown(what, value)),
    }
}

fn namespace_mode_to_cri(mode: NamespaceMode) -> i32 {
    let m = match mode {
        NamespaceMode::Pod => api::NamespaceMode::Pod,
        NamespaceMode::Container => api::NamespaceMode::Container,
        NamespaceMode::Node => api::NamespaceMode::Node,
        NamespaceMode::Target => api::NamespaceMode::Target,
    };
    m as i32
}

impl TryFrom<&api::NamespaceOption> for NamespaceModes {
    type Error = FromCriError;

    fn try_from(o: &api::NamespaceOption) -> Result<Self, FromCriError> {
        Ok(Self {
            network: namespace_mode("network namespace mode", o.network)?,
            pid: namespace_mode("pid namespace mode", o.pid)?,
            ipc: namespace_mode("ipc namespace mode", o.ipc)?,
            target_id: o.target_id.clone(),
        })
    }
}

impl From<&NamespaceModes> for api::NamespaceOption {
    fn from(n: &NamespaceModes) -> Self {
        Self {
            network: namespace_mode_to_cri(n.network),
            pid: namespace_mode_to_cri(n.pid),
            ipc: namespace_mode_to_cri(n.ipc),
            target_id: n.target_id.clone(),
            ..Default::default()
        }
    }
}

impl TryFrom<&api::SecurityProfile> for SecurityProfile {
    type Error = FromCriError;

    fn try_from(p: &api::SecurityProfile) -> Result<Self, FromCriError> {
        use api::security_profile::ProfileType;
        match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(Self::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(Self::Unconfined),
            Ok(ProfileType::Localhost) => Ok(Self::Localhost {
                profile: p.localhost_ref.clone(),
            }),
            Err(_) => Err(unknown("security profile type", p.profile_type)),
        }
    }
}

impl From<&SecurityProfile> for api::SecurityProfile {
    fn from(p: &SecurityProfile) -> Self {
        use api::security_profile::ProfileType;
        let (t, localhost_ref) = match p {
            SecurityProfile::RuntimeDefault => (ProfileType::RuntimeDefault, String::new()),
            SecurityProfile::Unconfined => (ProfileType::Unconfined, String::new()),
            SecurityProfile::Localhost { profile } => (ProfileType::Localhost, profile.clone()),
        };
        Self {
            profile_type: t as i32,
            localhost_ref,
        }
    }
}

impl TryFrom<&api::Mount> for Mount {
    type Error = FromCriError;

    fn try_from(m: &api::Mount) -> Result<Self, FromCriError> {
        let propagation = match api::MountPropagation::try_from(m.propagation) {
            Ok(api::MountPropagation::PropagationPrivate) => Propagation::Private,
            Ok(api::MountPropagation::PropagationHostToContainer) => Propagation::HostToContainer,
            Ok(api::MountPropagation::PropagationBidirectional) => Propagation::Bidirectional,
            Err(_) => return Err(unknown("mount propagation", m.propagation)),
        };
        Ok(Self {
            container_path: m.container_path.clone(),
            host_path: m.host_path.clone(),
            readonly: m.readonly,
            recursive_read_only: m.recursive_read_only,
            selinux_relabel: m.selinux_relabel,
            propagation,
        })
    }
}

impl From<&Mount> for api::Mount {
    fn from(m: &Mount) -> Self {
        let propagation = match m.propagation {
            Propagation::Private => api::MountPropagation::PropagationPrivate,
            Propagation::HostToContainer => api::MountPropagation::PropagationHostToContainer,
            Propagation::Bidirectional => api::MountPropagation::PropagationBidirectional,
        };
        Self {
            container_path: m.container_path.clone(),
            host_path: m.host_path.clone(),
            readonly: m.readonly,
            recursive_read_only: m.recursive_read_only,
            selinux_relabel: m.selinux_relabel,
            propagation: propagation as i32,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxContainerResources> for Resources {
    fn from(r: &api::LinuxContainerResources) -> Self {
        Self {
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpu_shares: r.cpu_shares,
            memory_limit_in_bytes: r.memory_limit_in_bytes,
            memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
            oom_score_adj: r.oom_score_adj,
            cpuset_cpus: r.cpuset_cpus.clone(),
            cpuset_mems: r.cpuset_mems.clone(),
            unified: string_map(&r.unified),
        }
    }
}

impl From<&Resources> for api::LinuxContainerResources {
    fn from(r: &Resources) -> Self {
        Self {
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpu_shares: r.cpu_shares,
            memory_limit_in_bytes: r.memory_limit_in_bytes,
            memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
            oom_score_adj: r.oom_score_adj,
            cpuset_cpus: r.cpuset_cpus.clone(),
            cpuset_mems: r.cpuset_mems.clone(),
            unified: to_hash_map(&r.unified),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::records::{ContainerUser, PodMetadata, PodSecurity};

    #[test]
    fn port_mappings_are_checked() {
        let ok = api::PortMapping {
            protocol: api::Protocol::Udp as i32,
            container_port: 53,
            host_port: 5353,
            host_ip: "127.0.0.1".into(),
        };
        let m = PortMapping::try_from(&ok).unwrap();
        assert_eq!(m.protocol, Protocol::Udp);
        assert_eq!(m.host_ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(api::PortMapping::from(&m), ok);
        let c = cni::PortMapping::from(&m);
        assert_eq!((c.host_port, c.container_port), (5353, 53));
        for bad in [
            api::PortMapping {
                container_port: 70000,
                ..ok.clone()
            },
            api::PortMapping {
                host_port: -1,
                ..ok.clone()
            },
            api::PortMapping {
                protocol: 9,
                ..ok.clone()
            },
            api::PortMapping {
                host_ip: "localhost".into(),
                ..ok.clone()
            },
        ] {
            assert!(PortMapping::try_from(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_map_empty_fields_to_no_condition_and_refuse_unknown_states() {
        let f = api::ContainerFilter {
            id: String::new(),
            pod_sandbox_id: "abc".into(),
            state: Some(api::ContainerStateValue {
                state: api::ContainerState::ContainerExited as i32,
            }),
            label_selector: [("app".to_owned(), "web".to_owned())].into(),
        };
        let f = ContainerFilter::try_from(&f).unwrap();
        assert_eq!(f.id, None);
        assert_eq!(f.pod_id.as_deref(), Some("abc"));
        assert_eq!(f.state, Some(ContainerState::Exited));
        assert_eq!(f.labels.get("app").map(String::as_str), Some("web"));
        let bad = api::PodSandboxFilter {
            state: Some(api::PodSandboxStateValue { state: 7 }),
            ..Default::default()
        };
        assert_eq!(
            PodFilter::try_from(&bad),
            Err(FromCriError::UnknownEnum {
                what: "pod sandbox state",
                value: 7
            })
        );
    }

    #[test]
    fn pod_status_carries_ips_and_namespace_modes() {
        let mut pod = PodSandbox::new(
            "p1",
            PodMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "default".into(),
                attempt: 2,
            },
            42,
        );
        pod.state = PodState::NotReady;
        pod.network.ips = vec![
            IpAddr::from([10, 1, 0, 5]),
            "fd00::5".parse::<IpAddr>().unwrap(),
        ];
        pod.linux.security = PodSecurity {
            namespaces: NamespaceModes {
                network: NamespaceMode::Node,
                ..Default::default()
            },
            ..Default::default()
        };
        let s = pod.to_cri_status();
        assert_eq!(s.state, api::PodSandboxState::SandboxNotready as i32);
        let net = s.network.unwrap();
        assert_eq!(net.ip, "10.1.0.5");
        assert_eq!(
            net.additional_ips,
            vec![api::PodIp {
                ip: "fd00::5".into()
            }]
        );
        let ns = s.linux.unwrap().namespaces.unwrap().options.unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
        assert_eq!(ns.pid, api::NamespaceMode::Pod as i32);
        let item = api::PodSandbox::from(&pod);
        assert_eq!(item.metadata.unwrap().attempt, 2);
        assert_eq!(item.created_at, 42);
    }

    #[test]
    fn container_status_joins_the_log_path_and_reports_the_user() {
        let mut c = Container::new(
            "c1",
            "p1",
            ContainerMetadata {
                name: "app".into(),
                attempt: 1,
            },
            "docker.io/library/busybox:latest",
            1,
        );
        c.log_path = "app/1.log".into();
        c.state = ContainerState::Exited;
        c.exit_code = 3;
        c.user = ContainerUser {
            uid: 1000,
            gid: 100,
            supplemental_groups: vec![10],
        };
        c.mounts = vec![Mount {
            container_path: "/data".into(),
            host_path: "/srv/data".into(),
            readonly: true,
            recursive_read_only: false,
            selinux_relabel: false,
            propagation: Propagation::HostToContainer,
        }];
        let s = c.to_cri_status("/var/log/pods/default_web_u1");
        assert_eq!(s.log_path, "/var/log/pods/default_web_u1/app/1.log");
        assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
        assert_eq!(s.exit_code, 3);
        let user = s.user.unwrap().linux.unwrap();
        assert_eq!(
            (user.uid, user.gid, user.supplemental_groups),
            (1000, 100, vec![10])
        );
        assert_eq!(Mount::try_from(&s.mounts[0]).unwrap(), c.mounts[0]);
        assert_eq!(
            api::Container::from(&c).image.unwrap().image,
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn security_profiles_and_resources_round_trip() {
        for p in [
            SecurityProfile::RuntimeDefault,
            SecurityProfile::Unconfined,
            SecurityProfile::Localhost {
                profile: "profiles/audit.json".into(),
            },
        ] {
            let cri = api::SecurityProfile::from(&p);
            assert_eq!(SecurityProfile::try_from(&cri).unwrap(), p);
        }
        let r = Resources {
            cpu_quota: 50_000,
            cpu_period: 100_000,
            memory_limit_in_bytes: 64 << 20,
            unified: [("memory.high".to_owned(), "50000000".to_owned())].into(),
            ..Default::default()
        };
        assert_eq!(Resources::from(&api::LinuxContainerResources::from(&r)), r);
    }
}
