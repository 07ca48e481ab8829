//! A pod sandbox: one sentry (booted in pod mode, optionally on a pod interface) that runs
//! several containers, each with its own root served by its own gofer. The runtime side of
//! `moat_proto::control`: start containers and execs, signal them, wait for their ends.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use moat_gofer::Channel;
use moat_proto::boot::{SentryBoot, SentryExit};
use moat_proto::control::{ContainerUsage, ControlMsg, ProcessSpec, SentryEvent};

use crate::sandbox::{
    iface_name, open_netns, sibling, spawn, spawn_gofer, NetAttach, SandboxError,
};

/// How a pod sandbox starts.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    pub hostname: Vec<u8>,
    /// The pod's interface (CNI made it); None: loopback only.
    pub net: Option<NetAttach>,
    pub strace: bool,
}

/// Where a container or exec stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcState {
    Starting,
    Running { pid: u32 },
    Exited { pid: u32, status: SentryExit },
    Failed(String),
}

#[derive(Default)]
struct Events {
    procs: HashMap<Vec<u8>, ProcState>,
    /// The sentry's socket closed.
    gone: bool,
    /// The latest stats answer and how many have come.
    stats: Option<PodUsage>,
    stats_seen: u64,
}

/// What a pod's containers use, as its sentry accounts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub containers: Vec<ContainerUsage>,
    /// App memory of the whole pod (the sentry's memory file), in bytes.
    pub memory_bytes: u64,
}

/// A running pod sandbox.
pub struct PodSandbox {
    ctl: Arc<Channel>,
    sentry: Mutex<Child>,
    /// Container id → the gofer serving its root.
    gofers: Mutex<HashMap<String, Child>>,
    events: Arc<(Mutex<Events>, Condvar)>,
    /// Held by one stats request at a time (answers are matched by order).
    stats_turn: Mutex<()>,
    /// Asks the gofer-spawning thread for a gofer.
    spawner: Mutex<std::sync::mpsc::Sender<GoferRequest>>,
}

/// A gofer to spawn: its root, whether read-only, and where the answer goes.
type GoferRequest = (
    std::path::PathBuf,
    bool,
    std::sync::mpsc::Sender<Result<(Child, OwnedFd), SandboxError>>,
);

/// Spawns the pod's gofers on one thread that lives as long as the pod: a gofer dies with the
/// thread that spawned it (its parent-death signal follows the thread, not the process), and
/// requests come on short-lived connection threads.
fn gofer_spawner() -> Result<std::sync::mpsc::Sender<GoferRequest>, SandboxError> {
    let (tx, rx) = std::sync::mpsc::channel::<GoferRequest>();
    let gofer_bin = sibling("moat-gofer")?;
    std::thread::Builder::new()
        .name("gofer-spawner".into())
        .spawn(move || {
            for (root, read_only, reply) in rx {
                let _ = reply.send(spawn_gofer(&gofer_bin, &root, read_only));
            }
        })
        .map_err(|source| SandboxError::Spawn {
            what: "the gofer spawner",
            source,
        })?;
    Ok(tx)
}

impl PodSandbox {
    /// Boots a pod sentry.
    pub fn start(o: &PodOptions) -> Result<PodSandbox, SandboxError> {
        let sentry_bin = sibling("moat-sentry")?;
        let netns = open_netns(o.net.as_ref())?;
        let (ctl, child_end) = Channel::pair().map_err(SandboxError::Channel)?;
        let mut sentry = spawn(&sentry_bin, "the sentry", child_end.into_fd())?;
        let sb = SentryBoot {
            argv: Vec::new(),
            envp: Vec::new(),
            cwd: Vec::new(),
            hostname: if o.hostname.is_empty() {
                b"moat".to_vec()
            } else {
                o.hostname.clone()
            },
            strace: o.strace,
            overlay_root: false,
            uid: 0,
            gid: 0,
            net_iface: iface_name(o.net.as_ref()),
            pod: true,
        };
        let fds: Vec<_> = netns.iter().map(|f| f.as_fd()).collect();
        if let Err(source) = ctl.send_msg(&sb, &fds) {
            let _ = sentry.kill();
            let _ = sentry.wait();
            return Err(SandboxError::Boot {
                what: "the sentry",
                source,
            });
        }
        let ctl = Arc::new(ctl);
        let events: Arc<(Mutex<Events>, Condvar)> = Arc::default();
        {
            let (ctl, events) = (ctl.clone(), events.clone());
            std::thread::Builder::new()
                .name("pod-events".into())
                .spawn(move || read_events(&ctl, &events))
                .map_err(|source| SandboxError::Spawn {
                    what: "the event reader",
                    source,
                })?;
        }
        Ok(PodSandbox {
            ctl,
            sentry: Mutex::new(sentry),
            gofers: Mutex::default(),
            events,
            stats_turn: Mutex::new(()),
            spawner: Mutex::new(gofer_spawner()?),
        })
    }

