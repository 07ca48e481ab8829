//! Pod networks through CNI (spec 1.0.0, and the 0.3.x/0.4.0 configurations still in use): the
//! exec protocol against the real plugin binaries, as containerd's go-cni and libcni drive it.
//!
//! [`Cni::setup`] runs ADD for each plugin of the network in order, chaining `prevResult`;
//! [`Cni::teardown`] runs DEL in reverse; [`Cni::check`] runs CHECK. Before the first ADD, the
//! exact configuration and arguments are written to the cache dir (one file per pod), and the
//! final result after the last one, so that DEL later uses what ADD used even if the conf dir
//! changed or the daemon restarted in between. DEL is idempotent: a missing namespace, a missing
//! cache entry, or work the plugins already undid are not errors.
//! May touch: the plugins it runs (as root, with the daemon's environment plus CNI_*), files under
//! the cache dir, the conf and bin dirs read-only.
//! Never: runs a plugin found anywhere but the configured bin dirs. Calls for one pod must not
//! overlap (the RuntimeService serializes them per pod); calls for different pods may.

mod conf;
mod exec;
mod result;

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use conf::{NetworkList, PluginConf, SUPPORTED_VERSIONS};
pub use exec::Command;
pub use result::{CniResult, Dns, Interface, IpConfig, IpNet, Route};

use exec::{invoke, Invocation};

/// Where network configurations are read unless configured otherwise.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Where plugin binaries are looked for, in order, unless configured otherwise (Debian's
/// `containernetworking-plugins` first, then the upstream release tarball's place).
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];
/// The pod's interface name.
pub const DEFAULT_IFNAME: &str = "eth0";
/// How long one plugin run may take.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The `kind` of our cache files.
const CACHE_KIND: &str = "moatCniCacheV1";

/// Why a CNI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("no network config found in {dir:?}")]
    NoConfig { dir: PathBuf },
    #[error("cannot read network config dir {dir:?}")]
    ReadConfDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read network config {path:?}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network config {path:?} is not valid JSON")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid network config {path:?}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("network config {path:?} has unsupported cniVersion {version:?}")]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("CNI plugin {plugin:?} not found in {dirs}")]
    PluginNotFound { plugin: String, dirs: String },
    #[error("invalid {what} {value:?} for CNI")]
    InvalidArgument { what: &'static str, value: String },
    #[error("pod {id} already has a network attachment (tear it down first)")]
    AlreadyAttached { id: String },
    #[error("pod {id} has no network attachment")]
    NotAttached { id: String },
    #[error("cniVersion {version} does not support CHECK")]
    CheckUnsupported { version: String },
    #[error("cannot run CNI plugin {plugin:?}")]
    Spawn {
        plugin: String,
        #[source]
        source: io::Error,
    },
    #[error("CNI plugin {plugin:?} {command} did not finish within {after:?}")]
    Timeout {
        plugin: String,
        command: &'static str,
        after: Duration,
    },
    #[error("CNI plugin {plugin:?} {command} failed with code {code}: {msg}{}", details_suffix(.details))]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("CNI plugin {plugin:?} {command} failed ({status}): {output}")]
    PluginFailed {
        plugin: String,
        command: &'static str,
        status: ExitStatus,
        output: String,
    },
    #[error("CNI plugin {plugin:?} returned a bad result: {reason}")]
    BadResult { plugin: String, reason: String },
    #[error("cannot write CNI cache {path:?}")]
    WriteCache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read CNI cache {path:?}")]
    ReadCache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("CNI cache {path:?} is corrupt: {reason}")]
    CorruptCache { path: PathBuf, reason: String },
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

/// Where CNI finds its configuration and plugins and keeps its cache; validated by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    pub conf_dir: PathBuf,
    /// Searched in order for each plugin; also the plugins' CNI_PATH.
    pub bin_dirs: Vec<PathBuf>,
    /// One file per attached pod (for instance `<root>/cni-cache`).
    pub cache_dir: PathBuf,
    /// The pod interface's name (CNI_IFNAME).
    pub ifname: String,
    /// The most one plugin run may take before it is killed.
    pub plugin_timeout: Duration,
}

