//! moat-cri: the daemon kubelet talks to, serving CRI v1 on a unix socket.
//! May touch: its socket, root and state directories, registries.
//! Never: keeps running half-configured: a bad flag or config file stops it before it listens.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use moat_cri::config::Config;
use serde::Deserialize;
use tokio::signal::unix::{signal, SignalKind};

const DEFAULT_LISTEN: &str = "unix:///run/moat/moat-cri.sock";
const DEFAULT_ROOT: &str = "/var/lib/moat";
const DEFAULT_STATE: &str = "/run/moat";

/// Serve the Kubernetes CRI v1 (RuntimeService and ImageService) for Moat.
#[derive(Debug, Parser)]
#[command(name = "moat-cri", version)]
struct Cli {
    /// The socket to serve on: unix:///PATH or an absolute path [default: unix:///run/moat/moat-cri.sock].
    #[arg(long)]
    listen: Option<String>,
    /// Directory of persistent data (images, later pods and containers) [default: /var/lib/moat].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Directory of runtime state that does not outlive a reboot [default: /run/moat].
    #[arg(long)]
    state: Option<PathBuf>,
    /// TOML file with the same keys as these flags; a flag given on the command line wins.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A runtime handler (RuntimeClass handler) name to serve; repeatable [default: moat].
    #[arg(long = "runtime-handler")]
    runtime_handlers: Vec<String>,
    /// A registry host (name[:port]) to reach over plain HTTP; repeatable. Loopback always is.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
}

/// The `--config` file: the flags' keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    root: Option<PathBuf>,
    state: Option<PathBuf>,
    runtime_handler: Option<Vec<String>>,
    insecure_registry: Option<Vec<String>>,
}

fn read_config_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("cannot parse config file {}", path.display()))
}

/// Merges flags over the config file over the defaults, and validates the result.
fn config(cli: Cli) -> anyhow::Result<Config> {
    let file = match &cli.config {
        Some(p) => read_config_file(p)?,
        None => FileConfig::default(),
    };
    let nonempty = |v: Vec<String>| Some(v).filter(|v| !v.is_empty());
    Config::new(
        &cli.listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        cli.root
            .or(file.root)
            .unwrap_or_else(|| DEFAULT_ROOT.into()),
        cli.state
            .or(file.state)
            .unwrap_or_else(|| DEFAULT_STATE.into()),
        nonempty(cli.runtime_handlers)
            .or(file.runtime_handler)
            .unwrap_or_default(),
        nonempty(cli.insecure_registries)
            .or(file.insecure_registry)
            .unwrap_or_default(),
    )
    .context("invalid configuration")
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
    let config = config(Cli::parse())?;
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
