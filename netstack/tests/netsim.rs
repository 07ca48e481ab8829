//! Two stacks joined by an in-memory link, on a simulated clock, with optional seeded loss
//! (after smoltcp's tests/netsim.rs). Nothing here reads the real time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use moat_netstack::{
    mem_link_pair, Duration, Family, Instant, MemLinkConfig, NetError, Shutdown, SocketId, Stack,
    StackConfig,
};

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// Simulated one-way latency of the link, when packets are in flight.
const HOP: Duration = Duration::from_micros(100);

struct Net {
    a: Stack,
    b: Stack,
    now: Instant,
}

fn config(v4: Ipv4Addr, v6: Ipv6Addr, seed: u64) -> StackConfig {
    StackConfig {
        addrs: vec![(IpAddr::V4(v4), 24), (IpAddr::V6(v6), 64)],
        gateway_v4: None,
        gateway_v6: None,
        mac: None,
        random_seed: seed,
    }
}

impl Net {
    fn new(link: MemLinkConfig) -> Self {
        let (la, lb) = mem_link_pair(link);
        let now = Instant::from_millis(1_000);
        let a = Stack::new(Box::new(la), &config(A4, A6, 11), now).expect("stack a");
        let b = Stack::new(Box::new(lb), &config(B4, B6, 22), now).expect("stack b");
        Self { a, b, now }
    }

    fn lossless() -> Self {
        Self::new(MemLinkConfig::default())
    }

