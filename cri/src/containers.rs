//! Containers: what CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! ListContainers, ContainerStatus, ExecSync, ReopenContainerLog, UpdateContainerResources, the
//! stats RPCs and GetContainerEvents do. A container is a record in the state store, a root in
//! `<root>/containers/<id>` ([`crate::rootfs`]) and, once started, a process in its pod's
//! sentry, reached through the pod's shim.
//! May touch: the state store, the image store (read only), `<root>/containers`, the log
//! directories kubelet names, and the shims of its pods.
//! Never: starts a container in a pod that is not Ready, or reports a container Running after
//! its shim said it ended.
//!
//! Exits: a waiter thread per running container asks the shim to report the end (Wait) and
//! records it; a restarted daemon starts the waiters again ([`Containers::recover`]), so an
//! exit that happened while it was down is recorded then.
//!
//! Locks: a container's lock (from `locks`) is held across a start, stop or remove of it; the
//! pod's lock ([`Pods::lock_of`]) across a create or start, so nothing starts in a pod being
//! torn down. Pod lock before container lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_runtime::shim::{Ended, Process, Request, Response, ShimClient, ShimError, Usage};
use tokio::sync::broadcast;

use crate::api;
use crate::image_service::{find_image, ImageServiceError};
use crate::oci::{ImageConfig, RunConfig};
use crate::pods::{Pods, POD_FILES};
use crate::rootfs::{Bind, ContainerRoot, RootfsError};
use crate::state::cri::{string_map, FromCriError};
use crate::state::{
    Container, ContainerFilter, ContainerMetadata, ContainerState, ContainerUser, EnvVar, Mount,
    PodSandbox, PodState, Propagation, Resources, StateError, StateStore,
};
use crate::store::{ImageRecord, Store};
use crate::user::{UserError, UserRequest};

