//! POSIX and OFD record locks (fcntl F_GETLK/F_SETLK*) and their release on close.

use std::sync::Arc;

use super::file_size;
use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::vfs::locks::{Lock, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
use crate::vfs::{File, S_IFREG};

/// Closing any fd of a file drops the process's record locks on it (POSIX).
pub fn release_locks(t: &Task, f: &File) {
    if let Some(key) = lock_key(f) {
        t.k.locks.release(key, Owner::Process(t.tgid()));
    }
}

fn lock_key(f: &File) -> Option<(u64, u64)> {
    let i = f.inode.as_ref()?;
    if i.kind() != S_IFREG {
        return None;
    }
    let st = i.stat().ok()?;
    Some((st.dev, st.ino))
}

/// `struct flock` → the locked range [start, end), relative to the file's offset or size.
fn flock_range(t: &Task, f: &File, ptr: u64) -> Result<(i16, Lock0, i32), Errno> {
    let b: [u8; 32] = t.mm.read_obj(ptr)?;
    let kind = i16::from_le_bytes([b[0], b[1]]);
    let whence = i16::from_le_bytes([b[2], b[3]]);
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[8..16]);
    let start = i64::from_le_bytes(v);
    v.copy_from_slice(&b[16..24]);
    let len = i64::from_le_bytes(v);
    let pid = i32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    if !(0..=2).contains(&kind) {
        return Err(Errno::EINVAL);
    }
    let base: i64 = match whence {
        0 => 0,
        1 => *f.pos.lock().unwrap_or_else(|e| e.into_inner()) as i64,
        2 => file_size(f)? as i64,
        _ => return Err(Errno::EINVAL),
    };
    let s = base.checked_add(start).ok_or(Errno::EOVERFLOW)?;
    let (lo, hi) = match len {
        0 => (s, i64::MAX),
        l if l > 0 => (s, s.checked_add(l).ok_or(Errno::EOVERFLOW)?),
        l => (s + l, s),
    };
    if lo < 0 {
        return Err(Errno::EINVAL);
    }
    let end = if hi == i64::MAX { u64::MAX } else { hi as u64 };
    Ok((
        kind,
        Lock0 {
            start: lo as u64,
            end,
        },
        pid,
    ))
}

struct Lock0 {
    start: u64,
    end: u64,
}

fn owner_of(t: &Task, f: &File, ofd: bool) -> Owner {
    if ofd {
        Owner::Ofd(f as *const File as usize)
    } else {
        Owner::Process(t.tgid())
    }
}

pub(super) fn setlk(t: &Task, f: &Arc<File>, ofd: bool, wait: bool, ptr: u64) -> SysResult {
    let (kind, r, pid) = flock_range(t, f, ptr)?;
    if ofd && pid != 0 {
        return Err(Errno::EINVAL);
    }
    match kind {
        F_RDLCK if !f.readable() => return Err(Errno::EBADF),
        F_WRLCK if !f.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    let Some(key) = lock_key(f) else { return Ok(0) };
    let want = Lock {
        owner: owner_of(t, f, ofd),
        kind,
        start: r.start,
        end: r.end,
    };
    if !wait {
        return t.k.locks.set(key, want).map(|_| 0);
    }
    let locks = &t.k.locks;
    t.block(&[&locks.queue], None, || match locks.set(key, want) {
        Ok(()) => Ok(Some(0)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    })
    .map_err(|e| {
        if e == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            e
        }
    })
}

pub(super) fn getlk(t: &Task, f: &Arc<File>, ofd: bool, ptr: u64) -> SysResult {
    let (kind, r, pid) = flock_range(t, f, ptr)?;
    if kind == F_UNLCK || (ofd && pid != 0) {
        return Err(Errno::EINVAL);
    }
    let mut out: [u8; 32] = t.mm.read_obj(ptr)?;
    let found = lock_key(f).and_then(|key| {
        t.k.locks.conflict(
            key,
            &Lock {
                owner: owner_of(t, f, ofd),
                kind,
                start: r.start,
                end: r.end,
            },
        )
    });
    match found {
        None => out[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
        Some(l) => {
            out[0..2].copy_from_slice(&l.kind.to_le_bytes());
            out[2..4].copy_from_slice(&0i16.to_le_bytes());
            out[8..16].copy_from_slice(&(l.start as i64).to_le_bytes());
            let len = if l.end == u64::MAX {
                0
            } else {
                (l.end - l.start) as i64
            };
            out[16..24].copy_from_slice(&len.to_le_bytes());
            let p = match l.owner {
                Owner::Process(p) => p,
                Owner::Ofd(_) => -1,
            };
            out[24..28].copy_from_slice(&p.to_le_bytes());
        }
    }
    t.mm.write_obj(ptr, &out)?;
    Ok(0)
}
