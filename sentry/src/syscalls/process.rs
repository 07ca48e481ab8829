//! Processes and threads: clone/fork/vfork, execve, exit, wait, ids, limits, futex and the
//! small per-process calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Args, EJUSTRETURN};
use crate::abi::signal::*;
use crate::abi::{Errno, Rlimit, Rusage, SysResult, Sysinfo, Timespec, Utsname};
use crate::kernel::signal::SigInfo;
use crate::kernel::{self, Completion, ExitStatus, NewTask, Start, Task};
use crate::loader::{self, Image};
use crate::mm::MemoryManager;
use crate::vfs::file::O_RDONLY;
use crate::vfs::{Follow, S_IFDIR, S_IFREG};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

pub fn do_clone(t: &mut Task, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult {
    let thread = flags & CLONE_THREAD != 0;
    if (thread && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
        || flags & CLONE_PIDFD != 0
    {
        return Err(Errno::EINVAL);
    }
    let k = t.k.clone();
    let comm = t.h.comm.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let start = if flags & CLONE_VM != 0 {
        let seed = t.pt.new_sibling().map_err(|e| {
            tracing::warn!(error = %e, "cannot create stub thread");
            Errno::EAGAIN
        })?;
        Start::Sibling(t.mm.clone(), seed)
    } else {
        Start::Fork(Arc::new(t.mm.fork_copy()?))
    };
    let h = if thread {
        kernel::new_thread(&k, &t.h.tg, comm)
    } else {
        let parent = if flags & CLONE_PARENT != 0 {
            t.h.tg
                .lock()
                .parent
                .upgrade()
                .unwrap_or_else(|| t.h.tg.clone())
        } else {
            t.h.tg.clone()
        };
        let actions = *t.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
        let h = kernel::new_group(&k, Some(&parent), actions, comm);
        {
            let mine = t.h.tg.lock();
            let mut g = h.tg.lock();
            g.exe = mine.exe.clone();
            g.rlimits = mine.rlimits;
            g.exit_signal = (flags & 0xff) as i32;
        }
        h
    };
    *h.sched.lock().unwrap_or_else(|e| e.into_inner()) =
        *t.h.sched.lock().unwrap_or_else(|e| e.into_inner());
    h.no_new_privs.store(
        t.h.no_new_privs.load(std::sync::atomic::Ordering::Relaxed),
        std::sync::atomic::Ordering::Relaxed,
    );
    {
        let mine = t.h.sig();
        let mut s = h.sig();
        s.mask = mine.mask;
        if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
            s.altstack = mine.altstack;
        }
    }
    let tid = h.tid;
    if flags & CLONE_CHILD_SETTID != 0 {
        match &start {
            Start::Fork(mm) | Start::Sibling(mm, _) => {
                let _ = mm.write_obj(ctid, &(tid as u32));
            }
            Start::Init => {}
        }
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = t.mm.write_obj(ptid, &(tid as u32));
    }
    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    let fds = if flags & CLONE_FILES != 0 {
        t.fds.clone()
    } else {
        Arc::new(Mutex::new(t.fds().clone()))
    };
    let fs = if flags & CLONE_FS != 0 {
        t.fs.clone()
    } else {
        Arc::new(Mutex::new(t.fsctx()))
    };
    let vfork = (flags & CLONE_VFORK != 0).then(|| Arc::new(Completion::default()));
    let ready = Arc::new(Completion::default());
    let n = NewTask {
        k: k.clone(),
        h: h.clone(),
        start,
        regs,
        fds,
        fs,
        creds: t.creds.clone(),
        clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        },
        vfork_done: vfork.clone(),
        ready: Some(ready.clone()),
    };
    if let Err(e) = Task::spawn(n) {
        tracing::error!(error = %e, "cannot spawn task thread");
        return Err(Errno::EAGAIN);
    }
    // The stub must be bound before the parent's address space changes again.
    ready.wait();
    if let Some(v) = vfork {
        v.wait();
    }
    Ok(tid as u64)
}

pub fn sys_clone(t: &mut Task, a: &Args) -> SysResult {
    do_clone(t, a.u64(0), a.u64(1), a.ptr(2), a.ptr(3), a.u64(4))
}
pub fn sys_fork(t: &mut Task, _a: &Args) -> SysResult {
    do_clone(t, SIGCHLD as u64, 0, 0, 0, 0)
}
pub fn sys_vfork(t: &mut Task, _a: &Args) -> SysResult {
    do_clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD as u64, 0, 0, 0, 0)
}

