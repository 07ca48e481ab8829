//! The sandbox on a network: a veth pair between two fresh network namespaces, the sandbox's
//! netstack on one end (`moat do --net NS:IFACE`), the host kernel's stack on the other.
//! Real clients and servers on both sides (busybox wget, python3 http.server), and sandboxed
//! processes talking to each other over 127.0.0.1 and unix sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{moat, sandboxed, sandboxed_with, End};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two network namespaces joined by a veth pair, removed on drop.
struct Veth {
    sandbox_ns: String,
    peer_ns: String,
    /// The sandbox end's name, inside `sandbox_ns`.
    iface: String,
    peer4: String,
    peer6: String,
    sandbox4: String,
    dir: std::path::PathBuf,
}

impl Veth {
    fn new() -> Veth {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = std::process::id() % 10000;
        let sandbox_ns = format!("moatsb{id}x{n}");
        let peer_ns = format!("moatpr{id}x{n}");
        let (a, b) = (format!("mvp{id}x{n}"), format!("mvs{id}x{n}"));
        let net = 100 + n;
        let v = Veth {
            sandbox_ns: sandbox_ns.clone(),
            peer_ns: peer_ns.clone(),
            iface: b.clone(),
            peer4: format!("10.{}.{}.1", id % 200, net),
            sandbox4: format!("10.{}.{}.2", id % 200, net),
            peer6: format!("fd00:{id:x}:{net:x}::1"),
            dir: std::env::temp_dir().join(format!("moat-net-{id}-{n}")),
        };
        ip(&["netns", "add", &sandbox_ns]);
        ip(&["netns", "add", &peer_ns]);
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &a, "netns", &peer_ns]);
        ip(&["link", "set", &b, "netns", &sandbox_ns]);
        let v4 = |last: u8| format!("10.{}.{}.{last}/24", id % 200, net);
        let v6 = |last: u8| format!("fd00:{id:x}:{net:x}::{last}/64");
        ip(&["-n", &peer_ns, "addr", "add", &v4(1), "dev", &a]);
        ip(&["-n", &sandbox_ns, "addr", "add", &v4(2), "dev", &b]);
        ip(&[
            "-n",
            &peer_ns,
            "-6",
            "addr",
            "add",
            &v6(1),
            "dev",
            &a,
            "nodad",
        ]);
        ip(&[
            "-n",
            &sandbox_ns,
            "-6",
            "addr",
            "add",
            &v6(2),
            "dev",
            &b,
            "nodad",
        ]);
        ip(&["-n", &peer_ns, "link", "set", &a, "up"]);
        ip(&["-n", &sandbox_ns, "link", "set", &b, "up"]);
        ip(&["-n", &peer_ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &sandbox_ns,
            "route",
            "add",
            "default",
            "via",
            &v.peer4,
        ]);
        std::fs::create_dir_all(&v.dir).unwrap();
        std::fs::write(v.dir.join("hello.txt"), "hello over the veth\n").unwrap();
        v
    }

    fn net_flag(&self) -> String {
        format!("{}:{}", self.sandbox_ns, self.iface)
    }

    /// A command run in the peer namespace.
    fn in_peer(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.peer_ns]).args(argv);
        c
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.sandbox_ns])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.peer_ns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills a child process on drop.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    static P: AtomicU32 = AtomicU32::new(0);
    let port = 20000 + (std::process::id() % 1000) * 20 + P.fetch_add(1, Ordering::SeqCst);
    u16::try_from(port).expect("below 65536")
}

