//! Pulling an image: manifest (an index resolved to linux/amd64), config, layers, into the
//! [`Store`], then the image record.
//! May touch: the registry through [`RegistryClient`], the store.
//! Never: uses a manifest, config or layer before its digest was checked, or records an image
//! whose layers are not all stored and unpacked.

use std::sync::Arc;

use crate::digest::Digest;
use crate::oci::{self, Compression, ImageConfig, ManifestKind};
use crate::reference::Reference;
use crate::registry::{Credentials, RegistryClient, RegistryError};
use crate::store::{ImageRecord, LayerRecord, Store, StoreError};

/// The platform every pull resolves indexes to.
pub const PLATFORM_OS: &str = "linux";
pub const PLATFORM_ARCH: &str = "amd64";

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot fetch manifest {reference} of {image}")]
    Manifest {
        image: String,
        reference: String,
        #[source]
        source: RegistryError,
    },
    #[error("cannot understand manifest {digest}")]
    ParseManifest {
        digest: Digest,
        #[source]
        source: oci::ParseError,
    },
    #[error("image index {digest} has no {PLATFORM_OS}/{PLATFORM_ARCH} manifest")]
    NoPlatform { digest: Digest },
    #[error("image index {digest} points at another index")]
    NestedIndex { digest: Digest },
    #[error("cannot fetch blob {digest}")]
    Blob {
        digest: Digest,
        #[source]
        source: RegistryError,
    },
    #[error("image config {digest} is malformed")]
    Config {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("manifest has {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("layer {digest} has unsupported media type {media_type:?}")]
    LayerType { digest: Digest, media_type: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub image: ImageRecord,
    /// Blobs (manifests, config, layers) this pull downloaded; those already stored are not.
    pub blobs_downloaded: usize,
}

/// Pulls images from registries into a store.
#[derive(Debug)]
pub struct Puller {
    client: RegistryClient,
    store: Arc<Store>,
}

impl Puller {
    pub fn new(client: RegistryClient, store: Arc<Store>) -> Self {
        Self { client, store }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Pulls `r` (by digest if it has one, else by tag).
    pub fn pull(
        &self,
        r: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<PullOutcome, PullError> {
        let _no_gc = self.store.pull_guard();
        let mut downloaded = 0usize;
        let reference = r.manifest_reference();
        let top = self
            .client
            .get_manifest(r, &reference, creds)
            .map_err(|source| PullError::Manifest {
                image: r.name(),
                reference: reference.clone(),
                source,
            })?;
        downloaded += usize::from(self.store.put_blob_counted(&top.bytes)?);
        let parsed =
            oci::parse_manifest(&top.bytes, top.content_type.as_deref()).map_err(|source| {
                PullError::ParseManifest {
                    digest: top.digest.clone(),
                    source,
                }
            })?;
        let (manifest_digest, manifest) = match parsed {
            ManifestKind::Manifest(m) => (top.digest.clone(), m),
            ManifestKind::Index(idx) => {
                let desc = idx.select(PLATFORM_OS, PLATFORM_ARCH).ok_or_else(|| {
                    PullError::NoPlatform {
                        digest: top.digest.clone(),
                    }
                })?;
                let d = desc.digest.to_string();
                let m = self.client.get_manifest(r, &d, creds).map_err(|source| {
                    PullError::Manifest {
                        image: r.name(),
                        reference: d,
                        source,
                    }
                })?;
                downloaded += usize::from(self.store.put_blob_counted(&m.bytes)?);
                match oci::parse_manifest(&m.bytes, m.content_type.as_deref()).map_err(
                    |source| PullError::ParseManifest {
                        digest: m.digest.clone(),
                        source,
                    },
                )? {
                    ManifestKind::Manifest(man) => (m.digest, man),
                    ManifestKind::Index(_) => {
                        return Err(PullError::NestedIndex { digest: m.digest })
                    }
                }
            }
        };

        let cfg_desc = &manifest.config;
        downloaded += usize::from(self.fetch_blob(r, &cfg_desc.digest, cfg_desc.size, creds)?);
        let cfg_bytes = self.store.read_blob(&cfg_desc.digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&cfg_bytes).map_err(|source| PullError::Config {
                digest: cfg_desc.digest.clone(),
                source,
            })?;
        if config.os != PLATFORM_OS || config.architecture != PLATFORM_ARCH {
            tracing::warn!(image = %r, os = %config.os, arch = %config.architecture, "image is not for linux/amd64");
        }
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(PullError::LayerCount {
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }

        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (desc, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let compression = Compression::from_media_type(&desc.media_type).ok_or_else(|| {
                PullError::LayerType {
                    digest: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                }
            })?;
            if !self.store.layer_path(diff_id).is_dir() {
                downloaded += usize::from(self.fetch_blob(r, &desc.digest, desc.size, creds)?);
                if let Err(e) = self.store.unpack_layer(&desc.digest, compression, diff_id) {
                    // A refused layer is not kept, so a fixed image is fetched anew.
                    if matches!(e, StoreError::Layer { .. }) {
                        self.store.remove_blob(&desc.digest)?;
                    }
                    return Err(e.into());
                }
            }
            layers.push(LayerRecord {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: desc.size,
                diff_id: diff_id.clone(),
            });
        }

        let record = ImageRecord {
            id: cfg_desc.digest.clone(),
            repo_tags: r
                .tag()
                .filter(|_| r.digest().is_none())
                .map(|t| format!("{}:{t}", r.name()))
                .into_iter()
                .collect(),
            repo_digests: vec![format!("{}@{}", r.name(), top.digest)],
            manifest_digest,
            config_digest: cfg_desc.digest.clone(),
            layers,
        };
        let image = self.store.put_image(record)?;
        tracing::info!(image = %r, id = %image.id, downloaded, "pulled image");
        Ok(PullOutcome {
            image,
            blobs_downloaded: downloaded,
        })
    }

    fn fetch_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        creds: Option<&Credentials>,
    ) -> Result<bool, PullError> {
        self.store.write_blob(digest, |w| {
            self.client
                .get_blob(r, digest, size, creds, w)
                .map_err(|source| PullError::Blob {
                    digest: digest.clone(),
                    source,
                })
        })
    }
}
