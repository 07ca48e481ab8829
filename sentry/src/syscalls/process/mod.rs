//! Processes and threads: clone/fork/vfork, execve, exit, wait, ids, limits, futex and the
//! small per-process calls.

mod clone;
mod exec;
mod ids;
mod misc;
mod wait;

pub use clone::*;
pub use exec::*;
pub use ids::*;
pub use misc::*;
pub use wait::*;
