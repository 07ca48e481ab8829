//! moat-gofer: serves one sandbox's root to its sentry.
//! May touch: the root named in its boot message, after pivoting into it in its own mount
//! namespace; nothing else.
//! Never: opens a path outside that root, or makes a syscall outside [`gofer_filter`] once it
//! serves.
//!
//! Boot: the runtime passes a seqpacket socket at fd 3 ([`moat_proto::boot::BOOT_FD`]) and
//! sends one [`GoferBoot`] over it with the socket to serve the sentry on. The gofer confines
//! itself to the root, installs its seccomp filter, and serves until the sentry closes its
//! end (exit 0).

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use anyhow::{ensure, Context, Result};
use moat_gofer::channel::MAX_PACKET;
use moat_gofer::{server, sys, Channel};
use moat_proto::boot::GoferBoot;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("MOAT_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("gofer failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let boot = Channel::from_fd(sys::take_boot_fd().context("no boot socket at fd 3")?);
    let (msg, mut fds) = boot
        .recv_msg::<GoferBoot>()
        .context("cannot read the boot message")?;
    drop(boot);
    ensure!(
        fds.len() == 1,
        "boot message carried {} fds, not 1",
        fds.len()
    );
    let chan = Channel::from_fd(fds.pop().context("boot message lost its fd")?);
    let root = CString::new(msg.root).context("root path contains NUL")?;
    confine(&root, msg.read_only)?;
    let root_fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open("/")
        .context("cannot open the root")?
        .into();
    // The sentry applies the app's umask itself; modes it sends are final.
    sys::umask(0);
    // Large directory listings must fit one reply packet.
    if let Err(e) = sys::force_send_buffer(chan.as_fd(), MAX_PACKET + 4096) {
        warn!(error = %e, "cannot raise the reply socket's send buffer");
    }
    let filter = gofer_filter().context("cannot build the seccomp filter")?;
    seccompiler::apply_filter_all_threads(&filter).context("cannot install the seccomp filter")?;
    info!(root = %root.to_string_lossy(), read_only = msg.read_only, "serving");
    server::serve(root_fd, &chan, msg.read_only).context("serving the sentry failed")?;
    info!("sentry closed the channel");
    Ok(())
}

/// Makes `root` this process's `/` in a mount namespace of its own, read-only if asked.
///
/// `root` is staged on a tmpfs over `/proc` (which always exists and never holds a rootfs)
/// rather than bound onto itself: pivot_root needs a new root that is not the current root's
/// mount, and `root` may be `/` itself, whose self-bind a path walk never enters.
fn confine(root: &CString, read_only: bool) -> Result<()> {
    const STAGE: &CStr = c"/proc/root";
    sys::unshare(libc::CLONE_NEWNS).context("cannot unshare the mount namespace")?;
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE)
        .context("cannot make mounts private")?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    sys::mount(Some(c"moat-gofer"), c"/proc", Some(c"tmpfs"), flags)
        .context("cannot mount the staging tmpfs")?;
    std::fs::create_dir("/proc/root").context("cannot make the staging directory")?;
    sys::mount(Some(root), STAGE, None, libc::MS_BIND | libc::MS_REC)
        .with_context(|| format!("cannot bind-mount {}", root.to_string_lossy()))?;
    if read_only {
        sys::make_read_only_recursive(STAGE).context("cannot make the root read-only")?;
    }
    std::env::set_current_dir("/proc/root").context("cannot enter the root")?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching "." then drops it.
    sys::pivot_root(c".", c".").context("cannot pivot_root")?;
    sys::umount2(c".", libc::MNT_DETACH).context("cannot detach the old root")?;
    std::env::set_current_dir("/").context("cannot chdir to /")?;
    Ok(())
}

/// The syscalls [`server::serve`] makes, and nothing else; any other kills the process.
fn gofer_filter() -> Result<BpfProgram> {
    let arg = |index, mask: u64, value: u64| -> Result<SeccompRule> {
        let op = SeccompCmpOp::MaskedEq(mask);
        let cond = SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)?;
        Ok(SeccompRule::new(vec![cond])?)
    };
    let any = Vec::new;
    let s_ifmt = u64::from(libc::S_IFMT);
    let rules: Vec<(libc::c_long, Vec<SeccompRule>)> = vec![
        // Channel::recv / Channel::send: one request in, one reply (and its fd) out.
        (libc::SYS_recvmsg, any()),
        (libc::SYS_sendmsg, any()),
        // Server::open_path and Create: every path is resolved with openat2.
        (libc::SYS_openat2, any()),
        // OwnedFd drop: resolved fds and fds sent with a reply.
        (libc::SYS_close, any()),
        // OwnedFd drop in debug builds of std checks the fd first with F_GETFD (arg 1).
        (
            libc::SYS_fcntl,
            vec![arg(1, u64::MAX, libc::F_GETFD.unsigned_abs().into())?],
        ),
        // stat(): Stat, Open's type check, every Attr reply.
        (libc::SYS_newfstatat, any()),
        // StatFs.
        (libc::SYS_fstatfs, any()),
        // ReadDir.
        (libc::SYS_getdents64, any()),
        // Readlink.
        (libc::SYS_readlinkat, any()),
        // Mkdir.
        (libc::SYS_mkdirat, any()),
        // Mknod: regular files, FIFOs and sockets only, never devices (arg 2 is the mode).
        (
            libc::SYS_mknodat,
            [libc::S_IFREG, libc::S_IFIFO, libc::S_IFSOCK]
                .into_iter()
                .map(|kind| arg(2, s_ifmt, u64::from(kind)))
                .collect::<Result<_>>()?,
        ),
        // Symlink.
        (libc::SYS_symlinkat, any()),
        // Link.
        (libc::SYS_linkat, any()),
        // Unlink.
        (libc::SYS_unlinkat, any()),
        // Rename.
        (libc::SYS_renameat2, any()),
        // SetAttr (owner) and set_owner after a create.
        (libc::SYS_fchownat, any()),
        // SetAttr (mode) and set_owner restoring set-id bits.
        (libc::SYS_fchmodat2, any()),
        // SetAttr (size).
        (libc::SYS_ftruncate, any()),
        // SetAttr (times).
        (libc::SYS_utimensat, any()),
        // The allocator: request buffers and replies; never executable memory (arg 2 is prot).
        (
            libc::SYS_mmap,
            vec![arg(2, libc::PROT_EXEC.unsigned_abs().into(), 0)?],
        ),
        (libc::SYS_munmap, any()),
        (libc::SYS_mremap, any()),
        (libc::SYS_brk, any()),
        (libc::SYS_madvise, any()),
        // tracing: log lines to stderr only, timestamped (the vDSO may fall back to the syscall).
        (libc::SYS_write, vec![arg(0, u64::MAX, 2)?]),
        (libc::SYS_clock_gettime, any()),
        // Exit once the sentry hangs up; std's clean-up first removes the main thread's
        // signal stack (sigaltstack, then munmap).
        (libc::SYS_sigaltstack, any()),
        (libc::SYS_exit_group, any()),
    ];
    let filter = SeccompFilter::new(
        rules.into_iter().collect::<BTreeMap<_, _>>(),
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        std::env::consts::ARCH.try_into()?,
    )?;
    Ok(filter.try_into()?)
}
