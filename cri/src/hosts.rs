//! Per-registry host settings, read once at start from a directory laid out like containerd's
//! `certs.d`: `<dir>/<namespace>/hosts.toml`, where the namespace is the registry as image names
//! spell it (`docker.io`, `registry.example:5000`, also written `registry.example_5000_`), and
//! `_default` serves every registry that has no directory of its own.
//! May touch: the files under that directory, in [`RegistryHosts::load`] only.
//! Never: offers a registry's original host when mirrors are configured for it, or a plain-HTTP
//! host that is neither loopback nor marked insecure.
//!
//! # hosts.toml
//! ```toml
//! server = "https://registry.example:5000"  # the upstream; default https://<namespace>
//! ca = "upstream-ca.pem"                    # or a list; PEM; relative to this file
//! skip_verify = false                       # true: accept any certificate (testing only)
//! capabilities = ["pull", "resolve"]        # of the server; default all
//!
//! [host."https://mirror.internal:5000"]     # mirrors, tried in file order
//!   capabilities = ["pull", "resolve"]
//!   ca = ["/etc/moat/mirror-ca.pem"]
//! [host."http://127.0.0.1:5001"]
//!   capabilities = ["pull"]
//! ```
//!
//! # Semantics, and where they differ from containerd's
//! - **Mirrors replace the registry.** When a file lists `[host]` entries, only those hosts are
//!   tried, in order; `server` is then never used (containerd falls back to it after the hosts).
//!   To fall back to the upstream, list it as the last `[host]`. A file without `[host]` entries
//!   has one host: `server`, or the default `https://<namespace>` (`registry-1.docker.io` for
//!   `docker.io`).
//! - **Capabilities.** Resolving a tag to a manifest goes only to hosts with `resolve`; fetching a
//!   manifest or blob by digest (content the digest proves) only to hosts with `pull`. `push` is
//!   accepted and unused. When no host may do an operation, the pull fails.
//! - **Plain HTTP.** A host is reached over `http://` when a hosts.toml writes it so (that URL is
//!   the mark: the file's author asked for plain HTTP to exactly that host), when it is a loopback
//!   address or `localhost`, or when its registry is listed insecure (`--insecure-registry`). A
//!   registry without `server` is reached over HTTP if it is loopback or insecure and its file
//!   sets no top-level `ca` or `skip_verify`; otherwise over HTTPS. Every other plain-HTTP URL,
//!   such as a token realm or a redirect that a registry names, is refused before it is requested.
//! - **TLS.** The system's CA bundle plus the host's `ca` files are trusted; `skip_verify` accepts
//!   any certificate. Top-level `ca`/`skip_verify` apply to `server`, a `[host]`'s to that host.
//! - `client`, `header`, `proxy` and `dial_timeout` are not implemented and are refused, not
//!   ignored. A namespace directory without hosts.toml takes its `*.crt` files as CAs of the
//!   default host (Docker's pattern) and refuses client certificates (`*.cert`, `*.key`).
//! - The directory is read once, when `moat-cri` starts: a change needs a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use url::Url;

use crate::reference::{Reference, DEFAULT_REGISTRY, DOCKER_HUB_API_HOST};

/// The file of a namespace directory.
pub const HOSTS_FILE: &str = "hosts.toml";
/// The namespace directory used for registries without their own.
pub const DEFAULT_NAMESPACE: &str = "_default";

/// Why the registry config directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("registry config dir {0} does not exist")]
    MissingDir(PathBuf),
    #[error("cannot list {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {url:?} is not a usable registry URL: {reason}")]
    Url {
        path: PathBuf,
        url: String,
        reason: &'static str,
    },
    #[error("{path}: unknown capability {value:?} (known: pull, resolve, push)")]
    Capability { path: PathBuf, value: String },
    #[error("{path}: {what} is not supported by moat-cri")]
    Unsupported { path: PathBuf, what: &'static str },
    #[error("cannot read CA file {path}")]
    CaRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("CA file {path} is not valid PEM")]
    CaPem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("CA file {path} holds no certificate")]
    CaEmpty { path: PathBuf },
    #[error("CA file {path} holds a certificate that cannot be a trust anchor")]
    CaCert {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// A URL that could not be parsed, from a registry's answer or made from a registry name.
#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not a valid URL")]
pub struct BadUrl {
    pub url: String,
    #[source]
    pub source: url::ParseError,
}

/// What a registry host may be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Fetch manifests and blobs by digest: the digest proves the content.
    Pull,
    /// Turn a tag into a manifest: the host's answer is trusted.
    Resolve,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pull => "pull",
            Self::Resolve => "resolve",
        })
    }
}

