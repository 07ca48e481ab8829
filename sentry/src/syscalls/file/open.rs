//! Path lookup and open for a task: fds to files, *at() resolution, open(2) and openat(2).

use std::sync::Arc;

use super::AT_FDCWD;
use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::syscalls::Args;
use crate::vfs::file::*;
use crate::vfs::{File, Follow, NewNode, SetAttr, VPath, S_IFDIR, S_IFLNK, S_IFREG};

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

    /// Opens an already resolved path.
    pub fn open_vpath(&self, p: VPath, flags: u32) -> Result<Arc<File>, Errno> {
        let ops = p.d.inode.open(&p.d.inode, flags)?;
        Ok(File::new(ops, Some(p.d.inode.clone()), Some(p), flags))
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