    /// Polls both stacks, then moves the clock: one hop while packets are in flight, else to the
    /// next timer (at most 100 ms, so tests notice progress).
    fn step(&mut self) {
        self.a.poll(self.now);
        self.b.poll(self.now);
        let delay = [self.a.poll_delay(self.now), self.b.poll_delay(self.now)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        self.now += delay.max(HOP);
    }

    /// Steps until `done` holds; panics after `max_steps`.
    fn run_until(&mut self, max_steps: usize, mut done: impl FnMut(&mut Net) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!("condition not reached in {max_steps} steps");
    }
}

/// A listener on b at `server`, a connection from a, accepted: (client on a, server side on b).
fn connected_pair(net: &mut Net, server: SocketAddr) -> (SocketId, SocketId) {
    let family = Family::of(&server);
    let listener = net.b.tcp_socket(family);
    net.b.bind(listener, server).expect("bind");
    net.b.listen(listener, 16).expect("listen");
    let client = net.a.tcp_socket(family);
    assert_eq!(net.a.connect(client, server), Err(NetError::InProgress));
    let mut accepted = None;
    net.run_until(1_000, |net| {
        if accepted.is_none() {
            accepted = net.b.accept(listener).ok();
        }
        accepted.is_some() && net.a.readiness(client).expect("readiness").writable
    });
    let (server_side, peer) = accepted.expect("accepted");
    assert_eq!(peer, net.a.local_addr(client).expect("local addr"));
    assert_eq!(net.a.peer_addr(client).expect("peer addr"), server);
    assert_eq!(net.a.take_error(client), Ok(None));
    (client, server_side)
}

/// Sends all of `data` from one side and receives it on the other, stepping the network.
fn transfer(net: &mut Net, from_a: bool, tx: SocketId, rx: SocketId, data: &[u8]) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 64 * 1024];
    net.run_until(2_000_000, |net| {
        let (sender, receiver) = if from_a {
            (&mut net.a, &mut net.b)
        } else {
            (&mut net.b, &mut net.a)
        };
        if sent < data.len() {
            match sender.send(tx, &data[sent..]) {
                Ok(n) => sent += n,
                Err(NetError::WouldBlock) => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        loop {
            match receiver.recv(rx, &mut buf, false) {
                Ok(0) => panic!("early eof"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(NetError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        got.len() == data.len()
    });
    got
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn tcp_echo_works_in_both_directions() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 7));
    let got = transfer(&mut net, true, client, server, b"ping from a");
    assert_eq!(got, b"ping from a");
    let got = transfer(&mut net, false, server, client, b"pong from b");
    assert_eq!(got, b"pong from b");
}

#[test]
fn hundred_concurrent_connects_are_all_accepted_with_backlog_128() {
    let mut net = Net::lossless();
    let server = SocketAddr::new(B4.into(), 80);
    let listener = net.b.tcp_socket(Family::V4);
    net.b.bind(listener, server).expect("bind");
    net.b.listen(listener, 128).expect("listen");
    let clients: Vec<SocketId> = (0..100)
        .map(|_| {
            let c = net.a.tcp_socket(Family::V4);
            assert_eq!(net.a.connect(c, server), Err(NetError::InProgress));
            c
        })
        .collect();
    // All SYNs go out in one burst, before anyone accepts.
    net.run_until(1_000, |net| {
        clients
            .iter()
            .all(|&c| net.a.readiness(c).expect("readiness").writable)
    });
    assert!(net.b.readiness(listener).expect("readiness").readable);
    let mut accepted = Vec::new();
    while let Ok((id, peer)) = net.b.accept(listener) {
        accepted.push((id, peer));
    }
    assert_eq!(accepted.len(), 100);
    for &c in &clients {
        assert_eq!(net.a.take_error(c), Ok(None));
    }
    let mut peers: Vec<u16> = accepted.iter().map(|(_, p)| p.port()).collect();
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(peers.len(), 100);
    assert_eq!(net.b.accept(listener), Err(NetError::WouldBlock));
}

#[test]
fn connect_to_a_port_without_listener_is_refused() {
    let mut net = Net::lossless();
    let client = net.a.tcp_socket(Family::V4);
    let server = SocketAddr::new(B4.into(), 9);
    assert_eq!(net.a.connect(client, server), Err(NetError::InProgress));
    assert_eq!(net.a.connect(client, server), Err(NetError::Already));
    net.run_until(1_000, |net| {
        net.a.readiness(client).expect("readiness").error
    });
    let ready = net.a.readiness(client).expect("readiness");
    assert!(ready.writable && ready.hup);
    assert_eq!(net.a.take_error(client), Ok(Some(NetError::ConnRefused)));
    assert_eq!(net.a.take_error(client), Ok(None));
    assert_eq!(NetError::ConnRefused.errno(), 111);
}

#[test]
fn four_mib_cross_a_lossy_link_intact() {
    let mut net = Net::new(MemLinkConfig {
        drop_rate: 0.05,
        seed: 42,
        ..MemLinkConfig::default()
    });
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 5001));
    let data = pseudo_random_bytes(4 * 1024 * 1024, 0x1234_5678);
    let got = transfer(&mut net, true, client, server, &data);
    assert_eq!(got.len(), data.len());
    assert_eq!(fnv1a(&got), fnv1a(&data));
    // Loss costs retransmission timeouts, not a stall: 4 MiB in well under a simulated minute.
    assert!(net.now < Instant::from_secs(60), "took until {}", net.now);
}

#[test]
fn udp_echo_keeps_datagram_boundaries_and_reports_truncation() {
    let mut net = Net::lossless();
    let server_addr = SocketAddr::new(B4.into(), 53);
    let server = net.b.udp_socket(Family::V4);
    net.b.bind(server, server_addr).expect("bind");
    let client = net.a.udp_socket(Family::V4);
    assert_eq!(net.a.send_to(client, b"one", Some(server_addr)), Ok(3));
    assert_eq!(net.a.send_to(client, b"second", Some(server_addr)), Ok(6));
    let client_addr = net.a.local_addr(client).expect("local addr");
    assert!(moat_netstack::EPHEMERAL_PORTS.contains(&client_addr.port()));
    net.run_until(100, |net| net.b.readiness(server).expect("ready").readable);
    net.step();

    let mut buf = [0u8; 64];
    let first = net.b.recv_from(server, &mut buf, false).expect("first");
    assert_eq!(&buf[..first.len], b"one");
    assert!(!first.truncated());
    let from = first.from.expect("sender");
    assert_eq!(from.port(), client_addr.port());
    assert_eq!(from.ip(), IpAddr::V4(A4));

    let mut small = [0u8; 3];
    let second = net.b.recv_from(server, &mut small, false).expect("second");
    assert_eq!((second.len, second.full_len), (3, 6));
    assert!(second.truncated());
    assert_eq!(&small, b"sec");
    assert_eq!(
        net.b.recv_from(server, &mut buf, false),
        Err(NetError::WouldBlock)
    );

    // Echo back; the client connects, so only the server's datagrams reach it.
    net.a.connect(client, server_addr).expect("connect");
    assert_eq!(net.b.send_to(server, b"echo", Some(from)), Ok(4));
    net.run_until(100, |net| net.a.readiness(client).expect("ready").readable);
    assert_eq!(net.a.recv(client, &mut buf, false), Ok(4));
    assert_eq!(&buf[..4], b"echo");
    assert_eq!(
        net.a.send(client, &[0u8; 2000]),
        Err(NetError::MessageTooLong)
    );
}

#[test]
fn ipv6_connect_and_echo() {
    let mut net = Net::lossless();
    let server = SocketAddr::new(B6.into(), 8080);
    let (client, server_side) = connected_pair(&mut net, server);
    assert_eq!(
        net.a.local_addr(client).expect("local").ip(),
        IpAddr::V6(A6)
    );
    let got = transfer(&mut net, true, client, server_side, b"over ipv6");
    assert_eq!(got, b"over ipv6");
    let got = transfer(&mut net, false, server_side, client, b"and back");
    assert_eq!(got, b"and back");
}

#[test]
fn shutdown_write_gives_the_peer_eof_and_keeps_the_other_direction() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 2000));
    transfer(&mut net, true, client, server, b"last words");
    net.a.shutdown(client, Shutdown::Write).expect("shutdown");
    assert_eq!(net.a.send(client, b"more"), Err(NetError::BrokenPipe));
    net.run_until(100, |net| net.b.readiness(server).expect("ready").rdhup);
    let mut buf = [0u8; 16];
    assert_eq!(net.b.recv(server, &mut buf, false), Ok(0));
    // Half-closed: the server can still answer.
    let got = transfer(&mut net, false, server, client, b"reply");
    assert_eq!(got, b"reply");
    net.b.close(server).expect("close");
    net.run_until(100, |net| net.a.readiness(client).expect("ready").hup);
    assert_eq!(net.a.recv(client, &mut buf, false), Ok(0));
}