/// The PATH a container gets when neither the image nor the request sets one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The exit code and reason of a container that could not start (as containerd reports).
const START_ERROR_CODE: i32 = 128;
/// The exit code of a container whose end was not seen (its sandbox went away).
const LOST_CODE: i32 = 255;
/// How long a shim may take to answer a request (beyond the request's own wait).
const SHIM_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a killed container gets to be reported ended.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// How many events a slow GetContainerEvents client may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container request: {0}")]
    Invalid(String),
    #[error("invalid container config")]
    Convert(#[from] FromCriError),
    #[error("{0}")]
    Precondition(String),
    #[error("image {0:?} is not pulled")]
    NoImage(String),
    #[error("image lookup failed")]
    Image(#[from] ImageServiceError),
    #[error("cannot read the config of image {0}")]
    ImageConfig(String),
    #[error("cannot prepare the container's root")]
    Rootfs(#[from] RootfsError),
    #[error("cannot decide the container's user")]
    User(#[from] UserError),
    #[error("cannot reach the pod's shim")]
    Shim(#[from] ShimError),
    #[error("the pod's shim refused: {0}")]
    ShimSays(String),
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot make the log directory {path}")]
    LogDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read random bytes for a container id")]
    Random(#[source] std::io::Error),
}

/// What ExecSync returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// The containers of one daemon.
pub struct Containers {
    store: Arc<StateStore>,
    images: Arc<Store>,
    pods: Arc<Pods>,
    /// `<root>/containers`.
    dir: PathBuf,
    events: broadcast::Sender<api::ContainerEventResponse>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Container id → the last (time ns, CPU ns) sample, for usage_nano_cores.
    cpu_samples: Mutex<HashMap<String, (i64, u64)>>,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The signal number a stop signal name stands for (`SIGQUIT`, `QUIT` or `3`).
fn signal_number(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = name.trim_start_matches("SIG");
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// The command line of a container: the request's command and args over the image's
/// Entrypoint and Cmd, by Kubernetes' rule (a command given replaces both Entrypoint and Cmd).
fn process_args(
    command: &[String],
    args: &[String],
    image: &RunConfig,
) -> Result<(Vec<String>, Vec<String>), ContainerError> {
    let (command, args) = if command.is_empty() {
        let args = if args.is_empty() {
            image.cmd.clone().unwrap_or_default()
        } else {
            args.to_vec()
        };
        let entry = image.entrypoint.clone().unwrap_or_default();
        let entry = if entry.len() == 1 && entry[0].is_empty() {
            Vec::new()
        } else {
            entry
        };
        (entry, args)
    } else {
        (command.to_vec(), args.to_vec())
    };
    if command.is_empty() && args.is_empty() {
        return Err(ContainerError::Invalid(
            "no command: neither the request nor the image gives one".into(),
        ));
    }
    Ok((command, args))
}

/// The environment: the image's, then the request's (a key set twice keeps its last value, in
/// the place it was first set), then HOSTNAME, PATH and HOME when missing.
fn merge_env(
    image: &[String],
    request: &[api::KeyValue],
    hostname: &str,
    home: &str,
) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = Vec::new();
    let mut set = |key: &str, value: &str| match out.iter_mut().find(|e| e.key == key) {
        Some(e) => e.value = value.to_owned(),
        None => out.push(EnvVar {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    };
    for kv in image {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    for kv in request {
        set(&kv.key, &kv.value);
    }
    for (key, value) in [
        ("PATH", DEFAULT_PATH),
        ("HOSTNAME", hostname),
        ("HOME", home),
    ] {
        if !out.iter().any(|e| e.key == key) {
            out.push(EnvVar {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    out
}

fn exit_code(e: Ended) -> i32 {
    match e {
        Ended::Exited { code } => i32::from(code),
        Ended::Signaled { signal } => 128 + i32::from(signal),
        Ended::Lost => LOST_CODE,
    }
}

const METRIC_CPU: &str = "container_cpu_usage_seconds_total";
const METRIC_MEMORY: &str = "container_memory_working_set_bytes";

/// The metrics ListPodSandboxMetrics reports per container, as the sentry accounts them.
pub fn metric_descriptors() -> Vec<api::MetricDescriptor> {
    let labels = vec![
        "container".to_owned(),
        "pod".to_owned(),
        "namespace".to_owned(),
    ];
    vec![
        api::MetricDescriptor {
            name: METRIC_CPU.into(),
            help: "CPU time the container's processes used, in seconds".into(),
            label_keys: labels.clone(),
        },
        api::MetricDescriptor {
            name: METRIC_MEMORY.into(),
            help: "Resident app memory of the container's processes, in bytes".into(),
            label_keys: labels,
        },
    ]
}

fn u64_value(value: u64) -> Option<api::UInt64Value> {
    Some(api::UInt64Value { value })
}

fn cpu_usage(now: i64, cpu_ns: u64, nano_cores: Option<u64>) -> api::CpuUsage {
    api::CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: u64_value(cpu_ns),
        usage_nano_cores: nano_cores.and_then(u64_value),
    }
}

/// Memory as the sentry accounts it: resident app pages (the working set; there is no page
/// cache to leave out).
fn memory_usage(now: i64, bytes: u64) -> api::MemoryUsage {
    api::MemoryUsage {
        timestamp: now,
        working_set_bytes: u64_value(bytes),
        usage_bytes: u64_value(bytes),
        rss_bytes: u64_value(bytes),
        ..Default::default()
    }
}

impl Containers {
    pub fn new(store: Arc<StateStore>, images: Arc<Store>, pods: Arc<Pods>, root: &Path) -> Self {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Self {
            store,
            images,
            pods,
            dir: root.join("containers"),
            events,
            locks: Mutex::default(),
            cpu_samples: Mutex::default(),
        }
    }

    /// A stream of lifecycle events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<api::ContainerEventResponse> {
        self.events.subscribe()
    }

    fn lock_of(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    fn root_of(&self, id: &str) -> ContainerRoot {
        ContainerRoot::new(&self.dir, id)
    }

    /// Whether the shim of `pod_id` is gone (nothing answers on its socket).
    fn shim_gone(&self, pod_id: &str) -> bool {
        ShimClient::connect(&self.pods.pod_dir(pod_id)).is_err()
    }

    fn shim(&self, pod_id: &str) -> Result<ShimClient, ContainerError> {
        Ok(ShimClient::connect(&self.pods.pod_dir(pod_id))?)
    }

    /// Sends one request to the shim of `pod_id`; an Error answer becomes
    /// [`ContainerError::ShimSays`]. A wedged shim fails the call after a while (a Wait or
    /// ExecSync gets its own time on top), so no RPC (or pod lock) waits forever.
    fn call(&self, pod_id: &str, r: &Request) -> Result<Response, ContainerError> {
        let ms = Duration::from_millis;
        let limit = match r {
            Request::Wait { timeout_ms: 0, .. } => None,
            Request::Wait { timeout_ms, .. } => Some(ms(*timeout_ms) + SHIM_CALL_TIMEOUT),
            Request::ExecSync { timeout_ms: 0, .. } => None,
            Request::ExecSync { timeout_ms, .. } => Some(ms(*timeout_ms) + SHIM_CALL_TIMEOUT),
            _ => Some(SHIM_CALL_TIMEOUT),
        };
        let mut shim = self.shim(pod_id)?;
        shim.set_timeout(limit)?;
        match shim.call(r)? {
            Response::Error { message } => Err(ContainerError::ShimSays(message)),
            other => Ok(other),
        }
    }

    /// Tells GetContainerEvents subscribers what happened to `c`.
    fn emit(&self, c: &Container, kind: api::ContainerEventType) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let pod = self.store.pod(&c.pod_id).ok().flatten();
        let log_dir = pod
            .as_ref()
            .map(|p| p.log_directory.clone())
            .unwrap_or_default();
        let statuses = match kind {
            api::ContainerEventType::ContainerDeletedEvent => Vec::new(),
            _ => vec![c.to_cri_status(&log_dir)],
        };
        let _ = self.events.send(api::ContainerEventResponse {
            container_id: c.id.clone(),
            container_event_type: kind as i32,
            created_at: crate::now_nanos(),
            pod_sandbox_status: pod.map(|p| p.to_cri_status()),
            containers_statuses: statuses,
        });
    }

    fn image_of(&self, name: &str) -> Result<(ImageRecord, RunConfig), ContainerError> {
        let rec = find_image(&self.images, name)?
            .ok_or_else(|| ContainerError::NoImage(name.to_owned()))?;
        let config: ImageConfig = self
            .images
            .read_blob(&rec.config_digest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ContainerError::ImageConfig(rec.id.to_string()))?;
        let run = config.run_config();
        Ok((rec, run))
    }

    fn ready_pod(&self, pod_id: &str) -> Result<PodSandbox, ContainerError> {
        let pod = self.store.get_pod(pod_id)?;
        if pod.state != PodState::Ready {
            return Err(ContainerError::Precondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        Ok(pod)
    }

    /// CreateContainer: the new container's id. Its root is mounted and its user decided
    /// now; on failure nothing is left.
    pub fn create(
        &self,
        pod_id: &str,
        config: &api::ContainerConfig,
    ) -> Result<String, ContainerError> {
        let meta = config
            .metadata
            .as_ref()
            .filter(|m| !m.name.is_empty())
            .ok_or_else(|| ContainerError::Invalid("metadata.name is required".into()))?;
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ContainerError::Invalid("image.image is required".into()))?;
        let mounts: Vec<Mount> = config
            .mounts
            .iter()
            .map(Mount::try_from)
            .collect::<Result<_, _>>()?;
        for m in &mounts {
            match m.propagation {
                Propagation::Bidirectional => {
                    return Err(ContainerError::Invalid(format!(
                        "mount {}: bidirectional propagation cannot cross the sandbox (its mounts are the sentry's own)",
                        m.container_path
                    )))
                }
                Propagation::HostToContainer => tracing::warn!(
                    container_path = %m.container_path,
                    "host-to-container propagation: the container sees the volume's mounts as they are at create"
                ),
                Propagation::Private => {}
            }
            if m.host_path.is_empty() || !m.container_path.starts_with('/') {
                return Err(ContainerError::Invalid(format!(
                    "mount {:?} -> {:?}: both paths are required, the container one absolute",
                    m.host_path, m.container_path
                )));
            }
        }
        let pod = self.ready_pod(pod_id)?;
        let pod_lock = self.pods.lock_of(&pod.id);
        let _pod_guard = pod_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pod = self.ready_pod(&pod.id)?;
        let (image, run) = self.image_of(&image_name)?;
        let (command, args) = process_args(&config.command, &config.args, &run)?;

        let mut c = Container::new(
            crate::random_id().map_err(ContainerError::Random)?,
            pod.id.clone(),
            ContainerMetadata::from(meta),
            image_name.clone(),
            crate::now_nanos(),
        );
        c.user_specified_image = config
            .image
            .as_ref()
            .map(|i| i.user_specified_image.clone())
            .unwrap_or_default();
        c.image_id = image.id.to_string();
        c.image_ref = image
            .repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| image.id.to_string());
        c.command = command;
        c.args = args;
        c.working_dir = [config.working_dir.as_str(), run.working_dir.as_str()]
            .into_iter()
            .find(|d| !d.is_empty())
            .unwrap_or("/")
            .to_owned();
        c.mounts = mounts;
        c.labels = string_map(&config.labels);
        c.annotations = string_map(&config.annotations);
        c.log_path = config.log_path.clone();
        c.tty = config.tty;
        c.stdin = config.stdin;
        c.stdin_once = config.stdin_once;
        let linux = config.linux.as_ref();
        if let Some(r) = linux.and_then(|l| l.resources.as_ref()) {
            c.resources = Resources::from(r);
        }
        let sc = linux.and_then(|l| l.security_context.as_ref());
        c.security.privileged = sc.is_some_and(|s| s.privileged);
        c.security.readonly_rootfs = sc.is_some_and(|s| s.readonly_rootfs);
        c.security.no_new_privs = sc.is_some_and(|s| s.no_new_privs);
        if c.security.privileged {
            tracing::warn!(container = %meta.name, "privileged is ignored: nothing in a sandbox is privileged on the host");
        }
        self.store.write(|tx| tx.put_container(&c))?;
        let id = c.id.clone();
        match self.prepare(&mut c, &pod, sc, &run, &config.envs) {
            Ok(()) => {
                c.prepared = true;
                self.store.write(|tx| tx.put_container(&c))?;
                tracing::info!(container = %id, pod = %pod.id, name = %c.metadata.name, "container created");
                self.emit(&c, api::ContainerEventType::ContainerCreatedEvent);
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "CreateContainer failed; undoing it");
                if let Err(undo) = self.root_of(&id).destroy() {
                    tracing::error!(container = %id, error = %undo, "cannot remove the root of a failed container");
                }
                self.store.write(|tx| tx.delete_container(&id))?;
                Err(e)
            }
        }
    }

    /// Mounts the root of `c`, binds its mounts and the pod's files, and decides its user and
    /// environment.
    fn prepare(
        &self,
        c: &mut Container,
        pod: &PodSandbox,
        sc: Option<&api::LinuxContainerSecurityContext>,
        run: &RunConfig,
        envs: &[api::KeyValue],
    ) -> Result<(), ContainerError> {
        let image = self
            .images
            .image(&c.image_id)
            .map_err(ImageServiceError::from)?
            .ok_or_else(|| ContainerError::NoImage(c.image_id.clone()))?;
        let layers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| self.images.layer_path(&l.diff_id))
            .collect();
        let root = self.root_of(&c.id);
        {
            // Garbage collection waits until the layers are mounted (then they count as used).
            let _no_gc = self.images.pull_guard();
            for l in &layers {
                if !l.is_dir() {
                    return Err(ContainerError::NoImage(c.image_id.clone()));
                }
            }
            root.mount(&layers)?;
        }
        for m in &c.mounts {
            root.bind(&Bind {
                host_path: PathBuf::from(&m.host_path),
                container_path: m.container_path.clone(),
                read_only: m.readonly,
                recursive_read_only: m.recursive_read_only,
            })?;
        }
        let pod_dir = self.pods.pod_dir(&pod.id);
        for (file, at) in POD_FILES {
            let host = pod_dir.join(file);
            if c.mounts.iter().any(|m| m.container_path == at) || !host.is_file() {
                continue;
            }
            root.bind(&Bind {
                host_path: host,
                container_path: at.to_owned(),
                read_only: c.security.readonly_rootfs,
                recursive_read_only: false,
            })?;
        }
        let req = UserRequest {
            run_as_user: sc.and_then(|s| s.run_as_user.as_ref()).map(|v| v.value),
            run_as_username: sc.map(|s| s.run_as_username.clone()).unwrap_or_default(),
            run_as_group: sc.and_then(|s| s.run_as_group.as_ref()).map(|v| v.value),
            supplemental_groups: sc
                .map(|s| s.supplemental_groups.clone())
                .unwrap_or_default(),
            image_user: run.user.clone(),
        };
        let user = crate::user::resolve(&root.rootfs(), &req)?;
        c.user = ContainerUser {
            uid: user.uid,
            gid: user.gid,
            supplemental_groups: user.groups,
        };
        c.envs = merge_env(
            run.env.as_deref().unwrap_or_default(),
            envs,
            &pod.hostname,
            &user.home,
        );
        // The working directory exists, as runc makes it.
        root.make_dir(&c.working_dir)?;
        if c.security.readonly_rootfs {
            crate::sys::set_read_only(&root.rootfs()).map_err(|source| RootfsError::Overlay {
                path: root.rootfs(),
                source,
            })?;
        }
        Ok(())
    }

    /// StartContainer: runs the container's process in its pod's sentry.
    pub fn start(self: &Arc<Self>, id: &str) -> Result<(), ContainerError> {
        let c = self.store.get_container(id)?;
        let pod_lock = self.pods.lock_of(&c.pod_id);
        let _pod_guard = pod_lock.lock().unwrap_or_else(|e| e.into_inner());
        let lock = self.lock_of(&c.id);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.store.get_container(&c.id)?;
        if c.state != ContainerState::Created {
            return Err(ContainerError::Precondition(format!(
                "container {} is {:?}, not created",
                c.id, c.state
            )));
        }
        if !c.prepared {
            return Err(ContainerError::Precondition(format!(
                "container {} is being created (or its creation was cut short)",
                c.id
            )));
        }
        let pod = self.ready_pod(&c.pod_id)?;
        let log_path = (!c.log_path.is_empty() && !pod.log_directory.is_empty())
            .then(|| Path::new(&pod.log_directory).join(&c.log_path));
        if let Some(dir) = log_path.as_deref().and_then(Path::parent) {
            std::fs::create_dir_all(dir).map_err(|source| ContainerError::LogDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let req = Request::Start {
            id: c.id.clone(),
            rootfs: self.root_of(&c.id).rootfs(),
            read_only: false,
            process: self.process(&c, c.command.iter().chain(&c.args).cloned().collect()),
            log_path,
        };
        match self.call(&pod.id, &req) {
            Ok(Response::Started { pid }) => {
                let c = self.store.write(|tx| {
                    tx.update_container(&c.id, |c| {
                        c.state = ContainerState::Running;
                        c.pid = Some(pid);
                        c.started_at = crate::now_nanos();
                    })
                })?;
                tracing::info!(container = %c.id, pid, "container started");
                self.emit(&c, api::ContainerEventType::ContainerStartedEvent);
                self.watch(&c);
                Ok(())
            }
            other => {
                let e = match other {
                    Ok(r) => ContainerError::ShimSays(format!("unexpected answer {r:?}")),
                    Err(e) => e,
                };
                let message = crate::error_chain(&e);
                let c = self.store.write(|tx| {
                    tx.update_container(&c.id, |c| {
                        c.state = ContainerState::Exited;
                        c.finished_at = crate::now_nanos();
                        c.exit_code = START_ERROR_CODE;
                        c.reason = "StartError".into();
                        c.message = message.clone();
                    })
                })?;
                self.emit(&c, api::ContainerEventType::ContainerStoppedEvent);
                Err(e)
            }
        }
    }

    /// The process of `c` running `args`, as its user, in its environment and directory.
    fn process(&self, c: &Container, args: Vec<String>) -> Process {
        Process {
            args,
            env: c
                .envs
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect(),
            cwd: c.working_dir.clone(),
            uid: c.user.uid,
            gid: c.user.gid,
            groups: c.user.supplemental_groups.clone(),
        }
    }

    /// Starts the thread that records the end of running container `c`.
    fn watch(self: &Arc<Self>, c: &Container) {
        let (this, id, pod_id) = (self.clone(), c.id.clone(), c.pod_id.clone());
        let spawned = std::thread::Builder::new()
            .name("container-wait".into())
            .spawn(move || {
                let req = Request::Wait {
                    id: id.clone(),
                    timeout_ms: 0,
                };
                let (ended, message) = loop {
                    match this.call(&pod_id, &req) {
                        Ok(Response::State { ended: Some(e), .. }) => break (e, String::new()),
                        // The shim answers but the sentry ended without reporting the end.
                        Ok(other) => break (Ended::Lost, format!("unexpected answer {other:?}")),
                        Err(e) if this.shim_gone(&pod_id) => {
                            break (Ended::Lost, crate::error_chain(&e))
                        }
                        Err(ContainerError::ShimSays(m)) => break (Ended::Lost, m),
                        Err(e) => {
                            // The connection broke but the shim is there: ask again.
                            tracing::debug!(container = %id, error = %e, "waiting again");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                };
                this.record_end(&id, ended, &message);
            });
        if let Err(e) = spawned {
            tracing::error!(container = %c.id, error = %e, "cannot watch the container");
        }
    }

    /// Records that running container `id` ended (once: a later report changes nothing).
    fn record_end(&self, id: &str, ended: Ended, message: &str) {
        let r = self.store.write(|tx| {
            let Some(c) = tx.container(id)? else {
                return Ok(None);
            };
            if c.state != ContainerState::Running {
                return Ok(None);
            }
            tx.update_container(id, |c| {
                c.state = ContainerState::Exited;
                c.finished_at = crate::now_nanos();
                c.exit_code = exit_code(ended);
                c.reason = match ended {
                    Ended::Exited { code: 0 } => "Completed",
                    Ended::Lost => "Unknown",
                    _ => "Error",
                }
                .into();
                c.message = message.to_owned();
            })
            .map(Some)
        });
        match r {
            Ok(Some(c)) => {
                tracing::info!(container = %id, exit_code = c.exit_code, reason = %c.reason, "container ended");
                self.emit(&c, api::ContainerEventType::ContainerStoppedEvent);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(container = %id, error = %e, "cannot record a container's end")
            }
        }
    }

    /// Asks the shim to wait for `id` at most `timeout` and records the end if it came.
    fn wait_end(&self, pod_id: &str, id: &str, timeout: Duration) -> Result<bool, ContainerError> {
        let timeout_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let req = Request::Wait {
            id: id.to_owned(),
            timeout_ms,
        };
        match self.call(pod_id, &req)? {
            Response::State { ended: Some(e), .. } => {
                self.record_end(id, e, "");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// StopContainer: the image's stop signal (SIGTERM by default), then SIGKILL once
    /// `timeout` passed. Stopping a container that is not running does nothing.
    pub fn stop(&self, id: &str, timeout: Duration) -> Result<(), ContainerError> {
        let c = self.store.get_container(id)?;
        let lock = self.lock_of(&c.id);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let c = self.store.get_container(&c.id)?;
        if c.state != ContainerState::Running {
            return Ok(());
        }
        // A failed call: if the shim is gone, so is the container (recorded, and the stop is
        // done); otherwise the error stands and kubelet asks again.
        let lost = |e: ContainerError| -> Result<(), ContainerError> {
            if self.shim_gone(&c.pod_id) {
                self.record_end(&c.id, Ended::Lost, &crate::error_chain(&e));
                Ok(())
            } else {
                Err(e)
            }
        };
        if !timeout.is_zero() {
            let sig = self
                .image_of(&c.image_id)
                .ok()
                .and_then(|(_, run)| signal_number(&run.stop_signal))
                .unwrap_or(15);
            let signal = Request::Signal {
                id: c.id.clone(),
                signal: sig,
            };
            if let Err(e) = self.call(&c.pod_id, &signal) {
                return lost(e);
            }
            match self.wait_end(&c.pod_id, &c.id, timeout) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return lost(e),
            }
            tracing::info!(container = %c.id, ?timeout, "container did not stop in time; killing it");
        }
        let kill = Request::Signal {
            id: c.id.clone(),
            signal: 9,
        };
        if let Err(e) = self.call(&c.pod_id, &kill) {
            return lost(e);
        }
        match self.wait_end(&c.pod_id, &c.id, KILL_WAIT) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ContainerError::Timeout(KILL_WAIT)),
            Err(e) => lost(e),
        }
    }

    /// RemoveContainer: kills it if it runs, then forgets it; an unknown id is no error.
    pub fn remove(&self, id: &str) -> Result<(), ContainerError> {
        let c = match self.store.get_container(id) {
            Ok(c) => c,
            Err(StateError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.stop(&c.id, Duration::ZERO)?;
        let lock = self.lock_of(&c.id);
        {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(c) = self.store.container(&c.id)? else {
                return Ok(());
            };
            match self.call(&c.pod_id, &Request::Remove { id: c.id.clone() }) {
                Ok(_) => {}
                // A stopped pod has no shim: nothing of the container is left in it.
                Err(e) if self.shim_gone(&c.pod_id) => {
                    tracing::debug!(container = %c.id, error = %e, "no shim to remove the container from")
                }
                // The shim refused (the process still runs): the root must stay.
                Err(e) => return Err(e),
            }
            self.root_of(&c.id).destroy()?;
            self.store.write(|tx| tx.delete_container(&c.id))?;
            self.cpu_samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&c.id);
            tracing::info!(container = %c.id, "container removed");
            self.emit(&c, api::ContainerEventType::ContainerDeletedEvent);
        }
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&c.id);
        Ok(())
    }

    /// ContainerStatus; `verbose` adds the `info` entry kubelet's debug tools read (pid in the
    /// sandbox, pod, root, command line, user) as JSON.
    pub fn status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(api::ContainerStatus, HashMap<String, String>), ContainerError> {
        let c = self.store.get_container(id)?;
        let log_dir = self
            .store
            .pod(&c.pod_id)?
            .map(|p| p.log_directory)
            .unwrap_or_default();
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": c.pid,
                "sandboxID": c.pod_id,
                "rootfs": self.root_of(&c.id).rootfs(),
                "args": c.command.iter().chain(&c.args).collect::<Vec<_>>(),
                "workingDir": c.working_dir,
                "user": {"uid": c.user.uid, "gid": c.user.gid, "groups": c.user.supplemental_groups},
            });
            info.insert("info".to_owned(), v.to_string());
        }
        Ok((c.to_cri_status(&log_dir), info))
    }

    /// ListContainers.
    pub fn list(
        &self,
        filter: Option<&api::ContainerFilter>,
    ) -> Result<Vec<api::Container>, ContainerError> {
        let filter = match filter {
            Some(f) => ContainerFilter::try_from(f)?,
            None => ContainerFilter::default(),
        };
        let list = self.store.list_containers(&filter)?;
        Ok(list.iter().map(api::Container::from).collect())
    }

    fn running(&self, id: &str) -> Result<Container, ContainerError> {
        let c = self.store.get_container(id)?;
        if c.state != ContainerState::Running {
            return Err(ContainerError::Precondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(c)
    }

    /// ExecSync: runs `cmd` in the running container and returns its output; past `timeout`
    /// (zero: none) the command is killed and the call fails.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutput, ContainerError> {
        if cmd.is_empty() {
            return Err(ContainerError::Invalid("cmd is required".into()));
        }
        let c = self.running(id)?;
        let req = Request::ExecSync {
            id: c.id.clone(),
            container: c.id.clone(),
            process: self.process(&c, cmd),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match self.call(&c.pod_id, &req)? {
            Response::Output {
                timed_out: true, ..
            } => Err(ContainerError::Timeout(timeout)),
            Response::Output {
                ended: Some(e),
                stdout,
                stderr,
                ..
            } => Ok(ExecOutput {
                stdout,
                stderr,
                exit_code: exit_code(e),
            }),
            other => Err(ContainerError::ShimSays(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// ReopenContainerLog.
    pub fn reopen_log(&self, id: &str) -> Result<(), ContainerError> {
        let c = self.running(id)?;
        self.call(&c.pod_id, &Request::ReopenLog { id: c.id.clone() })
            .map(drop)
    }

    /// UpdateContainerResources: records the new resources. They are enforced for the pod as
    /// a whole (its cgroup holds the one sentry every container shares).
    pub fn update_resources(
        &self,
        id: &str,
        linux: Option<&api::LinuxContainerResources>,
    ) -> Result<(), ContainerError> {
        let c = self.store.get_container(id)?;
        if let Some(r) = linux {
            let r = Resources::from(r);
            self.store
                .write(|tx| tx.update_container(&c.id, |c| c.resources = r))?;
        }
        Ok(())
    }

    /// The sentry's usage report of pod `pod_id` (None when its shim is gone).
    fn pod_usage(&self, pod_id: &str) -> Option<(Vec<Usage>, u64)> {
        match self.call(pod_id, &Request::Stats) {
            Ok(Response::Stats {
                containers,
                memory_bytes,
            }) => Some((containers, memory_bytes)),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(pod = %pod_id, error = %e, "no stats from the pod");
                None
            }
        }
    }

    /// The CRI stats of `c` from its pod's usage report.
    fn container_stats(
        &self,
        c: &Container,
        usage: Option<&Usage>,
        now: i64,
    ) -> api::ContainerStats {
        let cpu_ns = usage.map_or(0, |u| u.cpu_ns);
        let nano_cores = {
            let mut samples = self.cpu_samples.lock().unwrap_or_else(|e| e.into_inner());
            let prev = samples.insert(c.id.clone(), (now, cpu_ns));
            prev.and_then(|(t, n)| {
                let dt = u64::try_from(now - t).ok().filter(|d| *d > 0)?;
                let used = cpu_ns.checked_sub(n)?;
                u64::try_from(u128::from(used) * 1_000_000_000 / u128::from(dt)).ok()
            })
        };
        let memory = usage.map_or(0, |u| u.memory_bytes);
        let root = self.root_of(&c.id);
        let (bytes, inodes) = root.usage().unwrap_or((0, 0));
        api::ContainerStats {
            attributes: Some(api::ContainerAttributes {
                id: c.id.clone(),
                metadata: Some((&c.metadata).into()),
                labels: c.labels.clone().into_iter().collect(),
                annotations: c.annotations.clone().into_iter().collect(),
            }),
            cpu: Some(cpu_usage(now, cpu_ns, nano_cores)),
            memory: Some(memory_usage(now, memory)),
            writable_layer: Some(api::FilesystemUsage {
                timestamp: now,
                fs_id: Some(api::FilesystemIdentifier {
                    mountpoint: root.upper().to_string_lossy().into_owned(),
                }),
                used_bytes: u64_value(bytes),
                inodes_used: u64_value(inodes),
            }),
            swap: None,
        }
    }

    /// Stats of the containers that match `filter`, pod by pod.
    fn stats_of(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<api::ContainerStats>, ContainerError> {
        let list = self.store.list_containers(filter)?;
        let mut by_pod: HashMap<&str, Vec<&Container>> = HashMap::new();
        for c in &list {
            by_pod.entry(c.pod_id.as_str()).or_default().push(c);
        }
        let mut out = Vec::new();
        for (pod_id, cs) in by_pod {
            let usage = self.pod_usage(pod_id);
            let now = crate::now_nanos();
            for c in cs {
                let u = usage
                    .as_ref()
                    .and_then(|(us, _)| us.iter().find(|u| u.id == c.id));
                out.push(self.container_stats(c, u, now));
            }
        }
        Ok(out)
    }

    /// ContainerStats.
    pub fn stats(&self, id: &str) -> Result<api::ContainerStats, ContainerError> {
        let c = self.store.get_container(id)?;
        let filter = ContainerFilter {
            id: Some(c.id.clone()),
            ..Default::default()
        };
        self.stats_of(&filter)?
            .pop()
            .ok_or_else(|| StateError::NotFound {
                kind: crate::state::Kind::Container,
                id: id.to_owned(),
            })
            .map_err(Into::into)
    }

    /// ListContainerStats.
    pub fn list_stats(
        &self,
        filter: Option<&api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>, ContainerError> {
        let filter = match filter {
            Some(f) => ContainerFilter {
                id: (!f.id.is_empty()).then(|| f.id.clone()),
                pod_id: (!f.pod_sandbox_id.is_empty()).then(|| f.pod_sandbox_id.clone()),
                state: None,
                labels: string_map(&f.label_selector),
            },
            None => ContainerFilter::default(),
        };
        self.stats_of(&filter)
    }

    /// The PodSandboxStats of `pod`.
    pub fn pod_stats(&self, pod: &PodSandbox) -> Result<api::PodSandboxStats, ContainerError> {
        let usage = self.pod_usage(&pod.id);
        let now = crate::now_nanos();
        let cs = self.store.containers_of_pod(&pod.id)?;
        let containers: Vec<api::ContainerStats> = cs
            .iter()
            .map(|c| {
                let u = usage
                    .as_ref()
                    .and_then(|(us, _)| us.iter().find(|u| u.id == c.id));
                self.container_stats(c, u, now)
            })
            .collect();
        let (cpu_ns, processes) = usage.as_ref().map_or((0, 0), |(us, _)| {
            us.iter().fold((0, 0), |(n, p), u| {
                (n + u.cpu_ns, p + u64::from(u.processes))
            })
        });
        let nano_cores = containers
            .iter()
            .filter_map(|c| c.cpu.as_ref()?.usage_nano_cores.as_ref().map(|v| v.value))
            .reduce(|a, b| a + b);
        let memory = usage.as_ref().map_or(0, |(_, m)| *m);
        Ok(api::PodSandboxStats {
            attributes: Some(api::PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: Some((&pod.metadata).into()),
                labels: pod.labels.clone().into_iter().collect(),
                annotations: pod.annotations.clone().into_iter().collect(),
            }),
            linux: Some(api::LinuxPodSandboxStats {
                cpu: Some(cpu_usage(now, cpu_ns, nano_cores)),
                memory: Some(memory_usage(now, memory)),
                network: None,
                process: Some(api::ProcessUsage {
                    timestamp: now,
                    process_count: u64_value(processes),
                }),
                containers,
            }),
            windows: None,
        })
    }

    /// The metrics of ListPodSandboxMetrics for `pod` (see [`metric_descriptors`]).
    pub fn pod_metrics(&self, pod: &PodSandbox) -> Result<api::PodSandboxMetrics, ContainerError> {
        let stats = self.pod_stats(pod)?;
        let now = crate::now_nanos();
        let metric =
            |name: &str, kind: api::MetricType, labels: Vec<String>, value: u64| api::Metric {
                name: name.to_owned(),
                timestamp: now,
                metric_type: kind as i32,
                label_values: labels,
                value: u64_value(value),
            };
        let containers = stats.linux.map(|l| l.containers).unwrap_or_default();
        let container_metrics = containers
            .iter()
            .filter_map(|cs| {
                let a = cs.attributes.as_ref()?;
                let name = a
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let labels = vec![
                    name,
                    pod.metadata.name.clone(),
                    pod.metadata.namespace.clone(),
                ];
                let cpu = cs
                    .cpu
                    .as_ref()
                    .and_then(|c| c.usage_core_nano_seconds.as_ref())
                    .map_or(0, |v| v.value);
                let mem = cs
                    .memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes.as_ref())
                    .map_or(0, |v| v.value);
                Some(api::ContainerMetrics {
                    container_id: a.id.clone(),
                    metrics: vec![
                        metric(
                            METRIC_CPU,
                            api::MetricType::Counter,
                            labels.clone(),
                            cpu / 1_000_000_000,
                        ),
                        metric(METRIC_MEMORY, api::MetricType::Gauge, labels, mem),
                    ],
                })
            })
            .collect();
        Ok(api::PodSandboxMetrics {
            pod_sandbox_id: pod.id.clone(),
            metrics: Vec::new(),
            container_metrics,
        })
    }

    /// Kills the running containers of pod `pod_id` (before its sandbox stops).
    pub fn stop_pod_containers(&self, pod_id: &str) -> Result<(), ContainerError> {
        for c in self.store.containers_of_pod(pod_id)? {
            if c.state == ContainerState::Running {
                self.stop(&c.id, Duration::ZERO)?;
            }
        }
        Ok(())
    }

    /// Removes every container of pod `pod_id` (before the pod is removed).
    pub fn remove_pod_containers(&self, pod_id: &str) -> Result<(), ContainerError> {
        for c in self.store.containers_of_pod(pod_id)? {
            self.remove(&c.id)?;
        }
        Ok(())
    }

    /// A container recorded Created after a restart: removed if its create was cut short,
    /// recorded running if a cut-short start did reach the shim.
    fn recover_created(&self, c: &Container) -> Result<(), ContainerError> {
        if !c.prepared {
            tracing::warn!(container = %c.id, "removing a container whose creation was cut short");
            self.root_of(&c.id).destroy()?;
            self.store.write(|tx| tx.delete_container(&c.id))?;
            return Ok(());
        }
        if let Ok(Response::State { pid: Some(pid), .. }) =
            self.call(&c.pod_id, &Request::State { id: c.id.clone() })
        {
            tracing::warn!(container = %c.id, pid, "found started; recording it running");
            self.store.write(|tx| {
                tx.update_container(&c.id, |c| {
                    c.state = ContainerState::Running;
                    c.pid = Some(pid);
                    c.started_at = crate::now_nanos();
                })
            })?;
        }
        Ok(())
    }

    /// After a daemon start: removes what a cut-short CreateContainer left, and watches the
    /// containers recorded running again, so their ends (also ends while the daemon was away)
    /// are recorded.
    pub fn recover(self: &Arc<Self>) -> Result<usize, ContainerError> {
        // A create the daemon stopped in the middle of: no one was told its id.
        let created = ContainerFilter {
            state: Some(ContainerState::Created),
            ..Default::default()
        };
        for c in self.store.list_containers(&created)? {
            if let Err(e) = self.recover_created(&c) {
                tracing::error!(container = %c.id, error = %crate::error_chain(&e), "cannot recover a created container");
            }
        }
        let filter = ContainerFilter {
            state: Some(ContainerState::Running),
            ..Default::default()
        };
        let running = self.store.list_containers(&filter)?;
        for c in &running {
            self.watch(c);
        }
        Ok(running.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        RunConfig {
            entrypoint: entrypoint.map(v),
            cmd: cmd.map(v),
            ..Default::default()
        }
    }

    fn strings(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let image = run(Some(&["/entry"]), Some(&["default"]));
        assert_eq!(
            process_args(&[], &[], &image).unwrap(),
            (strings(&["/entry"]), strings(&["default"]))
        );
        assert_eq!(
            process_args(&[], &strings(&["mine"]), &image).unwrap(),
            (strings(&["/entry"]), strings(&["mine"]))
        );
        assert_eq!(
            process_args(&strings(&["/bin/sh"]), &[], &image).unwrap(),
            (strings(&["/bin/sh"]), vec![])
        );
        assert!(process_args(&[], &[], &run(Some(&[""]), None)).is_err());
    }

    #[test]
    fn env_merges_request_over_image_and_fills_defaults() {
        let env = merge_env(
            &strings(&["A=1", "PATH=/bin", "B=2"]),
            &[api::KeyValue {
                key: "A".into(),
                value: "x=y".into(),
            }],
            "pod",
            "/root",
        );
        let flat: Vec<String> = env
            .iter()
            .map(|e| format!("{}={}", e.key, e.value))
            .collect();
        assert_eq!(
            flat,
            strings(&["A=x=y", "PATH=/bin", "B=2", "HOSTNAME=pod", "HOME=/root"])
        );
    }

    #[test]
    fn stop_signal_names() {
        assert_eq!(signal_number("SIGQUIT"), Some(3));
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number(""), None);
    }
}
