//! How app code runs and traps.
//!
//! A [`Platform`] creates address spaces; a [`PlatformThread`] is one app thread's execution
//! context bound to the calling sentry thread: `switch` runs app code until it makes a syscall,
//! faults or is interrupted; `map`/`unmap`/`protect` change the address space it runs in. All
//! syscall handlers see only these traits, so a second platform (seccomp-trap based) plugs in
//! without touching them.

pub mod ptrace;

use crate::abi::Regs;

/// Why app code stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The app made a syscall; `regs.orig_rax` holds its number.
    Syscall,
    /// A synchronous fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) raised by app code.
    Fault { signo: i32, code: i32, addr: u64 },
    /// Kicked out by [`Interrupter::interrupt`] or a stray host signal.
    Interrupted,
    /// The host thread under the app is gone (killed from outside the sentry).
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{op} failed")]
    Host {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("stub thread {pid} vanished")]
    StubGone { pid: i32 },
    #[error("injected {what} returned errno {errno}")]
    Injected { what: &'static str, errno: i32 },
}

/// A thread of app code, driven by the sentry thread that created or adopted it.
pub trait PlatformThread: Send {
    /// Runs app code with `regs` until the next event; `regs` is updated in place.
    fn switch(&mut self, regs: &mut Regs) -> Result<Event, PlatformError>;
    /// Maps `len` bytes of the memory file at `offset` to `addr` (MAP_SHARED|MAP_FIXED).
    fn map(&mut self, addr: u64, len: u64, prot: i32, offset: u64) -> Result<(), PlatformError>;
    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), PlatformError>;
    fn protect(&mut self, addr: u64, len: u64, prot: i32) -> Result<(), PlatformError>;
    /// Makes another thread in this address space, to be adopted by another sentry thread.
    fn new_sibling(&mut self) -> Result<Seed, PlatformError>;
    /// The extended FPU/vector state, as XSAVE lays it out.
    fn get_fpstate(&mut self) -> Result<Vec<u8>, PlatformError>;
    fn set_fpstate(&mut self, state: &[u8]) -> Result<(), PlatformError>;
    /// A handle other sentry threads use to kick this one out of app code.
    fn interrupter(&self) -> Interrupter;
    /// Ends the app thread; with `whole_address_space` every thread of its address space
    /// dies with it. The platform thread is unusable afterwards.
    fn exit(&mut self, whole_address_space: bool);
}

/// A thread made by [`PlatformThread::new_sibling`], not yet bound to a sentry thread.
#[derive(Debug)]
pub struct Seed {
    pub(crate) pid: i32,
    pub(crate) leader: i32,
}

/// Kicks a thread out of app code from any sentry thread.
#[derive(Debug, Clone)]
pub struct Interrupter {
    pub(crate) pid: i32,
}

impl Interrupter {
    pub fn interrupt(&self) {
        ptrace::sys::interrupt(self.pid);
    }
}

/// Creates address spaces.
pub trait Platform: Send + Sync {
    /// A new, empty address space with one thread in it, bound to the calling sentry thread.
    fn new_address_space(&self) -> Result<Box<dyn PlatformThread>, PlatformError>;
    /// Binds a thread made by `new_sibling` to the calling sentry thread.
    fn adopt(&self, seed: Seed) -> Result<Box<dyn PlatformThread>, PlatformError>;
    /// The highest address app mappings may use (exclusive), and the range reserved by the
    /// platform inside it that app mappings must avoid.
    fn layout(&self) -> Layout;
    /// Collects host leftovers of ended threads (zombie stub processes); called now and then.
    fn reap(&self) {}
}

#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub top: u64,
    pub reserved: (u64, u64),
}