impl CniConfig {
    /// A configuration with the default interface name and timeout.
    pub fn new(conf_dir: PathBuf, bin_dirs: Vec<PathBuf>, cache_dir: PathBuf) -> Self {
        Self {
            conf_dir,
            bin_dirs,
            cache_dir,
            ifname: DEFAULT_IFNAME.to_owned(),
            plugin_timeout: DEFAULT_PLUGIN_TIMEOUT,
        }
    }
}

/// Splits a `:`-separated list of bin dirs (as `--cni-bin-dir` takes it), dropping empty parts.
pub fn split_bin_dirs(list: &str) -> Vec<PathBuf> {
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// A port mapping passed to plugins that declare the `portMappings` capability (`portmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// The host address to listen on; `None` for all of them.
    pub host_ip: Option<IpAddr>,
}

/// A port mapping's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// The pod a network operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// The sandbox id: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. Letters, digits, `_`, `.`,
    /// `-`, starting with a letter or digit.
    pub id: String,
    /// The pod's network namespace file (CNI_NETNS).
    pub netns: PathBuf,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// Mappings with a host port of 0 are not passed on (nothing to map), as in containerd.
    pub port_mappings: Vec<PortMapping>,
}

impl PodNetwork {
    /// CNI_ARGS as key/value pairs, checked.
    fn cni_args(&self) -> Result<Vec<(String, String)>, CniError> {
        let pairs = [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", self.namespace.as_str()),
            ("K8S_POD_NAME", self.name.as_str()),
            ("K8S_POD_INFRA_CONTAINER_ID", self.id.as_str()),
            ("K8S_POD_UID", self.uid.as_str()),
        ];
        pairs
            .into_iter()
            .map(|(k, v)| {
                if v.contains([';', '=']) || v.chars().any(char::is_control) {
                    Err(CniError::InvalidArgument {
                        what: k,
                        value: v.to_owned(),
                    })
                } else {
                    Ok((k.to_owned(), v.to_owned()))
                }
            })
            .collect()
    }

    /// The capability arguments (`runtimeConfig` keys) of this pod.
    fn capability_args(&self) -> Map<String, Value> {
        let mappings: Vec<Value> = self
            .port_mappings
            .iter()
            .filter(|m| m.host_port != 0)
            .map(|m| {
                let mut obj = serde_json::json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol.as_str(),
                });
                if let (Some(ip), Some(obj)) = (m.host_ip, obj.as_object_mut()) {
                    obj.insert("hostIP".into(), Value::String(ip.to_string()));
                }
                obj
            })
            .collect();
        let mut caps = Map::new();
        if !mappings.is_empty() {
            caps.insert("portMappings".into(), Value::Array(mappings));
        }
        caps
    }
}

/// Whether `id` is a container id as the CNI spec allows CNI_CONTAINERID: alphanumeric first,
/// then alphanumerics, `_`, `.` and `-`, at most 255 bytes (ids also name files and keys).
pub fn valid_container_id(id: &str) -> bool {
    id.len() <= 255
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Checks a container id the way the spec restricts CNI_CONTAINERID (it also names cache files).
fn check_id(id: &str) -> Result<(), CniError> {
    if valid_container_id(id) {
        Ok(())
    } else {
        Err(CniError::InvalidArgument {
            what: "container id",
            value: id.to_owned(),
        })
    }
}

/// A network config that can be used now: the list and each plugin's binary.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkStatus {
    pub network: NetworkList,
    /// The binary of each plugin, in the list's order.
    pub binaries: Vec<PathBuf>,
}

/// What the cache says about a pod's attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The configuration ADD used.
    pub network: NetworkList,
    /// The final ADD result; `None` if ADD did not complete (DEL is still due then).
    pub result: Option<CniResult>,
}

