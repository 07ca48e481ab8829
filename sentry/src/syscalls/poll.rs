//! poll, select, epoll, eventfd and signalfd syscalls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Args;
use crate::abi::{EpollEvent, Errno, PollFd, SysResult, Timespec, Timeval};
use crate::kernel::wait::WaitQueue;
use crate::kernel::Task;
use crate::vfs::file::*;
use crate::vfs::fs::signalfd::SignalFd;
use crate::vfs::fs::{epoll, eventfd};
use crate::vfs::File;

fn deadline_ms(ms: i32) -> Option<Instant> {
    (ms >= 0).then(|| Instant::now() + Duration::from_millis(ms as u64))
}

/// Where select/pselect6/ppoll write back the time left (Linux updates the caller's timeout).
#[derive(Clone, Copy)]
enum Timeout {
    None,
    Timeval(u64),
    Timespec(u64),
}

/// Writes the time left before `deadline` to the caller's timeout, as Linux's
/// `poll_select_finish`: not for a zero timeout; if the copy fails, a call that would restart
/// returns EINTR instead (the timeout could not be updated).
fn finish_timeout(t: &Task, tp: Timeout, deadline: Option<Instant>, r: SysResult) -> SysResult {
    let Some(d) = deadline else { return r };
    let left = d.saturating_duration_since(Instant::now());
    let secs = i64::try_from(left.as_secs()).unwrap_or(i64::MAX);
    let wrote = match tp {
        Timeout::None => return r,
        Timeout::Timeval(p) => {
            let old: Result<Timeval, Errno> = t.mm.read_obj(p);
            if old.is_ok_and(|v| v.sec == 0 && v.usec == 0) {
                return r;
            }
            t.mm.write_obj(
                p,
                &Timeval {
                    sec: secs,
                    usec: i64::from(left.subsec_micros()),
                },
            )
        }
        Timeout::Timespec(p) => {
            let old: Result<Timespec, Errno> = t.mm.read_obj(p);
            if old.is_ok_and(|v| v.sec == 0 && v.nsec == 0) {
                return r;
            }
            t.mm.write_obj(
                p,
                &Timespec {
                    sec: secs,
                    nsec: i64::from(left.subsec_nanos()),
                },
            )
        }
    };
    match (wrote, r) {
        (Err(_), Err(e)) if e == Errno::ERESTARTNOHAND => Err(Errno::EINTR),
        (_, r) => r,
    }
}

fn deadline_ts(t: &Task, p: u64) -> Result<Option<Instant>, Errno> {
    if p == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.mm.read_obj(p)?;
    if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        Instant::now() + Duration::new(ts.sec as u64, ts.nsec as u32),
    ))
}

/// `files` and, for epoll instances among them, the files they watch (whose wake-ups
/// may change their readiness).
fn with_watched(files: &[Arc<File>]) -> Vec<Arc<File>> {
    let mut all = files.to_vec();
    for f in files {
        if let Some(ep) = f.ops.epoll() {
            all.extend(ep.watched_files());
        }
    }
    all
}

/// Waits until some of `files` is ready; `check` computes the result from readiness.
fn wait_files<T>(
    t: &Task,
    files: &[Arc<File>],
    deadline: Option<Instant>,
    mut check: impl FnMut() -> Option<T>,
    zero: T,
) -> Result<T, Errno> {
    let files = with_watched(files);
    let queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.ops.wait_queue()).collect();
    match t.block(&queues, deadline, || Ok(check())) {
        Ok(v) => Ok(v),
        Err(Errno::ETIMEDOUT) => Ok(zero),
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        Err(e) => Err(e),
    }
}

