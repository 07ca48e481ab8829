//! A pod sentry's control loop: the runtime starts containers (each with its own root, served
//! by its own gofer, mounted under the pod's empty root) and execs in them, and signals them,
//! over the boot socket; the sentry reports each start and each end. Every container shares
//! the sentry's kernel: one netstack, one IPC namespace, one PID space.
//!
//! When the runtime's socket closes, every process of the pod is killed and the sentry exits.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};

use moat_gofer::{Channel, GoferClient};
use moat_proto::boot::SentryExit;
use moat_proto::control::{ContainerUsage, ControlMsg, ProcessSpec, SentryEvent};

use crate::boot::{mount_special, spawn_process, Spawn};
use crate::kernel::signal::SigInfo;
use crate::kernel::{Creds, ExitStatus, Kernel};
use crate::vfs::fs::{gofer, overlay};
use crate::vfs::{NewNode, VPath};

/// What the pod runs: containers by id, and which process stands for which id.
#[derive(Default)]
struct Pod {
    /// Container id → its root.
    roots: HashMap<Vec<u8>, VPath>,
    /// Container init or exec process → the id its end is reported under.
    watched: HashMap<i32, Vec<u8>>,
    /// Id → its process (for signals).
    pids: HashMap<Vec<u8>, i32>,
    /// Processes of containers that ended before their start was recorded.
    early: HashMap<i32, ExitStatus>,
    /// Container → CPU time (ns) of its processes that have ended.
    dead_cpu: HashMap<Arc<str>, u64>,
}

fn report(status: ExitStatus) -> SentryExit {
    match status {
        ExitStatus::Exited(c) => SentryExit::Exited(c),
        ExitStatus::Signaled(s) => SentryExit::Signaled {
            signal: s as u8,
            core: false,
        },
    }
}

fn lock(p: &Mutex<Pod>) -> std::sync::MutexGuard<'_, Pod> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves the runtime until its socket closes.
pub fn serve(k: &Arc<Kernel>, chan: Arc<Channel>) {
    k.reserve_init_pid();
    let pod = Arc::new(Mutex::new(Pod::default()));
    {
        let (pod, chan) = (pod.clone(), chan.clone());
        let kw: Weak<Kernel> = Arc::downgrade(k);
        let hook: crate::kernel::ExitHook = Box::new(move |tg, status| {
            if tg.container.is_empty() {
                return;
            }
            let (user, sys) = tg.cpu_time();
            let mut p = lock(&pod);
            *p.dead_cpu.entry(tg.container.clone()).or_default() += user + sys;
            let Some(id) = p.watched.remove(&tg.tgid) else {
                // Maybe a process whose start is being recorded right now (it has no parent);
                // forked ones have one and are not reported.
                if tg.lock().parent.upgrade().is_none() {
                    if p.early.len() > 1024 {
                        p.early.clear();
                    }
                    p.early.insert(tg.tgid, status);
                }
                return;
            };
            p.pids.remove(&id);
            let is_container = p.roots.contains_key(&id);
            drop(p);
            if is_container {
                // A container ends with its init: the rest of its processes die too.
                if let Some(k) = kw.upgrade() {
                    let groups: Vec<_> = k.procs().groups.values().cloned().collect();
                    for g in groups {
                        if g.container == tg.container && g.tgid != tg.tgid {
                            k.signal_group(&g, SigInfo::kernel(crate::abi::signal::SIGKILL));
                        }
                    }
                }
            }
            let ev = SentryEvent::Exited {
                id,
                status: report(status),
            };
            let _ = chan.send_msg(&ev, &[]);
        });
        *k.on_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }
    loop {
        match chan.recv_msg::<ControlMsg>() {
            Ok((msg, fds)) => handle(k, &pod, &chan, msg, fds),
            Err(moat_gofer::ChannelError::Decode(e)) => {
                tracing::warn!(error = %e, "bad control message")
            }
            Err(_) => break,
        }
    }
    tracing::info!("runtime gone: ending the pod");
    let groups: Vec<_> = k.procs().groups.values().cloned().collect();
    for g in groups {
        k.signal_group(&g, SigInfo::kernel(crate::abi::signal::SIGKILL));
    }
}

