//! Start-up messages from the runtime, and the sentry's exit report.
//!
//! The runtime spawns `moat-gofer` and `moat-sentry` each with one unix SOCK_SEQPACKET socket
//! at fd 3 and sends one boot message over it; the fds named below travel with it as
//! SCM_RIGHTS, in the order given. When the app's init process ends, the sentry sends
//! [`SentryExit`] over the same socket.

use crate::wire::{DecodeError, Decoder, Encoder, Message};

/// The fd number the boot socket has in a freshly spawned gofer or sentry.
pub const BOOT_FD: i32 = 3;

/// Runtime → sentry. Fds: `[gofer socket, stdin, stdout, stderr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryBoot {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Working directory inside the sandbox.
    pub cwd: Vec<u8>,
    pub hostname: Vec<u8>,
    /// Log every app syscall (`--strace`).
    pub strace: bool,
    /// The root is read-only on the host; the sentry puts an in-memory writable layer on it.
    pub overlay_root: bool,
    pub uid: u32,
    pub gid: u32,
    /// Interface of the network namespace sent as the fifth fd that the sandbox's netstack
    /// takes over (empty: loopback only, no fifth fd).
    pub net_iface: Vec<u8>,
    /// Pod mode: no command and no root of its own; containers come later as
    /// [`crate::control::ControlMsg`]s over this socket. Fds: only the netns, if any.
    pub pod: bool,
}

impl Message for SentryBoot {
    fn encode_into(&self, e: &mut Encoder) {
        self.argv.encode_into(e);
        self.envp.encode_into(e);
        e.bytes(&self.cwd)
            .bytes(&self.hostname)
            .bool(self.strace)
            .bool(self.overlay_root);
        e.u32(self.uid)
            .u32(self.gid)
            .bytes(&self.net_iface)
            .bool(self.pod);
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(SentryBoot {
            argv: Vec::decode_from(d)?,
            envp: Vec::decode_from(d)?,
            cwd: d.bytes()?,
            hostname: d.bytes()?,
            strace: d.bool()?,
            overlay_root: d.bool()?,
            uid: d.u32()?,
            gid: d.u32()?,
            net_iface: d.bytes()?,
            pod: d.bool()?,
        })
    }
}

/// Runtime → gofer. Fds: `[the socket the sentry will talk over]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoferBoot {
    /// Host path of the root the gofer serves (it pivot_roots into it).
    pub root: Vec<u8>,
    /// Refuse every change to the root (mounted read-only in the gofer's namespace too).
    pub read_only: bool,
}

impl Message for GoferBoot {
    fn encode_into(&self, e: &mut Encoder) {
        e.bytes(&self.root).bool(self.read_only);
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(GoferBoot {
            root: d.bytes()?,
            read_only: d.bool()?,
        })
    }
}

/// How the sandbox's init process ended, sentry → runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentryExit {
    Exited(u8),
    Signaled {
        signal: u8,
        core: bool,
    },
    /// The sentry itself failed (errors are in its log).
    Failed,
}

impl Message for SentryExit {
    fn encode_into(&self, e: &mut Encoder) {
        match *self {
            SentryExit::Exited(code) => e.u8(0).u8(code),
            SentryExit::Signaled { signal, core } => e.u8(1).u8(signal).bool(core),
            SentryExit::Failed => e.u8(2),
        };
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            0 => SentryExit::Exited(d.u8()?),
            1 => SentryExit::Signaled {
                signal: d.u8()?,
                core: d.bool()?,
            },
            2 => SentryExit::Failed,
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "sentry exit",
                    tag: t.into(),
                })
            }
        })
    }
}

/// Runtime → sentry, after boot, over the same socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeMsg {
    /// Deliver `signal` to the sandbox's init process (the runtime got it: Ctrl-C, kill).
    Signal(u8),
}

impl Message for RuntimeMsg {
    fn encode_into(&self, e: &mut Encoder) {
        match *self {
            RuntimeMsg::Signal(s) => e.u8(0).u8(s),
        };
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            0 => RuntimeMsg::Signal(d.u8()?),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "runtime message",
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
    fn boot_messages_roundtrip() {
        let b = SentryBoot {
            argv: vec![b"/bin/sh".to_vec(), b"-c".to_vec(), b"echo hi".to_vec()],
            envp: vec![b"PATH=/bin".to_vec()],
            cwd: b"/".to_vec(),
            hostname: b"moat".to_vec(),
            strace: true,
            overlay_root: false,
            uid: 0,
            gid: 0,
            net_iface: b"eth0".to_vec(),
            pod: true,
        };
        assert_eq!(SentryBoot::decode(&b.encode()).unwrap(), b);
        let g = GoferBoot {
            root: b"/srv/root".to_vec(),
            read_only: true,
        };
        assert_eq!(GoferBoot::decode(&g.encode()).unwrap(), g);
        for x in [
            SentryExit::Exited(3),
            SentryExit::Signaled {
                signal: 11,
                core: true,
            },
        ] {
            assert_eq!(SentryExit::decode(&x.encode()).unwrap(), x);
        }
    }
}
