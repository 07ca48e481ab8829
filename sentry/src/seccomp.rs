//! The sentry's seccomp allowlist: exactly the host syscalls the sentry itself makes, plus
//! those it injects into stubs (stubs inherit this filter). App syscalls never reach it:
//! PTRACE_SYSEMU stops them before seccomp runs.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};

/// Builds the filter. Unlisted syscalls trap (SIGSYS): the handler in `crate::sys` logs the
/// number and makes the call fail with EPERM.
pub fn filter() -> Result<BpfProgram, seccompiler::BackendError> {
    let allowed: &[(i64, &str)] = &[
        (libc::SYS_read, "host stdio, pipes to the runtime"),
        (libc::SYS_write, "host stdio, logs"),
        (libc::SYS_pread64, "gofer-donated files"),
        (
            libc::SYS_pwrite64,
            "gofer-donated files, memory file write-back",
        ),
        (libc::SYS_close, "fds"),
        (libc::SYS_fstat, "donated file sizes"),
        (libc::SYS_lseek, "SEEK_DATA/SEEK_HOLE on the memory file"),
        (libc::SYS_fallocate, "punching holes in the memory file"),
        (
            libc::SYS_mincore,
            "resident pages of the memory file (container stats)",
        ),
        (libc::SYS_fsync, "fsync of donated files"),
        (libc::SYS_ftruncate, "donated files"),
        (libc::SYS_mmap, "allocator; injected into stubs"),
        (libc::SYS_munmap, "allocator; injected into stubs"),
        (
            libc::SYS_mprotect,
            "allocator, thread stacks; injected into stubs",
        ),
        (libc::SYS_mremap, "allocator"),
        (libc::SYS_madvise, "allocator"),
        (libc::SYS_brk, "allocator"),
        (libc::SYS_rt_sigaction, "runtime signal setup"),
        (libc::SYS_rt_sigprocmask, "threads"),
        (libc::SYS_rt_sigreturn, "signal return"),
        (libc::SYS_sigaltstack, "thread stacks"),
        (libc::SYS_futex, "locks, condvars"),
        (
            libc::SYS_clone,
            "threads; stubs; injected clone of stub threads",
        ),
        (libc::SYS_clone3, "std threads"),
        (libc::SYS_set_robust_list, "threads"),
        (libc::SYS_rseq, "threads"),
        (libc::SYS_sched_yield, "sched_yield of the app"),
        (libc::SYS_sched_getaffinity, "std's thread bookkeeping"),
        (libc::SYS_exit, "thread exit; injected into stubs"),
        (libc::SYS_exit_group, "exit"),
        (libc::SYS_wait4, "waiting for stubs"),
        (libc::SYS_waitid, "waiting for stubs"),
        (libc::SYS_kill, "killing stubs"),
        (libc::SYS_tgkill, "interrupting stub threads"),
        (libc::SYS_ptrace, "the ptrace platform"),
        (libc::SYS_getpid, "std"),
        (libc::SYS_gettid, "std, logging"),
        (libc::SYS_poll, "waiting on host stdio"),
        (libc::SYS_ppoll, "waiting on host stdio"),
        (libc::SYS_clock_gettime, "time"),
        (libc::SYS_clock_nanosleep, "sleeps"),
        (libc::SYS_nanosleep, "sleeps"),
        (libc::SYS_getrandom, "AT_RANDOM, /dev/urandom"),
        (libc::SYS_sendmsg, "gofer and runtime channels"),
        (libc::SYS_recvmsg, "gofer and runtime channels"),
        (
            libc::SYS_recvmmsg,
            "frames from the pod interface's packet socket",
        ),
        (
            libc::SYS_sendmmsg,
            "frames to the pod interface's packet socket",
        ),
        (
            libc::SYS_recvfrom,
            "frames from the pod interface's packet socket",
        ),
        (
            libc::SYS_sendto,
            "frames to the pod interface's packet socket",
        ),
        (
            libc::SYS_ioctl,
            "TCGETS/TCSETS/TIOCGWINSZ on stdio terminals",
        ),
        (libc::SYS_close_range, "stub start-up"),
        (libc::SYS_prctl, "thread names"),
        (
            libc::SYS_pause,
            "stub threads waiting to be seized (clone gadget)",
        ),
        (
            libc::SYS_execveat,
            "new stubs exec the in-memory stub image (platform::ptrace)",
        ),
        (libc::SYS_sysinfo, "sysinfo(2) totals"),
        (libc::SYS_fcntl, "fd checks"),
        (libc::SYS_uname, "std"),
        (libc::SYS_getuid, "std"),
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _who) in allowed {
        rules.insert(*nr, Vec::new());
    }
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    f.try_into()
}
