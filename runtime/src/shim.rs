//! The pod shim: one process per pod that owns the pod's sandbox (its sentry and gofers) and
//! its containers' log writers, and serves requests on a unix socket in the pod's state
//! directory. The CRI daemon talks to pods only through their shims, so it can restart (even
//! after kill -9) while pods keep running, and find them again by their directories.
//!
//! Protocol: one JSON [`Request`] per line, one JSON [`Response`] per line back, on a unix
//! stream socket `<dir>/shim.sock`; any number of clients, one after another or at once.
//! Exits of containers and execs are kept, so a client that was away learns them by asking.

use std::io::{BufRead, BufReader, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_proto::boot::SentryExit;
use moat_proto::control::ProcessSpec;
use serde::{Deserialize, Serialize};

use crate::logs::{LogWriter, DEFAULT_MAX_LINE_SIZE};
use crate::pod::{PodOptions, PodSandbox, ProcState};
use crate::sandbox::NetAttach;

/// The socket a shim serves, in its pod directory.
pub const SOCKET: &str = "shim.sock";

/// A process as the protocol carries it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
}

impl Process {
    fn spec(&self) -> ProcessSpec {
        ProcessSpec {
            argv: self.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            envp: self.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
            cwd: self.cwd.as_bytes().to_vec(),
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
        }
    }
}

/// A client's request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start container `id` on `rootfs`; its stdout and stderr go to `log_path` in the CRI
    /// log format (none: they are discarded).
    Start {
        id: String,
        rootfs: PathBuf,
        read_only: bool,
        process: Process,
        #[serde(default)]
        log_path: Option<PathBuf>,
    },
    /// Run `process` in container `container` and wait for it (at most `timeout_ms`, 0: no
    /// limit), returning its output.
    ExecSync {
        id: String,
        container: String,
        process: Process,
        timeout_ms: u64,
    },
    /// Deliver `signal` to the process of container or exec `id`.
    Signal { id: String, signal: u8 },
    /// Where container or exec `id` stands.
    State { id: String },
    /// Where container or exec `id` stands once it has ended, or after `timeout_ms` (0: no
    /// limit).
    Wait { id: String, timeout_ms: u64 },
    /// Forget ended container `id`: its root, gofer and log writer go.
    Remove { id: String },
    /// What each container uses, as the sentry accounts it.
    Stats,
    /// Reopen container `id`'s log file (after kubelet rotated it).
    ReopenLog { id: String },
    /// Stop every container and end the pod and the shim.
    Shutdown,
}

/// How a container or exec ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Exited {
        code: u8,
    },
    Signaled {
        signal: u8,
    },
    /// The sentry itself went away.
    Lost,
}

impl From<SentryExit> for Ended {
    fn from(e: SentryExit) -> Self {
        match e {
            SentryExit::Exited(code) => Ended::Exited { code },
            SentryExit::Signaled { signal, .. } => Ended::Signaled { signal },
            SentryExit::Failed => Ended::Lost,
        }
    }
}

/// The shim's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Started {
        pid: u32,
    },
    Output {
        ended: Option<Ended>,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        timed_out: bool,
    },
    State {
        pid: Option<u32>,
        ended: Option<Ended>,
    },
    Stats {
        containers: Vec<Usage>,
        /// App memory of the whole pod.
        memory_bytes: u64,
    },
    Done,
    Error {
        message: String,
    },
}

/// What one container uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    pub id: String,
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub processes: u32,
}

/// How long ExecSync waits for the output pipes to close once its command ended (a
/// background child may hold them open).
const EXEC_OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How long a stats request waits for the sentry.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

struct Shim {
    pod: PodSandbox,
    logs: Mutex<std::collections::HashMap<String, Arc<LogWriter>>>,
    execs: Mutex<u64>,
}

fn null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
}

