//! A client of the OCI distribution API: manifests and blobs, anonymous, with basic auth, or
//! through the bearer-token flow (`WWW-Authenticate: Bearer realm=...` → token → retry).
//! May touch: the network, toward the registry host of a reference and the token realm it names.
//! Never: hands out a manifest or blob byte whose sha256 was not checked against the digest asked
//! for; reads more than a descriptor's size or [`MAX_MANIFEST`] from a server.
//!
//! Plain HTTP is used for loopback hosts and hosts marked insecure; everything else is HTTPS (not
//! built in yet: such pulls fail with a transport error).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use crate::digest::{Digest, Hashing};
use crate::oci::MANIFEST_ACCEPT;
use crate::reference::Reference;

/// The largest manifest or token response read, in bytes.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
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
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Hosts (`name[:port]`) reached over plain HTTP besides loopback.
    pub insecure_hosts: Vec<String>,
}

/// A manifest as the registry returned it, its digest checked.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A thread-safe registry client; bearer tokens are cached per host, repository and credentials.
#[derive(Debug)]
pub struct RegistryClient {
    agent: ureq::Agent,
    options: RegistryOptions,
    /// Bearer tokens by (host, repository, [`creds_fingerprint`]).
    tokens: Mutex<HashMap<(String, String, Digest), String>>,
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(300))
            .redirects(5)
            .user_agent(concat!("moat-cri/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent,
            options,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn base_url(&self, r: &Reference) -> String {
        let host = r.api_host();
        let plain = is_loopback(host) || self.options.insecure_hosts.iter().any(|h| h == host);
        format!(
            "{}://{host}/v2/{}",
            if plain { "http" } else { "https" },
            r.repository()
        )
    }

    /// GETs the manifest `reference` (a tag or a digest) of `r`'s repository. A digest reference
    /// is checked against the bytes; for a tag, the registry's `Docker-Content-Digest` must match.
    pub fn get_manifest(
        &self,
        r: &Reference,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base_url(r));
        let resp = self.send(r, &url, MANIFEST_ACCEPT, creds)?;
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
        let url = format!("{}/blobs/{digest}", self.base_url(r));
        let resp = self.send(r, &url, "*/*", creds)?;
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

    /// Sends a GET, answering one authentication challenge if the registry poses one.
    fn send(
        &self,
        r: &Reference,
        url: &str,
        accept: &str,
        creds: Option<&Credentials>,
    ) -> Result<ureq::Response, RegistryError> {
        // A token is reused only with the credentials that earned it: a request with other (or
        // no) credentials must not ride on someone else's access.
        let key = (
            r.api_host().to_owned(),
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
        let challenge = match self.get(url, accept, first.as_deref())? {
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
                let token = self.fetch_token(&realm, service.as_deref(), &scope, creds)?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, token.clone());
                format!("Bearer {token}")
            }
        };
        match self.get(url, accept, Some(&auth))? {
            Ok(resp) => Ok(resp),
            Err(_) => Err(RegistryError::Unauthorized {
                url: url.to_owned(),
            }),
        }
    }

    /// One GET: the response, or the `WWW-Authenticate` header of a 401.
    fn get(
        &self,
        url: &str,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Result<ureq::Response, String>, RegistryError> {
        let mut req = self.agent.get(url).set("Accept", accept);
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        match req.call() {
            Ok(resp) => Ok(Ok(resp)),
            Err(ureq::Error::Status(401, resp)) => Ok(Err(resp
                .header("WWW-Authenticate")
                .unwrap_or_default()
                .to_owned())),
            Err(ureq::Error::Status(status, resp)) => {
                let body = read_limited(resp, url, 512)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Err(RegistryError::Status {
                    url: url.to_owned(),
                    status,
                    body,
                })
            }
            Err(e) => Err(RegistryError::Transport {
                url: url.to_owned(),
                source: Box::new(e),
            }),
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        if let Some(Credentials::Bearer(t)) = creds {
            return Ok(t.clone());
        }
        let mut req = self.agent.get(realm).query("scope", scope);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(Credentials::Basic { username, password }) = creds {
            req = req.set(
                "Authorization",
                &format!(
                    "Basic {}",
                    base64(format!("{username}:{password}").as_bytes())
                ),
            );
        }
        let resp = match req.call() {
            Ok(resp) => resp,
            Err(ureq::Error::Status(401 | 403, _)) => {
                return Err(RegistryError::Unauthorized {
                    url: realm.to_owned(),
                })
            }
            Err(ureq::Error::Status(status, _)) => {
                return Err(RegistryError::Status {
                    url: realm.to_owned(),
                    status,
                    body: String::new(),
                })
            }
            Err(e) => {
                return Err(RegistryError::Transport {
                    url: realm.to_owned(),
                    source: Box::new(e),
                })
            }
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

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    #[test]
    fn loopback_hosts_are_recognized() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:80"));
        assert!(!is_loopback("registry.example.com:5000"));
    }
}
