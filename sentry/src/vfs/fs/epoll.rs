//! epoll: an interest list over files, level- or edge-triggered, with EPOLLONESHOT.
//!
//! An interest is keyed by fd and file, as Linux's (file, fd), and holds the file weakly:
//! when the last fd of the file closes, the interest is gone. Edge-triggered interests are
//! reported once per wake-up of the file for the events they want (the file's
//! [`WaitQueue::generation`] moved), like Linux's per-wake-up ready list, not once per
//! change of readiness. Level-triggered ones are reported while ready; a wait reports at
//! most `maxevents`, going on after the last one reported next time (round robin).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use crate::abi::{EpollEvent, Errno};
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;
use crate::vfs::File;

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;
const EPOLLET: u32 = 1 << 31;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLWAKEUP: u32 = 1 << 29;
/// Linux's EPOLL_MAX_NESTS: epoll sets nest at most this deep.
const MAX_NESTS: usize = 4;

/// (fd, address of the open file description).
type Key = (i32, usize);

fn key(fd: i32, file: &Arc<File>) -> Key {
    (fd, Arc::as_ptr(file) as usize)
}

struct Interest {
    file: Weak<File>,
    events: u32,
    data: u64,
    /// On the ready list: an edge-triggered interest is reported at the next wait if ready
    /// (set by ADD/MOD and by a wake-up of the file).
    armed: bool,
    /// The file's wake-up count for `mask()` when last looked at.
    seen: u64,
    /// EPOLLONESHOT fired: nothing more until EPOLL_CTL_MOD.
    disabled: bool,
}

impl Interest {
    /// Events reported: those asked for, plus EPOLLERR and EPOLLHUP always.
    fn mask(&self) -> u32 {
        (self.events & !(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)) | POLLERR | POLLHUP
    }
    fn generation(&self, f: &File) -> u64 {
        f.ops
            .wait_queue()
            .map(|q| q.generation(self.mask()))
            .unwrap_or(0)
    }
    /// Takes note of wake-ups since last time; returns the events to report, if any
    /// (`consume`: this is a wait, which uses up an edge).
    fn check(&mut self, f: &File, consume: bool) -> u32 {
        if self.disabled {
            return 0;
        }
        let gen = self.generation(f);
        let woken = gen != self.seen;
        if consume {
            self.seen = gen;
        }
        let armed = self.armed || woken;
        let ready = f.ops.poll() & self.mask();
        if self.events & EPOLLET != 0 {
            if consume {
                self.armed = false;
            }
            if !armed {
                return 0;
            }
        }
        ready
    }
}

#[derive(Default)]
struct Items {
    map: BTreeMap<Key, Interest>,
    /// The key after which the next wait starts looking.
    cursor: Option<Key>,
    /// Bumped by every ADD/MOD/DEL (a blocked wait re-registers on the new files).
    changes: u64,
}

/// An epoll instance.
#[derive(Default)]
pub struct Epoll {
    items: Mutex<Items>,
    pub queue: WaitQueue,
}

pub fn as_epoll(ops: &dyn FileOps) -> Option<&Epoll> {
    ops.epoll()
}

impl Epoll {
    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `target` (nested `depth` levels down) contains this instance, or nests too deep.
    fn reachable_from(&self, target: &Epoll, depth: usize) -> bool {
        if std::ptr::eq(self, target) || depth > MAX_NESTS {
            return true;
        }
        target.live_files().iter().any(|f| {
            f.ops
                .epoll()
                .is_some_and(|inner| self.reachable_from(inner, depth + 1))
        })
    }

