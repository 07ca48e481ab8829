//! The cgroup of a pod sandbox: one directory at the same relative path in every cgroup
//! hierarchy the host mounts (v1 controllers, a named v1 hierarchy, cgroup2), which the pod's
//! shim joins before it boots the sentry, so the sentry, the gofers and the stubs (the app's
//! address spaces) all land there; and the pod's CPU and memory limits written to the
//! controllers that have them.
//! May touch: directories under the cgroup mounts of /proc/self/mountinfo, and the control
//! files in them.
//!
//! v1 and v2 side by side (as on this project's test machines) are both handled: a limit goes
//! to whichever hierarchy carries its controller.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup path {0:?} must be relative and may not climb with `..`")]
    BadPath(PathBuf),
    #[error("cannot read the host's cgroup mounts")]
    Mounts(#[source] io::Error),
    #[error("this host mounts no cgroup hierarchy")]
    NoHierarchy,
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// v1: the controllers it carries (`cpu`, `memory`, ... or `name=systemd`); v2: the
    /// controllers available at its root.
    pub controllers: Vec<String>,
    pub v2: bool,
}

impl Hierarchy {
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// The hierarchies in a mountinfo text (the first mount of each).
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split(' ').nth(4).unwrap_or_default();
        let mut r = right.split(' ');
        let (fstype, _source, opts) = (
            r.next().unwrap_or_default(),
            r.next(),
            r.next().unwrap_or_default(),
        );
        let h = match fstype {
            "cgroup" => Hierarchy {
                mount: PathBuf::from(mount),
                controllers: opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !o.starts_with("release_agent")
                            && *o != "clone_children"
                    })
                    .map(str::to_owned)
                    .collect(),
                v2: false,
            },
            "cgroup2" => Hierarchy {
                controllers: fs::read_to_string(Path::new(mount).join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                mount: PathBuf::from(mount),
                v2: true,
            },
            _ => continue,
        };
        if !out
            .iter()
            .any(|o| o.controllers == h.controllers && o.v2 == h.v2)
        {
            out.push(h);
        }
    }
    out
}

/// The hierarchies this host mounts.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(CgroupError::Mounts)?;
    let hs = parse_mountinfo(&text);
    if hs.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    Ok(hs)
}

/// The limits a pod's cgroup enforces (CRI's LinuxContainerResources, the parts that apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu_shares: Option<u64>,
    /// CFS quota and period in microseconds.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub memory_bytes: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

/// A pod's cgroup: `rel` under every hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup {
    rel: PathBuf,
    hierarchies: Vec<Hierarchy>,
}

fn check_rel(rel: &Path) -> Result<(), CgroupError> {
    let ok = rel.components().all(|c| matches!(c, Component::Normal(_)))
        && rel.components().next().is_some();
    if ok {
        Ok(())
    } else {
        Err(CgroupError::BadPath(rel.to_owned()))
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err("write", path))
}

impl Cgroup {
    /// The cgroup at `rel` (relative to each hierarchy's root) of this host's hierarchies.
    pub fn at(rel: &Path) -> Result<Cgroup, CgroupError> {
        check_rel(rel)?;
        Ok(Cgroup {
            rel: rel.to_owned(),
            hierarchies: hierarchies()?,
        })
    }

    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// Its directory in `h`.
    pub fn dir(&self, h: &Hierarchy) -> PathBuf {
        h.mount.join(&self.rel)
    }

