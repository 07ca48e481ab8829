//! The records the state store keeps: what the daemon remembers of each pod sandbox and
//! container, as plain serde data. Field names follow CRI v1's messages (`cri.rs` maps them one to
//! one); times are nanoseconds since the Unix epoch, as in CRI, with 0 for "not yet".
//!
//! Compatibility: a field added later carries `#[serde(default)]`, so records written by an older
//! moat-cri still decode; unknown fields are ignored, so a downgrade reads what it knows.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Labels, annotations, sysctls: ordered, so a record encodes the same way every time.
pub type StringMap = BTreeMap<String, String>;

/// CRI's PodSandboxState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodState {
    Ready,
    NotReady,
}

/// CRI's ContainerState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// CRI's PodSandboxMetadata: who the pod is to Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMetadata {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
}

/// One pod sandbox: one sentry and one gofer, and the containers in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandbox {
    pub id: String,
    pub metadata: PodMetadata,
    pub state: PodState,
    pub created_at: i64,
    #[serde(default)]
    pub labels: StringMap,
    #[serde(default)]
    pub annotations: StringMap,
    /// The RuntimeClass handler the pod was run with.
    #[serde(default)]
    pub runtime_handler: String,
    #[serde(default)]
    pub hostname: String,
    /// The directory container log paths are relative to (PodSandboxConfig.log_directory).
    #[serde(default)]
    pub log_directory: String,
    /// What the pod's resolv.conf was written from; `None` keeps the image's.
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub network: PodNetworkState,
    #[serde(default)]
    pub linux: PodLinux,
    /// The pod's sentry and gofer; `None` until they are started, and after they are gone.
    #[serde(default)]
    pub sandbox: Option<SandboxProcesses>,
}

impl PodSandbox {
    /// A pod in state Ready with nothing but its identity set; the rest is filled in by whoever
    /// creates it.
    pub fn new(id: impl Into<String>, metadata: PodMetadata, created_at: i64) -> Self {
        Self {
            id: id.into(),
            metadata,
            state: PodState::Ready,
            created_at,
            labels: StringMap::new(),
            annotations: StringMap::new(),
            runtime_handler: String::new(),
            hostname: String::new(),
            log_directory: String::new(),
            dns: None,
            port_mappings: Vec::new(),
            network: PodNetworkState::default(),
            linux: PodLinux::default(),
            sandbox: None,
        }
    }
}

/// CRI's DNSConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// A port mapping's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// CRI's PortMapping, checked: ports fit in 16 bits, the host IP parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: u16,
    /// 0: nothing is mapped on the host.
    pub host_port: u16,
    /// `None`: all host addresses.
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
}

/// What the daemon set up for the pod's network, so that stop and restart can undo or find it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetworkState {
    /// The pod's network namespace file; `None` before it exists, after it is removed, and for a
    /// pod on the host's network.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The CNI_CONTAINERID of the pod's CNI attachment: set before ADD runs and cleared only once
    /// DEL succeeded, so a crash in between still leaves DEL due.
    #[serde(default)]
    pub cni_attachment: Option<String>,
    /// The pod's addresses, the primary one first.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

/// CRI's NamespaceMode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceMode {
    #[default]
    Pod,
    Container,
    Node,
    Target,
}

/// CRI's NamespaceOption (without user namespaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceModes {
    #[serde(default)]
    pub network: NamespaceMode,
    #[serde(default)]
    pub pid: NamespaceMode,
    #[serde(default)]
    pub ipc: NamespaceMode,
    /// The container whose namespace `Target` modes refer to.
    #[serde(default)]
    pub target_id: String,
}

/// CRI's SecurityProfile (seccomp or AppArmor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProfile {
    RuntimeDefault,
    Unconfined,
    Localhost { profile: String },
}

/// The subset of CRI's LinuxContainerResources the runtime applies (hugepages are not kept).
/// Zero means "not set", as in CRI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub memory_limit_in_bytes: i64,
    #[serde(default)]
    pub memory_swap_limit_in_bytes: i64,
    #[serde(default)]
    pub oom_score_adj: i64,
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// cgroup v2 keys and values.
    #[serde(default)]
    pub unified: StringMap,
}

/// CRI's LinuxSandboxSecurityContext, as the request gave it (ids are checked when used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSecurity {
    #[serde(default)]
    pub namespaces: NamespaceModes,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub run_as_group: Option<i64>,
    #[serde(default)]
    pub supplemental_groups: Vec<i64>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub seccomp: Option<SecurityProfile>,
    #[serde(default)]
    pub apparmor: Option<SecurityProfile>,
}

/// CRI's LinuxPodSandboxConfig: what the pod's cgroup and sentry are set up with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLinux {
    #[serde(default)]
    pub cgroup_parent: String,
    #[serde(default)]
    pub sysctls: StringMap,
    #[serde(default)]
    pub security: PodSecurity,
    /// The pod's own overhead (the sentry and gofer), on top of its containers.
    #[serde(default)]
    pub overhead: Option<Resources>,
    /// The pod's total limits.
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// A host process as recorded: its pid and its start time, so that a recycled pid is not
/// mistaken for it after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot at which the process started.
    pub start_time: u64,
}

impl ProcessRef {
    /// The process `pid` as it is now.
    pub fn of(pid: u32) -> io::Result<Self> {
        let (_, start_time) = read_stat(pid)?;
        Ok(Self { pid, start_time })
    }

