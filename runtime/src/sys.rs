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
    // SAFETY: raise takes no pointers.
    unsafe { libc::raise(sig) };
}
