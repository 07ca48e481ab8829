//! The OCI and Docker v2 image formats that a pull reads: indexes, manifests, image configs.
//! Parsed from registry bytes only after their digest was checked.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Every manifest type a pull accepts, for the `Accept` header.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names, if it is a layer type Moat knows.
    pub fn from_media_type(mt: &str) -> Option<Self> {
        match mt {
            OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Self::Gzip),
            OCI_LAYER_ZSTD => Some(Self::Zstd),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// The manifest for `os`/`architecture`, the first one listed if several match.
    pub fn select(&self, os: &str, architecture: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == architecture)
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// The part of an image config that a pull needs; the full JSON is kept as a blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    pub rootfs: RootFs,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

/// The run settings of an image config (its `config` object), as a container starts from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub stop_signal: String,
}

impl ImageConfig {
    /// The run settings; an image without them (or with malformed ones) has the defaults.
    pub fn run_config(&self) -> RunConfig {
        self.config
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

/// What a manifest endpoint returned, by the document's own or the response's media type.
#[derive(Debug, Clone)]
pub enum ManifestKind {
    Index(Index),
    Manifest(Manifest),
}

/// Why manifest bytes could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    #[error("malformed {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

/// Parses manifest bytes; the document's `mediaType` wins over the response's `Content-Type`.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ManifestKind, ParseError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ParseError::Json {
        what: "manifest",
        source,
    })?;
    let mt = probe
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_owned()))
        .unwrap_or_default();
    let is_index = match mt.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        // An OCI document may omit mediaType; an index is the one with `manifests`.
        "" | "application/json" => probe.manifests.is_some(),
        other => return Err(ParseError::MediaType(other.to_owned())),
    };
    if is_index {
        serde_json::from_slice(bytes)
            .map(ManifestKind::Index)
            .map_err(|source| ParseError::Json {
                what: "image index",
                source,
            })
    } else {
        serde_json::from_slice(bytes)
            .map(ManifestKind::Manifest)
            .map_err(|source| ParseError::Json {
                what: "image manifest",
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_selects_linux_amd64_over_arm64() {
        let d = |c: char, arch: &str| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":1,"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                c.to_string().repeat(64)
            )
        };
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
            d('a', "arm64"),
            d('b', "amd64")
        );
        let ManifestKind::Index(idx) = parse_manifest(json.as_bytes(), None).expect("parses")
        else {
            panic!("not an index");
        };
        let sel = idx.select("linux", "amd64").expect("amd64 present");
        assert_eq!(sel.digest.hex(), "b".repeat(64));
        assert!(idx.select("linux", "s390x").is_none());
    }

    #[test]
    fn unknown_media_type_and_garbage_are_errors() {
        assert!(matches!(
            parse_manifest(br#"{"mediaType":"text/plain"}"#, None),
            Err(ParseError::MediaType(_))
        ));
        assert!(matches!(
            parse_manifest(b"\xff{", None),
            Err(ParseError::Json { .. })
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":2,"config":1}"#, Some(OCI_MANIFEST)),
            Err(ParseError::Json { .. })
        ));
    }
}
