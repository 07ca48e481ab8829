//! Containers through the `moat-cri` binary and a tonic client, with a real registry holding
//! images the test builds (busybox-static, multi-layer with a whiteout and users; a small
//! dynamically linked program with its libraries) and real CNI plugins: pull, run a pod,
//! create and start two containers in it, read their CRI logs, ExecSync, stats, events, a
//! `kill -9` of the daemon in the middle, stop (TERM, and KILL after the timeout), remove; and
//! the bad-input codes. Needs the binaries built first (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_cri::api::{self, RuntimeServiceClient};
use tonic::transport::Channel;
use tonic::Code;

mod common;
use common::pod::*;
use common::{busybox_layer, push_image_with, tar_of, Comp, Daemon, Registry, E};

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/home/app:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\napp:x:1234:\nextra:x:2345:app\n";

/// The busybox image: busybox and the user files, then a layer that whites out
/// /etc/gone.txt and adds /etc/motd.
fn push_busybox(reg: &Registry) -> String {
    let base = {
        let mut t = busybox_layer();
        let extra = tar_of(&[
            E::Dir("etc"),
            E::File("etc/passwd", PASSWD, 0o644),
            E::File("etc/group", GROUP, 0o644),
            E::File("etc/gone.txt", b"should be hidden\n", 0o644),
            E::Dir("home"),
            E::Dir("home/app"),
            E::Symlink("escape", "/tmp/moat-escape-target"),
        ]);
        // Two tars back to back are one layer of both (the first's end blocks dropped).
        t.truncate(t.len() - 1024);
        t.extend_from_slice(&extra);
        t
    };
    let top = tar_of(&[
        E::Dir("etc"),
        E::File("etc/.wh.gone.txt", b"", 0o644),
        E::File("etc/motd", b"welcome\n", 0o644),
    ]);
    push_image_with(
        reg,
        "test/bb",
        "v1",
        &[(base, Comp::Gzip), (top, Comp::Zstd)],
        "amd64",
        false,
        serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "FROM_IMAGE=yes"], "WorkingDir": "/etc", "StopSignal": "SIGTERM"}),
    );
    format!("{}/test/bb:v1", reg.addr)
}

/// The dynamic image: a C program built here, linked against the host's glibc, with the
/// loader and libc beside it.
fn push_dynamic(reg: &Registry, work: &Path) -> String {
    let src = work.join("dyn.c");
    fs::write(
        &src,
        "#include <stdio.h>\n#include <unistd.h>\nint main(int c, char **v) { printf(\"dyn hello %s uid=%d\\n\", c > 1 ? v[1] : \"-\", (int)getuid()); fflush(stdout); return 3; }\n",
    )
    .unwrap();
    let bin = work.join("dyn");
    let st = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("gcc (scripts/setup.sh installs it)");
    assert!(st.success());
    let prog = fs::read(&bin).unwrap();
    let ld = fs::read(fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap()).unwrap();
    let libc = fs::read(fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap()).unwrap();
    let libs = tar_of(&[
        E::Dir("lib64"),
        E::File("lib64/ld-linux-x86-64.so.2", &ld, 0o755),
        E::Dir("lib"),
        E::Dir("lib/x86_64-linux-gnu"),
        E::File("lib/x86_64-linux-gnu/libc.so.6", &libc, 0o755),
    ]);
    let app = tar_of(&[E::Dir("app"), E::File("app/dyn", &prog, 0o755)]);
    push_image_with(
        reg,
        "test/dyn",
        "v1",
        &[(libs, Comp::Gzip), (app, Comp::None)],
        "amd64",
        true,
        serde_json::json!({"Entrypoint": ["/app/dyn"], "Cmd": ["from-cmd"]}),
    );
    format!("{}/test/dyn:v1", reg.addr)
}

async fn pull(d: &Daemon, image: &str) {
    d.images()
        .await
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        })
        .await
        .expect("PullImage");
}

