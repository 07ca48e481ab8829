//! moat: the runc-compatible CLI of Moat, plus `moat do` for a quick sandboxed command.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use moat_proto::boot::SentryExit;

mod cli;

#[derive(Parser)]
#[command(
    name = "moat",
    version,
    about = "Run Linux programs inside Moat's userspace kernel"
)]
struct Cli {
    /// Where to write the log (default: stderr).
    #[arg(long, global = true)]
    log: Option<std::path::PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Do(cli::r#do::DoArgs),
    /// Runs a pod's shim (started by moat-cri; not for people).
    Shim(cli::shim::ShimArgs),
    /// Lists the syscall table: number, name, whether Moat implements it.
    Syscalls,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = cli.log_format;
    match &cli.log {
        Some(path) => {
            if let Ok(f) = std::fs::File::create(path) {
                tracing_subscriber::fmt()
                    .with_writer(std::sync::Mutex::new(f))
                    .with_env_filter(filter)
                    .init();
            }
        }
        None => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .without_time()
            .init(),
    }
    let r = match cli.cmd {
        Cmd::Do(a) => cli::r#do::run(a),
        Cmd::Shim(a) => cli::shim::run(a),
        Cmd::Syscalls => {
            for r in moat_sentry::syscalls::table::all() {
                println!(
                    "{:>3} {:<24} {}",
                    r.nr,
                    r.name,
                    if r.implemented { "yes" } else { "ENOSYS" }
                );
            }
            Ok(SentryExit::Exited(0))
        }
    };
    match r.context("moat failed") {
        Ok(SentryExit::Exited(c)) => ExitCode::from(c),
        Ok(SentryExit::Signaled { signal, .. }) => cli::die_of(signal),
        Ok(SentryExit::Failed) => ExitCode::from(125),
        Err(e) => {
            eprintln!("moat: {e:#}");
            ExitCode::from(125)
        }
    }
}
