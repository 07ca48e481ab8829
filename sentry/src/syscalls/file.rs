//! File descriptors and file I/O: open, read, write, seek, dup, fcntl, ioctl, pipes,
//! getdents.

use std::sync::Arc;

use super::Args;
use crate::abi::{Errno, Iovec, SysResult};
use crate::kernel::Task;
use crate::vfs::file::*;
use crate::vfs::fs::pipe;
use crate::vfs::locks::{Lock, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
use crate::vfs::{File, Follow, NewNode, SetAttr, VPath, S_IFDIR, S_IFLNK, S_IFREG};

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
pub const AT_REMOVEDIR: u32 = 0x200;
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
pub const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_EACCESS: u32 = 0x200;

/// Largest single read or write, as Linux's MAX_RW_COUNT.
const MAX_RW: usize = 0x7fff_f000;
/// Bytes moved per chunk between a file and app memory.
const CHUNK: usize = 1 << 20;

impl Task {
    pub fn file(&self, fd: i32) -> Result<Arc<File>, Errno> {
        self.fds().get(fd).ok_or(Errno::EBADF)
    }

    pub fn install(&self, f: Arc<File>, cloexec: bool) -> Result<i32, Errno> {
        let limit = self.rlimit(libc::RLIMIT_NOFILE as usize).min(1 << 20) as usize;
        self.fds().install(f, cloexec, 0, limit)
    }

    /// Reads a path argument (ENOENT for an empty one).
    pub fn path_arg(&self, ptr: u64) -> Result<Vec<u8>, Errno> {
        let p = self.mm.read_cstr(ptr, 4095)?;
        Ok(p)
    }

    /// Where a *at() walk starts.
    pub fn start_at(&self, dirfd: i32, path: &[u8]) -> Result<VPath, Errno> {
        if path.first() == Some(&b'/') {
            return Ok(self.fsctx().root);
        }
        if dirfd == AT_FDCWD {
            return Ok(self.fsctx().cwd);
        }
        let f = self.file(dirfd)?;
        let p = f.path.clone().ok_or(Errno::ENOTDIR)?;
        if p.d.inode.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(p)
    }

    /// Resolves `path` relative to `dirfd`; with AT_EMPTY_PATH an empty path names dirfd.
    pub fn lookup_at(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: Follow,
        empty_ok: bool,
    ) -> Result<VPath, Errno> {
        if path.is_empty() {
            if !empty_ok {
                return Err(Errno::ENOENT);
            }
            if dirfd == AT_FDCWD {
                return Ok(self.fsctx().cwd);
            }
            return self.file(dirfd)?.path.clone().ok_or(Errno::EBADF);
        }
        let start = self.start_at(dirfd, path)?;
        let ctx = self.fsctx();
        self.k.vfs.walk(self, &ctx, &start, path, follow)
    }

    pub fn parent_at(&self, dirfd: i32, path: &[u8]) -> Result<(VPath, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let start = self.start_at(dirfd, path)?;
        let ctx = self.fsctx();
        self.k.vfs.walk_parent(self, &ctx, &start, path)
    }

    /// open(2) semantics for an already read path.
    pub fn open_path(
        &self,
        dirfd: i32,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> Result<Arc<File>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let start = self.start_at(dirfd, path)?;
        self.open_from(&start, path, flags, mode, 40)
    }

    fn open_from(
        &self,
        start: &VPath,
        path: &[u8],
        flags: u32,
        mode: u32,
        links: u32,
    ) -> Result<Arc<File>, Errno> {
        let umask = self.fsctx().umask;
        let acc = flags & O_ACCMODE;
        let wants_write = acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0;
        if flags & O_TMPFILE == O_TMPFILE {
            if acc == O_RDONLY {
                return Err(Errno::EINVAL);
            }
            return Err(Errno::EOPNOTSUPP);
        }
        let ctx = self.fsctx();
        let p = if flags & O_CREAT != 0 {
            let (parent, name) = self.k.vfs.walk_parent(self, &ctx, start, path)?;
            if name == b"." || name == b".." || path.ends_with(b"/") {
                return Err(Errno::EISDIR);
            }
            match parent.d.child(&name) {
                Ok(d) => {
                    if flags & O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    if d.inode.kind() == S_IFLNK && flags & O_NOFOLLOW == 0 {
                        if links == 0 {
                            return Err(Errno::ELOOP);
                        }
                        if let Some(target) = d.inode.magic_link(self) {
                            return self.open_from(
                                &target,
                                b".",
                                flags & !O_CREAT,
                                mode,
                                links - 1,
                            );
                        }
                        let target = d.inode.readlink()?;
                        return self.open_from(&parent, &target, flags, mode, links - 1);
                    }
                    let p = self.k.vfs.enter(VPath {
                        mnt: parent.mnt.clone(),
                        d,
                    });
                    if p.d.inode.kind() == S_IFDIR {
                        return Err(Errno::EISDIR);
                    }
                    p
                }
                Err(Errno::ENOENT) => {
                    if parent.mnt.readonly {
                        return Err(Errno::EROFS);
                    }
                    let owner = (self.creds.euid, self.creds.egid);
                    parent.d.inode.create(
                        &name,
                        NewNode::File {
                            mode: mode & 0o7777 & !umask,
                        },
                        owner,
                    )?;
                    parent.d.forget(&name);
                    let d = parent.d.child(&name)?;
                    VPath {
                        mnt: parent.mnt.clone(),
                        d,
                    }
                }
                Err(e) => return Err(e),
            }
        } else {
            let follow = if flags & O_NOFOLLOW != 0 {
                Follow::No
            } else {
                Follow::Yes
            };
            self.k.vfs.walk(self, &ctx, start, path, follow)?
        };
        let kind = p.d.inode.kind();
        if flags & O_PATH != 0 {
            if flags & O_DIRECTORY != 0 && kind != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            let ops: Arc<dyn FileOps> = Arc::new(PathOnly);
            return Ok(File::new(
                ops,
                Some(p.d.inode.clone()),
                Some(p),
                flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
            ));
        }
        if kind == S_IFLNK {
            return Err(Errno::ELOOP);
        }
        if flags & O_DIRECTORY != 0 && kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        if kind == S_IFDIR && (acc != O_RDONLY || flags & O_TRUNC != 0) {
            return Err(Errno::EISDIR);
        }
        if wants_write && p.mnt.readonly && kind == S_IFREG {
            return Err(Errno::EROFS);
        }
        if acc == 3 {
            return Err(Errno::EINVAL);
        }
        let ops = p.d.inode.open(&p.d.inode, flags)?;
        if flags & O_TRUNC != 0 && kind == S_IFREG && wants_write {
            p.d.inode.setattr(&SetAttr {
                size: Some(0),
                ..SetAttr::default()
            })?;
        }
        let f = File::new(ops, Some(p.d.inode.clone()), Some(p.clone()), flags);
        if kind == S_IFREG && (acc == O_WRONLY || acc == O_RDWR) {
            if let Ok(st) = p.d.inode.stat() {
                f.track_writer(&st);
            }
        }
        Ok(f)
    }

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

    /// Opens an already resolved path.
    pub fn open_vpath(&self, p: VPath, flags: u32) -> Result<Arc<File>, Errno> {
        let ops = p.d.inode.open(&p.d.inode, flags)?;
        Ok(File::new(ops, Some(p.d.inode.clone()), Some(p), flags))
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
        let mut tmp = vec![0u8; count.min(CHUNK)];
        let mut pos_guard = if seekable && off.is_none() {
            Some(f.pos.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            None
        };
        let mut pos = match (&pos_guard, off) {
            (_, Some(o)) => o,
            (Some(g), None) => **g,
            (None, None) => 0,
        };
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
        let mut done = 0usize;
        let mut tmp = vec![0u8; count.min(CHUNK)];
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
        let mut pos_guard = if seekable && off.is_none() {
            Some(f.pos.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            None
        };
        let mut pos = match (&pos_guard, off) {
            (_, Some(o)) => o,
            (Some(g), None) => **g,
            (None, None) => 0,
        };
        if f.flags() & O_APPEND != 0 && seekable && off.is_none() {
            pos = file_size(f)?;
        }
        let count = self.fsize_limit(f, pos, data.len())?;
        let mut done = 0usize;
        while done < count {
            match f.ops.write(&io, &data[done..count], pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if done > 0 && (e == Errno::EAGAIN || e == Errno::ERESTARTSYS) => break,
                Err(e) => {
                    if e == Errno::EPIPE {
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

    fn iovecs(&self, ptr: u64, cnt: i32) -> Result<Vec<Iovec>, Errno> {
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

fn file_size(f: &File) -> Result<u64, Errno> {
    if let Some(s) = f.ops.size() {
        return Ok(s);
    }
    match &f.inode {
        Some(i) => Ok(i.stat()?.size.max(0) as u64),
        None => Ok(0),
    }
}

/// An O_PATH description: no I/O.
struct PathOnly;
impl FileOps for PathOnly {
    fn read(&self, _: &Io<'_>, _: &mut [u8], _: u64) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &Io<'_>, _: &[u8], _: u64) -> Result<usize, Errno> {
        Err(Errno::EBADF)
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
    // Gather into one buffer so that a pipe or terminal sees one write, as Linux does.
    let mut buf = Vec::new();
    for iov in &iovs {
        let start = buf.len();
        buf.resize(start + iov.len as usize, 0);
        t.mm.copy_in(iov.base, &mut buf[start..])?;
    }
    t.write_bytes(&f, &buf, off)
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

pub fn sys_open(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    let flags = a.u32(1);
    let f = t.open_path(AT_FDCWD, &path, flags, a.u32(2))?;
    t.install(f, flags & O_CLOEXEC != 0).map(|fd| fd as u64)
}

pub fn sys_openat(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(1))?;
    let flags = a.u32(2);
    let f = t.open_path(a.fd(0), &path, flags, a.u32(3))?;
    t.install(f, flags & O_CLOEXEC != 0).map(|fd| fd as u64)
}

pub fn sys_close(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds().remove(a.fd(0)).ok_or(Errno::EBADF)?;
    release_locks(t, &f);
    Ok(0)
}

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

fn setlk(t: &Task, f: &Arc<File>, ofd: bool, wait: bool, ptr: u64) -> SysResult {
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

fn getlk(t: &Task, f: &Arc<File>, ofd: bool, ptr: u64) -> SysResult {
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

pub fn sys_getdents64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    let (buf, count) = (a.ptr(1), a.usize(2));
    let p = f.path.clone().ok_or(Errno::ENOTDIR)?;
    if p.d.inode.kind() != S_IFDIR || f.flags() & O_PATH != 0 {
        return Err(Errno::ENOTDIR);
    }
    let mut dir = f.dir.lock().unwrap_or_else(|e| e.into_inner());
    let mut pos = f.pos.lock().unwrap_or_else(|e| e.into_inner());
    if dir.is_none() || *pos == 0 {
        let st = p.d.inode.stat()?;
        let mut v = vec![
            crate::vfs::DirEntry {
                ino: st.ino,
                kind: 4,
                name: b".".to_vec(),
            },
            crate::vfs::DirEntry {
                ino: 1,
                kind: 4,
                name: b"..".to_vec(),
            },
        ];
        v.extend(p.d.inode.readdir()?);
        *dir = Some(v);
    }
    let entries = dir.as_ref().map(|d| d.as_slice()).unwrap_or(&[]);
    let mut out = Vec::new();
    let mut i = *pos as usize;
    while i < entries.len() {
        let e = &entries[i];
        let reclen = (19 + e.name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > count {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&((i + 1) as i64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(e.kind);
        out.extend_from_slice(&e.name);
        out.resize(start + reclen, 0);
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(buf, &out)?;
    *pos = i as u64;
    Ok(out.len() as u64)
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
