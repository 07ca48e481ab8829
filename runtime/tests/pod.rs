//! A pod sandbox: one sentry running two containers, each on its own root (its own gofer), sharing
//! the sentry's network stack; an exec into a running container; signals and exit statuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_proto::boot::SentryExit;
use moat_proto::control::ProcessSpec;
use moat_runtime::{PodOptions, PodSandbox, ProcState};

/// The moat binaries are found next to the test's own executable's parent (target/debug).
fn use_built_binaries() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::env::current_exe().unwrap();
        let debug = dir.parent().unwrap().parent().unwrap();
        assert!(
            debug.join("moat-sentry").exists(),
            "build the binaries first: cargo build --workspace --bins"
        );
    });
}

/// A minimal root: static busybox as /bin/sh and its applets, and the usual mount points.
fn rootfs(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-pod-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "proc", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

fn sh(script: &str) -> ProcessSpec {
    ProcessSpec {
        argv: vec![
            b"/bin/sh".to_vec(),
            b"-c".to_vec(),
            script.as_bytes().to_vec(),
        ],
        envp: vec![b"PATH=/bin".to_vec()],
        cwd: b"/".to_vec(),
        uid: 0,
        gid: 0,
        groups: Vec::new(),
    }
}

/// stdin from /dev/null, stdout and stderr into one pipe; returns the fds and the read end.
fn pipe_stdio() -> ([OwnedFd; 3], std::fs::File) {
    let (r, w) = std::io::pipe().unwrap();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let w: OwnedFd = w.into();
    let w2 = w.try_clone().unwrap();
    ([null, w, w2], std::fs::File::from(OwnedFd::from(r)))
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

fn cleanup(dirs: &[&Path]) {
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn two_containers_in_one_sentry_share_its_network_and_keep_their_roots() {
    use_built_binaries();
    let web = rootfs("web", &[("www/index.html", "served from container web\n")]);
    let client = rootfs("client", &[]);
    let pod = PodSandbox::start(&PodOptions::default()).unwrap();

    let (stdio, _web_out) = pipe_stdio();
    let web_pid = pod
        .start_container(
            "web",
            &web,
            true,
            sh("exec busybox httpd -f -p 127.0.0.1:8080 -h /www"),
            stdio,
        )
        .unwrap();
    assert!(web_pid > 1, "containers never get pid 1: {web_pid}");

    // The client container reaches the web container over the pod's one loopback, and does
    // not see the web container's files.
    let (stdio, out) = pipe_stdio();
    pod.start_container(
        "client",
        &client,
        true,
        sh("for i in 1 2 3 4 5 6 7 8 9 10; do \
              busybox wget -q -O - http://127.0.0.1:8080/index.html && break; sleep 0.2; \
            done; ls /www 2>/dev/null || echo no-www-here; echo written > /tmp/f; exit 3"),
        stdio,
    )
    .unwrap();
    assert_eq!(
        pod.wait("client", Some(Duration::from_secs(60))),
        Some(SentryExit::Exited(3))
    );
    assert_eq!(
        read_all(out),
        "served from container web\nno-www-here\n",
        "client output"
    );
    // The read-only root's writes stayed in the sandbox.
    assert!(!client.join("tmp/f").exists());

    // An exec runs in the web container's root.
    let (stdio, out) = pipe_stdio();
    pod.exec("exec1", "web", sh("cat /www/index.html; exit 7"), stdio)
        .unwrap();
    assert_eq!(
        pod.wait("exec1", Some(Duration::from_secs(30))),
        Some(SentryExit::Exited(7))
    );
    assert_eq!(read_all(out), "served from container web\n");
    // Exec into a missing container fails cleanly.
    let (stdio, _o) = pipe_stdio();
    assert!(pod.exec("exec2", "nosuch", sh("true"), stdio).is_err());

    // SIGTERM ends the web container (httpd does not handle it).
    assert_eq!(pod.state("web"), Some(ProcState::Running { pid: web_pid }));
    pod.signal("web", 15).unwrap();
    assert_eq!(
        pod.wait("web", Some(Duration::from_secs(30))),
        Some(SentryExit::Signaled {
            signal: 15,
            core: false
        })
    );

    // A command that does not exist: the start fails with a clear error.
    let (stdio, _o) = pipe_stdio();
    let mut bad = sh("");
    bad.argv = vec![b"/bin/no-such-program".to_vec()];
    let err = pod
        .start_container("bad", &client, true, bad, stdio)
        .unwrap_err();
    assert!(err.to_string().contains("ENOENT"), "{err}");
    drop(pod);
    cleanup(&[&web, &client]);
}