#[test]
fn busybox_wget_fetches_from_a_host_side_server_over_ipv4_and_ipv6() {
    let v = Veth::new();
    let port = free_port().to_string();
    let _server = Reaper(
        v.in_peer(&["python3", "-m", "http.server", &port, "--bind", "::"])
            .arg("--directory")
            .arg(&v.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The server may need a moment; the sandbox retries.
    let script = format!(
        "for i in $(seq 1 50); do busybox wget -q -O - http://{p4}:{port}/hello.txt && break; \
         sleep 0.2; done; busybox wget -q -O - 'http://[{p6}]:{port}/hello.txt'; \
         busybox ip addr show {ifc} | grep -c 'inet '",
        p4 = v.peer4,
        p6 = v.peer6,
        ifc = v.iface,
    );
    let r = sandboxed_with(&["--net", &v.net_flag()], &["/bin/sh", "-c", &script]);
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    assert_eq!(
        r.stdout, "hello over the veth\nhello over the veth\n1\n",
        "stderr: {}",
        r.stderr
    );
    // The host kernel no longer owns the address the sandbox took.
    let out = Command::new("ip")
        .args(["-n", &v.sandbox_ns, "-4", "addr", "show", &v.iface])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("inet "),
        "address still on the host interface"
    );
}

/// Fetches `url` from the peer namespace with python3 (busybox wget crashes under
/// `ip netns exec` on this distribution); None until it answers.
fn fetch_from_peer(v: &Veth, url: &str) -> Option<String> {
    let code = format!(
        "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen({url:?}, timeout=5).read().decode())"
    );
    let out = v.in_peer(&["python3", "-c", &code]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn python_http_server_in_the_sandbox_serves_the_host_side() {
    let v = Veth::new();
    let port = free_port().to_string();
    // http.server looks its own address up; /etc/hosts (the sandbox's in-memory layer over
    // the host root) answers, so no DNS server is needed.
    let script = format!(
        "echo '{sb} moat-sandbox' >> /etc/hosts; exec python3 -m http.server {port} \
         --bind 0.0.0.0 --directory {dir}",
        sb = v.sandbox4,
        dir = v.dir.display()
    );
    let mut child = Command::new(moat());
    child
        .args(["do", "--net", &v.net_flag(), "--", "/bin/sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Reaper(child.spawn().unwrap());
    let url = format!("http://{}:{port}/hello.txt", v.sandbox4);
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Some(b) = fetch_from_peer(&v, &url) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the sandboxed server never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body, "hello over the veth\n");
    // Many requests in a row, each a new connection, from one client process.
    let code = format!(
        "import urllib.request\nfor i in range(50):\n    assert urllib.request.urlopen({url:?}, timeout=5).read() == b'hello over the veth\\n'\nprint('ok')"
    );
    let out = v.in_peer(&["python3", "-c", &code]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A DNS server in the peer namespace answering A queries for one name; the sandbox's
/// resolv.conf points at it and glibc's resolver finds the name over the netstack (UDP).
#[test]
fn dns_resolves_through_the_sandbox_resolv_conf() {
    let v = Veth::new();
    let server = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{peer}", 53))
while True:
    q, a = s.recvfrom(512)
    # Header: same id, response + recursion available, 1 question, 1 answer.
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    question = q[12:end + 5]
    r = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question
    r += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 77])
    s.sendto(r, a)
"#,
        peer = v.peer4
    );
    let _dns = Reaper(
        v.in_peer(&["python3", "-c", &server])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let script = format!(
        "echo 'nameserver {peer}' > /etc/resolv.conf; echo 'options timeout:1 attempts:5' >> /etc/resolv.conf; \
         python3 -c 'import socket; print(socket.gethostbyname(\"moat-test.example\"))'",
        peer = v.peer4
    );
    let r = sandboxed_with(&["--net", &v.net_flag()], &["/bin/sh", "-c", &script]);
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    assert_eq!(r.stdout, "192.0.2.77\n");
}

#[test]
fn sandboxed_processes_talk_over_loopback() {
    let script = r#"
import os, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
port = s.getsockname()[1]
if os.fork() == 0:
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"x" * 1000000); c.shutdown(socket.SHUT_WR)
    print("child got", len(c.recv(100))); os._exit(0)
a, _ = s.accept(); n = 0
while True:
    d = a.recv(65536)
    if not d: break
    n += len(d)
a.sendall(b"ok"); a.close(); os.wait()
print("parent got", n)
"#;
    let r = sandboxed(&["python3", "-c", script]);
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    assert_eq!(r.stdout, "child got 2\nparent got 1000000\n");
}

#[test]
fn sandboxed_processes_talk_over_a_unix_socket_and_pass_an_fd() {
    let script = r#"
import os, socket, tempfile, asyncio
path = os.path.join(tempfile.mkdtemp(), "sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(path); srv.listen(4)
r, w = os.pipe()
if os.fork() == 0:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(path)
    socket.send_fds(c, [b"hello via unix"], [w]); c.close(); os._exit(0)
a, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(a, 100, 4)
os.write(fds[0], b"through the passed fd")
os.close(fds[0]); os.close(w)
print(msg.decode(), "/", os.read(r, 100).decode())
os.wait()
# asyncio's event loop: a socketpair for wake-ups, epoll, and TCP on 127.0.0.1.
async def main():
    async def echo(rd, wr):
        wr.write((await rd.read(100)).upper()); await wr.drain(); wr.close()
    s = await asyncio.start_server(echo, "127.0.0.1", 0)
    rd, wr = await asyncio.open_connection("127.0.0.1", s.sockets[0].getsockname()[1])
    wr.write(b"asyncio"); print((await rd.read(100)).decode())
asyncio.run(main())
"#;
    let r = sandboxed(&["python3", "-c", script]);
    assert_eq!(r.end, End::Code(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "hello via unix / through the passed fd\nASYNCIO\n"
    );
}
