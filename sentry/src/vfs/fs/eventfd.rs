//! eventfd: a 64-bit counter.

use std::sync::Mutex;

use crate::abi::Errno;
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: WaitQueue,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> EventFd {
        EventFd {
            count: Mutex::new(init),
            semaphore,
            queue: WaitQueue::default(),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileOps for EventFd {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = io.block(&self.queue, || {
            let mut c = self.lock();
            if *c == 0 {
                return Ok(None);
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            Ok(Some(v))
        })?;
        buf[..8].copy_from_slice(&v.to_le_bytes());
        self.queue.notify(POLLOUT | POLLWRNORM);
        Ok(8)
    }
    fn write(&self, io: &Io<'_>, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[..8]);
        let v = u64::from_le_bytes(b);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        io.block(&self.queue, || {
            let mut c = self.lock();
            if u64::MAX - 1 - *c < v {
                return Ok(None);
            }
            *c += v;
            Ok(Some(()))
        })?;
        self.queue.notify(POLLIN | POLLRDNORM);
        Ok(8)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        let c = *self.lock();
        let mut m = 0;
        if c > 0 {
            m |= POLLIN | POLLRDNORM;
        }
        if c < u64::MAX - 1 {
            m |= POLLOUT | POLLWRNORM;
        }
        m
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
    fn fdinfo(&self) -> String {
        format!("eventfd-count: {:16x}\n", *self.lock())
    }
}
