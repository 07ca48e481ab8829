//! moat-runtime: starts sandboxes (a gofer and a sentry per sandbox) and drives them: one-shot
//! sandboxes (`moat do`), pod sandboxes with several containers, the per-pod shim that the CRI
//! daemon talks to, pods' cgroups and container logs; the `moat` CLI is built on it.
//! May touch: the host, as root: spawning processes, the paths it is told to serve.
//! Never: runs app code itself; everything the app does happens inside the sentry.

pub mod cgroup;
pub mod logs;
pub mod pod;
pub mod sandbox;
pub mod shim;
mod sys;

pub use pod::{PodOptions, PodSandbox, ProcState};
pub use sandbox::{run_do, DoOptions, NetAttach, SandboxError};
