//! `moat shim`: the per-pod process the CRI daemon starts (see `moat_runtime::shim`).

use std::path::PathBuf;

use moat_proto::boot::SentryExit;
use moat_runtime::PodOptions;

/// Run a pod's shim in the foreground: boot the pod's sentry and serve requests on
/// DIR/shim.sock until asked to shut down.
#[derive(clap::Args)]
pub struct ShimArgs {
    /// The pod's state directory.
    #[arg(long)]
    dir: PathBuf,
    /// The pod's hostname.
    #[arg(long, default_value = "moat")]
    hostname: String,
    /// The pod's interface: NETNS:IFACE (see `moat do --net`).
    #[arg(long, value_name = "NETNS:IFACE")]
    net: Option<String>,
    /// The pod's cgroup, relative to each hierarchy's root (made by the caller): joined first.
    #[arg(long)]
    cgroup: Option<PathBuf>,
    /// The oom_score_adj of the pod's processes (skipped with a warning if not allowed).
    #[arg(long, allow_hyphen_values = true)]
    oom_score_adj: Option<i64>,
}

pub fn run(a: ShimArgs) -> anyhow::Result<SentryExit> {
    moat_runtime::shim::enter_pod_limits(a.cgroup.as_deref(), a.oom_score_adj)?;
    let opts = PodOptions {
        hostname: a.hostname.into_bytes(),
        net: a.net.as_deref().map(super::parse_net).transpose()?,
        strace: false,
    };
    moat_runtime::shim::serve(&a.dir, &opts)?;
    Ok(SentryExit::Exited(0))
}
