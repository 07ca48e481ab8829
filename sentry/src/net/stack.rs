//! The sandbox's one netstack: the `moat-netstack` stack behind a lock, the wait queue of each
//! of its sockets, and the poller thread that runs its timers and takes in packets.
//!
//! A socket call locks the stack, acts, then polls it at once (loopback packets are answered
//! within that poll) and wakes the sockets whose readiness rose. The poller thread sleeps in a
//! host poll(2) on the link's fd and a kick eventfd, with the stack's next timer as timeout:
//! an idle sandbox never wakes.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use std::net::IpAddr;

use moat_netstack::{Link, NetError, PacketLink, Readiness, SocketId, Stack};

use crate::abi::Errno;
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;

/// The stack's clock: microseconds since the sentry started.
fn now() -> moat_netstack::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let e = EPOCH.get_or_init(std::time::Instant::now);
    moat_netstack::Instant::from_micros(e.elapsed().as_micros() as i64)
}

/// The errno of a netstack error.
pub fn errno(e: NetError) -> Errno {
    Errno(e.errno())
}

/// POLL* bits of a netstack readiness.
pub fn poll_bits(r: Readiness) -> u32 {
    let mut b = 0;
    if r.readable {
        b |= POLLIN | POLLRDNORM;
    }
    if r.writable {
        b |= POLLOUT | POLLWRNORM;
    }
    if r.hup {
        b |= POLLHUP;
    }
    if r.rdhup {
        b |= POLLRDHUP;
    }
    if r.error {
        b |= POLLERR;
    }
    b
}

pub struct Inner {
    pub stack: Stack,
    queues: HashMap<SocketId, Arc<WaitQueue>>,
    /// Readiness bits last seen, to wake only on rising ones.
    last: HashMap<SocketId, u32>,
    /// When the poller will wake next (None: only for a packet or a kick).
    poller_wake: Option<moat_netstack::Instant>,
}

/// The netstack of one sandbox.
pub struct NetStack {
    inner: Mutex<Inner>,
    kick: OwnedFd,
    /// The packet socket under the stack, if any (owned by the stack's link).
    link_fd: Option<RawFd>,
    /// The interfaces as the app sees them (netlink, interface ioctls).
    pub links: Vec<LinkInfo>,
    /// Default gateways with the index of their interface.
    gateways: Vec<(std::net::IpAddr, u32)>,
}

/// One interface as the app sees it.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    /// Addresses with prefix lengths.
    pub addrs: Vec<(std::net::IpAddr, u8)>,
    pub loopback: bool,
}

impl LinkInfo {
    fn lo(addrs: Vec<(IpAddr, u8)>) -> LinkInfo {
        LinkInfo {
            index: 1,
            name: "lo".into(),
            mtu: 65536,
            mac: None,
            addrs,
            loopback: true,
        }
    }
}

/// Why the netstack could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetBootError {
    #[error("cannot enter the network namespace or make the kick eventfd")]
    Host(#[from] std::io::Error),
    #[error("cannot take over the interface")]
    Link(#[from] moat_netstack::PacketLinkError),
    #[error("cannot configure the stack")]
    Stack(#[from] NetError),
}

/// A locked stack; dropping it polls the stack, wakes risen sockets and kicks the poller
/// if its next timer moved earlier.
pub struct Locked<'a> {
    net: &'a NetStack,
    g: Option<MutexGuard<'a, Inner>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.g.as_ref().expect("live guard").stack
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.g.as_mut().expect("live guard").stack
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.g.take() {
            self.net.settle(g);
        }
    }
}

impl NetStack {
    pub fn new(
        stack: Stack,
        link_fd: Option<RawFd>,
        links: Vec<LinkInfo>,
        gateways: Vec<(std::net::IpAddr, u32)>,
    ) -> std::io::Result<Arc<NetStack>> {
        let kick = crate::sys::eventfd()?;
        Ok(Arc::new(NetStack {
            inner: Mutex::new(Inner {
                stack,
                queues: HashMap::new(),
                last: HashMap::new(),
                poller_wake: None,
            }),
            kick,
            link_fd,
            links,
            gateways,
        }))
    }

