//! Signal syscalls: sigaction, masks, kill family, sigreturn, suspend, altstack, waits.

use std::time::{Duration, Instant};

use super::{Args, EJUSTRETURN};
use crate::abi::signal::*;
use crate::abi::{Errno, SigAction, SigStack, SysResult, Timespec};
use crate::kernel::signal::SigInfo;
use crate::kernel::Task;

fn valid(sig: i32) -> bool {
    (1..=64).contains(&sig)
}

pub fn sys_rt_sigaction(t: &mut Task, a: &Args) -> SysResult {
    let (sig, new, old) = (a.i32(0), a.ptr(1), a.ptr(2));
    if a.usize(3) != 8 || !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let newact = if new != 0 {
        Some(t.mm.read_obj::<SigAction>(new)?)
    } else {
        None
    };
    if newact.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let prev = {
        let mut acts = t.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
        let prev = acts[(sig - 1) as usize];
        if let Some(mut n) = newact {
            n.mask &= !UNBLOCKABLE;
            acts[(sig - 1) as usize] = n;
        }
        prev
    };
    if old != 0 {
        t.mm.write_obj(old, &prev)?;
    }
    // Setting a signal to be ignored discards it from every pending queue.
    if let Some(n) = newact {
        let dfl_ignored = n.handler == SIG_DFL
            && crate::kernel::signal::default_action(sig) == crate::kernel::signal::Default::Ignore;
        if n.handler == SIG_IGN || dfl_ignored {
            let threads = {
                let mut g = t.h.tg.lock();
                g.pending.remove(sig);
                g.threads.clone()
            };
            for th in threads {
                th.sig().pending.remove(sig);
            }
        }
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    let (how, set, old) = (a.i32(0), a.ptr(1), a.ptr(2));
    if a.usize(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let cur = t.h.sig().mask;
    if set != 0 {
        let s: u64 = t.mm.read_obj(set)?;
        let m = match how {
            0 => cur | s,
            1 => cur & !s,
            2 => s,
            _ => return Err(Errno::EINVAL),
        };
        t.h.sig().mask = m & !UNBLOCKABLE;
    }
    if old != 0 {
        t.mm.write_obj(old, &cur)?;
    }
    Ok(0)
}

pub fn sys_rt_sigreturn(t: &mut Task, _a: &Args) -> SysResult {
    if t.sigreturn().is_err() {
        t.force_signal(SigInfo::kernel(SIGSEGV));
    }
    Err(EJUSTRETURN)
}

fn send_to_pid(t: &mut Task, pid: i32, sig: i32, info: SigInfo) -> SysResult {
    if sig != 0 && !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let k = t.k.clone();
    let targets: Vec<_> = if pid > 0 {
        // A zombie still exists (signal 0 succeeds); signals to it are dropped.
        vec![k.group(pid).ok_or(Errno::ESRCH)?]
    } else {
        let my_pgid = t.h.tg.lock().pgid;
        let groups: Vec<_> = k.procs().groups.values().cloned().collect();
        groups
            .into_iter()
            .filter(|g| g.lock().exit.is_none())
            .filter(|g| match pid {
                0 => g.lock().pgid == my_pgid,
                -1 => g.tgid != 1 && g.tgid != t.tgid(),
                p => g.lock().pgid == -p,
            })
            .collect()
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        for g in targets {
            if g.tgid == 1 && pid != 1 {
                // init only gets signals it handles.
            }
            k.signal_group(&g, info);
        }
    }
    Ok(0)
}

pub fn sys_kill(t: &mut Task, a: &Args) -> SysResult {
    let (pid, sig) = (a.i32(0), a.i32(1));
    let info = SigInfo::user(sig, t.tgid(), t.creds.uid);
    send_to_pid(t, pid, sig, info)
}

fn tkill(t: &mut Task, tgid: Option<i32>, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || (sig != 0 && !valid(sig)) {
        return Err(Errno::EINVAL);
    }
    let th = t.k.task(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != th.tg.tgid) {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        let info = SigInfo {
            signo: sig,
            code: SI_TKILL,
            pid: t.tgid(),
            uid: t.creds.uid,
            ..SigInfo::default()
        };
        t.k.signal_task(&th, info);
    }
    Ok(0)
}

pub fn sys_tkill(t: &mut Task, a: &Args) -> SysResult {
    tkill(t, None, a.i32(0), a.i32(1))
}

pub fn sys_tgkill(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    tkill(t, Some(a.i32(0)), a.i32(1), a.i32(2))
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let (pid, sig) = (a.i32(0), a.i32(1));
    let mut b = [0u8; 128];
    t.mm.copy_in(a.ptr(2), &mut b)?;
    let mut info = SigInfo::from_bytes(&b);
    if (info.code >= 0 || info.code == SI_TKILL) && pid != t.tgid() {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    send_to_pid(t, pid, sig, info)
}

pub fn sys_rt_sigpending(t: &mut Task, a: &Args) -> SysResult {
    if a.usize(1) > 8 {
        return Err(Errno::EINVAL);
    }
    let own = t.h.sig().pending.set;
    let set = (own | t.h.tg.lock().pending.set) & t.h.sig().mask;
    t.mm.write_obj(a.ptr(0), &set)?;
    Ok(0)
}

pub fn sys_rt_sigsuspend(t: &mut Task, a: &Args) -> SysResult {
    if a.usize(1) != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = t.mm.read_obj(a.ptr(0))?;
    {
        let mut s = t.h.sig();
        s.saved_mask = Some(s.mask);
        s.mask = m & !UNBLOCKABLE;
    }
    let r: Result<(), Errno> = t.block(&[], None, || Ok(None));
    match r {
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        _ => Err(Errno::EINTR),
    }
}

pub fn sys_pause(t: &mut Task, _a: &Args) -> SysResult {
    let r: Result<(), Errno> = t.block(&[], None, || Ok(None));
    match r {
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        _ => Err(Errno::EINTR),
    }
}

pub fn sys_sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    let (new, old) = (a.ptr(0), a.ptr(1));
    let cur = t.h.sig().altstack;
    let sp = t.regs.rsp;
    let on = cur.flags & SS_DISABLE == 0 && sp > cur.sp && sp <= cur.sp + cur.size;
    if old != 0 {
        let mut o = cur;
        if cur.size == 0 && cur.sp == 0 {
            o.flags = SS_DISABLE;
        }
        if on {
            o.flags = SS_ONSTACK;
        }
        t.mm.write_obj(old, &o)?;
    }
    if new != 0 {
        let n: SigStack = t.mm.read_obj(new)?;
        if on {
            return Err(Errno::EPERM);
        }
        if n.flags & !(SS_DISABLE | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if n.flags & SS_DISABLE != 0 {
            t.h.sig().altstack = SigStack {
                flags: SS_DISABLE,
                ..SigStack::default()
            };
        } else {
            if n.size < 2048 {
                return Err(Errno::ENOMEM);
            }
            t.h.sig().altstack = SigStack {
                sp: n.sp,
                flags: 0,
                pad: 0,
                size: n.size,
            };
        }
    }
    Ok(0)
}

pub fn sys_rt_sigtimedwait(t: &mut Task, a: &Args) -> SysResult {
    if a.usize(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let set: u64 = t.mm.read_obj(a.ptr(0))?;
    let set = set & !UNBLOCKABLE;
    let deadline = if a.ptr(2) != 0 {
        let ts: Timespec = t.mm.read_obj(a.ptr(2))?;
        if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(ts.sec as u64, ts.nsec as u32))
    } else {
        None
    };
    let h = t.h.clone();
    let take = || -> Result<Option<SigInfo>, Errno> {
        let not = !set;
        if let Some(i) = h.sig().pending.pop(not) {
            return Ok(Some(i));
        }
        Ok(h.tg.lock().pending.pop(not))
    };
    // Signals in `set` must not count as interruptions while we wait for them.
    let old = {
        let mut s = t.h.sig();
        let old = s.mask;
        s.mask |= set;
        old
    };
    let r = t.block(&[], deadline, take);
    t.h.sig().mask = old;
    match r {
        Ok(info) => {
            if a.ptr(1) != 0 {
                t.mm.copy_out(a.ptr(1), &info.to_bytes())?;
            }
            Ok(info.signo as u64)
        }
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        Err(Errno::ERESTARTSYS) => Err(Errno::EINTR),
        Err(e) => Err(e),
    }
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let (tgid, tid, sig) = (a.i32(0), a.i32(1), a.i32(2));
    if tgid <= 0 || tid <= 0 || !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 128];
    t.mm.copy_in(a.ptr(3), &mut b)?;
    let mut info = SigInfo::from_bytes(&b);
    if (info.code >= 0 || info.code == SI_TKILL) && tgid != t.tgid() {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    let th =
        t.k.task(tid)
            .filter(|h| h.tg.tgid == tgid)
            .ok_or(Errno::ESRCH)?;
    t.k.signal_task(&th, info);
    Ok(0)
}
