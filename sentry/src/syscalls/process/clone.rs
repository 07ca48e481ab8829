//! clone(2), fork(2) and vfork(2): new threads and processes.

use std::sync::{Arc, Mutex};

use crate::abi::signal::SIGCHLD;
use crate::abi::{Errno, SysResult};
use crate::kernel::{self, Completion, NewTask, Start, Task};
use crate::syscalls::Args;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

pub fn do_clone(t: &mut Task, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult {
    let thread = flags & CLONE_THREAD != 0;
    if (thread && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
        || flags & CLONE_PIDFD != 0
    {
        return Err(Errno::EINVAL);
    }
    let k = t.k.clone();
    let comm = t.h.comm.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let start = if flags & CLONE_VM != 0 {
        let seed = t.pt.new_sibling().map_err(|e| {
            tracing::warn!(error = %e, "cannot create stub thread");
            Errno::EAGAIN
        })?;
        Start::Sibling(t.mm.clone(), seed)
    } else {
        Start::Fork(Arc::new(t.mm.fork_copy()?))
    };
    let h = if thread {
        kernel::new_thread(&k, &t.h.tg, comm)
    } else {
        let parent = if flags & CLONE_PARENT != 0 {
            t.h.tg
                .lock()
                .parent
                .upgrade()
                .unwrap_or_else(|| t.h.tg.clone())
        } else {
            t.h.tg.clone()
        };
        let actions = *t.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
        let h = kernel::new_group(&k, Some(&parent), actions, comm, None);
        {
            let mine = t.h.tg.lock();
            let mut g = h.tg.lock();
            g.exe = mine.exe.clone();
            g.rlimits = mine.rlimits;
            g.exit_signal = (flags & 0xff) as i32;
        }
        h
    };
    *h.sched.lock().unwrap_or_else(|e| e.into_inner()) =
        *t.h.sched.lock().unwrap_or_else(|e| e.into_inner());
    h.no_new_privs.store(
        t.h.no_new_privs.load(std::sync::atomic::Ordering::Relaxed),
        std::sync::atomic::Ordering::Relaxed,
    );
    {
        let mine = t.h.sig();
        let mut s = h.sig();
        s.mask = mine.mask;
        if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
            s.altstack = mine.altstack;
        }
    }
    let tid = h.tid;
    if flags & CLONE_CHILD_SETTID != 0 {
        match &start {
            Start::Fork(mm) | Start::Sibling(mm, _) => {
                let _ = mm.write_obj(ctid, &(tid as u32));
            }
            Start::Init => {}
        }
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = t.mm.write_obj(ptid, &(tid as u32));
    }
    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    let fds = if flags & CLONE_FILES != 0 {
        t.fds.clone()
    } else {
        Arc::new(Mutex::new(t.fds().clone()))
    };
    let fs = if flags & CLONE_FS != 0 {
        t.fs.clone()
    } else {
        Arc::new(Mutex::new(t.fsctx()))
    };
    let vfork = (flags & CLONE_VFORK != 0).then(|| Arc::new(Completion::default()));
    let ready = Arc::new(Completion::default());
    let n = NewTask {
        k: k.clone(),
        h: h.clone(),
        start,
        regs,
        fds,
        fs,
        creds: t.creds.clone(),
        clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        },
        vfork_done: vfork.clone(),
        ready: Some(ready.clone()),
    };
    if let Err(e) = Task::spawn(n) {
        tracing::error!(error = %e, "cannot spawn task thread");
        return Err(Errno::EAGAIN);
    }
    // The stub must be bound before the parent's address space changes again.
    ready.wait();
    if let Some(v) = vfork {
        v.wait();
    }
    Ok(tid as u64)
}

pub fn sys_clone(t: &mut Task, a: &Args) -> SysResult {
    do_clone(t, a.u64(0), a.u64(1), a.ptr(2), a.ptr(3), a.u64(4))
}
pub fn sys_fork(t: &mut Task, _a: &Args) -> SysResult {
    do_clone(t, SIGCHLD as u64, 0, 0, 0, 0)
}
pub fn sys_vfork(t: &mut Task, _a: &Args) -> SysResult {
    do_clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD as u64, 0, 0, 0, 0)
}