fn handle(
    k: &Arc<Kernel>,
    pod: &Arc<Mutex<Pod>>,
    chan: &Channel,
    msg: ControlMsg,
    fds: Vec<OwnedFd>,
) {
    match msg {
        ControlMsg::StartContainer {
            id,
            overlay_root,
            process,
        } => {
            let r = start_container(k, pod, &id, overlay_root, process, fds);
            started(pod, chan, id, r);
        }
        ControlMsg::Exec {
            exec_id,
            container,
            process,
        } => {
            let r = exec(k, pod, &exec_id, &container, process, fds);
            started(pod, chan, exec_id, r);
        }
        ControlMsg::RemoveContainer { id } => remove_container(k, pod, &id),
        ControlMsg::Stats => {
            let _ = chan.send_msg(&stats(k, pod), &[]);
        }
        ControlMsg::Signal { id, signal } => {
            let pid = lock(pod).pids.get(&id).copied();
            let sig = i32::from(signal);
            if let (Some(pid), true) = (pid, (1..=64).contains(&sig)) {
                if let Some(g) = k.group(pid) {
                    k.signal_group(&g, SigInfo::user(sig, 0, 0));
                }
            }
        }
    }
}

/// Forgets an ended container: its root and the mounts under it leave the tree, and its
/// mount point goes.
fn remove_container(k: &Arc<Kernel>, pod: &Mutex<Pod>, id: &[u8]) {
    let root = {
        let mut p = lock(pod);
        if p.pids.contains_key(id) {
            tracing::warn!(id = %String::from_utf8_lossy(id), "not removing a running container");
            return;
        }
        let container: Arc<str> = Arc::from(String::from_utf8_lossy(id).as_ref());
        p.dead_cpu.remove(&container);
        p.roots.remove(id)
    };
    let Some(root) = root else { return };
    k.vfs.detach(&root.mnt);
    let top = &k.vfs.root;
    if top.d.inode.unlink(id, true).is_ok() {
        top.d.forget(id);
    }
}

/// What each container uses: CPU time of its live and ended processes, resident private
/// memory of its live ones.
fn stats(k: &Arc<Kernel>, pod: &Mutex<Pod>) -> SentryEvent {
    let (ids, mut cpu): (Vec<Vec<u8>>, HashMap<Arc<str>, u64>) = {
        let p = lock(pod);
        (p.roots.keys().cloned().collect(), p.dead_cpu.clone())
    };
    // Container → (memory-file ranges its processes hold privately, live processes).
    type Held = (Vec<(u64, u64)>, u32);
    let mut ranges: HashMap<Arc<str>, Held> = HashMap::new();
    let groups: Vec<_> = k.procs().groups.values().cloned().collect();
    let mut seen_mm = std::collections::HashSet::new();
    for g in groups {
        if g.container.is_empty() {
            continue;
        }
        let (user, sys) = g.cpu_time();
        *cpu.entry(g.container.clone()).or_default() += user + sys;
        let entry = ranges.entry(g.container.clone()).or_default();
        entry.1 += 1;
        let mm = g.lock().mm.clone();
        if let Some(mm) = mm {
            if seen_mm.insert(mm.id) {
                mm.private_ranges(&mut entry.0);
            }
        }
    }
    let containers = ids
        .into_iter()
        .map(|id| {
            let key: Arc<str> = Arc::from(String::from_utf8_lossy(&id).as_ref());
            let (memory_bytes, processes) = match ranges.get_mut(&key) {
                Some((r, n)) => (k.mf.resident(r), *n),
                None => (0, 0),
            };
            ContainerUsage {
                cpu_ns: cpu.get(&key).copied().unwrap_or(0),
                memory_bytes,
                processes,
                id,
            }
        })
        .collect();
    SentryEvent::Stats {
        containers,
        pod_memory_bytes: k.mf.used_bytes(),
    }
}

