//! Interval timers (setitimer, alarm), POSIX timers and timerfd.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{
    clock, dur_ts, dur_tv, instant_at, ts_of, ts_valid, tv_of, tv_valid, CLOCK_BOOTTIME,
    CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_ALARM, TIMER_ABSTIME,
};
use crate::abi::signal::*;
use crate::abi::{Errno, Pod, SysResult, Timespec, Timeval};
use crate::kernel::signal::{SigInfo, SigQueue};
use crate::kernel::timer::{Fire, PosixTimer, Timer};
use crate::kernel::{Kernel, Task, TaskHandle, ThreadGroup};
use crate::syscalls::Args;
use crate::vfs::file::{File, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::vfs::fs::timerfd::TimerFd;

// ---- Interval timers and alarm ----

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Itimerval {
    interval: Timeval,
    value: Timeval,
}
impl Pod for Itimerval {}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Itimerspec {
    interval: Timespec,
    value: Timespec,
}
impl Pod for Itimerspec {}

impl Itimerspec {
    fn of((left, interval): (Duration, Duration)) -> Itimerspec {
        Itimerspec {
            interval: ts_of(interval),
            value: ts_of(left),
        }
    }
}

/// The signal each interval timer sends: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
const ITIMER_SIGNALS: [i32; 3] = [SIGALRM, SIGVTALRM, SIGPROF];

/// The interval timer `which` of the caller's process, made on first use. VIRTUAL and PROF
/// count wall time, an upper bound of the CPU time they should count.
fn itimer(t: &Task, which: usize) -> Arc<Timer> {
    let mut its = t.h.tg.timers.itimers();
    its[which]
        .get_or_insert_with(|| {
            let tg = Arc::downgrade(&t.h.tg);
            let k = Arc::downgrade(&t.k);
            let sig = ITIMER_SIGNALS[which];
            Timer::new(Box::new(move |_| {
                let (Some(tg), Some(k)) = (tg.upgrade(), k.upgrade()) else {
                    return false;
                };
                if tg.lock().exit.is_some() {
                    return false;
                }
                k.signal_group(&tg, SigInfo::kernel(sig));
                true
            }))
        })
        .clone()
}

fn itimer_which(which: i32) -> Result<usize, Errno> {
    usize::try_from(which)
        .ok()
        .filter(|w| *w < ITIMER_SIGNALS.len())
        .ok_or(Errno::EINVAL)
}

/// An interval timer's value as getitimer reports it.
fn itimerval_of((left, interval): (Duration, Duration)) -> Itimerval {
    Itimerval {
        interval: tv_of(interval),
        value: tv_of(left),
    }
}

pub fn sys_alarm(t: &mut Task, a: &Args) -> SysResult {
    let secs = a.u32(0);
    let deadline = (secs != 0).then(|| Instant::now() + Duration::from_secs(u64::from(secs)));
    let (left, _) = itimer(t, 0).set(deadline, Duration::ZERO);
    // Linux rounds the time left to the nearest second, and never reports 0 for an armed one.
    let (s, us) = (left.as_secs(), left.subsec_micros());
    Ok(s + u64::from((s == 0 && us != 0) || us >= 500_000))
}

/// setitimer(2). A NULL new value disarms, as Linux still accepts. Disarming ITIMER_REAL
/// clears its interval; VIRTUAL and PROF keep theirs (Linux's `set_cpu_itimer`).
pub fn sys_setitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = itimer_which(a.i32(0))?;
    let new: Itimerval = if a.ptr(1) != 0 {
        t.mm.read_obj(a.ptr(1))?
    } else {
        Itimerval::default()
    };
    if !tv_valid(&new.value) || !tv_valid(&new.interval) {
        return Err(Errno::EINVAL);
    }
    let value = dur_tv(new.value);
    let deadline = (!value.is_zero()).then(|| Instant::now() + value);
    let interval = if deadline.is_none() && which == 0 {
        Duration::ZERO
    } else {
        dur_tv(new.interval)
    };
    let old = itimer(t, which).set(deadline, interval);
    if a.ptr(2) != 0 {
        t.mm.write_obj(a.ptr(2), &itimerval_of(old))?;
    }
    Ok(0)
}

pub fn sys_getitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = itimer_which(a.i32(0))?;
    let cur = itimer(t, which).get();
    t.mm.write_obj(a.ptr(1), &itimerval_of(cur))?;
    Ok(0)
}

// ---- POSIX timers ----

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;

/// `struct sigevent` (64 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [i32; 11],
}
impl Pod for SigEvent {}

