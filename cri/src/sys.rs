//! Host calls of moat-cri beyond std (its only unsafe code): network namespaces ([`crate::netns`]),
//! the one interface flag they need, killing a CNI plugin's process group, overlayfs whiteouts
//! and the mounts of container roots ([`crate::rootfs`]). Each wrapper takes paths and fds the caller owns for the
//! duration of the call; none keeps a pointer past it.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

/// Moves the calling thread alone into a new, empty network namespace (unshare(CLONE_NEWNET)).
/// The other threads of the process keep theirs.
pub(crate) fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare(2) takes no pointers; CLONE_NEWNET only changes the calling thread's
    // network namespace, which no Rust invariant depends on.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) }).map(drop)
}

/// Moves the calling thread into the network namespace `ns` refers to (setns(2)).
pub(crate) fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `ns` is an open fd borrowed for the call; setns(2) only changes the calling
    // thread's network namespace.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// Bind-mounts `src` onto the existing file `dst` (mount(2) with MS_BIND).
pub(crate) fn bind_mount(src: &Path, dst: &Path) -> io::Result<()> {
    let (src, dst) = (c_path(src)?, c_path(dst)?);
    // SAFETY: `src` and `dst` are NUL-terminated strings alive for the call; a bind mount
    // ignores the file system type and data arguments, which may be null.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    check(r).map(drop)
}

/// Lazily unmounts `path` (umount2(2) with MNT_DETACH | UMOUNT_NOFOLLOW).
pub(crate) fn detach_unmount(path: &Path) -> io::Result<()> {
    detach_unmount_path(&c_path(path)?)
}

/// Whether `fd` is a file of the nsfs file system (a namespace, as /proc/*/ns/* and their bind
/// mounts are).
pub(crate) fn is_nsfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero statfs is a valid value (integers only).
    let mut st: libc::statfs = unsafe { mem::zeroed() };
    // SAFETY: `fd` is open for the call and `st` a writable statfs the kernel fills.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    Ok(st.f_type == libc::NSFS_MAGIC)
}

