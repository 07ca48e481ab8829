//! Reading and writing: read/write, pread/pwrite, readv/writev and their p-variants, sendfile.

use super::file_size;
use crate::abi::{Errno, Iovec, SysResult};
use crate::kernel::Task;
use crate::syscalls::Args;
use crate::vfs::file::*;
use crate::vfs::{File, S_IFDIR, S_IFREG};

/// Largest single read or write, as Linux's MAX_RW_COUNT.
const MAX_RW: usize = 0x7fff_f000;
/// Bytes moved per chunk between a file and app memory.
const CHUNK: usize = 1 << 20;

thread_local! {
    /// Each task thread's bounce buffer between app memory and files, kept between calls so
    /// a read or write allocates (and clears) nothing.
    static BOUNCE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's bounce buffer, at least `len` bytes, for the length of one call; handed back
/// when dropped. Its bytes are left from earlier calls: only what a read filled is copied out.
pub(crate) struct Bounce {
    v: Vec<u8>,
    len: usize,
}

impl Bounce {
    pub(crate) fn take(len: usize) -> Bounce {
        let mut v = BOUNCE.with(|b| b.take());
        if v.len() < len {
            v.resize(len, 0);
        }
        Bounce { v, len }
    }
    pub(crate) fn buf(&mut self) -> &mut [u8] {
        &mut self.v[..self.len]
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.v);
        BOUNCE.with(|b| b.set(v));
    }
}

impl Task {
    /// Applies RLIMIT_FSIZE to a write of `count` bytes at `pos` of a regular file: past the
    /// limit the writer gets SIGXFSZ and EFBIG; a write crossing it is shortened.
    pub fn fsize_limit(&self, f: &File, pos: u64, count: usize) -> Result<usize, Errno> {
        if f.inode.as_ref().is_none_or(|i| i.kind() != S_IFREG) {
            return Ok(count);
        }
        let limit = self.rlimit(libc::RLIMIT_FSIZE as usize);
        if pos >= limit {
            let info = crate::kernel::signal::SigInfo::kernel(crate::abi::signal::SIGXFSZ);
            self.k.signal_task(&self.h, info);
            return Err(Errno::EFBIG);
        }
        Ok(count.min(usize::try_from(limit - pos).unwrap_or(usize::MAX)))
    }

