//! Boot: receive the runtime's boot message, confine the process, build the kernel and the
//! mount tree, start init and report its exit.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use moat_gofer::{Channel, GoferClient};
use moat_proto::boot::{RuntimeMsg, SentryBoot, SentryExit, BOOT_FD};

use crate::kernel::{self, Creds, ExitStatus, Kernel, NewTask, Start, Task};
use crate::mm::MemFile;
use crate::platform::ptrace::Ptrace;
use crate::vfs::fs::{dev, gofer, host, overlay, proc, tmpfs};
use crate::vfs::{FdTable, File, Follow, FsContext, Vfs};

/// Size of the sparse memory file (address space for all app memory).
const MEMFILE_SIZE: u64 = 1 << 40;

/// The sentry process's main: returns the exit code to use.
pub fn main() -> Result<u8> {
    crate::sys::malloc_single_arena();
    let boot_fd = crate::sys::take_fd(BOOT_FD).context("no boot socket at fd 3")?;
    let chan = Channel::from_fd(boot_fd);
    let (boot, mut fds): (SentryBoot, Vec<OwnedFd>) =
        chan.recv_msg().context("cannot read boot message")?;
    let base = if boot.pod { 0 } else { 4 };
    let want = base + usize::from(!boot.net_iface.is_empty());
    if fds.len() != want {
        bail!("boot message came with {} fds, want {want}", fds.len());
    }
    let netns = (want > base).then(|| fds.pop()).flatten();
    // The netstack is made while the sentry may still reach the pod's network namespace: it
    // opens the packet socket there, then the sentry leaves for a namespace of its own.
    let net = crate::net::stack::NetStack::boot(&boot.net_iface, netns)
        .context("cannot start the netstack")?;
    let cpuinfo = std::fs::read("/proc/cpuinfo").unwrap_or_default();
    crate::sys::host_cpus();
    let _ = proc::CPUINFO.set(cpuinfo);
    crate::sys::confine_namespaces().context("cannot enter namespaces")?;
    // In the new PID namespace the sentry must be PID 1: fork once, the parent waits.
    if let Some(code) =
        crate::sys::fork_into_pid_ns().context("cannot fork into the pid namespace")?
    {
        return Ok(code);
    }
    crate::sys::empty_root().context("cannot switch to an empty root")?;
    let mf = Arc::new(MemFile::new(MEMFILE_SIZE).context("cannot create the memory file")?);
    let platform = Box::new(Ptrace::new(mf.raw_fd()));
    if boot.pod {
        // A pod: an empty root; each container's root is mounted under it as it comes.
        let vfs = Vfs::new(tmpfs::TmpFs::new().root(0o755), "tmpfs", b"pod", false);
        crate::sys::install_seccomp().context("cannot install the seccomp filter")?;
        start_netstack(&net)?;
        let k = Kernel::new(platform, mf, vfs, boot.strace, boot.hostname.clone(), net);
        crate::control::serve(&k, Arc::new(chan));
        return Ok(0);
    }
    let stderr = fds.pop().context("stderr")?;
    let stdout = fds.pop().context("stdout")?;
    let stdin = fds.pop().context("stdin")?;
    let gofer_sock = fds.pop().context("gofer socket")?;
    let client = Arc::new(GoferClient::new(Channel::from_fd(gofer_sock)));
    let gfs = gofer::GoferFs::new(client, boot.overlay_root);
    let groot =
        gofer::root_inode(&gfs).map_err(|e| anyhow::anyhow!("cannot stat the root: {e}"))?;
    let root = if boot.overlay_root {
        overlay::new(groot)
    } else {
        groot
    };
    let vfs = Vfs::new(
        root,
        if boot.overlay_root { "overlay" } else { "9p" },
        b"rootfs",
        false,
    );
    crate::sys::install_seccomp().context("cannot install the seccomp filter")?;
    start_netstack(&net)?;
    let k = Kernel::new(platform, mf, vfs, boot.strace, boot.hostname.clone(), net);
    mount_special(&k, &k.vfs.root);
    let chan = Arc::new(chan);
    let status = run_init(&k, boot, [stdin, stdout, stderr], &chan)?;
    if k.strace {
        let m = k.enosys.lock().unwrap_or_else(|e| e.into_inner());
        let total: u64 = m.values().sum();
        eprintln!("[moat] unimplemented syscalls: {} calls", total);
        for (nr, n) in m.iter() {
            let name = crate::syscalls::table::get(*nr)
                .map(|r| r.name)
                .unwrap_or("?");
            eprintln!("[moat]   {name} ({nr}): {n}");
        }
    }
    let msg = match status {
        ExitStatus::Exited(c) => SentryExit::Exited(c),
        ExitStatus::Signaled(s) => SentryExit::Signaled {
            signal: s as u8,
            core: false,
        },
    };
    let _ = chan.send_msg(&msg, &[]);
    Ok(match status {
        ExitStatus::Exited(c) => c,
        ExitStatus::Signaled(s) => 128 + s as u8,
    })
}

