//! The netstack against the real Linux TCP/IP stack. Each test makes two fresh network
//! namespaces joined by a veth pair: in one, a [`PacketLink`] takes the interface and a
//! [`Stack`] runs over it on a driver thread; in the other, the host kernel's own sockets
//! (std::net, on threads that entered it) are the peers. Needs root and iproute2's `ip`; fails
//! (never skips) without them.

use std::io::{ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as StdShutdown, SocketAddr, TcpListener, TcpStream,
    UdpSocket,
};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use moat_netstack::{
    Family, Instant, NetError, PacketLink, Shutdown, SocketId, Stack, StackConfig,
};

const STACK4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const KERNEL4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
const KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
/// Addresses of the kernel side beyond the subnet, reached through the default gateway.
const FAR4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const STACK_IF: &str = "veth-s";
const KERNEL_IF: &str = "veth-k";
/// How long any single wait of a test may take before it fails.
const PATIENCE: StdDuration = StdDuration::from_secs(60);

/// Host syscalls the tests need beyond std: entering a namespace, poll(2), raw ICMP.
mod sys {
    #![allow(unsafe_code)]

    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::{Duration, Instant};

    pub fn is_root() -> bool {
        // SAFETY: geteuid(2) takes no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// Moves the calling thread into the network namespace `ns` (by `ip netns` name).
    pub fn enter_netns(ns: &str) {
        let file = std::fs::File::open(format!("/var/run/netns/{ns}"))
            .unwrap_or_else(|e| panic!("open netns {ns}: {e}"));
        // SAFETY: `file` is an open namespace fd for the duration of the call; setns(2) only
        // changes the calling thread's namespace.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {ns}: {}", io::Error::last_os_error());
    }

    /// Sleeps until one of `fds` is readable or `timeout_ms` passes.
    pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) {
        let mut pollfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let n = libc::nfds_t::try_from(pollfds.len()).expect("few fds");
        // SAFETY: `pollfds` is a live array of `n` pollfd structs the kernel may write to.
        unsafe { libc::poll(pollfds.as_mut_ptr(), n, timeout_ms) };
    }

    fn ones_complement(data: &[u8]) -> u16 {
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum >> 16) + (sum & 0xffff);
        }
        !u16::try_from(sum).expect("folded")
    }

    /// Sends one ICMP echo request to `dst` from the calling thread's namespace and counts
    /// the echo replies that come back within `wait`.
    pub fn ping_replies(dst: Ipv4Addr, ident: u16, wait: Duration) -> usize {
        // SAFETY: socket(2) takes no pointers.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(raw >= 0, "raw socket: {}", io::Error::last_os_error());
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&ident.to_be_bytes());
        req.extend_from_slice(&1u16.to_be_bytes());
        req.extend_from_slice(b"moat ping");
        let csum = ones_complement(&req);
        req[2..4].copy_from_slice(&csum.to_be_bytes());
        let addr = libc::sockaddr_in {
            sin_family: libc::sa_family_t::try_from(libc::AF_INET).expect("AF_INET"),
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: `req` and `addr` are live buffers of the lengths given.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&raw const addr).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in>()).expect("small"),
            )
        };
        assert!(sent > 0, "sendto: {}", io::Error::last_os_error());
        let deadline = Instant::now() + wait;
        let mut replies = 0;
        let mut buf = [0u8; 2048];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            wait_readable(&[fd.as_raw_fd()], ms);
            // SAFETY: `buf` is a writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            let Ok(n) = usize::try_from(n) else { continue };
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let icmp = &buf[ihl..n];
            let from = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            if from == dst && icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == ident.to_be_bytes() {
                replies += 1;
            }
        }
        replies
    }
}

/// Runs `ip` with `args` (split at spaces) and returns its output; panics if it fails.
fn ip(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2 must be installed): {e}"));
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair, addressed; deleted on drop (also after a panic).
struct Veth {
    stack_ns: String,
    kernel_ns: String,
}