/// Where a POSIX timer's signal goes.
struct Notify {
    k: Weak<Kernel>,
    tg: Weak<ThreadGroup>,
    /// SIGEV_THREAD_ID's thread.
    thread: Option<Weak<TaskHandle>>,
    /// 0 for SIGEV_NONE.
    signo: i32,
    id: i32,
    value: u64,
    overrun: Arc<Mutex<i32>>,
}

/// Counts `n` more expirations on the timer's signal if it is still queued.
fn add_overrun(q: &mut SigQueue, id: i32, n: u64, overrun: &Mutex<i32>) -> bool {
    let Some(info) = q
        .infos
        .iter_mut()
        .find(|i| i.code == SI_TIMER && i.pid == id)
    else {
        return false;
    };
    let total = u64::from(info.uid).saturating_add(n).min(i32::MAX as u64);
    info.uid = u32::try_from(total).unwrap_or(i32::MAX as u32);
    *overrun.lock().unwrap_or_else(|e| e.into_inner()) = info.uid as i32;
    true
}

impl Notify {
    /// On expiry: queue the signal, or count overruns while the previous one is pending.
    fn fire(self) -> Fire {
        Box::new(move |n| {
            let (Some(k), Some(tg)) = (self.k.upgrade(), self.tg.upgrade()) else {
                return false;
            };
            if tg.lock().exit.is_some() {
                return false;
            }
            if self.signo == 0 {
                return true;
            }
            let thread = match &self.thread {
                Some(w) => match w.upgrade() {
                    Some(h) => Some(h),
                    None => return true,
                },
                None => None,
            };
            let queued = match &thread {
                Some(h) => add_overrun(&mut h.sig().pending, self.id, n, &self.overrun),
                None => add_overrun(&mut tg.lock().pending, self.id, n, &self.overrun),
            };
            if queued {
                return true;
            }
            let over = i32::try_from(n - 1).unwrap_or(i32::MAX);
            *self.overrun.lock().unwrap_or_else(|e| e.into_inner()) = over;
            let info = SigInfo {
                signo: self.signo,
                code: SI_TIMER,
                pid: self.id,
                uid: over as u32,
                status: self.value as i64,
                ..SigInfo::default()
            };
            match thread {
                Some(h) => k.signal_task(&h, info),
                None => k.signal_group(&tg, info),
            }
            true
        })
    }
}

/// timer_create(2). Clocks without timers (the raw and coarse ones) are EOPNOTSUPP, the alarm
/// clocks too (no RTC wake-ups in the sandbox); CPU-time clocks count wall time.
pub fn sys_timer_create(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    clock(t, id)?;
    if matches!(id, 4..=6 | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM) {
        return Err(Errno::EOPNOTSUPP);
    }
    let sev = if a.ptr(1) != 0 {
        Some(t.mm.read_obj::<SigEvent>(a.ptr(1))?)
    } else {
        None
    };
    let mut thread = None;
    if let Some(sev) = &sev {
        match sev.notify {
            SIGEV_NONE => {}
            SIGEV_SIGNAL | SIGEV_THREAD | SIGEV_THREAD_ID => {
                if !(1..=64).contains(&sev.signo) {
                    return Err(Errno::EINVAL);
                }
                if sev.notify == SIGEV_THREAD_ID {
                    let h = t.k.task(sev.tid).ok_or(Errno::EINVAL)?;
                    if h.tg.tgid != t.tgid() {
                        return Err(Errno::EINVAL);
                    }
                    thread = Some(Arc::downgrade(&h));
                }
            }
            _ => return Err(Errno::EINVAL),
        }
    }
    let timers = &t.h.tg.timers;
    let mut posix = timers.posix();
    let tid = timers.alloc_id(&posix).ok_or(Errno::EAGAIN)?;
    let (signo, value) = match &sev {
        None => (SIGALRM, tid as u64),
        Some(s) if s.notify == SIGEV_NONE => (0, s.value),
        Some(s) => (s.signo, s.value),
    };
    let overrun = Arc::new(Mutex::new(0));
    let notify = Notify {
        k: Arc::downgrade(&t.k),
        tg: Arc::downgrade(&t.h.tg),
        thread,
        signo,
        id: tid,
        value,
        overrun: overrun.clone(),
    };
    posix.insert(
        tid,
        PosixTimer {
            timer: Timer::new(notify.fire()),
            clock: id,
            overrun,
        },
    );
    drop(posix);
    if let Err(e) = t.mm.write_obj(a.ptr(2), &tid) {
        timers.posix().remove(&tid);
        return Err(e);
    }
    Ok(0)
}

fn posix_timer(t: &Task, id: i32) -> Result<PosixTimer, Errno> {
    t.h.tg.timers.posix().get(&id).cloned().ok_or(Errno::EINVAL)
}