/// The cache file of one pod, as written to disk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheEntry {
    kind: String,
    container_id: String,
    if_name: String,
    netns: PathBuf,
    network: Value,
    cni_args: Vec<(String, String)>,
    capability_args: Map<String, Value>,
    result: Option<Value>,
}

/// What ADD, DEL and CHECK run with: the list, its binaries, the arguments.
struct Run {
    list: NetworkList,
    binaries: Vec<PathBuf>,
    cni_args: Vec<(String, String)>,
    capability_args: Map<String, Value>,
}

/// Which attachment a plugin run is about: CNI_CONTAINERID and CNI_NETNS.
#[derive(Clone, Copy)]
struct Target<'a> {
    id: &'a str,
    netns: &'a str,
}

/// The CNI driver of one daemon.
#[derive(Debug, Clone)]
pub struct Cni {
    cfg: CniConfig,
}

impl Cni {
    pub fn new(cfg: CniConfig) -> Self {
        Self { cfg }
    }

    pub fn config(&self) -> &CniConfig {
        &self.cfg
    }

    /// Whether pods can be networked now: a network config loads and every plugin it names is on
    /// the bin dirs (CRI Status NetworkReady). The error says what is missing.
    pub fn status(&self) -> Result<NetworkStatus, CniError> {
        let network = NetworkList::load_dir(&self.cfg.conf_dir)?;
        let binaries = self.find_binaries(&network)?;
        Ok(NetworkStatus { network, binaries })
    }