fn do_poll(t: &mut Task, ptr: u64, n: u64, deadline: Option<Instant>) -> SysResult {
    if n > t.rlimit(libc::RLIMIT_NOFILE as usize).max(1024) {
        return Err(Errno::EINVAL);
    }
    let mut fds: Vec<PollFd> = (0..n)
        .map(|i| t.mm.read_obj(ptr + 8 * i))
        .collect::<Result<_, _>>()?;
    let files: Vec<Option<Arc<File>>> = fds
        .iter()
        .map(|p| if p.fd < 0 { None } else { t.fds().get(p.fd) })
        .collect();
    let live: Vec<Arc<File>> = files.iter().flatten().cloned().collect();
    let compute = |fds: &mut Vec<PollFd>| -> usize {
        let mut ready = 0;
        for (p, f) in fds.iter_mut().zip(files.iter()) {
            p.revents = 0;
            if p.fd < 0 {
                continue;
            }
            let r = match f {
                None => POLLNVAL,
                Some(f) => f.ops.poll() & (p.events as u16 as u32 | POLLERR | POLLHUP),
            };
            p.revents = r as i16;
            if r != 0 {
                ready += 1;
            }
        }
        ready
    };
    let mut snapshot = fds.clone();
    let count = wait_files(
        t,
        &live,
        deadline,
        || {
            let c = compute(&mut snapshot);
            (c > 0).then_some(c)
        },
        0,
    )?;
    if count == 0 {
        compute(&mut fds);
        for p in fds.iter_mut() {
            p.revents = 0;
        }
    } else {
        fds = snapshot;
    }
    for (i, p) in fds.iter().enumerate() {
        t.mm.write_obj(ptr + 8 * i as u64 + 6, &p.revents)?;
    }
    Ok(count as u64)
}

pub fn sys_poll(t: &mut Task, a: &Args) -> SysResult {
    do_poll(t, a.ptr(0), a.u64(1), deadline_ms(a.i32(2)))
}

