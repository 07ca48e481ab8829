//! Host syscall wrappers of the sentry (its only unsafe code besides the platform's `sys`
//! and `mm/memfile.rs`). Each wrapper works on fds the sentry owns; none takes a path.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::abi::Pod;

/// The bytes of a Pod value.
pub fn pod_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` is plain old data: every byte is initialized and may be viewed as u8;
    // the slice borrows `v`, so it cannot outlive it.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// The bytes of a Pod value, writable (any bit pattern is a valid `T`).
pub fn pod_bytes_mut<T: Pod>(v: &mut T) -> &mut [u8] {
    // SAFETY: `T: Pod` accepts any bit pattern, so writes through the slice keep `v` valid;
    // the slice borrows `v` mutably, so nothing else aliases it.
    unsafe { std::slice::from_raw_parts_mut((v as *mut T).cast::<u8>(), std::mem::size_of::<T>()) }
}

fn ret(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], off: u64) -> io::Result<usize> {
    // SAFETY: `buf` is a writable sentry buffer of `buf.len()` bytes.
    ret(unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            off as i64,
        )
    })
}

pub fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], off: u64) -> io::Result<usize> {
    // SAFETY: `buf` is a readable sentry buffer of `buf.len()` bytes.
    ret(unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), off as i64) })
}

pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a writable sentry buffer of `buf.len()` bytes.
    ret(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a readable sentry buffer of `buf.len()` bytes.
    ret(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable struct stat. The raw syscall, because glibc's
    // fstat() is newfstatat(), which the sentry's seccomp filter does not allow.
    let r = unsafe { libc::syscall(libc::SYS_fstat, fd.as_raw_fd(), &mut st as *mut libc::stat) };
    ret(r as isize).map(|_| st)
}

pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fsync takes no pointers.
    ret(unsafe { libc::fsync(fd.as_raw_fd()) } as isize).map(|_| ())
}

pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    // SAFETY: ftruncate takes no pointers.
    ret(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) } as isize).map(|_| ())
}

/// poll(2) on one host fd; returns revents.
pub fn poll_one(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> io::Result<i16> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(p.revents);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// poll(2) on several host fds; returns each one's revents.
pub fn poll_fds(fds: &[(RawFd, i16)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `p` is a valid array of `p.len()` pollfds; poll reports bad fds as POLLNVAL.
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(p.iter().map(|x| x.revents).collect());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Keeps glibc's malloc to its main arena. A thread arena that shrinks reads
/// /proc/sys/vm/overcommit_memory, a path the confined sentry may not open.
pub fn malloc_single_arena() {
    // SAFETY: mallopt only changes allocator parameters; M_ARENA_MAX takes any positive value.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // Large buffers (socket rings) come straight from mmap: the kernel hands out zeroed
    // pages lazily, where a recycled heap chunk would be cleared with memset up front.
    // SAFETY: as above; the threshold is a byte count.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
}

/// Enters the network namespace `ns` (a netns file the runtime opened).
pub fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns takes an fd and a flag, no pointers.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(|_| ())
}

/// A host eventfd (non-blocking, close-on-exec), for waking sentry threads that sleep in poll(2).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a new fd is returned or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TCGETS on a host terminal fd the sentry was handed as the app's stdio.
pub fn tcgets(fd: BorrowedFd<'_>, t: &mut crate::abi::Termios) -> io::Result<()> {
    // SAFETY: `t` is a valid, writable kernel termios (the TCGETS layout).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS, t as *mut crate::abi::Termios) };
    ret(r as isize).map(|_| ())
}

/// TCSETS* on a host terminal fd the sentry was handed as the app's stdio.
pub fn tcsets(fd: BorrowedFd<'_>, req: u64, t: &crate::abi::Termios) -> io::Result<()> {
    // SAFETY: `t` is a valid kernel termios the kernel only reads; `req` is one of the
    // TCSETS/TCSETSW/TCSETSF requests (checked by the caller).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, t as *const crate::abi::Termios) };
    ret(r as isize).map(|_| ())
}

/// TIOCGWINSZ on a host terminal fd.
pub fn winsize(fd: BorrowedFd<'_>, w: &mut crate::abi::Winsize) -> io::Result<()> {
    // SAFETY: `w` is a valid, writable winsize.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            w as *mut crate::abi::Winsize,
        )
    };
    ret(r as isize).map(|_| ())
}

/// Fills `buf` with random bytes from the host.
pub fn getrandom(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a writable sentry buffer of `rest.len()` bytes.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r > 0 {
            done += r as usize;
        }
    }
}

/// clock_gettime(2) of a host clock.
pub fn clock_gettime(clock: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// Host sysinfo(2), for memory totals.
pub fn host_sysinfo() -> libc::sysinfo {
    // SAFETY: an all-zero sysinfo is a valid value to be overwritten.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is a valid, writable struct sysinfo.
    unsafe { libc::sysinfo(&mut si) };
    si
}

/// The host's auxv entry `kind` (hardware capabilities to pass on to the app).
pub fn hwcap(kind: u64) -> u64 {
    // SAFETY: getauxval reads the process's own auxiliary vector; it takes no pointers.
    unsafe { libc::getauxval(kind) }
}

/// Takes ownership of an inherited fd number (the boot socket).
pub fn take_fd(fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD takes no pointers; it only checks that `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and was handed to this process for it alone.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_file(path: &str, data: &str) -> io::Result<()> {
    std::fs::write(path, data)
}

