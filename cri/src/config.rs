//! The daemon's settings: raw [`Settings`] from the command line and the `--config` TOML file,
//! merged (a flag wins over the file) and validated once into [`Config`], which is passed down.
//! May touch: the registry config directory (read by [`Config::from_settings`]).
//! Never: reads flags, files or environment variables itself: the binary hands it their text.
//!
//! The config file's keys, all optional:
//! ```toml
//! listen = "unix:///run/moat/moat-cri.sock"
//! root = "/var/lib/moat"
//! state = "/run/moat"
//! cni_conf_dir = "/etc/cni/net.d"
//! cni_bin_dir = ["/usr/lib/cni", "/opt/cni/bin"]   # or "/usr/lib/cni:/opt/cni/bin"
//! runtime_handlers = ["moat"]
//! streaming_address = "127.0.0.1:0"
//! registry_config_dir = "/etc/moat/certs.d"       # see crate::hosts
//! insecure_registries = ["registry.lan:5000"]     # reached over plain HTTP
//! cgroup_driver = "cgroupfs"                      # or "systemd" (kubelet's cgroupDriver)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cni::split_bin_dirs;
use crate::hosts::{HostsError, RegistryHosts};
use crate::registry::RegistryOptions;

/// The runtime handler served when none is configured.
pub const DEFAULT_RUNTIME_HANDLER: &str = "moat";
pub const DEFAULT_LISTEN: &str = "unix:///run/moat/moat-cri.sock";
pub const DEFAULT_ROOT: &str = "/var/lib/moat";
pub const DEFAULT_STATE: &str = "/run/moat";
pub const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";
pub const DEFAULT_CNI_BIN_DIR: &str = "/usr/lib/cni:/opt/cni/bin";
pub const DEFAULT_STREAMING_ADDRESS: &str = "127.0.0.1:0";
/// Read if it exists; a directory configured explicitly must exist.
pub const DEFAULT_REGISTRY_CONFIG_DIR: &str = "/etc/moat/certs.d";

/// The config file's keys.
pub const KEYS: &[&str] = &[
    "listen",
    "root",
    "state",
    "cni_conf_dir",
    "cni_bin_dir",
    "runtime_handlers",
    "streaming_address",
    "registry_config_dir",
    "insecure_registries",
    "cgroup_driver",
];

/// Why a setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("listen address {0:?} is not unix://PATH or an absolute path")]
    Listen(String),
    #[error("{what} {path:?} is not an absolute path")]
    Relative { what: &'static str, path: PathBuf },
    #[error("runtime handler name {0:?} is empty or has characters other than [a-z0-9._-]")]
    RuntimeHandler(String),
    #[error("cni_bin_dir names no directory")]
    NoCniBinDir,
    #[error("streaming address {0:?} is not IP:PORT")]
    StreamingAddress(String),
    #[error("not valid TOML")]
    Toml(#[source] toml::de::Error),
    #[error("unknown key {key:?} (known keys: {})", KEYS.join(", "))]
    UnknownKey { key: String },
    #[error("{key} must be {expected}")]
    KeyType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("cgroup driver {0:?} is neither \"cgroupfs\" nor \"systemd\"")]
    CgroupDriver(String),
    #[error("cannot load the registry host settings")]
    Hosts(#[source] HostsError),
}

/// Raw settings, as flags or the config file give them; `None` is "not given here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub listen: Option<String>,
    pub root: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub cni_conf_dir: Option<PathBuf>,
    pub cni_bin_dirs: Option<Vec<PathBuf>>,
    pub runtime_handlers: Option<Vec<String>>,
    pub streaming_address: Option<String>,
    pub registry_config_dir: Option<PathBuf>,
    pub insecure_registries: Option<Vec<String>>,
    pub cgroup_driver: Option<String>,
}

