//! Image pulls against a real registry (Debian's `docker-registry`) on 127.0.0.1, holding images
//! the tests build and push themselves through the registry HTTP API.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_cri::digest::Digest;
use moat_cri::layer::LayerError;
use moat_cri::oci;
use moat_cri::pull::{PullError, Puller};
use moat_cri::reference::Reference;
use moat_cri::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use moat_cri::store::{Store, StoreError};

const REGISTRY_BINS: &[&str] = &[
    "/usr/bin/docker-registry",
    "/usr/local/bin/docker-registry",
    "/usr/bin/registry",
];

/// A `docker-registry serve` child with its own config and storage; killed on drop.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    agent: ureq::Agent,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Registry {
    /// Starts a registry; a start that lost its port to another process is tried again.
    fn start() -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(reg) => return reg,
                Err(log) => last = log,
            }
        }
        panic!("docker-registry exited before answering, three times; last log:\n{last}");
    }

    fn try_start() -> Result<Self, String> {
        let bin = REGISTRY_BINS.iter().find(|b| Path::new(b).is_file()).unwrap_or_else(|| {
            panic!(
                "docker-registry not found (looked at {REGISTRY_BINS:?}): install the Debian package \
                 `docker-registry` (scripts/setup.sh does)"
            )
        });
        let dir = tempfile::tempdir().expect("tempdir for registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let cfg_path = dir.path().join("config.yml");
        fs::write(&cfg_path, config).expect("write registry config");
        let log = fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let mut reg = Self {
            child,
            dir,
            addr,
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log =
                    fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
                return Err(format!("exit status {status}\n{log}"));
            }
            if reg
                .agent
                .get(&format!("http://{}/v2/", reg.addr))
                .call()
                .is_ok()
            {
                return Ok(reg);
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {} within 30s",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        let resp = self
            .agent
            .post(&format!("http://{}/v2/{repo}/blobs/uploads/", self.addr))
            .call()
            .expect("start blob upload");
        let loc = resp.header("Location").expect("upload location").to_owned();
        let loc = if loc.starts_with("http") {
            loc
        } else {
            format!("http://{}{loc}", self.addr)
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        self.agent
            .put(&format!("{loc}{sep}digest={d}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .expect("finish blob upload");
        d
    }

    fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Digest {
        self.agent
            .put(&format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                self.addr
            ))
            .set("Content-Type", media_type)
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("push manifest {repo}:{reference}: {e}"));
        Digest::of(bytes)
    }

    /// Where the registry keeps a blob's bytes (its filesystem storage layout).
    fn blob_data(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    fn reference(&self, repo: &str, rest: &str) -> Reference {
        Reference::parse(&format!("{}/{repo}{rest}", self.addr)).expect("valid test reference")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tar entry of a test layer; names are raw bytes so hostile ones can be written.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    CharDev(&'a str),
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match e {
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, &[])
            }
            E::File(n, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, data)
            }
            E::Symlink(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).expect("link name");
                (n, &[])
            }
            E::CharDev(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(1).expect("major");
                h.set_device_minor(3).expect("minor");
                (n, &[])
            }
        };
        let raw = name.as_bytes();
        assert!(raw.len() < 100, "test entry names are short");
        let gnu = h.as_gnu_mut().expect("gnu header");
        gnu.name = [0; 100];
        gnu.name[..raw.len()].copy_from_slice(raw);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip finish")
}

#[derive(Clone, Copy)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

struct Pushed {
    manifest: Digest,
    config: Digest,
    layers: Vec<Digest>,
    diff_ids: Vec<Digest>,
}

/// Pushes an image of `layers` (uncompressed tars) as `repo:tag`, OCI or Docker v2 media types.
fn push_image(
    reg: &Registry,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, Comp)],
    arch: &str,
    docker: bool,
) -> Pushed {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for (tar, comp) in layers {
        diff_ids.push(Digest::of(tar));
        let (blob, mt) = match (comp, docker) {
            (Comp::None, false) => (tar.clone(), oci::OCI_LAYER_TAR),
            (Comp::Gzip, false) => (gzip(tar), oci::OCI_LAYER_GZIP),
            (Comp::Gzip, true) => (gzip(tar), oci::DOCKER_LAYER_GZIP),
            (Comp::Zstd, _) => (
                zstd::encode_all(&tar[..], 3).expect("zstd"),
                oci::OCI_LAYER_ZSTD,
            ),
            (Comp::None, true) => (tar.clone(), "application/vnd.docker.image.rootfs.diff.tar"),
        };
        let d = reg.push_blob(repo, &blob);
        layer_digests.push(d.clone());
        descs.push(
            serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": blob.len()}),
        );
    }
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = reg.push_blob(repo, &config);
    let (mt, cmt) = if docker {
        (oci::DOCKER_MANIFEST, oci::DOCKER_CONFIG)
    } else {
        (oci::OCI_MANIFEST, oci::OCI_CONFIG)
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cmt, "digest": config_digest.to_string(), "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = reg.push_manifest(repo, tag, mt, &manifest);
    Pushed {
        manifest: manifest_digest,
        config: config_digest,
        layers: layer_digests,
        diff_ids,
    }
}

fn busybox_layer() -> Vec<u8> {
    let busybox = fs::read("/bin/busybox")
        .expect("host /bin/busybox (Debian busybox-static; scripts/setup.sh installs it)");
    tar_of(&[
        E::Dir("bin"),
        E::File("bin/busybox", &busybox, 0o755),
        E::Symlink("bin/sh", "busybox"),
    ])
}

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
fn assert_nothing_left(root: &Path, refused_blob: &Digest) {
    assert_eq!(
        dir_entries(&root.join("images")),
        Vec::<String>::new(),
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

    // Each layer is unpacked on its own, whiteouts kept as markers.
    let store = puller.store();
    let lower_dir = store.layer_path(&pushed.diff_ids[1]);
    assert_eq!(
        fs::read(lower_dir.join("etc/hello")).expect("lower file"),
        b"hello\n"
    );
    let upper_dir = store.layer_path(&pushed.diff_ids[2]);
    assert!(upper_dir.join("etc/.wh.hello").exists());
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
    assert_nothing_left(root.path(), &pushed.layers[0]);
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
        assert_nothing_left(root.path(), &pushed.layers[0]);
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
struct AuthProxy {
    addr: String,
    token_requests: Arc<AtomicUsize>,
}

fn start_auth_proxy(upstream: String, bearer: bool) -> AuthProxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr").to_string();
    let token_requests = Arc::new(AtomicUsize::new(0));
    let (a, tr) = (addr.clone(), Arc::clone(&token_requests));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (up, a, tr) = (upstream.clone(), a.clone(), Arc::clone(&tr));
            std::thread::spawn(move || serve_auth(conn, &up, &a, bearer, &tr));
        }
    });
    AuthProxy {
        addr,
        token_requests,
    }
}