/// Resolves and opens an executable; reads its first bytes.
pub fn open_exec(t: &Task, path: &[u8]) -> Result<Image, Errno> {
    let p = t.lookup_at(super::file::AT_FDCWD, path, Follow::Yes, false)?;
    open_exec_at(t, p)
}

/// Checks and opens an executable already resolved to `p`.
pub fn open_exec_at(t: &Task, p: crate::vfs::VPath) -> Result<Image, Errno> {
    let kind = p.d.inode.kind();
    if kind == S_IFDIR || kind != S_IFREG {
        return Err(Errno::EACCES);
    }
    let st = p.d.inode.stat()?;
    if st.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    if crate::vfs::file::open_for_write(&st) {
        return Err(Errno::ETXTBSY);
    }
    let file = t.open_vpath(p.clone(), O_RDONLY)?;
    let head = loader::read_at(t, &file, 0, 4096)?;
    Ok(Image {
        file,
        path: p,
        head,
    })
}

fn read_ptr_array(t: &Task, ptr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut v = Vec::new();
    if ptr == 0 {
        return Ok(v);
    }
    let mut total = 0usize;
    for i in 0.. {
        if i > 65536 {
            return Err(Errno::E2BIG);
        }
        let p: u64 = t.mm.read_obj(ptr + 8 * i)?;
        if p == 0 {
            break;
        }
        let s = t.mm.read_cstr(p, 128 * 1024).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        total += s.len() + 1;
        if total > 2 << 20 {
            return Err(Errno::E2BIG);
        }
        v.push(s);
    }
    Ok(v)
}

pub fn sys_execve(t: &mut Task, a: &Args) -> SysResult {
    let path = t.path_arg(a.ptr(0))?;
    let argv = read_ptr_array(t, a.ptr(1))?;
    let envp = read_ptr_array(t, a.ptr(2))?;
    do_execve(t, path, argv, envp)
}

/// execve(2): replaces the task's program. Errors before the point of no return leave the
/// task untouched.
pub fn do_execve(t: &mut Task, path: Vec<u8>, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let img = open_exec(t, &path)?;
    exec_image(t, img, path, argv, envp)
}

/// execveat(2): like execve, relative to a directory fd, or of the fd itself with
/// AT_EMPTY_PATH.
pub fn sys_execveat(t: &mut Task, a: &Args) -> SysResult {
    let (dirfd, flags) = (a.fd(0), a.u32(4));
    use super::file::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.path_arg(a.ptr(1))?;
    let argv = read_ptr_array(t, a.ptr(2))?;
    let envp = read_ptr_array(t, a.ptr(3))?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let p = t.lookup_at(dirfd, &path, follow, flags & AT_EMPTY_PATH != 0)?;
    if p.d.inode.kind() == crate::vfs::S_IFLNK {
        return Err(Errno::ELOOP);
    }
    let name = if path.is_empty() {
        format!("/dev/fd/{dirfd}").into_bytes()
    } else {
        path
    };
    let img = open_exec_at(t, p)?;
    exec_image(t, img, name, argv, envp)
}