    /// Reads from a file into app memory at `buf`.
    pub fn read_into(&self, f: &File, buf: u64, count: usize, off: Option<u64>) -> SysResult {
        if !f.readable() {
            return Err(Errno::EBADF);
        }
        if f.inode.as_ref().is_some_and(|i| i.kind() == S_IFDIR) {
            return Err(Errno::EISDIR);
        }
        let count = count.min(MAX_RW);
        let io = self.io(f.nonblock());
        let seekable = f.ops.seekable();
        let mut done = 0usize;
        let mut bounce = Bounce::take(count.min(CHUNK));
        let tmp = bounce.buf();
        let (mut pos_guard, mut pos) = io_position(f, seekable, off);
        while done < count {
            let want = (count - done).min(CHUNK);
            let n = match f.ops.read(&io, &mut tmp[..want], pos) {
                Ok(n) => n,
                Err(e) if done > 0 && (e == Errno::EAGAIN || e == Errno::ERESTARTSYS) => break,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            self.mm.copy_out(buf + done as u64, &tmp[..n])?;
            done += n;
            pos += n as u64;
            if n < want || !seekable {
                break;
            }
        }
        if let Some(g) = pos_guard.as_mut() {
            **g = pos;
        }
        Ok(done as u64)
    }

    /// Writes app memory at `buf` to a file, a chunk at a time.
    pub fn write_from(&self, f: &File, buf: u64, count: usize, off: Option<u64>) -> SysResult {
        if !f.writable() {
            return Err(Errno::EBADF);
        }
        let count = count.min(MAX_RW);
        if count == 0 && crate::net::SocketFile::of(f).is_ok() {
            // A socket sends even nothing (a seqpacket record, EPIPE when shut).
            return self.write_bytes(f, &[], off);
        }
        let mut done = 0usize;
        let mut bounce = Bounce::take(count.min(CHUNK));
        let tmp = bounce.buf();
        while done < count {
            let want = (count - done).min(CHUNK);
            self.mm.copy_in(buf + done as u64, &mut tmp[..want])?;
            match self.write_bytes(f, &tmp[..want], off.map(|o| o + done as u64)) {
                Ok(n) => {
                    done += n as usize;
                    if (n as usize) < want {
                        break;
                    }
                }
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done as u64)
    }

    /// Writes `data` at `off`, or at the description's offset (the end with O_APPEND),
    /// honouring RLIMIT_FSIZE; EPIPE also raises SIGPIPE. A would-block or a signal after
    /// some progress ends the write short.
    pub fn write_bytes(&self, f: &File, data: &[u8], off: Option<u64>) -> SysResult {
        if !f.writable() {
            return Err(Errno::EBADF);
        }
        let io = self.io(f.nonblock());
        let seekable = f.ops.seekable();
        let (mut pos_guard, mut pos) = io_position(f, seekable, off);
        if f.flags() & O_APPEND != 0 && seekable && off.is_none() {
            pos = file_size(f)?;
        }
        let count = self.fsize_limit(f, pos, data.len())?;
        let mut done = 0usize;
        // A socket sees even an empty write: a seqpacket record, EPIPE on a shut stream.
        let empty = count == 0 && crate::net::SocketFile::of(f).is_ok();
        while done < count || (empty && done == 0) {
            match f.ops.write(&io, &data[done..count], pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if done > 0 && (e == Errno::EAGAIN || e == Errno::ERESTARTSYS) => break,
                Err(e) => {
                    if e == Errno::EPIPE && f.ops.sigpipe() {
                        let info =
                            crate::kernel::signal::SigInfo::kernel(crate::abi::signal::SIGPIPE);
                        self.k.signal_task(&self.h, info);
                    }
                    return Err(e);
                }
            }
            if !seekable {
                break;
            }
        }
        if let Some(g) = pos_guard.as_mut() {
            **g = pos + done as u64;
        }
        Ok(done as u64)
    }

    pub(crate) fn iovecs(&self, ptr: u64, cnt: i32) -> Result<Vec<Iovec>, Errno> {
        if !(0..=1024).contains(&cnt) {
            return Err(Errno::EINVAL);
        }
        let mut v = Vec::with_capacity(cnt as usize);
        let mut total: u64 = 0;
        for i in 0..cnt as u64 {
            let iov: Iovec = self.mm.read_obj(ptr + i * 16)?;
            total = total.checked_add(iov.len).ok_or(Errno::EINVAL)?;
            if total > isize::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            v.push(iov);
        }
        Ok(v)
    }
}

pub fn sys_read(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    t.read_into(&f, a.ptr(1), a.usize(2), None)
}

pub fn sys_write(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    t.write_from(&f, a.ptr(1), a.usize(2), None)
}

pub fn sys_pread64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    t.read_into(&f, a.ptr(1), a.usize(2), Some(a.u64(3)))
}

pub fn sys_pwrite64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    if !f.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    t.write_from(&f, a.ptr(1), a.usize(2), Some(a.u64(3)))
}

fn readv_at(t: &mut Task, a: &Args, off: Option<u64>) -> SysResult {
    let f = t.file(a.fd(0))?;
    let iovs = t.iovecs(a.ptr(1), a.i32(2))?;
    if off.is_none() && crate::net::SocketFile::of(&f).is_ok() {
        // One receive over all the iovecs: a datagram is not one per iovec.
        return crate::syscalls::socket::readv(t, &f, &iovs);
    }
    let mut total = 0u64;
    for iov in iovs {
        if iov.len == 0 {
            continue;
        }
        let n = match t.read_into(&f, iov.base, iov.len as usize, off.map(|o| o + total)) {
            Ok(n) => n,
            Err(e) if total > 0 && e != Errno::EFAULT => break,
            Err(e) => return if total > 0 { Ok(total) } else { Err(e) },
        };
        total += n;
        if n < iov.len {
            break;
        }
    }
    Ok(total)
}

