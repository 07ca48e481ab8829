//! Named, persistent network namespaces of pods, made the way CRI runtimes make them: a thread of
//! its own unshares CLONE_NEWNET, brings `lo` up, and bind-mounts its `/proc/thread-self/ns/net`
//! onto a file named after the pod, so that the namespace outlives the thread (and a restart of
//! the daemon) until [`remove_netns`] unmounts and unlinks that file.
//! May touch: files and mounts directly under the namespace directory it is given.
//! Never: changes the network namespace of a thread it did not spawn for that purpose.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

/// Where pod network namespaces live unless configured otherwise.
pub const DEFAULT_NETNS_DIR: &str = "/run/moat/netns";

/// The namespace of the thread that asks, as procfs shows it.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// How many stacked mounts [`remove_netns`] takes off one file at most.
const MAX_STACKED_MOUNTS: usize = 16;

/// Why a network namespace could not be made, entered or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error("pod id {0:?} is not a valid namespace file name")]
    InvalidId(String),
    #[error("cannot create namespace directory {path:?}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {0:?} already exists")]
    Exists(PathBuf),
    #[error("cannot create namespace file {path:?}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a namespace thread")]
    Spawn(#[source] io::Error),
    #[error("a namespace thread panicked")]
    ThreadPanicked,
    #[error("cannot unshare a new network namespace")]
    Unshare(#[source] io::Error),
    #[error("cannot bring lo up in the new network namespace")]
    Loopback(#[source] io::Error),
    #[error("cannot bind-mount the new network namespace onto {path:?}")]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open network namespace {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0:?} is not a namespace file")]
    NotNamespace(PathBuf),
    #[error("cannot enter network namespace {path:?}")]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot unmount network namespace {path:?}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove network namespace file {path:?}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The file of pod `pod_id`'s network namespace under `dir`. The id must be a plain file name:
/// ASCII letters, digits, `_`, `.` and `-`, not starting with `.`, at most 255 bytes.
pub fn netns_path(dir: &Path, pod_id: &str) -> Result<PathBuf, NetNsError> {
    let ok = !pod_id.is_empty()
        && pod_id.len() <= 255
        && !pod_id.starts_with('.')
        && pod_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(dir.join(pod_id))
    } else {
        Err(NetNsError::InvalidId(pod_id.to_owned()))
    }
}

/// A pod's persistent network namespace, held by a bind mount on [`NetNs::path`]. Dropping this
/// value keeps the namespace; [`NetNs::remove`] (or [`remove_netns`] on the path) ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    /// Creates pod `pod_id`'s namespace as `dir/pod_id`, with `lo` up. The calling thread's
    /// namespace does not change: a short-lived thread unshares and mounts. Fails with
    /// [`NetNsError::Exists`] if the file is already there; on any other failure nothing is left.
    pub fn create(dir: &Path, pod_id: &str) -> Result<Self, NetNsError> {
        let path = netns_path(dir, pod_id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|source| NetNsError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
        {
            Ok(file) => drop(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetNsError::Exists(path))
            }
            Err(source) => return Err(NetNsError::CreateFile { path, source }),
        }
        let target = path.clone();
        let made = std::thread::Builder::new()
            .name("moat-netns".into())
            .spawn(move || -> Result<(), NetNsError> {
                // This thread alone moves; it ends right after, and the mount keeps the namespace.
                sys::unshare_net().map_err(NetNsError::Unshare)?;
                sys::set_link_up("lo").map_err(NetNsError::Loopback)?;
                sys::bind_mount(Path::new(THREAD_NETNS), &target).map_err(|source| {
                    NetNsError::Mount {
                        path: target.clone(),
                        source,
                    }
                })
            })
            .map_err(NetNsError::Spawn)
            .and_then(|t| t.join().map_err(|_| NetNsError::ThreadPanicked)?);
        match made {
            Ok(()) => {
                tracing::debug!(path = %path.display(), "network namespace created");
                Ok(Self { path })
            }
            Err(e) => {
                if let Err(undo) = remove_netns(&path) {
                    tracing::warn!(path = %path.display(), error = %undo, "cannot undo a half-made network namespace");
                }
                Err(e)
            }
        }
    }

    /// The existing namespace at `path` (for instance `dir/pod_id` after a daemon restart).
    pub fn open(path: &Path) -> Result<Self, NetNsError> {
        let ns = Self {
            path: path.to_owned(),
        };
        ns.fd()?;
        Ok(ns)
    }

    /// The bind-mounted file that names the namespace (what CNI_NETNS is set to).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An fd of the namespace (to hand to a process that must join it), checked to be one.
    pub fn fd(&self) -> Result<OwnedFd, NetNsError> {
        let file = File::open(&self.path).map_err(|source| NetNsError::Open {
            path: self.path.clone(),
            source,
        })?;
        match sys::is_nsfs(file.as_fd()) {
            Ok(true) => Ok(file.into()),
            Ok(false) => Err(NetNsError::NotNamespace(self.path.clone())),
            Err(source) => Err(NetNsError::Open {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Runs `f` on a short-lived thread that has joined this namespace, and returns its result.
    /// Sockets that `f` creates stay in the namespace wherever they are used afterwards; threads
    /// and processes it starts begin in it.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetNsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let fd = self.fd()?;
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("moat-netns-run".into())
                .spawn_scoped(s, move || {
                    sys::setns_net(fd.as_fd()).map_err(|source| NetNsError::Enter {
                        path: self.path.clone(),
                        source,
                    })?;
                    Ok(f())
                })
                .map_err(NetNsError::Spawn)?
                .join()
                .map_err(|_| NetNsError::ThreadPanicked)?
        })
    }

    /// Ends the namespace: see [`remove_netns`].
    pub fn remove(self) -> Result<(), NetNsError> {
        remove_netns(&self.path)
    }
}

/// Unmounts and unlinks the namespace file `path`. Idempotent: a file that is not mounted, or
/// not there at all, is not an error. Processes still inside the namespace keep it alive.
pub fn remove_netns(path: &Path) -> Result<(), NetNsError> {
    for _ in 0..MAX_STACKED_MOUNTS {
        match sys::detach_unmount(path) {
            Ok(()) => continue,
            // EINVAL: not a mount point (any more); ENOENT: no such file.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => break,
            Err(source) => {
                return Err(NetNsError::Unmount {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    match fs::remove_file(path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "network namespace removed");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetNsError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_path_takes_plain_names_only() {
        let dir = Path::new("/run/x");
        assert_eq!(
            netns_path(dir, "abc-1_2.3").ok(),
            Some(PathBuf::from("/run/x/abc-1_2.3"))
        );
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "x\0",
            &"a".repeat(256),
        ] {
            assert!(
                matches!(netns_path(dir, bad), Err(NetNsError::InvalidId(_))),
                "{bad:?}"
            );
        }
    }
}
