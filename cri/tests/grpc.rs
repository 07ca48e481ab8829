//! The `moat-cri` binary driven over its unix socket by a tonic CRI client, pulling from a real
//! registry (Debian's `docker-registry`) on 127.0.0.1.

use std::fs;
use std::process::Command;

use moat_cri::api::{self, ImageServiceClient};
use tonic::transport::Channel;
use tonic::Code;

mod common;
use common::*;

fn spec(image: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

/// Pushes a two-layer busybox image (the second layer whites out a file of the first).
fn push_busybox(reg: &Registry, repo: &str, tag: &str) -> Pushed {
    let extra = tar_of(&[E::Dir("etc"), E::File("etc/motd", b"hi\n", 0o644)]);
    let whiteout = tar_of(&[E::Dir("etc"), E::File("etc/.wh.motd", b"", 0o644)]);
    push_image(
        reg,
        repo,
        tag,
        &[
            (busybox_layer(), Comp::Gzip),
            (extra, Comp::None),
            (whiteout, Comp::Zstd),
        ],
        "amd64",
        false,
    )
}

async fn pull(
    images: &mut ImageServiceClient<Channel>,
    image: &str,
) -> Result<String, tonic::Status> {
    images
        .pull_image(api::PullImageRequest {
            image: spec(image),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

async fn status_of(
    images: &mut ImageServiceClient<Channel>,
    image: &str,
) -> api::ImageStatusResponse {
    images
        .image_status(api::ImageStatusRequest {
            image: spec(image),
            verbose: true,
        })
        .await
        .unwrap_or_else(|e| panic!("ImageStatus {image}: {e}"))
        .into_inner()
}

async fn list_ids(images: &mut ImageServiceClient<Channel>, filter: Option<&str>) -> Vec<String> {
    images
        .list_images(api::ListImagesRequest {
            filter: filter.map(|f| api::ImageFilter { image: spec(f) }),
        })
        .await
        .expect("ListImages")
        .into_inner()
        .images
        .into_iter()
        .map(|i| i.id)
        .collect()
}

/// The daemon still answers: each bad request was contained.
async fn assert_serving(d: &Daemon) {
    let v = d
        .runtime()
        .await
        .version(api::VersionRequest::default())
        .await;
    assert!(
        v.is_ok(),
        "daemon stopped answering: {v:?}\n{}",
        d.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_status_report_moat_and_truthful_conditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(
        dir.path(),
        &["--runtime-handler=moat", "--runtime-handler=moat-debug"],
    );
    let mut rt = d.runtime().await;
    let v = rt
        .version(api::VersionRequest::default())
        .await
        .expect("Version")
        .into_inner();
    assert_eq!(v.runtime_name, "moat");
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(v.runtime_api_version, "v1");
    assert_eq!(v.version, "0.1.0");

    let s = rt
        .status(api::StatusRequest::default())
        .await
        .expect("Status")
        .into_inner();
    let conds = s.status.expect("runtime status").conditions;
    let cond = |t: &str| {
        conds
            .iter()
            .find(|c| c.r#type == t)
            .unwrap_or_else(|| panic!("no {t}"))
    };
    assert!(cond("RuntimeReady").status);
    let net = cond("NetworkReady");
    assert!(!net.status);
    assert_eq!(net.reason, "NetworkPluginNotReady");
    assert!(!net.message.is_empty());
    let handlers: Vec<_> = s.runtime_handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(handlers, ["moat", "moat-debug"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pulled_image_is_listed_found_and_removed() {
    let reg = Registry::start();
    let pushed = push_busybox(&reg, "cri/busybox", "1");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), &[]);
    let mut images = d.images().await;
    let tag = format!("{}/cri/busybox:1", reg.addr);
    let id = pull(&mut images, &tag).await.expect("PullImage");
    assert_eq!(id, pushed.config.to_string(), "image_ref is the image ID");

    assert_eq!(list_ids(&mut images, None).await, vec![id.clone()]);
    assert_eq!(list_ids(&mut images, Some(&tag)).await, vec![id.clone()]);
    let other = format!("{}/cri/other:1", reg.addr);
    assert!(list_ids(&mut images, Some(&other)).await.is_empty());

    for key in [tag.as_str(), id.as_str()] {
        let st = status_of(&mut images, key).await;
        let img = st
            .image
            .unwrap_or_else(|| panic!("ImageStatus {key} found nothing"));
        assert_eq!(img.id, id);
        assert_eq!(img.repo_tags, vec![tag.clone()]);
        assert_eq!(
            img.repo_digests,
            [format!("{}/cri/busybox@{}", reg.addr, pushed.manifest)]
        );
        assert!(img.size > 0);
        let info: serde_json::Value =
            serde_json::from_str(st.info.get("info").expect("verbose info")).expect("info is JSON");
        assert_eq!(info["config"]["config"]["Cmd"][0], "/bin/sh");
    }
    let by_digest = format!("{}/cri/busybox@{}", reg.addr, pushed.manifest);
    assert!(status_of(&mut images, &by_digest).await.image.is_some());

    let fs_info = images
        .image_fs_info(api::ImageFsInfoRequest::default())
        .await
        .expect("ImageFsInfo")
        .into_inner();
    let usage = fs_info
        .image_filesystems
        .first()
        .expect("one image filesystem");
    assert!(
        usage.used_bytes.as_ref().expect("bytes").value > 1 << 20,
        "busybox is stored"
    );
    assert!(usage.inodes_used.as_ref().expect("inodes").value > 5);
    assert!(usage
        .fs_id
        .as_ref()
        .expect("fs id")
        .mountpoint
        .starts_with(&dir.path().display().to_string()));

    images
        .remove_image(api::RemoveImageRequest { image: spec(&tag) })
        .await
        .expect("RemoveImage");
    assert!(status_of(&mut images, &tag).await.image.is_none());
    assert!(status_of(&mut images, &id).await.image.is_none());
    assert!(list_ids(&mut images, None).await.is_empty());
    images
        .remove_image(api::RemoveImageRequest { image: spec(&tag) })
        .await
        .expect("RemoveImage of a removed image succeeds");
    let after = images
        .image_fs_info(api::ImageFsInfoRequest::default())
        .await
        .expect("ImageFsInfo")
        .into_inner();
    let freed = after
        .image_filesystems
        .first()
        .and_then(|u| u.used_bytes.as_ref())
        .expect("bytes");
    assert!(
        freed.value < 1 << 20,
        "removing the image freed its blobs and layers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_real_codes_and_the_daemon_keeps_serving() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), &[]);
    let mut images = d.images().await;

    let e = pull(&mut images, "Not A/Reference!")
        .await
        .expect_err("invalid reference");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("Not A/Reference!"), "{}", e.message());
    assert_serving(&d).await;

    let e = images
        .pull_image(api::PullImageRequest::default())
        .await
        .expect_err("no image spec");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = images
        .image_status(api::ImageStatusRequest {
            image: spec(""),
            verbose: false,
        })
        .await
        .expect_err("empty image spec");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_serving(&d).await;

    let missing = format!("{}/cri/none:1", reg.addr);
    let e = pull(&mut images, &missing)
        .await
        .expect_err("no such image");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let closed = format!("127.0.0.1:{}/cri/x:1", free_port());
    let e = pull(&mut images, &closed)
        .await
        .expect_err("nothing listens");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_serving(&d).await;

    assert!(status_of(&mut images, &missing).await.image.is_none());
    assert!(
        status_of(&mut images, &format!("sha256:{}", "a".repeat(64)))
            .await
            .image
            .is_none()
    );
    assert_serving(&d).await;

    let e = d
        .runtime()
        .await
        .run_pod_sandbox(api::RunPodSandboxRequest::default())
        .await
        .expect_err("no pod config");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = d
        .runtime()
        .await
        .create_container(api::CreateContainerRequest::default())
        .await
        .expect_err("no pod, no config");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = d
        .runtime()
        .await
        .checkpoint_container(api::CheckpointContainerRequest::default())
        .await
        .expect_err("not implemented yet");
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    assert!(
        e.message().contains("CheckpointContainer"),
        "{}",
        e.message()
    );
    assert_serving(&d).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_image_authenticates_with_the_request_auth_config() {
    let reg = Registry::start();
    let pushed = push_image(
        &reg,
        "test/auth",
        "v1",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let id = pushed.config.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), &[]);
    let mut images = d.images().await;
    let with = |auth: api::AuthConfig, image: &str| api::PullImageRequest {
        image: spec(image),
        auth: Some(auth),
        sandbox_config: None,
    };
    let basic = api::AuthConfig {
        username: "user".into(),
        password: "pass".into(),
        ..Default::default()
    };
    let encoded = api::AuthConfig {
        auth: "dXNlcjpwYXNz".into(), // user:pass
        ..Default::default()
    };
    let token = api::AuthConfig {
        registry_token: "tok123".into(),
        ..Default::default()
    };

    for bearer in [false, true] {
        let proxy = start_auth_proxy(reg.addr.clone(), bearer);
        let image = format!("{}/test/auth:v1", proxy.addr);
        let e = pull(&mut images, &image)
            .await
            .expect_err("anonymous pull is refused");
        assert_eq!(e.code(), Code::Unauthenticated, "bearer={bearer}: {e:?}");
        let mut accepted = vec![basic.clone(), encoded.clone()];
        if bearer {
            accepted.push(token.clone());
        }
        for auth in accepted {
            let resp = images.pull_image(with(auth.clone(), &image)).await;
            let got = resp.unwrap_or_else(|e| panic!("bearer={bearer} {auth:?}: {e}"));
            assert_eq!(got.into_inner().image_ref, id);
        }
        // A token earned with credentials does not serve a request without them.
        let e = pull(&mut images, &image)
            .await
            .expect_err("anonymous pull after a token");
        assert_eq!(e.code(), Code::Unauthenticated, "bearer={bearer}: {e:?}");
        let wrong = api::AuthConfig {
            username: "user".into(),
            password: "wrong".into(),
            ..Default::default()
        };
        let e = images
            .pull_image(with(wrong, &image))
            .await
            .expect_err("wrong password");
        assert_eq!(e.code(), Code::Unauthenticated, "bearer={bearer}: {e:?}");
    }
    assert_serving(&d).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pulled_image_survives_restarts_and_a_stale_socket() {
    let reg = Registry::start();
    let pushed = push_busybox(&reg, "cri/keep", "v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("{}/cri/keep:v1", reg.addr);

    let d = Daemon::start(dir.path(), &[]);
    let id = pull(&mut d.images().await, &tag).await.expect("PullImage");
    assert_eq!(id, pushed.config.to_string());
    let socket = d.socket.clone();
    let second = Command::new(env!("CARGO_BIN_EXE_moat-cri"))
        .arg(format!("--listen={}", socket.display()))
        .arg(format!("--root={}", dir.path().join("root").display()))
        .arg(format!("--state={}", dir.path().join("state").display()))
        .output()
        .expect("run a second moat-cri");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "a second daemon on a live socket fails"
    );
    assert!(err.contains("another process is serving"), "{err}");
    assert_serving(&d).await;
    let status = d.stop("TERM");
    assert!(status.success(), "SIGTERM stops moat-cri cleanly: {status}");
    assert!(!socket.exists(), "a clean stop removes the socket");

    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        list_ids(&mut d.images().await, None).await,
        vec![id.clone()]
    );
    let status = d.stop("KILL");
    assert!(!status.success());
    assert!(socket.exists(), "kill -9 leaves a stale socket behind");

    let d = Daemon::start(dir.path(), &[]);
    let mut images = d.images().await;
    assert_eq!(list_ids(&mut images, None).await, vec![id.clone()]);
    assert_eq!(
        status_of(&mut images, &tag).await.image.map(|i| i.id),
        Some(id)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_file = dir.path().join("file.sock");
    let from_flag = dir.path().join("flag.sock");
    let cfg = dir.path().join("moat-cri.toml");
    fs::write(
        &cfg,
        format!(
            "listen = \"unix://{}\"\nruntime_handlers = [\"from-file\"]\n",
            from_file.display()
        ),
    )
    .expect("write config");
    let cfg_flag = format!("--config={}", cfg.display());

    let d = Daemon::start_at(dir.path(), &from_file, &[], &[&cfg_flag]);
    let s = d
        .runtime()
        .await
        .status(api::StatusRequest::default())
        .await
        .expect("Status");
    let names: Vec<_> = s
        .into_inner()
        .runtime_handlers
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["from-file"]);
    assert!(d.stop("INT").success(), "SIGINT stops moat-cri cleanly");

    let listen = format!("--listen={}", from_flag.display());
    let d = Daemon::start_at(dir.path(), &from_flag, &[&listen], &[&cfg_flag]);
    assert_serving(&d).await;
    assert!(!from_file.exists(), "the flag wins over the file");

    fs::write(&cfg, "lisen = \"/x\"\n").expect("write bad config");
    let out = Command::new(env!("CARGO_BIN_EXE_moat-cri"))
        .arg(&cfg_flag)
        .output()
        .expect("run moat-cri");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot parse config file") && err.contains("lisen"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_config_dir_sends_pulls_to_an_https_mirror() {
    let certs = TestCerts::new();
    let mirror = Registry::start_with(&RegistrySpec {
        tls: Some(&certs),
        ..RegistrySpec::default()
    });
    let pushed = push_busybox(&mirror, "cri/mirrored", "1");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs_d = dir.path().join("certs.d");
    for (ns, text) in [
        (
            "registry.moat-test.invalid",
            format!(
                "[host.\"https://{}\"]\nca = \"{}\"\n",
                mirror.addr,
                certs.ca.display()
            ),
        ),
        (
            "untrusted.moat-test.invalid",
            format!("server = \"https://{}\"\n", mirror.addr),
        ),
    ] {
        fs::create_dir_all(certs_d.join(ns)).expect("namespace dir");
        fs::write(certs_d.join(ns).join("hosts.toml"), text).expect("hosts.toml");
    }
    let d = Daemon::start(
        dir.path(),
        &[&format!("--registry-config-dir={}", certs_d.display())],
    );
    let mut images = d.images().await;
    let image = "registry.moat-test.invalid/cri/mirrored:1";
    let id = pull(&mut images, image)
        .await
        .expect("PullImage through the mirror");
    assert_eq!(id, pushed.config.to_string());
    assert_eq!(
        status_of(&mut images, image)
            .await
            .image
            .map(|i| i.repo_tags),
        Some(vec![image.to_owned()])
    );

    let err = pull(&mut images, "untrusted.moat-test.invalid/cri/mirrored:1")
        .await
        .expect_err("a certificate of an unknown CA");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.message().contains("is not trusted") && err.message().contains("UnknownIssuer"),
        "{}",
        err.message()
    );
    assert_serving(&d).await;
}

#[test]
fn bad_flags_and_registry_settings_stop_moat_cri_before_it_listens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("cri.sock");
    let certs_d = dir.path().join("certs.d");
    fs::create_dir_all(certs_d.join("reg.example")).expect("namespace dir");
    fs::write(
        certs_d.join("reg.example/hosts.toml"),
        "[host.\"https://mirror.example\"]\nproxy = \"http://proxy.example:3128\"\n",
    )
    .expect("hosts.toml");
    let bad_hosts = format!("--registry-config-dir={}", certs_d.display());
    for (flag, expected) in [
        (bad_hosts.as_str(), "proxy is not supported"),
        (
            "--registry-config-dir=/nonexistent/certs.d",
            "/nonexistent/certs.d does not exist",
        ),
        ("--streaming-address=localhost:0", "streaming address"),
        (
            "--cni-bin-dir=/usr/lib/cni:relative",
            "not an absolute path",
        ),
        ("--runtime-handler=Bad", "runtime handler name"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_moat-cri"))
            .arg(format!("--listen={}", socket.display()))
            .arg(format!("--root={}", dir.path().join("root").display()))
            .arg(format!("--state={}", dir.path().join("state").display()))
            .arg(flag)
            .output()
            .expect("run moat-cri");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {err}");
        assert!(
            err.contains("invalid configuration") && err.contains(expected),
            "{flag}: {err}"
        );
        assert!(!socket.exists(), "{flag}: nothing was served");
    }
}

/// One HTTP/2 frame.
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A client that names the socket by its path in `:authority`, as kubelet before 1.26, grpc-java
/// and grpcurl do: two Version calls on one connection (the second refers to the first's
/// header table entries), both answered.
#[test]
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn a_client_that_sends_the_socket_path_as_authority_is_served() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let path = d.socket.to_string_lossy().into_owned();
    let mut enc = fluke_hpack::Encoder::new();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    for stream in [1u32, 3] {
        let block = enc.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", b"/runtime.v1.RuntimeService/Version"),
            (b":authority", path.as_bytes()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]);
        out.extend(frame(0x1, 0x4, stream, &block));
        // A gRPC message: uncompressed, 4 bytes long, VersionRequest{version: "v1"}.
        out.extend(frame(
            0x0,
            0x1,
            stream,
            &[0, 0, 0, 0, 4, 0x0a, 2, b'v', b'1'],
        ));
    }
    s.write_all(&out).unwrap();
    let mut answered = std::collections::HashSet::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while answered.len() < 2 {
        let n = s.read(&mut chunk).expect("the server answers");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let f: Vec<u8> = buf.drain(..9 + len).collect();
            let stream = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff;
            assert_ne!(f[3], 0x3, "RST_STREAM on stream {stream}");
            if f[3] == 0x0 && f[9..].windows(4).any(|w| w == b"moat") {
                answered.insert(stream);
            }
        }
    }
    assert_eq!(answered, [1, 3].into_iter().collect());
}