impl Veth {
    fn new() -> Self {
        assert!(
            sys::is_root(),
            "the veth tests need root (network namespaces, packet sockets)"
        );
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let veth = Veth {
            stack_ns: format!("moat-ns-s-{id}"),
            kernel_ns: format!("moat-ns-k-{id}"),
        };
        let (s, k) = (&veth.stack_ns, &veth.kernel_ns);
        ip(&format!("netns add {s}"));
        ip(&format!("netns add {k}"));
        ip(&format!(
            "link add {STACK_IF} netns {s} type veth peer name {KERNEL_IF} netns {k}"
        ));
        ip(&format!("-n {s} addr add {STACK4}/24 dev {STACK_IF}"));
        ip(&format!("-n {s} addr add {STACK6}/64 dev {STACK_IF} nodad"));
        ip(&format!("-n {k} addr add {KERNEL4}/24 dev {KERNEL_IF}"));
        ip(&format!(
            "-n {k} addr add {KERNEL6}/64 dev {KERNEL_IF} nodad"
        ));
        ip(&format!("-n {k} addr add {FAR4}/32 dev lo"));
        ip(&format!("-n {k} addr add {FAR6}/128 dev lo"));
        for (ns, dev) in [(s, STACK_IF), (k, KERNEL_IF), (s, "lo"), (k, "lo")] {
            ip(&format!("-n {ns} link set {dev} up"));
        }
        ip(&format!("-n {s} route add default via {KERNEL4}"));
        ip(&format!("-n {s} -6 route add default via {KERNEL6}"));
        veth
    }

    /// Runs `f` on a thread inside the kernel-side namespace.
    fn kernel<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> JoinHandle<R> {
        let ns = self.kernel_ns.clone();
        thread::spawn(move || {
            sys::enter_netns(&ns);
            f()
        })
    }

    /// Runs `f` inside the kernel-side namespace and returns its result.
    fn in_kernel<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        self.kernel(f).join().expect("kernel-side thread")
    }

    /// Opens the packet link on the stack side's interface (taking its addresses).
    fn open_link(&self) -> (PacketLink, StackConfig) {
        let ns = self.stack_ns.clone();
        thread::spawn(move || {
            sys::enter_netns(&ns);
            PacketLink::open(STACK_IF, 0x5eed).expect("open packet link")
        })
        .join()
        .expect("link-opening thread")
    }

    /// The stack running over the stack side's interface.
    fn stack(&self) -> Driver {
        let (link, config) = self.open_link();
        Driver::start(link, &config)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for ns in [&self.stack_ns, &self.kernel_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Work run on the driver thread after every poll until it returns true.
type Task = Box<dyn FnMut(&mut Stack) -> bool + Send>;

/// A thread that owns a stack and drives it as the sentry would: poll, run the submitted
/// tasks (the "app"), poll again, sleep in poll(2) on the packet socket and a wake-up socket
/// until the stack's next timer.
struct Driver {
    tasks: mpsc::Sender<Task>,
    wake: UnixDatagram,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    fn start(link: PacketLink, config: &StackConfig) -> Self {
        let epoch = std::time::Instant::now();
        let now = move || {
            Instant::from_micros(
                i64::try_from(epoch.elapsed().as_micros()).expect("test time fits"),
            )
        };
        let mut stack = Stack::new(Box::new(link), config, now()).expect("stack");
        let link_fd = stack.wait_fd().expect("packet link has an fd");
        let (tasks, rx) = mpsc::channel::<Task>();
        let (wake, wake_rx) = UnixDatagram::pair().expect("wake socket");
        wake_rx.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut running: Vec<Task> = Vec::new();
            let mut buf = [0u8; 16];
            while !stop2.load(Ordering::Relaxed) {
                while wake_rx.recv(&mut buf).is_ok() {}
                running.extend(rx.try_iter());
                stack.poll(now());
                running.retain_mut(|task| !task(&mut stack));
                stack.poll(now());
                let delay = stack
                    .poll_delay(now())
                    .map_or(100, |d| d.total_micros().div_ceil(1000).min(100));
                if delay > 0 {
                    let ms = i32::try_from(delay).expect("at most 100 ms");
                    sys::wait_readable(&[link_fd, wake_rx.as_raw_fd()], ms);
                }
            }
        });
        Driver {
            tasks,
            wake,
            stop,
            thread: Some(thread),
        }
    }

    /// Runs `task` on the driver thread after every poll until it returns true.
    fn spawn(&self, task: impl FnMut(&mut Stack) -> bool + Send + 'static) {
        self.tasks.send(Box::new(task)).expect("driver alive");
        let _ = self.wake.send(&[1]);
    }

    /// Runs `f` on the driver thread after every poll until it returns a value; returns it.
    fn run<R: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Stack) -> Option<R> + Send + 'static,
    ) -> R {
        let (tx, rx) = mpsc::channel();
        self.spawn(move |stack| match f(stack) {
            Some(r) => {
                let _ = tx.send(r);
                true
            }
            None => false,
        });
        rx.recv_timeout(PATIENCE)
            .expect("stack task did not finish in time")
    }

    /// Runs `f` once on the driver thread.
    fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut Stack) -> R + Send + 'static) -> R {
        let mut f = Some(f);
        self.run(move |stack| f.take().map(|f| f(stack)))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(&[1]);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An order-sensitive checksum of a byte stream, fed in pieces of any size: four
