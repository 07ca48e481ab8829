//! moat-cri: the Kubernetes CRI v1 server (RuntimeService and ImageService) for Moat.
//! May touch: the host, as root: its root and state directories, registries, CNI, the runtime library.
//! Never: runs app code outside a sentry, or uses image content whose digest it has not checked.
//!
//! This far it holds the image half: [`reference`] parsing, the [`registry`] client, the
//! content-addressed [`store`] with shared unpacked [`layer`]s, and [`pull`], which ties them
//! together. The gRPC services come next.

pub mod digest;
pub mod layer;
pub mod oci;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
