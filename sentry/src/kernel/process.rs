//! Thread groups and task handles: shared per-process and per-thread state, and their creation.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::signal::SigQueue;
use super::wait::{WaitQueue, Waiter};
use super::{timer, ExitStatus, Kernel};
use crate::abi::signal::SIGCHLD;
use crate::abi::{SigAction, SigStack};
use crate::mm::MemoryManager;
use crate::platform::Interrupter;
use crate::vfs::{FdTable, FsContext, VPath};

/// Per-thread-group state.
pub struct TgState {
    pub parent: Weak<ThreadGroup>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<TaskHandle>>,
    pub pgid: i32,
    pub sid: i32,
    /// Set once the last thread is gone: the process is a zombie until reaped.
    pub exit: Option<ExitStatus>,
    /// exit_group or a fatal signal in progress: every thread must exit with this.
    pub group_exit: Option<ExitStatus>,
    pub pending: SigQueue,
    /// Job-control stop in effect (the stopping signal), and whether the parent has seen it.
    pub stopped: Option<i32>,
    pub stop_reported: bool,
    pub cont_reported: bool,
    pub exe: Option<VPath>,
    pub rlimits: [crate::abi::Rlimit; 16],
    pub start: Instant,
    /// User and system time (ns) of reaped children (RUSAGE_CHILDREN, times(2)).
    pub child_time: (u64, u64),
    /// User and system time (ns) of this group's exited threads.
    pub dead_time: (u64, u64),
    pub exit_signal: i32,
    /// The leader's address space, fds and fs context (for /proc).
    pub mm: Option<Arc<MemoryManager>>,
    pub fds: Option<Arc<Mutex<FdTable>>>,
    pub fs: Option<Arc<Mutex<FsContext>>>,
}

/// A process: threads sharing signal handlers and pid.
pub struct ThreadGroup {
    pub tgid: i32,
    /// The container the process belongs to in a pod sandbox (empty outside pods); children
    /// inherit it.
    pub container: Arc<str>,
    pub st: Mutex<TgState>,
    pub actions: Mutex<[SigAction; 64]>,
    /// Woken when a child changes state (exit, stop, continue).
    pub child_wait: WaitQueue,
    /// Woken when this process exits (pidfds).
    pub exit_wait: WaitQueue,
    /// CPU time of this process in microseconds (user, system), approximated by wall time.
    pub utime_us: AtomicU64,
    pub stime_us: AtomicU64,
    /// Interval timers (setitimer, alarm) and POSIX timers.
    pub timers: timer::ProcTimers,
    /// Woken when a signal is queued to the process or one of its threads (signalfd).
    pub signal_wait: WaitQueue,
}

impl ThreadGroup {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, TgState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// (user, system) CPU time in ns: live threads plus exited ones.
    pub fn cpu_time(&self) -> (u64, u64) {
        let g = self.lock();
        let mut t = g.dead_time;
        for th in &g.threads {
            t.0 += th.utime_ns.load(Ordering::Relaxed);
            t.1 += th.stime_ns.load(Ordering::Relaxed);
        }
        t
    }
    pub fn action(&self, sig: i32) -> SigAction {
        self.actions.lock().unwrap_or_else(|e| e.into_inner())[(sig - 1) as usize]
    }
}

/// Per-task signal state.
#[derive(Default)]
pub struct TaskSig {
    pub mask: u64,
    pub pending: SigQueue,
    pub altstack: SigStack,
    /// Mask to restore after a handler runs (sigsuspend, ppoll, pselect).
    pub saved_mask: Option<u64>,
}

/// The parts of a task other sentry threads may touch.
pub struct TaskHandle {
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub waiter: Arc<Waiter>,
    pub sig: Mutex<TaskSig>,
    pub interrupter: Mutex<Option<Interrupter>>,
    pub comm: Mutex<Vec<u8>>,
    pub killed: AtomicBool,
    /// CPU time approximations, in nanoseconds: time running app code, and time in the
    /// sentry handling its syscalls and faults.
    pub utime_ns: AtomicU64,
    pub stime_ns: AtomicU64,
    /// prctl(PR_SET_PDEATHSIG): signal to get when the parent process exits.
    pub pdeathsig: AtomicI32,
    /// prctl(PR_SET_NO_NEW_PRIVS), inherited by children.
    pub no_new_privs: AtomicBool,
    /// Scheduling policy, nice value and CPU affinity.
    pub sched: Mutex<SchedAttr>,
}

/// What sched_setscheduler, setpriority and sched_setaffinity set (recorded only: the host
/// schedules the sentry's threads).
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedAttr {
    pub policy: i32,
    pub priority: i32,
    pub reset_on_fork: bool,
    pub nice: i32,
    /// Allowed CPUs, bit i for CPU i; 0 for all.
    pub affinity: u64,
}

