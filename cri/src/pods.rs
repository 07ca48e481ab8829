//! Pod sandboxes: what RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus and
//! ListPodSandbox do. A pod is a record in the state store, a directory `<state>/pods/<id>` where
//! its shim (`moat shim`, which owns the pod's sentry) serves, a network namespace
//! `<state>/netns/<id>`, and a CNI attachment whose eth0 the sentry takes over.
//! May touch: the state store, `<state>/pods` and `<state>/netns`, the CNI plugins, the `moat`
//! binary next to the running executable, and the shim processes of its own pods.
//! Never: leaves a namespace, CNI attachment, shim or record behind when RunPodSandbox fails, or
//! reports a pod Ready whose shim does not answer.
//!
//! Everything here blocks (the store commits to disk, CNI plugins and shims are processes and
//! sockets): async callers run it on a blocking thread.
//!
//! Locks: `locks` (the map) is held only to find or make a pod's lock; a pod's lock is held for
//! the whole of a stop or remove of that pod, so two of them never undo the same pod at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_runtime::cgroup::Cgroup;
use moat_runtime::shim::{LaunchOptions, Request, Response, ShimClient, ShimError};
use moat_runtime::NetAttach;

use crate::api;
use crate::cni::{Cni, CniError, PodNetwork, DEFAULT_IFNAME};
use crate::config::CgroupDriver;
use crate::netns::{remove_netns, NetNs, NetNsError};
use crate::state::cri::{string_map, FromCriError};
use crate::state::{
    Cascade, DnsConfig, NamespaceMode, NamespaceModes, PodFilter, PodLinux, PodMetadata,
    PodSandbox, PodState, PortMapping, Resources, StateError, StateStore,
};

/// How long a shim gets to end after Shutdown before it is killed.
const SHIM_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a pod operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("invalid pod sandbox config: {0}")]
    Invalid(String),
    #[error("invalid pod sandbox config")]
    Convert(#[from] FromCriError),
    #[error("runtime handler {given:?} is not served here (served: {served})")]
    Handler { given: String, served: String },
    #[error("pod network is not ready, no pod can be networked")]
    NetworkNotReady(#[source] CniError),
    #[error("the moat binary is not at {0} (it must sit next to moat-cri)")]
    MoatMissing(PathBuf),
    #[error("cannot make pod directory {path}")]
    PodDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the pod file {path}")]
    PodFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the pod's cgroup")]
    Cgroup(#[from] moat_runtime::cgroup::CgroupError),
    #[error("cannot make the pod's network namespace")]
    NetNs(#[from] NetNsError),
    #[error("cannot attach the pod to its network")]
    CniAdd(#[source] CniError),
    #[error("cannot detach the pod from its network")]
    CniDel(#[source] CniError),
    #[error("cannot start the pod's shim")]
    ShimStart(#[source] ShimError),
    #[error("the pod's shim refused to shut down: {0}")]
    ShimShutdown(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read random bytes for a pod id")]
    Random(#[source] std::io::Error),
}

/// The pods of one daemon.
pub struct Pods {
    store: Arc<StateStore>,
    cni: Cni,
    /// `<state>/pods`.
    pods_dir: PathBuf,
    /// `<state>/netns`.
    netns_dir: PathBuf,
    /// The runtime handlers served; the first is the default.
    handlers: Vec<String>,
    /// Where the `moat` binary is expected.
    moat: PathBuf,
    cgroup_driver: CgroupDriver,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for Pods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pods")
            .field("pods_dir", &self.pods_dir)
            .field("moat", &self.moat)
            .finish_non_exhaustive()
    }
}

/// The `moat` binary beside the running executable.
pub fn sibling_moat() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("moat")))
        .unwrap_or_else(|| PathBuf::from("moat"))
}

/// The network description CNI gets for `pod`.
fn pod_network(pod: &PodSandbox, netns: &Path) -> PodNetwork {
    PodNetwork {
        id: pod.id.clone(),
        netns: netns.to_owned(),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        port_mappings: pod.port_mappings.iter().map(Into::into).collect(),
    }
}

/// The files every container of a pod sees (bound in by [`crate::containers`]): where each
/// lives in the pod directory and in the container.
pub const POD_FILES: [(&str, &str); 3] = [
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
    ("hosts", "/etc/hosts"),
];

/// The resolv.conf of a pod: its DNSConfig, or the host's when it has none.
fn resolv_conf(dns: Option<&DnsConfig>) -> std::io::Result<String> {
    let Some(dns) = dns else {
        return std::fs::read_to_string("/etc/resolv.conf").or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(String::new())
            } else {
                Err(e)
            }
        });
    };
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for s in &dns.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Ok(out)
}

/// Writes the pod's resolv.conf, hostname and hosts into its directory.
fn write_pod_files(dir: &Path, pod: &PodSandbox, ips: &[IpAddr]) -> Result<(), PodError> {
    let file_err = |path: PathBuf| move |source| PodError::PodFile { path, source };
    let resolv =
        resolv_conf(pod.dns.as_ref()).map_err(file_err(PathBuf::from("/etc/resolv.conf")))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for ip in ips {
        hosts.push_str(&format!("{ip}\t{}\n", pod.hostname));
    }
    let hostname = format!("{}\n", pod.hostname);
    for ((name, _), text) in POD_FILES.iter().zip([resolv, hostname, hosts]) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(file_err(path.clone()))?;
    }
    Ok(())
}