/// TLS settings of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tls {
    /// CA certificates trusted for this host besides the system's.
    pub cas: Arc<[CertificateDer<'static>]>,
    /// Accept any certificate chain and name.
    pub skip_verify: bool,
}

/// Settings of one host (the file's top level for `server`, or a `[host]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostSettings {
    pull: bool,
    resolve: bool,
    tls: Tls,
    /// The URL is the API root itself: no `/v2` is appended.
    override_path: bool,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            pull: true,
            resolve: true,
            tls: Tls::default(),
            override_path: false,
        }
    }
}

/// One host a registry's requests may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
    settings: HostSettings,
    /// The namespace this host stands in for, sent as `ns=` (as containerd does) when the host is
    /// not the registry itself.
    mirror_of: Option<String>,
}

impl Endpoint {
    /// `scheme://host[:port][/path]`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `host[:port]`, the key of tokens, agents and the plain-HTTP check.
    pub fn authority(&self) -> String {
        authority(&self.url)
    }

    pub fn can(&self, c: Capability) -> bool {
        match c {
            Capability::Pull => self.settings.pull,
            Capability::Resolve => self.settings.resolve,
        }
    }

    pub fn tls(&self) -> &Tls {
        &self.settings.tls
    }

    /// The URL of `kind` (`manifests`, `blobs`) `reference` in `repository` on this host.
    pub fn api_url(&self, repository: &str, kind: &str, reference: &str) -> String {
        let mut s = self.url.as_str().trim_end_matches('/').to_owned();
        if !self.settings.override_path {
            s.push_str("/v2");
        }
        s.push_str(&format!("/{repository}/{kind}/{reference}"));
        if let Some(ns) = &self.mirror_of {
            s.push_str("?ns=");
            s.extend(url::form_urlencoded::byte_serialize(ns.as_bytes()));
        }
        s
    }
}

/// `host[:port]` of a URL (the port only when it is not the scheme's default).
pub fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    }
}

/// Whether `host[:port]` names this machine's loopback (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The settings of one namespace directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Namespace {
    server: Option<Url>,
    /// The top level's settings: those of `server`, or of the default host.
    top: HostSettings,
    /// Whether the top level sets `ca` or `skip_verify` (then the default host is HTTPS).
    top_tls: bool,
    mirrors: Vec<(Url, HostSettings)>,
}

/// Every namespace's hosts, and which hosts plain HTTP may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryHosts {
    namespaces: BTreeMap<String, Namespace>,
    /// Registries (as named) listed insecure.
    insecure: BTreeSet<String>,
    /// `host[:port]`s marked for plain HTTP: `http://` URLs of the files, insecure registries.
    plain_http: BTreeSet<String>,
}

impl RegistryHosts {
    /// No per-registry files; `insecure` registries (`host[:port]` as images name them) are
    /// reached over plain HTTP.
    pub fn new(insecure: impl IntoIterator<Item = String>) -> Self {
        let mut hosts = Self::default();
        for ns in insecure {
            if ns == DEFAULT_REGISTRY {
                hosts.plain_http.insert(DOCKER_HUB_API_HOST.to_owned());
            }
            hosts.plain_http.insert(ns.clone());
            hosts.insecure.insert(ns);
        }
        hosts
    }

