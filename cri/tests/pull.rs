//! Image pulls against a real registry (Debian's `docker-registry`) on 127.0.0.1, holding images
//! the tests build and push themselves through the registry HTTP API.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use moat_cri::digest::Digest;
use moat_cri::layer::LayerError;
use moat_cri::oci;
use moat_cri::pull::{PullError, Puller};
use moat_cri::reference::Reference;
use moat_cri::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use moat_cri::store::{Store, StoreError};

mod common;
use common::*;

fn new_puller(root: &Path) -> Puller {
    let store = Arc::new(Store::open(root).expect("open store"));
    Puller::new(RegistryClient::new(RegistryOptions::default()), store)
}

fn dir_entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", p.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Nothing of a failed pull is left: no records, layers, temp files or the refused blob.
fn assert_nothing_left(store: &Store, refused_blob: &Digest) {
    let root = store.root();
    assert!(
        store.images().expect("images").is_empty(),
        "image records left"
    );
    assert_eq!(
        dir_entries(&root.join("layers")),
        Vec::<String>::new(),
        "layer dirs left"
    );
    assert_eq!(
        dir_entries(&root.join("tmp")),
        Vec::<String>::new(),
        "temp files left"
    );
    assert!(
        !root.join("blobs/sha256").join(refused_blob.hex()).exists(),
        "refused blob left"
    );
}

#[test]
fn pull_by_tag_unpacks_layers_and_applies_whiteouts() {
    let reg = Registry::start();
    let lower = tar_of(&[
        E::Dir("etc"),
        E::File("etc/hello", b"hello\n", 0o644),
        E::File("etc/keep", b"keep\n", 0o600),
        E::Dir("data"),
        E::File("data/a", b"a", 0o644),
        E::Dir("data/sub"),
        E::File("data/sub/b", b"b", 0o644),
    ]);
    let upper = tar_of(&[
        E::File("etc/.wh.hello", b"", 0o644),
        E::File("data/.wh..wh..opq", b"", 0o644),
        E::File("data/c", b"c", 0o644),
    ]);
    let top = tar_of(&[E::Dir("etc"), E::File("etc/motd", b"zstd layer\n", 0o644)]);
    let pushed = push_image(
        &reg,
        "test/multi",
        "v1",
        &[
            (busybox_layer(), Comp::Gzip),
            (lower, Comp::Gzip),
            (upper, Comp::None),
            (top, Comp::Zstd),
        ],
        "amd64",
        false,
    );
    let root = tempfile::tempdir().expect("store root");
    let puller = new_puller(root.path());
    let r = reg.reference("test/multi", ":v1");
    let out = puller.pull(&r, None).expect("pull by tag");
    assert_eq!(out.image.id, pushed.config);
    assert_eq!(out.image.manifest_digest, pushed.manifest);
    assert_eq!(out.blobs_downloaded, 6, "manifest, config and four layers");
    let tag = format!("{}/test/multi:v1", reg.addr);
    assert_eq!(out.image.repo_tags, vec![tag.clone()]);
    assert_eq!(
        puller
            .store()
            .image(&tag)
            .expect("lookup")
            .expect("recorded")
            .id,
        pushed.config
    );

    // Each layer is unpacked on its own, whiteouts as overlayfs keeps them.
    let store = puller.store();
    let lower_dir = store.layer_path(&pushed.diff_ids[1]);
    assert_eq!(
        fs::read(lower_dir.join("etc/hello")).expect("lower file"),
        b"hello\n"
    );
    let upper_dir = store.layer_path(&pushed.diff_ids[2]);
    let wh = fs::symlink_metadata(upper_dir.join("etc/hello")).expect("whiteout");
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "etc/.wh.hello became a 0/0 device"
    );
    assert!(!upper_dir.join("etc/.wh.hello").exists());
    let keep_mode = fs::metadata(lower_dir.join("etc/keep"))
        .expect("keep")
        .permissions()
        .mode();
    assert_eq!(keep_mode & 0o7777, 0o600);

    let rootfs = tempfile::tempdir().expect("rootfs");
    store
        .materialize(&out.image, rootfs.path())
        .expect("materialize");
    let rf = rootfs.path();
    assert_eq!(
        fs::read(rf.join("bin/busybox")).expect("busybox"),
        fs::read("/bin/busybox").expect("host busybox")
    );
    assert_eq!(
        fs::read_link(rf.join("bin/sh")).expect("sh link"),
        PathBuf::from("busybox")
    );
    assert!(!rf.join("etc/hello").exists(), "whiteout removed etc/hello");
    assert!(
        !rf.join("etc/.wh.hello").exists(),
        "whiteout marker is not in the rootfs"
    );
    assert_eq!(dir_entries(&rf.join("etc")), vec!["keep", "motd"]);
    assert_eq!(
        dir_entries(&rf.join("data")),
        vec!["c"],
        "opaque dir hides lower entries"
    );
    let run = Command::new(rf.join("bin/sh"))
        .args(["-c", "echo from-image"])
        .output()
        .expect("run image sh");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "from-image\n");
}

