//! Container roots on the host: an overlay mount of the image's unpacked layers (read-only,
//! shared by every container of the image) under a writable layer of the container's own, with
//! the container's mounts (host paths, the pod's resolv.conf and hostname) bound into it. The
//! container's gofer serves the result; the sentry never sees a host path.
//! May touch: `<root>/containers/<id>/` (upper, work, rootfs) and the mounts made there; host
//! paths only as the source of a bind mount.
//! Never: resolves a container path through the host's root: every mount point is opened with
//! openat2(RESOLVE_IN_ROOT) beneath the container's rootfs, so an image symlink such as
//! `/etc -> /host/etc` cannot aim a mount at a host directory.
//!
//! Layout: `<dir>/upper` and `<dir>/work` (the overlay's writable layer), `<dir>/rootfs` (the
//! mount), `<dir>/empty` (the lower layer of an image without layers).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

/// Why a container root could not be made or taken apart.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot make {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot mount the image's layers at {path}")]
    Overlay {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make the mount point {container_path} in the container")]
    MountPoint {
        container_path: String,
        #[source]
        source: io::Error,
    },
    #[error("mount {container_path}: {reason}")]
    BadMount {
        container_path: String,
        reason: &'static str,
    },
    #[error("cannot mount {host_path} at {container_path}")]
    Bind {
        host_path: PathBuf,
        container_path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot unmount {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The directories the sentry mounts its file systems on, made in every root.
const SPECIAL_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// One bind mount into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
    pub recursive_read_only: bool,
}

/// The root of one container: `<containers dir>/<id>`.
#[derive(Debug, Clone)]
pub struct ContainerRoot {
    dir: PathBuf,
}

fn mkdir(path: &Path) -> Result<(), RootfsError> {
    fs::create_dir_all(path).map_err(|source| RootfsError::Dir {
        path: path.to_owned(),
        source,
    })
}

/// Makes `path` reachable by its owner only.
fn private(path: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|source| {
        RootfsError::Dir {
            path: path.to_owned(),
            source,
        }
    })
}

/// The mount points at or beneath `dir` in /proc/self/mountinfo.
fn mounts_beneath(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    let under = format!("{d}/");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == d || m.starts_with(&under))
        .map(str::to_owned)
        .collect()
}

/// The normal components of an absolute container path; `..` is refused.
fn components(container_path: &str) -> Result<Vec<&OsStr>, RootfsError> {
    let bad = |reason| RootfsError::BadMount {
        container_path: container_path.to_owned(),
        reason,
    };
    if !container_path.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mut out = Vec::new();
    for c in Path::new(container_path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad("the container path may not contain `..`"))
            }
        }
    }
    if out.is_empty() {
        return Err(bad("cannot mount over the container's root"));
    }
    Ok(out)
}

