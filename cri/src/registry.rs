//! A client of the OCI distribution API: manifests and blobs, anonymous, with basic auth, or
//! through the bearer-token flow (`WWW-Authenticate: Bearer realm=...` → token → retry), over
//! HTTP or HTTPS (rustls, ring), to the hosts [`RegistryHosts`] names for a registry.
//! May touch: the network, toward the configured hosts of a reference's registry, and the token
//! realms and redirect targets they name.
//! Never: hands out a manifest or blob byte whose sha256 was not checked against the digest asked
//! for; reads more than a descriptor's size or [`MAX_MANIFEST`] from a server; sends a request
//! over plain HTTP to a host that [`RegistryHosts::plain_http_allowed`] refuses; sends
//! credentials anywhere but to the configured hosts of the reference's registry and the token
//! realm they name (never along a redirect to another host).
//!
//! Hosts are tried in order ([`crate::hosts`] says which): a host that fails before its answer's
//! body is used gives way to the next; the error returned is the first host's. Redirects are
//! followed here (at most [`MAX_REDIRECTS`]), each target checked like the first URL. HTTPS trusts
//! the system's CA bundle plus the host's own CAs; one agent (connection pool and TLS settings) is
//! kept per host and TLS settings.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use url::Url;

use crate::digest::{Digest, Hashing};
use crate::hosts::{authority, BadUrl, Capability, Endpoint, RegistryHosts, Tls};
use crate::oci::MANIFEST_ACCEPT;
use crate::reference::Reference;

/// The largest manifest or token response read, in bytes.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;
/// Debian's bundle of the system's trusted CAs (package `ca-certificates`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the TLS certificate of {url} is not trusted (its hosts.toml may need a ca)")]
    Certificate {
        url: String,
        #[source]
        source: Box<rustls::Error>,
    },
    #[error("refusing plain HTTP to {url}: only loopback hosts and hosts marked insecure may be reached without TLS")]
    PlainHttp { url: String },
    #[error("no host configured for registry {registry} may {capability}")]
    NoHost {
        registry: String,
        capability: Capability,
    },
    #[error("{url} redirected {reason}")]
    Redirect { url: String, reason: &'static str },
    #[error(transparent)]
    Url(#[from] BadUrl),
    #[error("{url} answered status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} refused our credentials (401)")]
    Unauthorized { url: String },
    #[error("malformed WWW-Authenticate challenge {0:?}")]
    Challenge(String),
    #[error("token endpoint {realm} answered without a token")]
    Token { realm: String },
    #[error("cannot read response from {url}")]
    Read {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot store response from {url}")]
    Write {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("content from {url} has digest {actual}, expected {expected}")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob from {url} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
}

/// Credentials for one registry, as a CRI AuthConfig carries them.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// A registry token used as the bearer token directly.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::Bearer(_) => write!(f, "Bearer(<redacted>)"),
        }
    }
}

/// Per-client settings.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Which hosts serve each registry, their TLS settings, and where plain HTTP may go.
    pub hosts: RegistryHosts,
    /// A PEM bundle of CAs trusted for every HTTPS host (besides the host's own); `None` trusts
    /// only the hosts' own.
    pub system_roots: Option<PathBuf>,
}

impl Default for RegistryOptions {
    /// No per-registry settings (loopback over HTTP, the rest over HTTPS), the system's CAs.
    fn default() -> Self {
        Self {
            hosts: RegistryHosts::default(),
            system_roots: Some(SYSTEM_CA_BUNDLE.into()),
        }
    }
}

/// A manifest as the registry returned it, its digest checked.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A thread-safe registry client; bearer tokens are cached per host, repository and
/// credentials, agents per host and TLS settings.
#[derive(Debug)]
pub struct RegistryClient {
    hosts: RegistryHosts,
    provider: Arc<CryptoProvider>,
    /// The system's CAs, the base of every agent's trust.
    roots: RootCertStore,
    agents: Mutex<HashMap<(String, Tls), ureq::Agent>>,
    /// Bearer tokens by (host, repository, [`creds_fingerprint`]).
    tokens: Mutex<HashMap<(String, String, Digest), String>>,
}

/// The host a request is meant for: it alone gets the request's credentials and its TLS
/// settings.
struct Origin<'a> {
    authority: String,
    tls: &'a Tls,
}

impl<'a> Origin<'a> {
    fn of(host: &'a Endpoint) -> Self {
        Self {
            authority: host.authority(),
            tls: host.tls(),
        }
    }
}

