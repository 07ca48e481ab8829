//! One sandbox: spawn the gofer and the sentry, hand them their boot messages, wait.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use moat_gofer::sys::spawn_with_boot_fd;
use moat_gofer::Channel;
use moat_proto::boot::{GoferBoot, RuntimeMsg, SentryBoot, SentryExit};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot open the network namespace {}", path.display())]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find {0} next to the moat binary")]
    MissingBinary(&'static str),
    #[error("cannot create a channel")]
    Channel(#[source] moat_gofer::ChannelError),
    #[error("cannot spawn {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot send the boot message to {what}")]
    Boot {
        what: &'static str,
        #[source]
        source: moat_gofer::ChannelError,
    },
    #[error("cannot duplicate stdio")]
    Stdio(#[source] std::io::Error),
    #[error("the sentry failed before reporting an exit status")]
    SentryFailed,
    #[error("the sentry refused: {0}")]
    Control(String),
}

/// What `moat do` runs.
#[derive(Debug, Clone)]
pub struct DoOptions {
    pub argv: Vec<Vec<u8>>,
    pub rootfs: Option<PathBuf>,
    pub strace: bool,
    pub cwd: Vec<u8>,
    pub env: Vec<Vec<u8>>,
    /// Attach the sandbox to this interface of this network namespace (the netstack takes
    /// the interface's addresses); None: loopback only.
    pub net: Option<NetAttach>,
}

/// A network namespace and the interface in it a sandbox takes over.
#[derive(Debug, Clone)]
pub struct NetAttach {
    /// A netns file (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub netns: PathBuf,
    pub iface: String,
}

pub(crate) fn sibling(name: &'static str) -> Result<PathBuf, SandboxError> {
    let exe = std::env::current_exe().map_err(|_| SandboxError::MissingBinary(name))?;
    let dir = exe.parent().ok_or(SandboxError::MissingBinary(name))?;
    for cand in [dir.join(name), dir.join("..").join(name)] {
        if cand.exists() {
            return Ok(cand);
        }
    }
    Err(SandboxError::MissingBinary(name))
}

fn dup_stdio(fd: i32) -> Result<OwnedFd, SandboxError> {
    // Borrow our own stdio fd and clone it: the sentry gets its own copy.
    let b = match fd {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        _ => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    b.map_err(SandboxError::Stdio)
}

pub(crate) fn spawn(path: &Path, what: &'static str, fd: OwnedFd) -> Result<Child, SandboxError> {
    let mut cmd = Command::new(path);
    // Stubs are forked from sentry threads and keep none of the sentry's memory, so a
    // thread's rseq registration (which the kernel would follow into unmapped memory on
    // every return to a stub) must not exist.
    cmd.env("GLIBC_TUNABLES", "glibc.pthread.rseq=0");
    spawn_with_boot_fd(&mut cmd, fd).map_err(|source| SandboxError::Spawn { what, source })
}

/// The boot message's `net_iface`: the interface's name, or empty for loopback only.
pub(crate) fn iface_name(net: Option<&NetAttach>) -> Vec<u8> {
    net.map(|n| n.iface.as_bytes().to_vec()).unwrap_or_default()
}

/// Opens the network namespace a sandbox will take its interface from.
pub(crate) fn open_netns(net: Option<&NetAttach>) -> Result<Option<std::fs::File>, SandboxError> {
    net.map(|n| {
        std::fs::File::open(&n.netns).map_err(|source| SandboxError::Netns {
            path: n.netns.clone(),
            source,
        })
    })
    .transpose()
}

/// Spawns a gofer serving `root` (read-only if asked); returns it and the socket end the
/// sentry talks to it over.
pub(crate) fn spawn_gofer(
    bin: &Path,
    root: &Path,
    read_only: bool,
) -> Result<(Child, OwnedFd), SandboxError> {
    let (gofer_ctl, gofer_child) = Channel::pair().map_err(SandboxError::Channel)?;
    let (serve_gofer, serve_sentry) = Channel::pair().map_err(SandboxError::Channel)?;
    let mut gofer = spawn(bin, "the gofer", gofer_child.into_fd())?;
    let gb = GoferBoot {
        root: root.as_os_str().as_bytes().to_vec(),
        read_only,
    };
    let serve_gofer = serve_gofer.into_fd();
    if let Err(source) = gofer_ctl.send_msg(&gb, &[serve_gofer.as_fd()]) {
        let _ = gofer.kill();
        let _ = gofer.wait();
        return Err(SandboxError::Boot {
            what: "the gofer",
            source,
        });
    }
    Ok((gofer, serve_sentry.into_fd()))
}

/// Runs one command in a fresh sandbox and returns how it ended.
pub fn run_do(o: &DoOptions) -> Result<SentryExit, SandboxError> {
    let netns = open_netns(o.net.as_ref())?;
    let gofer_bin = sibling("moat-gofer")?;
    let sentry_bin = sibling("moat-sentry")?;
    let (sentry_ctl, sentry_child) = Channel::pair().map_err(SandboxError::Channel)?;

    let (root, read_only) = match &o.rootfs {
        Some(r) => (r.as_path(), false),
        None => (Path::new("/"), true),
    };
    let (mut gofer, serve_sentry) = spawn_gofer(&gofer_bin, root, read_only)?;

    let mut sentry = spawn(&sentry_bin, "the sentry", sentry_child.into_fd())?;
    let sb = SentryBoot {
        argv: o.argv.clone(),
        envp: o.env.clone(),
        cwd: o.cwd.clone(),
        hostname: b"moat".to_vec(),
        strace: o.strace,
        overlay_root: o.rootfs.is_none(),
        uid: 0,
        gid: 0,
        net_iface: iface_name(o.net.as_ref()),
        pod: false,
    };
    let stdio = [dup_stdio(0)?, dup_stdio(1)?, dup_stdio(2)?];
    let mut boot_fds = vec![
        serve_sentry.as_fd(),
        stdio[0].as_fd(),
        stdio[1].as_fd(),
        stdio[2].as_fd(),
    ];
    if let Some(f) = &netns {
        boot_fds.push(f.as_fd());
    }
    sentry_ctl
        .send_msg(&sb, &boot_fds)
        .map_err(|source| SandboxError::Boot {
            what: "the sentry",
            source,
        })?;
    drop(serve_sentry);
    drop(stdio);

    // Signals sent to `moat` (Ctrl-C, kill) go to the sandbox's init.
    crate::sys::block_forwarded();
    let ctl = std::sync::Arc::new(sentry_ctl);
    let fwd = ctl.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let sig = crate::sys::wait_forwarded();
            let Ok(sig) = u8::try_from(sig) else { continue };
            if fwd.send_msg(&RuntimeMsg::Signal(sig), &[]).is_err() {
                return;
            }
        });
    let exit = ctl.recv_msg::<SentryExit>().map(|(m, _)| m);
    let _ = sentry.wait();
    let _ = gofer.kill();
    let _ = gofer.wait();
    exit.map_err(|_| SandboxError::SentryFailed)
}

/// Kills the calling process with `sig`'s default action (no core dump), so that its parent
/// sees the same status as the sandboxed program's.
pub fn raise_default(sig: i32) {
    crate::sys::raise_default(sig);
}
