//! Small per-process calls: uname, sysinfo, rusage, rlimits, prctl, futex, robust lists, pidfd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Errno, Rlimit, Rusage, SysResult, Sysinfo, Timespec, Utsname};
use crate::kernel::{self, Task};
use crate::mm::MemoryManager;
use crate::syscalls::Args;

fn fill(dst: &mut [u8; 65], s: &[u8]) {
    let n = s.len().min(64);
    dst[..n].copy_from_slice(&s[..n]);
}

pub fn sys_uname(t: &mut Task, a: &Args) -> SysResult {
    let mut u = Utsname::default();
    fill(&mut u.fields[0], b"Linux");
    let host =
        t.k.hostname
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
    fill(&mut u.fields[1], &host);
    fill(&mut u.fields[2], b"6.1.0-moat");
    fill(&mut u.fields[3], b"#1 SMP PREEMPT_DYNAMIC Moat");
    fill(&mut u.fields[4], b"x86_64");
    fill(&mut u.fields[5], b"(none)");
    t.mm.write_obj(a.ptr(0), &u)?;
    Ok(0)
}

pub fn sys_sethostname(t: &mut Task, a: &Args) -> SysResult {
    let n = a.usize(1);
    if n > 64 {
        return Err(Errno::EINVAL);
    }
    if t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut b = vec![0u8; n];
    t.mm.copy_in(a.ptr(0), &mut b)?;
    *t.k.hostname.lock().unwrap_or_else(|e| e.into_inner()) = b;
    Ok(0)
}

pub fn sys_sysinfo(t: &mut Task, a: &Args) -> SysResult {
    let h = crate::sys::host_sysinfo();
    let procs = t.k.procs().tasks.len();
    let si = Sysinfo {
        // The host's uptime (Linux reports the machine's, never 0 seconds).
        uptime: crate::sys::clock_gettime(libc::CLOCK_BOOTTIME).0,
        totalram: h.totalram,
        freeram: h.freeram,
        sharedram: 0,
        bufferram: 0,
        procs: procs.min(u16::MAX as usize) as u16,
        mem_unit: h.mem_unit,
        ..Sysinfo::default()
    };
    t.mm.write_obj(a.ptr(0), &si)?;
    Ok(0)
}

/// A `struct rusage` from (user, system) nanoseconds and a max RSS in KiB.
pub(super) fn rusage(t: (u64, u64), maxrss_kb: i64) -> Rusage {
    let tv = |ns: u64| crate::abi::Timeval {
        sec: (ns / 1_000_000_000) as i64,
        usec: ((ns % 1_000_000_000) / 1000) as i64,
    };
    let mut r = Rusage {
        utime: tv(t.0),
        stime: tv(t.1),
        ..Rusage::default()
    };
    r.rest[0] = maxrss_kb;
    r
}

/// Resident size estimate of an address space, in KiB (for ru_maxrss).
fn rss_kb(mm: &MemoryManager) -> i64 {
    let m = mm.read();
    let bytes: u64 = m
        .vmas
        .values()
        .filter(|v| v.prot != 0)
        .map(|v| v.end - v.start)
        .sum();
    (bytes / 1024 / 8).max(1) as i64
}

pub fn sys_times(t: &mut Task, a: &Args) -> SysResult {
    let ticks = (t.k.boot.elapsed().as_millis() / 10) as u64;
    if a.ptr(0) != 0 {
        let (u, s) = t.h.tg.cpu_time();
        let (cu, cs) = t.h.tg.lock().child_time;
        let tk = |ns: u64| ns / 10_000_000;
        t.mm.write_obj(a.ptr(0), &[tk(u), tk(s), tk(cu), tk(cs)])?;
    }
    Ok(ticks + 100_000)
}

pub fn sys_getrusage(t: &mut Task, a: &Args) -> SysResult {
    let who = a.i32(0);
    if ![0, -1, 1].contains(&who) {
        return Err(Errno::EINVAL);
    }
    let r = match who {
        0 => rusage(t.h.tg.cpu_time(), rss_kb(&t.mm)),
        1 => rusage(
            (
                t.h.utime_ns.load(std::sync::atomic::Ordering::Relaxed),
                t.h.stime_ns.load(std::sync::atomic::Ordering::Relaxed),
            ),
            rss_kb(&t.mm),
        ),
        _ => {
            let ct = t.h.tg.lock().child_time;
            rusage(ct, if ct.0 + ct.1 > 0 { rss_kb(&t.mm) } else { 0 })
        }
    };
    t.mm.write_obj(a.ptr(1), &r)?;
    Ok(0)
}