/// multiply-rotate lanes over 32-byte blocks (fast enough not to slow the transfer it checks).
#[derive(Default)]
struct StreamSum {
    lanes: [u64; 4],
    pending: Vec<u8>,
    len: u64,
}

impl StreamSum {
    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (32 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == 32 {
                let block = std::mem::take(&mut self.pending);
                self.mix(&block);
            }
        }
        let mut blocks = data.chunks_exact(32);
        for block in &mut blocks {
            self.mix(block);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    fn mix(&mut self, block: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (lane.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn finish(mut self) -> (u64, u64) {
        let mut tail = std::mem::take(&mut self.pending);
        tail.resize(32, 0xff);
        self.mix(&tail);
        let hash = self.lanes.iter().fold(self.len, |h, &lane| {
            (h ^ lane).wrapping_mul(0xff51_afd7_ed55_8ccd)
        });
        (hash, self.len)
    }
}

/// The test stream: a pseudo-random pattern of a prime length, repeated.
fn pattern() -> Arc<Vec<u8>> {
    let mut seed = 0x0123_4567_89ab_cdefu64;
    Arc::new(
        (0..1_000_003)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[3]
            })
            .collect(),
    )
}

/// The piece of the stream at `pos`, at most `max` bytes long.
fn stream_at(pattern: &[u8], pos: u64, max: usize) -> &[u8] {
    let at = usize::try_from(pos % pattern.len() as u64).expect("below the pattern length");
    let end = (at + max).min(pattern.len());
    &pattern[at..end]
}

/// A kernel-side TCP echo server on `addr` for `conns` connections, each until EOF.
fn kernel_echo_server(veth: &Veth, addr: SocketAddr, conns: usize) -> JoinHandle<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = veth.kernel(move || {
        let listener = TcpListener::bind(addr).expect("kernel bind");
        ready_tx.send(()).expect("ready");
        for _ in 0..conns {
            let (mut conn, _) = listener.accept().expect("kernel accept");
            conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf).expect("kernel read") {
                    0 => break,
                    n => conn.write_all(&buf[..n]).expect("kernel write"),
                }
            }
        }
    });
    ready_rx.recv_timeout(PATIENCE).expect("kernel server up");
    handle
}

/// Connects a stack socket to `addr` and waits until connected or failed; returns it with
/// its pending error.
fn stack_connect(net: &Driver, addr: SocketAddr) -> (SocketId, Option<NetError>) {
    let id = net.with(move |stack| {
        let id = stack.tcp_socket(Family::of(&addr));
        assert_eq!(stack.connect(id, addr), Err(NetError::InProgress));
        id
    });
    net.run(move |stack| {
        let r = stack.readiness(id).expect("readiness");
        (r.writable || r.error).then(|| (id, stack.take_error(id).expect("so_error")))
    })
}

/// Sends all of `data` on a connected stack socket and returns what came back, once as many
/// bytes as were sent did.
fn stack_echo(net: &Driver, id: SocketId, data: &'static [u8]) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    net.run(move |stack| {
        if sent < data.len() {
            match stack.send(id, &data[sent..]) {
                Ok(n) => sent += n,
                Err(NetError::WouldBlock) => {}
                Err(e) => panic!("stack send: {e}"),
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match stack.recv(id, &mut buf, false) {
                Ok(0) => panic!("early eof"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(NetError::WouldBlock) => break,
                Err(e) => panic!("stack recv: {e}"),
            }
        }
        (got.len() >= data.len()).then(|| std::mem::take(&mut got))
    })
}