#[test]
fn pull_by_digest_reuses_what_a_tag_pull_stored() {
    let reg = Registry::start();
    let pushed = push_image(
        &reg,
        "test/busybox",
        "latest",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        true,
    );
    let root = tempfile::tempdir().expect("store root");
    let puller = new_puller(root.path());
    let by_tag = puller
        .pull(&reg.reference("test/busybox", ""), None)
        .expect("pull by default tag");
    assert_eq!(by_tag.blobs_downloaded, 3);
    let by_digest = puller
        .pull(
            &reg.reference("test/busybox", &format!("@{}", pushed.manifest)),
            None,
        )
        .expect("pull by digest");
    assert_eq!(by_digest.image.id, by_tag.image.id);
    assert_eq!(
        by_digest.blobs_downloaded, 0,
        "everything was already stored"
    );
    let digest_name = format!("{}/test/busybox@{}", reg.addr, pushed.manifest);
    assert!(by_digest.image.repo_digests.contains(&digest_name));
    assert_eq!(puller.store().images().expect("list").len(), 1);

    let wrong = Digest::of(b"no such manifest");
    let err = puller
        .pull(&reg.reference("test/busybox", &format!("@{wrong}")), None)
        .expect_err("unknown digest");
    assert!(
        matches!(
            err,
            PullError::Manifest {
                source: RegistryError::Status { status: 404, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn index_with_arm64_and_amd64_resolves_to_amd64() {
    let reg = Registry::start();
    let arm = push_image(
        &reg,
        "test/multiarch",
        "arm64",
        &[(tar_of(&[E::File("arch", b"arm64", 0o644)]), Comp::Gzip)],
        "arm64",
        false,
    );
    let amd = push_image(
        &reg,
        "test/multiarch",
        "amd64",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let size = |d: &Digest| {
        reg.agent
            .get(&format!(
                "http://{}/v2/test/multiarch/manifests/{d}",
                reg.addr
            ))
            .set("Accept", oci::OCI_MANIFEST)
            .call()
            .expect("manifest")
            .header("Content-Length")
            .and_then(|l| l.parse::<u64>().ok())
            .expect("content length")
    };
    let entry = |d: &Digest, arch: &str| {
        serde_json::json!({"mediaType": oci::OCI_MANIFEST, "digest": d.to_string(), "size": size(d),
            "platform": {"architecture": arch, "os": "linux"}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX,
        "manifests": [entry(&arm.manifest, "arm64"), entry(&amd.manifest, "amd64")]});
    let index = serde_json::to_vec(&index).expect("index json");
    let index_digest = reg.push_manifest("test/multiarch", "multi", oci::OCI_INDEX, &index);

    let root = tempfile::tempdir().expect("store root");
    let puller = new_puller(root.path());
    let out = puller
        .pull(&reg.reference("test/multiarch", ":multi"), None)
        .expect("pull index");
    assert_eq!(out.image.id, amd.config);
    assert_eq!(out.image.manifest_digest, amd.manifest);
    assert!(out
        .image
        .repo_digests
        .contains(&format!("{}/test/multiarch@{index_digest}", reg.addr)));
    assert!(
        !puller.store().has_blob(&arm.layers[0]),
        "the arm64 layer was not fetched"
    );
}

#[test]
fn corrupted_blob_is_rejected_and_leaves_nothing() {
    let reg = Registry::start();
    let pushed = push_image(
        &reg,
        "test/corrupt",
        "v1",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let data = reg.blob_data(&pushed.layers[0]);
    let mut bytes = fs::read(&data).expect("registry blob data");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, &bytes).expect("corrupt registry blob");

    let root = tempfile::tempdir().expect("store root");
    let puller = new_puller(root.path());
    let err = puller
        .pull(&reg.reference("test/corrupt", ":v1"), None)
        .expect_err("corrupt layer must fail");
    assert!(
        matches!(&err, PullError::Blob { digest, source: RegistryError::DigestMismatch { .. } } if *digest == pushed.layers[0]),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&pushed.layers[0].to_string()),
        "message names the blob: {err}"
    );
    assert_nothing_left(puller.store(), &pushed.layers[0]);
}

/// Whether a layer error is the one a hostile case must produce.
type IsExpected = fn(&LayerError) -> bool;

#[test]
fn hostile_layers_are_rejected_and_leave_nothing() {
    let reg = Registry::start();
    let outside = tempfile::tempdir().expect("outside dir");
    let outside_link = outside.path().display().to_string();
    let cases: Vec<(&str, Vec<u8>, IsExpected)> = vec![
        (
            "dotdot",
            tar_of(&[E::File("ok", b"x", 0o644), E::File("../evil", b"x", 0o644)]),
            |e| matches!(e, LayerError::Unsafe { reason, .. } if reason.contains("..")),
        ),
        (
            "absolute",
            tar_of(&[E::File("/tmp/moat-evil-abs", b"x", 0o644)]),
            |e| matches!(e, LayerError::Unsafe { reason, .. } if reason.contains("absolute")),
        ),
        (
            "device",
            tar_of(&[E::Dir("dev"), E::CharDev("dev/null")]),
            |e| matches!(e, LayerError::DeviceNode { .. }),
        ),
        (
            "symlink",
            tar_of(&[
                E::Symlink("link", &outside_link),
                E::File("link/evil", b"x", 0o644),
            ]),
            |e| matches!(e, LayerError::Unsafe { reason, .. } if reason.contains("symlink")),
        ),
    ];
    for (name, tar, expected) in cases {
        let pushed = push_image(
            &reg,
            "test/hostile",
            name,
            &[(tar, Comp::Gzip)],
            "amd64",
            false,
        );
        let root = tempfile::tempdir().expect("store root");
        let puller = new_puller(root.path());
        let err = puller
            .pull(&reg.reference("test/hostile", &format!(":{name}")), None)
            .expect_err(name);
        match &err {
            PullError::Store(StoreError::Layer { source, .. }) => {
                assert!(expected(source), "{name}: {source:?}")
            }
            other => panic!("{name}: unexpected error {other:?}"),
        }
        assert_nothing_left(puller.store(), &pushed.layers[0]);
        assert!(
            !root
                .path()
                .parent()
                .expect("tmp parent")
                .join("evil")
                .exists(),
            "{name}: ../evil written"
        );
    }
    assert!(!Path::new("/tmp/moat-evil-abs").exists());
    assert_eq!(
        dir_entries(outside.path()),
        Vec::<String>::new(),
        "nothing written through the symlink"
    );
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let reg = Registry::start();
    let big: Vec<u8> = (0..4u32 << 20)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect();
    let layers = [
        (busybox_layer(), Comp::Gzip),
        (tar_of(&[E::File("big", &big, 0o644)]), Comp::None),
    ];
    push_image(&reg, "test/concurrent", "v1", &layers, "amd64", false);
    let root = tempfile::tempdir().expect("store root");
    let puller = Arc::new(new_puller(root.path()));
    let r = reg.reference("test/concurrent", ":v1");
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (p, r) = (Arc::clone(&puller), r.clone());
            std::thread::spawn(move || p.pull(&r, None).expect("concurrent pull"))
        })
        .collect();
    let outs: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("pull thread"))
        .collect();
    let total: usize = outs.iter().map(|o| o.blobs_downloaded).sum();
    assert_eq!(total, 4, "manifest, config and two layers, once each");
    assert_eq!(puller.store().blobs_written(), 4);
    assert!(outs.windows(2).all(|w| w[0].image.id == w[1].image.id));
}

/// A front for the registry that demands authentication: `Bearer` sends clients to its own
/// `/token` endpoint (which wants basic `user:pass`), `Basic` wants `user:pass` on every request.
#[test]
fn bearer_token_flow_and_basic_auth_are_followed() {
    let reg = Registry::start();
    let pushed = push_image(
        &reg,
        "test/auth",
        "v1",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let creds = Credentials::Basic {
        username: "user".into(),
        password: "pass".into(),
    };

    for bearer in [true, false] {
        let proxy = start_auth_proxy(reg.addr.clone(), bearer);
        let r = Reference::parse(&format!("{}/test/auth:v1", proxy.addr)).expect("proxy reference");

        let root = tempfile::tempdir().expect("store root");
        let anon = new_puller(root.path())
            .pull(&r, None)
            .expect_err("anonymous pull is refused");
        assert!(
            matches!(
                anon,
                PullError::Manifest {
                    source: RegistryError::Unauthorized { .. },
                    ..
                }
            ),
            "bearer={bearer}: {anon:?}"
        );

        let root = tempfile::tempdir().expect("store root");
        let out = new_puller(root.path())
            .pull(&r, Some(&creds))
            .expect("authenticated pull");
        assert_eq!(out.image.id, pushed.config);
        if bearer {
            // One refused anonymous attempt, then one token for the whole authenticated pull.
            assert_eq!(
                proxy.token_requests.load(Ordering::SeqCst),
                2,
                "token is cached per repository"
            );
        }
    }
}

#[test]
fn garbage_collection_keeps_layers_shared_with_remaining_images() {
    let reg = Registry::start();
    let extra = tar_of(&[E::File("extra", b"only in b", 0o644)]);
    let a = push_image(
        &reg,
        "test/gc-a",
        "v1",
        &[(busybox_layer(), Comp::Gzip)],
        "amd64",
        false,
    );
    let b = push_image(
        &reg,
        "test/gc-b",
        "v1",
        &[(busybox_layer(), Comp::Gzip), (extra, Comp::Gzip)],
        "amd64",
        false,
    );
    let root = tempfile::tempdir().expect("store root");
    let puller = new_puller(root.path());
    puller
        .pull(&reg.reference("test/gc-a", ":v1"), None)
        .expect("pull a");
    let out_b = puller
        .pull(&reg.reference("test/gc-b", ":v1"), None)
        .expect("pull b");
    assert_eq!(
        out_b.blobs_downloaded, 3,
        "b's shared busybox layer is not downloaded again"
    );
    let store = puller.store();
    assert_eq!(
        dir_entries(&root.path().join("layers")).len(),
        2,
        "the busybox layer is unpacked once"
    );

    assert!(store.remove_image(&b.config).expect("remove b"));
    let report = store.collect_garbage().expect("gc");
    assert_eq!((report.blobs_removed, report.layers_removed), (3, 1));
    assert!(
        store.layer_path(&a.diff_ids[0]).is_dir(),
        "shared layer kept for a"
    );
    assert!(!store.layer_path(&b.diff_ids[1]).exists());
    assert!(
        store.has_blob(&a.layers[0]) && store.has_blob(&a.config) && store.has_blob(&a.manifest)
    );

    assert!(store.remove_image(&a.config).expect("remove a"));
    store.collect_garbage().expect("gc");
    assert_eq!(
        dir_entries(&root.path().join("layers")),
        Vec::<String>::new()
    );
    assert_eq!(
        dir_entries(&root.path().join("blobs/sha256")),
        Vec::<String>::new()
    );
}
