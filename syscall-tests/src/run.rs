//! Running one program with captured output, a timeout, and cleanup of its process group.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Case;

/// Output kept per stream; the rest is read and dropped so the program never blocks on a pipe.
const OUTPUT_CAP: usize = 16 << 20;
/// After the program exits, how long its stray descendants may keep stdout/stderr open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
    /// Still running at the deadline; it was killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed(String),
}

impl Status {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        *self == Status::Exited(0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Exited(code) => write!(f, "exit {code}"),
            Status::Signaled(sig) => match signal_name(*sig) {
                Some(name) => write!(f, "signal {name}"),
                None => write!(f, "signal {sig}"),
            },
            Status::TimedOut => f.write_str("timed out"),
            Status::SpawnFailed(why) => write!(f, "could not start: {why}"),
        }
    }
}

/// x86-64 Linux signal names, for messages only.
fn signal_name(sig: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let idx = usize::try_from(sig).ok()?.checked_sub(1)?;
    NAMES.get(idx).copied()
}

/// What one run of a program produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
}

/// Runs `program args...` with stdin from /dev/null, in its own process group, and waits up to
/// `timeout`. At the deadline, or if descendants keep the output pipes open long after the
/// program exited, the whole process group is killed.
pub fn run_case(program: &OsStr, args: &[OsString], timeout: Duration) -> RunOutput {
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return RunOutput {
                stdout: Vec::new(),
                stderr: Vec::new(),
                status: Status::SpawnFailed(e.to_string()),
            }
        }
    };
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let deadline = Instant::now() + timeout;
    let status = wait_until(&mut child, deadline);
    // The pipes close at once unless a stray descendant of the case still holds them; such a
    // group still exists (so its id cannot have been reused) and is killed after a grace period.
    if !wait_closed(&stdout, &stderr, DRAIN_GRACE) {
        kill_group(child.id());
        wait_closed(&stdout, &stderr, Duration::from_millis(500));
    }
    RunOutput {
        stdout: collect(stdout),
        stderr: collect(stderr),
        status,
    }
}

/// Waits up to `limit` for both readers to reach end of file; true if they did.
fn wait_closed(
    a: &Option<JoinHandle<Vec<u8>>>,
    b: &Option<JoinHandle<Vec<u8>>>,
    limit: Duration,
) -> bool {
    let open = |h: &Option<JoinHandle<Vec<u8>>>| h.as_ref().is_some_and(|h| !h.is_finished());
    let end = Instant::now() + limit;
    while open(a) || open(b) {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(POLL);
    }
    true
}

fn wait_until(child: &mut Child, deadline: Instant) -> Status {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match (st.code(), st.signal()) {
                    (Some(code), _) => Status::Exited(code),
                    (None, Some(sig)) => Status::Signaled(sig),
                    (None, None) => Status::SpawnFailed(format!("unknown wait status {st:?}")),
                };
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Status::TimedOut;
            }
            Err(e) => return Status::SpawnFailed(format!("wait failed: {e}")),
        }
    }
}

/// SIGKILL to the process group led by `pid` (which we created with `process_group(0)`).
/// Uses kill(1) because this crate has no unsafe code to call kill(2) with.
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(kept.len());
                    kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept
    })
}

fn collect(h: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    match h {
        // A reader still blocked here is only possible if a descendant escaped the process group
        // (setsid); do not wait for it.
        Some(h) if h.is_finished() => h.join().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A native run of a case plus what it left in /tmp.
#[derive(Debug, Clone)]
pub(crate) struct NativeRun {
    pub output: RunOutput,
    pub leftovers: Vec<PathBuf>,
}

impl NativeRun {
    /// Why this run does not count as a pass, if it does not.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.output.status.success() {
            why.push(format!("native {}", self.output.status));
        }
        if !self.leftovers.is_empty() {
            let names: Vec<_> = self
                .leftovers
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            why.push(format!("left behind {}", names.join(", ")));
        }
        if why.is_empty() {
            return None;
        }
        let tail = tail_lines(&self.output.stderr, 3);
        if !tail.is_empty() {
            why.push(format!("stderr: {tail}"));
        }
        Some(why.join("; "))
    }
}

/// Runs `case` natively (through its launcher), then removes and reports any
/// `/tmp/st_<case>_<pid>` it left.
pub(crate) fn run_native(case: &Case, timeout: Duration) -> NativeRun {
    let output = run_case(
        case.launcher.as_os_str(),
        &[case.binary.clone().into_os_string()],
        timeout,
    );
    let leftovers = tmp_leftovers(&case.name);
    for path in &leftovers {
        let _ = fs::remove_dir_all(path).or_else(|_| fs::remove_file(path));
    }
    NativeRun { output, leftovers }
}

/// Entries `/tmp/st_<name>_<digits>`: the scratch names the cases use.
fn tmp_leftovers(name: &str) -> Vec<PathBuf> {
    let prefix = format!("st_{name}_");
    let Ok(dir) = fs::read_dir("/tmp") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = dir
        .flatten()
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The last `n` non-empty lines of `bytes`, joined with " | ".
pub(crate) fn tail_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> RunOutput {
        run_case(
            OsStr::new("/bin/sh"),
            &["-c".into(), script.into()],
            timeout,
        )
    }

    #[test]
    fn captures_stdout_stderr_and_exit_code() {
        let out = sh("echo out; echo err >&2; exit 3", Duration::from_secs(10));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status, Status::Exited(3));
    }

    #[test]
    fn reports_death_by_signal() {
        let out = sh("kill -SEGV $$", Duration::from_secs(10));
        assert_eq!(out.status, Status::Signaled(11));
        assert_eq!(out.status.to_string(), "signal SIGSEGV");
    }

    #[test]
    fn stdin_is_empty() {
        let out = sh("cat; echo done", Duration::from_secs(10));
        assert_eq!(out.stdout, b"done\n");
    }

    #[test]
    fn kills_at_the_deadline() {
        let start = Instant::now();
        let out = sh("echo started; sleep 30", Duration::from_millis(300));
        assert_eq!(out.status, Status::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn stray_background_child_does_not_hang_the_run() {
        let start = Instant::now();
        let out = sh("sleep 30 & echo parent", Duration::from_secs(20));
        assert_eq!(out.status, Status::Exited(0));
        assert!(start.elapsed() < DRAIN_GRACE + Duration::from_secs(5));
    }

    #[test]
    fn missing_program_is_spawn_failure() {
        let out = run_case(OsStr::new("/nonexistent/moat"), &[], Duration::from_secs(1));
        assert!(matches!(out.status, Status::SpawnFailed(_)));
        assert!(!out.status.success());
    }

    #[test]
    fn finds_only_this_cases_scratch_names() {
        let pid = std::process::id();
        let mine = PathBuf::from(format!("/tmp/st_harness_probe_{pid}"));
        let other = PathBuf::from(format!("/tmp/st_harness_probe_x_{pid}"));
        fs::create_dir_all(&mine).unwrap();
        fs::create_dir_all(&other).unwrap();
        let found = tmp_leftovers("harness_probe");
        fs::remove_dir_all(&mine).unwrap();
        fs::remove_dir_all(&other).unwrap();
        assert_eq!(found, [mine]);
    }

    #[test]
    fn tail_lines_keeps_the_last_nonempty_lines() {
        assert_eq!(tail_lines(b"a\n\nb\nc\n\n", 2), "b | c");
        assert_eq!(tail_lines(b"", 3), "");
    }

    #[test]
    fn signal_names_cover_the_standard_range() {
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(34), None);
    }
}
