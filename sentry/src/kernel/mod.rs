//! Tasks, thread groups, the process tree, signals delivery and exit.
//!
//! Each app task runs on its own sentry thread ([`Task::run`]), which is also the ptrace
//! tracer of the task's stub thread. State other threads touch lives in the shared
//! [`TaskHandle`] and [`ThreadGroup`].
//!
//! Locks, in order: `Kernel::procs` → `ThreadGroup::st` → `TaskHandle::sig`;
//! `ThreadGroup::actions` is taken alone or after `TaskHandle::sig`'s release.

pub mod deliver;
pub mod futex;
pub mod signal;
pub mod timer;
pub mod wait;

mod process;
mod task;

pub use process::*;
pub use task::*;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::abi::signal::*;
use crate::mm::MemFile;
use crate::platform::Platform;
use crate::vfs::Vfs;
use signal::SigInfo;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled(i32),
}

impl ExitStatus {
    /// The wait(2) status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c) << 8,
            ExitStatus::Signaled(s) => s & 0x7f,
        }
    }
}

/// Credentials of a task.
#[derive(Debug, Clone, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

/// A one-shot event (vfork completion).
#[derive(Default)]
pub struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}
impl Completion {
    pub fn complete(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
    pub fn wait(&self) {
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*d {
            d = self.cv.wait(d).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The sandbox's kernel.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub mf: Arc<MemFile>,
    pub vfs: Vfs,
    pub procs: Mutex<ProcTable>,
    next_pid: AtomicI32,
    pub strace: bool,
    /// Unimplemented syscalls hit: number → count.
    pub enosys: Mutex<BTreeMap<u64, u64>>,
    pub boot: Instant,
    pub hostname: Mutex<Vec<u8>>,
    pub futexes: futex::Futexes,
    pub locks: crate::vfs::locks::Locks,
    /// The init process's exit status, once it exits.
    pub init_exit: Mutex<Option<ExitStatus>>,
    pub init_exit_cv: Condvar,
    /// The sandbox's network stack (every AF_INET/AF_INET6 socket, netlink's view).
    pub net: Arc<crate::net::stack::NetStack>,
    /// Called with the tgid and status of every process that exits (a pod sentry reports
    /// its containers' and execs' ends through it).
    pub on_exit: Mutex<Option<ExitHook>>,
}

/// See [`Kernel::on_exit`].
pub type ExitHook = Box<dyn Fn(&Arc<ThreadGroup>, ExitStatus) + Send + Sync>;

#[derive(Default)]
pub struct ProcTable {
    pub tasks: HashMap<i32, Arc<TaskHandle>>,
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
}

impl Kernel {
    pub fn new(
        platform: Box<dyn Platform>,
        mf: Arc<MemFile>,
        vfs: Vfs,
        strace: bool,
        hostname: Vec<u8>,
        net: Arc<crate::net::stack::NetStack>,
    ) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            mf,
            vfs,
            procs: Mutex::new(ProcTable::default()),
            next_pid: AtomicI32::new(1),
            strace,
            enosys: Mutex::new(BTreeMap::new()),
            boot: Instant::now(),
            hostname: Mutex::new(hostname),
            futexes: futex::Futexes::default(),
            locks: crate::vfs::locks::Locks::default(),
            init_exit: Mutex::new(None),
            init_exit_cv: Condvar::new(),
            net,
            on_exit: Mutex::new(None),
        })
    }

    pub fn procs(&self) -> std::sync::MutexGuard<'_, ProcTable> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// A pod sandbox has no init process: pid 1 is never handed out, so no container's
    /// process gets the sandbox-ending role of init.
    pub fn reserve_init_pid(&self) {
        let _ = self
            .next_pid
            .compare_exchange(1, 2, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn task(&self, tid: i32) -> Option<Arc<TaskHandle>> {
        self.procs().tasks.get(&tid).cloned()
    }

    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.procs().groups.get(&tgid).cloned()
    }

    /// Waits until init exits; returns its status.
    pub fn wait_init(&self) -> ExitStatus {
        let mut g = self.init_exit.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = *g {
                return s;
            }
            let (ng, _) = self
                .init_exit_cv
                .wait_timeout(g, std::time::Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner());
            g = ng;
            self.platform.reap();
        }
    }

    /// Sends a signal to a thread group (any thread that does not block it handles it).
    pub fn signal_group(&self, tg: &Arc<ThreadGroup>, info: SigInfo) {
        let sig = info.signo;
        let mut continued: Option<Arc<ThreadGroup>> = None;
        let threads = {
            let mut st = tg.lock();
            if st.exit.is_some() {
                return;
            }
            if sig == SIGCONT || sig == SIGKILL {
                if st.stopped.take().is_some() {
                    st.cont_reported = false;
                    continued = st.parent.upgrade().filter(|_| sig == SIGCONT);
                }
                for t in &st.threads {
                    let mut s = t.sig();
                    for stop in [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU] {
                        s.pending.remove(stop);
                    }
                }
                st.pending.remove(SIGSTOP);
                st.pending.remove(SIGTSTP);
                st.pending.remove(SIGTTIN);
                st.pending.remove(SIGTTOU);
            }
            if matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU) {
                st.pending.remove(SIGCONT);
            }
            if sig == SIGKILL {
                st.group_exit.get_or_insert(ExitStatus::Signaled(SIGKILL));
            }
            // Ignored signals are dropped at once (but SIGCONT still continued above).
            let act = tg.action(sig);
            let ignored = sig != SIGKILL
                && sig != SIGSTOP
                && (act.handler == SIG_IGN
                    || (act.handler == SIG_DFL
                        && signal::default_action(sig) == signal::Default::Ignore)
                    || (act.handler == SIG_DFL && sig == SIGCONT));
            // A blocked signal is queued even if it would be ignored.
            let blocked = st.threads.iter().all(|t| t.sig().mask & bit(sig) != 0);
            if !ignored || blocked {
                st.pending.push(info);
            }
            st.threads.clone()
        };
        for t in threads {
            t.kick();
        }
        tg.signal_wait.notify(crate::vfs::file::POLLIN);
        if let Some(p) = continued {
            if p.action(SIGCHLD).flags & SA_NOCLDSTOP == 0 {
                let info = SigInfo {
                    signo: SIGCHLD,
                    code: CLD_CONTINUED,
                    pid: tg.tgid,
                    status: i64::from(SIGCONT),
                    ..SigInfo::default()
                };
                self.signal_group(&p, info);
            }
            p.child_wait.wake_all();
        }
    }

    /// Sends a signal to one thread.
    pub fn signal_task(&self, t: &Arc<TaskHandle>, info: SigInfo) {
        if info.signo == SIGKILL || info.signo == SIGCONT || info.signo == SIGSTOP {
            return self.signal_group(&t.tg, info);
        }
        let act = t.tg.action(info.signo);
        let ignored = act.handler == SIG_IGN
            || (act.handler == SIG_DFL
                && signal::default_action(info.signo) == signal::Default::Ignore);
        let blocked = t.sig().mask & bit(info.signo) != 0;
        if !ignored || blocked {
            t.sig().pending.push(info);
        }
        t.kick();
        t.tg.signal_wait.notify(crate::vfs::file::POLLIN);
    }

    /// A group's process group and session (0 if gone).
    pub fn pgid_of(&self, tgid: i32) -> Option<i32> {
        self.group(tgid).map(|g| g.lock().pgid)
    }
}