#[test]
fn peek_does_not_consume() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 3000));
    assert_eq!(net.a.send(client, b"abcdef"), Ok(6));
    net.run_until(100, |net| net.b.readiness(server).expect("ready").readable);
    let mut buf = [0u8; 4];
    assert_eq!(net.b.recv(server, &mut buf, true), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(net.b.recv(server, &mut buf, true), Ok(4));
    assert_eq!(&buf, b"abcd");
    let mut all = [0u8; 16];
    assert_eq!(net.b.recv(server, &mut all, false), Ok(6));
    assert_eq!(&all[..6], b"abcdef");
    assert_eq!(
        net.b.recv(server, &mut all, false),
        Err(NetError::WouldBlock)
    );
}

#[test]
fn close_with_unread_data_resets_the_peer() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 4000));
    assert_eq!(net.a.send(client, b"unread"), Ok(6));
    net.run_until(100, |net| net.b.readiness(server).expect("ready").readable);
    net.b.close(server).expect("close");
    net.run_until(100, |net| net.a.readiness(client).expect("ready").error);
    let mut buf = [0u8; 8];
    assert_eq!(
        net.a.recv(client, &mut buf, false),
        Err(NetError::ConnReset)
    );
    assert_eq!(net.a.send(client, b"x"), Err(NetError::BrokenPipe));
}

#[test]
fn graceful_close_finishes_and_frees_the_stack() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 4001));
    net.a.close(client).expect("close");
    net.run_until(100, |net| net.b.readiness(server).expect("ready").rdhup);
    net.b.close(server).expect("close");
    assert_eq!(net.a.close(client), Err(NetError::BadSocket));
    // TIME_WAIT ends within smoltcp's close delay.
    for _ in 0..400 {
        net.step();
    }
    assert_eq!(net.a.socket_count(), 0);
}