/// Sets IFF_UP on the interface `name` of the calling thread's network namespace.
pub(crate) fn set_link_up(name: &str) -> io::Result<()> {
    // SAFETY: socket(2) takes no pointers.
    let raw =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` was just returned by socket(2) and is owned by no one else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero ifreq is a valid value (a name array and a union of plain data).
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    // SAFETY: `req` is a valid ifreq naming the interface, which SIOCGIFFLAGS reads and fills.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds the flags it wrote.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
    if flags & up != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | up;
    // SAFETY: `req` is a valid ifreq naming the interface with the new flags, which
    // SIOCSIFFLAGS only reads.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

/// Sends SIGKILL to every process of the process group `pgid`.
pub(crate) fn kill_process_group(pgid: u32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill(2) takes no pointers; a negative pid names the process group `pgid` (> 1, so
    // never "every process").
    check(unsafe { libc::kill(-pgid, libc::SIGKILL) }).map(drop)
}

/// Makes an overlayfs whiteout at `path`: a character device 0/0 (mknod(2)).
pub(crate) fn mknod_whiteout(path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string alive for the call; device 0/0 is the
    // whiteout overlayfs defines, which no driver backs.
    check(unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR, 0) }).map(drop)
}

/// The overlayfs xattr that makes a directory opaque.
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";

/// Marks the directory `path` opaque for overlayfs (lower layers' entries are hidden).
pub(crate) fn set_opaque(path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: `path` and the name are NUL-terminated strings and the value a 1-byte buffer,
    // all alive for the call; lsetxattr(2) does not follow a final symlink.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            OPAQUE_XATTR.as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    check(r).map(drop)
}

/// Whether the directory `path` is marked opaque for overlayfs.
pub(crate) fn is_opaque(path: &Path) -> io::Result<bool> {
    let path = c_path(path)?;
    let mut value = [0u8; 4];
    // SAFETY: `path` and the name are NUL-terminated strings alive for the call and `value` a
    // writable buffer of the length passed.
    let r = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            OPAQUE_XATTR.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA | libc::ENOTSUP) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(value.get(..usize::try_from(r).unwrap_or(0)) == Some(&b"y"[..]))
}

/// Mounts an overlay of `lower` (top first) under `upper`/`work` at `target`: with the mount
/// API and one `lowerdir+` per layer (Linux 6.8+: no limit on the number of layers), else with
/// mount(2), whose options must fit one page.
pub(crate) fn mount_overlay(
    lower: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    match mount_overlay_api(lower, upper, work, target) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => {
            mount_overlay_legacy(lower, upper, work, target)
        }
        r => r,
    }
}

/// fsconfig(2) with a string value (`key` set to `value`).
fn fs_set_string(fs: BorrowedFd<'_>, key: &CStr, value: &Path) -> io::Result<()> {
    let v = c_path(value)?;
    // SAFETY: `key` and `v` are NUL-terminated strings alive for the call; fsconfig reads
    // them only during it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn owned_fd(r: libc::c_long) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mount_overlay_api(lower: &[&Path], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    // SAFETY: the name is a static NUL-terminated string.
    let fs = owned_fd(unsafe {
        libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), libc::FSOPEN_CLOEXEC)
    })?;
    for l in lower {
        fs_set_string(fs.as_fd(), c"lowerdir+", l)?;
    }
    fs_set_string(fs.as_fd(), c"upperdir", upper)?;
    fs_set_string(fs.as_fd(), c"workdir", work)?;
    // SAFETY: CMD_CREATE takes no key or value (null pointers).
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let attrs = libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
    // SAFETY: fsmount takes the fs context fd and flags, no pointers.
    let mnt = owned_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    })?;
    let t = c_path(target)?;
    // SAFETY: the empty path and `t` are NUL-terminated strings alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mount_overlay_legacy(
    lower: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    let mut data = b"lowerdir=".to_vec();
    for (i, l) in lower.iter().enumerate() {
        let bytes = l.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b':' | b',' | b'\\')) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "layer path has a character overlayfs options cannot carry",
            ));
        }
        if i > 0 {
            data.push(b':');
        }
        data.extend_from_slice(bytes);
    }
    for (key, p) in [(&b",upperdir="[..], upper), (b",workdir=", work)] {
        data.extend_from_slice(key);
        data.extend_from_slice(p.as_os_str().as_bytes());
    }
    // One page is all mount(2) copies of the options.
    if data.len() >= 4095 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many layers for one overlay mount",
        ));
    }
    let data = CString::new(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let target = c_path(target)?;
    // SAFETY: all pointers are NUL-terminated strings alive for the call.
    let r = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_NODEV | libc::MS_NOSUID,
            data.as_ptr().cast(),
        )
    };
    check(r).map(drop)
}

fn detach_unmount_path(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    let r = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    check(r).map(drop)
}

/// Opens `path` beneath the directory `root` as if `root` were `/` (openat2(2) with
/// RESOLVE_IN_ROOT: `..` and absolute symlinks stay inside it; no magic links).
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = c_path(rel)?;
    // SAFETY: an all-zero open_how is a valid value (integers only).
    let mut how: libc::open_how = unsafe { mem::zeroed() };
    how.flags = u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0);
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: `c` is a NUL-terminated string and `how` an open_how, both alive for the
        // call; the size passed is the struct's.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                mem::size_of::<libc::open_how>(),
            )
        };
        match owned_fd(r) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

/// Makes the directory `name` in the directory `dir` (mkdirat(2)); an existing one is fine.
pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    let c = c_path(Path::new(name))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    match check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r.map(drop),
    }
}

/// Makes the empty file `name` in the directory `dir` if nothing is there (never through a
/// symlink).
pub(crate) fn touch_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    let c = c_path(Path::new(name))?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    match check(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode) }) {
        // SAFETY: openat returned a new fd that nothing else owns; it is closed at once.
        Ok(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sets `attrs` on the mount `fd` refers to (and on every mount beneath it if `recursive`).
fn set_attr(fd: BorrowedFd<'_>, attrs: u64, recursive: bool) -> io::Result<()> {
    // SAFETY: an all-zero mount_attr is a valid value (integers only).
    let mut attr: libc::mount_attr = unsafe { mem::zeroed() };
    attr.attr_set = attrs;
    let mut at = libc::AT_EMPTY_PATH;
    if recursive {
        at |= libc::AT_RECURSIVE;
    }
    // SAFETY: the empty path is a static NUL-terminated string and `attr` a mount_attr, both
    // alive for the call; the size passed is the struct's.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const libc::mount_attr,
            mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bind-mounts `src` (with the mounts beneath it) onto the open mount point `target`, which
/// must be of the same kind (file or directory): open_tree(2), mount_setattr(2) for read-only
/// (only the top mount, or every mount with `recursive_ro`), move_mount(2).
pub(crate) fn attach_bind(
    src: &Path,
    target: BorrowedFd<'_>,
    read_only: bool,
    recursive_ro: bool,
) -> io::Result<()> {
    let c = c_path(src)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let tree =
        owned_fd(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) })?;
    // Nothing bound in may give the host a setuid file or a device node.
    set_attr(
        tree.as_fd(),
        libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        true,
    )?;
    if read_only || recursive_ro {
        set_attr(tree.as_fd(), libc::MOUNT_ATTR_RDONLY, recursive_ro)?;
    }
    // SAFETY: both paths are static empty NUL-terminated strings; the fds are open for the
    // call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the mount at `path` read-only (that mount only, not those beneath it).
pub(crate) fn set_read_only(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let fd = owned_fd(unsafe { libc::open(c.as_ptr(), flags) }.into())?;
    set_attr(fd.as_fd(), libc::MOUNT_ATTR_RDONLY, false)
}

/// The target of the symlink `fd` was opened on (O_PATH | O_NOFOLLOW), by readlinkat(2) with an
/// empty path.
pub(crate) fn read_link_fd(fd: BorrowedFd<'_>) -> io::Result<std::path::PathBuf> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: the path is a static empty NUL-terminated string and `buf` a writable buffer of
    // the length passed.
    let r = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(r).map_err(|_| io::Error::last_os_error())?;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(std::path::PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of mounting an overlay give the same view (the top layer wins; the legacy
    /// one is what kernels before 6.8 get).
    #[test]
    fn overlay_mounts_by_the_mount_api_and_by_mount2() {
        let t = tempfile::tempdir().expect("tempdir");
        for (i, api) in [true, false].into_iter().enumerate() {
            let d = t.path().join(i.to_string());
            let (l1, l2, up, wk, m) = (
                d.join("l1"),
                d.join("l2"),
                d.join("u"),
                d.join("w"),
                d.join("m"),
            );
            for p in [&l1, &l2, &up, &wk, &m] {
                std::fs::create_dir_all(p).expect("mkdir");
            }
            std::fs::write(l1.join("a"), "low").expect("write");
            std::fs::write(l2.join("a"), "high").expect("write");
            std::fs::write(l1.join("b"), "only-low").expect("write");
            let lower = [l2.as_path(), l1.as_path()];
            let r = if api {
                mount_overlay_api(&lower, &up, &wk, &m)
            } else {
                mount_overlay_legacy(&lower, &up, &wk, &m)
            };
            r.expect("mount the overlay");
            let a = std::fs::read_to_string(m.join("a"));
            let b = std::fs::read_to_string(m.join("b"));
            detach_unmount(&m).expect("unmount");
            assert_eq!(a.expect("a"), "high");
            assert_eq!(b.expect("b"), "only-low");
        }
    }
}