    /// Attaches the pod to the network: ADD for each plugin in order. Its namespace must exist.
    /// On failure the plugins that ran are undone (DEL), the cache entry goes, and the error of
    /// the failed ADD is returned; the caller then removes the namespace. If undoing fails too,
    /// the cache entry stays so that [`Cni::teardown`] can finish the job.
    pub fn setup(&self, pod: &PodNetwork) -> Result<CniResult, CniError> {
        check_id(&pod.id)?;
        let cni_args = pod.cni_args()?;
        let cache = self.cache_path(&pod.id);
        if cache.exists() {
            return Err(CniError::AlreadyAttached { id: pod.id.clone() });
        }
        let list = NetworkList::load_dir(&self.cfg.conf_dir)?;
        let binaries = self.find_binaries(&list)?;
        let run = Run {
            list,
            binaries,
            cni_args,
            capability_args: pod.capability_args(),
        };
        let mut entry = CacheEntry {
            kind: CACHE_KIND.to_owned(),
            container_id: pod.id.clone(),
            if_name: self.cfg.ifname.clone(),
            netns: pod.netns.clone(),
            network: run.list.to_json(),
            cni_args: run.cni_args.clone(),
            capability_args: run.capability_args.clone(),
            result: None,
        };
        self.write_cache(&entry)?;
        let netns = pod.netns.to_string_lossy().into_owned();
        let target = Target {
            id: &pod.id,
            netns: &netns,
        };
        let mut prev: Option<Value> = None;
        for (plugin, binary) in run.list.plugins.iter().zip(&run.binaries) {
            let added = self
                .exec(&run, (plugin, binary), Command::Add, &target, prev.as_ref())
                .and_then(|out| parse_result(&plugin.plugin_type, &out));
            match added {
                Ok(value) => prev = Some(value),
                Err(e) => {
                    self.undo_failed_add(pod, &run, prev.as_ref());
                    return Err(e);
                }
            }
        }
        let Some(value) = prev else {
            // A list always has a plugin (checked when loaded), so ADD ran at least once.
            return Err(CniError::BadResult {
                plugin: run.list.name.clone(),
                reason: "no plugin ran".into(),
            });
        };
        let last = run
            .list
            .plugins
            .last()
            .map(|p| p.plugin_type.clone())
            .unwrap_or_default();
        let parsed = CniResult::parse(&value).map_err(|reason| CniError::BadResult {
            plugin: last,
            reason,
        });
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                self.undo_failed_add(pod, &run, Some(&value));
                return Err(e);
            }
        };
        entry.result = Some(value.clone());
        if let Err(e) = self.write_cache(&entry) {
            self.undo_failed_add(pod, &run, Some(&value));
            return Err(e);
        }
        tracing::info!(pod = %pod.id, network = %run.list.name, ips = ?parsed.pod_ips(&self.cfg.ifname), "pod network attached");
        Ok(parsed)
    }

    /// Detaches the pod: DEL for each plugin in reverse order, with the configuration, arguments
    /// and result ADD used (from the cache), then drops the cache entry. Without a cache entry
    /// the current configuration is used, and with none of either there is nothing to do. A
    /// namespace that is already gone is passed as an empty CNI_NETNS, as the spec allows.
    /// Idempotent; on error the cache entry stays for the next try.
    pub fn teardown(&self, pod: &PodNetwork) -> Result<(), CniError> {
        check_id(&pod.id)?;
        let cache = self.cache_path(&pod.id);
        let (run, prev) = match self.read_cache(&pod.id) {
            Ok(Some(entry)) => {
                let list = NetworkList::from_list(entry.network, &cache)?;
                let binaries = self.find_binaries(&list)?;
                let run = Run {
                    list,
                    binaries,
                    cni_args: entry.cni_args,
                    capability_args: entry.capability_args,
                };
                (run, entry.result)
            }
            res @ (Ok(None) | Err(CniError::CorruptCache { .. })) => {
                if let Err(e) = res {
                    tracing::warn!(pod = %pod.id, error = %e, "ignoring a corrupt CNI cache entry");
                }
                let list = match NetworkList::load_dir(&self.cfg.conf_dir) {
                    Ok(list) => list,
                    Err(e) => {
                        tracing::debug!(pod = %pod.id, error = %e, "no CNI cache or config: nothing to tear down");
                        return self.remove_cache(&pod.id);
                    }
                };
                let binaries = match self.find_binaries(&list) {
                    Ok(binaries) => binaries,
                    Err(e) => {
                        tracing::debug!(pod = %pod.id, error = %e, "no CNI cache and plugins missing: nothing to tear down");
                        return self.remove_cache(&pod.id);
                    }
                };
                let run = Run {
                    list,
                    binaries,
                    cni_args: pod.cni_args()?,
                    capability_args: pod.capability_args(),
                };
                (run, None)
            }
            Err(e) => return Err(e),
        };
        let netns = if pod.netns.exists() {
            pod.netns.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let target = Target {
            id: &pod.id,
            netns: &netns,
        };
        self.del_all(&run, &target, prev.as_ref())?;
        self.remove_cache(&pod.id)?;
        tracing::info!(pod = %pod.id, network = %run.list.name, "pod network detached");
        Ok(())
    }

    /// Asks the plugins whether the pod's network is still as ADD left it (CHECK, in order, with
    /// the cached configuration and result). Needs cniVersion 0.4.0 or later; a list with
    /// `disableCheck` passes without running anything.
    pub fn check(&self, pod: &PodNetwork) -> Result<(), CniError> {
        check_id(&pod.id)?;
        let cache = self.cache_path(&pod.id);
        let Some(entry) = self.read_cache(&pod.id)? else {
            return Err(CniError::NotAttached { id: pod.id.clone() });
        };
        let Some(prev) = entry.result else {
            return Err(CniError::NotAttached { id: pod.id.clone() });
        };
        let list = NetworkList::from_list(entry.network, &cache)?;
        if !list.version_at_least("0.4.0") {
            return Err(CniError::CheckUnsupported {
                version: list.cni_version,
            });
        }
        if list.disable_check {
            return Ok(());
        }
        let binaries = self.find_binaries(&list)?;
        let run = Run {
            list,
            binaries,
            cni_args: entry.cni_args,
            capability_args: entry.capability_args,
        };
        let netns = pod.netns.to_string_lossy().into_owned();
        let target = Target {
            id: &pod.id,
            netns: &netns,
        };
        for (plugin, binary) in run.list.plugins.iter().zip(&run.binaries) {
            self.exec(&run, (plugin, binary), Command::Check, &target, Some(&prev))?;
        }
        Ok(())
    }

    /// The cached attachment of pod `id`, if any (the pod IP after a daemon restart).
    pub fn attachment(&self, id: &str) -> Result<Option<Attachment>, CniError> {
        check_id(id)?;
        let Some(entry) = self.read_cache(id)? else {
            return Ok(None);
        };
        let path = self.cache_path(id);
        let network = NetworkList::from_list(entry.network, &path)?;
        let result = entry
            .result
            .map(|v| CniResult::parse(&v))
            .transpose()
            .map_err(|reason| CniError::CorruptCache { path, reason })?;
        Ok(Some(Attachment { network, result }))
    }

    /// Runs DEL for every plugin, last first; stops at the first failure.
    fn del_all(
        &self,
        run: &Run,
        target: &Target<'_>,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        // Before 0.4.0, DEL gets no prevResult.
        let prev = prev.filter(|_| run.list.version_at_least("0.4.0"));
        for (plugin, binary) in run.list.plugins.iter().zip(&run.binaries).rev() {
            self.exec(run, (plugin, binary), Command::Del, target, prev)?;
        }
        Ok(())
    }

    /// Undoes a failed ADD as far as it can; what it cannot undo stays in the cache.
    fn undo_failed_add(&self, pod: &PodNetwork, run: &Run, prev: Option<&Value>) {
        let netns = pod.netns.to_string_lossy().into_owned();
        let target = Target {
            id: &pod.id,
            netns: &netns,
        };
        let undone = self
            .del_all(run, &target, prev)
            .and_then(|()| self.remove_cache(&pod.id));
        if let Err(e) = undone {
            tracing::warn!(pod = %pod.id, error = %e, "cannot undo a failed CNI ADD; teardown will retry");
        }
    }

    /// Runs `command` of `plugin` (found at `binary`) for `target`, with `prev` as prevResult.
    fn exec(
        &self,
        run: &Run,
        (plugin, binary): (&PluginConf, &PathBuf),
        command: Command,
        target: &Target<'_>,
        prev: Option<&Value>,
    ) -> Result<Vec<u8>, CniError> {
        let Target { id, netns } = *target;
        let cni_args = run
            .cni_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let env = [
            ("CNI_CONTAINERID", id.to_owned()),
            ("CNI_NETNS", netns.to_owned()),
            ("CNI_IFNAME", self.cfg.ifname.clone()),
            ("CNI_ARGS", cni_args),
            ("CNI_PATH", self.cni_path()),
        ];
        tracing::debug!(pod = %id, plugin = %plugin.plugin_type, command = command.as_str(), "running CNI plugin");
        invoke(Invocation {
            plugin: &plugin.plugin_type,
            binary,
            command,
            env: &env,
            stdin: run.list.plugin_stdin(plugin, prev, &run.capability_args),
            timeout: self.cfg.plugin_timeout,
        })
    }

    fn cni_path(&self) -> String {
        self.cfg
            .bin_dirs
            .iter()
            .map(|d| d.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The binary of each plugin of `list`: the first executable file of that name on the bin dirs.
    fn find_binaries(&self, list: &NetworkList) -> Result<Vec<PathBuf>, CniError> {
        list.plugins
            .iter()
            .map(|p| {
                self.cfg
                    .bin_dirs
                    .iter()
                    .map(|d| d.join(&p.plugin_type))
                    .find(|path| {
                        fs::metadata(path)
                            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    })
                    .ok_or_else(|| CniError::PluginNotFound {
                        plugin: p.plugin_type.clone(),
                        dirs: self.cni_path(),
                    })
            })
            .collect()
    }

    fn cache_path(&self, id: &str) -> PathBuf {
        self.cfg.cache_dir.join(format!("{id}.json"))
    }

    fn read_cache(&self, id: &str) -> Result<Option<CacheEntry>, CniError> {
        let path = self.cache_path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CniError::ReadCache { path, source }),
        };
        let corrupt = |reason: String| CniError::CorruptCache {
            path: path.clone(),
            reason,
        };
        let entry: CacheEntry =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if entry.kind != CACHE_KIND || entry.container_id != id {
            return Err(corrupt(format!(
                "kind {:?} for container {:?}",
                entry.kind, entry.container_id
            )));
        }
        Ok(Some(entry))
    }

    /// Writes the entry durably: a temporary file, synced, renamed over the old one.
    fn write_cache(&self, entry: &CacheEntry) -> Result<(), CniError> {
        let path = self.cache_path(&entry.container_id);
        let err = |source| CniError::WriteCache {
            path: path.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.cfg.cache_dir)
            .map_err(err)?;
        let tmp = self
            .cfg
            .cache_dir
            .join(format!(".{}.json.tmp", entry.container_id));
        let bytes = serde_json::to_vec(entry).map_err(|e| err(e.into()))?;
        let mut file = fs::File::create(&tmp).map_err(err)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                err(e)
            })?;
        fs::File::open(&self.cfg.cache_dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }

    fn remove_cache(&self, id: &str) -> Result<(), CniError> {
        let path = self.cache_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CniError::WriteCache { path, source }),
        }
    }
}

