//! The daemon's settings, validated once into [`Config`] and passed down.

use std::path::PathBuf;

use crate::registry::RegistryOptions;

/// The runtime handler served when none is configured.
pub const DEFAULT_RUNTIME_HANDLER: &str = "moat";

/// Why a setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("listen address {0:?} is not unix://PATH or an absolute path")]
    Listen(String),
    #[error("{what} {path:?} is not an absolute path")]
    Relative { what: &'static str, path: PathBuf },
    #[error("runtime handler name {0:?} is empty or has characters other than [a-z0-9._-]")]
    RuntimeHandler(String),
}

/// Everything `moat-cri` needs to serve, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The unix socket path served.
    pub socket: PathBuf,
    /// Persistent data: images now, pods and containers later.
    pub root: PathBuf,
    /// Runtime state that does not outlive a reboot.
    pub state: PathBuf,
    /// Runtime handler names (RuntimeClass handlers) this daemon serves.
    pub runtime_handlers: Vec<String>,
    /// Registry hosts reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
}

impl Config {
    /// Validates raw settings: `listen` is `unix://PATH` or a bare absolute path.
    pub fn new(
        listen: &str,
        root: PathBuf,
        state: PathBuf,
        runtime_handlers: Vec<String>,
        insecure_registries: Vec<String>,
    ) -> Result<Self, ConfigError> {
        let socket = PathBuf::from(listen.strip_prefix("unix://").unwrap_or(listen));
        if !socket.is_absolute() || listen.contains("://") && !listen.starts_with("unix://") {
            return Err(ConfigError::Listen(listen.to_owned()));
        }
        for (what, path) in [("root", &root), ("state", &state)] {
            if !path.is_absolute() {
                return Err(ConfigError::Relative {
                    what,
                    path: path.clone(),
                });
            }
        }
        let runtime_handlers = if runtime_handlers.is_empty() {
            vec![DEFAULT_RUNTIME_HANDLER.to_owned()]
        } else {
            runtime_handlers
        };
        if let Some(bad) = runtime_handlers.iter().find(|h| {
            h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        }) {
            return Err(ConfigError::RuntimeHandler(bad.clone()));
        }
        Ok(Self {
            socket,
            root,
            state,
            runtime_handlers,
            insecure_registries,
        })
    }

    /// Where the image store lives.
    pub fn image_root(&self) -> PathBuf {
        self.root.join("image-store")
    }

    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure_hosts: self.insecure_registries.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str) -> Result<Config, ConfigError> {
        Config::new(listen, "/r".into(), "/s".into(), vec![], vec![])
    }

    #[test]
    fn listen_accepts_unix_url_and_bare_path_only() {
        assert_eq!(
            cfg("unix:///run/x.sock").map(|c| c.socket),
            Ok("/run/x.sock".into())
        );
        assert_eq!(
            cfg("/run/y.sock").map(|c| c.socket),
            Ok("/run/y.sock".into())
        );
        for bad in ["tcp://1.2.3.4:5", "unix://rel.sock", "rel.sock", ""] {
            assert_eq!(cfg(bad), Err(ConfigError::Listen(bad.to_owned())), "{bad}");
        }
    }

    #[test]
    fn runtime_handler_defaults_to_moat_and_names_are_checked() {
        assert_eq!(
            cfg("/a").map(|c| c.runtime_handlers),
            Ok(vec!["moat".to_owned()])
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
}
