//! The CRI v1 protocol as the server and its clients see it: the one place that names the
//! `k8s-cri` crate, so that a proto bump changes this file and nothing else.

pub use k8s_cri::v1::image_service_client::ImageServiceClient;
pub use k8s_cri::v1::image_service_server::{ImageService, ImageServiceServer};
pub use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
pub use k8s_cri::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
pub use k8s_cri::v1::*;

/// The CRI API version this server answers.
pub const API_VERSION: &str = "v1";