fn rlimit_index(r: i32) -> Result<usize, Errno> {
    usize::try_from(r)
        .ok()
        .filter(|&r| r < 16)
        .ok_or(Errno::EINVAL)
}

pub fn sys_getrlimit(t: &mut Task, a: &Args) -> SysResult {
    let r = rlimit_index(a.i32(0))?;
    let v = t.h.tg.lock().rlimits[r];
    t.mm.write_obj(a.ptr(1), &v)?;
    Ok(0)
}

pub fn sys_setrlimit(t: &mut Task, a: &Args) -> SysResult {
    let r = rlimit_index(a.i32(0))?;
    let v: Rlimit = t.mm.read_obj(a.ptr(1))?;
    set_rlimit(t, &t.h.tg.clone(), r, v)
}

fn set_rlimit(t: &Task, tg: &kernel::ThreadGroup, r: usize, v: Rlimit) -> SysResult {
    if v.cur > v.max {
        return Err(Errno::EINVAL);
    }
    let mut g = tg.lock();
    if v.max > g.rlimits[r].max && t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    if r == libc::RLIMIT_NOFILE as usize && v.max > 1 << 20 {
        return Err(Errno::EPERM);
    }
    g.rlimits[r] = v;
    Ok(0)
}

pub fn sys_prlimit64(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    let r = rlimit_index(a.i32(1))?;
    let tg = if pid == 0 {
        t.h.tg.clone()
    } else {
        t.k.group(pid).ok_or(Errno::ESRCH)?
    };
    let old = tg.lock().rlimits[r];
    if a.ptr(2) != 0 {
        let v: Rlimit = t.mm.read_obj(a.ptr(2))?;
        set_rlimit(t, &tg, r, v)?;
    }
    if a.ptr(3) != 0 {
        t.mm.write_obj(a.ptr(3), &old)?;
    }
    Ok(0)
}

