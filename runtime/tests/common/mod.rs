//! Helpers shared by the runtime's integration tests: run a command natively and inside
//! `moat do`, compile C fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn moat() -> &'static str {
    env!("CARGO_BIN_EXE_moat")
}

/// How a process ended: exit code or signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Code(i32),
    Signal(i32),
}

#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub end: End,
}

fn finish(out: Output) -> Run {
    let end = match out.status.code() {
        Some(c) => End::Code(c),
        None => End::Signal(out.status.signal().unwrap_or(0)),
    };
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        end,
    }
}

fn run_with_timeout(mut cmd: Command, secs: u64) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => finish(out.expect("wait")),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("command timed out after {secs}s: {cmd:?}");
        }
    }
}

pub fn native(argv: &[&str]) -> Run {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    run_with_timeout(cmd, 60)
}

pub fn sandboxed(argv: &[&str]) -> Run {
    sandboxed_with(&[], argv)
}

pub fn sandboxed_with(opts: &[&str], argv: &[&str]) -> Run {
    let mut cmd = Command::new(moat());
    cmd.arg("do").args(opts).arg("--").args(argv);
    run_with_timeout(cmd, 120)
}

/// Runs `argv` natively and in the sandbox; asserts equal stdout and ending.
pub fn same(argv: &[&str]) -> Run {
    let n = native(argv);
    let s = sandboxed(argv);
    assert_eq!(
        n.end, s.end,
        "exit differs for {argv:?}\nnative stderr: {}\nsandbox stderr: {}",
        n.stderr, s.stderr
    );
    assert_eq!(
        n.stdout, s.stdout,
        "stdout differs for {argv:?}\nsandbox stderr: {}",
        s.stderr
    );
    s
}

/// `busybox sh -c SCRIPT`, natively and sandboxed, compared.
pub fn same_sh(script: &str) -> Run {
    same(&["/bin/busybox", "sh", "-c", script])
}

/// Compiles `tests/programs/NAME.c` (once per test binary run) and returns the binary.
pub fn compile(name: &str, static_link: bool) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(format!("{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let suffix = if static_link { "static" } else { "dyn" };
    let out = dir.join(format!("{name}-{suffix}"));
    let fresh = std::fs::metadata(&out)
        .and_then(|o| Ok(o.modified()? >= std::fs::metadata(&src)?.modified()?))
        .unwrap_or(false);
    if !fresh {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O1", "-Wall", "-pthread", "-o"])
            .arg(&out)
            .arg(&src);
        if static_link {
            cmd.arg("-static");
        }
        let st = cmd.status().expect("gcc");
        assert!(st.success(), "gcc failed for {name}");
    }
    out
}
