//! epoll: an interest list over files, level- or edge-triggered, with EPOLLONESHOT.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::abi::{EpollEvent, Errno};
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;
use crate::vfs::File;

const EPOLLET: u32 = 1 << 31;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLWAKEUP: u32 = 1 << 29;

struct Interest {
    file: Arc<File>,
    events: u32,
    data: u64,
    /// Readiness last reported (edge-triggered mode reports only changes).
    last: u32,
    disabled: bool,
}

/// An epoll instance.
#[derive(Default)]
pub struct Epoll {
    items: Mutex<BTreeMap<i32, Interest>>,
    pub queue: WaitQueue,
}

pub fn as_epoll(ops: &dyn FileOps) -> Option<&Epoll> {
    ops.epoll()
}

impl Epoll {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Interest>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ctl(
        &self,
        op: i32,
        fd: i32,
        file: &Arc<File>,
        ev: Option<EpollEvent>,
    ) -> Result<(), Errno> {
        let mut items = self.lock();
        match op {
            1 => {
                if items.contains_key(&fd) {
                    return Err(Errno::EEXIST);
                }
                let ev = ev.ok_or(Errno::EFAULT)?;
                items.insert(
                    fd,
                    Interest {
                        file: file.clone(),
                        events: ev.events,
                        data: ev.data,
                        last: 0,
                        disabled: false,
                    },
                );
            }
            2 => {
                items.remove(&fd).ok_or(Errno::ENOENT)?;
            }
            3 => {
                let ev = ev.ok_or(Errno::EFAULT)?;
                let it = items.get_mut(&fd).ok_or(Errno::ENOENT)?;
                if ev.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = ev.events;
                it.data = ev.data;
                it.last = 0;
                it.disabled = false;
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        self.queue.wake_all();
        Ok(())
    }

    pub fn files(&self) -> Vec<Arc<File>> {
        self.lock().values().map(|i| i.file.clone()).collect()
    }

    /// Ready events, at most `max`.
    pub fn collect(&self, max: usize) -> Vec<EpollEvent> {
        let mut out = Vec::new();
        let mut items = self.lock();
        for it in items.values_mut() {
            if out.len() >= max {
                break;
            }
            if it.disabled {
                continue;
            }
            let want = it.events & !(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP);
            let ready = it.file.ops.poll() & (want | POLLERR | POLLHUP);
            if it.events & EPOLLET != 0 {
                let fresh = ready & !it.last;
                it.last = ready;
                if fresh == 0 {
                    continue;
                }
            }
            if ready == 0 {
                continue;
            }
            out.push(EpollEvent {
                events: ready,
                data: it.data,
            });
            if it.events & EPOLLONESHOT != 0 {
                it.disabled = true;
            }
        }
        out
    }
}

impl FileOps for Epoll {
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        let items = self.lock();
        let any = items
            .values()
            .any(|it| !it.disabled && it.file.ops.poll() & it.events != 0);
        if any {
            POLLIN
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
    fn epoll(&self) -> Option<&Epoll> {
        Some(self)
    }
}
