//! The gRPC server: the CRI RuntimeService and ImageService on one unix socket.
//! May touch: the socket path (a stale socket file there is replaced), the root and state dirs.
//! Never: takes over a socket another live daemon is serving.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;

use crate::authority::AuthorityFix;

use crate::api;
use crate::cni::{Cni, CniConfig};
use crate::config::Config;
use crate::containers::Containers;
use crate::image_service::ImageServer;
use crate::pods::{sibling_moat, Pods};
use crate::pull::Puller;
use crate::registry::RegistryClient;
use crate::runtime_service::RuntimeServer;
use crate::state::{StateError, StateStore};
use crate::store::{Store, StoreError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("another process is serving {0}")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket")]
    NotSocket(PathBuf),
    #[error("cannot remove stale socket {path}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the image store")]
    Store(#[from] StoreError),
    #[error("cannot open the state store")]
    State(#[from] StateError),
    #[error("gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
}

fn create_dir(path: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(path).map_err(|source| ServerError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

/// Listens on `path`, replacing a socket file that no process answers on.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse(path.to_owned()));
            }
            tracing::warn!(socket = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(_) => return Err(ServerError::NotSocket(path.to_owned())),
        Err(_) => {}
    }
    UnixListener::bind(path).map_err(|source| ServerError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// Serves both CRI services on `config.socket` until `shutdown` completes, then removes the
/// socket file.
pub async fn serve(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    // The socket first: a second daemon given a live socket stops before it touches the root
    // (opening the store empties its tmp/, which the first daemon may be using).
    let listener = bind(&config.socket)?;
    let store = create_dir(&config.root)
        .and_then(|()| create_dir(&config.state))
        .and_then(|()| Ok(Store::open(config.image_root())?));
    let stores = store.and_then(|store| Ok((store, StateStore::open_in(&config.root)?)));
    let (store, state) = match stores {
        Ok((store, state)) => (Arc::new(store), Arc::new(state)),
        Err(e) => {
            let _ = std::fs::remove_file(&config.socket);
            return Err(e);
        }
    };
    let cni = Cni::new(CniConfig::new(
        config.cni_conf_dir.clone(),
        config.cni_bin_dirs.clone(),
        config.root.join("cni-cache"),
    ));
    let pods = Arc::new(Pods::new(
        state,
        cni,
        &config.state,
        config.runtime_handlers.clone(),
        sibling_moat(),
        config.cgroup_driver,
    ));
    let containers = Arc::new(Containers::new(
        pods.store_arc(),
        store.clone(),
        pods.clone(),
        &config.root,
    ));
    match containers.recover() {
        Ok(n) if n > 0 => tracing::info!(running = n, "watching the containers found running"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot recover containers"),
    }
    let puller = Arc::new(Puller::new(
        RegistryClient::new(config.registry_options()),
        store,
    ));
    tracing::info!(socket = %config.socket.display(), "serving");
    let result = tonic::transport::Server::builder()
        .add_service(api::RuntimeServiceServer::new(RuntimeServer::new(
            config.runtime_handlers.clone(),
            pods,
            containers,
            match config.cgroup_driver {
                crate::config::CgroupDriver::Cgroupfs => api::CgroupDriver::Cgroupfs,
                crate::config::CgroupDriver::Systemd => api::CgroupDriver::Systemd,
            },
        )))
        .add_service(api::ImageServiceServer::new(ImageServer::new(puller)))
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener).map(|conn| conn.map(AuthorityFix::new)),
            shutdown,
        )
        .await;
    let _ = std::fs::remove_file(&config.socket);
    tracing::info!(socket = %config.socket.display(), "stopped");
    Ok(result?)
}
