//! syscall-tests: builds the C conformance cases into `syscall-tests/build/` and runs them
//! natively and under `moat do`, printing one line per case and the score.
//! May touch: `syscall-tests/build/`, `/tmp` (the cases' scratch dirs), the moat binary given.
//! Never: edits `known-failures.txt`; exits 0 when a case failed.
//!
//! Usage: `syscall-tests --moat PATH [--filter SUBSTR] [--native-only]`
//! Exit status: 0 all good, 1 a case failed (FAIL, UNEXPECTED-PASS or BROKEN), 2 usage or
//! harness error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use syscall_tests::{build_all, run_native_twice, run_suite, KnownFailures};

const USAGE: &str = "usage: syscall-tests --moat PATH [--filter SUBSTR] [--native-only]
  --moat PATH       the moat binary; cases run as `PATH do -- <case binary>`
  --filter SUBSTR   only cases whose name contains SUBSTR
  --native-only     run each case natively twice and check both runs agree (no moat needed)";

struct Args {
    moat: Option<PathBuf>,
    filter: Option<String>,
    native_only: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        moat: None,
        filter: None,
        native_only: false,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--moat" => args.moat = Some(it.next().ok_or("--moat needs a path")?.into()),
            "--filter" => args.filter = Some(it.next().ok_or("--filter needs a substring")?),
            "--native-only" => args.native_only = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.moat.is_none() && !args.native_only {
        return Err("--moat PATH is required unless --native-only".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("syscall-tests: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(moat) = args.moat.as_ref().filter(|_| !args.native_only) {
        if !moat.is_file() {
            eprintln!("syscall-tests: --moat {}: no such file", moat.display());
            return ExitCode::from(2);
        }
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprint!("syscall-tests: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprint!(": {s}");
                source = s.source();
            }
            eprintln!();
            ExitCode::from(2)
        }
    }
}

/// Builds, runs and prints; `Ok(false)` when some case failed.
fn run(args: &Args) -> Result<bool, syscall_tests::HarnessError> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases = build_all(&crate_dir.join("build"))?;
    if let Some(f) = &args.filter {
        cases.retain(|c| c.name.contains(f.as_str()));
    }
    let report = match &args.moat {
        Some(moat) if !args.native_only => {
            let known = KnownFailures::load(&crate_dir.join("known-failures.txt"))?;
            let stale = known.unknown_names(&cases);
            if args.filter.is_none() && !stale.is_empty() {
                println!(
                    "known-failures.txt lists cases that do not exist: {}",
                    stale.join(", ")
                );
                return Ok(false);
            }
            run_suite(moat, &cases, &known)
        }
        _ => run_native_twice(&cases),
    };
    print!("{report}");
    Ok(!report.any_failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn moat_is_required_unless_native_only() {
        assert!(parse(&[]).is_err());
        let a = parse(&["--native-only"]).unwrap();
        assert!(a.native_only && a.moat.is_none());
        let a = parse(&["--moat", "/x/moat", "--filter", "sig_"]).unwrap();
        assert_eq!(a.moat, Some(PathBuf::from("/x/moat")));
        assert_eq!(a.filter.as_deref(), Some("sig_"));
    }

    #[test]
    fn rejects_unknown_and_incomplete_arguments() {
        assert!(parse(&["--moat"]).is_err());
        assert!(parse(&["--native-only", "--verbose"]).is_err());
    }
}
