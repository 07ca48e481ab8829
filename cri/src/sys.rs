//! Host calls of moat-cri beyond std (its only unsafe code): network namespaces ([`crate::netns`]),
//! the one interface flag they need, and killing a CNI plugin's process group. Each wrapper takes paths and fds the caller owns for the
//! duration of the call; none keeps a pointer past it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    let r = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    check(r).map(drop)
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
