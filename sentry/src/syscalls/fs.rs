//! Filesystem syscalls on paths: stat family, mkdir, unlink, rename, links, permissions,
//! times, cwd.

use super::file::{AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW};
use super::Args;
use crate::abi::{Errno, Stat, SysResult, Timespec, Timeval};
use crate::kernel::Task;
use crate::vfs::{Follow, NewNode, SetAttr, VPath, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

fn follow_flag(flags: u32) -> Follow {
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

fn stat_at(t: &mut Task, dirfd: i32, pathp: u64, out: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(pathp)?;
    let st = stat_path(t, dirfd, &path, flags)?;
    t.mm.write_obj(out, &st)?;
    Ok(0)
}

/// The attributes of `path` under `dirfd`, or of `dirfd` itself for an empty path with
/// AT_EMPTY_PATH (which also covers files without a path, like pipes).
fn stat_path(t: &Task, dirfd: i32, path: &[u8], flags: u32) -> Result<Stat, Errno> {
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        return fd_stat(t, dirfd);
    }
    t.lookup_at(dirfd, path, follow_flag(flags), flags & AT_EMPTY_PATH != 0)?
        .d
        .inode
        .stat()
}

fn fd_stat(t: &Task, fd: i32) -> Result<Stat, Errno> {
    let f = t.file(fd)?;
    match &f.inode {
        Some(i) => i.stat(),
        None => Ok(Stat {
            mode: 0o600,
            nlink: 1,
            blksize: 4096,
            ..Stat::default()
        }),
    }
}

pub fn sys_stat(t: &mut Task, a: &Args) -> SysResult {
    stat_at(t, AT_FDCWD, a.ptr(0), a.ptr(1), 0)
}
pub fn sys_lstat(t: &mut Task, a: &Args) -> SysResult {
    stat_at(t, AT_FDCWD, a.ptr(0), a.ptr(1), AT_SYMLINK_NOFOLLOW)
}
pub fn sys_newfstatat(t: &mut Task, a: &Args) -> SysResult {
    stat_at(t, a.fd(0), a.ptr(1), a.ptr(2), a.u32(3))
}
pub fn sys_fstat(t: &mut Task, a: &Args) -> SysResult {
    let st = fd_stat(t, a.fd(0))?;
    t.mm.write_obj(a.ptr(1), &st)?;
    Ok(0)
}

pub fn sys_statx(t: &mut Task, a: &Args) -> SysResult {
    let (dirfd, flags, mask, out) = (a.fd(0), a.u32(2), a.u32(3), a.ptr(4));
    const STATX_RESERVED: u32 = 0x8000_0000;
    if mask & STATX_RESERVED != 0 || flags & 0x6000 == 0x6000 {
        return Err(Errno::EINVAL);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(a.ptr(1))?;
    let st = stat_path(t, dirfd, &path, flags)?;
    let mut b = [0u8; 256];
    let put32 = |b: &mut [u8; 256], o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut [u8; 256], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    put32(&mut b, 0, 0x7ff); // STATX_BASIC_STATS
    put32(&mut b, 4, st.blksize as u32);
    put64(&mut b, 8, 0);
    put32(&mut b, 16, st.nlink as u32);
    put32(&mut b, 20, st.uid);
    put32(&mut b, 24, st.gid);
    b[28..30].copy_from_slice(&(st.mode as u16).to_le_bytes());
    put64(&mut b, 32, st.ino);
    put64(&mut b, 40, st.size as u64);
    put64(&mut b, 48, st.blocks as u64);
    let ts = |b: &mut [u8; 256], o: usize, s: i64, n: i64| {
        b[o..o + 8].copy_from_slice(&s.to_le_bytes());
        b[o + 8..o + 12].copy_from_slice(&(n as u32).to_le_bytes());
    };
    ts(&mut b, 64, st.atime, st.atime_nsec);
    ts(&mut b, 80, st.ctime, st.ctime_nsec);
    ts(&mut b, 96, st.ctime, st.ctime_nsec);
    ts(&mut b, 112, st.mtime, st.mtime_nsec);
    put32(&mut b, 128, (st.rdev >> 8) as u32 & 0xfff);
    put32(&mut b, 132, (st.rdev & 0xff) as u32);
    put32(&mut b, 136, (st.dev >> 8) as u32 & 0xfff);
    put32(&mut b, 140, (st.dev & 0xff) as u32);
    t.mm.copy_out(out, &b)?;
    Ok(0)
}

fn mkdir_at(t: &mut Task, dirfd: i32, pathp: u64, mode: u32) -> SysResult {
    let path = t.path_arg(pathp)?;
    let (parent, name) = t.parent_at(dirfd, &path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    if parent.d.child(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if parent.mnt.readonly {
        return Err(Errno::EROFS);
    }
    let umask = t.fsctx().umask;
    parent.d.inode.create(
        &name,
        NewNode::Dir {
            mode: mode & 0o7777 & !umask,
        },
        (t.creds.euid, t.creds.egid),
    )?;
    parent.d.forget(&name);
    Ok(0)
}
pub fn sys_mkdir(t: &mut Task, a: &Args) -> SysResult {
    mkdir_at(t, AT_FDCWD, a.ptr(0), a.u32(1))
}
pub fn sys_mkdirat(t: &mut Task, a: &Args) -> SysResult {
    mkdir_at(t, a.fd(0), a.ptr(1), a.u32(2))
}

fn mknod_at(t: &mut Task, dirfd: i32, pathp: u64, mode: u32, dev: u64) -> SysResult {
    let path = t.path_arg(pathp)?;
    let kind = if mode & S_IFMT == 0 {
        S_IFREG
    } else {
        mode & S_IFMT
    };
    let (parent, name) = t.parent_at(dirfd, &path)?;
    if parent.d.child(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if parent.mnt.readonly {
        return Err(Errno::EROFS);
    }
    let umask = t.fsctx().umask;
    let perm = mode & 0o7777 & !umask;
    let node = match kind {
        S_IFREG => NewNode::File { mode: perm },
        S_IFDIR => return Err(Errno::EPERM),
        k => NewNode::Node {
            mode: k | perm,
            rdev: dev,
        },
    };
    parent
        .d
        .inode
        .create(&name, node, (t.creds.euid, t.creds.egid))?;
    parent.d.forget(&name);
    Ok(0)
}
pub fn sys_mknod(t: &mut Task, a: &Args) -> SysResult {
    mknod_at(t, AT_FDCWD, a.ptr(0), a.u32(1), a.u64(2))
}
pub fn sys_mknodat(t: &mut Task, a: &Args) -> SysResult {
    mknod_at(t, a.fd(0), a.ptr(1), a.u32(2), a.u64(3))
}

pub fn sys_creat(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    let flags = crate::vfs::file::O_CREAT | crate::vfs::file::O_WRONLY | crate::vfs::file::O_TRUNC;
    let f = t.open_path(AT_FDCWD, &path, flags, a.u32(1))?;
    t.install(f, false).map(|fd| fd as u64)
}

fn unlink_at(t: &mut Task, dirfd: i32, pathp: u64, flags: u32) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(pathp)?;
    let rmdir = flags & AT_REMOVEDIR != 0;
    let (parent, name) = t.parent_at(dirfd, &path)?;
    if rmdir {
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
    } else if name == b"." || name == b".." {
        return Err(Errno::EISDIR);
    }
    let child = parent.d.child(&name)?;
    let kind = child.inode.kind();
    if rmdir && kind != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    if !rmdir && kind == S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if !rmdir && path.ends_with(b"/") {
        return Err(Errno::ENOTDIR);
    }
    if parent.mnt.readonly {
        return Err(Errno::EROFS);
    }
    parent.d.inode.unlink(&name, rmdir)?;
    parent.d.forget(&name);
    child.kill();
    Ok(0)
}
pub fn sys_unlink(t: &mut Task, a: &Args) -> SysResult {
    unlink_at(t, AT_FDCWD, a.ptr(0), 0)
}
pub fn sys_rmdir(t: &mut Task, a: &Args) -> SysResult {
    unlink_at(t, AT_FDCWD, a.ptr(0), AT_REMOVEDIR)
}
pub fn sys_unlinkat(t: &mut Task, a: &Args) -> SysResult {
    unlink_at(t, a.fd(0), a.ptr(1), a.u32(2))
}

fn rename_at(t: &mut Task, ofd: i32, op: u64, nfd: i32, np: u64, flags: u32) -> SysResult {
    const NOREPLACE: u32 = 1;
    const EXCHANGE: u32 = 2;
    if flags & !(NOREPLACE | EXCHANGE | 4) != 0
        || flags & (NOREPLACE | EXCHANGE) == (NOREPLACE | EXCHANGE)
    {
        return Err(Errno::EINVAL);
    }
    let old = t.path_arg(op)?;
    let new = t.path_arg(np)?;
    let (op_, oname) = t.parent_at(ofd, &old)?;
    let (np_, nname) = t.parent_at(nfd, &new)?;
    for n in [&oname, &nname] {
        if n.as_slice() == b"." || n.as_slice() == b".." {
            return Err(Errno::EBUSY);
        }
    }
    let src = op_.d.child(&oname)?;
    if src.inode.kind() != S_IFDIR && (old.ends_with(b"/") || new.ends_with(b"/")) {
        return Err(Errno::ENOTDIR);
    }
    if !std::sync::Arc::ptr_eq(&op_.mnt, &np_.mnt) {
        return Err(Errno::EXDEV);
    }
    if op_.mnt.readonly {
        return Err(Errno::EROFS);
    }
    match np_.d.child(&nname) {
        Ok(dst) => {
            if flags & NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if std::sync::Arc::ptr_eq(&dst, &src) || same_file(&dst.inode, &src.inode) {
                // Two names of one inode: rename does nothing.
                return Ok(0);
            }
            let (sk, dk) = (src.inode.kind(), dst.inode.kind());
            if sk == S_IFDIR && dk != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            if sk != S_IFDIR && dk == S_IFDIR {
                return Err(Errno::EISDIR);
            }
        }
        Err(Errno::ENOENT) if flags & EXCHANGE != 0 => return Err(Errno::ENOENT),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    // A directory may not move into itself.
    if src.inode.kind() == S_IFDIR {
        let mut d = Some(np_.d.clone());
        while let Some(x) = d {
            if std::sync::Arc::ptr_eq(&x, &src) {
                return Err(Errno::EINVAL);
            }
            d = x.parent();
        }
    }
    op_.d.inode.rename(&oname, &np_.d.inode, &nname, flags)?;
    op_.d.moved(&oname, &np_.d, &nname);
    if flags & EXCHANGE != 0 {
        np_.d.forget(&nname);
        op_.d.forget(&oname);
    }
    Ok(0)
}
pub fn sys_rename(t: &mut Task, a: &Args) -> SysResult {
    rename_at(t, AT_FDCWD, a.ptr(0), AT_FDCWD, a.ptr(1), 0)
}
pub fn sys_renameat(t: &mut Task, a: &Args) -> SysResult {
    rename_at(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), 0)
}
pub fn sys_renameat2(t: &mut Task, a: &Args) -> SysResult {
    rename_at(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.u32(4))
}

fn link_at(t: &mut Task, ofd: i32, op: u64, nfd: i32, np: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = t.path_arg(op)?;
    let new = t.path_arg(np)?;
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 {
        Follow::Yes
    } else {
        Follow::No
    };
    let src = t.lookup_at(ofd, &old, follow, flags & AT_EMPTY_PATH != 0)?;
    if src.d.inode.kind() == S_IFDIR {
        return Err(Errno::EPERM);
    }
    let (parent, name) = t.parent_at(nfd, &new)?;
    if parent.d.child(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if !std::sync::Arc::ptr_eq(&src.mnt, &parent.mnt) {
        return Err(Errno::EXDEV);
    }
    parent.d.inode.link(&name, &src.d.inode)?;
    parent.d.forget(&name);
    Ok(0)
}
pub fn sys_link(t: &mut Task, a: &Args) -> SysResult {
    link_at(t, AT_FDCWD, a.ptr(0), AT_FDCWD, a.ptr(1), 0)
}
pub fn sys_linkat(t: &mut Task, a: &Args) -> SysResult {
    link_at(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.u32(4))
}

fn symlink_at(t: &mut Task, tp: u64, nfd: i32, np: u64) -> SysResult {
    let target = t.path_arg(tp)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let new = t.path_arg(np)?;
    let (parent, name) = t.parent_at(nfd, &new)?;
    if parent.d.child(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if parent.mnt.readonly {
        return Err(Errno::EROFS);
    }
    parent.d.inode.create(
        &name,
        NewNode::Symlink { target },
        (t.creds.euid, t.creds.egid),
    )?;
    parent.d.forget(&name);
    Ok(0)
}
pub fn sys_symlink(t: &mut Task, a: &Args) -> SysResult {
    symlink_at(t, a.ptr(0), AT_FDCWD, a.ptr(1))
}
pub fn sys_symlinkat(t: &mut Task, a: &Args) -> SysResult {
    symlink_at(t, a.ptr(0), a.fd(1), a.ptr(2))
}

fn readlink_at(t: &mut Task, dirfd: i32, pathp: u64, buf: u64, size: i64) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(pathp)?;
    let p = t.lookup_at(dirfd, &path, Follow::No, true)?;
    if p.d.inode.kind() != S_IFLNK {
        return Err(Errno::EINVAL);
    }
    let target = match p.d.inode.magic_link(t) {
        Some(vp) => {
            let root = t.fsctx().root;
            t.k.vfs.path_of(&root, &vp)
        }
        None => p.d.inode.readlink()?,
    };
    let n = target.len().min(size as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}
pub fn sys_readlink(t: &mut Task, a: &Args) -> SysResult {
    readlink_at(t, AT_FDCWD, a.ptr(0), a.ptr(1), a.i64(2))
}
pub fn sys_readlinkat(t: &mut Task, a: &Args) -> SysResult {
    readlink_at(t, a.fd(0), a.ptr(1), a.ptr(2), a.i64(3))
}

fn setattr_path(
    t: &mut Task,
    dirfd: i32,
    pathp: u64,
    follow: Follow,
    empty: bool,
    attr: SetAttr,
) -> SysResult {
    let path = t.path_arg(pathp)?;
    let p = t.lookup_at(dirfd, &path, follow, empty)?;
    if p.mnt.readonly {
        return Err(Errno::EROFS);
    }
    p.d.inode.setattr(&attr)?;
    Ok(0)
}

fn setattr_fd(t: &mut Task, fd: i32, attr: SetAttr) -> SysResult {
    let f = t.file(fd)?;
    let i = f.inode.clone().ok_or(Errno::EBADF)?;
    if f.path.as_ref().is_some_and(|p| p.mnt.readonly) {
        return Err(Errno::EROFS);
    }
    i.setattr(&attr)?;
    Ok(0)
}

fn mode_attr(mode: u32) -> SetAttr {
    SetAttr {
        mode: Some(mode & 0o7777),
        ..SetAttr::default()
    }
}

pub fn sys_chmod(t: &mut Task, a: &Args) -> SysResult {
    setattr_path(
        t,
        AT_FDCWD,
        a.ptr(0),
        Follow::Yes,
        false,
        mode_attr(a.u32(1)),
    )
}
pub fn sys_fchmod(t: &mut Task, a: &Args) -> SysResult {
    setattr_fd(t, a.fd(0), mode_attr(a.u32(1)))
}
pub fn sys_fchmodat(t: &mut Task, a: &Args) -> SysResult {
    setattr_path(
        t,
        a.fd(0),
        a.ptr(1),
        Follow::Yes,
        false,
        mode_attr(a.u32(2)),
    )
}

fn own_attr(uid: i32, gid: i32) -> SetAttr {
    SetAttr {
        uid: (uid != -1).then_some(uid as u32),
        gid: (gid != -1).then_some(gid as u32),
        ..SetAttr::default()
    }
}
pub fn sys_chown(t: &mut Task, a: &Args) -> SysResult {
    setattr_path(
        t,
        AT_FDCWD,
        a.ptr(0),
        Follow::Yes,
        false,
        own_attr(a.i32(1), a.i32(2)),
    )
}
pub fn sys_lchown(t: &mut Task, a: &Args) -> SysResult {
    setattr_path(
        t,
        AT_FDCWD,
        a.ptr(0),
        Follow::No,
        false,
        own_attr(a.i32(1), a.i32(2)),
    )
}
pub fn sys_fchown(t: &mut Task, a: &Args) -> SysResult {
    setattr_fd(t, a.fd(0), own_attr(a.i32(1), a.i32(2)))
}
pub fn sys_fchownat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    setattr_path(
        t,
        a.fd(0),
        a.ptr(1),
        follow_flag(flags),
        flags & AT_EMPTY_PATH != 0,
        own_attr(a.i32(2), a.i32(3)),
    )
}

pub fn sys_umask(t: &mut Task, a: &Args) -> SysResult {
    let mut fs = t.fs.lock().unwrap_or_else(|e| e.into_inner());
    let old = fs.umask;
    fs.umask = a.u32(0) & 0o777;
    Ok(u64::from(old))
}

pub fn sys_truncate(t: &mut Task, a: &Args) -> SysResult {
    if a.i64(1) < 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(a.ptr(0))?;
    let p = t.lookup_at(AT_FDCWD, &path, Follow::Yes, false)?;
    match p.d.inode.kind() {
        S_IFDIR => return Err(Errno::EISDIR),
        S_IFREG => {}
        _ => return Err(Errno::EINVAL),
    }
    if p.mnt.readonly {
        return Err(Errno::EROFS);
    }
    p.d.inode.setattr(&SetAttr {
        size: Some(a.u64(1)),
        ..SetAttr::default()
    })?;
    Ok(0)
}

fn times_attr(t: &Task, ptr: u64) -> Result<SetAttr, Errno> {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    if ptr == 0 {
        return Ok(SetAttr {
            atime: Some(None),
            mtime: Some(None),
            ..SetAttr::default()
        });
    }
    let ts: [Timespec; 2] = [t.mm.read_obj(ptr)?, t.mm.read_obj(ptr + 16)?];
    let conv = |x: Timespec| -> Result<Option<Option<(i64, u64)>>, Errno> {
        match x.nsec {
            UTIME_OMIT => Ok(None),
            UTIME_NOW => Ok(Some(None)),
            n if (0..1_000_000_000).contains(&n) => Ok(Some(Some((x.sec, n as u64)))),
            _ => Err(Errno::EINVAL),
        }
    };
    Ok(SetAttr {
        atime: conv(ts[0])?,
        mtime: conv(ts[1])?,
        ..SetAttr::default()
    })
}

pub fn sys_utimensat(t: &mut Task, a: &Args) -> SysResult {
    let (dirfd, pathp, flags) = (a.fd(0), a.ptr(1), a.u32(3));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let attr = times_attr(t, a.ptr(2))?;
    if pathp == 0 {
        return setattr_fd(t, dirfd, attr);
    }
    setattr_path(
        t,
        dirfd,
        pathp,
        follow_flag(flags),
        flags & AT_EMPTY_PATH != 0,
        attr,
    )
}

pub fn sys_utimes(t: &mut Task, a: &Args) -> SysResult {
    let attr = if a.ptr(1) == 0 {
        SetAttr {
            atime: Some(None),
            mtime: Some(None),
            ..SetAttr::default()
        }
    } else {
        let tv: [Timeval; 2] = [t.mm.read_obj(a.ptr(1))?, t.mm.read_obj(a.ptr(1) + 16)?];
        SetAttr {
            atime: Some(Some((tv[0].sec, (tv[0].usec * 1000) as u64))),
            mtime: Some(Some((tv[1].sec, (tv[1].usec * 1000) as u64))),
            ..SetAttr::default()
        }
    };
    setattr_path(t, AT_FDCWD, a.ptr(0), Follow::Yes, false, attr)
}

fn access_at(t: &mut Task, dirfd: i32, pathp: u64, mode: u32, flags: u32) -> SysResult {
    if mode & !7 != 0
        || flags & !(super::file::AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(pathp)?;
    let p = t.lookup_at(dirfd, &path, follow_flag(flags), flags & AT_EMPTY_PATH != 0)?;
    if mode & 2 != 0 && p.mnt.readonly && p.d.inode.kind() != S_IFDIR {
        return Err(Errno::EROFS);
    }
    let st = p.d.inode.stat()?;
    let uid = if flags & super::file::AT_EACCESS != 0 {
        t.creds.euid
    } else {
        t.creds.uid
    };
    if uid == 0 {
        // root: X needs some x bit (or a directory).
        if mode & 1 != 0 && st.mode & 0o111 == 0 && st.mode & S_IFMT != S_IFDIR {
            return Err(Errno::EACCES);
        }
        return Ok(0);
    }
    let bits = if st.uid == uid {
        (st.mode >> 6) & 7
    } else if st.gid == t.creds.egid || t.creds.groups.contains(&st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    if bits & mode != mode {
        return Err(Errno::EACCES);
    }
    Ok(0)
}
pub fn sys_access(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, AT_FDCWD, a.ptr(0), a.u32(1), 0)
}
pub fn sys_faccessat(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, a.fd(0), a.ptr(1), a.u32(2), 0)
}
pub fn sys_faccessat2(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, a.fd(0), a.ptr(1), a.u32(2), a.u32(3))
}

pub fn sys_getcwd(t: &mut Task, a: &Args) -> SysResult {
    let ctx = t.fsctx();
    if ctx.cwd.d.is_dead() {
        return Err(Errno::ENOENT);
    }
    let mut p = t.k.vfs.path_of(&ctx.root, &ctx.cwd);
    p.push(0);
    if p.len() > a.usize(1) {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a.ptr(0), &p)?;
    Ok(p.len() as u64)
}

fn set_cwd(t: &mut Task, p: VPath) -> SysResult {
    if p.d.inode.kind() != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    t.fs.lock().unwrap_or_else(|e| e.into_inner()).cwd = p;
    Ok(0)
}
pub fn sys_chdir(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    let p = t.lookup_at(AT_FDCWD, &path, Follow::Yes, false)?;
    set_cwd(t, p)
}
pub fn sys_fchdir(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    let p = f.path.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(t, p)
}

fn write_statfs(t: &Task, out: u64, s: crate::vfs::FsStat) -> SysResult {
    let v: [u64; 15] = [
        s.kind, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 0, s.namelen, s.bsize, 0,
        0, 0, 0, 0,
    ];
    for (i, x) in v.iter().enumerate() {
        t.mm.write_obj(out + 8 * i as u64, x)?;
    }
    Ok(0)
}
pub fn sys_statfs(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    let p = t.lookup_at(AT_FDCWD, &path, Follow::Yes, false)?;
    let s = p.d.inode.statfs()?;
    write_statfs(t, a.ptr(1), s)
}
pub fn sys_fstatfs(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    let s = match &f.inode {
        Some(i) => i.statfs()?,
        None => crate::vfs::FsStat {
            kind: 0x5049_5045,
            bsize: 4096,
            namelen: 255,
            ..Default::default()
        },
    };
    write_statfs(t, a.ptr(1), s)
}

/// getxattr family: no filesystem here stores extended attributes.
pub fn sys_getxattr(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    t.lookup_at(AT_FDCWD, &path, Follow::Yes, false)?;
    Err(Errno::ENODATA)
}
pub fn sys_lgetxattr(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    t.lookup_at(AT_FDCWD, &path, Follow::No, false)?;
    Err(Errno::ENODATA)
}
pub fn sys_fgetxattr(t: &mut Task, a: &Args) -> SysResult {
    t.file(a.fd(0))?;
    Err(Errno::ENODATA)
}
pub fn sys_listxattr(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    t.lookup_at(AT_FDCWD, &path, Follow::Yes, false)?;
    Ok(0)
}
pub fn sys_llistxattr(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    t.lookup_at(AT_FDCWD, &path, Follow::No, false)?;
    Ok(0)
}
pub fn sys_flistxattr(t: &mut Task, a: &Args) -> SysResult {
    t.file(a.fd(0))?;
    Ok(0)
}
pub fn sys_setxattr(_t: &mut Task, _a: &Args) -> SysResult {
    Err(Errno::EOPNOTSUPP)
}

fn same_file(a: &crate::vfs::InodeRef, b: &crate::vfs::InodeRef) -> bool {
    match (a.stat(), b.stat()) {
        (Ok(x), Ok(y)) => x.dev == y.dev && x.ino == y.ino,
        _ => false,
    }
}