/// Reads and checks a new `struct itimerspec`; returns (first expiry, interval).
fn read_itimerspec(
    t: &Task,
    p: u64,
    clock_id: i32,
    abs: bool,
) -> Result<(Option<Instant>, Duration), Errno> {
    if p == 0 {
        return Err(Errno::EINVAL);
    }
    let v: Itimerspec = t.mm.read_obj(p)?;
    if !ts_valid(&v.value) || !ts_valid(&v.interval) {
        return Err(Errno::EINVAL);
    }
    let value = dur_ts(v.value);
    if value.is_zero() {
        return Ok((None, dur_ts(v.interval)));
    }
    let deadline = if abs {
        instant_at(t, clock(t, clock_id)?, value)
    } else {
        Instant::now() + value
    };
    Ok((Some(deadline), dur_ts(v.interval)))
}

pub fn sys_timer_settime(t: &mut Task, a: &Args) -> SysResult {
    let p = posix_timer(t, a.i32(0))?;
    let abs = a.i32(1) & TIMER_ABSTIME != 0;
    let (deadline, interval) = read_itimerspec(t, a.ptr(2), p.clock, abs)?;
    // A disarmed POSIX timer has no interval (Linux's common_timer_set).
    let interval = if deadline.is_some() {
        interval
    } else {
        Duration::ZERO
    };
    let old = p.timer.set(deadline, interval);
    if a.ptr(3) != 0 {
        t.mm.write_obj(a.ptr(3), &Itimerspec::of(old))?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut Task, a: &Args) -> SysResult {
    let p = posix_timer(t, a.i32(0))?;
    t.mm.write_obj(a.ptr(1), &Itimerspec::of(p.timer.get()))?;
    Ok(0)
}

pub fn sys_timer_getoverrun(t: &mut Task, a: &Args) -> SysResult {
    let p = posix_timer(t, a.i32(0))?;
    let n = *p.overrun.lock().unwrap_or_else(|e| e.into_inner());
    Ok(u64::from(n as u32))
}

pub fn sys_timer_delete(t: &mut Task, a: &Args) -> SysResult {
    let p =
        t.h.tg
            .timers
            .posix()
            .remove(&a.i32(0))
            .ok_or(Errno::EINVAL)?;
    p.timer.cancel();
    Ok(0)
}

// ---- timerfd ----

const TFD_TIMER_ABSTIME: u32 = 1;
const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

/// timerfd_create(2): CLOCK_REALTIME, MONOTONIC and BOOTTIME; the alarm clocks need
/// CAP_WAKE_ALARM, which the sandbox lacks.
pub fn sys_timerfd_create(t: &mut Task, a: &Args) -> SysResult {
    let (id, flags) = (a.i32(0), a.u32(1));
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0
        || !matches!(
            id,
            CLOCK_REALTIME
                | CLOCK_MONOTONIC
                | CLOCK_BOOTTIME
                | CLOCK_REALTIME_ALARM
                | CLOCK_BOOTTIME_ALARM
        )
    {
        return Err(Errno::EINVAL);
    }
    if matches!(id, CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM) {
        return Err(Errno::EPERM);
    }
    let inode = crate::vfs::fs::host::AnonInode::make(0o600, 0);
    let f = File::new(
        Arc::new(TimerFd::new(id)),
        Some(inode),
        None,
        O_RDWR | (flags & O_NONBLOCK),
    );
    t.install(f, flags & O_CLOEXEC != 0).map(|fd| fd as u64)
}

fn timerfd(t: &Task, fd: i32) -> Result<Arc<File>, Errno> {
    let f = t.file(fd)?;
    if TimerFd::of(&f).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

pub fn sys_timerfd_settime(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(1);
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 || a.ptr(2) == 0 {
        return Err(Errno::EINVAL);
    }
    let f = timerfd(t, a.fd(0))?;
    let tfd = TimerFd::of(&f).ok_or(Errno::EINVAL)?;
    let abs = flags & TFD_TIMER_ABSTIME != 0;
    let (deadline, interval) = read_itimerspec(t, a.ptr(2), tfd.clock(), abs)?;
    let old = tfd.set(deadline, interval);
    if a.ptr(3) != 0 {
        t.mm.write_obj(a.ptr(3), &Itimerspec::of(old))?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut Task, a: &Args) -> SysResult {
    let f = timerfd(t, a.fd(0))?;
    let tfd = TimerFd::of(&f).ok_or(Errno::EINVAL)?;
    t.mm.write_obj(a.ptr(1), &Itimerspec::of(tfd.get()))?;
    Ok(0)
}