impl Shim {
    fn handle(&self, r: Request) -> Response {
        let err = |message: String| Response::Error { message };
        match r {
            Request::Start {
                id,
                rootfs,
                read_only,
                process,
                log_path,
            } => {
                let (log, ow, ew) = match start_log(log_path.as_deref()) {
                    Ok(l) => l,
                    Err(e) => return err(e),
                };
                let stdin = match null() {
                    Ok(f) => f,
                    Err(e) => return err(format!("cannot open /dev/null: {e}")),
                };
                match self.pod.start_container(
                    &id,
                    &rootfs,
                    read_only,
                    process.spec(),
                    [stdin, ow, ew],
                ) {
                    Ok(pid) => {
                        if let Some(log) = log {
                            self.logs
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(id, Arc::new(log));
                        }
                        Response::Started { pid }
                    }
                    Err(e) => err(e.to_string()),
                }
            }
            Request::ExecSync {
                id,
                container,
                process,
                timeout_ms,
            } => self.exec_sync(&id, &container, &process, timeout_ms),
            Request::Signal { id, signal } => match self.pod.signal(&id, signal) {
                Ok(()) => Response::Done,
                Err(e) => err(e.to_string()),
            },
            Request::State { id } => match self.pod.state(&id) {
                None => err(format!("no container or exec {id}")),
                Some(s) => state_response(s),
            },
            Request::Wait { id, timeout_ms } => {
                if self.pod.state(&id).is_none() {
                    return err(format!("no container or exec {id}"));
                }
                let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
                let _ = self.pod.wait(&id, timeout);
                match self.pod.state(&id) {
                    None => err(format!("{id} was removed")),
                    Some(s) => state_response(s),
                }
            }
            Request::Remove { id } => match self.pod.remove_container(&id) {
                Ok(()) => {
                    self.logs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    Response::Done
                }
                Err(e) => err(e.to_string()),
            },
            Request::Stats => match self.pod.stats(STATS_TIMEOUT) {
                Ok(u) => Response::Stats {
                    containers: u
                        .containers
                        .into_iter()
                        .map(|c| Usage {
                            id: String::from_utf8_lossy(&c.id).into_owned(),
                            cpu_ns: c.cpu_ns,
                            memory_bytes: c.memory_bytes,
                            processes: c.processes,
                        })
                        .collect(),
                    memory_bytes: u.memory_bytes,
                },
                Err(e) => err(e.to_string()),
            },
            Request::ReopenLog { id } => {
                let log = self
                    .logs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&id)
                    .cloned();
                match log.map(|l| l.reopen()) {
                    None => err(format!("no container {id}")),
                    Some(Ok(())) => Response::Done,
                    Some(Err(e)) => err(e.to_string()),
                }
            }
            Request::Shutdown => Response::Done,
        }
    }

    fn exec_sync(&self, id: &str, container: &str, p: &Process, timeout_ms: u64) -> Response {
        let err = |message: String| Response::Error { message };
        let n = {
            let mut g = self.execs.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            *g
        };
        let exec_id = format!("{id}.{n}");
        let (Ok((or, ow)), Ok((er, ew)), Ok(stdin)) = (std::io::pipe(), std::io::pipe(), null())
        else {
            return err("cannot make pipes".into());
        };
        // Each stream is gathered as it comes; what a background child keeps writing after the
        // command ended is not waited for past a short grace.
        let bufs: [Arc<Mutex<Vec<u8>>>; 2] = Default::default();
        let done = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        for (mut r, buf) in [or, er].into_iter().zip(bufs.clone()) {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 16 * 1024];
                while let Ok(n) = r.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
                let (m, cv) = &*done;
                *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                cv.notify_all();
            });
        }
        if let Err(e) = self
            .pod
            .exec(&exec_id, container, p.spec(), [stdin, ow.into(), ew.into()])
        {
            return err(e.to_string());
        }
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        let ended = self.pod.wait(&exec_id, timeout);
        if ended.is_none() {
            // Timed out: the process is killed, as kubelet's ExecSync timeout expects.
            let _ = self.pod.signal(&exec_id, 9);
            let _ = self.pod.wait(&exec_id, Some(Duration::from_secs(10)));
        }
        self.pod.forget(&exec_id);
        {
            let (m, cv) = &*done;
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let _ = cv
                .wait_timeout_while(g, EXEC_OUTPUT_GRACE, |n| *n < 2)
                .unwrap_or_else(|e| e.into_inner());
        }
        let [stdout, stderr] =
            bufs.map(|b| std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner())));
        Response::Output {
            ended: ended.map(Ended::from),
            stdout,
            stderr,
            timed_out: ended.is_none(),
        }
    }
}