    /// Whether this very process still runs (a zombie does not): its pid exists and started at
    /// the recorded time.
    pub fn is_running(&self) -> bool {
        match read_stat(self.pid) {
            Ok((state, start)) => start == self.start_time && !matches!(state, 'Z' | 'X' | 'x'),
            Err(_) => false,
        }
    }
}

/// The state letter and start time of a process, from `/proc/<pid>/stat`.
fn read_stat(pid: u32) -> io::Result<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed /proc/{pid}/stat"),
        )
    })
}

/// Fields 3 (state) and 22 (starttime) of a stat line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The host processes of a running sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxProcesses {
    pub sentry: ProcessRef,
    #[serde(default)]
    pub gofer: Option<ProcessRef>,
    /// The sentry's control socket.
    pub control_socket: PathBuf,
}

/// CRI's ContainerMetadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetadata {
    pub name: String,
    pub attempt: u32,
}

/// One environment variable, in the order the process gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

/// The identity a container's processes run as, resolved (run_as_username looked up in the
/// image, the image's user applied): CRI's LinuxContainerUser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUser {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub supplemental_groups: Vec<u32>,
}

/// CRI's MountPropagation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

/// CRI's Mount (without id mappings and image volumes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub container_path: String,
    pub host_path: String,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub recursive_read_only: bool,
    #[serde(default)]
    pub selinux_relabel: bool,
    #[serde(default)]
    pub propagation: Propagation,
}

/// CRI's LinuxContainerSecurityContext, less what [`ContainerUser`] resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSecurity {
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub no_new_privs: bool,
    #[serde(default)]
    pub namespaces: NamespaceModes,
    #[serde(default)]
    pub add_capabilities: Vec<String>,
    #[serde(default)]
    pub drop_capabilities: Vec<String>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub seccomp: Option<SecurityProfile>,
    #[serde(default)]
    pub apparmor: Option<SecurityProfile>,
}

/// One container of a pod, with the configuration it was created with (the image's config
/// already merged with the request) and its lifecycle so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// The pod sandbox it belongs to; it must exist when the container is stored.
    pub pod_id: String,
    pub metadata: ContainerMetadata,
    /// The image as the request named it (CRI ImageSpec.image).
    pub image: String,
    #[serde(default)]
    pub user_specified_image: String,
    /// The image's repo digest, `name@sha256:...` (CRI image_ref).
    #[serde(default)]
    pub image_ref: String,
    /// The image's id, its config digest (CRI image_id).
    #[serde(default)]
    pub image_id: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub envs: Vec<EnvVar>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub user: ContainerUser,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub labels: StringMap,
    #[serde(default)]
    pub annotations: StringMap,
    /// Relative to the pod's log directory, as CRI gives it.
    #[serde(default)]
    pub log_path: String,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub security: ContainerSecurity,
    pub state: ContainerState,
    pub created_at: i64,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: i64,
    #[serde(default)]
    pub exit_code: i32,
    /// Why it is in its state, in CRI's words (`Completed`, `Error`, `OOMKilled`).
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// The pid of its init process in the sandbox's PID namespace, once started.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Its root is mounted and its user and environment decided: CreateContainer finished.
    /// A record without it is one the daemon stopped in the middle of (it is removed).
    #[serde(default)]
    pub prepared: bool,
}

impl Container {
    /// A container in state Created with nothing but its identity and image set.
    pub fn new(
        id: impl Into<String>,
        pod_id: impl Into<String>,
        metadata: ContainerMetadata,
        image: impl Into<String>,
        created_at: i64,
    ) -> Self {
        Self {
            id: id.into(),
            pod_id: pod_id.into(),
            metadata,
            image: image.into(),
            user_specified_image: String::new(),
            image_ref: String::new(),
            image_id: String::new(),
            command: Vec::new(),
            args: Vec::new(),
            envs: Vec::new(),
            working_dir: String::new(),
            user: ContainerUser::default(),
            mounts: Vec::new(),
            labels: StringMap::new(),
            annotations: StringMap::new(),
            log_path: String::new(),
            tty: false,
            stdin: false,
            stdin_once: false,
            resources: Resources::default(),
            security: ContainerSecurity::default(),
            state: ContainerState::Created,
            created_at,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            pid: None,
            prepared: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(('S', 987_654)));
        assert_eq!(parse_stat("12 (x) R 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn process_ref_tells_this_process_from_a_recycled_pid() {
        let me = ProcessRef::of(std::process::id()).unwrap();
        assert!(me.is_running());
        let other_start = ProcessRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other_start.is_running());
    }

    #[test]
    fn process_ref_of_a_reaped_child_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let running = ProcessRef::of(pid).unwrap();
        child.wait().unwrap();
        assert!(!running.is_running());
    }

    #[test]
    fn old_records_without_later_fields_decode() {
        let json = r#"{"id":"p1","metadata":{"name":"n","uid":"u","namespace":"ns","attempt":0},
                      "state":"not_ready","created_at":5,"some_future_field":1}"#;
        let pod: PodSandbox = serde_json::from_str(json).unwrap();
        let mut want = PodSandbox::new(
            "p1",
            PodMetadata {
                name: "n".into(),
                uid: "u".into(),
                namespace: "ns".into(),
                attempt: 0,
            },
            5,
        );
        want.state = PodState::NotReady;
        assert_eq!(pod, want);
    }
}
