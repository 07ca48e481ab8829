//! Host syscall wrappers the safe modules of this crate build on (the only unsafe code here).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};

use moat_proto::boot::BOOT_FD;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

fn cvt_long(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_unit(r: libc::c_int) -> io::Result<()> {
    cvt(r).map(drop)
}

/// Takes ownership of a fd number the kernel just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall that created it, so it is open
    // and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A connected, close-on-exec SOCK_SEQPACKET unix socket pair.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid, writable array of two c_ints, as socketpair(2) requires.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((own(fds[0]), own(fds[1])))
}

/// An anonymous memory file (close-on-exec).
pub fn memfd(name: &str) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })?;
    Ok(own(fd))
}

/// Takes fd 3, the boot socket the runtime spawned this process with ([`spawn_with_boot_fd`]).
/// Fails with EBADF if it is not open or was already taken.
pub fn take_boot_fd() -> io::Result<OwnedFd> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor flags of fd 3; it fails if fd 3 is not open.
    cvt(unsafe { libc::fcntl(BOOT_FD, libc::F_GETFD) })?;
    // SAFETY: fd 3 is open (F_GETFD succeeded) and was handed to this process for it to own;
    // nothing in std claims it, and `TAKEN` makes this the only `OwnedFd` made from it.
    Ok(unsafe { OwnedFd::from_raw_fd(BOOT_FD) })
}

/// Spawns `cmd` with `fd` as its fd 3 (the boot socket, [`BOOT_FD`]), besides its stdio and
/// any fd the caller left without close-on-exec; `fd` is closed in this process once the child
/// has exec'd. `cmd` must not be spawned again (its pre-exec hook names this fd's number).
pub fn spawn_with_boot_fd(cmd: &mut Command, fd: OwnedFd) -> io::Result<Child> {
    // Below 3 the child's stdio set-up would overwrite it before the hook runs; a clone is
    // at 3 or above.
    let fd = if fd.as_raw_fd() < BOOT_FD {
        fd.try_clone()?
    } else {
        fd
    };
    let raw = fd.as_raw_fd();
    let hook = move || {
        // Its own session: a terminal's job-control signals go to the runtime, which
        // forwards them; and it dies with the runtime.
        // SAFETY: setsid and prctl(PR_SET_PDEATHSIG) are async-signal-safe, take no pointers.
        unsafe { libc::setsid() };
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        if raw == BOOT_FD {
            // SAFETY: fcntl(F_SETFD) is async-signal-safe and only clears FD_CLOEXEC on fd 3,
            // which this child inherited open.
            cvt_unit(unsafe { libc::fcntl(raw, libc::F_SETFD, 0) })
        } else {
            // SAFETY: dup2 is async-signal-safe; `raw` is open in the child (inherited from
            // `fd`, alive until spawn returns) and the copy at fd 3 is not close-on-exec.
            cvt_unit(unsafe { libc::dup2(raw, BOOT_FD) })
        }
    };
    // SAFETY: the hook runs in the forked child before exec; it calls only setsid, prctl,
    // fcntl or dup2 (async-signal-safe), allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(hook) };
    let child = cmd.spawn();
    drop(fd);
    child
}

/// Sets the file mode creation mask and returns the old one.
pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask(2) only swaps this process's mask; it cannot fail.
    unsafe { libc::umask(mask) }
}

/// unshare(2) of the namespaces in `flags` (CLONE_NEW*).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes no pointers; it only changes this process's namespaces.
    cvt_unit(unsafe { libc::unshare(flags) })
}

/// mount(2) without data.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let src = source.map_or(std::ptr::null(), CStr::as_ptr);
    let fstype = fstype.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: `src` and `fstype` are null or NUL-terminated, `target` is NUL-terminated, all
    // outlive the call; data is null, which every filesystem here accepts.
    cvt_unit(unsafe { libc::mount(src, target.as_ptr(), fstype, flags, std::ptr::null()) })
}

/// Makes the mount at `path` and every mount below it read-only (mount_setattr(2),
/// AT_RECURSIVE), which a MS_REMOUNT cannot do for submounts.
pub fn make_read_only_recursive(path: &CStr) -> io::Result<()> {
    /// `struct mount_attr` of linux/mount.h.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is NUL-terminated and `attr` is a `struct mount_attr` whose size is passed;
    // both outlive the call, and the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    cvt_long(r).map(drop)
}

/// pivot_root(2).
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both paths are NUL-terminated and outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    cvt_long(r).map(drop)
}

/// umount2(2).
pub fn umount2(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `target` is NUL-terminated and outlives the call.
    cvt_unit(unsafe { libc::umount2(target.as_ptr(), flags) })
}

/// Sets the socket's send buffer to `bytes` past the sysctl cap (SO_SNDBUFFORCE, needs
/// CAP_NET_ADMIN); a unix seqpacket socket cannot send a packet larger than this buffer.
pub fn force_send_buffer(sock: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    const SO_SNDBUFFORCE: libc::c_int = 32;
    let v = libc::c_int::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = libc::socklen_t::try_from(std::mem::size_of_val(&v))
        .map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `v` is a c_int that outlives the call and `len` is its size.
    cvt_unit(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_SNDBUFFORCE,
            (&v as *const libc::c_int).cast(),
            len,
        )
    })
}