/// The log writer of a starting container (none without a log path) and the stdout and
/// stderr fds to give it.
fn start_log(path: Option<&Path>) -> Result<(Option<LogWriter>, OwnedFd, OwnedFd), String> {
    let Some(path) = path else {
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| format!("cannot open /dev/null: {e}"))
        };
        return Ok((None, open()?, open()?));
    };
    let (or, ow) = std::io::pipe().map_err(|e| format!("cannot make pipes: {e}"))?;
    let (er, ew) = std::io::pipe().map_err(|e| format!("cannot make pipes: {e}"))?;
    let max = NonZeroUsize::new(DEFAULT_MAX_LINE_SIZE).unwrap_or(NonZeroUsize::MIN);
    let log = LogWriter::start(path, max, Some(or.into()), Some(er.into()))
        .map_err(|e| format!("cannot open the log {}: {e}", path.display()))?;
    Ok((Some(log), ow.into(), ew.into()))
}

fn state_response(s: ProcState) -> Response {
    match s {
        ProcState::Starting => Response::State {
            pid: None,
            ended: None,
        },
        ProcState::Running { pid } => Response::State {
            pid: Some(pid),
            ended: None,
        },
        ProcState::Exited { pid, status } => Response::State {
            pid: Some(pid),
            ended: Some(status.into()),
        },
        ProcState::Failed(message) => Response::Error { message },
    }
}

/// Runs a shim in the foreground: boots the pod and serves `<dir>/shim.sock` until a
/// Shutdown request.
pub fn serve(dir: &Path, opts: &PodOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let pod = PodSandbox::start(opts).context("cannot start the pod")?;
    let sock = dir.join(SOCKET);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .with_context(|| format!("cannot listen on {}", sock.display()))?;
    let shim = Arc::new(Shim {
        pod,
        logs: Mutex::default(),
        execs: Mutex::new(0),
    });
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shim = shim.clone();
        let sock = sock.clone();
        std::thread::spawn(move || {
            if serve_conn(&shim, conn) {
                // Shutdown: the pod ends when the process does.
                let _ = std::fs::remove_file(&sock);
                std::process::exit(0);
            }
        });
    }
    Ok(())
}

/// Serves one client; true when it asked to shut down.
fn serve_conn(shim: &Shim, conn: UnixStream) -> bool {
    let Ok(mut out) = conn.try_clone() else {
        return false;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return false };
        let (resp, shutdown) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Shutdown) => (Response::Done, true),
            Ok(r) => (shim.handle(r), false),
            Err(e) => (
                Response::Error {
                    message: format!("bad request: {e}"),
                },
                false,
            ),
        };
        let mut text = serde_json::to_string(&resp).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return false;
        }
        if shutdown {
            return true;
        }
    }
    false
}

/// How [`ShimClient::launch`] starts a shim.
#[derive(Debug, Clone, Copy, Default)]
pub struct LaunchOptions<'a> {
    pub hostname: &'a str,
    /// The pod's interface.
    pub net: Option<&'a NetAttach>,
    /// The pod's cgroup (relative to each hierarchy's root), made beforehand: the shim joins it
    /// before it boots the sentry.
    pub cgroup: Option<&'a Path>,
    /// The oom_score_adj of the shim and everything it starts.
    pub oom_score_adj: Option<i64>,
}

