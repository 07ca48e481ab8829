//! Real programs run in the sandbox with the same output and exit status as natively:
//! busybox, the host's dynamic programs (bash, coreutils, python3), compiled C programs,
//! `#!` scripts, and the failure cases (SIGSEGV, ENOEXEC, ENOENT).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{compile, native, same, same_sh, sandboxed, End};

#[test]
fn busybox_shell_features() {
    same_sh(
        "echo start; echo c b a | tr ' ' '\\n' | sort; x=$(echo sub); echo \"$x\"; \
         (cd / && pwd); f=/tmp/moat_redir_$$; echo redirected > $f; cat < $f; rm $f; \
         trap 'echo trapped' USR1; kill -USR1 $$; \
         sleep 0.1 & wait $!; echo \"bg status $?\"; (exit 4); echo \"subshell $?\"; \
         echo err 1>&2; echo done",
    );
}

#[test]
fn busybox_file_tools() {
    same_sh(
        "d=/tmp/moat_bb_$$; mkdir -p $d/a/b/c; cd $d; echo hello > a/f1; cp a/f1 a/b/f2; \
         mv a/b/f2 a/b/c/f3; printf 'x 3\\ny 1\\nz 2\\n' > t; cat t | sort -k2 -n; \
         grep -c y t; sed 's/x/X/' t; awk '{s+=$2} END {print s}' t; wc -l t; \
         find . | sort; tar cf ../moat_$$.tar a; rm -r a; ls; tar xf ../moat_$$.tar; \
         cat a/b/c/f3; rm ../moat_$$.tar; cd /; rm -rf $d; ls $d 2>/dev/null || echo gone",
    );
}

#[test]
fn busybox_misc_tools() {
    same_sh("date -u -d @0; env -i A=1 B=2 /bin/busybox env; sleep 0.05; echo slept");
    same_sh("sleep 5 & p=$!; kill $p; wait $p; echo \"killed $?\"");
}

