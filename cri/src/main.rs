//! moat-cri: the daemon kubelet talks to, serving CRI v1 on a unix socket.
//! May touch: its socket, root and state directories, registries.
//! Never: keeps running half-configured: a bad flag or config file stops it before it listens.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use moat_cri::cni::split_bin_dirs;
use moat_cri::config::{Config, Settings};
use tokio::signal::unix::{signal, SignalKind};

/// Serve the Kubernetes CRI v1 (RuntimeService and ImageService) for Moat.
#[derive(Debug, Parser)]
#[command(name = "moat-cri", version)]
struct Cli {
    /// The socket to serve on: unix:///PATH or an absolute path [default: unix:///run/moat/moat-cri.sock].
    #[arg(long)]
    listen: Option<String>,
    /// Directory of persistent data (images, pods, containers) [default: /var/lib/moat].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Directory of runtime state that does not outlive a reboot [default: /run/moat].
    #[arg(long)]
    state: Option<PathBuf>,
    /// Directory of CNI network configurations [default: /etc/cni/net.d].
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    /// Colon-separated directories searched for CNI plugins [default: /usr/lib/cni:/opt/cni/bin].
    #[arg(long)]
    cni_bin_dir: Option<String>,
    /// A runtime handler (RuntimeClass handler) name to serve; repeatable [default: moat].
    #[arg(long = "runtime-handler")]
    runtime_handlers: Vec<String>,
    /// IP:PORT the exec/attach/port-forward streaming server listens on; port 0 picks a free one
    /// [default: 127.0.0.1:0].
    #[arg(long)]
    streaming_address: Option<String>,
    /// Directory of per-registry settings, <dir>/<host[:port]>/hosts.toml as in containerd:
    /// mirrors (which replace the registry), CAs, plain HTTP [default: /etc/moat/certs.d, read
    /// if it exists].
    #[arg(long)]
    registry_config_dir: Option<PathBuf>,
    /// A registry (host[:port], as images name it) to reach over plain HTTP; repeatable.
    /// Loopback registries always are, unless their hosts.toml asks for TLS.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// How pods' cgroup_parent is named, as kubelet's cgroupDriver: cgroupfs or systemd
    /// [default: cgroupfs].
    #[arg(long)]
    cgroup_driver: Option<String>,
    /// TOML file with the same keys in snake_case (runtime_handlers and insecure_registries are
    /// lists; cni_bin_dir a list or a colon-separated string); a flag given here wins.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Cli {
    /// The settings given on the command line.
    fn settings(&self) -> Settings {
        let nonempty = |v: &Vec<String>| Some(v.clone()).filter(|v| !v.is_empty());
        Settings {
            listen: self.listen.clone(),
            root: self.root.clone(),
            state: self.state.clone(),
            cni_conf_dir: self.cni_conf_dir.clone(),
            cni_bin_dirs: self.cni_bin_dir.as_deref().map(split_bin_dirs),
            runtime_handlers: nonempty(&self.runtime_handlers),
            streaming_address: self.streaming_address.clone(),
            registry_config_dir: self.registry_config_dir.clone(),
            insecure_registries: nonempty(&self.insecure_registries),
            cgroup_driver: self.cgroup_driver.clone(),
        }
    }
}

fn read_config_file(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Settings::from_toml(&text)
        .with_context(|| format!("cannot parse config file {}", path.display()))
}

/// Merges flags over the config file over the defaults, and validates the result.
fn config(cli: &Cli) -> anyhow::Result<Config> {
    let file = match &cli.config {
        Some(p) => read_config_file(p)?,
        None => Settings::default(),
    };
    Config::from_settings(cli.settings().or(file)).context("invalid configuration")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = config(&Cli::parse())?;
    tracing::info!(
        registry_config_dir = %config.registry_config_dir.display(),
        registries = ?config.registry_hosts.namespaces().collect::<Vec<_>>(),
        streaming_address = %config.streaming_address,
        "configured"
    );
    let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    };
    moat_cri::server::serve(&config, shutdown)
        .await
        .with_context(|| format!("cannot serve CRI on {}", config.socket.display()))
}
