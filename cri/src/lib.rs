//! moat-cri: the Kubernetes CRI v1 server (RuntimeService and ImageService) for Moat.
//! May touch: the host, as root: its root and state directories, CNI, the runtime library.
//! Never: runs app code outside a sentry.
//!
//! The server lands with the CRI issue; the crate exists so the layout of DESIGN.md holds.