impl TaskHandle {
    pub fn sig(&self) -> std::sync::MutexGuard<'_, TaskSig> {
        self.sig.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a blocking call must stop: a deliverable signal, or the task must die.
    pub fn interrupted(&self) -> bool {
        if self.killed.load(Ordering::Relaxed) {
            return true;
        }
        let mask = self.sig().mask;
        let st = self.tg.lock();
        if st.group_exit.is_some() {
            return true;
        }
        let own = self.sig().pending.set;
        let mut shared = st.pending.set & !mask;
        if self.tid != self.tg.tgid {
            // Process-directed signals are the main thread's unless it blocks them.
            if let Some(leader) = st.threads.iter().find(|t| t.tid == self.tg.tgid) {
                shared &= leader.sig().mask;
            }
        }
        own & !mask != 0 || shared != 0
    }

    /// Wakes the task wherever it is: asleep in the sentry or running app code.
    pub fn kick(&self) {
        self.waiter.wake();
        if let Some(i) = self
            .interrupter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            i.interrupt();
        }
    }
}

/// Makes a new thread group (with one task handle) registered in the process table.
pub fn new_group(
    k: &Arc<Kernel>,
    parent: Option<&Arc<ThreadGroup>>,
    actions: [SigAction; 64],
    comm: Vec<u8>,
    container: Option<Arc<str>>,
) -> Arc<TaskHandle> {
    let pid = k.alloc_pid();
    let container = container
        .or_else(|| parent.map(|p| p.container.clone()))
        .unwrap_or_else(|| Arc::from(""));
    let (pgid, sid, rlimits, exe) = match parent {
        Some(p) => {
            let g = p.lock();
            (g.pgid, g.sid, g.rlimits, g.exe.clone())
        }
        None => (pid, pid, default_rlimits(), None),
    };
    let tg = Arc::new(ThreadGroup {
        tgid: pid,
        container,
        st: Mutex::new(TgState {
            parent: parent.map(Arc::downgrade).unwrap_or_default(),
            children: Vec::new(),
            threads: Vec::new(),
            pgid,
            sid,
            exit: None,
            group_exit: None,
            pending: SigQueue::default(),
            stopped: None,
            stop_reported: false,
            cont_reported: true,
            exe,
            rlimits,
            start: Instant::now(),
            child_time: (0, 0),
            dead_time: (0, 0),
            exit_signal: SIGCHLD,
            mm: None,
            fds: None,
            fs: None,
        }),
        actions: Mutex::new(actions),
        child_wait: WaitQueue::default(),
        exit_wait: WaitQueue::default(),
        utime_us: AtomicU64::new(0),
        stime_us: AtomicU64::new(0),
        timers: timer::ProcTimers::default(),
        signal_wait: WaitQueue::default(),
    });
    let h = new_handle(pid, &tg, comm);
    let mut procs = k.procs();
    procs.groups.insert(pid, tg.clone());
    procs.tasks.insert(pid, h.clone());
    drop(procs);
    if let Some(p) = parent {
        p.lock().children.push(tg.clone());
    }
    tg.lock().threads.push(h.clone());
    h
}

/// A new thread in `tg`.
pub fn new_thread(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, comm: Vec<u8>) -> Arc<TaskHandle> {
    let tid = k.alloc_pid();
    let h = new_handle(tid, tg, comm);
    k.procs().tasks.insert(tid, h.clone());
    tg.lock().threads.push(h.clone());
    h
}

fn new_handle(tid: i32, tg: &Arc<ThreadGroup>, comm: Vec<u8>) -> Arc<TaskHandle> {
    Arc::new(TaskHandle {
        tid,
        tg: tg.clone(),
        waiter: Arc::new(Waiter::default()),
        sig: Mutex::new(TaskSig::default()),
        interrupter: Mutex::new(None),
        comm: Mutex::new(comm),
        killed: AtomicBool::new(false),
        utime_ns: AtomicU64::new(0),
        stime_ns: AtomicU64::new(0),
        pdeathsig: AtomicI32::new(0),
        no_new_privs: AtomicBool::new(false),
        sched: Mutex::new(SchedAttr::default()),
    })
}

pub fn default_rlimits() -> [crate::abi::Rlimit; 16] {
    use crate::abi::Rlimit;
    let inf = Rlimit {
        cur: u64::MAX,
        max: u64::MAX,
    };
    let mut r = [inf; 16];
    r[libc::RLIMIT_STACK as usize] = Rlimit {
        cur: 8 << 20,
        max: u64::MAX,
    };
    r[libc::RLIMIT_CORE as usize] = Rlimit {
        cur: 0,
        max: u64::MAX,
    };
    r[libc::RLIMIT_NOFILE as usize] = Rlimit {
        cur: 1024,
        max: 1 << 20,
    };
    r[libc::RLIMIT_NPROC as usize] = Rlimit {
        cur: 63_000,
        max: 63_000,
    };
    r[libc::RLIMIT_MEMLOCK as usize] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    };
    r[libc::RLIMIT_SIGPENDING as usize] = Rlimit {
        cur: 63_000,
        max: 63_000,
    };
    r[libc::RLIMIT_MSGQUEUE as usize] = Rlimit {
        cur: 819_200,
        max: 819_200,
    };
    r[libc::RLIMIT_NICE as usize] = Rlimit { cur: 0, max: 0 };
    r[libc::RLIMIT_RTPRIO as usize] = Rlimit { cur: 0, max: 0 };
    r
}
