//! A `moat-cri` child on a socket of its own, and tonic clients for it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use moat_cri::api::{ImageServiceClient, RuntimeServiceClient};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A running `moat-cri`; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `moat-cri` with its socket, root and state under `dir`, plus `extra` flags.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let socket = dir.join("cri.sock");
        Self::start_at(
            dir,
            &socket,
            &[&format!("--listen=unix://{}", socket.display())],
            extra,
        )
    }

    pub fn start_at(dir: &Path, socket: &Path, listen: &[&str], extra: &[&str]) -> Self {
        let n = fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("daemon-{n}.log"));
        let out = fs::File::create(&log).expect("daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_moat-cri"))
            .args(listen)
            .arg(format!("--root={}", dir.join("root").display()))
            .arg(format!("--state={}", dir.join("state").display()))
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("start moat-cri");
        let mut d = Self {
            child,
            socket: socket.to_owned(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!(
                    "moat-cri exited with {status} before serving:\n{}",
                    d.log_text()
                );
            }
            if std::os::unix::net::UnixStream::connect(&d.socket).is_ok() {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "moat-cri did not serve within 30s:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        let path = self.socket.clone();
        Endpoint::try_from("http://[::]:50051")
            .expect("static endpoint")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await
            .expect("connect to moat-cri")
    }

    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }

    /// `kill -9`, as a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` and waits for the exit.
    pub fn stop(mut self, signal: &str) -> ExitStatus {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for moat-cri") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "moat-cri did not stop on {signal}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