/// The oom_score_adj of a pod's processes, as containerd gives sandboxes (kubelet's
/// pause-container value); lowering it needs CAP_SYS_RESOURCE, without which it is skipped.
const SANDBOX_OOM_SCORE_ADJ: i64 = -998;

/// The pod's cgroup relative to each hierarchy's root: `moat-<id>` (cgroupfs) or
/// `moat-<id>.scope` (systemd) under `cgroup_parent`, or under `moat` / `moat.slice` when the
/// pod names none. A systemd slice name is unfolded as systemd does: `a-b-c.slice` is
/// `a.slice/a-b.slice/a-b-c.slice`.
pub fn pod_cgroup(driver: CgroupDriver, parent: &str, id: &str) -> Result<PathBuf, PodError> {
    let bad = |why: &str| PodError::Invalid(format!("cgroup_parent {parent:?}: {why}"));
    match driver {
        CgroupDriver::Cgroupfs => {
            let parent = if parent.is_empty() { "moat" } else { parent };
            let rel = Path::new(parent.trim_start_matches('/'));
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad("must be a path without `.` or `..`"));
            }
            Ok(rel.join(format!("moat-{id}")))
        }
        CgroupDriver::Systemd => {
            let parent = if parent.is_empty() {
                "moat.slice"
            } else {
                parent
            };
            let Some(name) = parent.strip_suffix(".slice") else {
                return Err(bad("the systemd driver needs a slice name (NAME.slice)"));
            };
            let bad_name = name.contains('/')
                || name.starts_with('-')
                || name.ends_with('-')
                || name.contains("--");
            if name != "-" && bad_name {
                return Err(bad("not a valid slice name"));
            }
            let mut rel = PathBuf::new();
            if name != "-" {
                let parts: Vec<&str> = name.split('-').collect();
                for i in 1..=parts.len() {
                    rel.push(format!("{}.slice", parts[..i].join("-")));
                }
            }
            Ok(rel.join(format!("moat-{id}.scope")))
        }
    }
}

/// The limits of a pod's cgroup: its resources plus its overhead.
fn pod_limits(l: &PodLinux) -> moat_runtime::cgroup::Limits {
    let res = l.resources.clone().unwrap_or_default();
    let over = l.overhead.clone().unwrap_or_default();
    let sum = |a: i64, b: i64| (a > 0).then(|| a + b.max(0));
    moat_runtime::cgroup::Limits {
        cpu_shares: sum(res.cpu_shares, over.cpu_shares).and_then(|s| u64::try_from(s).ok()),
        cpu_quota: sum(res.cpu_quota, over.cpu_quota),
        cpu_period: u64::try_from(res.cpu_period).ok().filter(|p| *p > 0),
        memory_bytes: sum(res.memory_limit_in_bytes, over.memory_limit_in_bytes),
        cpuset_cpus: Some(res.cpuset_cpus).filter(|c| !c.is_empty()),
        cpuset_mems: Some(res.cpuset_mems).filter(|m| !m.is_empty()),
    }
}

/// The pids of the shims serving `dir` (`moat shim --dir <dir> ...`).
fn shim_pids(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want = dir.as_os_str().as_encoded_bytes();
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_shim = args.get(1) == Some(&&b"shim"[..])
                && args.windows(2).any(|w| w[0] == b"--dir" && w[1] == want);
            is_shim.then_some(pid)
        })
        .collect()
}

impl Pods {
    pub fn new(
        store: Arc<StateStore>,
        cni: Cni,
        state_dir: &Path,
        handlers: Vec<String>,
        moat: PathBuf,
        cgroup_driver: CgroupDriver,
    ) -> Self {
        Self {
            store,
            cni,
            pods_dir: state_dir.join("pods"),
            netns_dir: state_dir.join("netns"),
            handlers,
            moat,
            cgroup_driver,
            locks: Mutex::default(),
        }
    }

