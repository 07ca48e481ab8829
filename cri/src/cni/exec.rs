//! Running one plugin binary the CNI way: the command and its arguments in CNI_* environment
//! variables, the configuration on stdin, the result (or a JSON error) on stdout, with a time limit.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::result::PluginErrorReply;
use super::CniError;
use crate::sys;

/// The most a plugin may print on stdout or stderr; the rest is dropped.
const MAX_OUTPUT: u64 = 4 << 20;

/// A CNI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    /// The value of CNI_COMMAND.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
        }
    }
}

/// One run of a plugin.
pub(super) struct Invocation<'a> {
    /// The plugin's type, for messages.
    pub plugin: &'a str,
    /// The binary found on the bin dirs.
    pub binary: &'a Path,
    pub command: Command,
    /// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH.
    pub env: &'a [(&'static str, String)],
    pub stdin: Vec<u8>,
    pub timeout: Duration,
}

/// Runs the plugin and returns its stdout if it exits 0. A non-zero exit is
/// [`CniError::Plugin`] when the plugin printed a CNI error, [`CniError::PluginFailed`] otherwise.
pub(super) fn invoke(inv: Invocation<'_>) -> Result<Vec<u8>, CniError> {
    let (plugin, command) = (inv.plugin.to_owned(), inv.command);
    let mut child = Process::new(inv.binary)
        .env("CNI_COMMAND", command.as_str())
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a timeout also ends the plugins it delegates to (IPAM).
        .process_group(0)
        .spawn()
        .map_err(|source| CniError::Spawn {
            plugin: plugin.clone(),
            source,
        })?;
    let stdin = child.stdin.take();
    let input = inv.stdin;
    // A plugin that exits without reading its stdin makes this write fail (EPIPE); its exit
    // status then tells what happened, so the write's own error is not kept.
    let writer = thread::spawn(move || {
        if let Some(mut pipe) = stdin {
            let _ = pipe.write_all(&input);
        }
    });
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status = match wait_timeout(&mut child, inv.timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            // The group's id is the plugin's pid, which stays ours until the wait below. The
            // readers end when the last process holding the pipes is gone; they are not waited for.
            if let Err(e) = sys::kill_process_group(child.id()) {
                tracing::warn!(plugin = %plugin, error = %e, "cannot kill a timed-out plugin's group");
                let _ = child.kill();
            }
            let _ = child.wait();
            return Err(CniError::Timeout {
                plugin,
                command: command.as_str(),
                after: inv.timeout,
            });
        }
        Err(source) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CniError::Spawn { plugin, source });
        }
    };
    let _ = writer.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !stderr.is_empty() {
        tracing::debug!(plugin = %plugin, command = command.as_str(), stderr = %String::from_utf8_lossy(&stderr).trim_end(), "plugin stderr");
    }
    if status.success() {
        return Ok(stdout);
    }
    Err(failure(plugin, command, status, &stdout, &stderr))
}

/// The error of a plugin that exited non-zero, from what it printed.
fn failure(
    plugin: String,
    command: Command,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> CniError {
    match serde_json::from_slice::<PluginErrorReply>(stdout) {
        Ok(reply) => CniError::Plugin {
            plugin,
            command: command.as_str(),
            code: reply.code,
            msg: reply.msg,
            details: reply.details,
        },
        Err(_) => {
            let out = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
                stderr
            } else {
                stdout
            };
            CniError::PluginFailed {
                plugin,
                command: command.as_str(),
                status,
                output: String::from_utf8_lossy(out).trim().to_owned(),
            }
        }
    }
}

/// Reads a pipe to its end (or [`MAX_OUTPUT`]) on a thread of its own.
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut out);
        }
        out
    })
}

/// Waits for `child` to exit for at most `timeout`; `None` if it is still running then.
fn wait_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}