fn start_netstack(net: &Arc<crate::net::stack::NetStack>) -> Result<()> {
    let net = net.clone();
    std::thread::Builder::new()
        .name("netstack".into())
        .spawn(move || net.run_poller())
        .context("cannot start the netstack thread")?;
    Ok(())
}

/// Mounts /proc, /dev and /dev/shm under `root` (where those directories exist).
pub fn mount_special(k: &Arc<Kernel>, root: &crate::vfs::VPath) {
    let root = root.clone();
    let at = |name: &[u8]| -> Option<crate::vfs::VPath> {
        let d = root.d.child(name).ok()?;
        let p = crate::vfs::VPath {
            mnt: root.mnt.clone(),
            d,
        };
        (p.d.inode.kind() == crate::vfs::S_IFDIR).then_some(p)
    };
    if let Some(p) = at(b"proc") {
        let _ = k.vfs.mount(&p, proc::root(k), "proc", b"proc", false);
    }
    if let Some(p) = at(b"dev") {
        if let Ok(d) = dev::build() {
            let _ = k.vfs.mount(&p, d, "tmpfs", b"devtmpfs", false);
        }
    }
    if let Some(p) = at(b"dev") {
        let devroot = k.vfs.mounts().last().map(|m| m.root.clone());
        if let Some(dr) = devroot {
            if let Ok(shm) = dr.child(b"shm") {
                let mnt = k.vfs.mounts().last().cloned();
                if let Some(mnt) = mnt {
                    let _ = k.vfs.mount(
                        &crate::vfs::VPath { mnt, d: shm },
                        tmpfs::TmpFs::new().root(0o1777),
                        "tmpfs",
                        b"shm",
                        false,
                    );
                }
            }
        }
        let _ = p;
    }
}

/// Serves the runtime's messages: signals for init; if the runtime goes away, the sandbox
/// ends (init is killed).
fn serve_runtime(k: Arc<Kernel>, chan: Arc<Channel>) {
    loop {
        match chan.recv_msg::<RuntimeMsg>() {
            Ok((RuntimeMsg::Signal(sig), _)) => {
                if let Some(init) = k.group(1) {
                    let sig = i32::from(sig);
                    if (1..=64).contains(&sig) {
                        k.signal_group(&init, crate::kernel::signal::SigInfo::user(sig, 0, 0));
                    }
                }
            }
            Err(moat_gofer::ChannelError::Decode(e)) => {
                tracing::warn!(error = %e, "bad runtime message")
            }
            Err(_) => {
                tracing::info!("runtime gone: ending the sandbox");
                if let Some(init) = k.group(1) {
                    k.signal_group(
                        &init,
                        crate::kernel::signal::SigInfo::kernel(crate::abi::signal::SIGKILL),
                    );
                }
                return;
            }
        }
    }
}

/// A process to start in the sandbox: where its root is, its stdio, who it runs as.
pub struct Spawn {
    pub root: crate::vfs::VPath,
    pub stdio: [OwnedFd; 3],
    pub creds: Creds,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    /// The container it belongs to (pod sandboxes), inherited by its children.
    pub container: Option<Arc<str>>,
}

/// The app's stdio: host fds the runtime handed over, as fds 0, 1 and 2.
fn stdio_table(stdio: [OwnedFd; 3], console: bool) -> Result<FdTable, String> {
    let mut table = FdTable::default();
    for (i, fd) in stdio.into_iter().enumerate() {
        let h = host::HostFd::new(fd);
        let tty = crate::vfs::FileOps::is_tty(&*h);
        if i == 0 && tty && console {
            let _ = dev::CONSOLE.set(h.clone());
        }
        let flags = if i == 0 {
            crate::vfs::file::O_RDONLY
        } else {
            crate::vfs::file::O_WRONLY
        };
        let f = File::new(
            h,
            Some(host::AnonInode::stdio(tty)),
            None,
            flags
                | if i == 0 && tty {
                    crate::vfs::file::O_RDWR
                } else {
                    0
                },
        );
        table
            .install_at(i as i32, f, false, 1024)
            .map_err(|e| format!("stdio: {e}"))?;
    }
    Ok(table)
}