    /// Reads every namespace directory under `dir`. A missing `dir` is an error when `required`
    /// (it was configured explicitly), else it means no settings.
    pub fn load(
        dir: &Path,
        required: bool,
        insecure: impl IntoIterator<Item = String>,
    ) -> Result<Self, HostsError> {
        let mut hosts = Self::new(insecure);
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(hosts),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HostsError::MissingDir(dir.to_owned()))
            }
            Err(source) => {
                return Err(HostsError::ReadDir {
                    path: dir.to_owned(),
                    source,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| HostsError::ReadDir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            // Stray files beside the namespace directories, and names that are not UTF-8 (no
            // registry is named so), configure nothing.
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !path.is_dir() {
                continue;
            }
            let ns = Namespace::load(&path)?;
            // Only hosts that are tried are marked: a server that mirrors replace is not.
            let tried: Vec<&Url> = if ns.mirrors.is_empty() {
                ns.server.iter().collect()
            } else {
                ns.mirrors.iter().map(|(u, _)| u).collect()
            };
            for url in tried {
                if url.scheme() == "http" {
                    hosts.plain_http.insert(authority(url));
                }
            }
            tracing::debug!(namespace = %name, mirrors = ns.mirrors.len(), "registry hosts loaded");
            hosts.namespaces.insert(name, ns);
        }
        Ok(hosts)
    }

    /// The namespace directories read, by name.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.keys().map(String::as_str)
    }

    /// Whether plain HTTP may reach `host[:port]`.
    pub fn plain_http_allowed(&self, authority: &str) -> bool {
        is_loopback(authority) || self.plain_http.contains(authority)
    }

    fn namespace(&self, registry: &str) -> Option<&Namespace> {
        let underscored = registry
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, p)| format!("{h}_{p}_"));
        underscored
            .and_then(|u| self.namespaces.get(&u))
            .or_else(|| self.namespaces.get(registry))
            .or_else(|| self.namespaces.get(DEFAULT_NAMESPACE))
    }

    /// The hosts `r`'s requests go to, in the order they are tried: the mirrors if its namespace
    /// lists any, else its one server. The caller keeps those with the capability it needs.
    pub fn endpoints(&self, r: &Reference) -> Result<Vec<Endpoint>, BadUrl> {
        let (registry, api_host) = (r.registry(), r.api_host());
        let endpoint = |url: &Url, settings: &HostSettings| {
            let a = authority(url);
            Endpoint {
                mirror_of: (a != api_host && a != registry).then(|| registry.to_owned()),
                url: url.clone(),
                settings: settings.clone(),
            }
        };
        let ns = self.namespace(registry);
        if let Some(ns) = ns.filter(|ns| !ns.mirrors.is_empty()) {
            return Ok(ns.mirrors.iter().map(|(u, s)| endpoint(u, s)).collect());
        }
        let top_tls = ns.is_some_and(|ns| ns.top_tls);
        let server = match ns.and_then(|ns| ns.server.clone()) {
            Some(url) => url,
            None => {
                let plain = !top_tls && (is_loopback(api_host) || self.insecure.contains(registry));
                let url = format!("{}://{api_host}", if plain { "http" } else { "https" });
                Url::parse(&url).map_err(|source| BadUrl { url, source })?
            }
        };
        let default = HostSettings::default();
        Ok(vec![endpoint(&server, ns.map_or(&default, |ns| &ns.top))])
    }
}