fn exec_image(
    t: &mut Task,
    mut img: Image,
    path: Vec<u8>,
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> SysResult {
    let mut exec_path = path.clone();
    let mut depth = 0;
    while img.head.starts_with(b"#!") {
        depth += 1;
        if depth > 4 {
            return Err(Errno::ELOOP);
        }
        let line_end = img
            .head
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(img.head.len())
            .min(256);
        let line = &img.head[2..line_end];
        let line: Vec<u8> = line
            .iter()
            .copied()
            .skip_while(|b| *b == b' ' || *b == b'\t')
            .collect();
        let line: &[u8] = {
            let mut l = line.as_slice();
            while let Some((&last, rest)) = l.split_last() {
                if last == b' ' || last == b'\t' {
                    l = rest;
                } else {
                    break;
                }
            }
            l
        };
        if line.is_empty() {
            return Err(Errno::ENOEXEC);
        }
        let (interp, arg) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
            Some(i) => {
                let rest: Vec<u8> = line[i..]
                    .iter()
                    .copied()
                    .skip_while(|b| *b == b' ' || *b == b'\t')
                    .collect();
                (line[..i].to_vec(), (!rest.is_empty()).then_some(rest))
            }
            None => (line.to_vec(), None),
        };
        let mut nargv = vec![interp.clone()];
        nargv.extend(arg);
        nargv.push(exec_path.clone());
        nargv.extend(argv.iter().skip(1).cloned());
        argv = nargv;
        exec_path = interp.clone();
        img = open_exec(t, &interp)?;
    }
    loader::check(t, &img)?;
    // Build the new address space aside; the old one stays until it is complete.
    let mut pt = t.k.platform.new_address_space().map_err(|e| {
        tracing::warn!(error = %e, "cannot create address space");
        Errno::ENOMEM
    })?;
    let mm = Arc::new(MemoryManager::new(t.k.mf.clone(), t.k.platform.layout()));
    let loaded = match loader::load(t, &mm, pt.as_mut(), &img, &argv, &envp, &path) {
        Ok(l) => l,
        Err(e) => {
            pt.exit(true);
            return Err(e);
        }
    };
    // Point of no return.
    de_thread(t);
    t.h.tg.timers.delete_posix();
    if t.clear_tid != 0 && t.mm.users() > 1 {
        let _ = t.mm.write_obj(t.clear_tid, &0u32);
        let _ = kernel::futex::wake(t, t.clear_tid, 1, u32::MAX);
    }
    t.clear_tid = 0;
    kernel::futex::exit_robust_list(t);
    t.robust_list = 0;
    mm.attach();
    let old_mm = std::mem::replace(&mut t.mm, mm);
    let last = old_mm.detach();
    if last {
        old_mm.clear();
    }
    let mut old_pt = std::mem::replace(&mut t.pt, pt);
    old_pt.exit(last);
    *t.h.interrupter.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.pt.interrupter());
    t.regs = loader::initial_regs(&loaded);
    {
        let copy = t.fds().clone();
        t.fds = Arc::new(Mutex::new(copy));
        t.fds().close_on_exec();
    }
    {
        let mut acts = t.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
        for act in acts.iter_mut() {
            if act.handler != SIG_IGN {
                *act = crate::abi::SigAction::default();
            }
        }
    }
    t.h.sig().altstack = crate::abi::SigStack {
        flags: SS_DISABLE,
        ..Default::default()
    };
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
    *t.h.comm.lock().unwrap_or_else(|e| e.into_inner()) = base.iter().take(15).copied().collect();
    t.h.tg.lock().exe = Some(img.path.clone());
    if let Some(v) = t.vfork_done.take() {
        v.complete();
    }
    t.publish();
    Err(EJUSTRETURN)
}

