//! Futexes. A futex word is keyed by its offset in the memory file: that is unique per
//! physical page, so private and shared futexes need no separate key spaces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::wait::Waiter;
use super::Task;
use crate::abi::Errno;

struct Entry {
    waiter: Arc<Waiter>,
    woken: AtomicBool,
    bitset: u32,
}

/// The futex wait lists.
#[derive(Default)]
pub struct Futexes {
    lists: Mutex<HashMap<u64, Vec<Arc<Entry>>>>,
}

impl Futexes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Arc<Entry>>>> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// FUTEX_WAIT(_BITSET): sleeps while the word at `addr` equals `val`.
pub fn wait(
    t: &Task,
    addr: u64,
    val: u32,
    deadline: Option<Instant>,
    bitset: u32,
) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let (off, _) = t.mm.futex_word(addr)?;
    let e = Arc::new(Entry {
        waiter: t.h.waiter.clone(),
        woken: AtomicBool::new(false),
        bitset,
    });
    {
        let mut l = t.k.futexes.lock();
        if t.k.mf.atomic_u32(off).load(Ordering::SeqCst) != val {
            return Err(Errno::EAGAIN);
        }
        l.entry(off).or_default().push(e.clone());
    }
    let remove = |e: &Arc<Entry>| {
        let mut l = t.k.futexes.lock();
        if let Some(v) = l.get_mut(&off) {
            v.retain(|x| !Arc::ptr_eq(x, e));
            if v.is_empty() {
                l.remove(&off);
            }
        }
    };
    loop {
        let seq = t.h.waiter.seq();
        if e.woken.load(Ordering::SeqCst) {
            return Ok(0);
        }
        if t.h.interrupted() {
            remove(&e);
            return if e.woken.load(Ordering::SeqCst) {
                Ok(0)
            } else {
                Err(Errno::ERESTARTSYS)
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            remove(&e);
            return if e.woken.load(Ordering::SeqCst) {
                Ok(0)
            } else {
                Err(Errno::ETIMEDOUT)
            };
        }
        t.h.waiter.wait(seq, deadline);
    }
}

fn wake_off(t: &Task, off: u64, n: u32, bitset: u32) -> u64 {
    let mut l = t.k.futexes.lock();
    let Some(v) = l.get_mut(&off) else { return 0 };
    let mut woken = 0u64;
    v.retain(|e| {
        if u64::from(n) > woken && e.bitset & bitset != 0 {
            e.woken.store(true, Ordering::SeqCst);
            e.waiter.wake();
            woken += 1;
            false
        } else {
            true
        }
    });
    if v.is_empty() {
        l.remove(&off);
    }
    woken
}

/// FUTEX_WAKE(_BITSET): wakes up to `n` waiters.
pub fn wake(t: &Task, addr: u64, n: u32, bitset: u32) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let (off, _) = t.mm.futex_word(addr)?;
    Ok(wake_off(t, off, n, bitset))
}

/// FUTEX_(CMP_)REQUEUE: wakes `n`, moves up to `n2` more to `addr2`.
pub fn requeue(
    t: &Task,
    addr: u64,
    n: u32,
    n2: u32,
    addr2: u64,
    cmp: Option<u32>,
) -> Result<u64, Errno> {
    let (off, _) = t.mm.futex_word(addr)?;
    let (off2, _) = t.mm.futex_word(addr2)?;
    let mut l = t.k.futexes.lock();
    if let Some(c) = cmp {
        if t.k.mf.atomic_u32(off).load(Ordering::SeqCst) != c {
            return Err(Errno::EAGAIN);
        }
    }
    let mut list = l.remove(&off).unwrap_or_default();
    let mut done = 0u64;
    let mut moved = Vec::new();
    list.retain(|e| {
        if done < u64::from(n) {
            e.woken.store(true, Ordering::SeqCst);
            e.waiter.wake();
            done += 1;
            false
        } else if (moved.len() as u64) < u64::from(n2) {
            moved.push(e.clone());
            false
        } else {
            true
        }
    });
    let moved_n = moved.len() as u64;
    if !list.is_empty() {
        l.insert(off, list);
    }
    if !moved.is_empty() {
        l.entry(off2).or_default().extend(moved);
    }
    Ok(done + if cmp.is_some() { moved_n } else { 0 })
}

/// FUTEX_WAKE_OP.
pub fn wake_op(t: &Task, addr: u64, n: u32, n2: u32, addr2: u64, op: u32) -> Result<u64, Errno> {
    let (off, _) = t.mm.futex_word(addr)?;
    let (off2, _) = t.mm.futex_word(addr2)?;
    let kind = (op >> 28) & 7;
    let shift = op & (8 << 28) != 0;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if shift {
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    let _l = t.k.futexes.lock();
    let word = t.k.mf.atomic_u32(off2);
    let old = match kind {
        0 => word.swap(oparg, Ordering::SeqCst),
        1 => word.fetch_add(oparg, Ordering::SeqCst),
        2 => word.fetch_or(oparg, Ordering::SeqCst),
        3 => word.fetch_and(!oparg, Ordering::SeqCst),
        4 => word.fetch_xor(oparg, Ordering::SeqCst),
        _ => return Err(Errno::ENOSYS),
    };
    let (old_s, arg_s) = (old as i32, cmparg as i32);
    let hit = match cmp {
        0 => old_s == arg_s,
        1 => old_s != arg_s,
        2 => old_s < arg_s,
        3 => old_s <= arg_s,
        4 => old_s > arg_s,
        5 => old_s >= arg_s,
        _ => return Err(Errno::ENOSYS),
    };
    drop(_l);
    let mut woken = wake_off(t, off, n, u32::MAX);
    if hit {
        woken += wake_off(t, off2, n2, u32::MAX);
    }
    Ok(woken)
}

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// At thread exit: marks robust futexes the thread still holds as owner-died and wakes one
/// waiter of each.
pub fn exit_robust_list(t: &mut Task) {
    if t.robust_list == 0 {
        return;
    }
    let head = t.robust_list;
    let Ok(hdr) = t.mm.read_obj::<[u64; 3]>(head) else {
        return;
    };
    let (mut next, offset, pending) = (hdr[0], hdr[1] as i64, hdr[2]);
    let handle = |entry: u64| {
        let addr = entry.wrapping_add_signed(offset);
        let Ok(v) = t.mm.read_obj::<u32>(addr) else {
            return;
        };
        if v & FUTEX_TID_MASK == t.h.tid as u32 {
            let nv = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            if t.mm.write_obj(addr, &nv).is_ok() && v & FUTEX_WAITERS != 0 {
                let _ = wake(t, addr, 1, u32::MAX);
            }
        }
    };
    let mut n = 0;
    while next != head && next != 0 && n < 2048 {
        if next != pending {
            handle(next);
        }
        match t.mm.read_obj::<u64>(next) {
            Ok(v) => next = v,
            Err(_) => break,
        }
        n += 1;
    }
    if pending != 0 {
        handle(pending);
    }
}