/// A TOML table kept in file order (the order mirrors are tried in).
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct InOrder<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for InOrder<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of host URLs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(InOrder(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The keys a server and a mirror share; containerd's that moat-cri lacks are caught to be refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHost {
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
    override_path: Option<bool>,
    client: Option<toml::Value>,
    header: Option<toml::Value>,
    proxy: Option<toml::Value>,
    dial_timeout: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTop {
    server: Option<String>,
    #[serde(default)]
    host: Ordered<FileHost>,
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
    override_path: Option<bool>,
    client: Option<toml::Value>,
    header: Option<toml::Value>,
    proxy: Option<toml::Value>,
    dial_timeout: Option<toml::Value>,
}

impl FileTop {
    /// The top level's host keys, as a [`FileHost`].
    fn split(self) -> (Option<String>, Ordered<FileHost>, FileHost) {
        let top = FileHost {
            capabilities: self.capabilities,
            ca: self.ca,
            skip_verify: self.skip_verify,
            override_path: self.override_path,
            client: self.client,
            header: self.header,
            proxy: self.proxy,
            dial_timeout: self.dial_timeout,
        };
        (self.server, self.host, top)
    }
}

impl Namespace {
    fn load(dir: &Path) -> Result<Self, HostsError> {
        let path = dir.join(HOSTS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::load_docker_certs(dir),
            Err(source) => Err(HostsError::Read { path, source }),
        }
    }

    /// Parses hosts.toml `text`; relative CA paths are resolved against its directory.
    fn parse(path: &Path, text: &str) -> Result<Self, HostsError> {
        let file: FileTop = toml::from_str(text).map_err(|source| HostsError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let (server, hosts, top) = file.split();
        let top_tls = top.ca.is_some() || top.skip_verify.is_some();
        let server = server.map(|s| host_url(path, &s)).transpose()?;
        let mut mirrors = Vec::with_capacity(hosts.0.len());
        for (url, host) in hosts.0 {
            mirrors.push((host_url(path, &url)?, settings(path, host)?));
        }
        if let (Some(server), false) = (&server, mirrors.is_empty()) {
            tracing::warn!(
                file = %path.display(),
                %server,
                "server is never tried: the [host] entries replace it (list it as the last [host] to fall back to it)"
            );
        }
        Ok(Self {
            server,
            top: settings(path, top)?,
            top_tls,
            mirrors,
        })
    }

    /// A directory without hosts.toml: Docker's `*.crt` CA files for the default host.
    fn load_docker_certs(dir: &Path) -> Result<Self, HostsError> {
        let read_dir = |source| HostsError::ReadDir {
            path: dir.to_owned(),
            source,
        };
        let mut cas = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => cas.push(path),
                Some("cert" | "key") => {
                    return Err(HostsError::Unsupported {
                        path,
                        what: "a client certificate",
                    })
                }
                _ => {}
            }
        }
        cas.sort();
        let top_tls = !cas.is_empty();
        Ok(Self {
            top: HostSettings {
                tls: Tls {
                    cas: load_cas(dir, &cas)?,
                    skip_verify: false,
                },
                ..HostSettings::default()
            },
            top_tls,
            ..Self::default()
        })
    }
}

/// A `server` or `[host]` URL; one without a scheme is HTTPS, as in containerd.
fn host_url(path: &Path, s: &str) -> Result<Url, HostsError> {
    let bad = |reason| HostsError::Url {
        path: path.to_owned(),
        url: s.to_owned(),
        reason,
    };
    let full = if s.contains("://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    };
    let url = Url::parse(&full).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme is neither http nor https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in it"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or fragment"));
    }
    Ok(url)
}

fn settings(path: &Path, h: FileHost) -> Result<HostSettings, HostsError> {
    for (set, what) in [
        (h.client.is_some(), "client (client certificates)"),
        (h.header.is_some(), "header"),
        (h.proxy.is_some(), "proxy"),
        (h.dial_timeout.is_some(), "dial_timeout"),
    ] {
        if set {
            return Err(HostsError::Unsupported {
                path: path.to_owned(),
                what,
            });
        }
    }
    let mut s = HostSettings::default();
    if let Some(caps) = h.capabilities {
        (s.pull, s.resolve) = (false, false);
        for c in caps {
            match c.as_str() {
                "pull" => s.pull = true,
                "resolve" => s.resolve = true,
                "push" => {}
                _ => {
                    return Err(HostsError::Capability {
                        path: path.to_owned(),
                        value: c,
                    })
                }
            }
        }
    }
    let cas: Vec<PathBuf> = match h.ca {
        None => Vec::new(),
        Some(OneOrMany::One(p)) => vec![p.into()],
        Some(OneOrMany::Many(ps)) => ps.into_iter().map(PathBuf::from).collect(),
    };
    let base = path.parent().unwrap_or(Path::new("/"));
    s.tls = Tls {
        cas: load_cas(base, &cas)?,
        skip_verify: h.skip_verify.unwrap_or(false),
    };
    s.override_path = h.override_path.unwrap_or(false);
    Ok(s)
}