fn container_config(name: &str, image: &str, cmd: &[&str], log: &str) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: log.into(),
        labels: [("app".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

async fn create(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    config: api::ContainerConfig,
) -> Result<String, tonic::Status> {
    rt.create_container(api::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(config),
        sandbox_config: None,
    })
    .await
    .map(|r| r.into_inner().container_id)
}

async fn start(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    rt.start_container(api::StartContainerRequest {
        container_id: id.into(),
    })
    .await
    .map(drop)
}

async fn cstatus(
    rt: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<api::ContainerStatus, tonic::Status> {
    rt.container_status(api::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .map(|r| r.into_inner().status.expect("a status"))
}

async fn exec(
    rt: &mut RuntimeServiceClient<Channel>,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<api::ExecSyncResponse, tonic::Status> {
    rt.exec_sync(api::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    })
    .await
    .map(|r| r.into_inner())
}

async fn stop_c(
    rt: &mut RuntimeServiceClient<Channel>,
    id: &str,
    timeout: i64,
) -> Result<(), tonic::Status> {
    rt.stop_container(api::StopContainerRequest {
        container_id: id.into(),
        timeout,
    })
    .await
    .map(drop)
}

async fn remove_c(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    rt.remove_container(api::RemoveContainerRequest {
        container_id: id.into(),
    })
    .await
    .map(drop)
}

async fn list_ids(
    rt: &mut RuntimeServiceClient<Channel>,
    filter: Option<api::ContainerFilter>,
) -> Vec<String> {
    let mut ids: Vec<String> = rt
        .list_containers(api::ListContainersRequest { filter })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

/// Subscribes to GetContainerEvents; the events (container id, type) gather in the vector.
async fn collect_events(rt: &mut RuntimeServiceClient<Channel>) -> Arc<Mutex<Vec<(String, i32)>>> {
    let events: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let mut stream = rt
        .get_container_events(api::GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner();
    let sink = events.clone();
    tokio::spawn(async move {
        while let Ok(Some(ev)) = stream.message().await {
            sink.lock()
                .unwrap()
                .push((ev.container_id, ev.container_event_type));
        }
    });
    events
}

/// Waits (polling ContainerStatus) until container `id` has exited.
async fn wait_exited(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> api::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = cstatus(rt, id).await.expect("ContainerStatus");
        if s.state == api::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} did not exit: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of a CRI log file, split into (stream, tag, text).
fn log_lines(path: &Path) -> Vec<(String, String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap();
            assert!(
                ts.len() >= 20 && ts.contains('T'),
                "not an RFC3339Nano timestamp: {l:?}"
            );
            (
                it.next().unwrap_or_default().to_owned(),
                it.next().unwrap_or_default().to_owned(),
                it.next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits until the log at `path` has a full line containing `what`.
fn wait_log(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log_lines(path).iter().any(|(_, _, t)| t.contains(what)) {
        assert!(
            Instant::now() < deadline,
            "{} never had {what:?}:\n{}",
            path.display(),
            fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The mounts under `dir` in the host's mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&d))
        .collect()
}

fn pod_config(name: &str, dir: &Path, host_port: u16) -> api::PodSandboxConfig {
    let mut c = config(name, &[("tier", "test")], host_port);
    c.log_directory = dir.join("logs").to_string_lossy().into_owned();
    c.dns_config = Some(api::DnsConfig {
        servers: vec!["192.0.2.53".into()],
        searches: vec!["svc.example".into()],
        options: vec!["ndots:2".into()],
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_live_and_die_in_one_pod_across_a_daemon_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 1);
    let reg = Registry::start();
    let bb = push_busybox(&reg);
    let dynimg = push_dynamic(&reg, dir);
    let mut daemon = start_daemon(dir, &net.conf_dir);
    pull(&daemon, &bb).await;
    pull(&daemon, &dynimg).await;
    let mut rt = daemon.runtime().await;

    let events = collect_events(&mut rt).await;

    let pod = run(&mut rt, pod_config("web", dir, net.host_port)).await;

    // Volumes: one read-only, one writable; and one aimed through an image symlink.
    let vol = dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("hello"), "from the host\n").unwrap();
    let rw = dir.join("rw");
    fs::create_dir_all(&rw).unwrap();
    let _ = fs::remove_dir_all("/tmp/moat-escape-target");

    let script =
        "echo started; id; cat /etc/resolv.conf /etc/hostname; ls /etc; cat /data/vol/hello; cat /proc/mounts; \
                  echo FOO=$FOO FROM_IMAGE=$FROM_IMAGE PWD=$PWD HOME=$HOME; \
                  head -c 20000 /dev/zero | tr '\\0' x; echo; echo to-stderr >&2; \
                  trap 'echo got-term; exit 7' TERM; \
                  while true; do echo tick; sleep 0.2; done";
    let mut a = container_config("a", &bb, &["/bin/sh", "-c", script], "a/0.log");
    a.envs = vec![api::KeyValue {
        key: "FOO".into(),
        value: "bar".into(),
    }];
    a.mounts = vec![
        api::Mount {
            container_path: "/data/vol".into(),
            host_path: vol.to_string_lossy().into_owned(),
            readonly: true,
            ..Default::default()
        },
        api::Mount {
            container_path: "/data/rw".into(),
            host_path: rw.to_string_lossy().into_owned(),
            ..Default::default()
        },
        api::Mount {
            container_path: "/escape/sub".into(),
            host_path: rw.to_string_lossy().into_owned(),
            ..Default::default()
        },
    ];
    a.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            run_as_username: "app".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let a_id = create(&mut rt, &pod, a).await.expect("CreateContainer a");
    let b_id = create(
        &mut rt,
        &pod,
        container_config("b", &dynimg, &[], "b/0.log"),
    )
    .await
    .expect("CreateContainer b");
    assert!(
        !Path::new("/tmp/moat-escape-target/sub").exists(),
        "a mount point followed an image symlink out of the root"
    );

    let sa = cstatus(&mut rt, &a_id).await.unwrap();
    assert_eq!(sa.state, api::ContainerState::ContainerCreated as i32);
    let user = sa.user.unwrap().linux.unwrap();
    assert_eq!((user.uid, user.gid), (1234, 1234));
    assert_eq!(user.supplemental_groups, vec![1234, 2345]);
    assert_eq!(list_ids(&mut rt, None).await.len(), 2);
    let created = api::ContainerFilter {
        state: Some(api::ContainerStateValue {
            state: api::ContainerState::ContainerCreated as i32,
        }),
        ..Default::default()
    };
    assert_eq!(list_ids(&mut rt, Some(created)).await.len(), 2);

    let t0 = Instant::now();
    start(&mut rt, &a_id).await.expect("StartContainer a");
    start(&mut rt, &b_id).await.expect("StartContainer b");
    let a_log = dir.join("logs/a/0.log");
    let b_log = dir.join("logs/b/0.log");
    wait_log(&a_log, "tick");
    eprintln!("start to first tick: {:?}", t0.elapsed());

    // b: a dynamic program, ends with 3; its Entrypoint with the image's Cmd.
    let sb = wait_exited(&mut rt, &b_id).await;
    assert_eq!(sb.exit_code, 3);
    assert_eq!(sb.reason, "Error");
    assert!(sb.finished_at >= sb.started_at && sb.started_at > 0);
    wait_log(&b_log, "dyn hello from-cmd uid=0");

    // a's log: the user, the pod's files, the whiteout, the volume, the environment.
    let lines = log_lines(&a_log);
    let text = |want: &str| {
        lines
            .iter()
            .any(|(s, tag, t)| s == "stdout" && tag == "F" && t.contains(want))
    };
    for want in [
        "started",
        "uid=1234(app) gid=1234(app) groups=1234(app),2345(extra)",
        "nameserver 192.0.2.53",
        "search svc.example",
        "options ndots:2",
        "from the host",
        "FOO=bar FROM_IMAGE=yes PWD=/etc HOME=/home/app",
    ] {
        assert!(text(want), "{want:?} not in the log of a:\n{lines:#?}");
    }
    assert!(lines.iter().any(|(_, _, t)| t == "web"), "hostname file");
    // Its own mount table: its root and what is mounted beneath it, nothing of b.
    assert!(
        lines.iter().any(|(_, _, t)| t == "rootfs / 9p rw 0 0"),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|(_, _, t)| t == "proc /proc proc rw 0 0"));
    assert!(!lines
        .iter()
        .any(|(_, _, t)| t.contains(&b_id) || t.contains(&a_id)));
    assert!(lines.iter().any(|(_, _, t)| t == "motd"));
    assert!(
        !lines.iter().any(|(_, _, t)| t == "gone.txt"),
        "the whiteout hides etc/gone.txt"
    );
    let long: Vec<_> = lines
        .iter()
        .filter(|(_, _, t)| t.starts_with("xxxx"))
        .collect();
    assert_eq!(long.len(), 2, "a 20000-byte line is split in two");
    assert_eq!((long[0].1.as_str(), long[0].2.len()), ("P", 16384));
    assert_eq!((long[1].1.as_str(), long[1].2.len()), ("F", 20000 - 16384));
    assert!(lines
        .iter()
        .any(|(s, tag, t)| s == "stderr" && tag == "F" && t == "to-stderr"));

    // ExecSync: output, exit code, the read-only volume, the writable one, the user.
    let r = exec(
        &mut rt,
        &a_id,
        &[
            "/bin/sh",
            "-c",
            "echo out; echo err >&2; id -u; touch /data/vol/x || echo ro-refused; echo w > /data/rw/made; exit 5",
        ],
        10,
    )
    .await
    .expect("ExecSync");
    assert_eq!(r.exit_code, 5);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "out\n1234\nro-refused\n"
    );
    assert!(String::from_utf8_lossy(&r.stderr).starts_with("err\n"));
    assert_eq!(fs::read_to_string(rw.join("made")).unwrap(), "w\n");
    assert!(!vol.join("x").exists());
    let t = Instant::now();
    let e = exec(&mut rt, &a_id, &["/bin/sh", "-c", "sleep 30"], 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // Stats as the sentry accounts them.
    let st = rt
        .container_stats(api::ContainerStatsRequest {
            container_id: a_id.clone(),
        })
        .await
        .expect("ContainerStats")
        .into_inner()
        .stats
        .unwrap();
    let cpu = st.cpu.unwrap().usage_core_nano_seconds.unwrap().value;
    let mem = st.memory.unwrap().working_set_bytes.unwrap().value;
    assert!(cpu > 0, "cpu {cpu}");
    assert!(mem > 64 * 1024, "memory {mem}");
    assert!(st.writable_layer.unwrap().used_bytes.is_some());
    let all = rt
        .list_container_stats(api::ListContainerStatsRequest { filter: None })
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(all.len(), 2);
    let ps = rt
        .pod_sandbox_stats(api::PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("PodSandboxStats")
        .into_inner()
        .stats
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(ps.containers.len(), 2);
    let pod_mem = ps.memory.unwrap().working_set_bytes.unwrap().value;
    assert!(pod_mem >= mem, "pod {pod_mem} < container {mem}");
    assert!(ps.process.unwrap().process_count.unwrap().value >= 1);
    let lps = rt
        .list_pod_sandbox_stats(api::ListPodSandboxStatsRequest { filter: None })
        .await
        .expect("ListPodSandboxStats")
        .into_inner()
        .stats;
    assert_eq!(lps.len(), 1);

    // Removing the image of a running container keeps the layers its root stands on.
    daemon
        .images()
        .await
        .remove_image(api::RemoveImageRequest {
            image: Some(api::ImageSpec {
                image: bb.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("RemoveImage");
    let r = exec(&mut rt, &a_id, &["/bin/sh", "-c", "cat /etc/motd"], 10)
        .await
        .expect("ExecSync after RemoveImage");
    assert_eq!(r.stdout, b"welcome\n");
    pull(&daemon, &bb).await;

    // Log rotation: kubelet renames the file and asks for a reopen.
    let rotated = dir.join("logs/a/0.log.1");
    fs::rename(&a_log, &rotated).unwrap();
    rt.reopen_container_log(api::ReopenContainerLogRequest {
        container_id: a_id.clone(),
    })
    .await
    .expect("ReopenContainerLog");
    wait_log(&a_log, "tick");

    let kinds = |seen: &[(String, i32)], id: &str| -> Vec<i32> {
        seen.iter()
            .filter(|(i, _)| i == id)
            .map(|(_, k)| *k)
            .collect()
    };
    let (created, started, stopped, deleted) = (
        api::ContainerEventType::ContainerCreatedEvent as i32,
        api::ContainerEventType::ContainerStartedEvent as i32,
        api::ContainerEventType::ContainerStoppedEvent as i32,
        api::ContainerEventType::ContainerDeletedEvent as i32,
    );
    {
        let seen = events.lock().unwrap().clone();
        assert_eq!(kinds(&seen, &a_id), vec![created, started]);
        assert_eq!(kinds(&seen, &b_id), vec![created, started, stopped]);
    }

    // kill -9 of the daemon: the containers live on and are found again.
    let d_id = create(
        &mut rt,
        &pod,
        container_config(
            "d",
            &bb,
            &["/bin/sh", "-c", "echo d-up; while true; do sleep 1; done"],
            "d.log",
        ),
    )
    .await
    .unwrap();
    let before = list_ids(&mut rt, None).await;
    drop(rt);
    daemon.kill9();
    // A StartContainer the kill cut short after the shim started the container: the record
    // still says Created. The restarted daemon asks the shim and finds it running.
    {
        use moat_runtime::shim::{Process, Request, Response, ShimClient};
        let mut shim = ShimClient::connect(&dir.join("state/pods").join(&pod)).unwrap();
        let r = shim
            .call(&Request::Start {
                id: d_id.clone(),
                rootfs: dir.join("root/containers").join(&d_id).join("rootfs"),
                read_only: false,
                process: Process {
                    args: vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        "echo d-up; while true; do sleep 1; done".into(),
                    ],
                    ..Default::default()
                },
                log_path: Some(dir.join("logs/d.log")),
            })
            .unwrap();
        assert!(matches!(r, Response::Started { .. }), "{r:?}");
    }
    // What a CreateContainer cut short by the kill would leave: a record never finished and
    // the start of a root. The restarted daemon removes both.
    let half = "h".repeat(64);
    {
        let store = moat_cri::state::StateStore::open_in(&dir.join("root")).unwrap();
        let c = moat_cri::state::Container::new(
            half.clone(),
            pod.clone(),
            moat_cri::state::ContainerMetadata {
                name: "half".into(),
                attempt: 0,
            },
            bb.clone(),
            1,
        );
        store.write(|tx| tx.put_container(&c)).unwrap();
    }
    fs::create_dir_all(dir.join("root/containers").join(&half).join("upper")).unwrap();
    daemon = start_daemon(dir, &net.conf_dir);
    let mut rt = daemon.runtime().await;
    let events = collect_events(&mut rt).await;
    assert_eq!(list_ids(&mut rt, None).await, before);
    assert!(!dir.join("root/containers").join(&half).exists());
    let sd = cstatus(&mut rt, &d_id).await.unwrap();
    assert_eq!(
        sd.state,
        api::ContainerState::ContainerRunning as i32,
        "{sd:?}"
    );
    let sa = cstatus(&mut rt, &a_id).await.unwrap();
    assert_eq!(sa.state, api::ContainerState::ContainerRunning as i32);
    let info = rt
        .container_status(api::ContainerStatusRequest {
            container_id: a_id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    assert!(info["pid"].as_u64().is_some_and(|p| p > 0), "{info}");
    assert_eq!(info["sandboxID"], pod.as_str());
    assert_eq!(cstatus(&mut rt, &b_id).await.unwrap().exit_code, 3);
    let r = exec(&mut rt, &a_id, &["/bin/sh", "-c", "echo still here"], 10)
        .await
        .expect("ExecSync after restart");
    assert_eq!(r.stdout, b"still here\n");

    // Stop: the TERM trap runs and exits 7.
    let t = Instant::now();
    stop_c(&mut rt, &a_id, 10).await.expect("StopContainer");
    let sa = cstatus(&mut rt, &a_id).await.unwrap();
    assert_eq!(sa.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(sa.exit_code, 7);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    wait_log(&a_log, "got-term");
    stop_c(&mut rt, &a_id, 10)
        .await
        .expect("StopContainer twice");
    let e = exec(&mut rt, &a_id, &["/bin/sh", "-c", "true"], 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // A container that ignores TERM is killed once the timeout passes.
    let c_id = create(
        &mut rt,
        &pod,
        container_config(
            "c",
            &bb,
            &[
                "/bin/sh",
                "-c",
                "trap '' TERM; echo ready; while true; do sleep 0.1; done",
            ],
            "c/0.log",
        ),
    )
    .await
    .unwrap();
    start(&mut rt, &c_id).await.unwrap();
    wait_log(&dir.join("logs/c/0.log"), "ready");
    let t = Instant::now();
    stop_c(&mut rt, &c_id, 1).await.expect("StopContainer c");
    let sc = cstatus(&mut rt, &c_id).await.unwrap();
    assert_eq!(sc.exit_code, 128 + 9);
    assert!(
        t.elapsed() >= Duration::from_secs(1) && t.elapsed() < Duration::from_secs(6),
        "{:?}",
        t.elapsed()
    );

    // Remove: records, roots and mounts go.
    for id in [&a_id, &b_id, &c_id, &d_id] {
        remove_c(&mut rt, id).await.expect("RemoveContainer");
        remove_c(&mut rt, id).await.expect("RemoveContainer twice");
    }
    assert!(list_ids(&mut rt, None).await.is_empty());
    let containers_dir = dir.join("root/containers");
    assert_eq!(fs::read_dir(&containers_dir).unwrap().count(), 0);
    assert!(mounts_under(&containers_dir).is_empty());

    let seen = events.lock().unwrap().clone();
    assert_eq!(kinds(&seen, &a_id), vec![stopped, deleted]);
    assert_eq!(kinds(&seen, &b_id), vec![deleted]);
    assert_eq!(
        kinds(&seen, &c_id),
        vec![created, started, stopped, deleted]
    );

    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
}

/// A control file of the pod cgroup `rel` in the v1 hierarchy `h`.
fn cg(h: &str, rel: &Path, file: &str) -> String {
    fs::read_to_string(Path::new("/sys/fs/cgroup").join(h).join(rel).join(file))
        .unwrap_or_else(|e| panic!("{h}/{}/{file}: {e}", rel.display()))
}

/// Removes the test's cgroup parents (kubelet would own them) in every v1 hierarchy.
fn remove_cgroup_parents(rels: &[&str]) {
    for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for r in rels {
            let _ = fs::remove_dir(h.path().join(r));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_lives_in_its_cgroup_under_its_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 2);
    let reg = Registry::start();
    let bb = push_busybox(&reg);
    let daemon = start_daemon(dir, &net.conf_dir);
    pull(&daemon, &bb).await;
    let mut rt = daemon.runtime().await;

    let parent = format!("moat-test-{}", std::process::id());
    let mut pc = pod_config("limited", dir, net.host_port);
    pc.linux = Some(api::LinuxPodSandboxConfig {
        cgroup_parent: format!("/{parent}/pod-a"),
        resources: Some(api::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            cpu_shares: 204,
            memory_limit_in_bytes: 160 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let pod = run(&mut rt, pc).await;
    let rel = PathBuf::from(format!("{parent}/pod-a/moat-{pod}"));
    assert_eq!(
        cg("memory", &rel, "memory.limit_in_bytes").trim(),
        (160u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", &rel, "cpu.cfs_quota_us").trim(), "20000");
    assert_eq!(cg("cpu", &rel, "cpu.shares").trim(), "204");
    let shim_log = fs::read_to_string(dir.join("state/pods").join(&pod).join("shim.log")).unwrap();
    assert!(
        shim_log.contains("oom_score_adj"),
        "the oom_score_adj warning:\n{shim_log}"
    );

    // A busy container: every process of the pod is in the cgroup, and the quota bites.
    let busy = create(
        &mut rt,
        &pod,
        container_config(
            "busy",
            &bb,
            &["/bin/sh", "-c", "echo spinning; while :; do :; done"],
            "busy.log",
        ),
    )
    .await
    .unwrap();
    start(&mut rt, &busy).await.unwrap();
    wait_log(&dir.join("logs/busy.log"), "spinning");
    std::thread::sleep(Duration::from_millis(1500));
    let shim = shims(&dir.join("state/pods").join(&pod));
    assert_eq!(shim.len(), 1);
    let family = family(shim[0]);
    assert!(family.len() >= 4, "shim, sentry, gofer, stub: {family:?}");
    for h in ["memory", "cpu", "pids"] {
        let procs: Vec<u32> = cg(h, &rel, "cgroup.procs")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        for p in &family {
            assert!(procs.contains(p), "{p} not in {h} cgroup {procs:?}");
        }
    }
    let throttled: u64 = cg("cpu", &rel, "cpu.stat")
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(throttled > 0, "a 20% quota throttles a busy loop");
    let usage: u64 = cg("cpuacct", &rel, "cpuacct.usage").trim().parse().unwrap();
    assert!(
        usage < 1_500_000_000,
        "1.5 s at a 20% quota is 0.3 s of CPU, not {usage} ns"
    );

    // Past the memory limit the kernel's OOM killer acts inside the pod's cgroup only: a
    // 300 MB buffer filled at once in a pod allowed 160 MiB.
    let hog = create(
        &mut rt,
        &pod,
        container_config(
            "hog",
            &bb,
            &[
                "/bin/sh",
                "-c",
                "echo filling; dd if=/dev/zero of=/dev/null bs=300M count=1; echo survived",
            ],
            "hog.log",
        ),
    )
    .await
    .unwrap();
    stop_c(&mut rt, &busy, 0).await.unwrap();
    start(&mut rt, &hog).await.unwrap();
    let hog = wait_exited(&mut rt, &hog).await;
    let oom_kills: u64 = cg("memory", &rel, "memory.oom_control")
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(oom_kills >= 1, "no OOM kill; the hog ended {hog:?}");
    assert_ne!(hog.exit_code, 0, "{hog:?}");
    let max: u64 = cg("memory", &rel, "memory.max_usage_in_bytes")
        .trim()
        .parse()
        .unwrap();
    assert!(max <= 160 << 20, "usage {max} went past the limit");

    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    assert!(
        !Path::new("/sys/fs/cgroup/memory").join(&rel).exists(),
        "the pod cgroup is removed with the pod"
    );
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    remove_cgroup_parents(&[&format!("{parent}/pod-a"), &parent]);

    // A cgroup_parent that climbs is refused before anything is made.
    let mut bad = pod_config("bad", dir, net.host_port);
    bad.linux = Some(api::LinuxPodSandboxConfig {
        cgroup_parent: "/kubepods/../../etc".into(),
        ..Default::default()
    });
    let e = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(bad),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    drop(rt);
    drop(daemon);

    // The systemd driver: a slice name unfolds into nested slices, the pod is a scope.
    let daemon = Daemon::start(
        dir,
        &[
            &format!("--cni-conf-dir={}", net.conf_dir.display()),
            &format!("--cni-bin-dir={PLUGIN_DIR}"),
            "--cgroup-driver=systemd",
        ],
    );
    let mut rt = daemon.runtime().await;
    let slice = format!("moattest{}", std::process::id());
    let mut pc = pod_config("sliced", dir, net.host_port);
    pc.linux = Some(api::LinuxPodSandboxConfig {
        cgroup_parent: format!("{slice}-pod1.slice"),
        ..Default::default()
    });
    let pod = run(&mut rt, pc).await;
    let rel = PathBuf::from(format!("{slice}.slice/{slice}-pod1.slice/moat-{pod}.scope"));
    let shim = shims(&dir.join("state/pods").join(&pod));
    let procs = cg("pids", &rel, "cgroup.procs");
    assert!(procs.lines().any(|l| l == shim[0].to_string()), "{procs}");
    let rc = rt
        .runtime_config(api::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rc.linux.unwrap().cgroup_driver,
        api::CgroupDriver::Systemd as i32
    );
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(!Path::new("/sys/fs/cgroup/pids").join(&rel).exists());
    remove_cgroup_parents(&[
        &format!("{slice}.slice/{slice}-pod1.slice"),
        &format!("{slice}.slice"),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_rpcs_refuse_bad_input_with_the_right_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 3);
    let reg = Registry::start();
    let bb = push_busybox(&reg);
    let daemon = start_daemon(dir, &net.conf_dir);
    pull(&daemon, &bb).await;
    let mut rt = daemon.runtime().await;
    let pod = run(&mut rt, pod_config("strict", dir, net.host_port)).await;
    let sh = |name: &str| container_config(name, &bb, &["/bin/sh", "-c", "sleep 100"], "");
    let code = |r: Result<String, tonic::Status>| r.unwrap_err().code();

    // CreateContainer.
    let no_config = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: None,
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(no_config.code(), Code::InvalidArgument);
    assert_eq!(
        code(create(&mut rt, "", sh("x")).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(create(&mut rt, &"f".repeat(64), sh("x")).await),
        Code::NotFound
    );
    let mut nameless = sh("x");
    nameless.metadata = None;
    assert_eq!(
        code(create(&mut rt, &pod, nameless).await),
        Code::InvalidArgument
    );
    let mut no_image = sh("x");
    no_image.image = None;
    assert_eq!(
        code(create(&mut rt, &pod, no_image).await),
        Code::InvalidArgument
    );
    let not_pulled = container_config("x", &format!("{}/test/absent:v1", reg.addr), &[], "");
    assert_eq!(
        code(create(&mut rt, &pod, not_pulled).await),
        Code::NotFound
    );
    let mut relative = sh("x");
    relative.mounts = vec![api::Mount {
        container_path: "data".into(),
        host_path: dir.to_string_lossy().into_owned(),
        ..Default::default()
    }];
    assert_eq!(
        code(create(&mut rt, &pod, relative).await),
        Code::InvalidArgument
    );
    let mut shared = sh("x");
    shared.mounts = vec![api::Mount {
        container_path: "/data".into(),
        host_path: dir.to_string_lossy().into_owned(),
        propagation: api::MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    }];
    assert_eq!(
        code(create(&mut rt, &pod, shared).await),
        Code::InvalidArgument
    );
    let mut stranger = sh("x");
    stranger.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            run_as_username: "mallory".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let e = create(&mut rt, &pod, stranger).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("mallory"), "{e:?}");
    // Nothing of the refused ones is left.
    assert!(list_ids(&mut rt, None).await.is_empty());
    assert_eq!(
        fs::read_dir(dir.join("root/containers")).unwrap().count(),
        0
    );
    assert!(mounts_under(&dir.join("root/containers")).is_empty());

    let id = create(&mut rt, &pod, sh("x")).await.unwrap();
    assert_eq!(
        code(create(&mut rt, &pod, sh("x")).await),
        Code::AlreadyExists
    );

    // The rest, on unknown ids, empty ids and wrong states.
    assert_eq!(
        start(&mut rt, "").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        start(&mut rt, &"e".repeat(64)).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        cstatus(&mut rt, "").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        cstatus(&mut rt, &"e".repeat(64)).await.unwrap_err().code(),
        Code::NotFound
    );
    let e = exec(&mut rt, &id, &["/bin/sh"], 1).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "not running yet: {e:?}");
    start(&mut rt, &id).await.unwrap();
    assert_eq!(
        start(&mut rt, &id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        exec(&mut rt, &id, &[], 1).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        exec(&mut rt, &id, &["/bin/sh"], -1)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        stop_c(&mut rt, &id, -5).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        stop_c(&mut rt, &"e".repeat(64), 1)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    remove_c(&mut rt, &"e".repeat(64))
        .await
        .expect("removing an unknown container is fine");
    let bad_filter = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: 42 }),
        ..Default::default()
    };
    let e = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(bad_filter),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = rt
        .container_stats(api::ContainerStatsRequest {
            container_id: "e".repeat(64),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Left for later issues, and saying so.
    let e = rt
        .exec(api::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["/bin/sh".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("Exec"));
    let e = rt
        .attach(api::AttachRequest {
            container_id: id.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);

    // An image of 70 layers (more than one page of mount(2) options can name).
    let mut layers = vec![(busybox_layer(), Comp::Gzip)];
    let names: Vec<String> = (1..70).map(|i| format!("l/{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let body = format!("{}\n", i + 1);
        layers.push((
            tar_of(&[E::Dir("l"), E::File(name, body.as_bytes(), 0o644)]),
            Comp::None,
        ));
    }
    push_image_with(
        &reg,
        "test/deep",
        "v1",
        &layers,
        "amd64",
        false,
        serde_json::json!({}),
    );
    let deep_image = format!("{}/test/deep:v1", reg.addr);
    pull(&daemon, &deep_image).await;
    let deep = create(
        &mut rt,
        &pod,
        container_config("deep", &deep_image, &["/bin/sh", "-c", "sleep 100"], ""),
    )
    .await
    .expect("CreateContainer of a 70-layer image");
    start(&mut rt, &deep).await.unwrap();
    let r = exec(
        &mut rt,
        &deep,
        &["/bin/sh", "-c", "cat /l/1 /l/69; ls /l | wc -l"],
        10,
    )
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n69\n69\n");

    // A read-only root: writes fail with EROFS, a writable volume still takes them.
    let mut ro = container_config("ro", &bb, &["/bin/sh", "-c", "sleep 100"], "");
    ro.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            readonly_rootfs: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    ro.mounts = vec![api::Mount {
        container_path: "/scratch".into(),
        host_path: dir.join("scratch").to_string_lossy().into_owned(),
        ..Default::default()
    }];
    let ro = create(&mut rt, &pod, ro).await.unwrap();
    start(&mut rt, &ro).await.unwrap();
    let r = exec(
        &mut rt,
        &ro,
        &[
            "/bin/sh",
            "-c",
            "touch /x; echo >> /etc/hostname; touch /scratch/ok",
        ],
        10,
    )
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.matches("Read-only file system").count(), 2, "{err}");
    assert!(dir.join("scratch/ok").exists());

    // The daemon still serves, and a stopped pod takes no new container.
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let s = cstatus(&mut rt, &id).await.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(
        code(create(&mut rt, &pod, sh("y")).await),
        Code::FailedPrecondition
    );
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(list_ids(&mut rt, None).await.is_empty());
    assert_eq!(
        fs::read_dir(dir.join("root/containers")).unwrap().count(),
        0
    );
}
