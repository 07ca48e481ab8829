//! syscall-tests: the syscall conformance suite. Compiles the C programs in `cases/` with gcc
//! (static), runs each natively and as `moat do -- <binary>`, and compares stdout byte for byte
//! and the exit status (code or signal); the compatibility score is sandbox passes over native
//! passes. Known sandbox failures live in `known-failures.txt`; a listed case that passes is an
//! error, so the list only shrinks.
//! May touch: its build directory, and `/tmp`, where the cases make `/tmp/st_<case>_<pid>` and
//! where this harness removes what a case left behind (reporting it as a failure).
//! Never: runs a case other than as a child in its own process group, kills anything but the
//! process groups it started, writes to `known-failures.txt`, or needs root.

mod compile;
mod known;
mod report;
mod run;

use std::path::PathBuf;

pub use compile::{build_all, build_cases_in, cases_dir, Case};
pub use known::KnownFailures;
pub use report::{compare, judge, CaseResult, Mismatch, Report, Score, Verdict};
pub use run::{run_case, RunOutput, Status};

use std::thread;
use std::time::Duration;

/// How long a case may run natively before it is killed.
pub const NATIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `moat do -- <case>` may run before it is killed.
pub const SANDBOX_TIMEOUT: Duration = Duration::from_secs(60);
/// Cases (and compilations) run this many at a time: the machines have 2 cores.
pub const WORKERS: usize = 2;

/// Everything that stops the harness itself (as opposed to a case failing).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot read the cases directory {path}")]
    ReadCases {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the build directory {path}")]
    CreateBuildDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run gcc for case {case}")]
    SpawnCompiler {
        case: String,
        #[source]
        source: std::io::Error,
    },
    #[error("case {case} does not compile:\n{output}")]
    Compile { case: String, output: String },
    #[error("cannot move the compiled binary of case {case} into place")]
    InstallBinary {
        case: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the known-failures list {path}")]
    ReadKnownFailures {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("known-failures list line {line}: {message}")]
    ParseKnownFailures { line: usize, message: String },
}

/// Runs every case natively and then inside the sandbox (`<moat> do -- <abs binary>`), two cases
/// at a time, and judges each against `known_failures`. Both runs go through the case's launcher,
/// so neither sees what the harness inherited (extra fds, ignored signals).
pub fn run_suite(moat: &std::path::Path, cases: &[Case], known_failures: &KnownFailures) -> Report {
    let results = parallel_map(cases, WORKERS, |case| {
        let native = run::run_native(case, NATIVE_TIMEOUT);
        if let Some(why) = native.failure() {
            return CaseResult::new(&case.name, Verdict::Broken(why));
        }
        let args = [
            moat.as_os_str().to_owned(),
            std::ffi::OsString::from("do"),
            std::ffi::OsString::from("--"),
            case.binary.clone().into_os_string(),
        ];
        let sandbox = run_case(case.launcher.as_os_str(), &args, SANDBOX_TIMEOUT);
        let verdict = judge(
            &native.output,
            &sandbox,
            known_failures.contains(&case.name),
            ("native", "moat"),
        );
        CaseResult::new(&case.name, verdict)
    });
    Report::new(results)
}

/// Runs every case natively twice and checks both runs pass with identical stdout and status:
/// the determinism check a case must pass before it joins the suite.
pub fn run_native_twice(cases: &[Case]) -> Report {
    let results = parallel_map(cases, WORKERS, |case| {
        let first = run::run_native(case, NATIVE_TIMEOUT);
        if let Some(why) = first.failure() {
            return CaseResult::new(&case.name, Verdict::Broken(why));
        }
        let second = run::run_native(case, NATIVE_TIMEOUT);
        if let Some(why) = second.failure() {
            return CaseResult::new(&case.name, Verdict::Broken(format!("second run: {why}")));
        }
        let verdict = judge(&first.output, &second.output, false, ("run 1", "run 2"));
        CaseResult::new(&case.name, verdict)
    });
    Report::new(results)
}

/// Applies `f` to every item on `workers` threads; results come back in input order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                let mut guard = slots.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(slot) = guard.get_mut(i) {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_input_order() {
        let items: Vec<u32> = (0..50).collect();
        let out = parallel_map(&items, 2, |x| {
            thread::sleep(Duration::from_millis(u64::from(*x % 3)));
            x * 10
        });
        assert_eq!(out, items.iter().map(|x| x * 10).collect::<Vec<_>>());
    }
}