/// A stack-side TCP echo server on `addr`, running until the driver stops: accepts every
/// connection and echoes it until EOF.
fn stack_echo_server(net: &Driver, addr: SocketAddr, backlog: usize, buffer: usize) {
    let listener = net.with(move |stack| {
        let l = stack.tcp_socket(Family::of(&addr));
        stack.set_recv_buffer_size(l, buffer).expect("rcvbuf");
        stack.set_send_buffer_size(l, buffer).expect("sndbuf");
        stack.bind(l, addr).expect("stack bind");
        stack.listen(l, backlog).expect("stack listen");
        l
    });
    let mut conns: Vec<(SocketId, Vec<u8>)> = Vec::new();
    net.spawn(move |stack| {
        while let Ok((id, _)) = stack.accept(listener) {
            conns.push((id, Vec::new()));
        }
        conns.retain_mut(|(id, backlog)| {
            let mut buf = [0u8; 4096];
            let mut eof = false;
            loop {
                match stack.recv(*id, &mut buf, false) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => backlog.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
            while !backlog.is_empty() {
                match stack.send(*id, backlog) {
                    Ok(n) => {
                        backlog.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            if eof && backlog.is_empty() {
                let _ = stack.close(*id);
                return false;
            }
            true
        });
        false
    });
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn v6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

/// The kernel side's neighbor entry for `addr`: (lladdr, state), from `ip neigh`.
fn kernel_neighbor(veth: &Veth, addr: IpAddr) -> Option<(String, String)> {
    let out = ip(&format!(
        "-n {} neigh show {addr} dev {KERNEL_IF}",
        veth.kernel_ns
    ));
    let words: Vec<&str> = out.split_whitespace().collect();
    let lladdr = words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|i| words.get(i + 1))?;
    Some((lladdr.to_string(), words.last()?.to_string()))
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn stack_client_talks_to_kernel_servers_on_link_and_through_the_gateway() {
    let veth = Veth::new();
    let (link, config) = veth.open_link();
    assert_eq!(config.gateway_v4, Some(KERNEL4));
    assert_eq!(config.gateway_v6, Some(KERNEL6));
    let net = Driver::start(link, &config);
    for (server, bind) in [
        (v4(KERNEL4, 7001), v4(Ipv4Addr::UNSPECIFIED, 7001)),
        (v6(KERNEL6, 7002), v6(Ipv6Addr::UNSPECIFIED, 7002)),
        (v4(FAR4, 7003), v4(FAR4, 7003)),
        (v6(FAR6, 7004), v6(FAR6, 7004)),
    ] {
        let kernel = kernel_echo_server(&veth, bind, 1);
        let (id, err) = stack_connect(&net, server);
        assert_eq!(err, None, "connect to {server}");
        let local = net.with(move |s| s.local_addr(id).expect("local addr"));
        let expect_local = match server.ip() {
            IpAddr::V4(_) => IpAddr::V4(STACK4),
            IpAddr::V6(_) => IpAddr::V6(STACK6),
        };
        assert_eq!(local.ip(), expect_local, "source address towards {server}");
        let got = stack_echo(&net, id, b"hello from the netstack");
        assert_eq!(got, b"hello from the netstack");
        net.with(move |s| s.close(id).expect("close"));
        kernel.join().expect("kernel server");
    }
}

#[test]
fn kernel_clients_talk_to_a_stack_server_over_ipv4_and_ipv6() {
    let veth = Veth::new();
    let net = veth.stack();
    stack_echo_server(&net, v6(Ipv6Addr::UNSPECIFIED, 8001), 16, 64 * 1024);
    for server in [v4(STACK4, 8001), v6(STACK6, 8001)] {
        let got = veth.in_kernel(move || {
            let mut conn = TcpStream::connect_timeout(&server, PATIENCE).expect("kernel connect");
            conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let msg = vec![0x5au8; 100_000];
            conn.write_all(&msg).expect("kernel write");
            conn.shutdown(StdShutdown::Write).expect("shutdown");
            let mut back = Vec::new();
            conn.read_to_end(&mut back).expect("kernel read");
            back
        });
        assert_eq!(got.len(), 100_000, "echo from {server}");
        assert!(got.iter().all(|&b| b == 0x5a));
    }
}

#[test]
fn thousand_concurrent_kernel_connections_to_a_stack_listener_all_complete() {
    const CONNS: usize = 1000;
    const THREADS: usize = 20;
    let veth = Veth::new();
    let net = veth.stack();
    stack_echo_server(&net, v4(STACK4, 8100), 1024, 16 * 1024);
    let start = std::time::Instant::now();
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = Arc::clone(&barrier);
            veth.kernel(move || {
                let mut conns = Vec::new();
                for i in 0..CONNS / THREADS {
                    let conn = TcpStream::connect_timeout(&v4(STACK4, 8100), PATIENCE)
                        .unwrap_or_else(|e| panic!("connection {t}/{i}: {e}"));
                    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
                    conns.push(conn);
                }
                // All connections open at once before any talks.
                barrier.wait();
                let mut ok = 0;
                for (i, conn) in conns.iter_mut().enumerate() {
                    let msg = format!("conn {t}/{i}");
                    conn.write_all(msg.as_bytes()).expect("write");
                    let mut back = vec![0u8; msg.len()];
                    conn.read_exact(&mut back).expect("read echo");
                    if back == msg.as_bytes() {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let ok: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let elapsed = start.elapsed();
    println!("{CONNS} concurrent connections opened and echoed in {elapsed:?}");
    assert_eq!(ok, CONNS);
}

const GIB: u64 = 1 << 30;

#[test]
fn one_gib_from_the_stack_to_the_kernel_arrives_intact() {
    let veth = Veth::new();
    let net = veth.stack();
    let (ready_tx, ready_rx) = mpsc::channel();
    let kernel = veth.kernel(move || {
        let listener = TcpListener::bind(v4(KERNEL4, 9001)).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut sum = StreamSum::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match conn.read(&mut buf).expect("kernel read") {
                0 => break,
                n => sum.update(&buf[..n]),
            }
        }
        sum.finish()
    });
    ready_rx.recv_timeout(PATIENCE).expect("kernel up");
    let (id, err) = stack_connect(&net, v4(KERNEL4, 9001));
    assert_eq!(err, None);
    let pattern = pattern();
    let start = std::time::Instant::now();
    let mut pos = 0u64;
    let mut sum = Some(StreamSum::default());
    let sent = net.run(move |stack| {
        while pos < GIB {
            let piece = stream_at(&pattern, pos, usize::try_from(GIB - pos).unwrap());
            match stack.send(id, piece) {
                Ok(n) => {
                    sum.as_mut().expect("sum").update(&piece[..n]);
                    pos += n as u64;
                }
                Err(NetError::WouldBlock) => return None,
                Err(e) => panic!("stack send: {e}"),
            }
        }
        stack.shutdown(id, Shutdown::Write).expect("shutdown");
        sum.take().map(StreamSum::finish)
    });
    let received = kernel.join().expect("kernel reader");
    let elapsed = start.elapsed();
    println!(
        "1 GiB netstack -> kernel: {:.2?}, {:.0} MB/s",
        elapsed,
        GIB as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert_eq!(received, sent);
    assert_eq!(sent.1, GIB);
}

#[test]
fn one_gib_from_the_kernel_to_the_stack_arrives_intact() {
    let veth = Veth::new();
    let net = veth.stack();
    let listener = net.with(|stack| {
        let l = stack.tcp_socket(Family::V4);
        stack.bind(l, v4(STACK4, 9002)).expect("bind");
        stack.listen(l, 1).expect("listen");
        l
    });
    let start = std::time::Instant::now();
    let kernel = veth.kernel(move || {
        let pattern = pattern();
        let mut conn = TcpStream::connect_timeout(&v4(STACK4, 9002), PATIENCE).expect("connect");
        conn.set_write_timeout(Some(PATIENCE)).expect("timeout");
        let mut sum = StreamSum::default();
        let mut pos = 0u64;
        while pos < GIB {
            let piece = stream_at(&pattern, pos, usize::try_from(GIB - pos).unwrap());
            let n = conn.write(piece).expect("kernel write");
            sum.update(&piece[..n]);
            pos += n as u64;
        }
        conn.shutdown(StdShutdown::Write).expect("shutdown");
        sum.finish()
    });
    let mut conn = None;
    let mut sum = Some(StreamSum::default());
    let mut buf = vec![0u8; 1 << 20];
    let received = net.run(move |stack| {
        if conn.is_none() {
            conn = stack.accept(listener).ok().map(|(id, _)| id);
        }
        let id = conn?;
        loop {
            match stack.recv(id, &mut buf, false) {
                Ok(0) => return sum.take().map(StreamSum::finish),
                Ok(n) => sum.as_mut().expect("sum").update(&buf[..n]),
                Err(NetError::WouldBlock) => return None,
                Err(e) => panic!("stack recv: {e}"),
            }
        }
    });
    let sent = kernel.join().expect("kernel writer");
    let elapsed = start.elapsed();
    println!(
        "1 GiB kernel -> netstack: {:.2?}, {:.0} MB/s",
        elapsed,
        GIB as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert_eq!(received, sent);
    assert_eq!(sent.1, GIB);
}

#[test]
fn connecting_to_a_closed_port_is_refused_both_ways() {
    let veth = Veth::new();
    let net = veth.stack();
    for addr in [v4(KERNEL4, 9100), v6(KERNEL6, 9100)] {
        let (_, err) = stack_connect(&net, addr);
        assert_eq!(err, Some(NetError::ConnRefused), "stack -> kernel {addr}");
    }
    for addr in [v4(STACK4, 9101), v6(STACK6, 9101)] {
        let err = veth.in_kernel(move || {
            TcpStream::connect_timeout(&addr, PATIENCE)
                .map(|_| ())
                .map_err(|e| e.kind())
        });
        assert_eq!(
            err,
            Err(ErrorKind::ConnectionRefused),
            "kernel -> stack {addr}"
        );
    }
}

#[test]
fn reset_connections_report_econnreset_both_ways() {
    let veth = Veth::new();
    let net = veth.stack();
    for family in [Family::V4, Family::V6] {
        let (kernel_addr, stack_addr) = match family {
            Family::V4 => (v4(KERNEL4, 9200), v4(STACK4, 9201)),
            Family::V6 => (v6(KERNEL6, 9200), v6(STACK6, 9201)),
        };
        // The kernel closes with our data unread: it resets the connection.
        let (ready_tx, ready_rx) = mpsc::channel();
        let (got_tx, got_rx) = mpsc::channel::<()>();
        let kernel = veth.kernel(move || {
            let listener = TcpListener::bind(kernel_addr).expect("bind");
            ready_tx.send(()).expect("ready");
            let (conn, _) = listener.accept().expect("accept");
            // Wait until the stack's bytes are in our receive queue, then close unread.
            got_rx.recv_timeout(PATIENCE).expect("data sent");
            thread::sleep(StdDuration::from_millis(200));
            drop(conn);
        });
        ready_rx.recv_timeout(PATIENCE).expect("kernel up");
        let (id, err) = stack_connect(&net, kernel_addr);
        assert_eq!(err, None);
        net.with(move |s| s.send(id, b"never read").expect("send"));
        got_tx.send(()).expect("kernel alive");
        kernel.join().expect("kernel");
        let err = net.run(move |stack| {
            let mut buf = [0u8; 16];
            match stack.recv(id, &mut buf, false) {
                Err(NetError::WouldBlock) => None,
                other => Some(other),
            }
        });
        assert_eq!(
            err,
            Err(NetError::ConnReset),
            "kernel reset seen by the stack"
        );

        // The stack closes with the kernel's data unread: the kernel sees a reset.
        let listener = net.with(move |stack| {
            let l = stack.tcp_socket(family);
            stack.bind(l, stack_addr).expect("bind");
            stack.listen(l, 1).expect("listen");
            l
        });
        let mut accepted = None;
        let kernel = veth.kernel(move || {
            let mut conn = TcpStream::connect_timeout(&stack_addr, PATIENCE).expect("connect");
            conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
            conn.write_all(b"never read either").expect("write");
            let mut buf = [0u8; 16];
            conn.read(&mut buf).map_err(|e| e.kind())
        });
        net.run(move |stack| {
            if let Ok((conn, _)) = stack.accept(listener) {
                accepted = Some(conn);
            }
            let conn = accepted?;
            // Close only once the kernel's bytes are queued here, unread.
            stack.readiness(conn).expect("readiness").readable.then(|| {
                stack.close(conn).expect("close");
                stack.close(listener).expect("close listener");
            })
        });
        let err = kernel.join().expect("kernel");
        assert_eq!(
            err,
            Err(ErrorKind::ConnectionReset),
            "stack reset seen by the kernel"
        );
    }
}

#[test]
fn udp_echo_works_both_ways_over_ipv4_and_ipv6() {
    let veth = Veth::new();
    let net = veth.stack();
    // A stack-side echo for both families: one AF_INET6 socket on [::] (IPv4 senders appear
    // v4-mapped, as on Linux; a second socket on 0.0.0.0 would be EADDRINUSE there too).
    let sock = net.with(move |stack| {
        let u = stack.udp_socket(Family::V6);
        stack
            .bind(u, v6(Ipv6Addr::UNSPECIFIED, 5300))
            .expect("bind");
        u
    });
    net.spawn(move |stack| {
        let mut buf = [0u8; 2048];
        while let Ok(meta) = stack.recv_from(sock, &mut buf, false) {
            let from = meta.from.expect("sender");
            stack
                .send_to(sock, &buf[..meta.len], Some(from))
                .expect("echo");
        }
        false
    });
    for (local, server) in [
        (v4(KERNEL4, 0), v4(STACK4, 5300)),
        (v6(KERNEL6, 0), v6(STACK6, 5300)),
    ] {
        let got = veth.in_kernel(move || {
            let sock = UdpSocket::bind(local).expect("bind");
            sock.set_read_timeout(Some(StdDuration::from_millis(500)))
                .expect("timeout");
            let msg = vec![0xa5u8; 1200];
            // Datagrams may be lost while neighbors resolve: retry a few times.
            for _ in 0..20 {
                sock.send_to(&msg, server).expect("send");
                let mut buf = [0u8; 2048];
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    return Some((buf[..n].to_vec(), from));
                }
            }
            None
        });
        let (data, from) = got.unwrap_or_else(|| panic!("no echo from {server}"));
        assert_eq!(data, vec![0xa5u8; 1200]);
        assert_eq!(from, server);
    }
    // A kernel-side echo, the stack as client.
    for (bind, family) in [
        (v4(KERNEL4, 5301), Family::V4),
        (v6(KERNEL6, 5301), Family::V6),
    ] {
        let (ready_tx, ready_rx) = mpsc::channel();
        let kernel = veth.kernel(move || {
            let sock = UdpSocket::bind(bind).expect("bind");
            sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            let (n, from) = sock.recv_from(&mut buf).expect("recv");
            sock.send_to(&buf[..n], from).expect("echo");
        });
        ready_rx.recv_timeout(PATIENCE).expect("kernel up");
        let sock = net.with(move |stack| {
            let u = stack.udp_socket(family);
            stack
                .send_to(u, b"datagram from the netstack", Some(bind))
                .expect("send");
            u
        });
        let (data, from) = net.run(move |stack| {
            let mut buf = [0u8; 2048];
            let meta = stack.recv_from(sock, &mut buf, false).ok()?;
            Some((buf[..meta.len].to_vec(), meta.from))
        });
        assert_eq!(data, b"datagram from the netstack");
        assert_eq!(from, Some(bind));
        kernel.join().expect("kernel echo");
    }
}

#[test]
fn arp_and_neighbor_discovery_resolve_both_ends() {
    let veth = Veth::new();
    let (link, config) = veth.open_link();
    let mac = mac_string(config.mac.expect("mac"));
    let net = Driver::start(link, &config);
    // The stack speaks first: it must resolve the kernel's MAC itself (ARP, then NDP) before
    // anything reaches the kernel, whose neighbor entries for us come from that exchange.
    let kernel = kernel_echo_server(&veth, v6(Ipv6Addr::UNSPECIFIED, 7100), 2);
    for server in [v4(KERNEL4, 7100), v6(KERNEL6, 7100)] {
        let (id, err) = stack_connect(&net, server);
        assert_eq!(err, None, "connect {server}");
        assert_eq!(stack_echo(&net, id, b"resolved"), b"resolved");
        net.with(move |s| s.close(id).expect("close"));
    }
    kernel.join().expect("kernel");
    for addr in [IpAddr::V4(STACK4), IpAddr::V6(STACK6)] {
        let (lladdr, state) = kernel_neighbor(&veth, addr)
            .unwrap_or_else(|| panic!("kernel has no neighbor entry for {addr}"));
        assert_eq!(lladdr, mac, "kernel's entry for {addr}");
        assert!(
            ["REACHABLE", "STALE", "DELAY", "PROBE"].contains(&state.as_str()),
            "state of {addr}: {state}"
        );
    }
    // The kernel resolves us from scratch, too.
    ip(&format!(
        "-n {} neigh flush dev {KERNEL_IF}",
        veth.kernel_ns
    ));
    let server = v4(STACK4, 7101);
    stack_echo_server(&net, v6(Ipv6Addr::UNSPECIFIED, 7101), 4, 16 * 1024);
    for server in [server, v6(STACK6, 7101)] {
        veth.in_kernel(move || {
            TcpStream::connect_timeout(&server, PATIENCE).expect("kernel connect");
        });
        let (lladdr, _) = kernel_neighbor(&veth, server.ip()).expect("entry");
        assert_eq!(lladdr, mac);
    }
}

#[test]
fn host_kernel_no_longer_answers_for_the_taken_addresses() {
    let veth = Veth::new();
    let stack_ns = veth.stack_ns.clone();
    // A kernel listener in the stack's namespace, on every address.
    let host_listener = thread::spawn(move || {
        sys::enter_netns(&stack_ns);
        let l = TcpListener::bind(v6(Ipv6Addr::UNSPECIFIED, 7200)).expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        l
    })
    .join()
    .expect("listener thread");
    // Before: the host kernel answers.
    for addr in [v4(STACK4, 7200), v6(STACK6, 7200)] {
        veth.in_kernel(move || {
            TcpStream::connect_timeout(&addr, PATIENCE).expect("host kernel answers before");
        });
    }
    while host_listener.accept().is_ok() {}
    ip(&format!(
        "-n {} neigh flush dev {KERNEL_IF}",
        veth.kernel_ns
    ));

    let (link, config) = veth.open_link();
    let addrs = ip(&format!("-n {} addr show dev {STACK_IF}", veth.stack_ns));
    assert!(!addrs.contains(&STACK4.to_string()), "{addrs}");
    assert!(!addrs.contains(&STACK6.to_string()), "{addrs}");
    assert!(addrs.contains("fe80::"), "link-local stays: {addrs}");
    // Taken but not yet served: nobody answers ARP, NDP, TCP or ping.
    for addr in [v4(STACK4, 7200), v6(STACK6, 7200)] {
        let err = veth.in_kernel(move || {
            TcpStream::connect_timeout(&addr, StdDuration::from_millis(1500))
                .map(|_| ())
                .map_err(|e| e.kind())
        });
        assert!(
            matches!(err, Err(ErrorKind::TimedOut | ErrorKind::HostUnreachable)),
            "{addr}: {err:?}"
        );
        let entry = kernel_neighbor(&veth, addr.ip());
        assert!(
            entry.is_none(),
            "{addr} resolved to {entry:?} with nobody answering"
        );
    }
    let replies =
        veth.in_kernel(|| sys::ping_replies(STACK4, 0x4d01, StdDuration::from_millis(500)));
    assert_eq!(replies, 0);
    assert_eq!(
        host_listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock)
    );

    // Served by the stack: exactly one answer each, and none from the host kernel.
    let net = Driver::start(link, &config);
    let replies = veth.in_kernel(|| sys::ping_replies(STACK4, 0x4d02, StdDuration::from_secs(2)));
    assert_eq!(replies, 1, "one echo reply, from the netstack alone");
    for addr in [v4(STACK4, 7200), v6(STACK6, 7200)] {
        let err = veth.in_kernel(move || {
            TcpStream::connect_timeout(&addr, PATIENCE)
                .map(|_| ())
                .map_err(|e| e.kind())
        });
        assert_eq!(
            err,
            Err(ErrorKind::ConnectionRefused),
            "the netstack answers {addr}"
        );
    }
    assert_eq!(
        host_listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock)
    );
    drop(net);
}
