//! Subcommands of the `moat` CLI, one file each.

pub mod r#do;

use std::process::ExitCode;

/// Ends this process the way the sandboxed program ended: killed by `signal`.
pub fn die_of(signal: u8) -> ExitCode {
    moat_runtime::sandbox::raise_default(i32::from(signal));
    ExitCode::from(128 + signal)
}
