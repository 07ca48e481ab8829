//! Scheduler calls: policies, priorities, nice values and CPU affinity. The sentry records
//! them per task (the host schedules its threads).

use std::sync::Arc;

use crate::abi::{Errno, SysResult, Timespec};
use crate::kernel::{SchedAttr, Task, TaskHandle, ThreadGroup};
use crate::syscalls::Args;

const SCHED_OTHER: i32 = 0;
const SCHED_FIFO: i32 = 1;
const SCHED_RR: i32 = 2;
const SCHED_BATCH: i32 = 3;
const SCHED_IDLE: i32 = 5;
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// The task a scheduler call names: 0 is the caller; negative is EINVAL, unknown ESRCH.
fn sched_target(t: &Task, pid: i32) -> Result<Arc<TaskHandle>, Errno> {
    match pid {
        0 => Ok(t.h.clone()),
        p if p < 0 => Err(Errno::EINVAL),
        p => t.k.task(p).ok_or(Errno::ESRCH),
    }
}

fn sched_of(h: &TaskHandle) -> std::sync::MutexGuard<'_, SchedAttr> {
    h.sched.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `policy` with `prio` is valid (Linux: 1..=99 for real-time, 0 otherwise).
fn sched_valid(policy: i32, prio: i32) -> bool {
    match policy {
        SCHED_FIFO | SCHED_RR => (1..=99).contains(&prio),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => prio == 0,
        _ => false,
    }
}

pub fn sys_sched_yield(_t: &mut Task, _a: &Args) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

/// sched_setscheduler(2): the policy is recorded (the sentry does not schedule by it).
/// Real-time policies need root, as without CAP_SYS_NICE and with RLIMIT_RTPRIO 0.
pub fn sys_sched_setscheduler(t: &mut Task, a: &Args) -> SysResult {
    let (pid, policy) = (a.i32(0), a.i32(1));
    if a.ptr(2) == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = t.mm.read_obj(a.ptr(2))?;
    let h = sched_target(t, pid)?;
    let reset_on_fork = policy & SCHED_RESET_ON_FORK != 0;
    let policy = policy & !SCHED_RESET_ON_FORK;
    if !sched_valid(policy, prio) {
        return Err(Errno::EINVAL);
    }
    if matches!(policy, SCHED_FIFO | SCHED_RR) && t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut s = sched_of(&h);
    s.policy = policy;
    s.priority = prio;
    s.reset_on_fork = reset_on_fork;
    Ok(0)
}

pub fn sys_sched_setparam(t: &mut Task, a: &Args) -> SysResult {
    if a.ptr(1) == 0 || a.i32(0) < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = t.mm.read_obj(a.ptr(1))?;
    let h = sched_target(t, a.i32(0))?;
    let mut s = sched_of(&h);
    if !sched_valid(s.policy, prio) {
        return Err(Errno::EINVAL);
    }
    s.priority = prio;
    Ok(0)
}

pub fn sys_sched_getparam(t: &mut Task, a: &Args) -> SysResult {
    if a.ptr(1) == 0 {
        return Err(Errno::EINVAL);
    }
    let h = sched_target(t, a.i32(0))?;
    let prio = sched_of(&h).priority;
    t.mm.write_obj(a.ptr(1), &prio)?;
    Ok(0)
}

pub fn sys_sched_getscheduler(t: &mut Task, a: &Args) -> SysResult {
    let h = sched_target(t, a.i32(0))?;
    let s = *sched_of(&h);
    let flag = if s.reset_on_fork {
        SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok(u64::from((s.policy | flag) as u32))
}

pub fn sys_sched_get_priority_max(_t: &mut Task, a: &Args) -> SysResult {
    match a.i32(0) {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_min(_t: &mut Task, a: &Args) -> SysResult {
    match a.i32(0) {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_rr_get_interval(2): 100 ms for SCHED_RR, 0 otherwise (as Linux reports for a
/// SCHED_OTHER task alone on its CPU).
pub fn sys_sched_rr_get_interval(t: &mut Task, a: &Args) -> SysResult {
    let h = sched_target(t, a.i32(0))?;
    let rr = sched_of(&h).policy == SCHED_RR;
    let ts = Timespec {
        sec: 0,
        nsec: if rr { 100_000_000 } else { 0 },
    };
    t.mm.write_obj(a.ptr(1), &ts)?;
    Ok(0)
}

/// The CPUs the sandbox may use, as a mask of at most 64.
fn online_cpus() -> u64 {
    let n = crate::sys::host_cpus().min(64);
    if n == 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// sched_setaffinity(2): the mask is recorded per task and read back by sched_getaffinity;
/// CPUs past the available ones are dropped and an empty result is EINVAL.
pub fn sys_sched_setaffinity(t: &mut Task, a: &Args) -> SysResult {
    let len = a.usize(1).min(8);
    let mut b = [0u8; 8];
    t.mm.copy_in(a.ptr(2), &mut b[..len])?;
    let h = sched_target(t, a.i32(0))?;
    let mask = u64::from_le_bytes(b) & online_cpus();
    if mask == 0 {
        return Err(Errno::EINVAL);
    }
    sched_of(&h).affinity = mask;
    Ok(0)
}

pub fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    let size = a.usize(1);
    if size < 8 || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let h = sched_target(t, a.i32(0))?;
    let set = sched_of(&h).affinity;
    let mask = if set == 0 { online_cpus() } else { set };
    t.mm.write_obj(a.ptr(2), &mask)?;
    Ok(8)
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;

/// The tasks getpriority/setpriority name (PRIO_PROCESS names one thread, as in Linux).
fn prio_targets(t: &Task, which: i32, who: i32) -> Result<Vec<Arc<TaskHandle>>, Errno> {
    Ok(match which {
        PRIO_PROCESS => match who {
            0 => vec![t.h.clone()],
            w => t.k.task(w).into_iter().collect(),
        },
        PRIO_PGRP => {
            let pgid = match who {
                0 => t.h.tg.lock().pgid,
                w => w,
            };
            let groups: Vec<Arc<ThreadGroup>> = t.k.procs().groups.values().cloned().collect();
            groups
                .iter()
                .filter(|g| {
                    let st = g.lock();
                    st.pgid == pgid && st.exit.is_none()
                })
                .flat_map(|g| g.lock().threads.clone())
                .collect()
        }
        PRIO_USER => {
            // Every task in the sandbox runs with the same credentials here.
            let uid = match who {
                0 => t.creds.uid,
                w => w.cast_unsigned(),
            };
            if uid != t.creds.uid {
                Vec::new()
            } else {
                t.k.procs().tasks.values().cloned().collect()
            }
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// getpriority(2): the raw syscall returns 20 - nice of the highest-priority target.
pub fn sys_getpriority(t: &mut Task, a: &Args) -> SysResult {
    let targets = prio_targets(t, a.i32(0), a.i32(1))?;
    let best = targets
        .iter()
        .map(|h| sched_of(h).nice)
        .min()
        .ok_or(Errno::ESRCH)?;
    Ok(u64::from((20 - best) as u32))
}

/// setpriority(2): nice values clamp to -20..=19; lowering one needs root.
pub fn sys_setpriority(t: &mut Task, a: &Args) -> SysResult {
    let targets = prio_targets(t, a.i32(0), a.i32(1))?;
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let nice = a.i32(2).clamp(-20, 19);
    for h in &targets {
        let mut s = sched_of(h);
        if nice < s.nice && t.creds.euid != 0 {
            return Err(Errno::EACCES);
        }
        s.nice = nice;
    }
    Ok(0)
}
