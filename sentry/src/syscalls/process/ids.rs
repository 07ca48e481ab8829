//! Process ids and credentials: pid/tid/ppid, uid/gid, groups, capabilities, pgid and sid.

use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::syscalls::Args;

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