/// openat2(2) of `path` relative to `dir`, with O_* `flags`, `mode` (with O_CREAT) and
/// RESOLVE_* `resolve`. Retried on EINTR and on the EAGAIN a concurrent rename can cause.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: all-zero is a valid `open_how` (no flags, mode or restrictions); the struct is
    // `#[non_exhaustive]`, so it cannot be built with a literal.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::try_from(flags).map_err(|_| io::ErrorKind::InvalidInput)?;
    how.mode = mode.into();
    how.resolve = resolve;
    for _ in 0..16 {
        // SAFETY: `path` is NUL-terminated, `how` is a valid `open_how` whose size is
        // passed; both outlive the call, and the kernel only reads them.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match cvt_long(r) {
            Ok(fd) => {
                let fd = RawFd::try_from(fd).map_err(|_| io::ErrorKind::InvalidData)?;
                return Ok(own(fd));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// fstatat(2); with AT_EMPTY_PATH and `""` it stats `dir` itself (an O_PATH fd will do).
pub fn fstatat(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is writable for one `struct stat`.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), path.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// fstatfs(2) (an O_PATH fd will do).
pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<libc::statfs> {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable for one `struct statfs`.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// getdents64(2): fills `buf` with `linux_dirent64` records; 0 at the end of the directory.
pub fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes for the whole call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    usize::try_from(cvt_long(r)?).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// readlinkat(2) into `buf`; returns the target's length.
pub fn readlinkat(dir: BorrowedFd<'_>, path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `path` is NUL-terminated and `buf` is writable for `buf.len()` bytes.
    let r = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            path.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    cvt_size(r)
}

/// mkdirat(2).
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt_unit(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// mknodat(2).
pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt_unit(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })
}

/// symlinkat(2): creates `name` in `dir` pointing at `target`.
pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `target` and `name` are NUL-terminated and outlive the call.
    cvt_unit(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// linkat(2).
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `old` and `new` are NUL-terminated and outlive the call.
    cvt_unit(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    })
}

/// unlinkat(2).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt_unit(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// renameat2(2), as the raw syscall (libc may turn flags 0 into renameat).
pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: libc::c_uint,
) -> io::Result<()> {
    // SAFETY: `old` and `new` are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    };
    cvt_long(r).map(drop)
}

/// fchownat(2); `u32::MAX` leaves the uid or gid as it is.
pub fn fchownat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    uid: u32,
    gid: u32,
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    cvt_unit(unsafe { libc::fchownat(dir.as_raw_fd(), path.as_ptr(), uid, gid, flags) })
}

/// fchmodat2(2) (Linux 6.6), which unlike libc's fchmodat honours AT_SYMLINK_NOFOLLOW and
/// AT_EMPTY_PATH without /proc.
pub fn fchmodat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    mode: libc::mode_t,
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            mode,
            flags,
        )
    };
    cvt_long(r).map(drop)
}

/// utimensat(2) with `[atime, mtime]` (UTIME_NOW / UTIME_OMIT allowed in tv_nsec).
pub fn utimensat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    times: &[libc::timespec; 2],
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and `times` is two timespecs; both outlive the call.
    cvt_unit(unsafe { libc::utimensat(dir.as_raw_fd(), path.as_ptr(), times.as_ptr(), flags) })
}

/// ftruncate(2).
pub fn ftruncate(fd: BorrowedFd<'_>, len: libc::off_t) -> io::Result<()> {
    // SAFETY: ftruncate takes no pointers; `fd` is open for the call.
    cvt_unit(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })
}

const fn cmsg_space(fds: usize) -> usize {
    // CMSG_SPACE(fds * 4) for x86-64: 16-byte header, payload rounded up to 8.
    16 + (fds * 4).div_ceil(8) * 8
}

/// sendmsg(2) of one packet with `fds` as SCM_RIGHTS.
pub fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = vec![0u64; cmsg_space(fds.len()) / 8];
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len());
        // SAFETY: msg_control points at `cbuf`, which is large enough for one cmsghdr.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let payload = std::mem::size_of_val(raw.as_slice());
        // SAFETY: `cmsg` is the first header inside `cbuf` (non-null since controllen > 0).
        let hdr = unsafe { &mut *cmsg };
        hdr.cmsg_level = libc::SOL_SOCKET;
        hdr.cmsg_type = libc::SCM_RIGHTS;
        hdr.cmsg_len = 16 + payload;
        // SAFETY: CMSG_DATA of a header inside `cbuf` has room for `payload` bytes, since
        // `cbuf` was sized with cmsg_space(fds.len()).
        let dst = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: `raw` holds `payload` bytes; `dst` has room for them; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), dst, payload) };
    }
    loop {
        // SAFETY: `msg` points at `iov` and `cbuf`, both alive for the call.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match cvt_size(r) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// recvmsg(2) of one packet; returns its length, the fds that came with it, and whether
/// the data or the fds were truncated.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>, bool)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = vec![0u64; cmsg_space(max_fds) / 8];
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = cmsg_space(max_fds);
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and `cbuf`, both alive and writable.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match cvt_size(r) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR reads only its control fields.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers returned by CMSG_FIRSTHDR/NXTHDR lie inside `cbuf`.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            let count = (hdr.cmsg_len.saturating_sub(16)) / 4;
            // SAFETY: the header lies inside `cbuf`; its data follows it.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            for i in 0..count {
                let mut raw: RawFd = 0;
                // SAFETY: the kernel wrote `count` fds after the header, inside `cbuf`; the
                // read may be unaligned, so it goes through a byte copy.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        data.wrapping_add(i * 4),
                        (&mut raw as *mut RawFd).cast::<u8>(),
                        4,
                    )
                };
                fds.push(own(raw));
            }
        }
        // SAFETY: `cmsg` is a valid header inside `msg`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    Ok((n, fds, truncated))
}
