//! Clocks, sleeps, interval timers and scheduler queries.

use std::time::{Duration, Instant};

use super::Args;
use crate::abi::{Errno, SysResult, Timespec, Timeval};
use crate::kernel::Task;

fn clock_id(id: i32) -> Result<libc::clockid_t, Errno> {
    match id {
        0 | 5 | 8 | 11 => Ok(libc::CLOCK_REALTIME),
        1 | 4 | 6 | 7 | 9 => Ok(libc::CLOCK_MONOTONIC),
        2 | 3 => Ok(libc::CLOCK_MONOTONIC),
        _ if id < 0 => Ok(libc::CLOCK_MONOTONIC),
        _ => Err(Errno::EINVAL),
    }
}

fn now(t: &Task, id: i32) -> Result<Timespec, Errno> {
    if id == 2 || id == 3 {
        // Process / thread CPU time: the sandbox's uptime is a fair upper bound.
        let e = t.h.tg.lock().start.elapsed();
        return Ok(Timespec {
            sec: e.as_secs() as i64,
            nsec: i64::from(e.subsec_nanos()),
        });
    }
    let (sec, nsec) = crate::sys::clock_gettime(clock_id(id)?);
    Ok(Timespec { sec, nsec })
}

pub fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ts = now(t, a.i32(0))?;
    t.mm.write_obj(a.ptr(1), &ts)?;
    Ok(0)
}

pub fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    clock_id(a.i32(0))?;
    if a.ptr(1) != 0 {
        t.mm.write_obj(a.ptr(1), &Timespec { sec: 0, nsec: 1 })?;
    }
    Ok(0)
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
                t.mm.write_obj(
                    rem,
                    &Timespec {
                        sec: left.as_secs() as i64,
                        nsec: i64::from(left.subsec_nanos()),
                    },
                )?;
            }
            Err(Errno::EINTR)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(0),
    }
}

fn read_ts(t: &Task, p: u64) -> Result<Timespec, Errno> {
    let ts: Timespec = t.mm.read_obj(p)?;
    if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

pub fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let ts = read_ts(t, a.ptr(0))?;
    let d = Instant::now() + Duration::new(ts.sec as u64, ts.nsec as u32);
    sleep_until(t, d, a.ptr(1))
}

pub fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let (id, flags) = (a.i32(0), a.i32(1));
    let ts = read_ts(t, a.ptr(2))?;
    let deadline = if flags & 1 != 0 {
        let cur = now(t, id)?;
        let target = Duration::new(ts.sec as u64, ts.nsec as u32);
        let nowd = Duration::new(cur.sec.max(0) as u64, cur.nsec as u32);
        Instant::now() + target.saturating_sub(nowd)
    } else {
        clock_id(id)?;
        Instant::now() + Duration::new(ts.sec as u64, ts.nsec as u32)
    };
    let rem = if flags & 1 != 0 { 0 } else { a.ptr(3) };
    sleep_until(t, deadline, rem)
}

pub fn sys_sched_yield(_t: &mut Task, _a: &Args) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

pub fn sys_sched_getparam(t: &mut Task, a: &Args) -> SysResult {
    t.mm.write_obj(a.ptr(1), &0i32)?;
    Ok(0)
}
pub fn sys_sched_getscheduler(_t: &mut Task, _a: &Args) -> SysResult {
    Ok(0)
}
pub fn sys_sched_get_priority(_t: &mut Task, a: &Args) -> SysResult {
    match a.i32(0) {
        1 | 2 => Ok(if a.i32(0) > 0 { 99 } else { 1 }),
        0 | 3 | 5 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
pub fn sys_sched_setaffinity(_t: &mut Task, _a: &Args) -> SysResult {
    Ok(0)
}
pub fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    let size = a.usize(1);
    if size < 8 || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(64);
    let mask: u64 = if cpus == 64 {
        u64::MAX
    } else {
        (1u64 << cpus) - 1
    };
    t.mm.write_obj(a.ptr(2), &mask)?;
    Ok(8)
}

/// ITIMER_REAL and alarm(2): a timer thread per arming sends SIGALRM.
fn arm_real(t: &Task, after: Option<Duration>) -> Duration {
    let tg = t.h.tg.clone();
    let k = t.k.clone();
    let mut slot = tg.alarm.lock().unwrap_or_else(|e| e.into_inner());
    let left = slot
        .as_ref()
        .map(|(d, _)| d.saturating_duration_since(Instant::now()))
        .unwrap_or_default();
    *slot = None;
    if let Some(after) = after.filter(|d| !d.is_zero()) {
        let deadline = Instant::now() + after;
        let gen = tg
            .alarm_gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        *slot = Some((deadline, gen));
        let tg2 = tg.clone();
        let _ = std::thread::Builder::new()
            .name("alarm".into())
            .spawn(move || {
                std::thread::sleep(after);
                let mut s = tg2.alarm.lock().unwrap_or_else(|e| e.into_inner());
                if s.is_some_and(|(_, g)| g == gen) {
                    *s = None;
                    drop(s);
                    k.signal_group(
                        &tg2,
                        crate::kernel::signal::SigInfo::kernel(crate::abi::signal::SIGALRM),
                    );
                }
            });
    } else {
        tg.alarm_gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    left
}

pub fn sys_alarm(t: &mut Task, a: &Args) -> SysResult {
    let secs = a.u32(0);
    let left = arm_real(t, Some(Duration::from_secs(u64::from(secs))));
    Ok(left.as_secs() + u64::from(left.subsec_nanos() > 0 && left.as_secs() == 0))
}

pub fn sys_setitimer(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) != 0 {
        return Err(Errno::EINVAL);
    }
    let new = if a.ptr(1) != 0 {
        let v: [Timeval; 2] = [t.mm.read_obj(a.ptr(1))?, t.mm.read_obj(a.ptr(1) + 16)?];
        Some(
            Duration::from_secs(v[1].sec.max(0) as u64)
                + Duration::from_micros(v[1].usec.max(0) as u64),
        )
    } else {
        None
    };
    let left = arm_real(t, new);
    if a.ptr(2) != 0 {
        let old = [
            Timeval::default(),
            Timeval {
                sec: left.as_secs() as i64,
                usec: i64::from(left.subsec_micros()),
            },
        ];
        t.mm.write_obj(a.ptr(2), &old[0])?;
        t.mm.write_obj(a.ptr(2) + 16, &old[1])?;
    }
    Ok(0)
}

pub fn sys_getitimer(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) != 0 {
        return Err(Errno::EINVAL);
    }
    let left =
        t.h.tg
            .alarm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(d, _)| d.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
    t.mm.write_obj(a.ptr(1), &Timeval::default())?;
    t.mm.write_obj(
        a.ptr(1) + 16,
        &Timeval {
            sec: left.as_secs() as i64,
            usec: i64::from(left.subsec_micros()),
        },
    )?;
    Ok(0)
}
