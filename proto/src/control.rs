//! The sandbox control protocol of a pod sentry: runtime → sentry requests ([`ControlMsg`])
//! and sentry → runtime replies and events ([`SentryEvent`]), over the boot socket once a
//! sentry was booted in pod mode. Fds travel as SCM_RIGHTS in the order each message names.

use crate::boot::SentryExit;
use crate::wire::{DecodeError, Decoder, Encoder, Message};

/// A process to start inside the pod: a container's init, or an exec in a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessSpec {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Working directory inside the container (empty: its root).
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Message for ProcessSpec {
    fn encode_into(&self, e: &mut Encoder) {
        self.argv.encode_into(e);
        self.envp.encode_into(e);
        e.bytes(&self.cwd).u32(self.uid).u32(self.gid);
        e.count(self.groups.len());
        for g in &self.groups {
            e.u32(*g);
        }
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let argv = Vec::decode_from(d)?;
        let envp = Vec::decode_from(d)?;
        let cwd = d.bytes()?;
        let uid = d.u32()?;
        let gid = d.u32()?;
        let n = d.count()?;
        let mut groups = Vec::with_capacity(n.min(65536));
        for _ in 0..n {
            groups.push(d.u32()?);
        }
        Ok(ProcessSpec {
            argv,
            envp,
            cwd,
            uid,
            gid,
            groups,
        })
    }
}

/// Runtime → pod sentry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMsg {
    /// Start container `id`: its root is served by the gofer whose socket is the first fd
    /// (read-only roots get an in-memory writable layer); then stdin, stdout, stderr.
    StartContainer {
        id: Vec<u8>,
        overlay_root: bool,
        process: ProcessSpec,
    },
    /// Run another process in container `container`. Fds: stdin, stdout, stderr.
    Exec {
        exec_id: Vec<u8>,
        container: Vec<u8>,
        process: ProcessSpec,
    },
    /// Deliver `signal` to the init process of container `id` (or to exec `id`).
    Signal { id: Vec<u8>, signal: u8 },
    /// Forget container `id`, which has ended: its root is unmounted (its gofer goes away
    /// with it).
    RemoveContainer { id: Vec<u8> },
    /// Report what each container uses ([`SentryEvent::Stats`]).
    Stats,
}

impl Message for ControlMsg {
    fn encode_into(&self, e: &mut Encoder) {
        match self {
            ControlMsg::StartContainer {
                id,
                overlay_root,
                process,
            } => {
                e.u8(0).bytes(id).bool(*overlay_root);
                process.encode_into(e);
            }
            ControlMsg::Exec {
                exec_id,
                container,
                process,
            } => {
                e.u8(1).bytes(exec_id).bytes(container);
                process.encode_into(e);
            }
            ControlMsg::Signal { id, signal } => {
                e.u8(2).bytes(id).u8(*signal);
            }
            ControlMsg::RemoveContainer { id } => {
                e.u8(3).bytes(id);
            }
            ControlMsg::Stats => {
                e.u8(4);
            }
        }
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            0 => ControlMsg::StartContainer {
                id: d.bytes()?,
                overlay_root: d.bool()?,
                process: ProcessSpec::decode_from(d)?,
            },
            1 => ControlMsg::Exec {
                exec_id: d.bytes()?,
                container: d.bytes()?,
                process: ProcessSpec::decode_from(d)?,
            },
            2 => ControlMsg::Signal {
                id: d.bytes()?,
                signal: d.u8()?,
            },
            3 => ControlMsg::RemoveContainer { id: d.bytes()? },
            4 => ControlMsg::Stats,
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "control message",
                    tag: t.into(),
                })
            }
        })
    }
}

/// Pod sentry → runtime: replies to [`ControlMsg`] and lifecycle events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentryEvent {
    /// Container or exec `id` runs as `pid` (in the sandbox's PID namespace).
    Started { id: Vec<u8>, pid: u32 },
    /// Container or exec `id` could not start.
    Failed { id: Vec<u8>, error: Vec<u8> },
    /// The init process of container `id` (or exec `id`) ended; for a container, every other
    /// process of it was killed.
    Exited { id: Vec<u8>, status: SentryExit },
    /// The answer to [`ControlMsg::Stats`]: one entry per container the sentry knows, and the
    /// whole pod's memory.
    Stats {
        containers: Vec<ContainerUsage>,
        pod_memory_bytes: u64,
    },
}

