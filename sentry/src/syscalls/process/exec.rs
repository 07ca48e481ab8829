//! execve(2) and execveat(2): opening the executable, `#!` scripts and replacing the image.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::abi::signal::{SIG_IGN, SS_DISABLE};
use crate::abi::{Errno, SysResult};
use crate::kernel::{self, Task};
use crate::loader::{self, Image};
use crate::mm::MemoryManager;
use crate::syscalls::{Args, EJUSTRETURN};
use crate::vfs::file::O_RDONLY;
use crate::vfs::{Follow, S_IFDIR, S_IFREG};

/// Resolves and opens an executable; reads its first bytes.
pub fn open_exec(t: &Task, path: &[u8]) -> Result<Image, Errno> {
    let p = t.lookup_at(crate::syscalls::file::AT_FDCWD, path, Follow::Yes, false)?;
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
    use crate::syscalls::file::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
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
