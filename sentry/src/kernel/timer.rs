//! Kernel timers: one-shot or periodic, firing a callback from a sentry thread.
//!
//! Each arming starts a thread that sleeps until the deadline (or until the timer is re-armed
//! or disarmed, which ends it), calls the callback with the number of expirations that passed
//! (1 + overruns when it woke late) and, for a periodic timer, goes on with the next period.
//! Used by interval timers (setitimer/alarm), POSIX timers and timerfd.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a timer does on expiry: called with the expirations count; `false` stops the timer
/// (its owner is gone).
pub type Fire = Box<dyn Fn(u64) -> bool + Send + Sync>;

#[derive(Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    /// Bumped by every set/cancel: a thread of an older arming exits.
    gen: u64,
}

/// One timer.
pub struct Timer {
    st: Mutex<State>,
    cv: Condvar,
    fire: Fire,
}

impl Timer {
    pub fn new(fire: Fire) -> Arc<Timer> {
        Arc::new(Timer {
            st: Mutex::new(State::default()),
            cv: Condvar::new(),
            fire,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn value(s: &State) -> (Duration, Duration) {
        let left = s
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        (left, s.interval)
    }

    /// Time to the next expiry (zero if disarmed) and the interval.
    pub fn get(&self) -> (Duration, Duration) {
        Self::value(&self.lock())
    }

    /// Arms the timer to expire at `deadline` (disarms it if `None`), then every `interval`
    /// if not zero. A disarmed timer keeps the interval it is given (timerfd and the CPU
    /// interval timers report it). Returns the previous (time left, interval).
    pub fn set(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        interval: Duration,
    ) -> (Duration, Duration) {
        let mut s = self.lock();
        let old = Self::value(&s);
        s.gen = s.gen.wrapping_add(1);
        s.deadline = deadline;
        s.interval = interval;
        let gen = s.gen;
        drop(s);
        self.cv.notify_all();
        if deadline.is_some() {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("timer".into())
                .stack_size(256 << 10)
                .spawn(move || me.run(gen));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a timer thread");
            }
        }
        old
    }

    /// Disarms the timer; returns the previous (time left, interval).
    pub fn cancel(self: &Arc<Self>) -> (Duration, Duration) {
        self.set(None, Duration::ZERO)
    }

    /// The thread of one arming.
    fn run(&self, gen: u64) {
        loop {
            let mut s = self.lock();
            let n = loop {
                if s.gen != gen {
                    return;
                }
                let Some(d) = s.deadline else { return };
                let now = Instant::now();
                if now >= d {
                    if s.interval.is_zero() {
                        s.deadline = None;
                        break 1;
                    }
                    // Expirations missed while late count as overruns.
                    let late = (now - d).as_nanos() / s.interval.as_nanos();
                    let n = u64::try_from(late).unwrap_or(u64::MAX - 1) + 1;
                    let step = u32::try_from(n).unwrap_or(u32::MAX);
                    s.deadline = d.checked_add(s.interval.saturating_mul(step));
                    break n;
                }
                s = self
                    .cv
                    .wait_timeout(s, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            };
            let periodic = s.deadline.is_some();
            drop(s);
            if !(self.fire)(n) {
                let mut s = self.lock();
                if s.gen == gen {
                    s.deadline = None;
                }
                return;
            }
            if !periodic {
                return;
            }
        }
    }
}

/// A POSIX timer (timer_create).
#[derive(Clone)]
pub struct PosixTimer {
    pub timer: Arc<Timer>,
    pub clock: i32,
    /// Overruns of the expiry whose signal is queued or was last queued.
    pub overrun: Arc<Mutex<i32>>,
}

/// A process's timers: ITIMER_REAL/VIRTUAL/PROF and its POSIX timers.
#[derive(Default)]
pub struct ProcTimers {
    pub itimers: Mutex<[Option<Arc<Timer>>; 3]>,
    pub posix: Mutex<BTreeMap<i32, PosixTimer>>,
    next_id: AtomicI32,
}

impl ProcTimers {
    pub fn posix(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, PosixTimer>> {
        self.posix.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The next free POSIX timer id, allocated in sequence as Linux does (None if all taken).
    pub fn alloc_id(&self, used: &BTreeMap<i32, PosixTimer>) -> Option<i32> {
        for _ in 0..=used.len() {
            let id = self
                .next_id
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                    Some(i.checked_add(1).unwrap_or(0))
                })
                .unwrap_or(0);
            if !used.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }
    pub fn itimers(&self) -> std::sync::MutexGuard<'_, [Option<Arc<Timer>>; 3]> {
        self.itimers.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Disarms every timer (the process exits).
    pub fn cancel_all(&self) {
        let its: Vec<Arc<Timer>> = self.itimers().iter().flatten().cloned().collect();
        for t in its {
            t.cancel();
        }
        self.delete_posix();
    }
    /// Deletes the POSIX timers (execve keeps only the interval timers).
    pub fn delete_posix(&self) {
        let posix: Vec<Arc<Timer>> = std::mem::take(&mut *self.posix())
            .into_values()
            .map(|p| p.timer)
            .collect();
        for t in posix {
            t.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn periodic_timer_counts_expirations_and_stops_when_cancelled() {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let t = Timer::new(Box::new(move |n| {
            c.fetch_add(n, Ordering::SeqCst);
            true
        }));
        let now = Instant::now();
        t.set(
            Some(now + Duration::from_millis(5)),
            Duration::from_millis(5),
        );
        std::thread::sleep(Duration::from_millis(60));
        let (left, interval) = t.cancel();
        assert!(left <= Duration::from_millis(5));
        assert_eq!(interval, Duration::from_millis(5));
        let n = count.load(Ordering::SeqCst);
        assert!(n >= 8, "{n} expirations");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count.load(Ordering::SeqCst), n);
        assert_eq!(t.get(), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn one_shot_timer_disarms_after_firing() {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let t = Timer::new(Box::new(move |n| {
            c.fetch_add(n, Ordering::SeqCst);
            true
        }));
        t.set(Some(Instant::now()), Duration::ZERO);
        let end = Instant::now() + Duration::from_secs(5);
        while count.load(Ordering::SeqCst) == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(t.get().0, Duration::ZERO);
    }
}