/// Enters new user (root mapped to root), mount, IPC, UTS and PID namespaces, and sets
/// no-new-privs. The PID namespace applies to children: see [`fork_into_pid_ns`].
pub fn confine_namespaces() -> io::Result<()> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWPID;
    // SAFETY: unshare takes no pointers.
    cvt(unsafe { libc::unshare(flags) })?;
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", "0 0 1\n")?;
    write_file("/proc/self/gid_map", "0 0 1\n")?;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes no pointers.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// Forks so that the child is PID 1 of the new PID namespace. Returns `None` in the child;
/// in the parent, waits for the child and returns the exit code to use.
pub fn fork_into_pid_ns() -> io::Result<Option<u8>> {
    // SAFETY: the process is still single-threaded here, so the child may run Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes no pointers.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        return Ok(None);
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
    }
    if libc::WIFEXITED(status) {
        return Ok(Some(libc::WEXITSTATUS(status) as u8));
    }
    Ok(Some(128 + libc::WTERMSIG(status) as u8))
}

/// Replaces the root with an empty, read-only tmpfs (after this, no host path is visible).
pub fn empty_root() -> io::Result<()> {
    let c = |s: &str| {
        std::ffi::CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (none, root, tmp, dot, tmpfs) = (c("none")?, c("/")?, c("/tmp")?, c(".")?, c("tmpfs")?);
    // SAFETY: the strings are NUL-terminated and outlive the call; null data is allowed.
    cvt(unsafe {
        libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    // SAFETY: as above.
    cvt(unsafe {
        libc::mount(
            none.as_ptr(),
            tmp.as_ptr(),
            tmpfs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    })?;
    std::env::set_current_dir("/tmp")?;
    // SAFETY: pivot_root(".", ".") takes two NUL-terminated strings that outlive the call.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } as i32)?;
    // SAFETY: umount2 takes a NUL-terminated string that outlives the call.
    cvt(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) })?;
    std::env::set_current_dir("/")?;
    // SAFETY: remounting the new root read-only takes NUL-terminated strings or nulls.
    cvt(unsafe {
        libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            std::ptr::null(),
        )
    })?;
    Ok(())
}

/// Installs the sentry's seccomp allowlist (see `crate::seccomp`), with a SIGSYS handler
/// that logs each refused host syscall and makes it fail with EPERM.
pub fn install_seccomp() -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigsys as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `sa` is a valid sigaction whose handler only does async-signal-safe work.
    if unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let prog = crate::seccomp::filter().map_err(|e| io::Error::other(e.to_string()))?;
    seccompiler::apply_filter_all_threads(&prog).map_err(|e| io::Error::other(e.to_string()))
}

/// SIGSYS from the seccomp filter: write the syscall number to stderr, return -EPERM.
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // si_syscall is the int at offset 24 of the SIGSYS layout, inside the 128-byte siginfo.
    let at = info.cast::<u8>().wrapping_add(24).cast::<i32>();
    // SAFETY: the kernel passes a valid siginfo for SIGSYS and `at` lies inside it.
    let nr = unsafe { std::ptr::read_unaligned(at) };
    let mut msg = *b"moat-sentry: seccomp refused host syscall          \n";
    let mut n = nr.unsigned_abs();
    let mut pos = 50;
    loop {
        msg[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || pos == 42 {
            break;
        }
        pos -= 1;
    }
    // The thread's name says which part of the sentry asked.
    let mut name = [0u8; 17];
    // SAFETY: PR_GET_NAME writes at most 16 bytes and a NUL into `name`.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    let nlen = name.iter().position(|&b| b == 0).unwrap_or(16);
    let mut line = [0u8; 96];
    let parts: [&[u8]; 4] = [&msg[..51], b" in thread ", &name[..nlen], b"\n"];
    let mut len = 0;
    for p in parts {
        line[len..len + p.len()].copy_from_slice(p);
        len += p.len();
    }
    // SAFETY: write(2) is async-signal-safe; `line` is a valid buffer of at least `len` bytes.
    unsafe { libc::write(2, line.as_ptr().cast(), len) };
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: for an SA_SIGINFO handler `ctx` is the interrupted thread's ucontext; setting
    // its rax makes the refused syscall return -EPERM.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] = -i64::from(libc::EPERM) };
}

/// How many CPUs the host lets the sentry use; measured once, at boot, while the sentry can
/// still read the files std consults (cgroup quotas), and remembered.
pub fn host_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}