fn with_sigmask(
    t: &mut Task,
    maskp: u64,
    size: usize,
    f: impl FnOnce(&mut Task) -> SysResult,
) -> SysResult {
    if maskp == 0 {
        return f(t);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = t.mm.read_obj(maskp)?;
    let old = {
        let mut s = t.h.sig();
        let old = s.mask;
        s.mask = m & !crate::abi::signal::UNBLOCKABLE;
        old
    };
    let r = f(t);
    if matches!(r, Err(e) if e == Errno::ERESTARTNOHAND || e == Errno::EINTR) {
        // Restore after the handler runs.
        t.h.sig().saved_mask = Some(old);
    } else {
        t.h.sig().mask = old;
    }
    r
}

pub fn sys_ppoll(t: &mut Task, a: &Args) -> SysResult {
    let d = deadline_ts(t, a.ptr(2))?;
    let (p, n) = (a.ptr(0), a.u64(1));
    let tp = if a.ptr(2) != 0 {
        Timeout::Timespec(a.ptr(2))
    } else {
        Timeout::None
    };
    with_sigmask(t, a.ptr(3), a.usize(4), |t| {
        let r = do_poll(t, p, n, d);
        finish_timeout(t, tp, d, r)
    })
}

fn do_select(
    t: &mut Task,
    n: i32,
    rp: u64,
    wp: u64,
    ep: u64,
    deadline: Option<Instant>,
) -> SysResult {
    if !(0..=1024 * 1024).contains(&n) {
        return Err(Errno::EINVAL);
    }
    let words = (n as usize).div_ceil(64);
    let read_set = |p: u64| -> Result<Vec<u64>, Errno> {
        if p == 0 {
            return Ok(vec![0; words]);
        }
        (0..words)
            .map(|i| t.mm.read_obj::<u64>(p + 8 * i as u64))
            .collect()
    };
    let (r, w, e) = (read_set(rp)?, read_set(wp)?, read_set(ep)?);
    let mut files = Vec::new();
    for fd in 0..n as usize {
        let bit = 1u64 << (fd % 64);
        let want = (r[fd / 64] | w[fd / 64] | e[fd / 64]) & bit != 0;
        if want {
            let f = t.fds().get(fd as i32).ok_or(Errno::EBADF)?;
            files.push((fd, f));
        }
    }
    let live: Vec<Arc<File>> = files.iter().map(|(_, f)| f.clone()).collect();
    let compute = || -> (usize, Vec<u64>, Vec<u64>, Vec<u64>) {
        let (mut ro, mut wo, mut eo) = (vec![0u64; words], vec![0u64; words], vec![0u64; words]);
        let mut count = 0;
        for (fd, f) in &files {
            let bit = 1u64 << (fd % 64);
            let ev = f.ops.poll();
            if r[fd / 64] & bit != 0 && ev & (POLLIN | POLLHUP | POLLERR) != 0 {
                ro[fd / 64] |= bit;
                count += 1;
            }
            if w[fd / 64] & bit != 0 && ev & (POLLOUT | POLLERR) != 0 {
                wo[fd / 64] |= bit;
                count += 1;
            }
            if e[fd / 64] & bit != 0 && ev & POLLPRI != 0 {
                eo[fd / 64] |= bit;
                count += 1;
            }
        }
        (count, ro, wo, eo)
    };
    let zero = (0, vec![0; words], vec![0; words], vec![0; words]);
    let (count, ro, wo, eo) = wait_files(
        t,
        &live,
        deadline,
        || {
            let c = compute();
            (c.0 > 0).then_some(c)
        },
        zero,
    )?;
    for (p, set) in [(rp, ro), (wp, wo), (ep, eo)] {
        if p != 0 {
            for (i, v) in set.iter().enumerate() {
                t.mm.write_obj(p + 8 * i as u64, v)?;
            }
        }
    }
    Ok(count as u64)
}

pub fn sys_select(t: &mut Task, a: &Args) -> SysResult {
    let deadline = if a.ptr(4) != 0 {
        let tv: Timeval = t.mm.read_obj(a.ptr(4))?;
        if tv.sec < 0 || !(0..1_000_000).contains(&tv.usec) {
            return Err(Errno::EINVAL);
        }
        Some(
            Instant::now()
                + Duration::from_secs(tv.sec as u64)
                + Duration::from_micros(tv.usec as u64),
        )
    } else {
        None
    };
    let r = do_select(t, a.i32(0), a.ptr(1), a.ptr(2), a.ptr(3), deadline);
    finish_timeout(t, Timeout::Timeval(a.ptr(4)), deadline, r)
}

pub fn sys_pselect6(t: &mut Task, a: &Args) -> SysResult {
    let d = deadline_ts(t, a.ptr(4))?;
    let (n, r, w, e) = (a.i32(0), a.ptr(1), a.ptr(2), a.ptr(3));
    let (maskp, size) = if a.ptr(5) != 0 {
        let v: [u64; 2] = t.mm.read_obj(a.ptr(5))?;
        (v[0], v[1] as usize)
    } else {
        (0, 0)
    };
    let tp = if a.ptr(4) != 0 {
        Timeout::Timespec(a.ptr(4))
    } else {
        Timeout::None
    };
    with_sigmask(t, maskp, size, |t| {
        let r = do_select(t, n, r, w, e, d);
        finish_timeout(t, tp, d, r)
    })
}

pub fn sys_epoll_create(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    let f = File::new(Arc::new(epoll::Epoll::default()), None, None, O_RDWR);
    t.install(f, false).map(|fd| fd as u64)
}

pub fn sys_epoll_create1(t: &mut Task, a: &Args) -> SysResult {
    if a.u32(0) & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let f = File::new(Arc::new(epoll::Epoll::default()), None, None, O_RDWR);
    t.install(f, a.u32(0) & O_CLOEXEC != 0).map(|fd| fd as u64)
}

fn epoll_of(t: &Task, fd: i32) -> Result<(Arc<File>, Arc<dyn FileOps>), Errno> {
    let f = t.file(fd)?;
    let ops = f.ops.clone();
    if epoll::as_epoll(&*ops).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok((f, ops))
}

pub fn sys_epoll_ctl(t: &mut Task, a: &Args) -> SysResult {
    let (epfd, op, fd) = (a.fd(0), a.i32(1), a.fd(2));
    let (_f, ops) = epoll_of(t, epfd)?;
    let ep = epoll::as_epoll(&*ops).ok_or(Errno::EINVAL)?;
    let target = t.file(fd)?;
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    if target
        .inode
        .as_ref()
        .is_some_and(|i| i.kind() == crate::vfs::S_IFREG || i.kind() == crate::vfs::S_IFDIR)
        && target.ops.wait_queue().is_none()
    {
        return Err(Errno::EPERM);
    }
    let ev = if op != epoll::EPOLL_CTL_DEL {
        Some(t.mm.read_obj::<EpollEvent>(a.ptr(3))?)
    } else {
        None
    };
    ep.ctl(op, fd, &target, ev)?;
    Ok(0)
}

fn do_epoll_wait(
    t: &mut Task,
    epfd: i32,
    evp: u64,
    max: i32,
    deadline: Option<Instant>,
) -> SysResult {
    if max <= 0 || max > 1 << 20 {
        return Err(Errno::EINVAL);
    }
    let (_f, ops) = epoll_of(t, epfd)?;
    let ep = epoll::as_epoll(&*ops).ok_or(Errno::EINVAL)?;
    let events = loop {
        // Sleep on every watched file; start over when the interest list changes.
        let changes = ep.changes();
        let files = ep.watched_files();
        let mut queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.ops.wait_queue()).collect();
        queues.push(&ep.queue);
        let r = t.block(&queues, deadline, || {
            let v = ep.collect(max as usize);
            if !v.is_empty() {
                return Ok(Some(Some(v)));
            }
            Ok((ep.changes() != changes).then_some(None))
        });
        match r {
            Ok(Some(v)) => break v,
            Ok(None) => continue,
            Err(Errno::ETIMEDOUT) => break Vec::new(),
            Err(Errno::ERESTARTSYS) => return Err(Errno::EINTR),
            Err(e) => return Err(e),
        }
    };
    for (i, e) in events.iter().enumerate() {
        t.mm.write_obj(evp + 12 * i as u64, e)?;
    }
    Ok(events.len() as u64)
}

