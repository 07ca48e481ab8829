//! Pods for the tests that run them: a CNI network of the test's own (real bridge,
//! host-local and portmap plugins), a `moat-cri` that uses it, and what to look for on the host
//! (shims and their processes).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moat_cri::api::{self, RuntimeServiceClient};
use tonic::transport::Channel;

use super::Daemon;

pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Starts `moat-cri` with socket, root and state under `dir` and CNI configs from `conf_dir`.
pub fn start_daemon(dir: &Path, conf_dir: &Path) -> Daemon {
    let moat = Path::new(env!("CARGO_BIN_EXE_moat-cri")).with_file_name("moat");
    assert!(
        moat.is_file(),
        "{} missing: build the binaries first (cargo build --workspace --bins)",
        moat.display()
    );
    Daemon::start(
        dir,
        &[
            &format!("--cni-conf-dir={}", conf_dir.display()),
            &format!("--cni-bin-dir={PLUGIN_DIR}"),
        ],
    )
}

/// A CNI network of its own for one test: bridge `mq<pid><k>`, subnet `10.<x>.<k>.0/24`.
pub struct Net {
    /// The test's directory, whose pods [`Drop`] ends if the test failed half-way.
    pub dir: PathBuf,
    pub conf_dir: PathBuf,
    pub bridge: String,
    pub prefix: String,
    pub host_port: u16,
}

impl Net {
    pub fn new(dir: &Path, k: u32) -> Self {
        for plugin in ["bridge", "host-local", "portmap"] {
            assert!(
                Path::new(PLUGIN_DIR).join(plugin).is_file(),
                "CNI plugin {plugin} missing: run scripts/setup.sh"
            );
        }
        let pid = std::process::id();
        let x = 100 + pid % 100;
        let prefix = format!("10.{x}.{k}.");
        let bridge = format!("mq{pid}{k}");
        let conf_dir = dir.join("net.d");
        fs::create_dir_all(&conf_dir).unwrap();
        let list = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("moat-pods-{pid}-{k}"),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": format!("{prefix}0/24")}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": dir.join("ipam"),
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        fs::write(conf_dir.join("10-moat.conflist"), list.to_string()).unwrap();
        let host_port = u16::try_from(20000 + (pid % 3000) * 3 + k).unwrap();
        Self {
            dir: dir.to_owned(),
            conf_dir,
            bridge,
            prefix,
            host_port,
        }
    }

    /// The interfaces plugged into the bridge.
    pub fn ports(&self) -> Vec<String> {
        fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // What a failed test left: its pods' processes, container roots, cgroups and
        // namespace mounts.
        let mut pod_ids = Vec::new();
        for pod in fs::read_dir(self.dir.join("state/pods"))
            .into_iter()
            .flatten()
        {
            let Ok(pod) = pod else { continue };
            for shim in shims(&pod.path()) {
                for pid in family(shim) {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
            pod_ids.push(pod.file_name().to_string_lossy().into_owned());
        }
        for root in fs::read_dir(self.dir.join("root/containers"))
            .into_iter()
            .flatten()
        {
            let Ok(root) = root else { continue };
            let _ = Command::new("umount")
                .arg("-l")
                .arg(root.path().join("rootfs"))
                .stderr(Stdio::null())
                .status();
        }
        for h in fs::read_dir("/sys/fs/cgroup").into_iter().flatten() {
            let Ok(h) = h else { continue };
            for id in &pod_ids {
                let _ = fs::remove_dir(h.path().join("moat").join(format!("moat-{id}")));
            }
        }
        for ns in fs::read_dir(self.dir.join("state/netns"))
            .into_iter()
            .flatten()
        {
            let Ok(ns) = ns else { continue };
            let _ = Command::new("umount")
                .arg("-l")
                .arg(ns.path())
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn config(name: &str, labels: &[(&str, &str)], host_port: u16) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        port_mappings: vec![api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port: 8080,
            host_port: i32::from(host_port),
            host_ip: String::new(),
        }],
        ..Default::default()
    }
}

pub async fn run(rt: &mut RuntimeServiceClient<Channel>, config: api::PodSandboxConfig) -> String {
    rt.run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(config),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

/// The pids of `moat shim --dir <dir>` processes.
pub fn shims(dir: &Path) -> Vec<u32> {
    let want = dir.as_os_str().as_encoded_bytes();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            (args.get(1) == Some(&&b"shim"[..])
                && args.windows(2).any(|w| w[0] == b"--dir" && w[1] == want))
            .then_some(pid)
        })
        .collect()
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// State and parent of process `pid`, from /proc/<pid>/stat.
pub fn stat_of(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state ppid ...
    let mut rest = stat[stat.rfind(')')? + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// `pid` and its live descendants.
pub fn family(pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let (state, ppid) = stat_of(pid)?;
            (state != 'Z').then_some((pid, ppid))
        })
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        out.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

pub fn alive(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state != 'Z')
}
