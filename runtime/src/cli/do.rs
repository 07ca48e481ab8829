//! `moat do`: run one command in a fresh sandbox on the host's files.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use moat_proto::boot::SentryExit;
use moat_runtime::{run_do, DoOptions};

/// Run a command inside a sandbox. Without --rootfs the sandbox sees the host's root
/// read-only with a writable in-memory layer on top; writes never reach the host.
#[derive(clap::Args)]
pub struct DoArgs {
    /// Use DIR as the sandbox's root (writable) instead of the host's root.
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// Attach the sandbox to interface IFACE of network namespace NETNS (a name under
    /// /run/netns or a path such as /proc/PID/ns/net): its netstack takes the interface's
    /// addresses, routes and MAC. Without it the sandbox has only a loopback.
    #[arg(long, value_name = "NETNS:IFACE")]
    net: Option<String>,
    /// Log every app syscall with its arguments and result, like runsc --strace.
    #[arg(long)]
    strace: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
    cmd: Vec<std::ffi::OsString>,
}

pub fn run(a: DoArgs) -> anyhow::Result<SentryExit> {
    let argv: Vec<Vec<u8>> = a.cmd.into_iter().map(|s| s.into_vec()).collect();
    let env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let cwd = if a.rootfs.is_some() {
        b"/".to_vec()
    } else {
        std::env::current_dir()
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| b"/".to_vec())
    };
    let net = a.net.as_deref().map(super::parse_net).transpose()?;
    let o = DoOptions {
        argv,
        rootfs: a.rootfs,
        strace: a.strace,
        cwd,
        env,
        net,
    };
    Ok(run_do(&o)?)
}
