//! Helpers shared by the integration tests: a real `docker-registry` on 127.0.0.1 and images
//! the tests build and push themselves.
#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod daemon;
pub mod pod;
#[allow(unused_imports)] // not every test file starts a daemon
pub use daemon::Daemon;

use moat_cri::digest::Digest;
use moat_cri::oci;
use moat_cri::reference::Reference;

pub const REGISTRY_BINS: &[&str] = &[
    "/usr/bin/docker-registry",
    "/usr/local/bin/docker-registry",
    "/usr/bin/registry",
];

/// A `docker-registry serve` child with its own config and storage; killed on drop.
pub struct Registry {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// An agent that reaches it (trusting its CA when it serves HTTPS).
    pub agent: ureq::Agent,
}

/// How a test registry serves.
#[derive(Default)]
pub struct RegistrySpec<'a> {
    /// Serve HTTPS with these certificates.
    pub tls: Option<&'a TestCerts>,
    /// Log every request to `registry.log` (see [`Registry::requests`]).
    pub access_log: bool,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Registry {
    /// Starts a plain-HTTP registry; a start that lost its port to another process is tried
    /// again.
    pub fn start() -> Self {
        Self::start_with(&RegistrySpec::default())
    }

    pub fn start_with(spec: &RegistrySpec<'_>) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start_with(spec) {
                Ok(reg) => return reg,
                Err(log) => last = log,
            }
        }
        panic!("docker-registry exited before answering, three times; last log:\n{last}");
    }

    pub fn try_start() -> Result<Self, String> {
        Self::try_start_with(&RegistrySpec::default())
    }

    pub fn try_start_with(spec: &RegistrySpec<'_>) -> Result<Self, String> {
        let bin = REGISTRY_BINS.iter().find(|b| Path::new(b).is_file()).unwrap_or_else(|| {
            panic!(
                "docker-registry not found (looked at {REGISTRY_BINS:?}): install the Debian package \
                 `docker-registry` (scripts/setup.sh does)"
            )
        });
        let dir = tempfile::tempdir().expect("tempdir for registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: {addr}\n",
            !spec.access_log,
            dir.path().join("data").display()
        );
        if let Some(certs) = spec.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.cert.display(),
                certs.key.display()
            ));
        }
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
        let mut agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30));
        if let Some(certs) = spec.tls {
            agent = agent.tls_config(certs.client_config());
        }
        let mut reg = Self {
            child,
            dir,
            addr,
            scheme: if spec.tls.is_some() { "https" } else { "http" },
            agent: agent.build(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log =
                    fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
                return Err(format!("exit status {status}\n{log}"));
            }
            if reg.agent.get(&format!("{}/v2/", reg.base())).call().is_ok() {
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

    /// `scheme://addr`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The GET request lines (`GET /v2/... HTTP/1.1`) of its access log, without the readiness
    /// probes (`/v2/`) and pushes: empty unless started with `access_log`.
    pub fn requests(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split('"').nth(1))
            .filter(|r| r.starts_with("GET /v2/") && !r.starts_with("GET /v2/ "))
            .map(str::to_owned)
            .collect()
    }

    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        let resp = self
            .agent
            .post(&format!("{}/v2/{repo}/blobs/uploads/", self.base()))
            .call()
            .expect("start blob upload");
        let loc = resp.header("Location").expect("upload location").to_owned();
        let loc = if loc.starts_with("http") {
            loc
        } else {
            format!("{}{loc}", self.base())
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        self.agent
            .put(&format!("{loc}{sep}digest={d}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .expect("finish blob upload");
        d
    }

    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Digest {
        self.agent
            .put(&format!("{}/v2/{repo}/manifests/{reference}", self.base()))
            .set("Content-Type", media_type)
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("push manifest {repo}:{reference}: {e}"));
        Digest::of(bytes)
    }

    /// Where the registry keeps a blob's bytes (its filesystem storage layout).
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    pub fn reference(&self, repo: &str, rest: &str) -> Reference {
        Reference::parse(&format!("{}/{repo}{rest}", self.addr)).expect("valid test reference")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost that it signed, made with the
/// `openssl` CLI; and a second CA that signed nothing.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A CA unrelated to the server's certificate.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install the Debian package `openssl` (scripts/setup.sh does)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCerts {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir for certificates");
        let d = dir.path();
        for (name, cn) in [("ca", "moat test CA"), ("other-ca", "moat other CA")] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-nodes",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        openssl(
            d,
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        Self {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            other_ca: d.join("other-ca.pem"),
            dir,
        }
    }

    /// A rustls client config trusting only [`Self::ca`].
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&self.ca).expect("CA file") {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

/// One tar entry of a test layer; names are raw bytes so hostile ones can be written.
pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    CharDev(&'a str),
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
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

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip finish")
}

#[derive(Clone, Copy)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub struct Pushed {
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
}

/// Pushes an image of `layers` (uncompressed tars) as `repo:tag`, OCI or Docker v2 media types.
pub fn push_image(
    reg: &Registry,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, Comp)],
    arch: &str,
    docker: bool,
) -> Pushed {
    let run = serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]});
    push_image_with(reg, repo, tag, layers, arch, docker, run)
}

/// [`push_image`] with `run` as the config's `config` object (Cmd, Env, User, ...).
pub fn push_image_with(
    reg: &Registry,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, Comp)],
    arch: &str,
    docker: bool,
    run: serde_json::Value,
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
        "config": run,
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

pub fn busybox_layer() -> Vec<u8> {
    let busybox = fs::read("/bin/busybox")
        .expect("host /bin/busybox (Debian busybox-static; scripts/setup.sh installs it)");
    tar_of(&[
        E::Dir("bin"),
        E::File("bin/busybox", &busybox, 0o755),
        E::Symlink("bin/sh", "busybox"),
    ])
}

/// An HTTP front of a registry that demands basic auth, or bearer tokens from its own `/token`
/// (issued for basic auth `user:pass` and scope `repository:test/auth:pull`).
pub struct AuthProxy {
    pub addr: String,
    pub token_requests: Arc<AtomicUsize>,
}

pub fn start_auth_proxy(upstream: String, bearer: bool) -> AuthProxy {
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
