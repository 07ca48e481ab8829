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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

use crate::abi::signal::*;
use crate::abi::{Errno, Regs, SigAction, SigStack};
use crate::mm::{MemFile, MemoryManager};
use crate::platform::{Interrupter, Platform, PlatformThread, Seed};
use crate::vfs::{FdTable, FsContext, VPath, Vfs};
use signal::{SigInfo, SigQueue};
use wait::{WaitQueue, Waiter};

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
}

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
        })
    }

    pub fn procs(&self) -> std::sync::MutexGuard<'_, ProcTable> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
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

/// What a new task starts with.
pub enum Start {
    /// A fresh address space holding a copy of the parent's (fork).
    Fork(Arc<MemoryManager>),
    /// A new thread in an existing address space (threads, vfork).
    Sibling(Arc<MemoryManager>, Seed),
    /// The first process: an empty address space the loader fills.
    Init,
}

/// An app task, owned by its sentry thread.
pub struct Task {
    pub k: Arc<Kernel>,
    pub h: Arc<TaskHandle>,
    pub pt: Box<dyn PlatformThread>,
    pub regs: Regs,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub creds: Creds,
    pub clear_tid: u64,
    pub robust_list: u64,
    pub vfork_done: Option<Arc<Completion>>,
    /// Set by exit/exit_group/exec failure paths: the loop ends with this.
    pub exiting: Option<ExitStatus>,
    /// Fault address of the signal being delivered (for sigcontext cr2).
    pub fault_addr: u64,
    /// The syscall interrupted with a restart code, and its number.
    pub restart: Option<(Errno, u64)>,
}

impl Task {
    pub fn tid(&self) -> i32 {
        self.h.tid
    }
    pub fn tgid(&self) -> i32 {
        self.h.tg.tgid
    }
    pub fn fds(&self) -> std::sync::MutexGuard<'_, FdTable> {
        self.fds.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn fsctx(&self) -> FsContext {
        self.fs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn rlimit(&self, r: usize) -> u64 {
        self.h
            .tg
            .lock()
            .rlimits
            .get(r)
            .map(|l| l.cur)
            .unwrap_or(u64::MAX)
    }
    pub fn io(&self, nonblock: bool) -> crate::vfs::Io<'_> {
        crate::vfs::Io {
            task: &self.h,
            nonblock,
        }
    }

