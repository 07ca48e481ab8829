//! The CRI ImageService over the image [`Store`] and [`Puller`]: pull, list, status, remove and
//! filesystem usage. Store and registry work is blocking; it runs on tokio's blocking pool.
//! May touch: the image store under the root, registries through the puller.
//! Never: answers a request with a panic, or reports an image the store does not hold.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Code, Request, Response, Status};

use crate::api;
use crate::digest::Digest;
use crate::pull::{PullError, Puller};
use crate::reference::{Reference, ReferenceError};
use crate::registry::{Credentials, RegistryError};
use crate::store::{ImageRecord, Store, StoreError};

/// Why an ImageService request failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageServiceError {
    #[error("request has no image spec")]
    MissingSpec,
    #[error("image spec names no image")]
    EmptyImage,
    #[error("invalid image reference")]
    Reference(#[from] ReferenceError),
    #[error("auth config's auth field is not base64 of user:password")]
    Auth,
    #[error("cannot pull image {image}")]
    Pull {
        image: String,
        #[source]
        source: Box<PullError>,
    },
    #[error("image store failed")]
    Store(#[from] StoreError),
    #[error("cannot measure {path}")]
    Usage {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image task did not finish")]
    Task(#[from] tokio::task::JoinError),
}

fn registry_code(e: &RegistryError) -> Code {
    match e {
        RegistryError::Transport { .. } | RegistryError::Read { .. } => Code::Unavailable,
        RegistryError::Status { status: 404, .. } => Code::NotFound,
        RegistryError::Status {
            status: 401 | 403, ..
        } => Code::PermissionDenied,
        RegistryError::Status { .. } => Code::Unavailable,
        RegistryError::Unauthorized { .. }
        | RegistryError::Challenge(_)
        | RegistryError::Token { .. } => Code::Unauthenticated,
        RegistryError::DigestMismatch { .. }
        | RegistryError::SizeMismatch { .. }
        | RegistryError::TooLarge { .. } => Code::DataLoss,
        RegistryError::Write { .. } => Code::Internal,
        RegistryError::Certificate { .. }
        | RegistryError::Redirect { .. }
        | RegistryError::Url(_) => Code::Unavailable,
        RegistryError::PlainHttp { .. } | RegistryError::NoHost { .. } => Code::FailedPrecondition,
    }
}

fn pull_code(e: &PullError) -> Code {
    match e {
        PullError::Manifest { source, .. } | PullError::Blob { source, .. } => {
            registry_code(source)
        }
        PullError::ParseManifest { .. }
        | PullError::NoPlatform { .. }
        | PullError::NestedIndex { .. }
        | PullError::Config { .. }
        | PullError::LayerCount { .. }
        | PullError::LayerType { .. } => Code::FailedPrecondition,
        PullError::Store(StoreError::Layer { .. } | StoreError::DigestMismatch { .. }) => {
            Code::DataLoss
        }
        PullError::Store(_) => Code::Internal,
    }
}

impl From<ImageServiceError> for Status {
    fn from(e: ImageServiceError) -> Self {
        let code = match &e {
            ImageServiceError::MissingSpec
            | ImageServiceError::EmptyImage
            | ImageServiceError::Reference(_)
            | ImageServiceError::Auth => Code::InvalidArgument,
            ImageServiceError::Pull { source, .. } => pull_code(source),
            ImageServiceError::Store(_)
            | ImageServiceError::Usage { .. }
            | ImageServiceError::Task(_) => Code::Internal,
        };
        let message = crate::error_chain(&e);
        if code == Code::Internal {
            tracing::error!(error = %message, "image request failed");
        } else {
            tracing::debug!(error = %message, ?code, "image request refused");
        }
        Status::new(code, message)
    }
}

/// Serves the ImageService of one daemon.
#[derive(Debug, Clone)]
pub struct ImageServer {
    puller: Arc<Puller>,
}

impl ImageServer {
    pub fn new(puller: Arc<Puller>) -> Self {
        Self { puller }
    }

    fn store(&self) -> Arc<Store> {
        Arc::clone(self.puller.store())
    }
}

/// Runs blocking image work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageServiceError> + Send + 'static,
) -> Result<T, ImageServiceError> {
    tokio::task::spawn_blocking(f).await?
}

/// The image a spec names; an empty or missing spec is refused.
fn spec_image(spec: Option<&api::ImageSpec>) -> Result<String, ImageServiceError> {
    let spec = spec.ok_or(ImageServiceError::MissingSpec)?;
    let image = spec.image.trim();
    if image.is_empty() {
        return Err(ImageServiceError::EmptyImage);
    }
    Ok(image.to_owned())
}

/// Finds the image `key` names: an image ID (`sha256:<hex>` or the hex), or a reference, which
/// is normalized (`busybox` is `docker.io/library/busybox:latest`).
pub fn find_image(store: &Store, key: &str) -> Result<Option<ImageRecord>, ImageServiceError> {
    if Digest::parse(key).is_ok() || Digest::from_hex(key).is_ok() {
        if let Some(rec) = store.image(key)? {
            return Ok(Some(rec));
        }
    }
    let r = Reference::parse(key)?;
    let normalized = match r.digest() {
        Some(d) => format!("{}@{d}", r.name()),
        None => r.to_string(),
    };
    Ok(store.image(&normalized)?)
}

/// The credentials an AuthConfig carries, if any: a registry or identity token used as the
/// bearer token, else username and password, else `auth` (base64 of `user:password`).
fn credentials(auth: Option<&api::AuthConfig>) -> Result<Option<Credentials>, ImageServiceError> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if !auth.registry_token.is_empty() {
        return Ok(Some(Credentials::Bearer(auth.registry_token.clone())));
    }
    if !auth.identity_token.is_empty() {
        return Ok(Some(Credentials::Bearer(auth.identity_token.clone())));
    }
    if !auth.username.is_empty() || !auth.password.is_empty() {
        return Ok(Some(Credentials::Basic {
            username: auth.username.clone(),
            password: auth.password.clone(),
        }));
    }
    if !auth.auth.is_empty() {
        let decoded = base64_decode(auth.auth.trim()).ok_or(ImageServiceError::Auth)?;
        let text = String::from_utf8(decoded).map_err(|_| ImageServiceError::Auth)?;
        let (username, password) = text.split_once(':').ok_or(ImageServiceError::Auth)?;
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(None)
}

/// Decodes standard base64 (RFC 4648, `=` padding optional); `None` if malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | value(c)?;
        }
        for _ in chunk.len()..4 {
            acc <<= 6;
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(bytes.get(1..chunk.len()).unwrap_or_default());
    }
    Some(out)
}