pub fn sys_arch_prctl(t: &mut Task, a: &Args) -> SysResult {
    const ARCH_SET_GS: i32 = 0x1001;
    const ARCH_SET_FS: i32 = 0x1002;
    const ARCH_GET_FS: i32 = 0x1003;
    const ARCH_GET_GS: i32 = 0x1004;
    let addr = a.u64(1);
    match a.i32(0) {
        ARCH_SET_FS => {
            if addr >= 0x8000_0000_0000 {
                return Err(Errno::EPERM);
            }
            t.regs.fs_base = addr;
            Ok(0)
        }
        ARCH_SET_GS => {
            if addr >= 0x8000_0000_0000 {
                return Err(Errno::EPERM);
            }
            t.regs.gs_base = addr;
            Ok(0)
        }
        ARCH_GET_FS => t.mm.write_obj(addr, &t.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => t.mm.write_obj(addr, &t.regs.gs_base).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_set_tid_address(t: &mut Task, a: &Args) -> SysResult {
    t.clear_tid = a.ptr(0);
    Ok(t.tid() as u64)
}

pub fn sys_set_robust_list(t: &mut Task, a: &Args) -> SysResult {
    if a.usize(1) != 24 {
        return Err(Errno::EINVAL);
    }
    t.robust_list = a.ptr(0);
    Ok(0)
}

pub fn sys_prctl(t: &mut Task, a: &Args) -> SysResult {
    match a.i32(0) {
        15 => {
            // PR_SET_NAME
            let mut name = t.mm.read_cstr(a.ptr(1), 4096).or_else(|_| {
                let mut b = [0u8; 16];
                t.mm.copy_in(a.ptr(1), &mut b).map(|_| b.to_vec())
            })?;
            name.truncate(15);
            *t.h.comm.lock().unwrap_or_else(|e| e.into_inner()) = name;
            Ok(0)
        }
        16 => {
            // PR_GET_NAME
            let mut b = t.h.comm.lock().unwrap_or_else(|e| e.into_inner()).clone();
            b.resize(16, 0);
            t.mm.copy_out(a.ptr(1), &b).map(|_| 0)
        }
        1 => {
            // PR_SET_PDEATHSIG
            let sig = a.i32(1);
            if !(0..=64).contains(&sig) {
                return Err(Errno::EINVAL);
            }
            t.h.pdeathsig
                .store(sig, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        38 => {
            // PR_SET_NO_NEW_PRIVS: can only be set, never cleared.
            if a.u64(1) != 1 || a.u64(2) != 0 || a.u64(3) != 0 || a.u64(4) != 0 {
                return Err(Errno::EINVAL);
            }
            t.h.no_new_privs
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        4 | 36 | 8 | 22 | 23 | 24 => Ok(0), // DUMPABLE set, CHILD_SUBREAPER, KEEPCAPS, SECCOMP..
        3 => Ok(1),                         // PR_GET_DUMPABLE
        2 => {
            // PR_GET_PDEATHSIG
            let sig = t.h.pdeathsig.load(std::sync::atomic::Ordering::Relaxed);
            t.mm.write_obj(a.ptr(1), &sig).map(|_| 0)
        }
        39 => Ok(u64::from(
            t.h.no_new_privs.load(std::sync::atomic::Ordering::Relaxed),
        )),
        37 => Ok(0), // PR_GET_CHILD_SUBREAPER
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_getcpu(t: &mut Task, a: &Args) -> SysResult {
    if a.ptr(0) != 0 {
        t.mm.write_obj(a.ptr(0), &0u32)?;
    }
    if a.ptr(1) != 0 {
        t.mm.write_obj(a.ptr(1), &0u32)?;
    }
    Ok(0)
}

pub fn sys_getrandom(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(2);
    // GRND_NONBLOCK=1, GRND_RANDOM=2, GRND_INSECURE=4; INSECURE excludes RANDOM.
    if flags & !7 != 0 || flags & 6 == 6 {
        return Err(Errno::EINVAL);
    }
    let n = a.usize(1).min(33_554_431);
    let mut b = vec![0u8; n];
    crate::sys::getrandom(&mut b);
    t.mm.copy_out(a.ptr(0), &b)?;
    Ok(n as u64)
}

fn timeout_deadline(
    t: &Task,
    ptr: u64,
    absolute: bool,
    realtime: bool,
) -> Result<Option<Instant>, Errno> {
    if ptr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.mm.read_obj(ptr)?;
    if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
        return Err(Errno::EINVAL);
    }
    let d = Duration::new(ts.sec as u64, ts.nsec as u32);
    if absolute {
        let clock = if realtime {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let (s, n) = crate::sys::clock_gettime(clock);
        let now = Duration::new(s.max(0) as u64, n as u32);
        return Ok(Some(Instant::now() + d.saturating_sub(now)));
    }
    Ok(Some(Instant::now() + d))
}

pub fn sys_futex(t: &mut Task, a: &Args) -> SysResult {
    let (addr, op, val) = (a.ptr(0), a.i32(1), a.u32(2));
    let cmd = op & 0x7f;
    let realtime = op & 256 != 0;
    use kernel::futex;
    let r = match cmd {
        0 => futex::wait(
            t,
            addr,
            val,
            timeout_deadline(t, a.ptr(3), false, false)?,
            u32::MAX,
        ),
        9 => futex::wait(
            t,
            addr,
            val,
            timeout_deadline(t, a.ptr(3), true, realtime)?,
            a.u32(5),
        ),
        1 => futex::wake(t, addr, val, u32::MAX),
        10 => futex::wake(t, addr, val, a.u32(5)),
        3 => futex::requeue(t, addr, val, a.u32(3), a.ptr(4), None),
        4 => futex::requeue(t, addr, val, a.u32(3), a.ptr(4), Some(a.u32(5))),
        5 => futex::wake_op(t, addr, val, a.u32(3), a.ptr(4), a.u32(5)),
        _ => return Err(Errno::ENOSYS),
    };
    match r {
        Err(Errno::ERESTARTSYS) if cmd == 0 => Err(Errno::ERESTARTSYS),
        Err(Errno::ERESTARTSYS) => Err(Errno::EINTR),
        r => r,
    }
}

pub fn sys_get_robust_list(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.tid() {
        t.k.task(pid).ok_or(Errno::ESRCH)?;
        // Another task's list head is not tracked outside its own thread.
        return Err(Errno::EPERM);
    }
    t.mm.write_obj(a.ptr(1), &t.robust_list)?;
    t.mm.write_obj(a.ptr(2), &24u64)?;
    Ok(0)
}

/// pidfd_open(2): an fd that refers to a process and becomes readable when it exits.
pub fn sys_pidfd_open(t: &mut Task, a: &Args) -> SysResult {
    let (pid, flags) = (a.i32(0), a.u32(1));
    const PIDFD_NONBLOCK: u32 = crate::vfs::file::O_NONBLOCK;
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let g = t.k.group(pid).ok_or(Errno::ESRCH)?;
    let ops = Arc::new(crate::vfs::fs::pidfd::PidFd::new(g));
    let inode = crate::vfs::fs::host::AnonInode::make(0o600, 0);
    let f = crate::vfs::File::new(ops, Some(inode), None, crate::vfs::file::O_RDWR | flags);
    t.install(f, true).map(|fd| fd as u64)
}
