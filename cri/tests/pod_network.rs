//! A pod the way RunPodSandbox will make it: a network namespace, the real CNI plugins
//! (bridge, host-local, portmap) give it eth0 and an address, a pod sentry takes that interface
//! over (its netstack answers for the pod IP), a container serves HTTP in it; the host reaches
//! it at the pod IP and through the portmap host port; teardown leaves nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moat_cri::cni::{Cni, CniConfig, PodNetwork, PortMapping, Protocol, DEFAULT_IFNAME};
use moat_cri::netns::NetNs;
use moat_proto::control::ProcessSpec;
use moat_runtime::{NetAttach, PodOptions, PodSandbox};

const PLUGIN_DIR: &str = "/usr/lib/cni";

fn rootfs(dir: &Path) {
    for d in ["bin", "proc", "dev", "tmp", "www"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::write(dir.join("www/index.html"), "hello from the pod\n").unwrap();
}

fn http_get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(str::to_owned)
}

fn get_until(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(body) = http_get(addr) {
            return body;
        }
        assert!(Instant::now() < deadline, "nothing answered at {addr}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_cni_networked_pod_serves_the_host_at_its_ip_and_host_port() {
    for plugin in ["bridge", "host-local", "portmap"] {
        assert!(
            Path::new(PLUGIN_DIR).join(plugin).is_file(),
            "CNI plugin {plugin} missing: run scripts/setup.sh"
        );
    }
    let pid = std::process::id();
    let tmp = tempfile::tempdir().unwrap();
    let conf_dir = tmp.path().join("net.d");
    fs::create_dir_all(&conf_dir).unwrap();
    let net = 100 + pid % 100;
    let subnet = format!("10.{net}.250.0/24");
    let network = format!("moat-pod-{pid}");
    let list = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": format!("mp{pid}"),
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": tmp.path().join("ipam"),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    fs::write(conf_dir.join("10-moat.conflist"), list.to_string()).unwrap();
    let cni = Cni::new(CniConfig::new(
        conf_dir,
        vec![PathBuf::from(PLUGIN_DIR)],
        tmp.path().join("cni-cache"),
    ));
    let pod_id = format!("podnet{pid}");
    let ns = NetNs::create(&tmp.path().join("netns"), &pod_id).unwrap();
    let host_port = u16::try_from(30000 + pid % 20000).unwrap();
    let pod_net = PodNetwork {
        id: pod_id.clone(),
        netns: ns.path().to_owned(),
        name: "web".into(),
        namespace: "default".into(),
        uid: format!("uid-{pod_id}"),
        port_mappings: vec![PortMapping {
            host_port,
            container_port: 8080,
            protocol: Protocol::Tcp,
            host_ip: None,
        }],
    };
    let result = cni.setup(&pod_net).unwrap();
    let ip = result
        .pod_ips(DEFAULT_IFNAME)
        .iter()
        .map(|n| n.addr)
        .find(IpAddr::is_ipv4)
        .expect("an IPv4 pod address");

    let root = tmp.path().join("rootfs");
    rootfs(&root);
    let pod = PodSandbox::start(&PodOptions {
        hostname: b"web".to_vec(),
        net: Some(NetAttach {
            netns: ns.path().to_owned(),
            iface: DEFAULT_IFNAME.into(),
        }),
        strace: false,
    })
    .unwrap();
    let null = || -> OwnedFd { fs::File::open("/dev/null").unwrap().into() };
    pod.start_container(
        "web",
        &root,
        true,
        ProcessSpec {
            argv: vec![
                b"/bin/busybox".to_vec(),
                b"httpd".to_vec(),
                b"-f".to_vec(),
                b"-p".to_vec(),
                b"8080".to_vec(),
                b"-h".to_vec(),
                b"/www".to_vec(),
            ],
            envp: vec![b"PATH=/bin".to_vec()],
            cwd: b"/".to_vec(),
            ..ProcessSpec::default()
        },
        [null(), null(), null()],
    )
    .unwrap();

    assert_eq!(get_until(SocketAddr::new(ip, 8080)), "hello from the pod\n");
    // portmap: the host port on the host's loopback leads to the pod.
    let lo = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), host_port);
    assert_eq!(get_until(lo), "hello from the pod\n");

    drop(pod);
    cni.teardown(&pod_net).unwrap();
    ns.remove().unwrap();
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &format!("mp{pid}")])
        .status();
}