/// A host's failure: whether the next host may be tried.
enum Failure {
    /// Nothing of the answer was used: the next host may serve the request.
    Next(RegistryError),
    /// The answer was partly used (a blob streamed to its sink): the request fails.
    Stop(RegistryError),
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Self {
        let roots = match &options.system_roots {
            Some(path) => system_roots(path),
            None => RootCertStore::empty(),
        };
        Self {
            hosts: options.hosts,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots,
            agents: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `op` on each host of `r` that can do `cap`, in order, until one succeeds or fails
    /// with [`Failure::Stop`]; if all fail, the first host's error.
    fn on_hosts<T>(
        &self,
        r: &Reference,
        cap: Capability,
        mut op: impl FnMut(&Endpoint) -> Result<T, Failure>,
    ) -> Result<T, RegistryError> {
        let hosts: Vec<Endpoint> = self
            .hosts
            .endpoints(r)?
            .into_iter()
            .filter(|e| e.can(cap))
            .collect();
        let mut first = None;
        for (i, host) in hosts.iter().enumerate() {
            match op(host) {
                Ok(v) => return Ok(v),
                Err(Failure::Stop(e)) => return Err(e),
                Err(Failure::Next(e)) => {
                    if hosts.len() > 1 {
                        tracing::warn!(
                            registry = r.registry(),
                            host = %host.url(),
                            error = %crate::error_chain(&e),
                            left = hosts.len() - i - 1,
                            "registry host failed"
                        );
                    }
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or_else(|| RegistryError::NoHost {
            registry: r.registry().to_owned(),
            capability: cap,
        }))
    }

    /// GETs the manifest `reference` (a tag or a digest) of `r`'s repository. A digest reference
    /// is checked against the bytes; for a tag, the registry's `Docker-Content-Digest` must match.
    /// A tag goes to hosts that may resolve, a digest to hosts that may pull.
    pub fn get_manifest(
        &self,
        r: &Reference,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<FetchedManifest, RegistryError> {
        let cap = match Digest::parse(reference) {
            Ok(_) => Capability::Pull,
            Err(_) => Capability::Resolve,
        };
        self.on_hosts(r, cap, |host| {
            self.manifest_from(host, r, reference, creds)
                .map_err(Failure::Next)
        })
    }

    fn manifest_from(
        &self,
        host: &Endpoint,
        r: &Reference,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = host.api_url(r.repository(), "manifests", reference);
        let resp = self.send(host, r, &url, MANIFEST_ACCEPT, creds)?;
        let content_type = Some(resp.content_type().to_owned()).filter(|c| !c.is_empty());
        let header_digest = resp.header("Docker-Content-Digest").map(str::to_owned);
        let bytes = read_limited(resp, &url, MAX_MANIFEST)?;
        let actual = Digest::of(&bytes);
        // A digest reference must match; for a tag, the registry's header must (one naming an
        // algorithm other than sha256 cannot be checked and is ignored).
        let expected = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => header_digest.as_deref().and_then(|h| Digest::parse(h).ok()),
        };
        if let Some(expected) = expected {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected,
                    actual,
                });
            }
        }
        Ok(FetchedManifest {
            digest: actual,
            content_type,
            bytes,
        })
    }

    /// GETs blob `digest` of size `size` into `sink`, checking its size and digest. On an error
    /// the sink has received unverified bytes: the caller must throw them away.
    pub fn get_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        creds: Option<&Credentials>,
        sink: &mut dyn Write,
    ) -> Result<(), RegistryError> {
        self.on_hosts(r, Capability::Pull, |host| {
            let url = host.api_url(r.repository(), "blobs", &digest.to_string());
            let resp = self
                .send(host, r, &url, "*/*", creds)
                .map_err(Failure::Next)?;
            read_blob(resp, url, digest, size, &mut *sink).map_err(Failure::Stop)
        })
    }