    pub fn ctl(
        &self,
        op: i32,
        fd: i32,
        file: &Arc<File>,
        ev: Option<EpollEvent>,
    ) -> Result<(), Errno> {
        if file.ops.epoll().is_some_and(|e| std::ptr::eq(e, self)) {
            return Err(Errno::EINVAL);
        }
        if op == EPOLL_CTL_ADD {
            if let Some(inner) = file.ops.epoll() {
                if self.reachable_from(inner, 1) {
                    return Err(Errno::ELOOP);
                }
            }
        }
        let k = key(fd, file);
        let mut items = self.lock();
        items.map.retain(|_, it| it.file.strong_count() > 0);
        match op {
            EPOLL_CTL_ADD => {
                if items.map.contains_key(&k) {
                    return Err(Errno::EEXIST);
                }
                let ev = ev.ok_or(Errno::EFAULT)?;
                let mut it = Interest {
                    file: Arc::downgrade(file),
                    events: ev.events,
                    data: ev.data,
                    armed: true,
                    seen: 0,
                    disabled: false,
                };
                it.seen = it.generation(file);
                items.map.insert(k, it);
            }
            EPOLL_CTL_DEL => {
                items.map.remove(&k).ok_or(Errno::ENOENT)?;
            }
            EPOLL_CTL_MOD => {
                let ev = ev.ok_or(Errno::EFAULT)?;
                let it = items.map.get_mut(&k).ok_or(Errno::ENOENT)?;
                if ev.events & EPOLLEXCLUSIVE != 0 || it.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = ev.events;
                it.data = ev.data;
                it.armed = true;
                it.disabled = false;
                it.seen = it.generation(file);
            }
            _ => return Err(Errno::EINVAL),
        }
        items.changes += 1;
        drop(items);
        self.queue.wake_all();
        Ok(())
    }

    /// How many times the interest list changed (ADD/MOD/DEL).
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// The files watched whose fds are still open.
    pub fn live_files(&self) -> Vec<Arc<File>> {
        self.lock()
            .map
            .values()
            .filter_map(|i| i.file.upgrade())
            .collect()
    }

    /// Every file whose wake-ups may make this instance ready: the watched files, and
    /// those of nested epoll instances.
    pub fn watched_files(&self) -> Vec<Arc<File>> {
        let mut out = Vec::new();
        let mut todo = self.live_files();
        let mut depth = 0;
        while !todo.is_empty() && depth <= MAX_NESTS {
            let mut next = Vec::new();
            for f in todo {
                if let Some(inner) = f.ops.epoll() {
                    next.extend(inner.live_files());
                }
                out.push(f);
            }
            todo = next;
            depth += 1;
        }
        out
    }

    /// Ready events, at most `max`, consuming edges and one-shots.
    pub fn collect(&self, max: usize) -> Vec<EpollEvent> {
        let mut out = Vec::new();
        let mut items = self.lock();
        items.map.retain(|_, it| it.file.strong_count() > 0);
        let keys: Vec<Key> = match items.cursor {
            Some(c) => {
                let after = items.map.range(c..).map(|(k, _)| *k).filter(|k| *k != c);
                let before = items.map.range(..=c).map(|(k, _)| *k);
                after.chain(before).collect()
            }
            None => items.map.keys().copied().collect(),
        };
        let mut last = None;
        for k in keys {
            if out.len() >= max {
                break;
            }
            let Some(it) = items.map.get_mut(&k) else {
                continue;
            };
            let Some(file) = it.file.upgrade() else {
                continue;
            };
            let ready = it.check(&file, true);
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
            last = Some(k);
        }
        if last.is_some() {
            items.cursor = last;
        }
        out
    }
}

impl FileOps for Epoll {
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        let mut items = self.lock();
        let any = items.map.values_mut().any(|it| match it.file.upgrade() {
            Some(f) => it.check(&f, false) != 0,
            None => false,
        });
        if any {
            POLLIN | POLLRDNORM
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
    fn fdinfo(&self) -> String {
        self.lock()
            .map
            .iter()
            .filter(|(_, it)| it.file.strong_count() > 0)
            .map(|((fd, _), it)| {
                let events = it.events | POLLERR | POLLHUP;
                format!("tfd: {fd:>8} events: {events:>8x} data: {:>16x}\n", it.data)
            })
            .collect()
    }
}
