//! Pod network namespaces and CNI against the real plugins of Debian's
//! `containernetworking-plugins` in /usr/lib/cni (bridge, host-local, loopback, portmap), as root.
//! Each test has its own conf, cache, namespace and IPAM dirs, bridge name and subnet (made from
//! the pid and the test's number), so the tests run in parallel, and cleans up even on failure.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use moat_cri::cni::{
    Cni, CniConfig, CniError, CniResult, PodNetwork, PortMapping, Protocol, DEFAULT_IFNAME,
};
use moat_cri::netns::{remove_netns, NetNs, NetNsError};

const PLUGIN_DIR: &str = "/usr/lib/cni";
/// The port pods listen on in these tests.
const POD_PORT: u16 = 8080;
/// How long a connection attempt of a test may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Fails (never skips) when the machine lacks what these tests need.
fn require_setup() {
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("stat /proc/self");
    assert_eq!(uid, 0, "the CNI tests need root");
    for plugin in ["bridge", "host-local", "loopback", "portmap"] {
        assert!(
            Path::new(PLUGIN_DIR).join(plugin).is_file(),
            "CNI plugin {plugin} missing from {PLUGIN_DIR}: run scripts/setup.sh \
             (Debian package containernetworking-plugins)"
        );
    }
    for tool in ["ip", "nsenter", "iptables-save"] {
        assert!(
            run_ok("sh", &["-c", &format!("command -v {tool}")]).is_some(),
            "{tool} missing: run scripts/setup.sh"
        );
    }
}