/// Enters the pod's cgroup and sets its oom_score_adj, before anything of the pod is started
/// (children inherit both). An oom_score_adj this process may not set (lowering it needs
/// CAP_SYS_RESOURCE) is skipped with a warning.
pub fn enter_pod_limits(cgroup: Option<&Path>, oom_score_adj: Option<i64>) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(rel) = cgroup {
        let cg = crate::cgroup::Cgroup::at(rel)?;
        cg.join(std::process::id())
            .with_context(|| format!("cannot join the pod cgroup {}", rel.display()))?;
    }
    if let Some(adj) = oom_score_adj {
        if let Err(e) = crate::cgroup::set_oom_score_adj(adj) {
            tracing::warn!(oom_score_adj = adj, error = %e, "cannot set the pod's oom_score_adj (lowering it needs CAP_SYS_RESOURCE); skipped");
        }
    }
    Ok(())
}

/// A client of one pod's shim.
pub struct ShimClient {
    conn: BufReader<UnixStream>,
}

/// Why talking to a shim failed.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot reach the shim at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the shim connection broke")]
    Io(#[from] std::io::Error),
    #[error("bad answer from the shim")]
    Decode(#[from] serde_json::Error),
    #[error("cannot start the shim")]
    Spawn(#[source] std::io::Error),
    #[error("the shim did not come up within {0:?} (see {1})")]
    Timeout(Duration, PathBuf),
}

impl ShimClient {
    /// Connects to the shim of the pod directory `dir`.
    pub fn connect(dir: &Path) -> Result<ShimClient, ShimError> {
        let path = dir.join(SOCKET);
        let s = UnixStream::connect(&path).map_err(|source| ShimError::Connect { path, source })?;
        Ok(ShimClient {
            conn: BufReader::new(s),
        })
    }

    /// Starts `moat shim` for a new pod in `dir`, detached from the caller (its own session,
    /// its log in `<dir>/shim.log`), and connects once it serves.
    pub fn launch(moat: &Path, dir: &Path, o: &LaunchOptions<'_>) -> Result<ShimClient, ShimError> {
        let (hostname, net) = (o.hostname, o.net);
        std::fs::create_dir_all(dir).map_err(ShimError::Spawn)?;
        let log_path = dir.join("shim.log");
        let log = std::fs::File::create(&log_path).map_err(ShimError::Spawn)?;
        let mut cmd = Command::new(moat);
        cmd.arg("shim")
            .arg("--dir")
            .arg(dir)
            .arg("--hostname")
            .arg(hostname);
        if let Some(n) = net {
            cmd.arg("--net")
                .arg(format!("{}:{}", n.netns.display(), n.iface));
        }
        if let Some(c) = o.cgroup {
            cmd.arg("--cgroup").arg(c);
        }
        if let Some(adj) = o.oom_score_adj {
            cmd.arg(format!("--oom-score-adj={adj}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env(
                "MOAT_LOG",
                std::env::var("MOAT_LOG").unwrap_or_else(|_| "info".into()),
            );
        crate::sys::detach(&mut cmd);
        let mut child = cmd.spawn().map_err(ShimError::Spawn)?;
        // Reaped by a thread, so a shim that ends while the caller lives leaves no zombie.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = ShimClient::connect(dir) {
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                return Ok(c);
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(ShimError::Timeout(Duration::ZERO, log_path));
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ShimError::Timeout(Duration::from_secs(30), log_path));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Bounds how long a call may wait for the shim (None: no bound). A call that runs out of
    /// time fails with a timed-out I/O error; the connection is not to be used again.
    pub fn set_timeout(&mut self, t: Option<Duration>) -> Result<(), ShimError> {
        let s = self.conn.get_ref();
        s.set_read_timeout(t)?;
        s.set_write_timeout(t)?;
        Ok(())
    }

    /// Sends one request and reads its answer.
    pub fn call(&mut self, r: &Request) -> Result<Response, ShimError> {
        let mut text = serde_json::to_string(r)?;
        text.push('\n');
        self.conn.get_mut().write_all(text.as_bytes())?;
        let mut line = String::new();
        if self.conn.read_line(&mut line)? == 0 {
            return Err(ShimError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(serde_json::from_str(&line)?)
    }
}
