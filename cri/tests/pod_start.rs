//! The whole path of a new pod, ten times: RunPodSandbox (network namespace, real CNI plugins,
//! shim, sentry), CreateContainer (overlay root from a pulled image), StartContainer, and the
//! container's first line in its CRI log; then StopPodSandbox and RemovePodSandbox leave
//! nothing. Prints the time from RunPodSandbox to the first log line (median, min, max); the
//! numbers are reported, not asserted (bench/run shows them next to the other measures).
//! Needs the binaries built first (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use moat_cri::api;

mod common;
use common::pod::*;
use common::{busybox_layer, push_image, Comp, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_pods_reach_their_first_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 4);
    let reg = Registry::start();
    push_image(
        &reg,
        "test/bb",
        "v1",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let image = format!("{}/test/bb:v1", reg.addr);
    let daemon = start_daemon(dir, &net.conf_dir);
    daemon
        .images()
        .await
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage");
    let mut rt = daemon.runtime().await;
    let mut times = Vec::new();
    for i in 0..10 {
        let name = format!("p{i}");
        let mut pc = config(&name, &[], net.host_port);
        pc.log_directory = dir.join("logs").join(&name).to_string_lossy().into_owned();
        let log = dir.join("logs").join(&name).join("c.log");
        let t0 = Instant::now();
        let pod = run(&mut rt, pc.clone()).await;
        let id = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: "c".into(),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    command: vec!["/bin/sh".into(), "-c".into(), "echo first-line".into()],
                    log_path: "c.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(pc),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        rt.start_container(api::StartContainerRequest { container_id: id })
            .await
            .expect("StartContainer");
        while !first_line(&log) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no first line in {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(t0.elapsed());
        rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("StopPodSandbox");
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("RemovePodSandbox");
        assert!(shims(&dir.join("state/pods").join(&pod)).is_empty());
    }
    assert_eq!(
        fs::read_dir(dir.join("root/containers")).unwrap().count(),
        0
    );
    assert!(net.ports().is_empty(), "veths left: {:?}", net.ports());
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "RunPodSandbox to first log line: median {:.1} ms (min {:.1}, max {:.1}) over {}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn first_line(log: &Path) -> bool {
    fs::read_to_string(log).is_ok_and(|t| t.lines().any(|l| l.ends_with(" F first-line")))
}