    /// Starts container `id` on `rootfs` (read-only: an in-memory writable layer on top) with
    /// `stdio` as its fds 0-2; returns its pid once it runs.
    pub fn start_container(
        &self,
        id: &str,
        rootfs: &Path,
        read_only: bool,
        process: ProcessSpec,
        stdio: [OwnedFd; 3],
    ) -> Result<u32, SandboxError> {
        if self.lock_gofers().contains_key(id) {
            return Err(SandboxError::Control(format!("{id} is already in use")));
        }
        let (reply, answer) = std::sync::mpsc::channel();
        self.spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((rootfs.to_owned(), read_only, reply))
            .map_err(|_| SandboxError::Control("the gofer spawner is gone".into()))?;
        let (gofer, gofer_sock) = answer
            .recv()
            .map_err(|_| SandboxError::Control("the gofer spawner is gone".into()))??;
        self.lock_gofers().insert(id.to_owned(), gofer);
        let msg = ControlMsg::StartContainer {
            id: id.as_bytes().to_vec(),
            overlay_root: read_only,
            process,
        };
        let mut fds = vec![gofer_sock.as_fd()];
        fds.extend(stdio.iter().map(|f| f.as_fd()));
        let r = self.request(id, &msg, &fds);
        if r.is_err() {
            if let Some(mut g) = self.lock_gofers().remove(id) {
                let _ = g.kill();
                let _ = g.wait();
            }
        }
        r
    }

    /// Forgets container `id`, which must have ended (or never started): the sentry drops its
    /// root, its gofer is ended, and the id may be used again.
    pub fn remove_container(&self, id: &str) -> Result<(), SandboxError> {
        match self.state(id) {
            Some(ProcState::Starting | ProcState::Running { .. }) => {
                return Err(SandboxError::Control(format!("{id} is still running")));
            }
            Some(_) => {
                let msg = ControlMsg::RemoveContainer {
                    id: id.as_bytes().to_vec(),
                };
                self.ctl
                    .send_msg(&msg, &[])
                    .map_err(|source| SandboxError::Boot {
                        what: "the sentry",
                        source,
                    })?;
            }
            None => {}
        }
        self.lock_events().procs.remove(id.as_bytes());
        if let Some(mut g) = self.lock_gofers().remove(id) {
            let _ = g.kill();
            let _ = g.wait();
        }
        Ok(())
    }

