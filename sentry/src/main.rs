//! moat-sentry: the sandbox kernel process. Spawned by the runtime with its boot socket at
//! fd 3; see `moat_proto::boot`.

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .without_time()
        .init();
    match moat_sentry::boot::main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("moat-sentry: {e:#}");
            ExitCode::from(125)
        }
    }
}