/// The user an image's config names: a numeric UID, or a user name.
fn image_user(store: &Store, rec: &ImageRecord) -> (Option<api::Int64Value>, String) {
    let user = store
        .read_blob(&rec.config_digest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("config")
                .and_then(|c| c.get("User"))
                .and_then(|u| u.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let name = user.split(':').next().unwrap_or_default();
    match name.parse::<i64>() {
        Ok(uid) => (Some(api::Int64Value { value: uid }), String::new()),
        Err(_) => (None, name.to_owned()),
    }
}

fn to_api(store: &Store, rec: &ImageRecord) -> api::Image {
    let (uid, username) = image_user(store, rec);
    api::Image {
        id: rec.id.to_string(),
        repo_tags: rec.repo_tags.clone(),
        repo_digests: rec.repo_digests.clone(),
        size: rec.size(),
        uid,
        username,
        spec: Some(api::ImageSpec {
            image: rec.id.to_string(),
            ..Default::default()
        }),
        pinned: false,
    }
}

/// The verbose `info` entry of ImageStatus: the record and the image config, as JSON.
fn verbose_info(store: &Store, rec: &ImageRecord) -> HashMap<String, String> {
    let config = store
        .read_blob(&rec.config_digest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let info = serde_json::json!({ "image": rec, "config": config });
    HashMap::from([("info".to_owned(), info.to_string())])
}

fn usage(root: &Path) -> Result<(u64, u64), ImageServiceError> {
    crate::disk_usage(root)
        .map_err(|crate::UsageError { path, source }| ImageServiceError::Usage { path, source })
}

#[tonic::async_trait]
impl api::ImageService for ImageServer {
    async fn list_images(
        &self,
        request: Request<api::ListImagesRequest>,
    ) -> Result<Response<api::ListImagesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|i| !i.trim().is_empty());
        tracing::debug!(filter = ?filter, "list images");
        let store = self.store();
        let images = blocking(move || {
            let records = match filter {
                Some(key) => find_image(&store, key.trim())?.into_iter().collect(),
                None => store.images()?,
            };
            Ok(records.iter().map(|r| to_api(&store, r)).collect())
        })
        .await?;
        Ok(Response::new(api::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        request: Request<api::ImageStatusRequest>,
    ) -> Result<Response<api::ImageStatusResponse>, Status> {
        let req = request.into_inner();
        let key = spec_image(req.image.as_ref())?;
        tracing::debug!(image = %key, verbose = req.verbose, "image status");
        let store = self.store();
        let resp = blocking(move || {
            let Some(rec) = find_image(&store, &key)? else {
                return Ok(api::ImageStatusResponse::default());
            };
            Ok(api::ImageStatusResponse {
                image: Some(to_api(&store, &rec)),
                info: if req.verbose {
                    verbose_info(&store, &rec)
                } else {
                    HashMap::new()
                },
            })
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn pull_image(
        &self,
        request: Request<api::PullImageRequest>,
    ) -> Result<Response<api::PullImageResponse>, Status> {
        let req = request.into_inner();
        let image = spec_image(req.image.as_ref())?;
        let reference = Reference::parse(&image).map_err(ImageServiceError::from)?;
        let creds = credentials(req.auth.as_ref())?;
        let puller = Arc::clone(&self.puller);
        tracing::debug!(image = %reference, "pull");
        let outcome = blocking(move || {
            puller
                .pull(&reference, creds.as_ref())
                .map_err(|e| ImageServiceError::Pull {
                    image,
                    source: Box::new(e),
                })
        })
        .await?;
        Ok(Response::new(api::PullImageResponse {
            image_ref: outcome.image.id.to_string(),
        }))
    }

    async fn remove_image(
        &self,
        request: Request<api::RemoveImageRequest>,
    ) -> Result<Response<api::RemoveImageResponse>, Status> {
        let key = spec_image(request.into_inner().image.as_ref())?;
        tracing::debug!(image = %key, "remove image");
        let store = self.store();
        blocking(move || {
            // Removing an image that is not there is what the caller wanted: success.
            if let Some(rec) = find_image(&store, &key)? {
                store.remove_image(&rec.id)?;
                let freed = store.collect_garbage()?;
                tracing::info!(id = %rec.id, blobs = freed.blobs_removed, layers = freed.layers_removed, "removed image");
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(api::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<api::ImageFsInfoRequest>,
    ) -> Result<Response<api::ImageFsInfoResponse>, Status> {
        let root = self.store().root().to_owned();
        let fs = blocking(move || {
            let (bytes, inodes) = usage(&root)?;
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or_default();
            Ok(api::FilesystemUsage {
                timestamp,
                fs_id: Some(api::FilesystemIdentifier {
                    mountpoint: root.display().to_string(),
                }),
                used_bytes: Some(api::UInt64Value { value: bytes }),
                inodes_used: Some(api::UInt64Value { value: inodes }),
            })
        })
        .await?;
        Ok(Response::new(api::ImageFsInfoResponse {
            image_filesystems: vec![fs],
            container_filesystems: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_references_and_empty_specs_are_invalid_argument() {
        let st = Status::from(ImageServiceError::from(
            Reference::parse("Bad Ref").expect_err("invalid"),
        ));
        assert_eq!(st.code(), Code::InvalidArgument);
        assert!(st.message().contains("Bad Ref"), "{}", st.message());
        let empty = api::ImageSpec::default();
        let e = spec_image(Some(&empty)).expect_err("empty spec");
        assert_eq!(Status::from(e).code(), Code::InvalidArgument);
        let e = spec_image(None).expect_err("no spec");
        assert_eq!(Status::from(e).code(), Code::InvalidArgument);
    }

    #[test]
    fn registry_failures_keep_their_meaning_as_codes() {
        let pull = |source| ImageServiceError::Pull {
            image: "x".into(),
            source: Box::new(PullError::Manifest {
                image: "x".into(),
                reference: "latest".into(),
                source,
            }),
        };
        let missing = RegistryError::Status {
            url: "u".into(),
            status: 404,
            body: "manifest unknown".into(),
        };
        let st = Status::from(pull(missing));
        assert_eq!(st.code(), Code::NotFound);
        assert!(
            st.message().contains("manifest unknown"),
            "{}",
            st.message()
        );
        let down = RegistryError::Status {
            url: "u".into(),
            status: 503,
            body: String::new(),
        };
        assert_eq!(Status::from(pull(down)).code(), Code::Unavailable);
        let denied = RegistryError::Unauthorized { url: "u".into() };
        assert_eq!(Status::from(pull(denied)).code(), Code::Unauthenticated);
    }

    #[test]
    fn auth_config_prefers_tokens_then_basic() {
        let mut a = api::AuthConfig {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        let basic = |u: &str, p: &str| {
            Some(Credentials::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(credentials(Some(&a)).ok(), Some(basic("u", "p")));
        a.registry_token = "t".into();
        assert_eq!(
            credentials(Some(&a)).ok(),
            Some(Some(Credentials::Bearer("t".into())))
        );
        let encoded = api::AuthConfig {
            auth: "dXNlcjpwYTpzcw==".into(), // user:pa:ss
            ..Default::default()
        };
        assert_eq!(
            credentials(Some(&encoded)).ok(),
            Some(basic("user", "pa:ss"))
        );
        let garbage = api::AuthConfig {
            auth: "!!".into(),
            ..Default::default()
        };
        let e = credentials(Some(&garbage)).expect_err("not base64");
        assert_eq!(Status::from(e).code(), Code::InvalidArgument);
        assert_eq!(
            credentials(Some(&api::AuthConfig::default())).ok(),
            Some(None)
        );
        assert_eq!(credentials(None).ok(), Some(None));
    }

    #[test]
    fn base64_decodes_rfc4648_vectors_and_refuses_garbage() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64_decode(enc).as_deref(),
                Some(plain.as_bytes()),
                "{enc}"
            );
        }
        for bad in ["Z", "Zm9v*", "Zg===", "Zm 9v"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