#[test]
fn connect_into_a_black_hole_times_out() {
    let mut net = Net::new(MemLinkConfig {
        drop_rate: 1.0,
        ..MemLinkConfig::default()
    });
    let client = net.a.tcp_socket(Family::V4);
    let server = SocketAddr::new(B4.into(), 80);
    assert_eq!(net.a.connect(client, server), Err(NetError::InProgress));
    let start = net.now;
    net.run_until(10_000, |net| {
        net.a.readiness(client).expect("readiness").error
    });
    assert!(net.now - start >= moat_netstack::CONNECT_TIMEOUT);
    assert_eq!(net.a.take_error(client), Ok(Some(NetError::TimedOut)));
}

#[test]
fn linger_zero_close_resets_at_once() {
    let mut net = Net::lossless();
    let (client, server) = connected_pair(&mut net, SocketAddr::new(B4.into(), 4002));
    net.b.set_linger_abort(server, true).expect("linger");
    net.b.close(server).expect("close");
    net.run_until(100, |net| net.a.readiness(client).expect("ready").error);
    assert_eq!(net.a.take_error(client), Ok(Some(NetError::ConnReset)));
}

#[test]
fn buffer_sizes_are_clamped_and_used_for_new_connections() {
    let mut net = Net::lossless();
    let s = net.a.tcp_socket(Family::V4);
    net.a.set_recv_buffer_size(s, 1).expect("rcvbuf");
    assert_eq!(net.a.recv_buffer_size(s), Ok(moat_netstack::MIN_BUFFER));
    net.a.set_send_buffer_size(s, usize::MAX).expect("sndbuf");
    assert_eq!(net.a.send_buffer_size(s), Ok(moat_netstack::MAX_BUFFER));
    // A small send buffer bounds how much one send takes before the peer acknowledges.
    let listener = net.b.tcp_socket(Family::V4);
    let server = SocketAddr::new(B4.into(), 4003);
    net.b.bind(listener, server).expect("bind");
    net.b.listen(listener, 1).expect("listen");
    let small = net.a.tcp_socket(Family::V4);
    net.a.set_send_buffer_size(small, 8 * 1024).expect("sndbuf");
    assert_eq!(net.a.connect(small, server), Err(NetError::InProgress));
    net.run_until(100, |net| net.a.readiness(small).expect("ready").writable);
    assert_eq!(net.a.send(small, &[0u8; 64 * 1024]), Ok(8 * 1024));
}

#[test]
fn many_connects_over_a_lossy_link_all_complete_once() {
    let mut net = Net::new(MemLinkConfig {
        drop_rate: 0.1,
        seed: 9,
        ..MemLinkConfig::default()
    });
    let server = SocketAddr::new(B4.into(), 8081);
    let listener = net.b.tcp_socket(Family::V4);
    net.b.bind(listener, server).expect("bind");
    net.b.listen(listener, 128).expect("listen");
    let clients: Vec<SocketId> = (0..60)
        .map(|_| {
            let c = net.a.tcp_socket(Family::V4);
            assert_eq!(net.a.connect(c, server), Err(NetError::InProgress));
            c
        })
        .collect();
    let mut accepted = Vec::new();
    net.run_until(100_000, |net| {
        while let Ok((id, _)) = net.b.accept(listener) {
            accepted.push(id);
        }
        accepted.len() == clients.len()
            && clients
                .iter()
                .all(|&c| net.a.readiness(c).expect("ready").writable)
    });
    for &c in &clients {
        assert_eq!(net.a.take_error(c), Ok(None));
    }
    // Each accepted socket is a distinct live connection: a byte from every client arrives.
    for &c in &clients {
        assert_eq!(net.a.send(c, b"!"), Ok(1));
    }
    let mut buf = [0u8; 4];
    let mut heard = 0;
    net.run_until(100_000, |net| {
        for &s in &accepted {
            if net.b.recv(s, &mut buf, false) == Ok(1) {
                heard += 1;
            }
        }
        heard == clients.len()
    });
    assert!(net.b.accept(listener).is_err());
}