/// Reads PEM CA files (relative paths against `base`), each holding at least one certificate
/// usable as a trust anchor.
fn load_cas(base: &Path, files: &[PathBuf]) -> Result<Arc<[CertificateDer<'static>]>, HostsError> {
    let mut cas = Vec::new();
    for file in files {
        let path = base.join(file);
        let pem = std::fs::read(&path).map_err(|source| HostsError::CaRead {
            path: path.clone(),
            source,
        })?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| HostsError::CaPem {
                path: path.clone(),
                source,
            })?;
        if certs.is_empty() {
            return Err(HostsError::CaEmpty { path });
        }
        for cert in certs {
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|source| HostsError::CaCert {
                    path: path.clone(),
                    source,
                })?;
            cas.push(cert);
        }
    }
    Ok(cas.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 CA made with `openssl req -x509` for these tests.
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBnjCCAUWgAwIBAgIUczAPbFX6VtP+UWux9yQ/ecMu0UIwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRbW9hdCB1bml0IHRlc3QgQ0EwIBcNMjYxMTIzMTYyNjEyWhgP
MjEyNjEwMzAxNjI2MTJaMBwxGjAYBgNVBAMMEW1vYXQgdW5pdCB0ZXN0IENBMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsRPZC7ujrm72bo6nl8XdCAyKLZeHOOda
BHFbmJ4cjJFOMOo/DfPVBywo9aJBe9Q6lOzIKS09aly2SI1qF0jaEqNjMGEwHQYD
VR0OBBYEFNnSvTDLe3qHI0CT/zD0kvtLO6U4MB8GA1UdIwQYMBaAFNnSvTDLe3qH
I0CT/zD0kvtLO6U4MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoG
CCqGSM49BAMCA0cAMEQCIH4LuazifmBuU4gPrjgDwRRdWT0uS8zpm8DE+iF09jcf
AiBvTbYYGcM86vcdap2oAr0uwDu+778RTRIoC+yq/gLOMA==
-----END CERTIFICATE-----
";

    fn r(s: &str) -> Reference {
        Reference::parse(s).expect("valid reference")
    }

    /// A config dir with `files` (path under the dir, content).
    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    fn load(files: &[(&str, &str)]) -> Result<RegistryHosts, HostsError> {
        let dir = dir_with(files);
        RegistryHosts::load(dir.path(), true, Vec::new())
    }

    fn urls(h: &RegistryHosts, image: &str) -> Vec<String> {
        h.endpoints(&r(image))
            .expect("endpoints")
            .iter()
            .map(|e| e.url().to_string())
            .collect()
    }

    #[test]
    fn mirrors_replace_the_server_and_keep_file_order() {
        let h = load(&[(
            "docker.io/hosts.toml",
            r#"
server = "https://registry-1.docker.io"
[host."https://zeta.mirror"]
capabilities = ["pull"]
[host."http://alpha.mirror:5000"]
[host."https://mid.mirror/prefix"]
capabilities = ["pull", "resolve", "push"]
override_path = true
"#,
        )])
        .expect("load");
        let eps = h.endpoints(&r("busybox")).expect("endpoints");
        let got: Vec<_> = eps.iter().map(|e| e.url().to_string()).collect();
        assert_eq!(
            got,
            [
                "https://zeta.mirror/",
                "http://alpha.mirror:5000/",
                "https://mid.mirror/prefix"
            ]
        );
        assert!(eps[0].can(Capability::Pull) && !eps[0].can(Capability::Resolve));
        assert!(eps[1].can(Capability::Pull) && eps[1].can(Capability::Resolve));
        assert_eq!(
            eps[0].api_url("library/busybox", "manifests", "latest"),
            "https://zeta.mirror/v2/library/busybox/manifests/latest?ns=docker.io"
        );
        assert_eq!(
            eps[2].api_url("library/busybox", "blobs", "sha256:ab"),
            "https://mid.mirror/prefix/library/busybox/blobs/sha256:ab?ns=docker.io"
        );
        // The http:// mirror is marked for plain HTTP; nothing else non-loopback is.
        assert!(h.plain_http_allowed("alpha.mirror:5000"));
        assert!(!h.plain_http_allowed("zeta.mirror"));
        assert!(!h.plain_http_allowed("alpha.mirror"));
    }

    #[test]
    fn a_replaced_plain_http_server_is_not_marked() {
        let h = load(&[(
            "reg.example/hosts.toml",
            "server = \"http://upstream.example\"\n[host.\"https://mirror.example\"]\n",
        )])
        .expect("load");
        assert_eq!(urls(&h, "reg.example/x"), ["https://mirror.example/"]);
        assert!(!h.plain_http_allowed("upstream.example"));
    }

    #[test]
    fn without_mirrors_the_server_or_default_host_is_the_only_one() {
        let h = load(&[
            (
                "registry.example:5000/hosts.toml",
                "server = \"https://upstream.example\"\ncapabilities = [\"pull\"]\n",
            ),
            (
                "plain.example/hosts.toml",
                "server = \"http://plain.example:8080\"\n",
            ),
        ])
        .expect("load");
        let eps = h.endpoints(&r("registry.example:5000/a/b:1")).expect("eps");
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].url().as_str(), "https://upstream.example/");
        assert!(!eps[0].can(Capability::Resolve));
        assert_eq!(
            eps[0].api_url("a/b", "manifests", "1"),
            "https://upstream.example/v2/a/b/manifests/1?ns=registry.example%3A5000"
        );
        assert_eq!(urls(&h, "plain.example/x"), ["http://plain.example:8080/"]);
        assert!(h.plain_http_allowed("plain.example:8080"));
        // Registries without a directory: Docker Hub's API host, HTTPS; loopback over HTTP.
        assert_eq!(urls(&h, "busybox"), ["https://registry-1.docker.io/"]);
        assert_eq!(
            h.endpoints(&r("busybox")).expect("eps")[0].api_url(
                "library/busybox",
                "manifests",
                "latest"
            ),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
        assert_eq!(urls(&h, "other.example/x"), ["https://other.example/"]);
        assert_eq!(urls(&h, "127.0.0.1:5000/x"), ["http://127.0.0.1:5000/"]);
        assert!(!h.plain_http_allowed("other.example"));
    }

    #[test]
    fn insecure_registries_are_plain_http_and_marked() {
        let h = RegistryHosts::new(["reg.lan:5000".to_owned(), "docker.io".to_owned()]);
        assert_eq!(urls(&h, "reg.lan:5000/x"), ["http://reg.lan:5000/"]);
        assert!(h.plain_http_allowed("reg.lan:5000"));
        assert!(h.plain_http_allowed("registry-1.docker.io"));
        assert!(!h.plain_http_allowed("reg.lan"));
    }

    #[test]
    fn top_level_tls_makes_a_loopback_default_host_https() {
        let h = load(&[
            ("127.0.0.1:5443/hosts.toml", "skip_verify = true\n"),
            ("127.0.0.1_6443_/hosts.toml", "ca = \"../ca.pem\"\n"),
            ("ca.pem", CA_PEM),
        ])
        .expect("load");
        let eps = h.endpoints(&r("127.0.0.1:5443/x")).expect("eps");
        assert_eq!(eps[0].url().as_str(), "https://127.0.0.1:5443/");
        assert!(eps[0].tls().skip_verify && eps[0].tls().cas.is_empty());
        let eps = h.endpoints(&r("127.0.0.1:6443/x")).expect("eps");
        assert_eq!(eps[0].url().as_str(), "https://127.0.0.1:6443/");
        assert_eq!(eps[0].tls().cas.len(), 1);
        assert!(eps[0].mirror_of.is_none());
    }

    #[test]
    fn default_namespace_serves_registries_without_their_own() {
        let h = load(&[
            (
                "_default/hosts.toml",
                "[host.\"https://mirror.example\"]\nca = [\"ca.pem\"]\n",
            ),
            ("_default/ca.pem", CA_PEM),
            ("quay.io/hosts.toml", ""),
        ])
        .expect("load");
        assert_eq!(urls(&h, "ghcr.io/a/b"), ["https://mirror.example/"]);
        assert_eq!(urls(&h, "quay.io/a/b"), ["https://quay.io/"]);
        assert_eq!(h.namespaces().collect::<Vec<_>>(), ["_default", "quay.io"]);
    }

    #[test]
    fn docker_cert_pattern_gives_cas_and_refuses_client_certs() {
        let h = load(&[("reg.example/ca.crt", CA_PEM)]).expect("load");
        let eps = h.endpoints(&r("reg.example/x")).expect("eps");
        assert_eq!(eps[0].tls().cas.len(), 1);
        let err = load(&[("reg.example/client.cert", "x")]).expect_err("client cert");
        assert!(matches!(err, HostsError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn bad_files_are_refused_with_what_is_wrong() {
        type Check = fn(&HostsError) -> bool;
        let cases: &[(&str, Check)] = &[
            (
                "sever = \"https://x\"\n",
                |e| matches!(e, HostsError::Parse { source, .. } if source.to_string().contains("sever")),
            ),
            (
                "[host.\"https://m\"]\ncapabilites = [\"pull\"]\n",
                |e| matches!(e, HostsError::Parse { source, .. } if source.to_string().contains("capabilites")),
            ),
            (
                "capabilities = [\"fetch\"]\n",
                |e| matches!(e, HostsError::Capability { value, .. } if value == "fetch"),
            ),
            ("proxy = \"http://p:3128\"\n", |e| {
                matches!(e, HostsError::Unsupported { what: "proxy", .. })
            }),
            (
                "[host.\"https://m\"]\n[host.\"https://m\".header]\nx = \"y\"\n",
                |e| matches!(e, HostsError::Unsupported { what: "header", .. }),
            ),
            ("server = \"ftp://x\"\n", |e| {
                matches!(e, HostsError::Url { .. })
            }),
            ("server = \"https://u:p@x\"\n", |e| {
                matches!(e, HostsError::Url { .. })
            }),
            ("[host.\"https://m?x=1\"]\n", |e| {
                matches!(e, HostsError::Url { .. })
            }),
            ("ca = \"missing.pem\"\n", |e| {
                matches!(e, HostsError::CaRead { .. })
            }),
            ("ca = \"empty.pem\"\n", |e| {
                matches!(e, HostsError::CaEmpty { .. })
            }),
            ("ca = \"junk.pem\"\n", |e| {
                matches!(e, HostsError::CaPem { .. } | HostsError::CaCert { .. })
            }),
            ("server = [1]\n", |e| matches!(e, HostsError::Parse { .. })),
        ];
        for (text, ok) in cases {
            let err = load(&[
                ("reg.example/hosts.toml", text),
                ("reg.example/empty.pem", "no pem here\n"),
                (
                    "reg.example/junk.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
            ])
            .expect_err(text);
            assert!(ok(&err), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn missing_dir_is_an_error_only_when_required() {
        let gone = Path::new("/nonexistent/moat-certs.d");
        assert!(matches!(
            RegistryHosts::load(gone, true, Vec::new()),
            Err(HostsError::MissingDir(_))
        ));
        let h = RegistryHosts::load(gone, false, Vec::new()).expect("optional");
        assert_eq!(h, RegistryHosts::default());
    }

    #[test]
    fn host_without_scheme_is_https() {
        let h =
            load(&[("reg.example/hosts.toml", "[host.\"mirror.example:5000\"]\n")]).expect("load");
        assert_eq!(urls(&h, "reg.example/x"), ["https://mirror.example:5000/"]);
    }

    #[test]
    fn loopback_hosts_are_recognized() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:80"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
