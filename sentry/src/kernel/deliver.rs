//! Signal delivery on the way back to app code, signal frames, job-control stops.

use std::sync::atomic::Ordering;

use super::signal::{default_action, Default, SigContext, SigInfo, UContext, FRAME_SIZE};
use super::{ExitStatus, Task};
use crate::abi::signal::*;
use crate::abi::{Errno, SigAction};

impl Task {
    fn dequeue(&self) -> Option<SigInfo> {
        let mask = self.h.sig().mask;
        if let Some(i) = self.h.sig().pending.pop(mask) {
            return Some(i);
        }
        let mut g = self.h.tg.lock();
        // A process-directed signal goes to the main thread unless it blocks it (as Linux's
        // complete_signal prefers it); other threads take what it blocks.
        let mut take = !mask;
        if self.h.tid != self.h.tg.tgid {
            if let Some(leader) = g.threads.iter().find(|t| t.tid == self.h.tg.tgid) {
                take &= leader.sig().mask;
            }
        }
        g.pending.pop(!take)
    }

    /// Delivers pending signals before returning to app code.
    pub fn deliver_signals(&mut self) {
        let mut handled = false;
        loop {
            if self.must_exit_now() {
                break;
            }
            self.wait_while_stopped();
            let Some(info) = self.dequeue() else { break };
            let sig = info.signo;
            let act = self.h.tg.action(sig);
            if sig != SIGKILL && sig != SIGSTOP && act.handler == SIG_IGN {
                continue;
            }
            if sig == SIGKILL || sig == SIGSTOP || act.handler == SIG_DFL {
                match default_action(sig) {
                    Default::Ignore | Default::Continue => continue,
                    Default::Stop => {
                        self.stop_group(sig);
                        continue;
                    }
                    Default::Terminate | Default::Core => {
                        self.exit_group(ExitStatus::Signaled(sig));
                        return;
                    }
                }
            }
            self.apply_restart(Some(&act));
            if self.setup_frame(info, act).is_err() {
                // Could not write the frame: the app dies of SIGSEGV, as on Linux.
                self.exit_group(ExitStatus::Signaled(SIGSEGV));
                return;
            }
            handled = true;
            break;
        }
        if !handled {
            self.apply_restart(None);
            if let Some(m) = self.h.sig().saved_mask.take() {
                self.h.sig().mask = m;
            }
        }
        self.fault_addr = 0;
    }

    fn must_exit_now(&self) -> bool {
        self.exiting.is_some()
            || self.h.killed.load(Ordering::Relaxed)
            || self.h.tg.lock().group_exit.is_some()
    }

    /// Decides what an interrupted syscall returns, now that we know whether a handler runs.
    fn apply_restart(&mut self, act: Option<&SigAction>) {
        let Some((e, nr)) = self.restart.take() else {
            return;
        };
        let restart = match act {
            None => true,
            Some(a) => e == Errno::ERESTARTSYS && a.flags & SA_RESTART != 0,
        };
        if restart {
            self.regs.rax = nr;
            self.regs.rip -= 2;
        } else {
            self.regs.rax = Errno::EINTR.as_ret();
        }
    }