    /// What the pod's containers use, as the sentry accounts it (waits at most `timeout`).
    pub fn stats(&self, timeout: Duration) -> Result<PodUsage, SandboxError> {
        let _turn = self.stats_turn.lock().unwrap_or_else(|e| e.into_inner());
        let seen = self.lock_events().stats_seen;
        self.ctl
            .send_msg(&ControlMsg::Stats, &[])
            .map_err(|source| SandboxError::Boot {
                what: "the sentry",
                source,
            })?;
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.events;
        let mut ev = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if ev.stats_seen > seen {
                return Ok(ev.stats.clone().unwrap_or_default());
            }
            if ev.gone {
                return Err(SandboxError::SentryFailed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SandboxError::Control(
                    "the sentry did not answer stats".into(),
                ));
            }
            ev = cv
                .wait_timeout(ev, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lock_gofers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.gofers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs another process in container `container`; `exec_id` names it for wait/signal.
    pub fn exec(
        &self,
        exec_id: &str,
        container: &str,
        process: ProcessSpec,
        stdio: [OwnedFd; 3],
    ) -> Result<u32, SandboxError> {
        let msg = ControlMsg::Exec {
            exec_id: exec_id.as_bytes().to_vec(),
            container: container.as_bytes().to_vec(),
            process,
        };
        let fds: Vec<_> = stdio.iter().map(|f| f.as_fd()).collect();
        self.request(exec_id, &msg, &fds)
    }

    fn request(
        &self,
        id: &str,
        msg: &ControlMsg,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<u32, SandboxError> {
        let key = id.as_bytes().to_vec();
        {
            let mut ev = self.lock_events();
            if ev.procs.contains_key(&key) {
                return Err(SandboxError::Control(format!("{id} is already in use")));
            }
            ev.procs.insert(key.clone(), ProcState::Starting);
        }
        self.ctl
            .send_msg(msg, fds)
            .map_err(|source| SandboxError::Boot {
                what: "the sentry",
                source,
            })?;
        let (m, cv) = &*self.events;
        let mut ev = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match ev.procs.get(&key) {
                Some(ProcState::Running { pid }) | Some(ProcState::Exited { pid, .. }) => {
                    return Ok(*pid)
                }
                Some(ProcState::Failed(e)) => {
                    let e = e.clone();
                    ev.procs.remove(&key);
                    return Err(SandboxError::Control(e));
                }
                _ if ev.gone => return Err(SandboxError::SentryFailed),
                _ => ev = cv.wait(ev).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Sends `signal` to container (or exec) `id`'s process.
    pub fn signal(&self, id: &str, signal: u8) -> Result<(), SandboxError> {
        let msg = ControlMsg::Signal {
            id: id.as_bytes().to_vec(),
            signal,
        };
        self.ctl
            .send_msg(&msg, &[])
            .map_err(|source| SandboxError::Boot {
                what: "the sentry",
                source,
            })
    }

    /// Forgets exec `id` once it ended (its exit is not asked for again).
    pub fn forget(&self, id: &str) {
        let mut ev = self.lock_events();
        if matches!(
            ev.procs.get(id.as_bytes()),
            Some(ProcState::Exited { .. } | ProcState::Failed(_))
        ) {
            ev.procs.remove(id.as_bytes());
        }
    }

    /// Where `id` stands, if it was started.
    pub fn state(&self, id: &str) -> Option<ProcState> {
        self.lock_events().procs.get(id.as_bytes()).cloned()
    }

    /// Waits until `id` ended (or `timeout` passes: None).
    pub fn wait(&self, id: &str, timeout: Option<Duration>) -> Option<SentryExit> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (m, cv) = &*self.events;
        let mut ev = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(ProcState::Exited { status, .. }) = ev.procs.get(id.as_bytes()) {
                return Some(*status);
            }
            if ev.gone {
                return None;
            }
            ev = match deadline {
                None => cv.wait(ev).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    cv.wait_timeout(ev, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// The sentry's pid on the host.
    pub fn sentry_pid(&self) -> u32 {
        self.sentry.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    fn lock_events(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PodSandbox {
    /// Ends the pod: the sentry kills every process when its socket closes; it and the
    /// gofers are reaped.
    fn drop(&mut self) {
        let mut s = self.sentry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s.kill();
        let _ = s.wait();
        for (_, mut g) in self.lock_gofers().drain() {
            let _ = g.kill();
            let _ = g.wait();
        }
    }
}

fn read_events(ctl: &Channel, events: &(Mutex<Events>, Condvar)) {
    let (m, cv) = events;
    loop {
        let ev = ctl.recv_msg::<SentryEvent>();
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            Ok((SentryEvent::Started { id, pid }, _)) => {
                g.procs.insert(id, ProcState::Running { pid });
            }
            Ok((SentryEvent::Failed { id, error }, _)) => {
                let e = String::from_utf8_lossy(&error).into_owned();
                g.procs.insert(id, ProcState::Failed(e));
            }
            Ok((SentryEvent::Exited { id, status }, _)) => {
                let pid = match g.procs.get(&id) {
                    Some(ProcState::Running { pid }) => *pid,
                    _ => 0,
                };
                g.procs.insert(id, ProcState::Exited { pid, status });
            }
            Ok((
                SentryEvent::Stats {
                    containers,
                    pod_memory_bytes,
                },
                _,
            )) => {
                g.stats = Some(PodUsage {
                    containers,
                    memory_bytes: pod_memory_bytes,
                });
                g.stats_seen += 1;
            }
            Err(moat_gofer::ChannelError::Decode(e)) => {
                tracing::warn!(error = %e, "bad event from the sentry");
                continue;
            }
            Err(_) => {
                g.gone = true;
                cv.notify_all();
                return;
            }
        }
        cv.notify_all();
    }
}