    /// Sleeps until `ready` yields, a deadline passes (ETIMEDOUT) or a signal arrives
    /// (ERESTARTSYS). `queues` are the objects whose changes may make `ready` true.
    pub fn block<T>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Result<Option<T>, Errno>,
    ) -> Result<T, Errno> {
        let w = &self.h.waiter;
        let _regs: Vec<_> = queues.iter().map(|q| q.register(w)).collect();
        loop {
            let seq = w.seq();
            if let Some(v) = ready()? {
                return Ok(v);
            }
            if self.h.interrupted() {
                return Err(Errno::ERESTARTSYS);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            w.wait(seq, deadline);
        }
    }

    /// Spawns the sentry thread of a new task.
    pub fn spawn(init: NewTask) -> std::io::Result<()> {
        let name = format!("task-{}", init.h.tid);
        std::thread::Builder::new()
            .name(name)
            .stack_size(1 << 20)
            .spawn(move || {
                let tid = init.h.tid;
                match Task::start(init) {
                    Ok(t) => t.run(),
                    Err(e) => tracing::error!(tid, error = %e, "task failed to start"),
                }
            })?;
        Ok(())
    }

    /// Starts the init task on the calling thread (it then execs and runs).
    pub fn start_init(n: NewTask) -> Result<Task, crate::platform::PlatformError> {
        Task::start(n)
    }

    /// Records the address space, fds and fs of a group leader, for /proc.
    pub fn publish(&self) {
        crate::vfs::fs::proc::CURRENT.with(|c| *c.borrow_mut() = Some(Arc::downgrade(&self.h.tg)));
        crate::vfs::fs::signalfd::set_current(&self.h);
        if self.h.tid == self.h.tg.tgid {
            let mut g = self.h.tg.lock();
            g.mm = Some(self.mm.clone());
            g.fds = Some(self.fds.clone());
            g.fs = Some(self.fs.clone());
        }
    }

    fn start(n: NewTask) -> Result<Task, crate::platform::PlatformError> {
        let k = n.k.clone();
        let (pt, mm) = match n.start {
            Start::Fork(mm) => {
                let mut pt = k.platform.new_address_space()?;
                if let Err(e) = mm.map_all(pt.as_mut()) {
                    tracing::error!(?e, "cannot map forked address space");
                }
                (pt, mm)
            }
            Start::Sibling(mm, seed) => (k.platform.adopt(seed)?, mm),
            Start::Init => {
                let pt = k.platform.new_address_space()?;
                let mm = Arc::new(MemoryManager::new(k.mf.clone(), k.platform.layout()));
                (pt, mm)
            }
        };
        mm.attach();
        *n.h.interrupter.lock().unwrap_or_else(|e| e.into_inner()) = Some(pt.interrupter());
        if let Some(ready) = n.ready {
            ready.complete();
        }
        let t = Task {
            k,
            h: n.h,
            pt,
            regs: n.regs,
            mm,
            fds: n.fds,
            fs: n.fs,
            creds: n.creds,
            clear_tid: n.clear_tid,
            robust_list: 0,
            vfork_done: n.vfork_done,
            exiting: None,
            fault_addr: 0,
            restart: None,
        };
        t.publish();
        Ok(t)
    }

    /// The task's main loop: run app code, handle what stopped it, deliver signals.
    pub fn run(mut self) {
        loop {
            if let Some(st) = self.must_exit() {
                return self.exit(st);
            }
            // Host mappings changed by sentry-side writes or truncations (mm::sync_host).
            self.mm.sync_host(self.pt.as_mut());
            let t0 = Instant::now();
            let ev = self.pt.switch(&mut self.regs);
            let t1 = Instant::now();
            self.h
                .utime_ns
                .fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(tid = self.tid(), error = %e, "platform failed");
                    return self.exit(ExitStatus::Signaled(SIGKILL));
                }
            };
            match ev {
                crate::platform::Event::Syscall => crate::syscalls::dispatch(&mut self),
                crate::platform::Event::Fault { signo, code, addr } => {
                    // The mm may fix the mapping (retry) or change the signal (SIGBUS).
                    if let crate::mm::FaultOutcome::Signal(signo, code) =
                        self.mm.fault(self.pt.as_mut(), signo, code, addr)
                    {
                        self.force_signal(SigInfo {
                            signo,
                            code,
                            addr,
                            ..SigInfo::default()
                        });
                    }
                }
                crate::platform::Event::Interrupted => {}
                crate::platform::Event::Gone => {
                    return self.exit(ExitStatus::Signaled(SIGKILL));
                }
            }
            self.deliver_signals();
            self.h
                .stime_ns
                .fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// A pending group exit or kill.
    fn must_exit(&self) -> Option<ExitStatus> {
        if let Some(s) = self.exiting {
            return Some(s);
        }
        if self.h.killed.load(Ordering::Relaxed) {
            return Some(ExitStatus::Signaled(SIGKILL));
        }
        self.h.tg.lock().group_exit
    }

    /// Queues a synchronous fault signal; if the app blocks or ignores it, it dies of it.
    pub fn force_signal(&mut self, info: SigInfo) {
        let sig = info.signo;
        let mut acts = self.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
        let a = &mut acts[(sig - 1) as usize];
        let blocked = self.h.sig().mask & bit(sig) != 0;
        if a.handler == SIG_IGN || blocked {
            a.handler = SIG_DFL;
        }
        drop(acts);
        let mut s = self.h.sig();
        s.mask &= !bit(sig);
        s.pending.push(info);
        drop(s);
        self.fault_addr = info.addr;
    }

    /// Starts exiting the whole thread group with `st` (exit_group, fatal signal).
    pub fn exit_group(&mut self, st: ExitStatus) {
        let threads = {
            let mut g = self.h.tg.lock();
            let st = *g.group_exit.get_or_insert(st);
            self.exiting = Some(st);
            g.threads.clone()
        };
        for t in threads {
            if t.tid != self.tid() {
                t.kick();
            }
        }
    }

    /// Ends this task (its sentry thread returns afterwards).
    fn exit(mut self, st: ExitStatus) {
        let st = self.h.tg.lock().group_exit.unwrap_or(st);
        *self.h.interrupter.lock().unwrap_or_else(|e| e.into_inner()) = None;
        // CLONE_CHILD_CLEARTID: zero the tid word and wake a waiter (pthread_join).
        if self.clear_tid != 0
            && self.mm.users() > 1
            && self.mm.write_obj(self.clear_tid, &0u32).is_ok()
        {
            let _ = futex::wake(&self, self.clear_tid, 1, u32::MAX);
        }
        futex::exit_robust_list(&mut self);
        if let Some(v) = self.vfork_done.take() {
            v.complete();
        }
        let last_in_mm = self.mm.detach();
        if last_in_mm {
            self.mm.clear();
        }
        self.pt.exit(last_in_mm);
        let k = self.k.clone();
        let tg = self.h.tg.clone();
        let last_thread = {
            let mut procs = k.procs();
            procs.tasks.remove(&self.h.tid);
            let mut g = tg.lock();
            g.threads.retain(|t| t.tid != self.h.tid);
            g.dead_time.0 += self.h.utime_ns.load(Ordering::Relaxed);
            g.dead_time.1 += self.h.stime_ns.load(Ordering::Relaxed);
            g.threads.is_empty()
        };
        if self.h.tid == tg.tgid {
            let mut g = tg.lock();
            g.mm = None;
            g.fds = None;
            g.fs = None;
        }
        drop(self.fds);
        if last_thread {
            process_exit(&k, &tg, st);
        }
    }
}

