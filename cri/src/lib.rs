//! moat-cri: the Kubernetes CRI v1 server (RuntimeService and ImageService) for Moat.
//! May touch: the host, as root: its root and state directories, registries, CNI, the runtime library.
//! Never: runs app code outside a sentry, or uses image content whose digest it has not checked.
//!
//! The image half: [`reference`] parsing, the [`registry`] client and the per-registry
//! [`hosts`] it reaches (mirrors, TLS, plain HTTP), the content-addressed
//! [`store`] with shared unpacked [`layer`]s, and [`pull`], which ties them together. The gRPC
//! half: [`api`] (the CRI v1 proto), [`image_service`], [`runtime_service`] (Version, Status,
//! the pod sandbox RPCs of [`pods`] and the container RPCs of [`containers`]), and [`server`],
//! which serves them on a unix socket as [`config`] says ([`authority`] lets clients that send
//! the socket path as `:authority` in). The pod half: [`netns`] (persistent network
//! namespaces), [`cni`] (the CNI exec protocol), the pod cgroups (`moat_runtime::cgroup`); the
//! container half: [`rootfs`] (overlay roots with their mounts) and [`user`] (who the process
//! runs as). Pods and containers are in the [`state`] store.
//!
//! Unsafe code lives only in `sys` (host calls beyond std).

pub mod api;
pub mod authority;
pub mod cni;
pub mod config;
pub mod containers;
pub mod digest;
pub mod hosts;
pub mod image_service;
pub mod layer;
/// Container logs are written by the pod's shim (the runtime library); re-exported here.
pub use moat_runtime::logs;
pub mod netns;
pub mod oci;
pub mod pods;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod runtime_service;
pub mod server;
pub mod state;
pub mod store;
mod sys;
pub mod user;

/// An error and its causes on one line, `outer: inner: innermost`: how clients and logs see
/// it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Now, in nanoseconds since the epoch (CRI's timestamps).
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new 64-hex-digit id from /dev/urandom, as containerd makes pod and container ids.
pub fn random_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A tree [`disk_usage`] could not walk.
#[derive(Debug, thiserror::Error)]
#[error("cannot measure {path}")]
pub struct UsageError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Bytes (allocated blocks) and inodes under `root`, each inode counted once; what vanishes
/// during the walk is not counted.
pub fn disk_usage(root: &std::path::Path) -> Result<(u64, u64), UsageError> {
    use std::io::ErrorKind::NotFound;
    use std::os::unix::fs::MetadataExt;
    let err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| UsageError { path, source }
    };
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let md = match std::fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(e) if e.kind() == NotFound => continue,
            Err(e) => return Err(err(&p)(e)),
        };
        if seen.insert((md.dev(), md.ino())) {
            bytes = bytes.saturating_add(md.blocks().saturating_mul(512));
            inodes += 1;
        }
        if md.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(entries) => {
                    for e in entries {
                        todo.push(e.map_err(err(&p))?.path());
                    }
                }
                Err(e) if e.kind() == NotFound => {}
                Err(e) => return Err(err(&p)(e)),
            }
        }
    }
    Ok((bytes, inodes))
}