/// The JSON object an ADD printed, checked to be a result.
fn parse_result(plugin: &str, out: &[u8]) -> Result<Value, CniError> {
    let bad = |reason: String| CniError::BadResult {
        plugin: plugin.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_slice(out).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    CniResult::parse(&value).map_err(bad)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodNetwork {
        PodNetwork {
            id: "abc123".into(),
            netns: "/run/moat/netns/abc123".into(),
            name: "web-0".into(),
            namespace: "default".into(),
            uid: "4f1c-77".into(),
            port_mappings: vec![
                PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                    host_ip: Some(IpAddr::from([127, 0, 0, 1])),
                },
                PortMapping {
                    host_port: 0,
                    container_port: 53,
                    protocol: Protocol::Udp,
                    host_ip: None,
                },
                PortMapping {
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                    host_ip: None,
                },
            ],
        }
    }

    #[test]
    fn cni_args_carry_the_kubernetes_pod_identity() {
        let args = pod().cni_args().unwrap();
        let joined: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            joined.join(";"),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
             K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=4f1c-77"
        );
        let mut bad = pod();
        bad.name = "a;b".into();
        assert!(matches!(
            bad.cni_args(),
            Err(CniError::InvalidArgument {
                what: "K8S_POD_NAME",
                ..
            })
        ));
    }

    #[test]
    fn port_mappings_skip_host_port_zero_and_name_host_ip_only_when_set() {
        let caps = pod().capability_args();
        assert_eq!(
            caps["portMappings"],
            serde_json::json!([
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}
            ])
        );
        let mut none = pod();
        none.port_mappings.clear();
        assert!(none.capability_args().is_empty());
    }

    #[test]
    fn container_ids_are_checked_like_cni_containerid() {
        for ok in ["a", "0abc", "a.b-c_d", &"f".repeat(64)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a/b", "a b", "../x", &"f".repeat(256)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plugin_error_message_includes_details_only_when_given() {
        let e = |details: &str| CniError::Plugin {
            plugin: "bridge".into(),
            command: "ADD",
            code: 7,
            msg: "bad".into(),
            details: details.into(),
        };
        assert_eq!(
            e("").to_string(),
            "CNI plugin \"bridge\" ADD failed with code 7: bad"
        );
        assert_eq!(
            e("why").to_string(),
            "CNI plugin \"bridge\" ADD failed with code 7: bad (why)"
        );
    }

    #[test]
    fn bin_dir_lists_split_on_colons() {
        assert_eq!(
            split_bin_dirs("/usr/lib/cni::/opt/cni/bin:"),
            vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")]
        );
    }
}