/// Kills every other thread of the group and waits for them to go (execve).
fn de_thread(t: &mut Task) {
    let others: Vec<_> =
        t.h.tg
            .lock()
            .threads
            .iter()
            .filter(|x| x.tid != t.tid())
            .cloned()
            .collect();
    if others.is_empty() {
        return;
    }
    for o in &others {
        o.killed.store(true, std::sync::atomic::Ordering::SeqCst);
        o.kick();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.h.tg.lock().threads.len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn sys_exit(t: &mut Task, a: &Args) -> SysResult {
    t.exiting = Some(ExitStatus::Exited((a.i32(0) & 0xff) as u8));
    Err(EJUSTRETURN)
}

pub fn sys_exit_group(t: &mut Task, a: &Args) -> SysResult {
    t.exit_group(ExitStatus::Exited((a.i32(0) & 0xff) as u8));
    Err(EJUSTRETURN)
}

const WNOHANG: u32 = 1;
const WUNTRACED: u32 = 2;
const WEXITED: u32 = 4;
const WCONTINUED: u32 = 8;
const WNOWAIT: u32 = 0x0100_0000;

enum Waited {
    Exited(i32, ExitStatus, (u64, u64)),
    Stopped(i32, i32),
    Continued(i32),
}

fn do_wait(t: &mut Task, sel: i64, options: u32) -> Result<Option<Waited>, Errno> {
    let my_pgid = t.h.tg.lock().pgid;
    let tg = t.h.tg.clone();
    let k = t.k.clone();
    let scan = || -> Result<Option<Option<Waited>>, Errno> {
        let children = tg.lock().children.clone();
        let matching: Vec<_> = children
            .into_iter()
            .filter(|c| match sel {
                -1 => true,
                0 => c.lock().pgid == my_pgid,
                p if p > 0 => i64::from(c.tgid) == p,
                p => i64::from(c.lock().pgid) == -p,
            })
            .collect();
        if matching.is_empty() {
            return Err(Errno::ECHILD);
        }
        for c in &matching {
            let mut st = c.lock();
            if options & WEXITED != 0 {
                if let Some(ex) = st.exit {
                    drop(st);
                    if options & WNOWAIT == 0 {
                        let (cu, cs) = c.cpu_time();
                        let (gu, gs) = c.lock().child_time;
                        let mut me = tg.lock();
                        me.children.retain(|x| x.tgid != c.tgid);
                        me.child_time.0 += cu + gu;
                        me.child_time.1 += cs + gs;
                        drop(me);
                        k.procs().groups.remove(&c.tgid);
                    }
                    return Ok(Some(Some(Waited::Exited(c.tgid, ex, c.cpu_time()))));
                }
            }
            if options & WUNTRACED != 0 {
                if let Some(sig) = st.stopped {
                    if !st.stop_reported {
                        if options & WNOWAIT == 0 {
                            st.stop_reported = true;
                        }
                        return Ok(Some(Some(Waited::Stopped(c.tgid, sig))));
                    }
                }
            }
            if options & WCONTINUED != 0 && !st.cont_reported && st.stopped.is_none() {
                if options & WNOWAIT == 0 {
                    st.cont_reported = true;
                }
                return Ok(Some(Some(Waited::Continued(c.tgid))));
            }
        }
        if options & WNOHANG != 0 {
            return Ok(Some(None));
        }
        Ok(None)
    };
    let q = &t.h.tg.child_wait;
    t.block(&[q], None, scan)
}

pub fn sys_wait4(t: &mut Task, a: &Args) -> SysResult {
    let (pid, statusp, options) = (a.i32(0), a.ptr(1), a.u32(2));
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | 0x2000_0000 | 0x4000_0000 | 0x8000_0000) != 0
    {
        return Err(Errno::EINVAL);
    }
    let sel = if pid == i32::MIN {
        return Err(Errno::ESRCH);
    } else {
        i64::from(pid)
    };
    let r = do_wait(t, sel, options | WEXITED)?;
    let times = match &r {
        Some(Waited::Exited(_, _, t)) => *t,
        _ => (0, 0),
    };
    let (id, status) = match r {
        None => return Ok(0),
        Some(Waited::Exited(id, s, _)) => (id, s.wait_status()),
        Some(Waited::Stopped(id, sig)) => (id, (sig << 8) | 0x7f),
        Some(Waited::Continued(id)) => (id, 0xffff),
    };
    if statusp != 0 {
        t.mm.write_obj(statusp, &status)?;
    }
    if a.ptr(3) != 0 {
        t.mm.write_obj(a.ptr(3), &rusage(times, 0))?;
    }
    Ok(id as u64)
}

pub fn sys_waitid(t: &mut Task, a: &Args) -> SysResult {
    let (idtype, id, infop, options) = (a.i32(0), a.i32(1), a.ptr(2), a.u32(3));
    if options
        & !(WNOHANG
            | WUNTRACED
            | WEXITED
            | WCONTINUED
            | WNOWAIT
            | 0x2000_0000
            | 0x4000_0000
            | 0x8000_0000)
        != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let sel = match idtype {
        0 => -1,
        1 if id > 0 => i64::from(id),
        2 if id >= 0 => -i64::from(if id == 0 { t.h.tg.lock().pgid } else { id }),
        3 => {
            // P_PIDFD
            let f = t.file(id)?;
            let pid = f.ops.pidfd().ok_or(Errno::EBADF)?;
            i64::from(pid)
        }
        _ => return Err(Errno::EINVAL),
    };
    let r = do_wait(t, sel, options)?;
    let info = match r {
        None => SigInfo::default(),
        Some(Waited::Exited(pid, s, _)) => {
            let (code, status) = match s {
                ExitStatus::Exited(c) => (CLD_EXITED, i64::from(c)),
                ExitStatus::Signaled(sig) => (CLD_KILLED, i64::from(sig)),
            };
            SigInfo {
                signo: SIGCHLD,
                code,
                pid,
                status,
                ..SigInfo::default()
            }
        }
        Some(Waited::Stopped(pid, sig)) => SigInfo {
            signo: SIGCHLD,
            code: CLD_STOPPED,
            pid,
            status: i64::from(sig),
            ..SigInfo::default()
        },
        Some(Waited::Continued(pid)) => SigInfo {
            signo: SIGCHLD,
            code: CLD_CONTINUED,
            pid,
            status: i64::from(SIGCONT),
            ..SigInfo::default()
        },
    };
    if infop != 0 {
        t.mm.copy_out(infop, &info.to_bytes())?;
    }
    Ok(0)
}

pub fn sys_getpid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(t.tgid() as u64)
}
pub fn sys_gettid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(t.tid() as u64)
}
pub fn sys_getppid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(t.h.tg.lock().parent.upgrade().map(|p| p.tgid).unwrap_or(0) as u64)
}
pub fn sys_getuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.uid))
}
pub fn sys_geteuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.euid))
}
pub fn sys_getgid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.gid))
}
pub fn sys_getegid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.egid))
}