/// What one container uses, as the sentry accounts it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerUsage {
    pub id: Vec<u8>,
    /// CPU time of its processes, live and ended, in nanoseconds.
    pub cpu_ns: u64,
    /// Resident app memory of its live processes (pages of the memory file they map
    /// privately), in bytes.
    pub memory_bytes: u64,
    /// Live processes.
    pub processes: u32,
}

impl Message for SentryEvent {
    fn encode_into(&self, e: &mut Encoder) {
        match self {
            SentryEvent::Started { id, pid } => {
                e.u8(0).bytes(id).u32(*pid);
            }
            SentryEvent::Failed { id, error } => {
                e.u8(1).bytes(id).bytes(error);
            }
            SentryEvent::Exited { id, status } => {
                e.u8(2).bytes(id);
                status.encode_into(e);
            }
            SentryEvent::Stats {
                containers,
                pod_memory_bytes,
            } => {
                e.u8(3).u64(*pod_memory_bytes).count(containers.len());
                for c in containers {
                    e.bytes(&c.id)
                        .u64(c.cpu_ns)
                        .u64(c.memory_bytes)
                        .u32(c.processes);
                }
            }
        }
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            0 => SentryEvent::Started {
                id: d.bytes()?,
                pid: d.u32()?,
            },
            1 => SentryEvent::Failed {
                id: d.bytes()?,
                error: d.bytes()?,
            },
            2 => SentryEvent::Exited {
                id: d.bytes()?,
                status: SentryExit::decode_from(d)?,
            },
            3 => {
                let pod_memory_bytes = d.u64()?;
                let n = d.count()?;
                let mut containers = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    containers.push(ContainerUsage {
                        id: d.bytes()?,
                        cpu_ns: d.u64()?,
                        memory_bytes: d.u64()?,
                        processes: d.u32()?,
                    });
                }
                SentryEvent::Stats {
                    containers,
                    pod_memory_bytes,
                }
            }
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "sentry event",
                    tag: t.into(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_roundtrip() {
        let p = ProcessSpec {
            argv: vec![b"/bin/sh".to_vec()],
            envp: vec![b"A=1".to_vec()],
            cwd: b"/".to_vec(),
            uid: 1000,
            gid: 1000,
            groups: vec![1, 2],
        };
        for m in [
            ControlMsg::StartContainer {
                id: b"c1".to_vec(),
                overlay_root: true,
                process: p.clone(),
            },
            ControlMsg::Exec {
                exec_id: b"e1".to_vec(),
                container: b"c1".to_vec(),
                process: p.clone(),
            },
            ControlMsg::Signal {
                id: b"c1".to_vec(),
                signal: 15,
            },
            ControlMsg::RemoveContainer { id: b"c1".to_vec() },
            ControlMsg::Stats,
        ] {
            assert_eq!(ControlMsg::decode(&m.encode()).unwrap(), m);
        }
        for ev in [
            SentryEvent::Started {
                id: b"c1".to_vec(),
                pid: 7,
            },
            SentryEvent::Failed {
                id: b"c1".to_vec(),
                error: b"no such file".to_vec(),
            },
            SentryEvent::Exited {
                id: b"c1".to_vec(),
                status: SentryExit::Exited(3),
            },
            SentryEvent::Stats {
                containers: vec![ContainerUsage {
                    id: b"c1".to_vec(),
                    cpu_ns: 5,
                    memory_bytes: 4096,
                    processes: 2,
                }],
                pod_memory_bytes: 8192,
            },
        ] {
            assert_eq!(SentryEvent::decode(&ev.encode()).unwrap(), ev);
        }
        assert!(ControlMsg::decode(&[9]).is_err());
    }
}
