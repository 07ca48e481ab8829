//! Clocks, sleeps, interval timers, POSIX timers, timerfd and scheduler calls.

mod sched;
mod timers;

pub use sched::*;
pub use timers::*;

use std::time::{Duration, Instant};

use super::Args;
use crate::abi::{Errno, SysResult, Timespec, Timeval};
use crate::kernel::Task;

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const TIMER_ABSTIME: i32 = 1;

/// What a clock id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Host(libc::clockid_t),
    /// CPU time of a process or one thread (user + system, or user only).
    ProcessCpu {
        tgid: i32,
        user_only: bool,
    },
    ThreadCpu {
        tid: i32,
        user_only: bool,
    },
}

/// Decodes a clock id (the static ones and the pid/tid CPU clocks of clock_getcpuclockid).
fn clock(t: &Task, id: i32) -> Result<Clock, Errno> {
    Ok(match id {
        0 | 8 | 11 => Clock::Host(libc::CLOCK_REALTIME),
        1 => Clock::Host(libc::CLOCK_MONOTONIC),
        4 => Clock::Host(libc::CLOCK_MONOTONIC_RAW),
        5 => Clock::Host(libc::CLOCK_REALTIME_COARSE),
        6 => Clock::Host(libc::CLOCK_MONOTONIC_COARSE),
        7 | 9 => Clock::Host(libc::CLOCK_BOOTTIME),
        CLOCK_PROCESS_CPUTIME_ID => Clock::ProcessCpu {
            tgid: t.tgid(),
            user_only: false,
        },
        CLOCK_THREAD_CPUTIME_ID => Clock::ThreadCpu {
            tid: t.tid(),
            user_only: false,
        },
        _ if id < 0 => {
            // CPUCLOCK_PID = ~(id >> 3), CPUCLOCK_PERTHREAD = id & 4, CPUCLOCK_WHICH = id & 3.
            let pid = !(id >> 3);
            let which = id & 3;
            if which == 3 {
                return Err(Errno::EINVAL);
            }
            let user_only = which == 1;
            if id & 4 != 0 {
                let tid = if pid == 0 { t.tid() } else { pid };
                let th = t.k.task(tid).ok_or(Errno::EINVAL)?;
                if th.tg.tgid != t.tgid() {
                    return Err(Errno::EINVAL);
                }
                Clock::ThreadCpu { tid, user_only }
            } else {
                let tgid = if pid == 0 { t.tgid() } else { pid };
                t.k.group(tgid).ok_or(Errno::EINVAL)?;
                Clock::ProcessCpu { tgid, user_only }
            }
        }
        _ => return Err(Errno::EINVAL),
    })
}

fn ts_of(d: Duration) -> Timespec {
    Timespec {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nsec: i64::from(d.subsec_nanos()),
    }
}

fn tv_of(d: Duration) -> Timeval {
    Timeval {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        usec: i64::from(d.subsec_micros()),
    }
}

/// A timespec the caller already validated (non-negative, nsec below a second).
fn dur_ts(ts: Timespec) -> Duration {
    Duration::new(
        u64::try_from(ts.sec).unwrap_or(0),
        u32::try_from(ts.nsec).unwrap_or(0),
    )
}

fn dur_tv(tv: Timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.usec).unwrap_or(0))
}

fn ts_valid(ts: &Timespec) -> bool {
    ts.sec >= 0 && (0..1_000_000_000).contains(&ts.nsec)
}

fn tv_valid(tv: &Timeval) -> bool {
    tv.sec >= 0 && (0..1_000_000).contains(&tv.usec)
}

/// The current value of a clock.
fn clock_now(t: &Task, c: Clock) -> Duration {
    let ns = |(u, s): (u64, u64), user_only: bool| {
        Duration::from_nanos(if user_only { u } else { u.saturating_add(s) })
    };
    match c {
        Clock::Host(id) => {
            let (sec, nsec) = crate::sys::clock_gettime(id);
            dur_ts(Timespec { sec, nsec })
        }
        Clock::ProcessCpu { tgid, user_only } => {
            t.k.group(tgid)
                .map(|g| ns(g.cpu_time(), user_only))
                .unwrap_or_default()
        }
        Clock::ThreadCpu { tid, user_only } => {
            t.k.task(tid)
                .map(|h| {
                    let u = h.utime_ns.load(std::sync::atomic::Ordering::Relaxed);
                    let s = h.stime_ns.load(std::sync::atomic::Ordering::Relaxed);
                    ns((u, s), user_only)
                })
                .unwrap_or_default()
        }
    }
}

