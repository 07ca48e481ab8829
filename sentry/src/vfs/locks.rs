//! POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK and the OFD variants).
//!
//! Locks are kept per file identity (dev, ino) and owner (a process, or an open file
//! description for OFD locks). Locks of a process on a file go when it closes any fd of that
//! file or exits, as POSIX says.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::abi::Errno;
use crate::kernel::wait::WaitQueue;

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Process(i32),
    /// An open file description (OFD lock), by address.
    Ofd(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Lock {
    pub owner: Owner,
    pub kind: i16,
    pub start: u64,
    /// Exclusive end; u64::MAX means "to the end of the file, however it grows".
    pub end: u64,
}

#[derive(Default)]
pub struct Locks {
    files: Mutex<HashMap<(u64, u64), Vec<Lock>>>,
    /// Woken whenever a lock is released.
    pub queue: WaitQueue,
}

fn overlaps(a: &Lock, start: u64, end: u64) -> bool {
    a.start < end && start < a.end
}

impl Locks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64), Vec<Lock>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first lock of another owner that conflicts with `want`.
    pub fn conflict(&self, key: (u64, u64), want: &Lock) -> Option<Lock> {
        let files = self.lock();
        files.get(&key)?.iter().copied().find(|l| {
            l.owner != want.owner
                && overlaps(l, want.start, want.end)
                && (l.kind == F_WRLCK || want.kind == F_WRLCK)
        })
    }

    /// Sets or clears a lock; EAGAIN on conflict.
    pub fn set(&self, key: (u64, u64), want: Lock) -> Result<(), Errno> {
        if want.kind != F_UNLCK && self.conflict(key, &want).is_some() {
            return Err(Errno::EAGAIN);
        }
        let mut files = self.lock();
        let list = files.entry(key).or_default();
        // Cut the owner's existing locks out of [start, end).
        let mut kept = Vec::with_capacity(list.len() + 1);
        for l in list.drain(..) {
            if l.owner != want.owner || !overlaps(&l, want.start, want.end) {
                kept.push(l);
                continue;
            }
            if l.start < want.start {
                kept.push(Lock {
                    end: want.start,
                    ..l
                });
            }
            if l.end > want.end {
                kept.push(Lock {
                    start: want.end,
                    ..l
                });
            }
        }
        if want.kind != F_UNLCK {
            kept.push(want);
        }
        *list = kept;
        if list.is_empty() {
            files.remove(&key);
        }
        drop(files);
        self.queue.wake_all();
        Ok(())
    }

    /// Drops every lock `owner` holds on `key` (close of an fd of the file).
    pub fn release(&self, key: (u64, u64), owner: Owner) {
        let mut files = self.lock();
        if let Some(list) = files.get_mut(&key) {
            let before = list.len();
            list.retain(|l| l.owner != owner);
            if list.len() != before {
                if list.is_empty() {
                    files.remove(&key);
                }
                drop(files);
                self.queue.wake_all();
            }
        }
    }

    /// Drops every lock of `owner` on any file (process exit).
    pub fn release_all(&self, owner: Owner) {
        let mut files = self.lock();
        let mut changed = false;
        files.retain(|_, list| {
            let before = list.len();
            list.retain(|l| l.owner != owner);
            changed |= list.len() != before;
            !list.is_empty()
        });
        drop(files);
        if changed {
            self.queue.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_locks_conflict_across_owners_and_split_on_unlock() {
        let l = Locks::default();
        let k = (1, 2);
        let a = Owner::Process(10);
        let b = Owner::Process(11);
        l.set(
            k,
            Lock {
                owner: a,
                kind: F_WRLCK,
                start: 0,
                end: 10,
            },
        )
        .unwrap();
        assert_eq!(
            l.set(
                k,
                Lock {
                    owner: b,
                    kind: F_WRLCK,
                    start: 5,
                    end: 6
                }
            ),
            Err(Errno::EAGAIN)
        );
        l.set(
            k,
            Lock {
                owner: b,
                kind: F_WRLCK,
                start: 20,
                end: 25,
            },
        )
        .unwrap();
        // Unlocking the middle of a's lock leaves two pieces.
        l.set(
            k,
            Lock {
                owner: a,
                kind: F_UNLCK,
                start: 4,
                end: 6,
            },
        )
        .unwrap();
        assert!(l
            .conflict(
                k,
                &Lock {
                    owner: b,
                    kind: F_RDLCK,
                    start: 4,
                    end: 6
                }
            )
            .is_none());
        assert!(l
            .conflict(
                k,
                &Lock {
                    owner: b,
                    kind: F_RDLCK,
                    start: 0,
                    end: 1
                }
            )
            .is_some());
        l.release_all(a);
        assert!(l
            .conflict(
                k,
                &Lock {
                    owner: b,
                    kind: F_WRLCK,
                    start: 0,
                    end: u64::MAX
                }
            )
            .is_none());
    }
}
