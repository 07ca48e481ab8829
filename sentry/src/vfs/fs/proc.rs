//! procfs: /proc/self, /proc/PID/{stat,status,cmdline,comm,environ,maps,exe,cwd,fd/},
//! cpuinfo, meminfo, mounts, uptime, loadavg, filesystems, version.

use std::sync::{Arc, OnceLock, Weak};

use crate::abi::{Errno, Stat};
use crate::kernel::{Kernel, ThreadGroup};
use crate::mm::VmaKind;
use crate::vfs::file::*;
use crate::vfs::{make_stat, now, DirEntry, Inode, InodeRef, VPath, S_IFDIR, S_IFLNK, S_IFREG};

/// Host facts copied at boot (the sentry cannot open host paths later).
pub static CPUINFO: OnceLock<Vec<u8>> = OnceLock::new();

thread_local! {
    /// The thread group of the task this sentry thread runs (for /proc/self).
    pub static CURRENT: std::cell::RefCell<Option<Weak<ThreadGroup>>> = const { std::cell::RefCell::new(None) };
}

fn current_tgid() -> i32 {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|w| w.upgrade())
            .map(|g| g.tgid)
            .unwrap_or(1)
    })
}

#[derive(Clone)]
enum Node {
    Root,
    SelfLink,
    Pid(i32),
    PidFile(i32, &'static str),
    Exe(i32),
    Cwd(i32),
    FdDir(i32),
    Fd(i32, i32),
    Global(&'static str),
    RootLink(i32),
    TaskDir(i32),
    Task(i32, i32),
    TaskFile(i32, i32, &'static str),
    /// A directory or file under /proc/sys, by its path.
    Sys(&'static str),
    /// /proc/PID/fdinfo and its files (see `fdinfo` below).
    FdInfoDir(i32),
    FdInfo(i32, i32),
}

/// /proc/sys: (path, content; None for directories).
const SYS: &[(&str, Option<&str>)] = &[
    ("sys", None),
    ("sys/kernel", None),
    ("sys/kernel/ostype", Some("Linux\n")),
    ("sys/kernel/osrelease", Some("6.1.0-moat\n")),
    ("sys/kernel/version", Some("#1 SMP PREEMPT_DYNAMIC Moat\n")),
    ("sys/kernel/pid_max", Some("4194304\n")),
    ("sys/kernel/threads-max", Some("63000\n")),
    ("sys/kernel/ngroups_max", Some("65536\n")),
    ("sys/kernel/cap_last_cap", Some("40\n")),
    ("sys/kernel/hostname", None),
    ("sys/kernel/domainname", Some("(none)\n")),
    ("sys/vm", None),
    ("sys/vm/overcommit_memory", Some("0\n")),
    ("sys/vm/max_map_count", Some("65530\n")),
    ("sys/fs", None),
    ("sys/fs/file-max", Some("9223372036854775807\n")),
    ("sys/fs/nr_open", Some("1048576\n")),
];

fn sys_children(dir: &str) -> Vec<&'static str> {
    SYS.iter()
        .map(|(p, _)| *p)
        .filter(|p| {
            p.strip_prefix(dir)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| !r.contains('/'))
        })
        .collect()
}

fn sys_is_dir(p: &str) -> bool {
    p != "sys/kernel/hostname" && SYS.iter().any(|(q, c)| *q == p && c.is_none())
}

pub struct ProcInode {
    k: Weak<Kernel>,
    node: Node,
    id: u64,
}

pub fn root(k: &Arc<Kernel>) -> InodeRef {
    Arc::new(ProcInode {
        k: Arc::downgrade(k),
        node: Node::Root,
        id: crate::vfs::next_id(),
    })
}

const PID_FILES: [&str; 8] = [
    "stat", "status", "cmdline", "comm", "environ", "maps", "mounts", "statm",
];
const TASK_FILES: [&str; 3] = ["stat", "status", "comm"];
const GLOBALS: [&str; 7] = [
    "cpuinfo",
    "meminfo",
    "mounts",
    "uptime",
    "loadavg",
    "filesystems",
    "version",
];

impl ProcInode {
    fn k(&self) -> Result<Arc<Kernel>, Errno> {
        self.k.upgrade().ok_or(Errno::ENOENT)
    }
    fn child(&self, node: Node) -> InodeRef {
        Arc::new(ProcInode {
            k: self.k.clone(),
            node,
            id: self.id,
        })
    }
    fn content(&self) -> Result<Vec<u8>, Errno> {
        let k = self.k()?;
        match &self.node {
            Node::PidFile(pid, f) => pid_file(&k, *pid, *pid, f),
            Node::TaskFile(pid, tid, f) => pid_file(&k, *pid, *tid, f),
            Node::FdInfo(pid, fd) => {
                let f = self.fd_file(&k, *pid, *fd)?;
                fdinfo(&f, fd_cloexec(&k, *pid, *fd))
            }
            Node::Global(g) => global(&k, g),
            Node::Sys("sys/kernel/hostname") => {
                let mut h = k.hostname.lock().unwrap_or_else(|e| e.into_inner()).clone();
                h.push(b'\n');
                Ok(h)
            }
            Node::Sys(p) => SYS
                .iter()
                .find(|(q, _)| q == p)
                .and_then(|(_, c)| *c)
                .map(|c| c.as_bytes().to_vec())
                .ok_or(Errno::EISDIR),
            _ => Err(Errno::EISDIR),
        }
    }
}

fn group(k: &Kernel, pid: i32) -> Result<Arc<ThreadGroup>, Errno> {
    k.group(pid)
        .filter(|g| g.lock().exit.is_none())
        .ok_or(Errno::ENOENT)
}

fn pid_file(k: &Kernel, pid: i32, tid: i32, f: &str) -> Result<Vec<u8>, Errno> {
    let g = group(k, pid)?;
    let me = current_tgid() == pid;
    let umask = g
        .lock()
        .fs
        .as_ref()
        .map(|fs| fs.lock().unwrap_or_else(|e| e.into_inner()).umask)
        .unwrap_or(0o022);
    let (comm, ppid, pgid, sid, nthreads, mm) = {
        let st = g.lock();
        let comm = st
            .threads
            .first()
            .map(|t| t.comm.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        (
            comm,
            st.parent.upgrade().map(|p| p.tgid).unwrap_or(0),
            st.pgid,
            st.sid,
            st.threads.len(),
            st.mm.clone(),
        )
    };
    let comm_s = String::from_utf8_lossy(&comm).to_string();
    Ok(match f {
        "comm" => format!("{comm_s}\n").into_bytes(),
        "stat" => {
            let state = if g.lock().stopped.is_some() {
                'T'
            } else if me {
                'R'
            } else {
                'S'
            };
            format!("{tid} ({comm_s}) {state} {ppid} {pgid} {sid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 {nthreads} 0 0 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n").into_bytes()
        }
        "status" => {
            let th = g.lock().threads.iter().find(|t| t.tid == tid).cloned();
            let (pnd, blk, nnp) = th
                .map(|t| {
                    let s = t.sig();
                    (
                        s.pending.set,
                        s.mask,
                        t.no_new_privs.load(std::sync::atomic::Ordering::Relaxed),
                    )
                })
                .unwrap_or((0, 0, false));
            let shd = g.lock().pending.set;
            let (mut ign, mut cgt) = (0u64, 0u64);
            for (i, a) in g
                .actions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .enumerate()
            {
                match a.handler {
                    0 => {}
                    1 => ign |= 1 << i,
                    _ => cgt |= 1 << i,
                }
            }
            format!(
                "Name:\t{comm_s}\nUmask:\t{umask:04o}\nState:\t{}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{ppid}\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\nThreads:\t{nthreads}\nSigQ:\t0/63000\nSigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t{}\nSeccomp:\t0\nCpus_allowed_list:\t0-1\n",
                if me { "R (running)" } else { "S (sleeping)" },
                u8::from(nnp)
            )
            .into_bytes()
        }
        "cmdline" | "environ" => {
            let Some(mm) = mm else { return Ok(Vec::new()) };
            let (lo, hi) = if f == "cmdline" {
                mm.read().arg_range
            } else {
                mm.read().env_range
            };
            let mut b = vec![0u8; (hi - lo) as usize];
            mm.copy_in(lo, &mut b).map_err(|_| Errno::EIO)?;
            b
        }
        "statm" => b"0 0 0 0 0 0 0\n".to_vec(),
        "mounts" => {
            let root = fs_root(&g).unwrap_or_else(|| k.vfs.root.clone());
            mounts_seen_from(k, &root)
        }
        "maps" => {
            let Some(mm) = mm else { return Ok(Vec::new()) };
            let m = mm.read();
            let mut out = String::new();
            for v in m.vmas.values() {
                let p = |b: i32, c: char| if v.prot & b != 0 { c } else { '-' };
                let (off, dev, ino, name) = match &v.kind {
                    VmaKind::File { src, file_off } => {
                        let (d, i, n) = src.describe();
                        (*file_off, d, i, String::from_utf8_lossy(&n).to_string())
                    }
                    VmaKind::Heap => (0, 0, 0, "[heap]".to_string()),
                    VmaKind::Stack => (0, 0, 0, "[stack]".to_string()),
                    VmaKind::Anon => (0, 0, 0, String::new()),
                };
                out.push_str(&format!(
                    "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {:<10} {}\n",
                    v.start,
                    v.end,
                    p(1, 'r'),
                    p(2, 'w'),
                    p(4, 'x'),
                    if v.shared { 's' } else { 'p' },
                    off,
                    (dev >> 8) & 0xfff,
                    dev & 0xff,
                    ino,
                    name
                ));
            }
            out.into_bytes()
        }
        _ => return Err(Errno::ENOENT),
    })
}

/// The root directory of process `g`.
fn fs_root(g: &ThreadGroup) -> Option<VPath> {
    let fs = g.lock().fs.clone()?;
    let root = fs.lock().unwrap_or_else(|e| e.into_inner()).root.clone();
    Some(root)
}

/// The mount table as a process whose root is `root` sees it: the mounts at or beneath its
/// root's mount, with paths from its root (in a pod, each container sees only its own).
fn mounts_seen_from(k: &Kernel, root: &VPath) -> Vec<u8> {
    let beneath = |m: &Arc<crate::vfs::Mount>| {
        let mut cur = Some(m.clone());
        while let Some(c) = cur {
            if Arc::ptr_eq(&c, &root.mnt) {
                return true;
            }
            cur = c.parent.as_ref().map(|(p, _)| p.clone());
        }
        false
    };
    let mut out = String::new();
    for m in k.vfs.mounts() {
        if !beneath(&m) {
            continue;
        }
        let at = match &m.parent {
            Some((pm, d)) if !Arc::ptr_eq(&m, &root.mnt) => k.vfs.path_of(
                root,
                &VPath {
                    mnt: pm.clone(),
                    d: d.clone(),
                },
            ),
            _ => b"/".to_vec(),
        };
        out.push_str(&format!(
            "{} {} {} {} 0 0\n",
            String::from_utf8_lossy(&m.source),
            String::from_utf8_lossy(&at),
            m.fstype,
            if m.readonly { "ro" } else { "rw" }
        ));
    }
    out.into_bytes()
}

fn global(k: &Kernel, g: &str) -> Result<Vec<u8>, Errno> {
    Ok(match g {
        "cpuinfo" => CPUINFO.get().cloned().unwrap_or_default(),
        "meminfo" => {
            let si = crate::sys::host_sysinfo();
            let kb = |x: u64| x * u64::from(si.mem_unit) / 1024;
            format!(
                "MemTotal:       {:>8} kB\nMemFree:        {:>8} kB\nMemAvailable:   {:>8} kB\nBuffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
                kb(si.totalram),
                kb(si.freeram),
                kb(si.freeram)
            )
            .into_bytes()
        }
        "mounts" => {
            let root = group(k, current_tgid())
                .ok()
                .and_then(|g| fs_root(&g))
                .unwrap_or_else(|| k.vfs.root.clone());
            mounts_seen_from(k, &root)
        }
        "uptime" => {
            // The host's uptime, as sysinfo(2) reports it.
            let (s, ns) = crate::sys::clock_gettime(libc::CLOCK_BOOTTIME);
            let e = s as f64 + ns as f64 / 1e9;
            format!("{e:.2} {e:.2}\n").into_bytes()
        }
        "loadavg" => {
            // One lock at a time: `procs()` twice in one expression would deadlock.
            let n = k.procs().tasks.len();
            format!("0.00 0.00 0.00 1/{n} {n}\n").into_bytes()
        }
        "filesystems" => b"nodev\ttmpfs\nnodev\tproc\nnodev\toverlay\n".to_vec(),
        "version" => {
            b"Linux version 6.1.0-moat (moat@sandbox) #1 SMP PREEMPT_DYNAMIC Moat\n".to_vec()
        }
        _ => return Err(Errno::ENOENT),
    })
}

impl Inode for ProcInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let ino = match &self.node {
            Node::Pid(p) | Node::FdDir(p) | Node::TaskDir(p) => 1000 + *p as u64,
            Node::Task(_, t) => 1000 + *t as u64,
            _ => 3,
        };
        let mode = match self.kind() {
            S_IFDIR => S_IFDIR | 0o555,
            S_IFLNK => S_IFLNK | 0o777,
            _ => S_IFREG | 0o444,
        };
        Ok(make_stat(ino, mode, 1, 0, 0, 0, 0, [now(); 3]))
    }
    fn kind(&self) -> u32 {
        match &self.node {
            Node::Root
            | Node::Pid(_)
            | Node::FdDir(_)
            | Node::TaskDir(_)
            | Node::Task(..)
            | Node::FdInfoDir(_) => S_IFDIR,
            Node::SelfLink | Node::Exe(_) | Node::Cwd(_) | Node::Fd(..) | Node::RootLink(_) => {
                S_IFLNK
            }
            Node::Sys(p) if sys_is_dir(p) => S_IFDIR,
            _ => S_IFREG,
        }
    }
    fn cacheable(&self) -> bool {
        false
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let k = self.k()?;
        let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        match &self.node {
            Node::Root => {
                if s == "self" {
                    return Ok(self.child(Node::SelfLink));
                }
                if s == "sys" {
                    return Ok(self.child(Node::Sys("sys")));
                }
                if let Some(g) = GLOBALS.iter().find(|g| **g == s) {
                    return Ok(self.child(Node::Global(g)));
                }
                let pid: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
                group(&k, pid)?;
                Ok(self.child(Node::Pid(pid)))
            }
            Node::Pid(pid) => {
                group(&k, *pid)?;
                match s {
                    "root" => Ok(self.child(Node::RootLink(*pid))),
                    "task" => Ok(self.child(Node::TaskDir(*pid))),
                    "exe" => Ok(self.child(Node::Exe(*pid))),
                    "cwd" => Ok(self.child(Node::Cwd(*pid))),
                    "fd" => Ok(self.child(Node::FdDir(*pid))),
                    "fdinfo" => Ok(self.child(Node::FdInfoDir(*pid))),
                    _ => PID_FILES
                        .iter()
                        .find(|f| **f == s)
                        .map(|f| self.child(Node::PidFile(*pid, f)))
                        .ok_or(Errno::ENOENT),
                }
            }
            Node::FdDir(pid) => {
                let fd: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
                let g = group(&k, *pid)?;
                let fds = g.lock().fds.clone().ok_or(Errno::ENOENT)?;
                if fds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(fd)
                    .is_none()
                {
                    return Err(Errno::ENOENT);
                }
                Ok(self.child(Node::Fd(*pid, fd)))
            }
            Node::FdInfoDir(pid) => {
                let fd: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
                self.fd_file(&k, *pid, fd)?;
                Ok(self.child(Node::FdInfo(*pid, fd)))
            }
            Node::TaskDir(pid) => {
                let tid: i32 = s.parse().map_err(|_| Errno::ENOENT)?;
                let g = group(&k, *pid)?;
                if !g.lock().threads.iter().any(|t| t.tid == tid) {
                    return Err(Errno::ENOENT);
                }
                Ok(self.child(Node::Task(*pid, tid)))
            }
            Node::Task(pid, tid) => TASK_FILES
                .iter()
                .find(|f| **f == s)
                .map(|f| self.child(Node::TaskFile(*pid, *tid, f)))
                .ok_or(Errno::ENOENT),
            Node::Sys(dir) if sys_is_dir(dir) => {
                let want = format!("{dir}/{s}");
                SYS.iter()
                    .find(|(p, _)| *p == want)
                    .map(|(p, _)| self.child(Node::Sys(p)))
                    .ok_or(Errno::ENOENT)
            }
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let k = self.k()?;
        let e = |n: String, kind: u8| DirEntry {
            ino: 2,
            kind,
            name: n.into_bytes(),
        };
        Ok(match &self.node {
            Node::Root => {
                let mut v: Vec<DirEntry> = GLOBALS.iter().map(|g| e(g.to_string(), 8)).collect();
                v.push(e("self".into(), 10));
                v.push(e("sys".into(), 4));
                let mut pids: Vec<i32> = k
                    .procs()
                    .groups
                    .values()
                    .filter(|g| g.lock().exit.is_none())
                    .map(|g| g.tgid)
                    .collect();
                pids.sort_unstable();
                v.extend(pids.into_iter().map(|p| e(p.to_string(), 4)));
                v
            }
            Node::Pid(_) => {
                let mut v: Vec<DirEntry> = PID_FILES.iter().map(|f| e(f.to_string(), 8)).collect();
                v.push(e("exe".into(), 10));
                v.push(e("cwd".into(), 10));
                v.push(e("root".into(), 10));
                v.push(e("fd".into(), 4));
                v.push(e("fdinfo".into(), 4));
                v.push(e("task".into(), 4));
                v
            }
            Node::TaskDir(pid) => {
                let g = group(&k, *pid)?;
                let tids: Vec<i32> = g.lock().threads.iter().map(|t| t.tid).collect();
                tids.into_iter().map(|t| e(t.to_string(), 4)).collect()
            }
            Node::Task(..) => TASK_FILES.iter().map(|f| e(f.to_string(), 8)).collect(),
            Node::Sys(dir) if sys_is_dir(dir) => sys_children(dir)
                .into_iter()
                .map(|p| {
                    let name = p.rsplit('/').next().unwrap_or(p).to_string();
                    e(name, if sys_is_dir(p) { 4 } else { 8 })
                })
                .collect(),
            Node::FdDir(pid) => {
                let g = group(&k, *pid)?;
                let fds = g.lock().fds.clone().ok_or(Errno::ENOENT)?;
                let list = fds.lock().unwrap_or_else(|e| e.into_inner()).fds();
                list.into_iter().map(|fd| e(fd.to_string(), 10)).collect()
            }
            Node::FdInfoDir(pid) => {
                let g = group(&k, *pid)?;
                let fds = g.lock().fds.clone().ok_or(Errno::ENOENT)?;
                let list = fds.lock().unwrap_or_else(|e| e.into_inner()).fds();
                list.into_iter().map(|fd| e(fd.to_string(), 8)).collect()
            }
            _ => return Err(Errno::ENOTDIR),
        })
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        let k = self.k()?;
        match &self.node {
            Node::SelfLink => Ok(current_tgid().to_string().into_bytes()),
            Node::RootLink(pid) => {
                group(&k, *pid)?;
                Ok(b"/".to_vec())
            }
            Node::Exe(pid) => {
                let g = group(&k, *pid)?;
                let exe = g.lock().exe.clone().ok_or(Errno::ENOENT)?;
                Ok(k.vfs.path_of(&k.vfs.root, &exe))
            }
            Node::Cwd(pid) => {
                let g = group(&k, *pid)?;
                let fs = g.lock().fs.clone().ok_or(Errno::ENOENT)?;
                let cwd = fs.lock().unwrap_or_else(|e| e.into_inner()).cwd.clone();
                Ok(k.vfs.path_of(&k.vfs.root, &cwd))
            }
            Node::Fd(pid, fd) => {
                let f = self.fd_file(&k, *pid, *fd)?;
                Ok(match &f.path {
                    Some(p) => k.vfs.path_of(&k.vfs.root, p),
                    None => match f.ops.pipe() {
                        Some(p) => {
                            format!("pipe:[{}]", Arc::as_ptr(p) as usize % 100_000).into_bytes()
                        }
                        None => b"anon_inode:[eventpoll]".to_vec(),
                    },
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }
    fn magic_link(&self, _t: &crate::kernel::Task) -> Option<VPath> {
        let k = self.k().ok()?;
        match &self.node {
            Node::Exe(pid) => group(&k, *pid).ok()?.lock().exe.clone(),
            Node::RootLink(pid) => {
                let fs = group(&k, *pid).ok()?.lock().fs.clone()?;
                let root = fs.lock().unwrap_or_else(|e| e.into_inner()).root.clone();
                Some(root)
            }
            Node::Cwd(pid) => {
                let fs = group(&k, *pid).ok()?.lock().fs.clone()?;
                let cwd = fs.lock().unwrap_or_else(|e| e.into_inner()).cwd.clone();
                Some(cwd)
            }
            Node::Fd(pid, fd) => self.fd_file(&k, *pid, *fd).ok()?.path.clone(),
            _ => None,
        }
    }
    fn open(&self, _me: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if flags & O_ACCMODE != O_RDONLY {
            return Err(Errno::EACCES);
        }
        if self.kind() == S_IFDIR {
            return Ok(Arc::new(super::gofer::DirOnly));
        }
        match &self.node {
            Node::Fd(pid, fd) => {
                let k = self.k()?;
                Ok(self.fd_file(&k, *pid, *fd)?.ops.clone())
            }
            _ => Ok(Arc::new(Snapshot {
                data: self.content()?,
            })),
        }
    }
    fn fs_id(&self) -> u64 {
        self.id
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl ProcInode {
    fn fd_file(&self, k: &Kernel, pid: i32, fd: i32) -> Result<Arc<crate::vfs::File>, Errno> {
        let g = group(k, pid)?;
        let fds = g.lock().fds.clone().ok_or(Errno::ENOENT)?;
        let f = fds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fd)
            .ok_or(Errno::ENOENT)?;
        Ok(f)
    }
}

/// A proc file's content, taken when it was opened.
struct Snapshot {
    data: Vec<u8>,
}

impl FileOps for Snapshot {
    fn read(&self, _io: &Io<'_>, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let off = (off as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
    fn write(&self, _io: &Io<'_>, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EACCES)
    }
}

// ---- /proc/PID/fdinfo ----

/// Whether fd `fd` of process `pid` is close-on-exec.
fn fd_cloexec(k: &Kernel, pid: i32, fd: i32) -> bool {
    group(k, pid)
        .ok()
        .and_then(|g| g.lock().fds.clone())
        .and_then(|fds| fds.lock().unwrap_or_else(|e| e.into_inner()).cloexec(fd))
        .unwrap_or(false)
}

/// /proc/PID/fdinfo/N: position, flags (octal, with O_CLOEXEC for a close-on-exec fd),
/// mount id and inode, then what the file type adds (`FileOps::fdinfo`).
fn fdinfo(f: &crate::vfs::File, cloexec: bool) -> Result<Vec<u8>, Errno> {
    let pos = *f.pos.lock().unwrap_or_else(|e| e.into_inner());
    let flags = f.flags() | if cloexec { O_CLOEXEC } else { 0 };
    let ino = f
        .inode
        .as_ref()
        .and_then(|i| i.stat().ok())
        .map(|s| s.ino)
        .unwrap_or(0);
    let mut out = format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t1\nino:\t{ino}\n");
    out.push_str(&f.ops.fdinfo());
    Ok(out.into_bytes())
}
