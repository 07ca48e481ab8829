//! moat-sentry: Moat's userspace kernel. It traps every system call of the app (ptrace
//! platform), implements Linux itself, and serves files through its gofer.
//! May touch: only what it was handed at boot (its gofer socket, the stdio fds, its memory
//! file); after boot it opens no host path.
//! Never: passes an app syscall through to the host, or panics on anything the app does.
//!
//! Unsafe code lives only in `sys`, `platform::ptrace::sys` and `mm::memfile`.

// x86-64 only: the ABI conversions between register-sized values are deliberate and
// mirror the kernel's own; the truncating and sign casts are reviewed where they occur.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

pub mod abi;
pub mod boot;
pub mod control;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod platform;
pub mod seccomp;
pub mod sys;
pub mod syscalls;
pub mod vfs;
