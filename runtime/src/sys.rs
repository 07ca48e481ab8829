//! Host calls of the runtime (its only unsafe code).
#![allow(unsafe_code)]

/// Resets `sig` to its default action, disables core dumps, and raises it.
pub fn raise_default(sig: i32) {
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the kernel only reads.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
    // SAFETY: resetting a signal to SIG_DFL takes no pointers.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    // SAFETY: an all-zero sigset_t is a valid value for sigemptyset to initialize.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: `set` is a valid sigset_t and `sig` a signal number.
    unsafe { libc::sigaddset(&mut set, sig) };
    // SAFETY: `set` is valid; unblocking lets the raise below take effect (the signal may be
    // one `moat do` blocked to forward it).
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    // SAFETY: raise takes no pointers.
    unsafe { libc::raise(sig) };
}

/// The signals `moat do` forwards to the sandbox's init.
pub const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value for sigemptyset to initialize.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in FORWARDED {
        // SAFETY: `set` is a valid sigset_t and `s` a valid signal number.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

/// Blocks the forwarded signals in the calling thread (and threads it spawns later).
pub fn block_forwarded() {
    let set = forwarded_set();
    // SAFETY: `set` is a valid sigset_t; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for one of the forwarded signals (which must be blocked) and returns it.
pub fn wait_forwarded() -> i32 {
    let set = forwarded_set();
    let mut sig = 0;
    // SAFETY: `set` and `sig` are valid; sigwait writes the signal number into `sig`.
    unsafe { libc::sigwait(&set, &mut sig) };
    sig
}

/// Makes `cmd`'s child its own session leader, so it outlives the caller's session and gets
/// none of its terminal's signals (a pod shim outlives the CRI daemon that started it).
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let hook = || {
        // SAFETY: setsid takes no pointers and is async-signal-safe.
        unsafe { libc::setsid() };
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only calls setsid.
    unsafe { cmd.pre_exec(hook) };
}

/// Sends `sig` to process `pid` (errors, such as a process already gone, are ignored).
pub fn kill(pid: u32, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes no pointers; pid > 1 names one process.
    unsafe { libc::kill(pid, sig) };
}
