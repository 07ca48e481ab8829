//! Pod sandboxes through the `moat-cri` binary and a tonic client: RunPodSandbox with the real
//! CNI plugins (bridge, host-local, portmap) and a pod shim, PodSandboxStatus, ListPodSandbox
//! with filters, StopPodSandbox (twice), RemovePodSandbox, a `kill -9` of the daemon in between,
//! and the bad-input codes; after each pod, no namespace, veth, shim or record is left.
//! Needs the binaries built first (`cargo build --workspace --bins`): moat-cri runs `moat` from
//! its own directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use moat_cri::api::{self, RuntimeServiceClient};
use tonic::transport::Channel;
use tonic::Code;

mod common;
use common::pod::*;

async fn status(
    rt: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<api::PodSandboxStatus, tonic::Status> {
    rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: false,
    })
    .await
    .map(|r| r.into_inner().status.expect("a status"))
}

async fn list(
    rt: &mut RuntimeServiceClient<Channel>,
    filter: Option<api::PodSandboxFilter>,
) -> Vec<String> {
    let mut ids: Vec<String> = rt
        .list_pod_sandbox(api::ListPodSandboxRequest { filter })
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect();
    ids.sort();
    ids
}

async fn stop(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map(drop)
}

async fn remove(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map(drop)
}

fn ready() -> i32 {
    api::PodSandboxState::SandboxReady as i32
}

fn not_ready() -> i32 {
    api::PodSandboxState::SandboxNotready as i32
}

/// Checks that pod `id` is Ready with an IP of `net`'s and its pieces exist; returns the IP and
/// the pids of its shim and sentry.
async fn check_running(
    rt: &mut RuntimeServiceClient<Channel>,
    dir: &Path,
    net: &Net,
    id: &str,
) -> (String, Vec<u32>) {
    let s = status(rt, id).await.expect("PodSandboxStatus");
    assert_eq!(s.state, ready());
    assert_eq!(s.id, id);
    assert!(s.created_at > 0);
    let ip = s.network.expect("network status").ip;
    let parsed: IpAddr = ip.parse().expect("pod IP");
    assert!(
        parsed.is_ipv4() && ip.starts_with(&net.prefix),
        "{ip} not in {}0/24",
        net.prefix
    );
    let ns = s
        .linux
        .expect("linux")
        .namespaces
        .expect("namespaces")
        .options
        .expect("options");
    assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
    let shim = shims(&dir.join("state/pods").join(id));
    assert_eq!(shim.len(), 1, "one shim");
    // The shim and its sentry (at least).
    let procs = family(shim[0]);
    assert!(procs.len() >= 2, "the shim has no sentry: {procs:?}");
    assert_eq!(net.ports().len(), 1, "one veth on {}", net.bridge);
    (ip, procs)
}