#[test]
fn ls_of_the_root_matches_except_virtual_filesystems() {
    // /proc and /dev are the sandbox's own filesystems, and /tmp changes under concurrent
    // tests; every other entry must match.
    let filter = |s: &str| -> String {
        s.lines()
            .filter(|l| {
                !l.ends_with(" proc")
                    && !l.ends_with(" dev")
                    && !l.ends_with(" tmp")
                    && !l.starts_with("total")
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let n = native(&["/bin/busybox", "ls", "-la", "/"]);
    let s = sandboxed(&["/bin/busybox", "ls", "-la", "/"]);
    assert_eq!(s.end, End::Code(0), "{}", s.stderr);
    assert_eq!(filter(&n.stdout), filter(&s.stdout));
}

#[test]
fn host_bash_and_coreutils() {
    same(&[
        "/bin/bash",
        "-c",
        "a=(1 2 3); echo ${#a[@]} $((6*7)); for i in b a c; do echo $i; done | sort; \
            f=$(mktemp); echo text > $f; /bin/cat $f; rm $f; [[ -e $f ]] || echo removed; exit 3",
    ]);
    same(&["/bin/ls", "-l", "/etc/passwd", "/usr/bin/env"]);
    same(&["/usr/bin/sort", "-r", "/etc/passwd"]);
    same(&["/usr/bin/sha256sum", "/etc/passwd", "/bin/sh"]);
}

#[test]
fn host_python() {
    let script = r#"
import os, sys, json, hashlib, subprocess, threading
p = "/tmp/moat_py_%d" % os.getpid()
with open(p, "w") as f: f.write(json.dumps({"k": [1, 2, 3]}))
with open(p) as f: print(json.load(f))
os.unlink(p)
print(hashlib.sha256(b"moat").hexdigest())
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.WEXITSTATUS(os.waitpid(pid, 0)[1]))
print(subprocess.run(["/bin/echo", "from subprocess"], capture_output=True, text=True).stdout.strip())
out = []
lock = threading.Lock()
def work(i):
    with lock: out.append(i * i)
ts = [threading.Thread(target=work, args=(i,)) for i in range(10)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out))
"#;
    same(&["/usr/bin/python3", "-c", script]);
}

#[test]
fn pthreads_program_static_and_dynamic() {
    for static_link in [true, false] {
        let bin = compile("threads", static_link);
        let r = same(&[bin.to_str().unwrap()]);
        assert!(r.stdout.contains("counter 80000"), "{}", r.stdout);
    }
}

#[test]
fn shebang_scripts_run() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("moat_script.sh");
    std::fs::write(
        &script,
        "#!/bin/busybox sh\necho \"script args: $*\"\nexit 6\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = same(&[script.to_str().unwrap(), "x", "y"]);
    assert_eq!(r.end, End::Code(6));
    assert_eq!(r.stdout, "script args: x y\n");
}

#[test]
fn segfault_dies_of_sigsegv() {
    let bin = compile("segv", true);
    let r = same(&[bin.to_str().unwrap()]);
    assert_eq!(r.end, End::Signal(11));
    assert_eq!(r.stdout, "before\n");
}

#[test]
fn exec_errors_match_linux() {
    let bin = compile("execerr", true);
    let r = same(&[bin.to_str().unwrap()]);
    assert!(
        r.stdout.contains("missing: No such file or directory"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("bad elf: Exec format error"),
        "{}",
        r.stdout
    );
}

#[test]
fn signal_frames_and_sigchld() {
    let bin = compile("sigframe", false);
    let r = same(&[bin.to_str().unwrap()]);
    assert!(r.stdout.contains("x 3.00"), "{}", r.stdout);
}

#[test]
fn missing_command_fails_like_a_shell() {
    let r = sandboxed(&["/nonexistent/cmd"]);
    assert_eq!(r.end, End::Code(127), "{}", r.stderr);
    assert!(r.stderr.contains("ENOENT"), "{}", r.stderr);
}

#[test]
fn writes_never_reach_the_host() {
    let p = format!("/tmp/moat_overlay_{}", std::process::id());
    let r = sandboxed(&[
        "/bin/busybox",
        "sh",
        "-c",
        &format!("echo x > {p}; cat {p}; rm /etc/hostname && echo removed"),
    ]);
    assert_eq!(r.stdout, "x\nremoved\n", "{}", r.stderr);
    assert!(!std::path::Path::new(&p).exists());
    assert!(std::path::Path::new("/etc/hostname").exists());
}

#[test]
fn strace_logs_syscalls_and_counts_enosys() {
    let r = common::sandboxed_with(&["--strace"], &["/bin/busybox", "echo", "traced"]);
    assert_eq!(r.stdout, "traced\n");
    assert!(
        r.stderr.contains("write(1, \"traced\\n\", 7) = 7"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("unimplemented syscalls:"), "{}", r.stderr);
}

#[test]
fn signals_to_moat_reach_the_sandbox_and_its_death_is_reported() {
    // A TERM sent to `moat do` is forwarded to init; init's trap exits 3.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("moat_trap.sh");
    std::fs::write(
        &script,
        "trap 'echo got TERM; exit 3' TERM\n/bin/busybox sleep 10 &\nwait\n",
    )
    .unwrap();
    let child = std::process::Command::new(common::moat())
        .args(["do", "--", "/bin/busybox", "sh", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got TERM\n");
    assert_eq!(out.status.code(), Some(3));
    // Without a trap, init dies of the signal and so does `moat do`.
    let child = std::process::Command::new(common::moat())
        .args(["do", "--", "/bin/busybox", "sleep", "10"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(15)
    );
}

#[test]
fn sentry_survives_random_syscalls_with_garbage_arguments() {
    let bin = compile("sysfuzz", true);
    let r = sandboxed(&[bin.to_str().unwrap(), "60"]);
    assert_eq!(r.end, End::Code(0), "stderr: {}", r.stderr);
    assert!(r.stdout.starts_with("batches 60,"), "{}", r.stdout);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}