pub fn sys_epoll_wait(t: &mut Task, a: &Args) -> SysResult {
    do_epoll_wait(t, a.fd(0), a.ptr(1), a.i32(2), deadline_ms(a.i32(3)))
}

pub fn sys_epoll_pwait(t: &mut Task, a: &Args) -> SysResult {
    let (fd, p, m, d) = (a.fd(0), a.ptr(1), a.i32(2), deadline_ms(a.i32(3)));
    with_sigmask(t, a.ptr(4), a.usize(5), |t| do_epoll_wait(t, fd, p, m, d))
}

fn do_eventfd(t: &mut Task, init: u32, flags: u32) -> SysResult {
    const EFD_SEMAPHORE: u32 = 1;
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = Arc::new(eventfd::EventFd::new(
        u64::from(init),
        flags & EFD_SEMAPHORE != 0,
    ));
    let inode = crate::vfs::fs::host::AnonInode::make(0o600, 0);
    let f = File::new(ops, Some(inode), None, O_RDWR | (flags & O_NONBLOCK));
    t.install(f, flags & O_CLOEXEC != 0).map(|fd| fd as u64)
}

pub fn sys_eventfd(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a.u32(0), 0)
}

pub fn sys_eventfd2(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a.u32(0), a.u32(1))
}

/// signalfd4(2) and signalfd(2): a new signalfd (fd -1) or a new mask for an existing one.
fn do_signalfd(t: &mut Task, fd: i32, maskp: u64, size: usize, flags: u32) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm.read_obj(maskp)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if fd != -1 {
        let f = t.file(fd)?;
        SignalFd::of(&f).ok_or(Errno::EINVAL)?.set_mask(mask);
        return Ok(fd as u64);
    }
    let ops = Arc::new(SignalFd::new(mask, t.h.tg.clone()));
    let inode = crate::vfs::fs::host::AnonInode::make(0o600, 0);
    let f = File::new(ops, Some(inode), None, O_RDWR | (flags & O_NONBLOCK));
    t.install(f, flags & O_CLOEXEC != 0).map(|fd| fd as u64)
}

pub fn sys_signalfd(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a.fd(0), a.ptr(1), a.usize(2), 0)
}

pub fn sys_signalfd4(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a.fd(0), a.ptr(1), a.usize(2), a.u32(3))
}
