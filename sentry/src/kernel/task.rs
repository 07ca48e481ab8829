//! The app task: its state, start, main loop, forced signals and exit (with process exit).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::signal::SigInfo;
use super::wait::WaitQueue;
use super::{futex, Completion, Creds, ExitStatus, Kernel, TaskHandle, ThreadGroup};
use crate::abi::signal::*;
use crate::abi::{Errno, Regs};
use crate::mm::MemoryManager;
use crate::platform::{PlatformThread, Seed};
use crate::vfs::{FdTable, FsContext};

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
            cred: crate::net::Ucred::of(self),
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
    if let Some(hook) = k.on_exit.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        hook(tg, st);
    }
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
