//! The pod shim: launched detached, it runs containers whose output lands in CRI-format logs,
//! keeps running when its client goes away, answers a new client with the same states, runs
//! ExecSync with captured output and a timeout, and ends the pod on Shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moat_runtime::logs::{parse_log, stream_output, Stream};
use moat_runtime::shim::{Ended, LaunchOptions, Process, Request, Response, ShimClient};

fn moat() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("moat");
    assert!(
        p.exists(),
        "build the binaries first: cargo build --workspace --bins"
    );
    p
}

fn rootfs(dir: &Path) {
    for d in ["bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
}

fn sh(script: &str) -> Process {
    Process {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        ..Process::default()
    }
}

fn state(c: &mut ShimClient, id: &str) -> Response {
    c.call(&Request::State { id: id.into() }).unwrap()
}

fn wait_ended(c: &mut ShimClient, id: &str) -> Ended {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Response::State { ended: Some(e), .. } = state(c, id) {
            return e;
        }
        assert!(Instant::now() < deadline, "{id} never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_shim_outlives_its_client_and_keeps_containers_logs_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pod");
    let root = tmp.path().join("rootfs");
    rootfs(&root);
    let log = tmp.path().join("logs/app/0.log");

    let mut c = ShimClient::launch(
        &moat(),
        &dir,
        &LaunchOptions {
            hostname: "shimpod",
            ..Default::default()
        },
    )
    .unwrap();
    let r = c
        .call(&Request::Start {
            id: "app".into(),
            rootfs: root.clone(),
            read_only: true,
            process: sh("echo hello; echo oops >&2; hostname; \
                         trap 'echo bye; exit 42' TERM; while true; do sleep 0.1; done"),
            log_path: Some(log.clone()),
        })
        .unwrap();
    let Response::Started { pid } = r else {
        panic!("start: {r:?}")
    };

    // The client goes away (a daemon restart); a new one finds the container running.
    drop(c);
    let mut c = ShimClient::connect(&dir).unwrap();
    assert_eq!(
        state(&mut c, "app"),
        Response::State {
            pid: Some(pid),
            ended: None
        }
    );

    // ExecSync: output captured per stream, exit code, and a timeout that kills.
    let r = c
        .call(&Request::ExecSync {
            id: "probe".into(),
            container: "app".into(),
            process: sh("echo out; echo err >&2; exit 3"),
            timeout_ms: 20_000,
        })
        .unwrap();
    assert_eq!(
        r,
        Response::Output {
            ended: Some(Ended::Exited { code: 3 }),
            stdout: b"out\n".to_vec(),
            stderr: b"err\n".to_vec(),
            timed_out: false,
        }
    );
    let r = c
        .call(&Request::ExecSync {
            id: "slow".into(),
            container: "app".into(),
            process: sh("sleep 30"),
            timeout_ms: 300,
        })
        .unwrap();
    assert!(
        matches!(
            r,
            Response::Output {
                timed_out: true,
                ..
            }
        ),
        "{r:?}"
    );

    // SIGTERM: the container's trap runs and its exit code is kept.
    assert_eq!(
        c.call(&Request::Signal {
            id: "app".into(),
            signal: 15
        })
        .unwrap(),
        Response::Done
    );
    assert_eq!(wait_ended(&mut c, "app"), Ended::Exited { code: 42 });

    // The log has every line, each in its stream, in the CRI format.
    let deadline = Instant::now() + Duration::from_secs(10);
    let records = loop {
        let text = std::fs::read(&log).unwrap_or_default();
        let records = parse_log(&text).unwrap();
        if stream_output(&records, Stream::Stdout).ends_with(b"bye\n") || Instant::now() > deadline
        {
            break records;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        stream_output(&records, Stream::Stdout),
        b"hello\nshimpod\nbye\n"
    );
    assert_eq!(stream_output(&records, Stream::Stderr), b"oops\n");

    // Bad requests are answered, not fatal.
    let r = c
        .call(&Request::State {
            id: "nosuch".into(),
        })
        .unwrap();
    assert!(matches!(r, Response::Error { .. }), "{r:?}");

    // Shutdown ends the shim and its sentry.
    assert_eq!(c.call(&Request::Shutdown).unwrap(), Response::Done);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.join("shim.sock").exists() || ShimClient::connect(&dir).is_ok() {
        assert!(Instant::now() < deadline, "the shim did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}