/// Starts a new process (no parent) that execs `s.argv` under `s.root`; returns its pid once
/// the exec succeeded, or why it failed.
pub fn spawn_process(k: &Arc<Kernel>, s: Spawn) -> Result<i32, String> {
    let table = stdio_table(s.stdio, s.container.is_none())?;
    let fsctx = FsContext {
        root: s.root.clone(),
        cwd: s.root,
        umask: 0o022,
    };
    let comm = s
        .argv
        .first()
        .map(|a| a.rsplit(|&b| b == b'/').next().unwrap_or(a).to_vec())
        .unwrap_or_else(|| b"init".to_vec());
    let h = kernel::new_group(
        k,
        None,
        [crate::abi::SigAction::default(); 64],
        comm,
        s.container,
    );
    let pid = h.tg.tgid;
    let fds = Arc::new(Mutex::new(table));
    let fs = Arc::new(Mutex::new(fsctx));
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let k2 = k.clone();
    let n = NewTask {
        k: k.clone(),
        h,
        start: Start::Init,
        regs: crate::abi::Regs::default(),
        fds,
        fs,
        creds: s.creds,
        clear_tid: 0,
        vfork_done: None,
        ready: None,
    };
    let (argv, envp, cwd) = (s.argv, s.envp, s.cwd);
    std::thread::Builder::new()
        .name(format!("task-{pid}"))
        .stack_size(1 << 20)
        .spawn(move || {
            let mut t = match Task::start_init(n) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start the process: {e}")));
                    return;
                }
            };
            if !cwd.is_empty() {
                let ctx = t.fsctx();
                match k2.vfs.walk(&t, &ctx, &ctx.root, &cwd, Follow::Yes) {
                    Ok(p) => t.fs.lock().unwrap_or_else(|e| e.into_inner()).cwd = p,
                    Err(e) => {
                        let _ = tx.send(Err(format!(
                            "cannot chdir to {}: {e}",
                            String::from_utf8_lossy(&cwd)
                        )));
                        t.exit_group(ExitStatus::Exited(126));
                        t.run();
                        return;
                    }
                }
            }
            let path = argv.first().cloned().unwrap_or_default();
            let path = resolve_in_path(&t, &path, &envp);
            match crate::syscalls::process::do_execve(&mut t, path.clone(), argv, envp) {
                Err(e) if e == crate::syscalls::EJUSTRETURN => {
                    let _ = tx.send(Ok(()));
                    t.run();
                }
                Err(e) => {
                    let _ = tx.send(Err(format!(
                        "cannot execute {}: {}",
                        String::from_utf8_lossy(&path),
                        e
                    )));
                    t.exit_group(ExitStatus::Exited(if e == crate::abi::Errno::ENOENT {
                        127
                    } else {
                        126
                    }));
                    t.run();
                }
                Ok(_) => {
                    let _ = tx.send(Err("execve returned".into()));
                }
            }
        })
        .map_err(|e| format!("cannot spawn the process thread: {e}"))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(pid),
        Ok(Err(msg)) => Err(msg),
        Err(_) => Err("the process thread died".into()),
    }
}

fn run_init(
    k: &Arc<Kernel>,
    boot: SentryBoot,
    stdio: [OwnedFd; 3],
    chan: &Arc<Channel>,
) -> Result<ExitStatus> {
    let creds = Creds {
        uid: boot.uid,
        euid: boot.uid,
        suid: boot.uid,
        gid: boot.gid,
        egid: boot.gid,
        sgid: boot.gid,
        groups: Vec::new(),
    };
    let spawned = spawn_process(
        k,
        Spawn {
            root: k.vfs.root.clone(),
            stdio,
            creds,
            argv: boot.argv,
            envp: boot.envp,
            cwd: boot.cwd,
            container: None,
        },
    );
    match spawned {
        Ok(_) => {
            let (k2, c2) = (k.clone(), chan.clone());
            std::thread::Builder::new()
                .name("runtime".into())
                .spawn(move || serve_runtime(k2, c2))
                .context("cannot spawn the runtime thread")?;
        }
        Err(msg) => {
            eprintln!("moat: {msg}");
            return Ok(ExitStatus::Exited(if msg.contains("ENOENT") {
                127
            } else {
                126
            }));
        }
    }
    Ok(k.wait_init())
}

/// A command without a slash is looked up in the PATH of its environment, like execvp.
fn resolve_in_path(t: &Task, cmd: &[u8], envp: &[Vec<u8>]) -> Vec<u8> {
    if cmd.contains(&b'/') || cmd.is_empty() {
        return cmd.to_vec();
    }
    let path = envp
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| {
            b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec()
        });
    for dir in path.split(|&b| b == b':') {
        let mut cand = dir.to_vec();
        cand.push(b'/');
        cand.extend_from_slice(cmd);
        let ctx = t.fsctx();
        if let Ok(p) = t.k.vfs.walk(t, &ctx, &ctx.cwd, &cand, Follow::Yes) {
            if p.d.inode.kind() == crate::vfs::S_IFREG {
                return cand;
            }
        }
    }
    cmd.to_vec()
}
