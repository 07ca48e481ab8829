//! Descriptor calls: close, close_range, lseek, dup, fcntl, flock, fsync, ftruncate, ioctl, pipes.

use std::sync::Arc;

use super::file_size;
use super::locks::{getlk, release_locks, setlk};
use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::syscalls::Args;
use crate::vfs::file::*;
use crate::vfs::fs::pipe;
use crate::vfs::{SetAttr, S_IFREG};

pub fn sys_close(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds().remove(a.fd(0)).ok_or(Errno::EBADF)?;
    release_locks(t, &f);
    Ok(0)
}

pub fn sys_close_range(t: &mut Task, a: &Args) -> SysResult {
    let (lo, hi, flags) = (a.u32(0), a.u32(1), a.u32(2));
    const CLOSE_RANGE_UNSHARE: u32 = 2;
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || lo > hi {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let copy = t.fds().clone();
        t.fds = Arc::new(std::sync::Mutex::new(copy));
    }
    t.fds()
        .close_range(lo, hi, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

pub fn sys_lseek(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = a.i64(1);
    let mut pos = f.pos.lock().unwrap_or_else(|e| e.into_inner());
    if f.inode
        .as_ref()
        .is_some_and(|i| i.kind() == crate::vfs::S_IFCHR)
    {
        // Character devices (null, zero, full, random) ignore seeks and report 0.
        if !(0..=4).contains(&a.i32(2)) {
            return Err(Errno::EINVAL);
        }
        *pos = 0;
        return Ok(0);
    }
    let base: i64 = match a.i32(2) {
        0 => 0,
        1 => *pos as i64,
        2 => file_size(&f)? as i64,
        3 | 4 => {
            // SEEK_DATA / SEEK_HOLE: the whole file is data.
            let size = file_size(&f)? as i64;
            if off < 0 || off >= size {
                return Err(Errno::ENXIO);
            }
            let np = if a.i32(2) == 3 { off } else { size };
            *pos = np as u64;
            return Ok(np as u64);
        }
        _ => return Err(Errno::EINVAL),
    };
    let np = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    if np < 0 {
        return Err(Errno::EINVAL);
    }
    *pos = np as u64;
    if np == 0 {
        *f.dir.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    Ok(np as u64)
}

pub fn sys_dup(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    t.install(f, false).map(|fd| fd as u64)
}

fn dup_to(t: &mut Task, old: i32, new: i32, cloexec: bool) -> SysResult {
    let f = t.file(old)?;
    let limit = t.rlimit(libc::RLIMIT_NOFILE as usize).min(1 << 20) as usize;
    let prev = t.fds().install_at(new, f, cloexec, limit)?;
    if let Some(p) = prev {
        release_locks(t, &p);
    }
    Ok(new as u64)
}

pub fn sys_dup2(t: &mut Task, a: &Args) -> SysResult {
    let (old, new) = (a.fd(0), a.fd(1));
    if old == new {
        t.file(old)?;
        return Ok(new as u64);
    }
    dup_to(t, old, new, false)
}

/// dup3(2). Only O_CLOEXEC is accepted; equal fds are EINVAL (unlike dup2).
pub fn sys_dup3(t: &mut Task, a: &Args) -> SysResult {
    let (old, new, flags) = (a.fd(0), a.fd(1), a.u32(2));
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(t, old, new, flags & O_CLOEXEC != 0)
}

pub fn sys_fcntl(t: &mut Task, a: &Args) -> SysResult {
    let fd = a.fd(0);
    let f = t.file(fd)?;
    let limit = t.rlimit(libc::RLIMIT_NOFILE as usize).min(1 << 20) as usize;
    match a.i32(1) {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let min = usize::try_from(a.i32(2)).map_err(|_| Errno::EINVAL)?;
            if min >= limit {
                return Err(Errno::EINVAL);
            }
            let cloexec = a.i32(1) == libc::F_DUPFD_CLOEXEC;
            t.fds().install(f, cloexec, min, limit).map(|fd| fd as u64)
        }
        libc::F_GETFD => Ok(u64::from(t.fds().cloexec(fd).unwrap_or(false))),
        libc::F_SETFD => t.fds().set_cloexec(fd, a.u64(2) & 1 != 0).map(|_| 0),
        libc::F_GETFL => Ok(u64::from(f.flags() & !O_CLOEXEC)),
        libc::F_SETFL => {
            f.set_status_flags(a.u32(2));
            Ok(0)
        }
        libc::F_GETLK | libc::F_OFD_GETLK => getlk(t, &f, a.i32(1) == libc::F_OFD_GETLK, a.ptr(2)),
        libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => {
            let ofd = matches!(a.i32(1), libc::F_OFD_SETLK | libc::F_OFD_SETLKW);
            let wait = matches!(a.i32(1), libc::F_SETLKW | libc::F_OFD_SETLKW);
            setlk(t, &f, ofd, wait, a.ptr(2))
        }
        libc::F_GETPIPE_SZ => pipe::pipe_size(&f).map(|s| s as u64),
        libc::F_SETPIPE_SZ => pipe::set_pipe_size(&f, a.usize(2)).map(|s| s as u64),
        libc::F_SETOWN | 10 | libc::F_NOTIFY => Ok(0),
        libc::F_GETOWN | 11 => Ok(0),
        libc::F_ADD_SEALS | libc::F_GET_SEALS => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_flock(t: &mut Task, a: &Args) -> SysResult {
    t.file(a.fd(0))?;
    Ok(0)
}

pub fn sys_fsync(t: &mut Task, a: &Args) -> SysResult {
    t.file(a.fd(0))?.ops.fsync().map(|_| 0)
}

pub fn sys_sync(_t: &mut Task, _a: &Args) -> SysResult {
    Ok(0)
}

pub fn sys_fadvise64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}

pub fn sys_ftruncate(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    if a.i64(1) < 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    let i = f.inode.clone().ok_or(Errno::EINVAL)?;
    if i.kind() != S_IFREG {
        return Err(Errno::EINVAL);
    }
    i.setattr(&SetAttr {
        size: Some(a.u64(1)),
        ..SetAttr::default()
    })?;
    Ok(0)
}

pub fn sys_ioctl(t: &mut Task, a: &Args) -> SysResult {
    let fd = a.fd(0);
    let f = t.file(fd)?;
    match a.u32(1) {
        0x5451 => t.fds().set_cloexec(fd, true).map(|_| 0), // FIOCLEX
        0x5450 => t.fds().set_cloexec(fd, false).map(|_| 0), // FIONCLEX
        0x5421 => {
            // FIONBIO
            let on: i32 = t.mm.read_obj(a.ptr(2))?;
            let fl = f.flags();
            f.set_status_flags(if on != 0 {
                fl | O_NONBLOCK
            } else {
                fl & !O_NONBLOCK
            });
            Ok(0)
        }
        0x541b if f.inode.as_ref().is_some_and(|i| i.kind() == S_IFREG) => {
            // FIONREAD on a regular file: bytes between the offset and the end.
            let size = file_size(&f)?;
            let pos = *f.pos.lock().unwrap_or_else(|e| e.into_inner());
            let n = i32::try_from(size.saturating_sub(pos)).unwrap_or(i32::MAX);
            t.mm.write_obj(a.ptr(2), &n)?;
            Ok(0)
        }
        cmd => f.ops.ioctl(t, cmd, a.u64(2)),
    }
}

fn do_pipe(t: &mut Task, ptr: u64, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = pipe::new_pair(flags & O_NONBLOCK);
    let cloexec = flags & O_CLOEXEC != 0;
    let rfd = t.install(r, cloexec)?;
    let wfd = match t.install(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            t.fds().remove(rfd);
            return Err(e);
        }
    };
    if let Err(e) = t.mm.write_obj(ptr, &[rfd, wfd]) {
        t.fds().remove(rfd);
        t.fds().remove(wfd);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_pipe(t: &mut Task, a: &Args) -> SysResult {
    do_pipe(t, a.ptr(0), 0)
}

pub fn sys_pipe2(t: &mut Task, a: &Args) -> SysResult {
    do_pipe(t, a.ptr(0), a.u32(1))
}