impl Settings {
    /// Parses a config file's text: only [`KEYS`], each of its type.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(ConfigError::Toml)?;
        let mut s = Self::default();
        for (key, value) in table {
            match key.as_str() {
                "listen" => s.listen = Some(string(value, "listen")?),
                "root" => s.root = Some(string(value, "root")?.into()),
                "state" => s.state = Some(string(value, "state")?.into()),
                "cni_conf_dir" => s.cni_conf_dir = Some(string(value, "cni_conf_dir")?.into()),
                "cni_bin_dir" => {
                    s.cni_bin_dirs = Some(match value {
                        toml::Value::String(list) => split_bin_dirs(&list),
                        v => strings(v, "cni_bin_dir")?
                            .into_iter()
                            .map(PathBuf::from)
                            .collect(),
                    })
                }
                "runtime_handlers" => {
                    s.runtime_handlers = Some(strings(value, "runtime_handlers")?)
                }
                "streaming_address" => {
                    s.streaming_address = Some(string(value, "streaming_address")?)
                }
                "registry_config_dir" => {
                    s.registry_config_dir = Some(string(value, "registry_config_dir")?.into())
                }
                "insecure_registries" => {
                    s.insecure_registries = Some(strings(value, "insecure_registries")?)
                }
                "cgroup_driver" => s.cgroup_driver = Some(string(value, "cgroup_driver")?),
                _ => return Err(ConfigError::UnknownKey { key }),
            }
        }
        Ok(s)
    }

    /// These settings, with `lower`'s where these have none.
    pub fn or(self, lower: Self) -> Self {
        Self {
            listen: self.listen.or(lower.listen),
            root: self.root.or(lower.root),
            state: self.state.or(lower.state),
            cni_conf_dir: self.cni_conf_dir.or(lower.cni_conf_dir),
            cni_bin_dirs: self.cni_bin_dirs.or(lower.cni_bin_dirs),
            runtime_handlers: self.runtime_handlers.or(lower.runtime_handlers),
            streaming_address: self.streaming_address.or(lower.streaming_address),
            registry_config_dir: self.registry_config_dir.or(lower.registry_config_dir),
            insecure_registries: self.insecure_registries.or(lower.insecure_registries),
            cgroup_driver: self.cgroup_driver.or(lower.cgroup_driver),
        }
    }
}

fn string(v: toml::Value, key: &'static str) -> Result<String, ConfigError> {
    match v {
        toml::Value::String(s) => Ok(s),
        _ => Err(ConfigError::KeyType {
            key,
            expected: "a string",
        }),
    }
}

fn strings(v: toml::Value, key: &'static str) -> Result<Vec<String>, ConfigError> {
    let bad = || ConfigError::KeyType {
        key,
        expected: "a list of strings",
    };
    match v {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// Everything `moat-cri` needs to serve, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The unix socket path served.
    pub socket: PathBuf,
    /// Persistent data: images, pods and containers.
    pub root: PathBuf,
    /// Runtime state that does not outlive a reboot.
    pub state: PathBuf,
    /// Where CNI network configurations are read.
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked for, in order.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Runtime handler names (RuntimeClass handlers) this daemon serves.
    pub runtime_handlers: Vec<String>,
    /// Where the exec/attach/port-forward streaming server listens (port 0: any free one).
    pub streaming_address: SocketAddr,
    /// The directory of per-registry `hosts.toml` files.
    pub registry_config_dir: PathBuf,
    /// Registry hosts reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// What [`Self::registry_config_dir`] and [`Self::insecure_registries`] say, loaded.
    pub registry_hosts: RegistryHosts,
    /// How pods' cgroup_parent names are read (as kubelet's cgroupDriver).
    pub cgroup_driver: CgroupDriver,
}

/// How a pod's cgroup_parent is named: a path (`/kubepods/burstable/pod<uid>`) or a systemd
/// slice (`kubepods-burstable-pod<uid>.slice`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupDriver {
    #[default]
    Cgroupfs,
    Systemd,
}

