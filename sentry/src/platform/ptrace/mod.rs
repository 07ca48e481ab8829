//! The ptrace platform: each app thread is a host thread of a *stub* process, traced by the
//! sentry thread that runs it. Its syscalls stop with PTRACE_SYSEMU and never run on the host;
//! address-space changes are syscalls the sentry injects into the stub through the stub page's
//! `syscall; int3` gadget. The stub's memory is made only of memory-file mappings; the host
//! vDSO and everything inherited from the sentry is unmapped when a stub starts.

pub mod sys;

use std::os::fd::RawFd;

use super::{Event, Interrupter, Layout, Platform, PlatformError, PlatformThread, Seed};
use crate::abi::Regs;
use sys::Stop;

/// Creates stubs by forking the sentry; keeps the memory file's fd number to map from.
pub struct Ptrace {
    memfd: RawFd,
}

impl Ptrace {
    /// `memfd` must stay open for the platform's lifetime (the memory file owns it).
    pub fn new(memfd: RawFd) -> Self {
        sys::stub_base();
        if let Err(e) = sys::stub_image() {
            tracing::error!(error = %e, "cannot make the stub image");
        }
        Ptrace { memfd }
    }
}

impl Platform for Ptrace {
    fn new_address_space(&self) -> Result<Box<dyn PlatformThread>, PlatformError> {
        let pid = sys::fork_stub(self.memfd)?;
        Ok(Box::new(PtraceThread::new(pid, pid, self.memfd)))
    }

    fn adopt(&self, seed: Seed) -> Result<Box<dyn PlatformThread>, PlatformError> {
        sys::seize(seed.pid)?;
        Ok(Box::new(PtraceThread::new(
            seed.pid,
            seed.leader,
            self.memfd,
        )))
    }

    fn reap(&self) {
        sys::reap_zombies();
    }

    fn layout(&self) -> Layout {
        let base = sys::stub_base();
        Layout {
            top: sys::TASK_TOP,
            reserved: (base, base + sys::PAGE),
        }
    }
}

/// One traced stub thread.
pub struct PtraceThread {
    pid: i32,
    /// The stub process's first thread (its thread-group leader).
    leader: i32,
    memfd: RawFd,
    /// The registers the stub was stopped with before an injection (scratch).
    scratch: Regs,
    dead: bool,
}

impl PtraceThread {
    fn new(pid: i32, leader: i32, memfd: RawFd) -> Self {
        PtraceThread {
            pid,
            leader,
            memfd,
            scratch: Regs::default(),
            dead: false,
        }
    }

    /// Runs one host syscall in the stub (which must be stopped) and returns its result.
    fn inject(&mut self, nr: i64, args: [u64; 6], at: u64) -> Result<i64, PlatformError> {
        if self.dead {
            return Err(PlatformError::StubGone { pid: self.pid });
        }
        sys::get_regs(self.pid, &mut self.scratch)?;
        let mut r = self.scratch;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        r.rip = sys::stub_base() + at;
        sys::set_regs(self.pid, &r)?;
        sys::resume(self.pid, false)?;
        loop {
            let st = sys::wait(self.pid)?;
            if tracing::enabled!(tracing::Level::TRACE) {
                let mut rr = Regs::default();
                let _ = sys::get_regs(self.pid, &mut rr);
                let si = sys::get_siginfo(self.pid).ok();
                tracing::trace!(
                    pid = self.pid,
                    nr,
                    ?st,
                    rip = rr.rip,
                    ?si,
                    base = sys::stub_base(),
                    "inject stop"
                );
            }
            match st {
                Stop::Signal(libc::SIGTRAP) => break,
                Stop::Signal(_) | Stop::Syscall => sys::resume(self.pid, false)?,
                Stop::Gone => {
                    self.dead = true;
                    return Err(PlatformError::StubGone { pid: self.pid });
                }
            }
        }
        let mut after = Regs::default();
        sys::get_regs(self.pid, &mut after)?;
        sys::set_regs(self.pid, &self.scratch)?;
        Ok(after.rax as i64)
    }

    fn inject_ok(
        &mut self,
        what: &'static str,
        nr: i64,
        args: [u64; 6],
    ) -> Result<i64, PlatformError> {
        let r = self.inject(nr, args, sys::OFF_SYSCALL)?;
        if (-4095..0).contains(&r) {
            return Err(PlatformError::Injected {
                what,
                errno: (-r) as i32,
            });
        }
        Ok(r)
    }
}

impl PlatformThread for PtraceThread {
    fn switch(&mut self, regs: &mut Regs) -> Result<Event, PlatformError> {
        if self.dead {
            return Ok(Event::Gone);
        }
        regs.orig_rax = u64::MAX;
        sys::set_regs(self.pid, regs)?;
        sys::resume(self.pid, true)?;
        let stop = sys::wait(self.pid)?;
        let ev = match stop {
            Stop::Gone => {
                self.dead = true;
                return Ok(Event::Gone);
            }
            Stop::Syscall => Event::Syscall,
            Stop::Signal(sig) => match sig {
                libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
                    let (signo, code, addr) = sys::get_siginfo(self.pid)?;
                    Event::Fault { signo, code, addr }
                }
                _ => Event::Interrupted,
            },
        };
        sys::get_regs(self.pid, regs)?;
        Ok(ev)
    }

    fn map(&mut self, addr: u64, len: u64, prot: i32, offset: u64) -> Result<(), PlatformError> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.inject_ok(
            "mmap",
            libc::SYS_mmap,
            [addr, len, prot as u64, flags, self.memfd as u64, offset],
        )
        .map(|_| ())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.inject_ok("munmap", libc::SYS_munmap, [addr, len, 0, 0, 0, 0])
            .map(|_| ())
    }

    fn protect(&mut self, addr: u64, len: u64, prot: i32) -> Result<(), PlatformError> {
        self.inject_ok(
            "mprotect",
            libc::SYS_mprotect,
            [addr, len, prot as u64, 0, 0, 0],
        )
        .map(|_| ())
    }

    fn new_sibling(&mut self) -> Result<Seed, PlatformError> {
        let flags = libc::CLONE_VM
            | libc::CLONE_THREAD
            | libc::CLONE_SIGHAND
            | libc::CLONE_FILES
            | libc::CLONE_FS
            | libc::CLONE_UNTRACED;
        let r = self.inject(
            libc::SYS_clone,
            [flags as u64, 0, 0, 0, 0, 0],
            sys::OFF_CLONE,
        )?;
        if r < 0 {
            return Err(PlatformError::Injected {
                what: "clone",
                errno: (-r) as i32,
            });
        }
        Ok(Seed {
            pid: r as i32,
            leader: self.leader,
        })
    }

    fn get_fpstate(&mut self) -> Result<Vec<u8>, PlatformError> {
        sys::get_xstate(self.pid)
    }

    fn set_fpstate(&mut self, state: &[u8]) -> Result<(), PlatformError> {
        sys::set_xstate(self.pid, state)
    }

    fn interrupter(&self) -> Interrupter {
        Interrupter { pid: self.pid }
    }

    fn exit(&mut self, whole_address_space: bool) {
        if self.dead {
            return;
        }
        if whole_address_space {
            sys::kill_and_reap(self.pid);
            if self.leader != self.pid {
                sys::reap_later(self.leader);
            }
        } else {
            // Only this thread: its siblings keep the address space.
            let _ = self.inject(libc::SYS_exit, [0; 6], sys::OFF_SYSCALL);
        }
        self.dead = true;
    }
}