fn now(t: &Task, id: i32) -> Result<Timespec, Errno> {
    Ok(ts_of(clock_now(t, clock(t, id)?)))
}

/// The sentry instant at which clock `c` reads `target` (now if already past).
fn instant_at(t: &Task, c: Clock, target: Duration) -> Instant {
    Instant::now() + target.saturating_sub(clock_now(t, c))
}

pub fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ts = now(t, a.i32(0))?;
    t.mm.write_obj(a.ptr(1), &ts)?;
    Ok(0)
}

pub fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let res = match clock(t, a.i32(0))? {
        Clock::Host(libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE) => 4_000_000,
        _ => 1,
    };
    if a.ptr(1) != 0 {
        t.mm.write_obj(a.ptr(1), &Timespec { sec: 0, nsec: res })?;
    }
    Ok(0)
}

/// clock_settime(2). Only CLOCK_REALTIME and the CPU clocks are settable, and the sandbox
/// may set neither (no CAP_SYS_TIME): EPERM after the checks Linux makes first.
pub fn sys_clock_settime(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    let c = clock(t, id)?;
    let settable = id == CLOCK_REALTIME || id < 0;
    if !settable {
        return Err(Errno::EINVAL);
    }
    let ts: Timespec = t.mm.read_obj(a.ptr(1))?;
    if matches!(c, Clock::Host(_)) && !ts_valid(&ts) {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

pub fn sys_gettimeofday(t: &mut Task, a: &Args) -> SysResult {
    if a.ptr(0) != 0 {
        let ts = now(t, 0)?;
        t.mm.write_obj(
            a.ptr(0),
            &Timeval {
                sec: ts.sec,
                usec: ts.nsec / 1000,
            },
        )?;
    }
    if a.ptr(1) != 0 {
        t.mm.write_obj(a.ptr(1), &[0i32, 0i32])?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut Task, a: &Args) -> SysResult {
    let ts = now(t, 0)?;
    if a.ptr(0) != 0 {
        t.mm.write_obj(a.ptr(0), &ts.sec)?;
    }
    Ok(ts.sec as u64)
}

/// Sleeps until `deadline`; on a signal, writes the time left to `rem`.
fn sleep_until(t: &mut Task, deadline: Instant, rem: u64) -> SysResult {
    let r: Result<(), Errno> = t.block(&[], Some(deadline), || Ok(None));
    match r {
        Err(Errno::ETIMEDOUT) => Ok(0),
        Err(Errno::ERESTARTSYS) => {
            if rem != 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                t.mm.write_obj(rem, &ts_of(left))?;
            }
            Err(Errno::EINTR)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(0),
    }
}

fn read_ts(t: &Task, p: u64) -> Result<Timespec, Errno> {
    let ts: Timespec = t.mm.read_obj(p)?;
    if !ts_valid(&ts) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

pub fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let ts = read_ts(t, a.ptr(0))?;
    let d = Instant::now() + dur_ts(ts);
    sleep_until(t, d, a.ptr(1))
}

pub fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let (id, flags) = (a.i32(0), a.i32(1));
    let c = clock(t, id)?;
    match id {
        CLOCK_THREAD_CPUTIME_ID | 4..=6 | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM => {
            return Err(Errno::EOPNOTSUPP)
        }
        _ => {}
    }
    let ts = read_ts(t, a.ptr(2))?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        instant_at(t, c, dur_ts(ts))
    } else {
        Instant::now() + dur_ts(ts)
    };
    let rem = if flags & TIMER_ABSTIME != 0 {
        0
    } else {
        a.ptr(3)
    };
    sleep_until(t, deadline, rem)
}