/// Runs a command and returns its stdout if it succeeded.
fn run_ok(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS` inside the namespace at `ns`.
fn ip_in(ns: &Path, args: &[&str]) -> Option<String> {
    let net = format!("--net={}", ns.display());
    let mut all = vec![net.as_str(), "ip"];
    all.extend_from_slice(args);
    run_ok("nsenter", &all)
}

fn host_link_exists(name: &str) -> bool {
    run_ok("ip", &["link", "show", "dev", name]).is_some()
}

fn nat_rules() -> String {
    run_ok("iptables-save", &["-t", "nat"]).expect("iptables-save -t nat")
}

/// One test's world: its dirs, bridge and subnet 10.<100 + pid % 100>.<n>.0/24.
struct Fixture {
    _root: tempfile::TempDir,
    conf_dir: PathBuf,
    cache_dir: PathBuf,
    netns_dir: PathBuf,
    ipam_dir: PathBuf,
    bin_dir: PathBuf,
    network: String,
    bridge: String,
    subnet: [u8; 3],
    id: String,
}

impl Fixture {
    fn new(n: u8) -> Self {
        require_setup();
        let pid = std::process::id();
        let root = tempfile::tempdir().expect("tempdir");
        let dir = |name: &str| {
            let d = root.path().join(name);
            fs::create_dir_all(&d).expect("mkdir");
            d
        };
        let second = u8::try_from(100 + pid % 100).expect("< 200");
        Self {
            conf_dir: dir("net.d"),
            cache_dir: root.path().join("cni-cache"),
            netns_dir: root.path().join("netns"),
            ipam_dir: dir("ipam"),
            bin_dir: dir("bin"),
            _root: root,
            network: format!("moat-test-{pid}-{n}"),
            bridge: format!("mc{pid}x{n}"),
            subnet: [10, second, n],
            id: format!("pod{pid}t{n}"),
        }
    }

    fn subnet_cidr(&self) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}.0/24")
    }

    fn in_subnet(&self, ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == self.subnet)
    }

    /// The bridge plugin's configuration with host-local IPAM in this test's subnet and dir.
    fn bridge_conf(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": self.subnet_cidr()}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.ipam_dir,
            }
        })
    }

    fn write_conflist(&self, file: &str, version: &str, plugins: Vec<serde_json::Value>) {
        let list = serde_json::json!({
            "cniVersion": version,
            "name": self.network,
            "plugins": plugins,
        });
        fs::write(self.conf_dir.join(file), list.to_string()).expect("write conflist");
    }

    fn cni(&self, bin_dirs: Vec<PathBuf>) -> Cni {
        Cni::new(CniConfig::new(
            self.conf_dir.clone(),
            bin_dirs,
            self.cache_dir.clone(),
        ))
    }

    fn default_cni(&self) -> Cni {
        self.cni(vec![
            PathBuf::from(PLUGIN_DIR),
            PathBuf::from("/opt/cni/bin"),
        ])
    }

    fn pod(&self, netns: &Path, port_mappings: Vec<PortMapping>) -> PodNetwork {
        PodNetwork {
            id: self.id.clone(),
            netns: netns.to_owned(),
            name: "web-0".into(),
            namespace: "default".into(),
            uid: format!("uid-{}", self.id),
            port_mappings,
        }
    }

    fn cache_entry(&self) -> PathBuf {
        self.cache_dir.join(format!("{}.json", self.id))
    }

    /// The addresses host-local has handed out in this test's network.
    fn ipam_allocations(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.ipam_dir.join(&self.network)) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.parse::<IpAddr>().is_ok())
            .collect()
    }

    /// Writes an executable shell-script plugin named `name` into the test's bin dir.
    fn write_plugin(&self, name: &str, script: &str) {
        let path = self.bin_dir.join(name);
        fs::write(&path, script).expect("write plugin");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod plugin");
    }
}

impl Drop for Fixture {
    /// Undoes what a failed test left: the attachment (portmap's rules live on the host), the
    /// namespace, the bridge.
    fn drop(&mut self) {
        let netns = self.netns_dir.join(&self.id);
        if self.cache_entry().exists() {
            let cni = self.cni(vec![self.bin_dir.clone(), PathBuf::from(PLUGIN_DIR)]);
            if let Err(e) = cni.teardown(&self.pod(&netns, vec![])) {
                eprintln!("cleanup: CNI DEL of {}: {e}", self.id);
            }
        }
        let _ = remove_netns(&netns);
        if host_link_exists(&self.bridge) {
            let _ = run_ok("ip", &["link", "del", "dev", &self.bridge]);
        }
    }
}

/// The host side veth of the attachment: a host interface that is not the bridge.
fn host_veth(result: &CniResult, bridge: &str) -> String {
    result
        .interfaces
        .iter()
        .find(|i| i.sandbox.is_empty() && i.name != bridge)
        .map(|i| i.name.clone())
        .expect("the result names the host veth")
}

/// A listener inside the namespace that answers each of `n` connections with "hello".
fn serve_hello(ns: &NetNs, n: usize) {
    let listener = ns
        .run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, POD_PORT)))
        .expect("enter netns")
        .expect("bind inside the pod");
    thread::spawn(move || {
        for _ in 0..n {
            if let Ok((mut conn, _)) = listener.accept() {
                let _ = conn.write_all(b"hello");
            }
        }
    });
}

/// Connects to `addr` (retrying while the path settles) and returns what it reads.
fn fetch(addr: SocketAddr) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(PATIENCE)).expect("timeout");
                let mut got = String::new();
                s.read_to_string(&mut got).expect("read from the pod");
                return got;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect {addr}: {e}; retrying");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot reach {addr}: {e}"),
        }
    }
}

fn ns_inode(link: &str) -> String {
    fs::read_link(link)
        .expect("read ns link")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn netns_is_persistent_has_lo_up_and_leaves_daemon_namespace_alone() {
    let f = Fixture::new(1);
    let before = (
        ns_inode("/proc/self/ns/net"),
        ns_inode("/proc/thread-self/ns/net"),
    );
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    assert_eq!(ns.path(), f.netns_dir.join(&f.id));
    let after = (
        ns_inode("/proc/self/ns/net"),
        ns_inode("/proc/thread-self/ns/net"),
    );
    assert_eq!(before, after, "the caller's namespace changed");

    // The file is the namespace itself: its inode is the one a thread inside sees.
    let inside = ns
        .run(|| ns_inode("/proc/thread-self/ns/net"))
        .expect("enter");
    assert_ne!(inside, before.1);
    let ino = fs::metadata(ns.path()).expect("stat").ino();
    assert_eq!(inside, format!("net:[{ino}]"));
    assert_eq!(ns_inode("/proc/thread-self/ns/net"), before.1);

    let lo = ip_in(ns.path(), &["-o", "link", "show", "dev", "lo"]).expect("ip link in netns");
    assert!(lo.contains(",UP"), "lo is not up: {lo}");
    let links = ip_in(ns.path(), &["-o", "link", "show"]).expect("ip link in netns");
    assert_eq!(
        links.lines().count(),
        1,
        "a new namespace has only lo: {links}"
    );

    assert!(matches!(
        NetNs::create(&f.netns_dir, &f.id),
        Err(NetNsError::Exists(_))
    ));
    assert_eq!(NetNs::open(ns.path()).expect("reopen"), ns);
    let plain = f.netns_dir.join("plain-file");
    fs::write(&plain, b"").expect("write");
    assert!(matches!(
        NetNs::open(&plain),
        Err(NetNsError::NotNamespace(_))
    ));
    assert!(matches!(
        NetNs::create(&f.netns_dir, "../escape"),
        Err(NetNsError::InvalidId(_))
    ));

    let path = ns.path().to_owned();
    ns.remove().expect("remove netns");
    assert!(!path.exists(), "netns file left behind");
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(path.to_str().expect("utf-8")),
        "netns still mounted"
    );
    remove_netns(&path).expect("second remove is a no-op");
    // The name can be used again.
    NetNs::create(&f.netns_dir, &f.id)
        .expect("create again")
        .remove()
        .expect("remove again");
}

#[test]
fn add_attaches_pod_reachable_directly_and_through_portmap_and_del_removes_everything() {
    let f = Fixture::new(2);
    let pid = std::process::id();
    let host_port = u16::try_from(20000 + pid % 40000).expect("port");
    f.write_conflist(
        "10-moat.conflist",
        "1.0.0",
        vec![
            f.bridge_conf(),
            serde_json::json!({
                "type": "portmap",
                "capabilities": {"portMappings": true},
                "snat": true,
            }),
        ],
    );
    let cni = f.default_cni();
    let status = cni.status().expect("network ready");
    assert_eq!(status.network.name, f.network);
    assert_eq!(status.binaries[0], Path::new(PLUGIN_DIR).join("bridge"));

    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(
        ns.path(),
        vec![PortMapping {
            host_port,
            container_port: POD_PORT,
            protocol: Protocol::Tcp,
            host_ip: None,
        }],
    );
    let result = cni.setup(&pod).expect("CNI ADD");

    // The result: one pod address in the subnet, on eth0 in the pod's namespace.
    let ips = result.pod_ips(DEFAULT_IFNAME);
    assert_eq!(ips.len(), 1, "{result:?}");
    let pod_ip = ips[0].addr;
    assert!(f.in_subnet(pod_ip), "{pod_ip} not in {}", f.subnet_cidr());
    assert_eq!(
        result.ips[0].gateway,
        Some(IpAddr::from([f.subnet[0], f.subnet[1], f.subnet[2], 1]))
    );
    let eth0 = ip_in(ns.path(), &["-o", "-4", "addr", "show", "dev", "eth0"])
        .expect("eth0 exists in the pod");
    assert!(eth0.contains(&format!("inet {}", ips[0])), "{eth0}");
    let veth = host_veth(&result, &f.bridge);
    assert!(host_link_exists(&veth), "host veth {veth} missing");
    assert!(f.cache_entry().is_file(), "ADD result not cached");
    assert_eq!(f.ipam_allocations(), [pod_ip.to_string()]);
    let cached = cni
        .attachment(&f.id)
        .expect("read cache")
        .expect("attachment cached");
    assert_eq!(cached.result.as_ref(), Some(&result));
    // No CHECK here: portmap up to plugins 1.2 (Debian 12 has 1.1.1) fails CHECK for a pod
    // without IPv6 (containernetworking/plugins#819); the single-conf test covers CHECK.

    // The host reaches the pod directly, and through the host port portmap maps.
    serve_hello(&ns, 2);
    assert_eq!(fetch(SocketAddr::new(pod_ip, POD_PORT)), "hello");
    let nat = nat_rules();
    assert!(
        nat.contains(&f.id) && nat.contains(&format!("--dport {host_port}")),
        "portmap wrote no DNAT rule for the pod:\n{nat}"
    );
    assert_eq!(
        fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, host_port))),
        "hello",
        "through portmap's host port"
    );

    // DEL, twice: everything is gone, and the second is a no-op.
    cni.teardown(&pod).expect("CNI DEL");
    cni.teardown(&pod).expect("second CNI DEL");
    assert!(!host_link_exists(&veth), "host veth {veth} left behind");
    assert!(
        ip_in(ns.path(), &["link", "show", "dev", "eth0"]).is_none(),
        "eth0 left in the pod"
    );
    assert!(!f.cache_entry().exists(), "cache entry left behind");
    assert!(f.ipam_allocations().is_empty(), "address not released");
    assert!(!nat_rules().contains(&f.id), "portmap rules left behind");
    assert!(cni.attachment(&f.id).expect("read cache").is_none());
    let path = ns.path().to_owned();
    ns.remove().expect("remove netns");
    assert!(!path.exists());
}

#[test]
fn del_uses_the_cached_config_after_the_conf_dir_changed_and_the_netns_is_gone() {
    let f = Fixture::new(3);
    // An older version and a loopback plugin first: prevResult chains through both.
    f.write_conflist(
        "10-moat.conflist",
        "0.4.0",
        vec![serde_json::json!({"type": "loopback"}), f.bridge_conf()],
    );
    let cni = f.default_cni();
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(ns.path(), vec![]);
    let result = cni.setup(&pod).expect("CNI ADD");
    let pod_ip = result.pod_ips(DEFAULT_IFNAME)[0].addr;
    assert!(f.in_subnet(pod_ip));
    assert_eq!(result.cni_version, "0.4.0");
    serve_hello(&ns, 1);
    assert_eq!(fetch(SocketAddr::new(pod_ip, POD_PORT)), "hello");
    let veth = host_veth(&result, &f.bridge);

    // The conf dir now names another network with a plugin that does not exist, and the
    // namespace is gone (which takes the veth pair with it).
    fs::remove_file(f.conf_dir.join("10-moat.conflist")).expect("rm conf");
    fs::write(
        f.conf_dir.join("05-other.conf"),
        r#"{"cniVersion":"1.0.0","name":"other","type":"moat-no-such-plugin"}"#,
    )
    .expect("write conf");
    ns.remove().expect("remove netns");
    // The kernel destroys an unreferenced namespace (and the veth pair) asynchronously.
    let deadline = Instant::now() + PATIENCE;
    while host_link_exists(&veth) {
        assert!(
            Instant::now() < deadline,
            "veth {veth} outlived its namespace"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(f.ipam_allocations(), [pod_ip.to_string()]);

    cni.teardown(&pod).expect("CNI DEL from the cache");
    assert!(f.ipam_allocations().is_empty(), "address not released");
    assert!(!f.cache_entry().exists());
    cni.teardown(&pod)
        .expect("second DEL: no cache, unusable config");
    fs::remove_file(f.conf_dir.join("05-other.conf")).expect("rm conf");
    cni.teardown(&pod).expect("third DEL: no cache, no config");
}

#[test]
fn single_conf_file_attaches_and_check_notices_a_missing_interface() {
    let f = Fixture::new(4);
    let mut conf = f.bridge_conf();
    conf["cniVersion"] = "1.0.0".into();
    conf["name"] = f.network.clone().into();
    fs::write(f.conf_dir.join("10-moat.conf"), conf.to_string()).expect("write conf");
    let cni = f.default_cni();
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(ns.path(), vec![]);
    assert!(matches!(cni.check(&pod), Err(CniError::NotAttached { .. })));
    let result = cni.setup(&pod).expect("CNI ADD");
    assert!(f.in_subnet(result.pod_ips(DEFAULT_IFNAME)[0].addr));
    assert!(matches!(
        cni.setup(&pod),
        Err(CniError::AlreadyAttached { .. })
    ));
    cni.check(&pod).expect("CHECK passes");
    ip_in(ns.path(), &["link", "del", "dev", "eth0"]).expect("delete eth0 in the pod");
    let err = cni.check(&pod).expect_err("CHECK sees eth0 is gone");
    assert!(
        matches!(err, CniError::Plugin { ref plugin, command: "CHECK", .. } if plugin == "bridge"),
        "{err}"
    );
    cni.teardown(&pod).expect("CNI DEL");
    assert!(f.ipam_allocations().is_empty());
    ns.remove().expect("remove netns");
}

#[test]
fn missing_plugin_binary_is_a_typed_error_and_nothing_runs() {
    let f = Fixture::new(5);
    f.write_conflist(
        "10-moat.conflist",
        "1.0.0",
        vec![
            f.bridge_conf(),
            serde_json::json!({"type": "moat-no-such-plugin"}),
        ],
    );
    let cni = f.default_cni();
    let err = cni.status().expect_err("not ready without the plugin");
    assert!(
        matches!(err, CniError::PluginNotFound { ref plugin, .. } if plugin == "moat-no-such-plugin"),
        "{err}"
    );
    assert!(
        err.to_string().contains("/usr/lib/cni:/opt/cni/bin"),
        "{err}"
    );
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(ns.path(), vec![]);
    let err = cni.setup(&pod).expect_err("ADD fails");
    assert!(
        matches!(err, CniError::PluginNotFound { ref plugin, .. } if plugin == "moat-no-such-plugin"),
        "{err}"
    );
    assert!(
        !host_link_exists(&f.bridge),
        "bridge ran although a plugin was missing"
    );
    assert!(!f.cache_entry().exists());
    assert!(f.ipam_allocations().is_empty());
    // What RunPodSandbox does after a failed ADD: DEL and remove the namespace; both succeed.
    cni.teardown(&pod).expect("cleanup DEL");
    ns.remove().expect("remove netns");
    assert!(!f.netns_dir.join(&f.id).exists());
}

#[test]
fn failing_plugin_error_is_reported_and_earlier_plugins_are_undone() {
    let f = Fixture::new(6);
    let calls = f.bin_dir.join("calls");
    f.write_plugin(
        "moat-fail",
        &format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> {}\n\
             if [ \"$CNI_COMMAND\" = ADD ]; then\n\
             echo '{{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"moat-fail refuses\",\"details\":\"on purpose\"}}'\n\
             exit 1\nfi\n",
            calls.display()
        ),
    );
    f.write_conflist(
        "10-moat.conflist",
        "1.0.0",
        vec![f.bridge_conf(), serde_json::json!({"type": "moat-fail"})],
    );
    let cni = f.cni(vec![f.bin_dir.clone(), PathBuf::from(PLUGIN_DIR)]);
    cni.status().expect("all plugins present");
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(ns.path(), vec![]);
    let err = cni.setup(&pod).expect_err("ADD fails");
    match &err {
        CniError::Plugin {
            plugin,
            command,
            code,
            msg,
            details,
        } => {
            assert_eq!(
                (
                    plugin.as_str(),
                    *command,
                    *code,
                    msg.as_str(),
                    details.as_str()
                ),
                ("moat-fail", "ADD", 7, "moat-fail refuses", "on purpose")
            );
        }
        other => panic!("unexpected error {other}"),
    }
    // The bridge's work was undone: no pod interface, no port on the bridge, no address.
    let calls = fs::read_to_string(&calls).expect("calls");
    assert_eq!(calls, format!("ADD {0}\nDEL {0}\n", f.id));
    assert!(ip_in(ns.path(), &["link", "show", "dev", "eth0"]).is_none());
    let ports = run_ok("ip", &["-o", "link", "show", "master", &f.bridge]).unwrap_or_default();
    assert!(ports.trim().is_empty(), "veth left on the bridge: {ports}");
    assert!(f.ipam_allocations().is_empty(), "address not released");
    assert!(!f.cache_entry().exists(), "cache entry left behind");
    cni.teardown(&pod).expect("cleanup DEL");
    ns.remove().expect("remove netns");
}

#[test]
fn plugin_that_hangs_is_killed_after_the_timeout() {
    let f = Fixture::new(7);
    // The plugin hangs in a child of its own, as a plugin waiting on its IPAM plugin would.
    let child_pid = f.bin_dir.join("child.pid");
    f.write_plugin(
        "moat-hang",
        &format!(
            "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n\
             sleep 60 &\necho $! > {}\nwait\n",
            child_pid.display()
        ),
    );
    fs::write(
        f.conf_dir.join("10-hang.conf"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"{}","type":"moat-hang"}}"#,
            f.network
        ),
    )
    .expect("write conf");
    let mut cfg = CniConfig::new(
        f.conf_dir.clone(),
        vec![f.bin_dir.clone()],
        f.cache_dir.clone(),
    );
    cfg.plugin_timeout = Duration::from_millis(300);
    let cni = Cni::new(cfg);
    let ns = NetNs::create(&f.netns_dir, &f.id).expect("create netns");
    let pod = f.pod(ns.path(), vec![]);
    let start = Instant::now();
    let err = cni.setup(&pod).expect_err("ADD times out");
    assert!(
        matches!(err, CniError::Timeout { command: "ADD", .. }),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let pid = fs::read_to_string(&child_pid).expect("the plugin started its child");
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    let deadline = Instant::now() + PATIENCE;
    // Gone, or a zombie until init reaps it.
    while fs::read_to_string(proc_dir.join("stat")).is_ok_and(|st| !st.contains(") Z ")) {
        assert!(
            Instant::now() < deadline,
            "the plugin's child outlived the timeout"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!f.cache_entry().exists());
    ns.remove().expect("remove netns");
}

#[test]
fn status_says_why_the_network_is_not_ready() {
    let f = Fixture::new(8);
    let cni = f.default_cni();
    assert!(matches!(cni.status(), Err(CniError::NoConfig { .. })));
    fs::write(f.conf_dir.join("10-bad.conflist"), "{not json").expect("write");
    assert!(matches!(cni.status(), Err(CniError::ParseConfig { .. })));
    f.write_conflist("05-good.conflist", "1.0.0", vec![f.bridge_conf()]);
    let status = cni.status().expect("ready");
    assert_eq!(status.binaries, [Path::new(PLUGIN_DIR).join("bridge")]);
    assert_eq!(
        status.network.source.as_deref(),
        Some(f.conf_dir.join("05-good.conflist").as_path())
    );
}
