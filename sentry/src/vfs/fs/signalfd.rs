//! signalfd: pending signals of the reading task, dequeued as `struct signalfd_siginfo`.
//!
//! As in Linux, the file reads and polls the signals of whichever task uses it (its own
//! queue, then its process's), not those of the task that made it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::abi::signal::*;
use crate::abi::Errno;
use crate::kernel::signal::SigInfo;
use crate::kernel::wait::WaitQueue;
use crate::kernel::{TaskHandle, ThreadGroup};
use crate::vfs::file::*;

/// Size of `struct signalfd_siginfo`.
pub const SIGINFO_SIZE: usize = 128;

thread_local! {
    /// The task this sentry thread runs (poll has no task argument).
    pub static CURRENT_TASK: RefCell<Weak<TaskHandle>> = const { RefCell::new(Weak::new()) };
}

/// Records the task the calling sentry thread runs.
pub fn set_current(h: &Arc<TaskHandle>) {
    CURRENT_TASK.with(|c| *c.borrow_mut() = Arc::downgrade(h));
}

pub struct SignalFd {
    mask: AtomicU64,
    /// The creator's process: its `signal_wait` queue is woken when signals arrive.
    tg: Arc<ThreadGroup>,
}

impl SignalFd {
    /// A signalfd for `mask` (SIGKILL and SIGSTOP are dropped from it, as Linux does).
    pub fn new(mask: u64, tg: Arc<ThreadGroup>) -> SignalFd {
        SignalFd {
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
            tg,
        }
    }

    /// The signalfd behind an open file, if it is one.
    pub fn of(f: &File) -> Option<&SignalFd> {
        f.ops.as_any()?.downcast_ref::<SignalFd>()
    }

    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::Relaxed);
        self.tg.signal_wait.wake_all();
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed)
    }

    /// Dequeues up to `max` signals in the mask: the task's own first, then its process's.
    fn dequeue(&self, task: &TaskHandle, max: usize) -> Vec<SigInfo> {
        let blocked = !self.mask();
        let mut out = Vec::new();
        while out.len() < max {
            let own = task.sig().pending.pop(blocked);
            let next = own.or_else(|| task.tg.lock().pending.pop(blocked));
            match next {
                Some(i) => out.push(i),
                None => break,
            }
        }
        out
    }
}

/// `struct signalfd_siginfo` for a dequeued signal, filled per si_code class as Linux's
/// `signalfd_copyinfo`.
pub fn encode(i: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &i.signo.to_le_bytes());
    put(4, &i.errno.to_le_bytes());
    put(8, &i.code.to_le_bytes());
    let fault = matches!(i.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP) && i.code > 0;
    if i.code == SI_TIMER {
        put(24, &i.pid.to_le_bytes()); // ssi_tid: the timer id
        put(32, &i.uid.to_le_bytes()); // ssi_overrun
        put(44, &(i.status as i32).to_le_bytes()); // ssi_int
        put(48, &i.status.to_le_bytes()); // ssi_ptr
    } else if fault {
        put(72, &i.addr.to_le_bytes());
    } else if i.signo == SIGCHLD && i.code > 0 {
        put(12, &i.pid.to_le_bytes());
        put(16, &i.uid.to_le_bytes());
        put(40, &(i.status as i32).to_le_bytes());
    } else {
        put(12, &i.pid.to_le_bytes());
        put(16, &i.uid.to_le_bytes());
        if i.code < 0 {
            put(44, &(i.status as i32).to_le_bytes());
            put(48, &i.status.to_le_bytes());
        }
    }
    b
}

impl FileOps for SignalFd {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let max = buf.len() / SIGINFO_SIZE;
        if max == 0 {
            return Err(Errno::EINVAL);
        }
        let got = io.block(&self.tg.signal_wait, || {
            let v = self.dequeue(io.task, max);
            Ok((!v.is_empty()).then_some(v))
        })?;
        for (i, info) in got.iter().enumerate() {
            buf[i * SIGINFO_SIZE..(i + 1) * SIGINFO_SIZE].copy_from_slice(&encode(info));
        }
        Ok(got.len() * SIGINFO_SIZE)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        let mask = self.mask();
        let task = CURRENT_TASK.with(|c| c.borrow().upgrade());
        let pending = match task {
            Some(h) => {
                let own = h.sig().pending.set;
                own | h.tg.lock().pending.set
            }
            None => self.tg.lock().pending.set,
        };
        if pending & mask != 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tg.signal_wait)
    }
    fn fdinfo(&self) -> String {
        format!("sigmask:\t{:016x}\n", self.mask())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siginfo_layout_follows_the_code_class() {
        let q = encode(&SigInfo {
            signo: 34,
            code: SI_QUEUE,
            pid: 7,
            uid: 1000,
            status: 55,
            ..SigInfo::default()
        });
        assert_eq!(u32::from_le_bytes([q[0], q[1], q[2], q[3]]), 34);
        assert_eq!(i32::from_le_bytes([q[8], q[9], q[10], q[11]]), SI_QUEUE);
        assert_eq!(u32::from_le_bytes([q[12], q[13], q[14], q[15]]), 7);
        assert_eq!(u32::from_le_bytes([q[16], q[17], q[18], q[19]]), 1000);
        assert_eq!(i32::from_le_bytes([q[44], q[45], q[46], q[47]]), 55);
        let c = encode(&SigInfo {
            signo: SIGCHLD,
            code: CLD_EXITED,
            pid: 9,
            status: 5,
            ..SigInfo::default()
        });
        assert_eq!(i32::from_le_bytes([c[40], c[41], c[42], c[43]]), 5);
        assert_eq!(u32::from_le_bytes([c[12], c[13], c[14], c[15]]), 9);
    }
}
