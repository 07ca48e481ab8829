//! Links: what carries the stack's packets. A [`Link`] moves whole frames (Ethernet) or packets
//! (IP) in and out; [`LinkDevice`] adapts one to smoltcp's `Device`. The loopback and the in-memory
//! pair live here; the AF_PACKET link is `packet.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

/// A packet carrier under a [`crate::Stack`]. Object safe, so the stack holds any link the same way.
pub trait Link: Send {
    /// Whether frames carry an Ethernet header or are bare IP packets.
    fn medium(&self) -> Medium;
    /// Largest IP packet the link carries (the interface MTU).
    fn mtu(&self) -> usize;
    /// The next received frame, if one is waiting.
    fn recv(&mut self) -> Option<Vec<u8>>;
    /// Sends one frame; a link may drop it, as a wire would.
    fn send(&mut self, frame: Vec<u8>);
    /// Whether `recv` has a frame waiting right now.
    fn has_pending(&self) -> bool;
    /// Whether the stack should compute and verify checksums (false where nothing can corrupt).
    fn checksums(&self) -> bool {
        true
    }
    /// Work the link does in the stack's place (when [`Link::checksums`] is true).
    fn offloads(&self) -> Offloads {
        Offloads::default()
    }
    /// A zeroed buffer of `len` bytes for the stack to build a frame in and hand to
    /// [`Link::send`]; a link may recycle the buffers of frames it sent.
    fn tx_buffer(&mut self, len: usize) -> Vec<u8> {
        vec![0; len]
    }
    /// Takes back the buffer of a received frame the stack is done with, for reuse.
    fn recycle(&mut self, buf: Vec<u8>) {
        drop(buf);
    }
    /// Sends a TCP packet larger than the MTU that the link splits in segments of `mss` payload
    /// bytes (only called when [`Offloads::tcp4_segmentation`] allows it).
    fn send_segmented(&mut self, frame: Vec<u8>, mss: u16) {
        let _ = mss;
        self.send(frame);
    }
    /// Tells the link the time, at the start of every [`crate::Stack::poll`]; a link with timers
    /// of its own (neighbor resolution) runs them here.
    fn set_now(&mut self, now: Instant) {
        let _ = now;
    }
    /// When the link's own timers want the next poll, if they run.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
    /// Sends what the link batched; called at the end of every poll round.
    fn flush(&mut self) {}
    /// A host fd that turns readable when frames arrive, for the caller to sleep on in poll(2)
    /// between stack polls (frames waiting there are not counted by [`Link::has_pending`]). It
    /// stays open as long as the link.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
}

/// Offloads a link takes over from the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// The link verifies (or vouches for) TCP and UDP checksums of received packets, so the stack
    /// does not.
    pub rx_l4_checksum: bool,
    /// The link fills in TCP checksums of sent packets; the stack leaves them zero.
    pub tx_tcp_checksum: bool,
    /// Largest IPv4 TCP packet (IP header included) the link takes and splits at the MSS the
    /// stack names ([`Link::send_segmented`]). Needs `tx_tcp_checksum`. (smoltcp cannot send
    /// IPv6 packets above the MTU, so there is no IPv6 counterpart.)
    pub tcp4_segmentation: Option<NonZeroUsize>,
}

/// The loopback: every packet sent is received by the same stack.
#[derive(Debug, Default)]
pub struct Loopback {
    queue: VecDeque<Vec<u8>>,
}

impl Loopback {
    /// Linux's loopback MTU.
    pub const MTU: usize = 65535;

    /// An empty loopback.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Link for Loopback {
    fn medium(&self) -> Medium {
        Medium::Ip
    }
    fn mtu(&self) -> usize {
        Self::MTU
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
    fn send(&mut self, frame: Vec<u8>) {
        self.queue.push_back(frame);
    }
    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }
    fn checksums(&self) -> bool {
        false
    }
}

/// How an in-memory link pair behaves.
#[derive(Debug, Clone, Copy)]
pub struct MemLinkConfig {
    /// IP MTU of both ends.
    pub mtu: usize,
    /// Fraction of packets dropped on send, 0.0 to 1.0.
    pub drop_rate: f64,
    /// Seed of the drop decisions, so a lossy run repeats exactly.
    pub seed: u64,
}

impl Default for MemLinkConfig {
    fn default() -> Self {
        Self {
            mtu: 1500,
            drop_rate: 0.0,
            seed: 1,
        }
    }
}

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

fn lock(queue: &Queue) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
    // A panic while holding the lock cannot leave a VecDeque half-updated in a way we care about.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One end of an in-memory IP link: what one end sends the other receives, less the drops.
#[derive(Debug)]
pub struct MemLink {
    rx: Queue,
    tx: Queue,
    mtu: usize,
    drop_rate: f64,
    rng: u64,
    sent: u64,
    dropped: u64,
}