fn serve_auth(
    conn: TcpStream,
    upstream: &str,
    me: &str,
    bearer: bool,
    token_requests: &AtomicUsize,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone conn"));
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (mut auth, mut accept) = (String::new(), String::from("*/*"));
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "authorization" => auth = v.trim().to_owned(),
                    "accept" => accept = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let basic = "Basic dXNlcjpwYXNz"; // user:pass
        let reply =
            |out: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
                let mut r = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    r.push_str(&format!("{k}: {v}\r\n"));
                }
                r.push_str("\r\n");
                out.write_all(r.as_bytes())
                    .and_then(|()| out.write_all(body))
                    .is_ok()
            };
        if path.starts_with("/token") {
            token_requests.fetch_add(1, Ordering::SeqCst);
            let ok = auth == basic && path.contains("scope=repository%3Atest%2Fauth%3Apull");
            let (status, body): (&str, &[u8]) = if ok {
                ("200 OK", br#"{"token":"tok123"}"#)
            } else {
                ("401 Unauthorized", b"{}")
            };
            if !reply(&mut out, status, &[], body) {
                return;
            }
            continue;
        }
        let authorized = if bearer {
            auth == "Bearer tok123"
        } else {
            auth == basic
        };
        if !authorized {
            let challenge = if bearer {
                format!(
                    r#"Bearer realm="http://{me}/token",service="test",scope="repository:test/auth:pull""#
                )
            } else {
                r#"Basic realm="test""#.to_owned()
            };
            if !reply(
                &mut out,
                "401 Unauthorized",
                &[("WWW-Authenticate".into(), challenge)],
                b"",
            ) {
                return;
            }
            continue;
        }
        let resp = match ureq::get(&format!("http://{upstream}{path}"))
            .set("Accept", &accept)
            .call()
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(_) => return,
        };
        let status = format!("{} {}", resp.status(), resp.status_text());
        let headers: Vec<(String, String)> = ["Content-Type", "Docker-Content-Digest"]
            .iter()
            .filter_map(|k| resp.header(k).map(|v| ((*k).to_owned(), v.to_owned())))
            .collect();
        let mut body = Vec::new();
        if resp.into_reader().read_to_end(&mut body).is_err()
            || !reply(&mut out, &status, &headers, &body)
        {
            return;
        }
    }
}

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
