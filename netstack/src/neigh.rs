//! The packet link's neighbor cache: IP address to MAC, filled by ARP (IPv4) and neighbor
//! discovery (IPv6), with packets held while an address resolves.
//!
//! Like Linux, but simpler: an entry learned from the wire is used for [`REACHABLE`]; used after
//! that, it is re-probed while still in use, and forgotten if [`MAX_PROBES`] probes go
//! unanswered. An unresolved address holds up to [`QUEUE_BYTES`] of packets; when its probes
//! run out they are dropped.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use smoltcp::time::{Duration, Instant};

/// How long a learned MAC is trusted without a new confirmation.
pub(crate) const REACHABLE: Duration = Duration::from_secs(30);
/// Time between probes of one address (Linux's `retrans_time`).
pub(crate) const RETRANSMIT: Duration = Duration::from_secs(1);
/// Probes sent before an address is given up (Linux's `mcast_solicit`).
pub(crate) const MAX_PROBES: u8 = 3;
/// Bytes of packets held per unresolved address (Linux's `unres_qlen_bytes`).
pub(crate) const QUEUE_BYTES: usize = 256 * 1024;
/// Entries kept at most; the oldest is dropped for a new one.
const MAX_ENTRIES: usize = 4096;

/// Something with a size, so the queue can be bounded in bytes.
pub(crate) trait Held {
    fn held_bytes(&self) -> usize;
}

struct Entry<T> {
    mac: Option<[u8; 6]>,
    /// When the MAC was last learned or confirmed.
    confirmed: Instant,
    /// Probes sent in the current resolution; the next is due at `next_probe`.
    probes: u8,
    next_probe: Option<Instant>,
    queue: VecDeque<T>,
    queued_bytes: usize,
}

/// What [`Neighbors::resolve`] decided for a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Send to this MAC now.
    Ready([u8; 6]),
    /// Send to this MAC now, and probe the address (send a request) as it is getting old.
    ReadyProbe([u8; 6]),
    /// Held; send a request for the address now.
    QueuedProbe,
    /// Held; a request is already out.
    Queued,
    /// Dropped: the address's queue is full.
    Dropped,
}

/// What the timers asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expired {
    /// Addresses to send another request for.
    pub(crate) probe: Vec<IpAddr>,
    /// Packets dropped because their address never answered.
    pub(crate) dropped: usize,
}

/// The neighbor cache.
pub(crate) struct Neighbors<T> {
    entries: HashMap<IpAddr, Entry<T>>,
}