    /// Sends a GET to `host`, answering one authentication challenge if the registry poses one.
    fn send(
        &self,
        host: &Endpoint,
        r: &Reference,
        url: &str,
        accept: &str,
        creds: Option<&Credentials>,
    ) -> Result<ureq::Response, RegistryError> {
        // A token is reused only with the credentials that earned it: a request with other (or
        // no) credentials must not ride on someone else's access.
        let key = (
            host.authority(),
            r.repository().to_owned(),
            creds_fingerprint(creds),
        );
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let first = match (&cached, creds) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(Credentials::Bearer(t))) => Some(format!("Bearer {t}")),
            (None, _) => None,
        };
        let origin = Origin::of(host);
        let challenge = match self.get(&origin, url, accept, first.as_deref())? {
            Ok(resp) => return Ok(resp),
            Err(challenge) => challenge,
        };
        let auth = match parse_challenge(&challenge)? {
            Challenge::Basic => match creds {
                Some(Credentials::Basic { username, password }) => {
                    format!(
                        "Basic {}",
                        base64(format!("{username}:{password}").as_bytes())
                    )
                }
                _ => {
                    return Err(RegistryError::Unauthorized {
                        url: url.to_owned(),
                    })
                }
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", r.repository()));
                let token = self.fetch_token(host, &realm, service.as_deref(), &scope, creds)?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, token.clone());
                format!("Bearer {token}")
            }
        };
        match self.get(&origin, url, accept, Some(&auth))? {
            Ok(resp) => Ok(resp),
            Err(_) => Err(RegistryError::Unauthorized {
                url: url.to_owned(),
            }),
        }
    }

    /// One GET, following redirects: the response, or the `WWW-Authenticate` header of a 401.
    /// Every URL on the way is checked against the plain-HTTP policy before it is requested;
    /// `auth` and the TLS settings of `origin` go to `origin`'s host only, never to another host
    /// that a redirect names.
    fn get(
        &self,
        origin: &Origin<'_>,
        url: &str,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Result<ureq::Response, String>, RegistryError> {
        let default_tls = Tls::default();
        let mut url = parse_url(url)?;
        for _ in 0..=MAX_REDIRECTS {
            let here = authority(&url);
            match url.scheme() {
                "https" => {}
                "http" if self.hosts.plain_http_allowed(&here) => {}
                "http" => return Err(RegistryError::PlainHttp { url: url.into() }),
                _ => {
                    return Err(RegistryError::Redirect {
                        url: url.into(),
                        reason: "to a scheme other than http or https",
                    })
                }
            }
            let same = here == origin.authority;
            let agent = self.agent(here, if same { origin.tls } else { &default_tls });
            let mut req = agent.get(url.as_str()).set("Accept", accept);
            if let Some(a) = auth.filter(|_| same) {
                req = req.set("Authorization", a);
            }
            match req.call() {
                Ok(resp) if (300..400).contains(&resp.status()) => {
                    let Some(location) = resp.header("Location") else {
                        return Err(RegistryError::Redirect {
                            url: url.into(),
                            reason: "without a Location",
                        });
                    };
                    let next = url.join(location).map_err(|source| BadUrl {
                        url: location.to_owned(),
                        source,
                    })?;
                    tracing::debug!(from = %url, to = %next, "redirect");
                    url = next;
                }
                Ok(resp) => return Ok(Ok(resp)),
                Err(ureq::Error::Status(401, resp)) => {
                    return Ok(Err(resp
                        .header("WWW-Authenticate")
                        .unwrap_or_default()
                        .to_owned()))
                }
                Err(ureq::Error::Status(status, resp)) => {
                    let body = read_limited(resp, url.as_str(), 512)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    return Err(RegistryError::Status {
                        url: url.into(),
                        status,
                        body,
                    });
                }
                Err(e) => return Err(transport_error(url.as_str(), e)),
            }
        }
        Err(RegistryError::Redirect {
            url: url.into(),
            reason: "too many times",
        })
    }

    /// The agent for `authority` with `tls`, made on first use.
    fn agent(&self, authority: String, tls: &Tls) -> ureq::Agent {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents
            .entry((authority, tls.clone()))
            .or_insert_with(|| {
                ureq::AgentBuilder::new()
                    .timeout_connect(Duration::from_secs(30))
                    .timeout_read(Duration::from_secs(300))
                    .redirects(0)
                    .user_agent(concat!("moat-cri/", env!("CARGO_PKG_VERSION")))
                    .tls_config(self.tls_config(tls))
                    .build()
            })
            .clone()
    }

    /// The system's CAs plus `tls.cas`, or any certificate with `skip_verify`.
    fn tls_config(&self, tls: &Tls) -> Arc<rustls::ClientConfig> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("ring offers cipher suites for TLS 1.2 and 1.3");
        let config = if tls.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::clone(
                    &self.provider,
                ))))
                .with_no_client_auth()
        } else {
            let mut roots = self.roots.clone();
            // hosts.rs checked each CA when it loaded it.
            roots.add_parsable_certificates(tls.cas.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Arc::new(config)
    }

    fn fetch_token(
        &self,
        host: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        if let Some(Credentials::Bearer(t)) = creds {
            return Ok(t.clone());
        }
        let mut url = parse_url(realm)?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(s) = service {
            url.query_pairs_mut().append_pair("service", s);
        }
        let basic = match creds {
            Some(Credentials::Basic { username, password }) => Some(format!(
                "Basic {}",
                base64(format!("{username}:{password}").as_bytes())
            )),
            _ => None,
        };
        // The realm is where the credentials go (it may be another host than the registry's,
        // as auth.docker.io is); it shares the host's TLS settings only if it is the host.
        let realm_host = authority(&url);
        let origin = Origin {
            tls: if realm_host == host.authority() {
                host.tls()
            } else {
                &Tls::default()
            },
            authority: realm_host,
        };
        let resp = match self.get(&origin, url.as_str(), "application/json", basic.as_deref()) {
            Ok(Ok(resp)) => resp,
            Ok(Err(_)) | Err(RegistryError::Status { status: 403, .. }) => {
                return Err(RegistryError::Unauthorized {
                    url: realm.to_owned(),
                })
            }
            Err(e) => return Err(e),
        };
        let bytes = read_limited(resp, realm, MAX_MANIFEST)?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|_| RegistryError::Token {
                realm: realm.to_owned(),
            })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Token {
                realm: realm.to_owned(),
            })
    }
}

