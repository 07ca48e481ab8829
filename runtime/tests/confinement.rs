//! The sandbox's confinement: the sentry runs under a seccomp filter in its own
//! namespaces; the app sees neither host processes nor files outside its root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{sandboxed, sandboxed_with, End};

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(st) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let ppid = st
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(|v| v.trim().parse::<u32>().unwrap_or(0));
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

#[test]
fn sentry_runs_under_seccomp_and_namespaces() {
    let mut child = Command::new(common::moat())
        .args(["do", "--", "/bin/busybox", "sleep", "3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // moat → {gofer, sentry(waiter)} → sentry (pid 1 of its namespace) → stubs.
    let mut sentries = Vec::new();
    for p in children_of(child.id()) {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.trim() == "moat-sentry" {
            sentries.extend(children_of(p));
        }
    }
    assert!(!sentries.is_empty(), "no sentry found");
    let mut seen_filter = false;
    for s in &sentries {
        let st = std::fs::read_to_string(format!("/proc/{s}/status")).unwrap();
        if st
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2'))
        {
            seen_filter = true;
        }
        assert!(
            st.lines()
                .any(|l| l.starts_with("NoNewPrivs:") && l.trim_end().ends_with('1')),
            "{st}"
        );
        let me = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let it = std::fs::read_link(format!("/proc/{s}/ns/pid_for_children")).unwrap();
        assert_ne!(me, it, "sentry children share the host pid namespace");
        let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(
            mine,
            std::fs::read_link(format!("/proc/{s}/ns/user")).unwrap()
        );
        // The sentry's root is empty.
        let entries: Vec<_> = std::fs::read_dir(format!("/proc/{s}/root"))
            .unwrap()
            .collect();
        assert!(entries.is_empty(), "sentry root is not empty");
    }
    assert!(seen_filter, "sentry is not under a seccomp filter");
    child.wait().unwrap();
}

#[test]
fn app_cannot_see_host_processes() {
    let me = std::process::id();
    let r = sandboxed(&[
        "/bin/busybox",
        "sh",
        "-c",
        "ls /proc | grep -E '^[0-9]+$' | sort -n; echo $$",
    ]);
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    let pids: Vec<u32> = r.stdout.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(pids.contains(&1), "{}", r.stdout);
    assert!(!pids.contains(&me), "host pid {me} visible: {}", r.stdout);
    assert!(pids.len() < 10, "{}", r.stdout);
}

#[test]
fn rootfs_confines_paths_and_symlinks() {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rootfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("etc/hostname"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", root.join("dotdot-link")).unwrap();
    let r = sandboxed_with(
        &["--rootfs", root.to_str().unwrap()],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "cat /abs-link; cat /dotdot-link || echo no-passwd; ls /; echo made > /tmp/f",
        ],
    );
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("inside\nno-passwd\n"), "{}", r.stdout);
    assert!(r.stdout.contains("abs-link"));
    // --rootfs is writable: the write landed in DIR.
    assert_eq!(
        std::fs::read_to_string(root.join("tmp/f")).unwrap(),
        "made\n"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