fn writev_at(t: &mut Task, a: &Args, off: Option<u64>) -> SysResult {
    let f = t.file(a.fd(0))?;
    let iovs = t.iovecs(a.ptr(1), a.i32(2))?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    // Gather into one buffer so that a pipe or terminal sees one write, as Linux does; past
    // CHUNK bytes the write goes out a chunk at a time.
    let total = iovs
        .iter()
        .map(|v| v.len as usize)
        .fold(0usize, usize::saturating_add)
        .min(MAX_RW);
    if total == 0 {
        return t.write_bytes(&f, &[], off);
    }
    let mut buf: Vec<u8> = Vec::with_capacity(total.min(CHUNK));
    let mut done = 0usize;
    let flush = |buf: &mut Vec<u8>, done: &mut usize| -> Result<bool, Errno> {
        if buf.is_empty() {
            return Ok(true);
        }
        let at = off.map(|o| o + *done as u64);
        let r = t.write_bytes(&f, buf, at);
        let want = buf.len();
        buf.clear();
        match r {
            Ok(n) => {
                *done += n as usize;
                Ok(n as usize == want)
            }
            Err(_) if *done > 0 => Ok(false),
            Err(e) => Err(e),
        }
    };
    'outer: for iov in &iovs {
        let mut pos = 0usize;
        let len = iov.len as usize;
        while pos < len && done + buf.len() < total {
            let room = CHUNK - buf.len();
            let take = (len - pos).min(room).min(total - done - buf.len());
            let start = buf.len();
            buf.resize(start + take, 0);
            if let Err(e) = t.mm.copy_in(iov.base + pos as u64, &mut buf[start..]) {
                // Linux fails the whole call when nothing went out yet (a pipe drops the
                // bytes it had copied), else the write ends short.
                if done == 0 {
                    return Err(e);
                }
                buf.truncate(start);
                flush(&mut buf, &mut done)?;
                break 'outer;
            }
            pos += take;
            if buf.len() == CHUNK && !flush(&mut buf, &mut done)? {
                break 'outer;
            }
        }
    }
    flush(&mut buf, &mut done)?;
    Ok(done as u64)
}

pub fn sys_readv(t: &mut Task, a: &Args) -> SysResult {
    readv_at(t, a, None)
}
pub fn sys_writev(t: &mut Task, a: &Args) -> SysResult {
    writev_at(t, a, None)
}
pub fn sys_preadv(t: &mut Task, a: &Args) -> SysResult {
    readv_at(t, a, Some(a.u64(3)))
}
pub fn sys_pwritev(t: &mut Task, a: &Args) -> SysResult {
    writev_at(t, a, Some(a.u64(3)))
}

pub fn sys_sendfile(t: &mut Task, a: &Args) -> SysResult {
    let out = t.file(a.fd(0))?;
    let inf = t.file(a.fd(1))?;
    if !inf.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    let offp = a.ptr(2);
    let mut off = if offp != 0 {
        Some(t.mm.read_obj::<u64>(offp)?)
    } else {
        None
    };
    let count = a.usize(3).min(MAX_RW);
    let mut done = 0usize;
    let mut buf = vec![0u8; count.min(CHUNK)];
    let io_in = t.io(inf.nonblock());
    let io_out = t.io(out.nonblock());
    while done < count {
        let want = (count - done).min(CHUNK);
        let n = match off {
            Some(o) => inf.ops.read(&io_in, &mut buf[..want], o)?,
            None => {
                let mut p = inf.pos.lock().unwrap_or_else(|e| e.into_inner());
                let n = inf.ops.read(&io_in, &mut buf[..want], *p)?;
                *p += n as u64;
                n
            }
        };
        if n == 0 {
            break;
        }
        let mut w = 0;
        while w < n {
            let mut p = out.pos.lock().unwrap_or_else(|e| e.into_inner());
            let m = out.ops.write(&io_out, &buf[w..n], *p)?;
            if out.ops.seekable() {
                *p += m as u64;
            }
            w += m;
        }
        done += n;
        if let Some(o) = off.as_mut() {
            *o += n as u64;
        }
        if n < want {
            break;
        }
    }
    if let Some(o) = off {
        t.mm.write_obj(offp, &o)?;
    }
    Ok(done as u64)
}

/// Where an I/O starts: at `off` (pread/pwrite), else at the description's offset, which stays
/// locked (returned guard) until the I/O has moved it; files without offsets start at 0.
fn io_position(
    f: &File,
    seekable: bool,
    off: Option<u64>,
) -> (Option<std::sync::MutexGuard<'_, u64>>, u64) {
    match off {
        Some(o) => (None, o),
        None if seekable => {
            let g = f.pos.lock().unwrap_or_else(|e| e.into_inner());
            let p = *g;
            (Some(g), p)
        }
        None => (None, 0),
    }
}
