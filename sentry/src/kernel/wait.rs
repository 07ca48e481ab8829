//! Sleeping and waking: each task has one [`Waiter`]; objects that tasks wait for hold a
//! [`WaitQueue`] of the waiters interested in them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

/// A task's wake-up counter: waking bumps it, sleeping waits until it moves.
#[derive(Default)]
pub struct Waiter {
    seq: Mutex<u64>,
    cv: Condvar,
}

impl Waiter {
    pub fn seq(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn wake(&self) {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *s += 1;
        self.cv.notify_all();
    }
    /// Sleeps until the counter differs from `seen` or `deadline` passes; true if woken.
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        while *s == seen {
            match deadline {
                None => s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    s = self
                        .cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// Number of poll event bits (POLLIN 0x1 .. POLLRDHUP 0x2000) with their own wake-up count.
const EVENT_BITS: usize = 14;

/// Waiters interested in one object, and how often it was woken for each poll event (so
/// edge-triggered epoll sees one edge per wake-up, as Linux's keyed wake-ups give).
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waiter>>>,
    events: [AtomicU64; EVENT_BITS],
}

/// Removes its waiter from the queue when dropped.
pub struct Registration<'a> {
    q: &'a WaitQueue,
    w: Weak<Waiter>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut v = self.q.waiters.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|x| !x.ptr_eq(&self.w) && x.strong_count() > 0);
    }
}

impl WaitQueue {
    pub fn register<'a>(&'a self, w: &Arc<Waiter>) -> Registration<'a> {
        let weak = Arc::downgrade(w);
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(weak.clone());
        Registration { q: self, w: weak }
    }
    /// Registers a waiter that stays until `unregister` (epoll watching a file).
    pub fn add(&self, w: &Arc<Waiter>) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(w));
    }
    pub fn unregister(&self, w: &Arc<Waiter>) {
        let weak = Arc::downgrade(w);
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !x.ptr_eq(&weak));
    }
    /// Wakes every waiter, counting a wake-up for every poll event.
    pub fn wake_all(&self) {
        self.notify(u32::MAX);
    }
    /// Wakes every waiter for a change concerning the poll events `events` (Linux's keyed
    /// `wake_up_poll`): only those events' counts move.
    pub fn notify(&self, events: u32) {
        for (i, c) in self.events.iter().enumerate() {
            if events & (1 << i) != 0 {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
        let v: Vec<Arc<Waiter>> = {
            let mut v = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            v.retain(|x| x.strong_count() > 0);
            v.iter().filter_map(|x| x.upgrade()).collect()
        };
        for w in v {
            w.wake();
        }
    }
    /// A count that moves whenever the queue is woken for any of `events`.
    pub fn generation(&self, events: u32) -> u64 {
        self.events
            .iter()
            .enumerate()
            .filter(|(i, _)| events & (1 << i) != 0)
            .map(|(_, c)| c.load(Ordering::SeqCst))
            .fold(0u64, u64::wrapping_add)
    }
}