    fn setup_frame(&mut self, info: SigInfo, act: SigAction) -> Result<(), Errno> {
        if act.flags & SA_RESTORER == 0 {
            return Err(Errno::EFAULT);
        }
        let (mask, alt) = {
            let s = self.h.sig();
            (s.saved_mask.unwrap_or(s.mask), s.altstack)
        };
        let sp0 = self.regs.rsp;
        let on_alt = alt.flags & SS_DISABLE == 0 && sp0 > alt.sp && sp0 <= alt.sp + alt.size;
        let mut sp = if act.flags & SA_ONSTACK != 0 && alt.flags & SS_DISABLE == 0 && !on_alt {
            alt.sp + alt.size
        } else {
            sp0.wrapping_sub(128)
        };
        let fp = self.pt.get_fpstate().map_err(|_| Errno::EFAULT)?;
        sp = (sp - fp.len() as u64) & !63;
        let fp_addr = sp;
        self.mm.copy_out(fp_addr, &fp)?;
        sp = ((sp - FRAME_SIZE) & !15) - 8;
        let uc_addr = sp + 8;
        let info_addr = uc_addr + std::mem::size_of::<UContext>() as u64;
        let uc = UContext {
            flags: 0,
            link: 0,
            stack: crate::abi::SigStack {
                sp: alt.sp,
                flags: if on_alt { SS_ONSTACK } else { alt.flags },
                pad: 0,
                size: alt.size,
            },
            mcontext: SigContext::from_regs(&self.regs, mask, self.fault_addr, fp_addr),
            sigmask: mask,
        };
        self.mm.write_obj(sp, &act.restorer)?;
        self.mm.write_obj(uc_addr, &uc)?;
        self.mm.copy_out(info_addr, &info.to_bytes())?;
        {
            let mut s = self.h.sig();
            s.saved_mask = None;
            let mut m = mask | act.mask;
            if act.flags & SA_NODEFER == 0 {
                m |= bit(info.signo);
            }
            s.mask = m & !UNBLOCKABLE;
        }
        if act.flags & SA_RESETHAND != 0 {
            let mut acts = self.h.tg.actions.lock().unwrap_or_else(|e| e.into_inner());
            acts[(info.signo - 1) as usize] = SigAction::default();
        }
        self.regs.rip = act.handler;
        self.regs.rsp = sp;
        self.regs.rdi = info.signo as u64;
        self.regs.rsi = info_addr;
        self.regs.rdx = uc_addr;
        self.regs.rax = 0;
        self.regs.eflags &= !(0x400 | 0x100); // DF, TF
        Ok(())
    }

    /// rt_sigreturn(2): restores what `setup_frame` saved.
    pub fn sigreturn(&mut self) -> Result<(), Errno> {
        let uc_addr = self.regs.rsp;
        let uc: UContext = self.mm.read_obj(uc_addr)?;
        uc.mcontext.restore_into(&mut self.regs);
        self.h.sig().mask = uc.sigmask & !UNBLOCKABLE;
        if uc.mcontext.fpstate != 0 {
            let len = self.pt.get_fpstate().map(|v| v.len()).unwrap_or(512);
            let mut fp = vec![0u8; len];
            self.mm.copy_in(uc.mcontext.fpstate, &mut fp)?;
            self.pt.set_fpstate(&fp).map_err(|_| Errno::EFAULT)?;
        }
        let mut s = self.h.sig();
        if uc.stack.flags & SS_DISABLE == 0 && uc.stack.size >= 2048 {
            s.altstack = crate::abi::SigStack {
                sp: uc.stack.sp,
                flags: 0,
                pad: 0,
                size: uc.stack.size,
            };
        }
        Ok(())
    }

    /// Default action of a stop signal: the whole group stops until SIGCONT.
    fn stop_group(&mut self, sig: i32) {
        let (parent, threads) = {
            let mut g = self.h.tg.lock();
            g.stopped = Some(sig);
            g.stop_reported = false;
            (g.parent.upgrade(), g.threads.clone())
        };
        for t in threads {
            if t.tid != self.tid() {
                t.kick();
            }
        }
        if let Some(p) = parent {
            if p.action(SIGCHLD).flags & SA_NOCLDSTOP == 0 {
                let info = SigInfo {
                    signo: SIGCHLD,
                    code: CLD_STOPPED,
                    pid: self.tgid(),
                    status: i64::from(sig),
                    ..SigInfo::default()
                };
                self.k.signal_group(&p, info);
            }
            p.child_wait.wake_all();
        }
    }

    /// Sleeps while the group is stopped (job control).
    fn wait_while_stopped(&self) {
        loop {
            let seq = self.h.waiter.seq();
            if self.h.tg.lock().stopped.is_none() || self.must_exit_now() {
                return;
            }
            self.h.waiter.wait(seq, None);
        }
    }
}