impl<T: Held> Neighbors<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }

    /// Where a packet to next hop `ip` goes; a packet that must wait is taken and held.
    pub(crate) fn resolve(&mut self, ip: IpAddr, packet: T, now: Instant) -> (Resolve, Option<T>) {
        // The common case first, with one lookup: a known, fresh neighbor.
        if let Some(Entry {
            mac: Some(mac),
            confirmed,
            next_probe,
            ..
        }) = self.entries.get(&ip)
        {
            if now < *confirmed + REACHABLE || next_probe.is_some() {
                return (Resolve::Ready(*mac), Some(packet));
            }
        }
        if !self.entries.contains_key(&ip) {
            self.make_room();
        }
        let entry = self.entries.entry(ip).or_insert_with(|| Entry {
            mac: None,
            confirmed: now,
            probes: 0,
            next_probe: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
        });
        if let Some(mac) = entry.mac {
            if now >= entry.confirmed + REACHABLE && entry.next_probe.is_none() {
                entry.probes = 1;
                entry.next_probe = Some(now + RETRANSMIT);
                return (Resolve::ReadyProbe(mac), Some(packet));
            }
            return (Resolve::Ready(mac), Some(packet));
        }
        if entry.queued_bytes + packet.held_bytes() > QUEUE_BYTES {
            return (Resolve::Dropped, None);
        }
        entry.queued_bytes += packet.held_bytes();
        entry.queue.push_back(packet);
        if entry.next_probe.is_none() {
            entry.probes = 1;
            entry.next_probe = Some(now + RETRANSMIT);
            (Resolve::QueuedProbe, None)
        } else {
            (Resolve::Queued, None)
        }
    }

    /// The MAC of `ip` if known, without touching the entry.
    #[cfg(test)]
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.entries.get(&ip)?.mac
    }

    /// Whether the cache has an entry (known or being resolved) for `ip`.
    #[cfg(test)]
    pub(crate) fn knows(&self, ip: IpAddr) -> bool {
        self.entries.contains_key(&ip)
    }

    /// Records that `ip` is at `mac`: updates an existing entry, or creates one when `create`.
    /// Returns the packets that were waiting for it.
    pub(crate) fn learn(
        &mut self,
        ip: IpAddr,
        mac: [u8; 6],
        now: Instant,
        create: bool,
    ) -> VecDeque<T> {
        if !self.entries.contains_key(&ip) {
            if !create {
                return VecDeque::new();
            }
            self.make_room();
        }
        let entry = self.entries.entry(ip).or_insert_with(|| Entry {
            mac: None,
            confirmed: now,
            probes: 0,
            next_probe: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
        });
        entry.mac = Some(mac);
        entry.confirmed = now;
        entry.probes = 0;
        entry.next_probe = None;
        entry.queued_bytes = 0;
        std::mem::take(&mut entry.queue)
    }

    /// Runs the probe timers: addresses due for another probe, and those that ran out of probes
    /// (forgotten, their packets dropped).
    pub(crate) fn expire(&mut self, now: Instant) -> Expired {
        let mut expired = Expired::default();
        self.entries.retain(|&ip, entry| {
            let Some(due) = entry.next_probe else {
                return true;
            };
            if now < due {
                return true;
            }
            if entry.probes < MAX_PROBES {
                entry.probes += 1;
                entry.next_probe = Some(now + RETRANSMIT);
                expired.probe.push(ip);
                return true;
            }
            expired.dropped += entry.queue.len();
            false
        });
        expired
    }

    /// When [`Neighbors::expire`] has work next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.next_probe).min()
    }

    /// Drops the entry confirmed longest ago when the cache is full.
    fn make_room(&mut self) {
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.confirmed)
            .map(|(&ip, _)| ip);
        if let Some(ip) = oldest {
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Held for Vec<u8> {
        fn held_bytes(&self) -> usize {
            self.len()
        }
    }

    const GW: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn packets_wait_for_resolution_and_leave_in_order() {
        let mut n = Neighbors::new();
        let t = Instant::from_secs(10);
        assert_eq!(n.resolve(GW, vec![1], t).0, Resolve::QueuedProbe);
        assert_eq!(n.resolve(GW, vec![2], t).0, Resolve::Queued);
        assert_eq!(n.next_deadline(), Some(t + RETRANSMIT));
        let released: Vec<_> = n.learn(GW, MAC, t, false).into_iter().collect();
        assert_eq!(released, vec![vec![1], vec![2]]);
        assert_eq!(
            n.resolve(GW, vec![3], t),
            (Resolve::Ready(MAC), Some(vec![3]))
        );
        assert_eq!(n.next_deadline(), None);
    }

    #[test]
    fn unanswered_probes_drop_the_queue_after_three_tries() {
        let mut n = Neighbors::new();
        let t = Instant::from_secs(10);
        n.resolve(GW, vec![0; 100], t);
        assert_eq!(n.expire(t + RETRANSMIT).probe, vec![GW]);
        assert_eq!(n.expire(t + RETRANSMIT * 2).probe, vec![GW]);
        let last = n.expire(t + RETRANSMIT * 3);
        assert_eq!(
            last,
            Expired {
                probe: vec![],
                dropped: 1
            }
        );
        assert!(!n.knows(GW));
        assert_eq!(n.next_deadline(), None);
    }

    #[test]
    fn queue_is_bounded_in_bytes() {
        let mut n = Neighbors::new();
        let t = Instant::from_secs(1);
        let big = vec![0u8; QUEUE_BYTES / 2];
        n.resolve(GW, big.clone(), t);
        n.resolve(GW, big.clone(), t);
        assert_eq!(n.resolve(GW, vec![0], t).0, Resolve::Dropped);
    }

    #[test]
    fn old_entries_are_reprobed_while_still_used() {
        let mut n: Neighbors<Vec<u8>> = Neighbors::new();
        let t = Instant::from_secs(1);
        n.learn(GW, MAC, t, true);
        let later = t + REACHABLE;
        assert_eq!(n.resolve(GW, vec![], later).0, Resolve::ReadyProbe(MAC));
        assert_eq!(n.resolve(GW, vec![], later).0, Resolve::Ready(MAC));
        // Answered: fresh again.
        n.learn(GW, MAC, later, false);
        assert_eq!(n.next_deadline(), None);
        // Unanswered: forgotten after the probes.
        n.resolve(GW, vec![], later + REACHABLE);
        for i in 1..=3 {
            n.expire(later + REACHABLE + RETRANSMIT * i);
        }
        assert_eq!(n.lookup(GW), None);
    }

    #[test]
    fn learning_without_create_ignores_strangers() {
        let mut n: Neighbors<Vec<u8>> = Neighbors::new();
        n.learn(GW, MAC, Instant::from_secs(1), false);
        assert!(!n.knows(GW));
        n.learn(GW, MAC, Instant::from_secs(1), true);
        assert_eq!(n.lookup(GW), Some(MAC));
    }
}
