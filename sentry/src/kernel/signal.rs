//! Signal queues, default actions and signal frames (rt_sigframe on the app stack).

use crate::abi::signal::*;
use crate::abi::{Pod, Regs, SigStack};

/// What a queued signal carries (the fields of siginfo_t we fill).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// si_pid / si_addr (low half) / timer id, depending on the signal.
    pub pid: i32,
    pub uid: u32,
    /// si_status for SIGCHLD; si_value for sigqueue.
    pub status: i64,
    pub addr: u64,
}

impl SigInfo {
    pub fn user(signo: i32, pid: i32, uid: u32) -> SigInfo {
        SigInfo {
            signo,
            code: SI_USER,
            pid,
            uid,
            ..SigInfo::default()
        }
    }
    pub fn kernel(signo: i32) -> SigInfo {
        SigInfo {
            signo,
            code: SI_KERNEL,
            ..SigInfo::default()
        }
    }
    /// The 128-byte siginfo_t the app sees.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        match self.signo {
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if self.code > 0 => {
                b[16..24].copy_from_slice(&self.addr.to_le_bytes());
            }
            SIGCHLD => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..28].copy_from_slice(&(self.status as i32).to_le_bytes());
            }
            _ => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..32].copy_from_slice(&self.status.to_le_bytes());
            }
        }
        b
    }
    pub fn from_bytes(b: &[u8; 128]) -> SigInfo {
        let i32_at = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[24..32]);
        SigInfo {
            signo: i32_at(0),
            errno: i32_at(4),
            code: i32_at(8),
            pid: i32_at(16),
            uid: i32_at(20) as u32,
            status: i64::from_le_bytes(v),
            addr: 0,
        }
    }
}

/// Pending signals: a bit set, with the info of each queued instance.
#[derive(Debug, Default, Clone)]
pub struct SigQueue {
    pub set: u64,
    pub infos: Vec<SigInfo>,
}

impl SigQueue {
    /// Queues a signal; standard signals already pending are merged (not queued twice).
    pub fn push(&mut self, info: SigInfo) {
        let b = bit(info.signo);
        if info.signo < 32 && self.set & b != 0 {
            return;
        }
        self.set |= b;
        self.infos.push(info);
    }
    /// Dequeues the lowest pending signal not in `blocked`.
    pub fn pop(&mut self, blocked: u64) -> Option<SigInfo> {
        let ready = self.set & !blocked;
        if ready == 0 {
            return None;
        }
        // Synchronous, then lowest-numbered first.
        let signo = ready.trailing_zeros() as i32 + 1;
        let i = self.infos.iter().position(|s| s.signo == signo)?;
        let info = self.infos.remove(i);
        if !self.infos.iter().any(|s| s.signo == signo) {
            self.set &= !bit(signo);
        }
        Some(info)
    }
    pub fn remove(&mut self, signo: i32) {
        self.set &= !bit(signo);
        self.infos.retain(|s| s.signo != signo);
    }
}

/// What a signal does when its handler is SIG_DFL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    Terminate,
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> Default {
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => Default::Core,
        SIGCHLD | SIGURG | SIGWINCH => Default::Ignore,
        SIGCONT => Default::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default::Stop,
        _ => Default::Terminate,
    }
}

/// `struct sigcontext` (x86-64), 256 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SigContext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    pub fpstate: u64,
    pub reserved: [u64; 8],
}
impl Pod for SigContext {}

/// `struct ucontext` as the kernel lays it out on signal frames.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct UContext {
    pub flags: u64,
    pub link: u64,
    pub stack: SigStack,
    pub mcontext: SigContext,
    pub sigmask: u64,
}
impl Pod for UContext {}

impl SigContext {
    pub fn from_regs(r: &Regs, mask: u64, fault_addr: u64, fpstate: u64) -> SigContext {
        SigContext {
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rdi: r.rdi,
            rsi: r.rsi,
            rbp: r.rbp,
            rbx: r.rbx,
            rdx: r.rdx,
            rax: r.rax,
            rcx: r.rcx,
            rsp: r.rsp,
            rip: r.rip,
            eflags: r.eflags,
            cs: r.cs as u16,
            gs: 0,
            fs: 0,
            ss: r.ss as u16,
            err: 0,
            trapno: 0,
            oldmask: mask,
            cr2: fault_addr,
            fpstate,
            reserved: [0; 8],
        }
    }
    /// Restores registers; segment registers and privileged flags stay the sentry's.
    pub fn restore_into(&self, r: &mut Regs) {
        r.r8 = self.r8;
        r.r9 = self.r9;
        r.r10 = self.r10;
        r.r11 = self.r11;
        r.r12 = self.r12;
        r.r13 = self.r13;
        r.r14 = self.r14;
        r.r15 = self.r15;
        r.rdi = self.rdi;
        r.rsi = self.rsi;
        r.rbp = self.rbp;
        r.rbx = self.rbx;
        r.rdx = self.rdx;
        r.rax = self.rax;
        r.rcx = self.rcx;
        r.rsp = self.rsp;
        r.rip = self.rip;
        // Only the flags a user may change (CF PF AF ZF SF TF DF OF AC RF... as Linux's
        // FIX_EFLAGS).
        const FIX: u64 = 0x0004_0dd5 | 0x100 | 0x200_0000;
        r.eflags = (r.eflags & !FIX) | (self.eflags & FIX);
    }
}

/// Size of the frame below the fp state: pretcode + ucontext + siginfo.
pub const FRAME_SIZE: u64 = 8 + std::mem::size_of::<UContext>() as u64 + 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<SigContext>(), 256);
        assert_eq!(std::mem::size_of::<UContext>(), 304);
        assert_eq!(FRAME_SIZE, 440);
    }

    #[test]
    fn standard_signals_coalesce_and_realtime_queue() {
        let mut q = SigQueue::default();
        q.push(SigInfo::kernel(SIGUSR1));
        q.push(SigInfo::kernel(SIGUSR1));
        q.push(SigInfo::kernel(40));
        q.push(SigInfo::kernel(40));
        assert_eq!(q.infos.len(), 3);
        assert_eq!(q.pop(bit(SIGUSR1)).unwrap().signo, 40);
        assert_eq!(q.pop(0).unwrap().signo, SIGUSR1);
        assert_eq!(q.pop(0).unwrap().signo, 40);
        assert!(q.pop(0).is_none());
    }
}