/// Checks that nothing of pod `id` (whose shim and sentry were `procs`) is left on the host.
fn check_gone(dir: &Path, net: &Net, id: &str, procs: &[u32]) {
    assert!(
        !dir.join("state/netns").join(id).exists(),
        "netns file left"
    );
    wait_until("the shim ends", || {
        shims(&dir.join("state/pods").join(id)).is_empty()
    });
    wait_until("the pod's processes end", || {
        !procs.iter().any(|p| alive(*p))
    });
    assert!(
        net.ports().is_empty(),
        "veth left on {}: {:?}",
        net.bridge,
        net.ports()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_is_listed_stops_twice_and_is_removed_leaving_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 1);
    let d = start_daemon(dir, &net.conf_dir);
    let mut rt = d.runtime().await;

    let st = rt
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let conds = st.status.unwrap().conditions;
    assert!(
        conds.iter().any(|c| c.r#type == "NetworkReady" && c.status),
        "{conds:?}"
    );

    let id = run(&mut rt, config("web", &[("app", "web")], net.host_port)).await;
    assert_eq!(id.len(), 64);
    let (_, procs) = check_running(&mut rt, dir, &net, &id).await;

    assert_eq!(list(&mut rt, None).await, std::slice::from_ref(&id));
    let by = |id: &str, state: Option<i32>, labels: &[(&str, &str)]| {
        Some(api::PodSandboxFilter {
            id: id.into(),
            state: state.map(|state| api::PodSandboxStateValue { state }),
            label_selector: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        })
    };
    assert_eq!(
        list(&mut rt, by(&id[..10], None, &[])).await,
        std::slice::from_ref(&id)
    );
    assert_eq!(
        list(&mut rt, by("", Some(ready()), &[])).await,
        std::slice::from_ref(&id)
    );
    assert!(list(&mut rt, by("", Some(not_ready()), &[]))
        .await
        .is_empty());
    assert_eq!(
        list(&mut rt, by("", None, &[("app", "web")])).await,
        std::slice::from_ref(&id)
    );
    assert!(list(&mut rt, by("", None, &[("app", "db")]))
        .await
        .is_empty());

    stop(&mut rt, &id).await.expect("StopPodSandbox");
    stop(&mut rt, &id).await.expect("StopPodSandbox again");
    check_gone(dir, &net, &id, &procs);
    let s = status(&mut rt, &id).await.expect("status of a stopped pod");
    assert_eq!(s.state, not_ready());
    assert_eq!(
        list(&mut rt, by("", Some(not_ready()), &[])).await,
        std::slice::from_ref(&id)
    );

    remove(&mut rt, &id).await.expect("RemovePodSandbox");
    remove(&mut rt, &id).await.expect("RemovePodSandbox again");
    let e = status(&mut rt, &id).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(list(&mut rt, None).await.is_empty());
    assert!(!dir.join("state/pods").join(&id).exists(), "pod dir left");
    check_gone(dir, &net, &id, &procs);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_pod_requests_get_real_codes_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 2);
    let d = start_daemon(dir, &net.conf_dir);
    let mut rt = d.runtime().await;

    let code = |r: Result<tonic::Response<api::RunPodSandboxResponse>, tonic::Status>| {
        r.expect_err("RunPodSandbox should fail").code()
    };
    let mut no_meta = config("x", &[], 0);
    no_meta.metadata = None;
    let req = |config, handler: &str| api::RunPodSandboxRequest {
        config: Some(config),
        runtime_handler: handler.into(),
    };
    assert_eq!(
        code(rt.run_pod_sandbox(req(no_meta, "")).await),
        Code::InvalidArgument
    );
    let mut no_uid = config("x", &[], 0);
    no_uid.metadata.as_mut().unwrap().uid.clear();
    assert_eq!(
        code(rt.run_pod_sandbox(req(no_uid, "")).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(rt.run_pod_sandbox(req(config("x", &[], 0), "runc")).await),
        Code::InvalidArgument
    );
    let none = api::RunPodSandboxRequest::default();
    assert_eq!(code(rt.run_pod_sandbox(none).await), Code::InvalidArgument);

    let e = status(&mut rt, "nosuchpod").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(
        stop(&mut rt, "nosuchpod").await.unwrap_err().code(),
        Code::NotFound
    );
    remove(&mut rt, "nosuchpod")
        .await
        .expect("removing an unknown pod is no error");
    assert!(
        list(&mut rt, None).await.is_empty(),
        "a failed run left a record"
    );

    let id = run(&mut rt, config("dup", &[], net.host_port)).await;
    let (_, procs) = check_running(&mut rt, dir, &net, &id).await;
    assert_eq!(
        code(rt.run_pod_sandbox(req(config("dup", &[], 0), "moat")).await),
        Code::AlreadyExists
    );
    assert_eq!(list(&mut rt, None).await, std::slice::from_ref(&id));
    remove(&mut rt, &id)
        .await
        .expect("RemovePodSandbox of a running pod");
    check_gone(dir, &net, &id, &procs);
    assert!(list(&mut rt, None).await.is_empty());

    // Without a network config: NetworkReady false, and RunPodSandbox refuses, leaving nothing.
    fs::remove_file(net.conf_dir.join("10-moat.conflist")).unwrap();
    let st = rt
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let conds = st.status.unwrap().conditions;
    let nr = conds.iter().find(|c| c.r#type == "NetworkReady").unwrap();
    assert!(!nr.status && nr.reason == "NetworkPluginNotReady" && !nr.message.is_empty());
    let e = rt
        .run_pod_sandbox(req(config("nonet", &[], 0), ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(list(&mut rt, None).await.is_empty());
    let left: Vec<_> = fs::read_dir(dir.join("state/pods"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "pod dirs left: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_survives_kill_9_of_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 3);
    let d = start_daemon(dir, &net.conf_dir);
    let mut rt = d.runtime().await;
    let id = run(&mut rt, config("survivor", &[("k", "v")], net.host_port)).await;
    let (ip, procs) = check_running(&mut rt, dir, &net, &id).await;
    drop(rt);
    d.kill9();

    let d = start_daemon(dir, &net.conf_dir);
    let mut rt = d.runtime().await;
    let (ip_after, procs_after) = check_running(&mut rt, dir, &net, &id).await;
    assert_eq!(ip_after, ip, "same IP after a restart");
    assert_eq!(procs_after[0], procs[0], "same shim after a restart");
    let procs: Vec<u32> = procs.into_iter().chain(procs_after).collect();
    assert_eq!(list(&mut rt, None).await, std::slice::from_ref(&id));
    stop(&mut rt, &id)
        .await
        .expect("StopPodSandbox after a restart");
    check_gone(dir, &net, &id, &procs);
    remove(&mut rt, &id)
        .await
        .expect("RemovePodSandbox after a restart");
    assert!(list(&mut rt, None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_cni_add_is_undone_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir, 4);
    let d = start_daemon(dir, &net.conf_dir);
    let mut rt = d.runtime().await;
    let conf_path = net.conf_dir.join("10-moat.conflist");
    let entries = |sub: &str| -> Vec<PathBuf> {
        fs::read_dir(dir.join(sub))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let req = |name: &str| api::RunPodSandboxRequest {
        config: Some(config(name, &[], 0)),
        runtime_handler: String::new(),
    };

    // A range of one address: the second pod's ADD fails (host-local has no address left), and
    // RunPodSandbox undoes everything: no record, namespace, pod dir, shim, veth or CNI cache.
    let good = fs::read_to_string(&conf_path).unwrap();
    let mut one: serde_json::Value = serde_json::from_str(&good).unwrap();
    let only = format!("{}10", net.prefix);
    one["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] = only.clone().into();
    one["plugins"][0]["ipam"]["ranges"][0][0]["rangeEnd"] = only.clone().into();
    fs::write(&conf_path, one.to_string()).unwrap();
    let first = run(&mut rt, config("first", &[], 0)).await;
    let (ip, first_procs) = check_running(&mut rt, dir, &net, &first).await;
    assert_eq!(ip, only);
    let e = rt.run_pod_sandbox(req("second")).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert_eq!(
        list(&mut rt, None).await,
        std::slice::from_ref(&first),
        "a half pod is listed"
    );
    assert_eq!(
        entries("state/pods").len(),
        1,
        "{:?}",
        entries("state/pods")
    );
    assert_eq!(
        entries("state/netns").len(),
        1,
        "{:?}",
        entries("state/netns")
    );
    assert_eq!(
        entries("root/cni-cache").len(),
        1,
        "{:?}",
        entries("root/cni-cache")
    );
    assert_eq!(net.ports().len(), 1, "veth left: {:?}", net.ports());
    remove(&mut rt, &first).await.expect("RemovePodSandbox");
    check_gone(dir, &net, &first, &first_procs);
    // The failed pod's name is free again.
    let second = run(&mut rt, config("second", &[], 0)).await;
    let (_, procs) = check_running(&mut rt, dir, &net, &second).await;
    remove(&mut rt, &second).await.expect("RemovePodSandbox");
    check_gone(dir, &net, &second, &procs);
    assert!(
        entries("state/pods").is_empty(),
        "{:?}",
        entries("state/pods")
    );
    assert!(
        entries("root/cni-cache").is_empty(),
        "{:?}",
        entries("root/cni-cache")
    );

    // A config whose ADD and DEL both fail (host-local cannot parse its range): the namespace,
    // veth and shim go; the record stays, NotReady, with DEL still due (the CNI cache keeps the
    // config ADD ran with), so that a RemovePodSandbox can try DEL again.
    let bad = good.replace(&format!("{}0/24", net.prefix), "not-a-subnet");
    assert_ne!(bad, good);
    fs::write(&conf_path, bad).unwrap();
    let e = rt.run_pod_sandbox(req("badnet")).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert!(e.message().contains("not-a-subnet"), "{e:?}");
    let left = list(&mut rt, None).await;
    assert_eq!(left.len(), 1, "the record stays for RemovePodSandbox");
    let s = status(&mut rt, &left[0]).await.expect("status");
    assert_eq!(s.state, not_ready());
    assert!(
        entries("state/netns").is_empty(),
        "{:?}",
        entries("state/netns")
    );
    assert!(shims(&dir.join("state/pods").join(&left[0])).is_empty());
    assert!(net.ports().is_empty(), "veth left: {:?}", net.ports());
    // StopPodSandbox reports the failing DEL again; RemovePodSandbox gives up on it and
    // forgets the pod.
    let e = stop(&mut rt, &left[0]).await.unwrap_err();
    assert!(e.message().contains("not-a-subnet"), "{e:?}");
    remove(&mut rt, &left[0])
        .await
        .expect("RemovePodSandbox despite DEL");
    assert!(list(&mut rt, None).await.is_empty());
    assert!(
        entries("state/pods").is_empty(),
        "{:?}",
        entries("state/pods")
    );
}