    pub fn cni(&self) -> &Cni {
        &self.cni
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    pub fn store_arc(&self) -> Arc<StateStore> {
        self.store.clone()
    }

    /// `<state>/pods/<id>`: where the pod's shim serves and its files are.
    pub fn pod_dir(&self, id: &str) -> PathBuf {
        self.pods_dir.join(id)
    }

    /// A lock for pod `id`'s life: stop and remove hold it, and container create and start
    /// hold it too, so no container starts in a pod being torn down.
    pub fn lock_of(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// The record RunPodSandbox stores first (NotReady, namespace and CNI attachment due), from a
    /// checked config.
    fn new_record(
        &self,
        config: &api::PodSandboxConfig,
        handler: &str,
    ) -> Result<PodSandbox, PodError> {
        let meta = config
            .metadata
            .as_ref()
            .ok_or_else(|| PodError::Invalid("metadata is required".into()))?;
        for (what, value) in [
            ("name", &meta.name),
            ("uid", &meta.uid),
            ("namespace", &meta.namespace),
        ] {
            if value.is_empty() {
                return Err(PodError::Invalid(format!("metadata.{what} is required")));
            }
        }
        let handler = if handler.is_empty() {
            self.handlers.first().cloned().unwrap_or_default()
        } else if self.handlers.iter().any(|h| h == handler) {
            handler.to_owned()
        } else {
            return Err(PodError::Handler {
                given: handler.to_owned(),
                served: self.handlers.join(", "),
            });
        };
        let mut pod = PodSandbox::new(
            crate::random_id().map_err(PodError::Random)?,
            PodMetadata::from(meta),
            crate::now_nanos(),
        );
        pod.state = PodState::NotReady;
        pod.runtime_handler = handler;
        pod.labels = string_map(&config.labels);
        pod.annotations = string_map(&config.annotations);
        pod.hostname = if config.hostname.is_empty() {
            meta.name.clone()
        } else {
            config.hostname.clone()
        };
        pod.log_directory = config.log_directory.clone();
        pod.dns = config.dns_config.as_ref().map(DnsConfig::from);
        pod.port_mappings = config
            .port_mappings
            .iter()
            .map(PortMapping::try_from)
            .collect::<Result<_, _>>()?;
        if let Some(linux) = &config.linux {
            let mut l = PodLinux {
                cgroup_parent: linux.cgroup_parent.clone(),
                sysctls: string_map(&linux.sysctls),
                resources: linux.resources.as_ref().map(Resources::from),
                overhead: linux.overhead.as_ref().map(Resources::from),
                ..PodLinux::default()
            };
            if let Some(ns) = linux
                .security_context
                .as_ref()
                .and_then(|s| s.namespace_options.as_ref())
            {
                l.security.namespaces = NamespaceModes::try_from(ns)?;
            }
            pod.linux = l;
        }
        if pod.linux.security.namespaces.network == NamespaceMode::Node {
            return Err(PodError::Invalid(
                "pods on the host network are not supported by moat".into(),
            ));
        }
        pod.network.netns = Some(self.netns_dir.join(&pod.id));
        pod.network.cni_attachment = Some(pod.id.clone());
        // Checked now, so a bad cgroup_parent is InvalidArgument before anything is made.
        pod_cgroup(self.cgroup_driver, &pod.linux.cgroup_parent, &pod.id)?;
        Ok(pod)
    }

    /// RunPodSandbox: the new pod's id once it is Ready. On failure everything done so far is
    /// undone.
    pub fn run(&self, config: &api::PodSandboxConfig, handler: &str) -> Result<String, PodError> {
        let pod = self.new_record(config, handler)?;
        self.cni.status().map_err(PodError::NetworkNotReady)?;
        if !self.moat.is_file() {
            return Err(PodError::MoatMissing(self.moat.clone()));
        }
        let lock = self.lock_of(&pod.id);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.store.write(|tx| tx.put_pod(&pod))?;
        match self.bring_up(&pod) {
            Ok(()) => {
                tracing::info!(pod = %pod.id, name = %pod.metadata.name, namespace = %pod.metadata.namespace, "pod sandbox ready");
                Ok(pod.id)
            }
            Err(e) => {
                tracing::warn!(pod = %pod.id, error = %e, "RunPodSandbox failed; undoing it");
                if let Err(undo) = self.tear_down(&pod) {
                    // The record stays (NotReady) so that RemovePodSandbox can finish the job.
                    tracing::error!(pod = %pod.id, error = %undo, "cannot undo a failed RunPodSandbox");
                } else if let Err(undo) = self.forget(&pod.id) {
                    tracing::error!(pod = %pod.id, error = %undo, "cannot drop the record of a failed pod");
                }
                Err(e)
            }
        }
    }

    /// The steps of RunPodSandbox after the name is reserved.
    fn bring_up(&self, pod: &PodSandbox) -> Result<(), PodError> {
        let dir = self.pod_dir(&pod.id);
        std::fs::create_dir_all(&dir).map_err(|source| PodError::PodDir {
            path: dir.clone(),
            source,
        })?;
        let ns = NetNs::create(&self.netns_dir, &pod.id)?;
        let result = self
            .cni
            .setup(&pod_network(pod, ns.path()))
            .map_err(PodError::CniAdd)?;
        let mut ips: Vec<IpAddr> = result
            .pod_ips(DEFAULT_IFNAME)
            .iter()
            .map(|n| n.addr)
            .collect();
        // The primary address is the IPv4 one, as in containerd.
        ips.sort_by_key(|ip| !ip.is_ipv4());
        write_pod_files(&dir, pod, &ips)?;
        let net = NetAttach {
            netns: ns.path().to_owned(),
            iface: DEFAULT_IFNAME.to_owned(),
        };
        let rel = pod_cgroup(self.cgroup_driver, &pod.linux.cgroup_parent, &pod.id)?;
        let cgroup = Cgroup::at(&rel)?;
        cgroup.create()?;
        for skipped in cgroup.apply(&pod_limits(&pod.linux))? {
            tracing::warn!(pod = %pod.id, "limit not enforced: {skipped}");
        }
        let launch = LaunchOptions {
            hostname: &pod.hostname,
            net: Some(&net),
            cgroup: Some(&rel),
            oom_score_adj: Some(SANDBOX_OOM_SCORE_ADJ),
        };
        ShimClient::launch(&self.moat, &dir, &launch).map_err(PodError::ShimStart)?;
        self.store.write(|tx| {
            tx.update_pod(&pod.id, |p| {
                p.state = PodState::Ready;
                p.network.ips = ips;
            })
        })?;
        Ok(())
    }

    /// Ends the shim, detaches the network and removes the namespace of `pod`, as far as they
    /// exist; then records that (NotReady, no namespace; the CNI attachment only once DEL
    /// succeeded, so that a later stop or remove tries DEL again). A failed DEL does not keep the
    /// namespace: DEL without one is allowed by the CNI spec.
    fn tear_down(&self, pod: &PodSandbox) -> Result<(), PodError> {
        let dir = self.pod_dir(&pod.id);
        self.end_shim(&pod.id, &dir)?;
        if let Ok(rel) = pod_cgroup(self.cgroup_driver, &pod.linux.cgroup_parent, &pod.id) {
            // A cgroup that will not go must not keep the network from being torn down.
            if let Err(e) = Cgroup::at(&rel).and_then(|c| c.remove()) {
                tracing::warn!(pod = %pod.id, error = %crate::error_chain(&e), "cannot remove the pod's cgroup");
            }
        }
        let netns = pod
            .network
            .netns
            .clone()
            .unwrap_or_else(|| self.netns_dir.join(&pod.id));
        let del = match pod.network.cni_attachment {
            Some(_) => self
                .cni
                .teardown(&pod_network(pod, &netns))
                .map_err(PodError::CniDel),
            None => Ok(()),
        };
        remove_netns(&netns)?;
        let detached = del.is_ok();
        self.store.write(|tx| {
            if tx.pod(&pod.id)?.is_none() {
                return Ok(());
            }
            tx.update_pod(&pod.id, |p| {
                p.state = PodState::NotReady;
                p.network.netns = None;
                if detached {
                    p.network.cni_attachment = None;
                }
                p.sandbox = None;
            })
            .map(drop)
        })?;
        del
    }

    /// Shuts the shim of `dir` down if it answers, waits for it to end, and kills it if it does
    /// not.
    fn end_shim(&self, id: &str, dir: &Path) -> Result<(), PodError> {
        let connected = ShimClient::connect(dir).and_then(|mut c| {
            c.set_timeout(Some(SHIM_EXIT_TIMEOUT))?;
            Ok(c)
        });
        match connected {
            Ok(mut c) => match c.call(&Request::Shutdown) {
                Ok(Response::Done) => {}
                Ok(Response::Error { message }) => return Err(PodError::ShimShutdown(message)),
                Ok(other) => return Err(PodError::ShimShutdown(format!("{other:?}"))),
                // It may end before answering.
                Err(e) => tracing::debug!(pod = %id, error = %e, "shim went away on shutdown"),
            },
            Err(e) => tracing::debug!(pod = %id, error = %e, "no shim answers"),
        }
        let deadline = Instant::now() + SHIM_EXIT_TIMEOUT;
        loop {
            let pids = shim_pids(dir);
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                for pid in pids {
                    tracing::warn!(pod = %id, pid, "shim did not end; killing its process group");
                    // The shim leads its own session (ShimClient::launch detaches it), so its
                    // group is the pod's processes.
                    if let Err(e) = crate::sys::kill_process_group(pid) {
                        tracing::warn!(pod = %id, pid, error = %e, "cannot kill the shim");
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deletes the record of pod `id` and its directory.
    fn forget(&self, id: &str) -> Result<(), PodError> {
        self.store
            .write(|tx| tx.delete_pod(id, Cascade::WithContainers))?;
        let dir = self.pod_dir(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(pod = %id, error = %e, "cannot remove the pod directory");
            }
        }
        Ok(())
    }

    /// StopPodSandbox: ends the pod's shim, network and namespace; idempotent.
    pub fn stop(&self, id: &str) -> Result<(), PodError> {
        let pod = self.store.get_pod(id)?;
        let lock = self.lock_of(&pod.id);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let pod = self.store.get_pod(&pod.id)?;
        self.tear_down(&pod)?;
        tracing::info!(pod = %pod.id, "pod sandbox stopped");
        Ok(())
    }

    /// RemovePodSandbox: stops the pod if need be and forgets it; an unknown id is no error. A
    /// CNI DEL that fails does not keep the pod (StopPodSandbox reports it).
    pub fn remove(&self, id: &str) -> Result<(), PodError> {
        let pod = match self.store.get_pod(id) {
            Ok(pod) => pod,
            Err(StateError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let lock = self.lock_of(&pod.id);
        {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(pod) = self.store.pod(&pod.id)? else {
                return Ok(());
            };
            match self.tear_down(&pod) {
                Ok(()) => {}
                // StopPodSandbox reports a failing DEL (kubelet retries it); a remove gives up
                // on it: the namespace is gone, and a record kept for it would never go.
                Err(PodError::CniDel(e)) => tracing::warn!(
                    pod = %pod.id,
                    error = %crate::error_chain(&e),
                    "CNI DEL fails; removing the pod anyway (the plugins may keep its address)"
                ),
                Err(e) => return Err(e),
            }
            self.forget(&pod.id)?;
        }
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(&pod.id);
        tracing::info!(pod = %pod.id, "pod sandbox removed");
        Ok(())
    }

    /// PodSandboxStatus: the record, reported NotReady if its shim no longer answers.
    pub fn status(&self, id: &str) -> Result<api::PodSandboxStatus, PodError> {
        let pod = self.store.get_pod(id)?;
        let mut status = pod.to_cri_status();
        if pod.state == PodState::Ready && ShimClient::connect(&self.pod_dir(&pod.id)).is_err() {
            tracing::warn!(pod = %pod.id, "the pod's shim does not answer");
            status.state = PodState::NotReady.to_cri();
        }
        Ok(status)
    }

    /// ListPodSandbox.
    pub fn list(
        &self,
        filter: Option<&api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>, PodError> {
        let filter = match filter {
            Some(f) => PodFilter::try_from(f)?,
            None => PodFilter::default(),
        };
        let pods = self.store.list_pods(&filter)?;
        Ok(pods.iter().map(api::PodSandbox::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_of_both_drivers() {
        let fs = |p| pod_cgroup(CgroupDriver::Cgroupfs, p, "abc");
        let sd = |p| pod_cgroup(CgroupDriver::Systemd, p, "abc");
        assert_eq!(
            fs("/kubepods/burstable/pod1").unwrap(),
            PathBuf::from("kubepods/burstable/pod1/moat-abc")
        );
        assert_eq!(fs("").unwrap(), PathBuf::from("moat/moat-abc"));
        assert!(fs("/a/../b").is_err());
        assert_eq!(
            sd("kubepods-burstable-pod1.slice").unwrap(),
            PathBuf::from(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/moat-abc.scope"
            )
        );
        assert_eq!(sd("").unwrap(), PathBuf::from("moat.slice/moat-abc.scope"));
        assert_eq!(sd("-.slice").unwrap(), PathBuf::from("moat-abc.scope"));
        assert!(sd("/kubepods").is_err());
        assert!(sd("a--b.slice").is_err());
    }
}