/// The last thread of `tg` is gone: make it a zombie, tell the parent, reparent children.
fn process_exit(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, st: ExitStatus) {
    let (parent, children) = {
        let mut g = tg.lock();
        g.exit = Some(st);
        (g.parent.upgrade(), std::mem::take(&mut g.children))
    };
    tg.exit_wait.wake_all();
    tg.timers.cancel_all();
    k.locks
        .release_all(crate::vfs::locks::Owner::Process(tg.tgid));
    if tg.tgid == 1 {
        // init is gone: the sandbox ends; every other process dies.
        let groups: Vec<_> = k.procs().groups.values().cloned().collect();
        for g in groups {
            if g.tgid != 1 {
                k.signal_group(&g, SigInfo::kernel(SIGKILL));
            }
        }
        *k.init_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
        k.init_exit_cv.notify_all();
        return;
    }
    // Children that asked for it learn of their parent's death.
    for c in &children {
        let threads = c.lock().threads.clone();
        for th in threads {
            let sig = th.pdeathsig.load(Ordering::Relaxed);
            if sig > 0 {
                k.signal_task(&th, SigInfo::kernel(sig));
            }
        }
    }
    // Orphans go to init.
    if let Some(init) = k.group(1) {
        let mut zombies = false;
        for c in &children {
            c.lock().parent = Arc::downgrade(&init);
            zombies |= c.lock().exit.is_some();
        }
        init.lock().children.extend(children);
        if zombies {
            init.child_wait.wake_all();
        }
    }
    let Some(parent) = parent else {
        k.procs().groups.remove(&tg.tgid);
        return;
    };
    let act = parent.action(SIGCHLD);
    let exit_signal = tg.lock().exit_signal;
    let autoreap = act.handler == SIG_IGN || act.flags & SA_NOCLDWAIT != 0;
    if autoreap {
        parent.lock().children.retain(|c| c.tgid != tg.tgid);
        k.procs().groups.remove(&tg.tgid);
    }
    // With SA_NOCLDWAIT and a handler the child is reaped and the handler still runs.
    if exit_signal != 0 && act.handler != SIG_IGN {
        let (code, status) = match st {
            ExitStatus::Exited(c) => (CLD_EXITED, i64::from(c)),
            ExitStatus::Signaled(s) => (CLD_KILLED, i64::from(s)),
        };
        k.signal_group(
            &parent,
            SigInfo {
                signo: exit_signal,
                code,
                pid: tg.tgid,
                status,
                ..SigInfo::default()
            },
        );
    }
    parent.child_wait.wake_all();
}

/// Everything a new task needs; built by clone/fork and boot.
pub struct NewTask {
    pub k: Arc<Kernel>,
    pub h: Arc<TaskHandle>,
    pub start: Start,
    pub regs: Regs,
    pub fds: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub creds: Creds,
    pub clear_tid: u64,
    pub vfork_done: Option<Arc<Completion>>,
    /// Completed once the task's platform thread exists.
    pub ready: Option<Arc<Completion>>,
}

/// Makes a new thread group (with one task handle) registered in the process table.
pub fn new_group(
    k: &Arc<Kernel>,
    parent: Option<&Arc<ThreadGroup>>,
    actions: [SigAction; 64],
    comm: Vec<u8>,
) -> Arc<TaskHandle> {
    let pid = k.alloc_pid();
    let (pgid, sid, rlimits, exe) = match parent {
        Some(p) => {
            let g = p.lock();
            (g.pgid, g.sid, g.rlimits, g.exe.clone())
        }
        None => (pid, pid, default_rlimits(), None),
    };
    let tg = Arc::new(ThreadGroup {
        tgid: pid,
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