impl ContainerRoot {
    pub fn new(containers_dir: &Path, id: &str) -> Self {
        Self {
            dir: containers_dir.join(id),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the container's root is mounted.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The container's writable layer (what it changed).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Mounts the overlay of `layers` (lowest first) with a fresh writable layer. The
    /// container's directory is the owner's alone (0700): host users never reach the files a
    /// container writes.
    pub fn mount(&self, layers: &[PathBuf]) -> Result<(), RootfsError> {
        if let Some(parent) = self.dir.parent() {
            mkdir(parent)?;
            private(parent)?;
        }
        mkdir(&self.dir)?;
        private(&self.dir)?;
        let (upper, work, rootfs) = (self.upper(), self.dir.join("work"), self.rootfs());
        for d in [&upper, &work, &rootfs] {
            mkdir(d)?;
        }
        let empty = self.dir.join("empty");
        let mut lower: Vec<&Path> = layers.iter().rev().map(PathBuf::as_path).collect();
        if lower.is_empty() {
            mkdir(&empty)?;
            lower.push(&empty);
        }
        crate::sys::mount_overlay(&lower, &upper, &work, &rootfs).map_err(|source| {
            RootfsError::Overlay {
                path: rootfs.clone(),
                source,
            }
        })?;
        // Where the sentry mounts its own /proc, /dev and /sys: an image need not have them.
        for d in SPECIAL_DIRS {
            self.mount_point(d, true)?;
        }
        Ok(())
    }

    /// Binds `b.host_path` at `b.container_path` inside the mounted root, making the mount
    /// point (a directory, or an empty file for a file) beneath the root if it is missing. A
    /// missing host path is made as a directory, as kubelet's other runtimes do.
    pub fn bind(&self, b: &Bind) -> Result<(), RootfsError> {
        let bind_err = |source| RootfsError::Bind {
            host_path: b.host_path.clone(),
            container_path: b.container_path.clone(),
            source,
        };
        let is_dir = match fs::metadata(&b.host_path) {
            Ok(m) => m.is_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                mkdir(&b.host_path)?;
                true
            }
            Err(e) => return Err(bind_err(e)),
        };
        let target = self.mount_point(&b.container_path, is_dir)?;
        crate::sys::attach_bind(
            &b.host_path,
            target.as_fd(),
            b.read_only,
            b.recursive_read_only,
        )
        .map_err(bind_err)
    }

    /// Makes the directory `container_path` (and its parents) beneath the root if missing.
    pub fn make_dir(&self, container_path: &str) -> Result<(), RootfsError> {
        if components(container_path).is_err() {
            // "/" or a relative path: nothing to make (the sentry resolves it).
            return Ok(());
        }
        self.mount_point(container_path, true).map(drop)
    }

    /// Opens (making it if need be) the mount point `container_path` beneath the root. The
    /// path is walked a component at a time: a symlink of the image is followed by hand, its
    /// target taken relative to the container's root, and missing directories are made where
    /// the walk is, so nothing is ever made or mounted outside the root.
    fn mount_point(
        &self,
        container_path: &str,
        is_dir: bool,
    ) -> Result<std::os::fd::OwnedFd, RootfsError> {
        use std::os::unix::fs::FileTypeExt;
        let point_err = |source| RootfsError::MountPoint {
            container_path: container_path.to_owned(),
            source,
        };
        let errno = |n| point_err(io::Error::from_raw_os_error(n));
        let mut todo: std::collections::VecDeque<std::ffi::OsString> = components(container_path)?
            .into_iter()
            .map(OsStr::to_owned)
            .collect();
        let root = fs::File::open(self.rootfs()).map_err(point_err)?;
        let root = root.as_fd();
        // Where the walk is: a path of real directories beneath the root.
        let mut cur = PathBuf::new();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                cur.pop();
                continue;
            }
            if name == "." || name.is_empty() {
                continue;
            }
            let next = cur.join(&name);
            match crate::sys::open_in_root(root, &next, libc::O_PATH | libc::O_NOFOLLOW) {
                Ok(fd) => {
                    let fd = fs::File::from(fd);
                    let kind = fd.metadata().map_err(point_err)?.file_type();
                    if kind.is_symlink() {
                        links += 1;
                        if links > 40 {
                            return Err(errno(libc::ELOOP));
                        }
                        let target = crate::sys::read_link_fd(fd.as_fd()).map_err(point_err)?;
                        if target.is_absolute() {
                            cur = PathBuf::new();
                        }
                        for c in target.components().rev() {
                            match c {
                                Component::Normal(n) => todo.push_front(n.to_owned()),
                                Component::ParentDir => todo.push_front("..".into()),
                                _ => {}
                            }
                        }
                        continue;
                    }
                    if !kind.is_dir() && !todo.is_empty() {
                        return Err(errno(libc::ENOTDIR));
                    }
                    if kind.is_char_device() || kind.is_block_device() {
                        return Err(RootfsError::BadMount {
                            container_path: container_path.to_owned(),
                            reason: "the mount point is a device",
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let parent =
                        crate::sys::open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY)
                            .map_err(point_err)?;
                    if todo.is_empty() && !is_dir {
                        crate::sys::touch_at(parent.as_fd(), &name, 0o644).map_err(point_err)?;
                    } else {
                        crate::sys::mkdir_at(parent.as_fd(), &name, 0o755).map_err(point_err)?;
                    }
                }
                Err(e) => return Err(point_err(e)),
            }
            cur = next;
        }
        let fd = crate::sys::open_in_root(root, &cur, libc::O_PATH | libc::O_NOFOLLOW)
            .map_err(point_err)?;
        let meta = fs::File::from(fd.try_clone().map_err(point_err)?)
            .metadata()
            .map_err(point_err)?;
        if meta.is_dir() != is_dir {
            return Err(RootfsError::BadMount {
                container_path: container_path.to_owned(),
                reason: if is_dir {
                    "a directory cannot be mounted on a file"
                } else {
                    "a file cannot be mounted on a directory"
                },
            });
        }
        Ok(fd)
    }

    /// Unmounts the root (and everything bound into it) if it is mounted; the writable layer
    /// stays.
    pub fn unmount(&self) -> Result<(), RootfsError> {
        let rootfs = self.rootfs();
        // Mounts may be stacked; a bounded number of passes takes them all.
        let at_root = rootfs.to_string_lossy().into_owned();
        for _ in 0..16 {
            if !mounts_beneath(&rootfs).contains(&at_root) {
                break;
            }
            crate::sys::detach_unmount(&rootfs).map_err(|source| RootfsError::Unmount {
                path: rootfs.clone(),
                source,
            })?;
        }
        // Deleting the directory next would reach into whatever is still mounted there (host
        // volumes): the host's mount table must show nothing beneath it.
        if let Some(left) = mounts_beneath(&self.dir).first() {
            return Err(RootfsError::Unmount {
                path: PathBuf::from(left),
                source: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        Ok(())
    }

    /// Unmounts the root and deletes the container's directory; a missing one is fine.
    pub fn destroy(&self) -> Result<(), RootfsError> {
        if !self.dir.exists() {
            return Ok(());
        }
        self.unmount()?;
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RootfsError::Remove {
                path: self.dir.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Bytes and inodes the container's writable layer uses.
    pub fn usage(&self) -> Result<(u64, u64), crate::UsageError> {
        crate::disk_usage(&self.upper())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_must_be_absolute_and_not_climb() {
        assert!(components("etc/hosts").is_err());
        assert!(components("/a/../etc").is_err());
        assert!(components("/").is_err());
        assert_eq!(
            components("/etc/./hosts/").unwrap(),
            vec![OsStr::new("etc"), OsStr::new("hosts")]
        );
    }
}