fn may_set(t: &Task, id: u32, cur: [u32; 3]) -> bool {
    t.creds.euid == 0 || cur.contains(&id)
}

pub fn sys_setuid(t: &mut Task, a: &Args) -> SysResult {
    let id = a.u32(0);
    if t.creds.euid == 0 {
        t.creds.uid = id;
        t.creds.suid = id;
    } else if id != t.creds.uid && id != t.creds.suid {
        return Err(Errno::EPERM);
    }
    t.creds.euid = id;
    Ok(0)
}
pub fn sys_setgid(t: &mut Task, a: &Args) -> SysResult {
    let id = a.u32(0);
    if t.creds.euid == 0 {
        t.creds.gid = id;
        t.creds.sgid = id;
    } else if id != t.creds.gid && id != t.creds.sgid {
        return Err(Errno::EPERM);
    }
    t.creds.egid = id;
    Ok(0)
}
pub fn sys_setresuid(t: &mut Task, a: &Args) -> SysResult {
    let c = [t.creds.uid, t.creds.euid, t.creds.suid];
    let ids = [a.u32(0), a.u32(1), a.u32(2)];
    if ids.iter().any(|&i| i != u32::MAX && !may_set(t, i, c)) {
        return Err(Errno::EPERM);
    }
    if ids[0] != u32::MAX {
        t.creds.uid = ids[0];
    }
    if ids[1] != u32::MAX {
        t.creds.euid = ids[1];
    }
    if ids[2] != u32::MAX {
        t.creds.suid = ids[2];
    }
    Ok(0)
}
pub fn sys_setresgid(t: &mut Task, a: &Args) -> SysResult {
    let c = [t.creds.gid, t.creds.egid, t.creds.sgid];
    let ids = [a.u32(0), a.u32(1), a.u32(2)];
    if ids.iter().any(|&i| i != u32::MAX && !may_set(t, i, c)) {
        return Err(Errno::EPERM);
    }
    if ids[0] != u32::MAX {
        t.creds.gid = ids[0];
    }
    if ids[1] != u32::MAX {
        t.creds.egid = ids[1];
    }
    if ids[2] != u32::MAX {
        t.creds.sgid = ids[2];
    }
    Ok(0)
}
pub fn sys_setreuid(t: &mut Task, a: &Args) -> SysResult {
    let args = Args([a.u64(0), a.u64(1), u64::from(u32::MAX), 0, 0, 0]);
    sys_setresuid(t, &args)
}
pub fn sys_setregid(t: &mut Task, a: &Args) -> SysResult {
    let args = Args([a.u64(0), a.u64(1), u64::from(u32::MAX), 0, 0, 0]);
    sys_setresgid(t, &args)
}
pub fn sys_getresuid(t: &mut Task, a: &Args) -> SysResult {
    t.mm.write_obj(a.ptr(0), &t.creds.uid)?;
    t.mm.write_obj(a.ptr(1), &t.creds.euid)?;
    t.mm.write_obj(a.ptr(2), &t.creds.suid)?;
    Ok(0)
}
pub fn sys_getresgid(t: &mut Task, a: &Args) -> SysResult {
    t.mm.write_obj(a.ptr(0), &t.creds.gid)?;
    t.mm.write_obj(a.ptr(1), &t.creds.egid)?;
    t.mm.write_obj(a.ptr(2), &t.creds.sgid)?;
    Ok(0)
}
pub fn sys_setfsuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.euid))
}
pub fn sys_setfsgid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.egid))
}
pub fn sys_getgroups(t: &mut Task, a: &Args) -> SysResult {
    let n = a.i32(0);
    let g = t.creds.groups.clone();
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    if n == 0 {
        return Ok(g.len() as u64);
    }
    if (n as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    for (i, x) in g.iter().enumerate() {
        t.mm.write_obj(a.ptr(1) + 4 * i as u64, x)?;
    }
    Ok(g.len() as u64)
}
pub fn sys_setgroups(t: &mut Task, a: &Args) -> SysResult {
    let n = a.usize(0);
    if n > 65536 {
        return Err(Errno::EINVAL);
    }
    if t.creds.euid != 0 {
        return Err(Errno::EPERM);
    }
    let mut g = Vec::with_capacity(n);
    for i in 0..n {
        g.push(t.mm.read_obj::<u32>(a.ptr(1) + 4 * i as u64)?);
    }
    t.creds.groups = g;
    Ok(0)
}
pub fn sys_capget(t: &mut Task, a: &Args) -> SysResult {
    if a.ptr(1) != 0 {
        let full = if t.creds.euid == 0 { 0xffff_ffffu32 } else { 0 };
        let data = [full, full, 0, 0x1ff & full, 0x1ff & full, 0];
        for (i, v) in data.iter().enumerate() {
            t.mm.write_obj(a.ptr(1) + 4 * i as u64, v)?;
        }
    }
    Ok(0)
}
pub fn sys_capset(_t: &mut Task, _a: &Args) -> SysResult {
    Ok(0)
}

pub fn sys_setpgid(t: &mut Task, a: &Args) -> SysResult {
    let (pid, pgid) = (a.i32(0), a.i32(1));
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid == 0 {
        t.h.tg.clone()
    } else {
        t.k.group(pid).ok_or(Errno::ESRCH)?
    };
    let is_self = target.tgid == t.tgid();
    let is_child = target
        .lock()
        .parent
        .upgrade()
        .is_some_and(|p| p.tgid == t.tgid());
    if !is_self && !is_child {
        return Err(Errno::ESRCH);
    }
    let my_sid = t.h.tg.lock().sid;
    let g = target.lock();
    if g.sid != my_sid {
        return Err(Errno::EPERM);
    }
    if g.sid == target.tgid {
        return Err(Errno::EPERM);
    }
    let new = if pgid == 0 { target.tgid } else { pgid };
    drop(g);
    if new != target.tgid {
        let exists = t.k.procs().groups.values().any(|x| {
            let st = x.lock();
            st.exit.is_none() && st.pgid == new && st.sid == my_sid
        });
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.lock().pgid = new;
    Ok(0)
}
pub fn sys_getpgid(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    let g = if pid == 0 {
        t.h.tg.clone()
    } else {
        t.k.group(pid).ok_or(Errno::ESRCH)?
    };
    let pgid = g.lock().pgid;
    Ok(pgid as u64)
}
pub fn sys_getpgrp(t: &mut Task, _a: &Args) -> SysResult {
    Ok(t.h.tg.lock().pgid as u64)
}
pub fn sys_getsid(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    let g = if pid == 0 {
        t.h.tg.clone()
    } else {
        t.k.group(pid).ok_or(Errno::ESRCH)?
    };
    let sid = g.lock().sid;
    Ok(sid as u64)
}
pub fn sys_setsid(t: &mut Task, _a: &Args) -> SysResult {
    let me = t.tgid();
    let in_use =
        t.k.procs()
            .groups
            .values()
            .any(|g| g.tgid != me && g.lock().pgid == me);
    let mut g = t.h.tg.lock();
    if g.pgid == me || in_use {
        return Err(Errno::EPERM);
    }
    g.pgid = me;
    g.sid = me;
    Ok(me as u64)
}

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
fn rusage(t: (u64, u64), maxrss_kb: i64) -> Rusage {
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
