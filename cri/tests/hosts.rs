//! Per-registry host settings (hosts.toml) against real registries (Debian's `docker-registry`)
//! on 127.0.0.1: HTTPS with a CA the test makes with `openssl`, skip_verify, mirrors that replace
//! their registry, capabilities, and plain HTTP refused where nothing allows it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_cri::hosts::{Capability, RegistryHosts};
use moat_cri::pull::{PullError, PullOutcome, Puller};
use moat_cri::reference::Reference;
use moat_cri::registry::{Credentials, RegistryClient, RegistryError, RegistryOptions};
use moat_cri::store::Store;

mod common;
use common::*;

/// A registry name that exists nowhere: only its hosts.toml can make it reachable.
const UPSTREAM: &str = "upstream.moat-test.invalid:5000";

fn layers() -> Vec<(Vec<u8>, Comp)> {
    vec![
        (busybox_layer(), Comp::Gzip),
        (
            tar_of(&[
                E::Dir("etc"),
                E::File("etc/motd", b"over hosts.toml\n", 0o644),
            ]),
            Comp::Zstd,
        ),
    ]
}

/// Writes `<dir>/<namespace>/hosts.toml`.
fn write_hosts(dir: &Path, namespace: &str, text: &str) {
    let ns = dir.join(namespace);
    fs::create_dir_all(&ns).expect("namespace dir");
    fs::write(ns.join("hosts.toml"), text).expect("write hosts.toml");
}

/// A puller with a fresh store under `root`, reaching registries as `hosts_dir` says.
fn puller(root: &Path, hosts_dir: &Path) -> Puller {
    let hosts = RegistryHosts::load(hosts_dir, true, Vec::new()).expect("load hosts dir");
    let store = Arc::new(Store::open(root).expect("open store"));
    Puller::new(
        RegistryClient::new(RegistryOptions {
            hosts,
            ..RegistryOptions::default()
        }),
        store,
    )
}

fn pull(hosts_dir: &Path, image: &str) -> Result<PullOutcome, PullError> {
    let root = tempfile::tempdir().expect("store root");
    let r = Reference::parse(image).expect("valid reference");
    puller(root.path(), hosts_dir).pull(&r, None)
}

/// The registry error under a pull error.
fn registry_error(e: &PullError) -> &RegistryError {
    match e {
        PullError::Manifest { source, .. } | PullError::Blob { source, .. } => source,
        other => panic!("not a registry error: {other:?}"),
    }
}