    /// The sandbox's netstack: its own loopback only when `iface` is empty; else also
    /// interface `iface` of network namespace `netns`, whose addresses it takes over.
    pub fn boot(iface: &[u8], netns: Option<OwnedFd>) -> Result<Arc<NetStack>, NetBootError> {
        let mut seed = [0u8; 8];
        crate::sys::getrandom(&mut seed);
        let seed = u64::from_le_bytes(seed);
        let lo_addrs = |addrs: &[(IpAddr, u8)]| -> Vec<(IpAddr, u8)> {
            addrs
                .iter()
                .copied()
                .filter(|(a, _)| a.is_loopback())
                .collect()
        };
        let Some(ns) = netns.filter(|_| !iface.is_empty()) else {
            let stack = Stack::loopback(seed, now());
            let lo = LinkInfo::lo(lo_addrs(&stack.addrs()));
            return Ok(Self::new(stack, None, vec![lo], Vec::new())?);
        };
        let name = String::from_utf8_lossy(iface).into_owned();
        crate::sys::setns_net(ns.as_fd())?;
        let (link, config) = PacketLink::open(&name, seed)?;
        let mac = config.mac;
        let mtu = link.mtu() as u32;
        let link_fd = link.wait_fd();
        let stack = Stack::new(Box::new(link), &config, now())?;
        let all = stack.addrs();
        let eth = LinkInfo {
            index: 2,
            name,
            mtu,
            mac,
            addrs: all
                .iter()
                .copied()
                .filter(|(a, _)| !a.is_loopback())
                .collect(),
            loopback: false,
        };
        let mut gateways = Vec::new();
        if let Some(g) = config.gateway_v4 {
            gateways.push((IpAddr::V4(g), 2));
        }
        if let Some(g) = config.gateway_v6 {
            gateways.push((IpAddr::V6(g), 2));
        }
        Ok(Self::new(
            stack,
            link_fd,
            vec![LinkInfo::lo(lo_addrs(&all)), eth],
            gateways,
        )?)
    }

    /// Locks the stack for a socket call.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            net: self,
            g: Some(self.inner.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    /// Default gateways and the index of the interface they are reached through.
    pub fn gateways(&self) -> Vec<(std::net::IpAddr, u32)> {
        self.gateways.clone()
    }

    /// Reads the stack without polling it (readiness, addresses, options).
    pub fn with<R>(&self, f: impl FnOnce(&Stack) -> R) -> R {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&g.stack)
    }

    /// The wait queue of a socket (made on first use).
    pub fn queue(&self, id: SocketId) -> Arc<WaitQueue> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.queues.entry(id).or_default().clone()
    }

    /// Closes a socket and forgets its queue.
    pub fn close(&self, id: SocketId) {
        let mut l = self.lock();
        let _ = l.close(id);
        if let Some(g) = l.g.as_mut() {
            g.queues.remove(&id);
            g.last.remove(&id);
        }
    }

    /// Polls, wakes the risen sockets, and kicks the poller if its timer must move earlier.
    fn settle(&self, mut g: MutexGuard<'_, Inner>) {
        let t = now();
        let mut wake = Vec::new();
        g.stack.poll(t);
        collect_wakes(&mut g, &mut wake);
        let next = g.stack.poll_delay(t).map(|d| t + d);
        let kick = match (next, g.poller_wake) {
            (Some(n), Some(w)) => n < w,
            (Some(_), None) => true,
            _ => false,
        };
        if kick {
            g.poller_wake = next;
        }
        drop(g);
        for (q, bits) in wake {
            q.notify(bits);
        }
        if kick {
            let _ = crate::sys::write(self.kick.as_fd(), &1u64.to_le_bytes());
        }
    }

    /// The poller thread's loop: never returns.
    pub fn run_poller(self: Arc<Self>) {
        loop {
            let timeout_ms = {
                let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                let t = now();
                let mut wake = Vec::new();
                g.stack.poll(t);
                collect_wakes(&mut g, &mut wake);
                let delay = g.stack.poll_delay(t);
                g.poller_wake = delay.map(|d| t + d);
                drop(g);
                for (q, bits) in wake {
                    q.notify(bits);
                }
                match delay {
                    None => -1,
                    // Round up, so the poller never wakes just before a timer is due.
                    Some(d) => d.total_micros().div_ceil(1000).min(60_000) as i32,
                }
            };
            let mut fds = vec![(self.kick.as_raw_fd(), libc::POLLIN)];
            if let Some(l) = self.link_fd {
                fds.push((l, libc::POLLIN));
            }
            if let Ok(rev) = crate::sys::poll_fds(&fds, timeout_ms) {
                if rev.first().is_some_and(|r| r & libc::POLLIN != 0) {
                    let mut b = [0u8; 8];
                    let _ = crate::sys::read(self.kick.as_fd(), &mut b);
                }
            }
        }
    }
}

/// The queues of sockets whose readiness rose since last seen, with the risen bits.
fn collect_wakes(g: &mut Inner, out: &mut Vec<(Arc<WaitQueue>, u32)>) {
    for id in g.stack.take_changed() {
        let Ok(r) = g.stack.readiness(id) else {
            continue;
        };
        let bits = poll_bits(r);
        let old = g.last.insert(id, bits).unwrap_or(0);
        let rose = bits & !old;
        if rose != 0 {
            if let Some(q) = g.queues.get(&id) {
                out.push((q.clone(), rose));
            }
        }
    }
}