/// Streams a blob's body into `sink`, checking its size and digest.
fn read_blob(
    resp: ureq::Response,
    url: String,
    digest: &Digest,
    size: u64,
    sink: &mut dyn Write,
) -> Result<(), RegistryError> {
    let mut body = resp.into_reader().take(size.saturating_add(1));
    let mut w = Hashing::new(sink);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(RegistryError::Read { url, source }),
        };
        let chunk = buf.get(..n).unwrap_or(&buf);
        w.write_all(chunk).map_err(|source| RegistryError::Write {
            url: url.clone(),
            source,
        })?;
    }
    if w.len() != size {
        return Err(RegistryError::SizeMismatch {
            url,
            expected: size,
            actual: w.len(),
        });
    }
    let (actual, _) = w.finish();
    if &actual != digest {
        return Err(RegistryError::DigestMismatch {
            url,
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}

fn read_limited(resp: ureq::Response, url: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Read {
            url: url.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

fn parse_url(url: &str) -> Result<Url, BadUrl> {
    Url::parse(url).map_err(|source| BadUrl {
        url: url.to_owned(),
        source,
    })
}

/// A failed request's error; a certificate rustls refused becomes [`RegistryError::Certificate`].
fn transport_error(url: &str, e: ureq::Error) -> RegistryError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        // rustls' error reaches us inside the io::Error of the TLS stream, which `source()`
        // skips over: look inside it too.
        let inner = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) =
            inner.or_else(|| err.downcast_ref::<rustls::Error>())
        {
            return RegistryError::Certificate {
                url: url.to_owned(),
                source: Box::new(tls.clone()),
            };
        }
        cur = err.source();
    }
    RegistryError::Transport {
        url: url.to_owned(),
        source: Box::new(e),
    }
}

/// The CAs of the PEM bundle at `path`; a missing or unreadable bundle leaves only the hosts'
/// own CAs trusted, which is logged.
fn system_roots(path: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    match std::fs::read(path) {
        Ok(pem) => {
            let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
            let (added, ignored) = roots.add_parsable_certificates(certs);
            tracing::debug!(bundle = %path.display(), added, ignored, "system CAs loaded");
        }
        Err(e) => tracing::warn!(
            bundle = %path.display(),
            error = %e,
            "no system CA bundle: only CAs from hosts.toml files are trusted"
        ),
    }
    roots
}

/// The verifier of hosts with `skip_verify`: any certificate chain and name is accepted, but the
/// handshake's signatures are still checked (the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An authentication challenge of a 401 response.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Tells credentials apart without keeping them as the cache key.
fn creds_fingerprint(creds: Option<&Credentials>) -> Digest {
    match creds {
        None => Digest::of(b"anonymous"),
        Some(Credentials::Basic { username, password }) => {
            Digest::of(format!("basic\0{username}\0{password}").as_bytes())
        }
        Some(Credentials::Bearer(t)) => Digest::of(format!("bearer\0{t}").as_bytes()),
    }
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(h: &str) -> Result<Challenge, RegistryError> {
    let bad = || RegistryError::Challenge(h.to_owned());
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad());
    }
    let mut params = HashMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let (key, after) = s.split_once('=').ok_or_else(bad)?;
        let key = key.trim().to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(bad)?;
            (value, q.get(end..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (
                after.get(..end).unwrap_or("").trim().to_owned(),
                after.get(end..).unwrap_or(""),
            )
        };
        params.insert(key, value);
        s = after.trim_start().trim_start_matches(',').trim_start();
    }
    let realm = params
        .remove("realm")
        .filter(|r| !r.is_empty())
        .ok_or_else(bad)?;
    Ok(Challenge::Bearer {
        realm,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_yields_realm_service_and_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .expect("valid challenge");
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#).expect("basic"),
            Challenge::Basic
        );
    }

    #[test]
    fn malformed_challenges_are_errors() {
        for h in [
            "",
            "Digest x=1",
            "Bearer service=\"x\"",
            "Bearer realm=\"unterminated",
            "Bearer junk",
        ] {
            assert!(parse_challenge(h).is_err(), "{h:?}");
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let v = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in v {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