/// The GET requests `reg` logged, once at least `min` have arrived (the access log is written as
/// each request ends).
fn requests_after(reg: &Registry, min: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = reg.requests();
        if r.len() >= min || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn https_pull_trusts_the_ca_named_in_hosts_toml() {
    let certs = TestCerts::new();
    let reg = Registry::start_with(&RegistrySpec {
        tls: Some(&certs),
        ..RegistrySpec::default()
    });
    let pushed = push_image(&reg, "test/tls", "v1", &layers(), "amd64", false);
    let hosts = tempfile::tempdir().expect("hosts dir");
    // By IP, the CA beside hosts.toml (a relative path).
    write_hosts(
        hosts.path(),
        &reg.addr,
        &format!("server = \"https://{}\"\nca = \"ca.pem\"\n", reg.addr),
    );
    fs::copy(&certs.ca, hosts.path().join(&reg.addr).join("ca.pem")).expect("copy CA");
    // By name, with only a top-level CA: a loopback registry whose file asks for TLS is HTTPS.
    let port = reg.addr.rsplit_once(':').expect("port").1;
    write_hosts(
        hosts.path(),
        &format!("localhost:{port}"),
        &format!("ca = [\"{}\"]\n", certs.ca.display()),
    );

    let out = pull(hosts.path(), &format!("{}/test/tls:v1", reg.addr)).expect("pull over HTTPS");
    assert_eq!(out.image.id, pushed.config);
    assert_eq!(out.blobs_downloaded, 4, "manifest, config, two layers");
    let out = pull(
        hosts.path(),
        &format!("localhost:{port}/test/tls@{}", pushed.manifest),
    )
    .expect("pull over HTTPS by name and digest");
    assert_eq!(out.image.id, pushed.config);
}

#[test]
fn https_without_the_ca_fails_with_a_certificate_error() {
    let certs = TestCerts::new();
    let reg = Registry::start_with(&RegistrySpec {
        tls: Some(&certs),
        ..RegistrySpec::default()
    });
    push_image(&reg, "test/tls", "v1", &layers(), "amd64", false);
    let image = format!("{}/test/tls:v1", reg.addr);
    for ca in [None, Some(&certs.other_ca)] {
        let hosts = tempfile::tempdir().expect("hosts dir");
        let mut text = format!("server = \"https://{}\"\n", reg.addr);
        if let Some(ca) = ca {
            text.push_str(&format!("ca = \"{}\"\n", ca.display()));
        }
        write_hosts(hosts.path(), &reg.addr, &text);
        let err = pull(hosts.path(), &image).expect_err("untrusted certificate");
        let msg = moat_cri::error_chain(&err);
        assert!(
            matches!(registry_error(&err), RegistryError::Certificate { url, .. }
                if url.starts_with(&format!("https://{}/v2/test/tls/manifests/v1", reg.addr))),
            "{msg}"
        );
        assert!(
            msg.contains("certificate")
                && msg.contains("not trusted")
                && msg.contains("UnknownIssuer"),
            "{msg}"
        );
    }
}

#[test]
fn skip_verify_accepts_an_untrusted_certificate() {
    let certs = TestCerts::new();
    let reg = Registry::start_with(&RegistrySpec {
        tls: Some(&certs),
        ..RegistrySpec::default()
    });
    let pushed = push_image(&reg, "test/tls", "v1", &layers(), "amd64", false);
    let hosts = tempfile::tempdir().expect("hosts dir");
    write_hosts(
        hosts.path(),
        &reg.addr,
        &format!("server = \"https://{}\"\nskip_verify = true\n", reg.addr),
    );
    let out = pull(hosts.path(), &format!("{}/test/tls:v1", reg.addr)).expect("skip_verify");
    assert_eq!(out.image.id, pushed.config);
}

#[test]
fn mirror_replaces_its_registry_and_a_dead_mirror_is_not_bypassed() {
    let certs = TestCerts::new();
    let mirror = Registry::start_with(&RegistrySpec {
        tls: Some(&certs),
        access_log: true,
    });
    // `server` names a registry that holds the image too: had it been tried, a pull would work.
    let upstream = Registry::start_with(&RegistrySpec {
        access_log: true,
        ..RegistrySpec::default()
    });
    let pushed = push_image(&mirror, "test/mirrored", "v1", &layers(), "amd64", false);
    push_image(&upstream, "test/mirrored", "v1", &layers(), "amd64", false);
    let hosts = tempfile::tempdir().expect("hosts dir");
    write_hosts(
        hosts.path(),
        UPSTREAM,
        &format!(
            "server = \"{}\"\n\n[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
            upstream.base(),
            mirror.addr,
            certs.ca.display()
        ),
    );
    let image = format!("{UPSTREAM}/test/mirrored:v1");

    let out = pull(hosts.path(), &image).expect("pull served by the mirror");
    assert_eq!(out.image.id, pushed.config);
    assert_eq!(out.image.repo_tags, [image.as_str()], "named as asked");
    let seen = requests_after(&mirror, 4);
    assert_eq!(seen.len(), 4, "manifest, config, two layers: {seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.contains("ns=upstream.moat-test.invalid%3A5000")),
        "the mirror is told which registry it stands in for: {seen:?}"
    );

    drop(mirror);
    let err = pull(hosts.path(), &image).expect_err("the only mirror is down");
    assert!(
        matches!(registry_error(&err), RegistryError::Transport { url, .. } if url.contains("/test/mirrored/manifests/v1")),
        "{}",
        moat_cri::error_chain(&err)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        upstream.requests(),
        Vec::<String>::new(),
        "the upstream was never asked"
    );
}

#[test]
fn capabilities_route_tags_and_digests_to_their_hosts() {
    let logged = RegistrySpec {
        access_log: true,
        ..RegistrySpec::default()
    };
    let (pull_only, full) = (Registry::start_with(&logged), Registry::start_with(&logged));
    let pushed = push_image(&pull_only, "test/caps", "v1", &layers(), "amd64", false);
    push_image(&full, "test/caps", "v1", &layers(), "amd64", false);
    let hosts = tempfile::tempdir().expect("hosts dir");
    write_hosts(
        hosts.path(),
        "caps.moat-test.invalid",
        &format!(
            "[host.\"{}\"]\ncapabilities = [\"pull\"]\n[host.\"{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            pull_only.base(),
            full.base()
        ),
    );
    write_hosts(
        hosts.path(),
        "pullonly.moat-test.invalid",
        &format!(
            "[host.\"{}\"]\ncapabilities = [\"pull\"]\n",
            pull_only.base()
        ),
    );

    // The tag is resolved by the one host that may; content comes from the first that may pull.
    let out = pull(hosts.path(), "caps.moat-test.invalid/test/caps:v1").expect("pull by tag");
    assert_eq!(out.image.id, pushed.config);
    let full_seen = requests_after(&full, 1);
    assert_eq!(full_seen.len(), 1, "{full_seen:?}");
    assert!(full_seen[0].starts_with("GET /v2/test/caps/manifests/v1?"));
    let pull_seen = requests_after(&pull_only, 3);
    assert_eq!(pull_seen.len(), 3, "config and two layers: {pull_seen:?}");
    assert!(pull_seen.iter().all(|r| r.contains("/blobs/sha256:")));

    // No host may resolve: a tag cannot be pulled, a digest can.
    let err = pull(hosts.path(), "pullonly.moat-test.invalid/test/caps:v1").expect_err("tag");
    assert!(
        matches!(
            registry_error(&err),
            RegistryError::NoHost { registry, capability: Capability::Resolve }
                if registry == "pullonly.moat-test.invalid"
        ),
        "{}",
        moat_cri::error_chain(&err)
    );
    let out = pull(
        hosts.path(),
        &format!("pullonly.moat-test.invalid/test/caps@{}", pushed.manifest),
    )
    .expect("pull by digest from a pull-only mirror");
    assert_eq!(out.image.id, pushed.config);
}

/// A loopback HTTP server answering every request with `reply(path, authorization)`, counting
/// requests.
fn fake_registry(
    reply: impl Fn(&str, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake registry");
    let addr = listener.local_addr().expect("addr").to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone conn"));
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut auth = String::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = v.trim().to_owned();
                    }
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let _ = conn.write_all(reply(path, &auth).as_bytes());
        }
    });
    (addr, count)
}