/// Reports a start; a process that already ended is reported ended right after.
fn started(pod: &Mutex<Pod>, chan: &Channel, id: Vec<u8>, r: Result<i32, String>) {
    let pid = match r {
        Ok(pid) => pid,
        Err(error) => {
            let ev = SentryEvent::Failed {
                id,
                error: error.into_bytes(),
            };
            let _ = chan.send_msg(&ev, &[]);
            return;
        }
    };
    let mut p = lock(pod);
    let ev = SentryEvent::Started {
        id: id.clone(),
        pid: pid as u32,
    };
    let _ = chan.send_msg(&ev, &[]);
    if let Some(status) = p.early.remove(&pid) {
        drop(p);
        let ev = SentryEvent::Exited {
            id,
            status: report(status),
        };
        let _ = chan.send_msg(&ev, &[]);
        return;
    }
    p.watched.insert(pid, id.clone());
    p.pids.insert(id, pid);
}

fn creds(p: &ProcessSpec) -> Creds {
    Creds {
        uid: p.uid,
        euid: p.uid,
        suid: p.uid,
        gid: p.gid,
        egid: p.gid,
        sgid: p.gid,
        groups: p.groups.clone(),
    }
}

fn stdio(fds: Vec<OwnedFd>) -> Result<[OwnedFd; 3], String> {
    <[OwnedFd; 3]>::try_from(fds).map_err(|v| format!("want 3 stdio fds, got {}", v.len()))
}

/// A container id names a directory under the pod's root.
fn valid_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && id != b"."
        && id != b".."
}

fn start_container(
    k: &Arc<Kernel>,
    pod: &Mutex<Pod>,
    id: &[u8],
    overlay_root: bool,
    process: ProcessSpec,
    mut fds: Vec<OwnedFd>,
) -> Result<i32, String> {
    if !valid_id(id) {
        return Err("bad container id".into());
    }
    if lock(pod).roots.contains_key(id) {
        return Err("container id in use".into());
    }
    if fds.len() != 4 {
        return Err(format!("want 4 fds (gofer, stdio), got {}", fds.len()));
    }
    let gofer_sock = fds.remove(0);
    let client = Arc::new(GoferClient::new(Channel::from_fd(gofer_sock)));
    let gfs = gofer::GoferFs::new(client, overlay_root);
    let groot = gofer::root_inode(&gfs).map_err(|e| format!("cannot stat the root: {e}"))?;
    let root = if overlay_root {
        overlay::new(groot)
    } else {
        groot
    };
    let top = k.vfs.root.clone();
    top.d
        .inode
        .create(id, NewNode::Dir { mode: 0o700 }, (0, 0))
        .map_err(|e| format!("cannot make the mount point: {e}"))?;
    let d = top.d.child(id).map_err(|e| format!("mount point: {e}"))?;
    let at = VPath {
        mnt: top.mnt.clone(),
        d,
    };
    let fstype = if overlay_root { "overlay" } else { "9p" };
    k.vfs
        .mount(&at, root, fstype, b"rootfs", false)
        .map_err(|e| format!("cannot mount the root: {e}"))?;
    let croot = k.vfs.enter(at);
    mount_special(k, &croot);
    lock(pod).roots.insert(id.to_vec(), croot.clone());
    let r = spawn_process(
        k,
        Spawn {
            root: croot,
            stdio: stdio(fds)?,
            creds: creds(&process),
            argv: process.argv,
            envp: process.envp,
            cwd: process.cwd,
            container: Some(Arc::from(String::from_utf8_lossy(id).as_ref())),
        },
    );
    if r.is_err() {
        lock(pod).roots.remove(id);
    }
    r
}

fn exec(
    k: &Arc<Kernel>,
    pod: &Mutex<Pod>,
    exec_id: &[u8],
    container: &[u8],
    process: ProcessSpec,
    fds: Vec<OwnedFd>,
) -> Result<i32, String> {
    {
        let p = lock(pod);
        if exec_id.is_empty() || p.pids.contains_key(exec_id) || p.roots.contains_key(exec_id) {
            return Err("exec id empty or in use".into());
        }
    }
    let root = lock(pod)
        .roots
        .get(container)
        .cloned()
        .ok_or_else(|| "no such container".to_string())?;
    if !lock(pod).pids.contains_key(container) {
        return Err("container is not running".into());
    }
    spawn_process(
        k,
        Spawn {
            root,
            stdio: stdio(fds)?,
            creds: creds(&process),
            argv: process.argv,
            envp: process.envp,
            cwd: process.cwd,
            container: Some(Arc::from(String::from_utf8_lossy(container).as_ref())),
        },
    )
}