impl Config {
    /// Validates raw settings (the defaults for what is not given); reads the registry config
    /// directory. `listen` is `unix://PATH` or a bare absolute path; every path is absolute.
    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let listen = s.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let socket = PathBuf::from(listen.strip_prefix("unix://").unwrap_or(&listen));
        if !socket.is_absolute() || listen.contains("://") && !listen.starts_with("unix://") {
            return Err(ConfigError::Listen(listen));
        }
        let root = s.root.unwrap_or_else(|| DEFAULT_ROOT.into());
        let state = s.state.unwrap_or_else(|| DEFAULT_STATE.into());
        let cni_conf_dir = s
            .cni_conf_dir
            .unwrap_or_else(|| DEFAULT_CNI_CONF_DIR.into());
        let cni_bin_dirs = s
            .cni_bin_dirs
            .unwrap_or_else(|| split_bin_dirs(DEFAULT_CNI_BIN_DIR));
        if cni_bin_dirs.is_empty() {
            return Err(ConfigError::NoCniBinDir);
        }
        let (registry_config_dir, dir_required) = match s.registry_config_dir {
            Some(dir) => (dir, true),
            None => (DEFAULT_REGISTRY_CONFIG_DIR.into(), false),
        };
        let named = [
            ("root", &root),
            ("state", &state),
            ("cni_conf_dir", &cni_conf_dir),
            ("registry_config_dir", &registry_config_dir),
        ];
        let bins = cni_bin_dirs.iter().map(|p| ("cni_bin_dir", p));
        for (what, path) in named.into_iter().chain(bins) {
            if !path.is_absolute() {
                return Err(ConfigError::Relative {
                    what,
                    path: path.clone(),
                });
            }
        }
        let runtime_handlers = match s.runtime_handlers {
            Some(h) if !h.is_empty() => h,
            _ => vec![DEFAULT_RUNTIME_HANDLER.to_owned()],
        };
        if let Some(bad) = runtime_handlers.iter().find(|h| {
            h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        }) {
            return Err(ConfigError::RuntimeHandler(bad.clone()));
        }
        let streaming = s
            .streaming_address
            .unwrap_or_else(|| DEFAULT_STREAMING_ADDRESS.to_owned());
        let streaming_address = streaming
            .parse()
            .map_err(|_| ConfigError::StreamingAddress(streaming))?;
        let insecure_registries = s.insecure_registries.unwrap_or_default();
        let registry_hosts = RegistryHosts::load(
            &registry_config_dir,
            dir_required,
            insecure_registries.iter().cloned(),
        )
        .map_err(ConfigError::Hosts)?;
        let cgroup_driver = match s.cgroup_driver.as_deref() {
            None | Some("cgroupfs") => CgroupDriver::Cgroupfs,
            Some("systemd") => CgroupDriver::Systemd,
            Some(other) => return Err(ConfigError::CgroupDriver(other.to_owned())),
        };
        Ok(Self {
            socket,
            root,
            state,
            cni_conf_dir,
            cni_bin_dirs,
            runtime_handlers,
            streaming_address,
            registry_config_dir,
            insecure_registries,
            registry_hosts,
            cgroup_driver,
        })
    }

    /// The first settings' constructor, kept for its callers: the rest is defaulted.
    pub fn new(
        listen: &str,
        root: PathBuf,
        state: PathBuf,
        runtime_handlers: Vec<String>,
        insecure_registries: Vec<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_settings(Settings {
            listen: Some(listen.to_owned()),
            root: Some(root),
            state: Some(state),
            runtime_handlers: Some(runtime_handlers),
            insecure_registries: Some(insecure_registries),
            ..Settings::default()
        })
    }

    /// Where the image store lives.
    pub fn image_root(&self) -> PathBuf {
        self.root.join("image-store")
    }

    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            hosts: self.registry_hosts.clone(),
            ..RegistryOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str) -> Result<Config, ConfigError> {
        Config::new(listen, "/r".into(), "/s".into(), vec![], vec![])
    }

    fn from(text: &str) -> Result<Config, ConfigError> {
        Config::from_settings(Settings::from_toml(text)?)
    }

    #[test]
    fn listen_accepts_unix_url_and_bare_path_only() {
        assert_eq!(
            cfg("unix:///run/x.sock").map(|c| c.socket).ok(),
            Some("/run/x.sock".into())
        );
        assert_eq!(
            cfg("/run/y.sock").map(|c| c.socket).ok(),
            Some("/run/y.sock".into())
        );
        for bad in ["tcp://1.2.3.4:5", "unix://rel.sock", "rel.sock", ""] {
            assert!(
                matches!(cfg(bad), Err(ConfigError::Listen(l)) if l == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn runtime_handler_defaults_to_moat_and_names_are_checked() {
        assert_eq!(
            cfg("/a").map(|c| c.runtime_handlers).ok(),
            Some(vec!["moat".to_owned()])
        );
        let bad = Config::new(
            "/a",
            "/r".into(),
            "/s".into(),
            vec!["Bad Name".into()],
            vec![],
        );
        assert!(matches!(bad, Err(ConfigError::RuntimeHandler(_))));
        let rel = Config::new("/a", "r".into(), "/s".into(), vec![], vec![]);
        assert!(matches!(
            rel,
            Err(ConfigError::Relative { what: "root", .. })
        ));
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let c = Config::from_settings(Settings::default()).expect("defaults are valid");
        assert_eq!(c.socket, PathBuf::from("/run/moat/moat-cri.sock"));
        assert_eq!(c.root, PathBuf::from("/var/lib/moat"));
        assert_eq!(c.state, PathBuf::from("/run/moat"));
        assert_eq!(c.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(
            c.cni_bin_dirs,
            [PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")]
        );
        assert_eq!(c.runtime_handlers, ["moat"]);
        assert_eq!(c.streaming_address, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(c.registry_config_dir, PathBuf::from("/etc/moat/certs.d"));
    }

    #[test]
    fn file_keys_are_read_and_cni_bin_dir_takes_a_list_or_colon_string() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            r#"
listen = "/x/cri.sock"
root = "/x/root"
state = "/x/state"
cni_conf_dir = "/x/net.d"
cni_bin_dir = ["/x/bin1", "/x/bin2"]
runtime_handlers = ["moat", "moat-debug"]
streaming_address = "[::1]:10010"
registry_config_dir = "{}"
insecure_registries = ["reg.lan:5000"]
"#,
            dir.path().display()
        );
        let c = from(&text).expect("valid file");
        assert_eq!(c.socket, PathBuf::from("/x/cri.sock"));
        assert_eq!(c.root, PathBuf::from("/x/root"));
        assert_eq!(c.state, PathBuf::from("/x/state"));
        assert_eq!(c.cni_conf_dir, PathBuf::from("/x/net.d"));
        assert_eq!(c.cni_bin_dirs, [PathBuf::from("/x/bin1"), "/x/bin2".into()]);
        assert_eq!(c.runtime_handlers, ["moat", "moat-debug"]);
        assert_eq!(c.streaming_address, "[::1]:10010".parse().expect("addr"));
        assert_eq!(c.registry_config_dir, dir.path());
        assert!(c.registry_hosts.plain_http_allowed("reg.lan:5000"));
        let c = from("cni_bin_dir = \"/a::/b\"\n").expect("colon string");
        assert_eq!(c.cni_bin_dirs, [PathBuf::from("/a"), "/b".into()]);
    }

    #[test]
    fn flags_override_the_file() {
        let file =
            Settings::from_toml("root = \"/file\"\nstate = \"/file-state\"\n").expect("file");
        let flags = Settings {
            root: Some("/flag".into()),
            ..Settings::default()
        };
        let c = Config::from_settings(flags.or(file)).expect("merged");
        assert_eq!(c.root, PathBuf::from("/flag"));
        assert_eq!(c.state, PathBuf::from("/file-state"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        for (text, key) in [
            ("lisen = \"/x\"\n", "lisen"),
            ("runtime-handler = [\"moat\"]\n", "runtime-handler"),
            ("[listen]\nx = 1\n", "listen"),
        ] {
            let err = from(text).expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        assert!(matches!(
            from("lisen = \"/x\"\n"),
            Err(ConfigError::UnknownKey { key }) if key == "lisen"
        ));
        assert!(matches!(
            from("runtime_handlers = \"moat\"\n"),
            Err(ConfigError::KeyType {
                key: "runtime_handlers",
                ..
            })
        ));
        assert!(matches!(
            from("cni_bin_dir = [1]\n"),
            Err(ConfigError::KeyType {
                key: "cni_bin_dir",
                ..
            })
        ));
        assert!(matches!(from("listen = "), Err(ConfigError::Toml(_))));
    }

    #[test]
    fn bad_values_are_refused() {
        for (text, what) in [
            ("cni_conf_dir = \"net.d\"\n", "cni_conf_dir"),
            ("cni_bin_dir = \"/ok:rel\"\n", "cni_bin_dir"),
            ("registry_config_dir = \"certs.d\"\n", "registry_config_dir"),
        ] {
            assert!(
                matches!(from(text), Err(ConfigError::Relative { what: w, .. }) if w == what),
                "{text}"
            );
        }
        assert!(matches!(
            from("cni_bin_dir = \"::\"\n"),
            Err(ConfigError::NoCniBinDir)
        ));
        for bad in ["localhost:0", "127.0.0.1", ":80", "1.2.3.4:99999"] {
            assert!(
                matches!(
                    from(&format!("streaming_address = \"{bad}\"\n")),
                    Err(ConfigError::StreamingAddress(a)) if a == bad
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_config_dir_must_exist_when_given_and_is_loaded() {
        assert!(matches!(
            from("registry_config_dir = \"/nonexistent/certs.d\"\n"),
            Err(ConfigError::Hosts(HostsError::MissingDir(_)))
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let ns = dir.path().join("reg.example:5000");
        std::fs::create_dir(&ns).expect("mkdir");
        std::fs::write(ns.join("hosts.toml"), "bogus = 1\n").expect("write");
        let text = format!("registry_config_dir = \"{}\"\n", dir.path().display());
        assert!(matches!(
            from(&text),
            Err(ConfigError::Hosts(HostsError::Parse { .. }))
        ));
        std::fs::write(ns.join("hosts.toml"), "[host.\"http://mirror.lan:5000\"]\n")
            .expect("write");
        let c = from(&text).expect("valid hosts");
        assert_eq!(
            c.registry_hosts.namespaces().collect::<Vec<_>>(),
            ["reg.example:5000"]
        );
        assert!(c.registry_hosts.plain_http_allowed("mirror.lan:5000"));
        assert_eq!(c.registry_options().hosts, c.registry_hosts);
    }
}