    /// The directory in the hierarchy of controller `c`.
    pub fn dir_of(&self, c: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.has(c))
            .map(|h| self.dir(h))
    }

    /// Makes the directories (and missing parents). A v1 cpuset directory gets its parent's
    /// CPUs and memory nodes, without which no task may join it; on v2 the parents pass their
    /// cpu, memory and pids controllers down.
    pub fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let mut cur = h.mount.clone();
            for c in self.rel.components() {
                let parent = cur.clone();
                cur.push(c);
                if h.v2 {
                    let wanted: Vec<String> = ["cpu", "cpuset", "memory", "pids"]
                        .iter()
                        .filter(|c| h.has(c))
                        .map(|c| format!("+{c}"))
                        .collect();
                    if !wanted.is_empty() {
                        // Best effort: a parent with processes of its own cannot delegate.
                        let _ = fs::write(parent.join("cgroup.subtree_control"), wanted.join(" "));
                    }
                }
                match fs::create_dir(&cur) {
                    Ok(()) => {}
                    // Made by someone else, maybe a moment ago and its cpuset not filled yet.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err("create", &cur)(e)),
                }
                if !h.v2 && h.has("cpuset") {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = fs::read_to_string(cur.join(f)).unwrap_or_default();
                        let v = fs::read_to_string(parent.join(f)).unwrap_or_default();
                        if mine.trim().is_empty() && !v.trim().is_empty() {
                            write(&cur.join(f), v.trim())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (with its threads) into the cgroup in every hierarchy.
    pub fn join(&self, pid: u32) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            write(&self.dir(h).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Writes `l`; returns what this host could not apply (a controller it does not mount).
    pub fn apply(&self, l: &Limits) -> Result<Vec<String>, CgroupError> {
        let mut skipped = Vec::new();
        let v1 = |c: &str| {
            self.hierarchies
                .iter()
                .find(|h| !h.v2 && h.has(c))
                .map(|h| self.dir(h))
        };
        let v2 = |c: &str| {
            self.hierarchies
                .iter()
                .find(|h| h.v2 && h.has(c))
                .map(|h| self.dir(h))
        };
        if let Some(m) = l.memory_bytes.filter(|m| *m > 0) {
            if let Some(d) = v1("memory") {
                write(&d.join("memory.limit_in_bytes"), &m.to_string())?;
            } else if let Some(d) = v2("memory") {
                write(&d.join("memory.max"), &m.to_string())?;
            } else {
                skipped.push("memory limit (no memory controller)".to_owned());
            }
        }
        let quota = l.cpu_quota.filter(|q| *q > 0);
        let period = l.cpu_period.filter(|p| *p > 0);
        if let Some(d) = v1("cpu") {
            if let Some(p) = period {
                write(&d.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = quota {
                write(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
                write(&d.join("cpu.shares"), &s.clamp(2, 262_144).to_string())?;
            }
        } else if let Some(d) = v2("cpu") {
            if quota.is_some() || period.is_some() {
                let q = quota.map_or_else(|| "max".to_owned(), |q| q.to_string());
                write(
                    &d.join("cpu.max"),
                    &format!("{q} {}", period.unwrap_or(100_000)),
                )?;
            }
            if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
                let weight = 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142;
                write(&d.join("cpu.weight"), &weight.to_string())?;
            }
        } else if quota.is_some() || l.cpu_shares.is_some() {
            skipped.push("CPU limits (no cpu controller)".to_owned());
        }
        for (value, file) in [
            (&l.cpuset_cpus, "cpuset.cpus"),
            (&l.cpuset_mems, "cpuset.mems"),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                match v1("cpuset").or_else(|| v2("cpuset")) {
                    Some(d) => write(&d.join(file), v)?,
                    None => skipped.push(format!("{file} (no cpuset controller)")),
                }
            }
        }
        Ok(skipped)
    }

    /// The processes in the cgroup (from the first hierarchy).
    pub fn procs(&self) -> Vec<u32> {
        self.hierarchies
            .first()
            .map(|h| procs_in(&self.dir(h)))
            .unwrap_or_default()
    }

    /// Kills what is left in the cgroup and removes its own directories (not the parents) in
    /// every hierarchy; a missing one is fine. The first failure is returned after all were
    /// tried.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for h in &self.hierarchies {
            let d = self.dir(h);
            let mut tries = 0;
            loop {
                match fs::remove_dir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    // Busy: processes are left (or still being reaped): kill them and retry.
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                        tries += 1;
                        for pid in procs_in(&d) {
                            crate::sys::kill(pid, libc::SIGKILL);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => {
                        first_err.get_or_insert(io_err("remove", &d)(e));
                        break;
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The processes listed in the cgroup directory `dir`.
fn procs_in(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Sets the calling process's oom_score_adj; root without CAP_SYS_RESOURCE may not lower it,
/// which is reported (the caller warns) rather than failed.
pub fn set_oom_score_adj(value: i64) -> io::Result<()> {
    fs::write("/proc/self/oom_score_adj", value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_v1_controllers_and_v2() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                    41 31 0:38 / /nonexistent/unified rw,relatime - cgroup2 cgroup2 rw\n\
                    22 1 0:21 / /proc rw - proc proc rw\n";
        let hs = parse_mountinfo(text);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].controllers, vec!["cpu"]);
        assert_eq!(hs[1].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(hs[2].controllers, vec!["name=systemd"]);
        assert!(hs[3].v2 && hs[3].controllers.is_empty());
    }

    #[test]
    fn paths_must_stay_below_the_roots() {
        assert!(check_rel(Path::new("kubepods/pod1/moat-x")).is_ok());
        assert!(check_rel(Path::new("/kubepods")).is_err());
        assert!(check_rel(Path::new("a/../../b")).is_err());
        assert!(check_rel(Path::new("")).is_err());
    }
}