fn response(status: &str, headers: &[(&str, String)]) -> String {
    let mut r = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

#[test]
fn plain_http_to_an_unmarked_host_is_refused_before_any_request() {
    let no_hosts = tempfile::tempdir().expect("empty hosts dir");
    // A token realm on a host that is neither loopback nor marked insecure.
    let (realm_reg, realm_seen) = fake_registry(|_, _| {
        response(
            "401 Unauthorized",
            &[(
                "WWW-Authenticate",
                r#"Bearer realm="http://auth.moat-test.invalid/token",service="x""#.to_owned(),
            )],
        )
    });
    let err = pull(no_hosts.path(), &format!("{realm_reg}/test/x:v1")).expect_err("realm");
    assert!(
        matches!(registry_error(&err), RegistryError::PlainHttp { url }
            if url.starts_with("http://auth.moat-test.invalid/token?")),
        "{}",
        moat_cri::error_chain(&err)
    );
    assert!(
        moat_cri::error_chain(&err).contains("refusing plain HTTP"),
        "{}",
        moat_cri::error_chain(&err)
    );
    assert_eq!(
        realm_seen.load(Ordering::SeqCst),
        1,
        "only the manifest request"
    );

    // A redirect to such a host.
    let (redirecting, _) = fake_registry(|_, _| {
        response(
            "307 Temporary Redirect",
            &[("Location", "http://blobs.moat-test.invalid/x".to_owned())],
        )
    });
    let err = pull(no_hosts.path(), &format!("{redirecting}/test/x:v1")).expect_err("redirect");
    assert!(
        matches!(registry_error(&err), RegistryError::PlainHttp { url } if url == "http://blobs.moat-test.invalid/x"),
        "{}",
        moat_cri::error_chain(&err)
    );

    // A redirect to a loopback registry is followed.
    let reg = Registry::start();
    let pushed = push_image(&reg, "test/x", "v1", &layers(), "amd64", false);
    let target = reg.base();
    let (forwarding, forwarded) = fake_registry(move |path, _| {
        response("302 Found", &[("Location", format!("{target}{path}"))])
    });
    let out = pull(no_hosts.path(), &format!("{forwarding}/test/x:v1")).expect("redirected");
    assert_eq!(out.image.id, pushed.config);
    assert_eq!(forwarded.load(Ordering::SeqCst), 4);
}

#[test]
fn a_token_realm_on_another_host_gets_the_credentials_and_a_redirect_does_not() {
    let reg = Registry::start();
    let pushed = push_image(&reg, "test/auth", "v1", &layers(), "amd64", false);
    // The token service: a token for `user:pass` only.
    let (realm, _) = fake_registry(|_, auth| {
        if auth == "Basic dXNlcjpwYXNz" {
            let body = r#"{"token":"tok1"}"#;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            response("401 Unauthorized", &[])
        }
    });
    // The storage a registry redirects to (on another port): it counts requests that carry an
    // Authorization header, then sends them on to the real registry.
    let real = reg.base();
    let leaked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&leaked);
    let (storage, stored) = fake_registry(move |path, auth| {
        if !auth.is_empty() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        response(
            "307 Temporary Redirect",
            &[("Location", format!("{real}{path}"))],
        )
    });
    // The registry: asks for a token from the realm, then sends the token's holder to storage.
    let (front, _) = fake_registry(move |path, auth| match auth {
        "Bearer tok1" => response(
            "307 Temporary Redirect",
            &[("Location", format!("http://{storage}{path}"))],
        ),
        _ => response(
            "401 Unauthorized",
            &[(
                "WWW-Authenticate",
                format!(r#"Bearer realm="http://{realm}/token",service="fake""#),
            )],
        ),
    });
    let no_hosts = tempfile::tempdir().expect("empty hosts dir");
    let root = tempfile::tempdir().expect("store root");
    let r = Reference::parse(&format!("{front}/test/auth:v1")).expect("reference");
    let creds = Credentials::Basic {
        username: "user".into(),
        password: "pass".into(),
    };
    let out = puller(root.path(), no_hosts.path())
        .pull(&r, Some(&creds))
        .expect("pull with a token from another host");
    assert_eq!(out.image.id, pushed.config);
    assert_eq!(
        stored.load(Ordering::SeqCst),
        4,
        "manifest, config, two layers"
    );
    assert_eq!(
        leaked.load(Ordering::SeqCst),
        0,
        "the token stayed with its host"
    );
    let err = pull(no_hosts.path(), &format!("{front}/test/auth:v1")).expect_err("anonymous");
    assert!(
        matches!(registry_error(&err), RegistryError::Unauthorized { .. }),
        "{}",
        moat_cri::error_chain(&err)
    );
}
