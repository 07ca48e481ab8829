//! exit(2), exit_group(2), wait4(2) and waitid(2).

use super::misc::rusage;
use crate::abi::signal::{CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, SIGCHLD, SIGCONT};
use crate::abi::{Errno, SysResult};
use crate::kernel::signal::SigInfo;
use crate::kernel::{ExitStatus, Task};
use crate::syscalls::{Args, EJUSTRETURN};

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
