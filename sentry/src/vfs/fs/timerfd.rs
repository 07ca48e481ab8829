//! timerfd: a timer whose expirations are read as a count.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::abi::Errno;
use crate::kernel::timer::Timer;
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;

/// The part the timer thread updates.
struct Shared {
    /// Expirations since the last read or set.
    ticks: Mutex<u64>,
    queue: WaitQueue,
}

impl Shared {
    fn ticks(&self) -> std::sync::MutexGuard<'_, u64> {
        self.ticks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct TimerFd {
    shared: Arc<Shared>,
    timer: Arc<Timer>,
    clock: i32,
}

impl TimerFd {
    pub fn new(clock: i32) -> TimerFd {
        let shared = Arc::new(Shared {
            ticks: Mutex::new(0),
            queue: WaitQueue::default(),
        });
        let weak = Arc::downgrade(&shared);
        let timer = Timer::new(Box::new(move |n| {
            let Some(s) = weak.upgrade() else {
                return false;
            };
            {
                let mut t = s.ticks();
                *t = t.saturating_add(n);
            }
            s.queue.notify(POLLIN | POLLRDNORM);
            true
        }));
        TimerFd {
            shared,
            timer,
            clock,
        }
    }

    /// The timerfd behind an open file, if it is one.
    pub fn of(f: &File) -> Option<&TimerFd> {
        f.ops.as_any()?.downcast_ref::<TimerFd>()
    }

    pub fn clock(&self) -> i32 {
        self.clock
    }

    /// Arms (or disarms, with `None`) the timer; the expiration count restarts from zero.
    /// Returns the previous (time left, interval).
    pub fn set(&self, deadline: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        *self.shared.ticks() = 0;
        self.timer.set(deadline, interval)
    }

    pub fn get(&self) -> (Duration, Duration) {
        self.timer.get()
    }
}

impl FileOps for TimerFd {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = io.block(&self.shared.queue, || {
            let mut t = self.shared.ticks();
            Ok((*t > 0).then(|| std::mem::take(&mut *t)))
        })?;
        buf[..8].copy_from_slice(&n.to_ne_bytes());
        Ok(8)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        if *self.shared.ticks() > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.shared.queue)
    }
    fn release(&self) {
        self.timer.cancel();
    }
    fn fdinfo(&self) -> String {
        let (left, interval) = self.get();
        format!(
            "clockid: {}\nticks: {}\nsettime flags: 00\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.clock,
            *self.shared.ticks(),
            left.as_secs(),
            left.subsec_nanos(),
            interval.as_secs(),
            interval.subsec_nanos()
        )
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