/// Two ends of an in-memory IP link, for tests: two stacks exchange packets through queues.
pub fn mem_link_pair(config: MemLinkConfig) -> (MemLink, MemLink) {
    let a: Queue = Arc::default();
    let b: Queue = Arc::default();
    let end = |rx: &Queue, tx: &Queue, salt: u64| MemLink {
        rx: Arc::clone(rx),
        tx: Arc::clone(tx),
        mtu: config.mtu,
        drop_rate: config.drop_rate.clamp(0.0, 1.0),
        // xorshift must not start at zero.
        rng: (config.seed ^ salt) | 1,
        sent: 0,
        dropped: 0,
    };
    (end(&a, &b, 0x9e37_79b9), end(&b, &a, 0x7f4a_7c15))
}

impl MemLink {
    /// Packets this end was asked to send, and how many of them the link dropped.
    pub fn stats(&self) -> (u64, u64) {
        (self.sent, self.dropped)
    }

    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // The top 53 bits as a fraction in [0, 1).
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Link for MemLink {
    fn medium(&self) -> Medium {
        Medium::Ip
    }
    fn mtu(&self) -> usize {
        self.mtu
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        lock(&self.rx).pop_front()
    }
    fn send(&mut self, frame: Vec<u8>) {
        self.sent += 1;
        if self.drop_rate > 0.0 && self.next_unit() < self.drop_rate {
            self.dropped += 1;
            return;
        }
        lock(&self.tx).push_back(frame);
    }
    fn has_pending(&self) -> bool {
        !lock(&self.rx).is_empty()
    }
}

/// smoltcp's view of a [`Link`], made fresh for each poll step. Received buffers come back
/// to the link ([`Link::recycle`]) when the step is over.
pub(crate) struct LinkDevice<'a> {
    link: &'a mut dyn Link,
    consumed: RefCell<Vec<Vec<u8>>>,
}

impl<'a> LinkDevice<'a> {
    pub(crate) fn new(link: &'a mut dyn Link) -> Self {
        Self {
            link,
            consumed: RefCell::new(Vec::new()),
        }
    }
}

impl Drop for LinkDevice<'_> {
    fn drop(&mut self) {
        for buf in self.consumed.get_mut().drain(..) {
            self.link.recycle(buf);
        }
    }
}

pub(crate) struct RxToken<'a> {
    frame: Vec<u8>,
    consumed: &'a RefCell<Vec<Vec<u8>>>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let result = f(&self.frame);
        self.consumed.borrow_mut().push(self.frame);
        result
    }
}

pub(crate) struct TxToken<'a> {
    link: &'a mut dyn Link,
    meta: PacketMeta,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = self.link.tx_buffer(len);
        let result = f(&mut frame);
        match self.meta.segmentation_offload_size {
            Some(mss) => self.link.send_segmented(frame, mss.get()),
            None => self.link.send(frame),
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

impl phy::Device for LinkDevice<'_> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.link.recv()?;
        Some((
            RxToken {
                frame,
                consumed: &self.consumed,
            },
            TxToken {
                link: &mut *self.link,
                meta: PacketMeta::default(),
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            link: &mut *self.link,
            meta: PacketMeta::default(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.link.medium();
        caps.max_transmission_unit = match caps.medium {
            Medium::Ethernet => self.link.mtu() + 14,
            _ => self.link.mtu(),
        };
        if !self.link.checksums() {
            caps.checksum = ChecksumCapabilities::ignored();
            return caps;
        }
        let offloads = self.link.offloads();
        if offloads.rx_l4_checksum {
            caps.checksum.tcp = Checksum::Tx;
            caps.checksum.udp = Checksum::Tx;
        }
        if offloads.tx_tcp_checksum {
            caps.checksum.tcp = if offloads.rx_l4_checksum {
                Checksum::None
            } else {
                Checksum::Rx
            };
            // smoltcp requires TCP checksum offload for segmentation offload.
            caps.segmentation.tcpv4 = offloads.tcp4_segmentation;
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_link_delivers_to_the_other_end() {
        let (mut a, mut b) = mem_link_pair(MemLinkConfig::default());
        a.send(vec![1, 2, 3]);
        assert!(b.has_pending());
        assert!(!a.has_pending());
        assert_eq!(b.recv(), Some(vec![1, 2, 3]));
        assert_eq!(b.recv(), None);
    }

    #[test]
    fn mem_link_drops_about_the_configured_fraction() {
        let config = MemLinkConfig {
            drop_rate: 0.05,
            seed: 7,
            ..MemLinkConfig::default()
        };
        let (mut a, _b) = mem_link_pair(config);
        for _ in 0..10_000 {
            a.send(vec![0]);
        }
        let (sent, dropped) = a.stats();
        assert_eq!(sent, 10_000);
        assert!((400..600).contains(&dropped), "dropped {dropped}");
    }

    #[test]
    fn loopback_returns_what_it_sent() {
        let mut lo = Loopback::new();
        lo.send(vec![9]);
        assert_eq!(lo.recv(), Some(vec![9]));
        assert!(!lo.has_pending());
    }
}
