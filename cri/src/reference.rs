//! Image references as kubelet and users write them (`busybox`, `registry:5000/ns/name:tag`,
//! `name@sha256:...`), normalized with Docker Hub's defaults (`docker.io/library/...`, tag `latest`).

use std::fmt;

use crate::digest::{Digest, DigestError};

/// The registry a name without a domain belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where Docker Hub's registry API actually answers.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// Why an image reference was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {0:?} is longer than {MAX_NAME} characters")]
    TooLong(String),
    #[error("image reference {reference:?} has an invalid registry host {host:?}")]
    Host { reference: String, host: String },
    #[error("image reference {reference:?} has an invalid path component {component:?}")]
    Component {
        reference: String,
        component: String,
    },
    #[error("image reference {reference:?} has an invalid tag {tag:?}")]
    Tag { reference: String, tag: String },
    #[error("image reference {reference:?} has an invalid digest")]
    Digest {
        reference: String,
        #[source]
        source: DigestError,
    },
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `s`. With neither tag nor digest, the tag is `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let err_ref = || s.to_owned();
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    reference: err_ref(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest.get(last_slash..).and_then(|t| t.find(':')) {
            Some(i) => {
                let colon = last_slash + i;
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: err_ref(),
                    tag: t.to_owned(),
                });
            }
        }
        if name.len() > MAX_NAME {
            return Err(ReferenceError::TooLong(err_ref()));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_host(first) {
                    return Err(ReferenceError::Host {
                        reference: err_ref(),
                        host: first.to_owned(),
                    });
                }
                (first.to_owned(), path.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_owned(),
            _ => registry,
        };
        for c in path.split('/') {
            if !valid_component(c) {
                return Err(ReferenceError::Component {
                    reference: err_ref(),
                    component: c.to_owned(),
                });
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host as named (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host the registry API is reached at (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry's manifest endpoint for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// `name:tag`, if the reference has a tag.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_tag(t: &str) -> bool {
    let mut b = t.bytes();
    let first_ok = matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_');
    first_ok
        && t.len() <= MAX_TAG
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || h.starts_with('[') => (host, Some(port)),
        _ => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// A path component: lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let alnum = |x: char| x.is_ascii_lowercase() || x.is_ascii_digit();
    c.starts_with(alnum)
        && c.ends_with(alnum)
        && c.split(alnum)
            .filter(|sep| !sep.is_empty())
            .all(|sep| sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).expect("valid reference in test")
    }

    #[test]
    fn short_name_gets_docker_hub_defaults() {
        let r = p("busybox");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn registry_with_port_and_namespace_keeps_tag() {
        let r = p("registry:5000/ns/name:v1.2");
        assert_eq!(r.registry(), "registry:5000");
        assert_eq!(r.repository(), "ns/name");
        assert_eq!(r.tag(), Some("v1.2"));
        let r = p("localhost/app");
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.repository(), "app");
        let r = p("user/app:1");
        assert_eq!((r.registry(), r.repository()), ("docker.io", "user/app"));
        let r = p("index.docker.io/library/alpine");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
    }

    #[test]
    fn digest_reference_has_no_default_tag() {
        let hex = "a".repeat(64);
        let r = p(&format!("name@sha256:{hex}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        let r = p(&format!("127.0.0.1:5000/x/y:t@sha256:{hex}"));
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
    }

    #[test]
    fn invalid_references_are_refused_with_the_failed_part() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Component { .. })
        ));
        assert!(matches!(
            Reference::parse("a//b"),
            Err(ReferenceError::Component { .. })
        ));
        assert!(matches!(
            Reference::parse("a/b:"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(matches!(
            Reference::parse("a:-x"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(matches!(
            Reference::parse("a@sha256:12"),
            Err(ReferenceError::Digest { .. })
        ));
        assert!(matches!(
            Reference::parse("a@md5:12"),
            Err(ReferenceError::Digest { .. })
        ));
        assert!(matches!(
            Reference::parse("bad_host.com:x/a"),
            Err(ReferenceError::Host { .. })
        ));
        assert!(matches!(
            Reference::parse("a..b"),
            Err(ReferenceError::Component { .. })
        ));
        assert!(matches!(
            Reference::parse("a___b"),
            Err(ReferenceError::Component { .. })
        ));
        assert!(matches!(
            Reference::parse(&"a".repeat(300)),
            Err(ReferenceError::TooLong(_))
        ));
        assert!(matches!(
            Reference::parse("a/b c"),
            Err(ReferenceError::Component { .. })
        ));
    }

    #[test]
    fn separators_in_components_follow_the_distribution_grammar() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1.b2-c3"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a._b", "", "A"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }
}
