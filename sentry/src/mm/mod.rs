//! Virtual memory of an app address space.
//!
//! Every app page is a page of the [`MemFile`]. A [`Vma`] maps a range of app addresses onto
//! [`Pages`]: anonymous memory (a [`Backing`], a reserved piece of the memory file), or a
//! file's [`PageCache`] (shared by all mappings of the file, so they and read/write agree),
//! with, for a private mapping, copies of the pages it wrote.
//!
//! The stub's host mappings mirror the VMAs page by page (each change is injected through the
//! platform thread), except for three kinds of page the host must fault on so the sentry can
//! act: pages of a file mapping past the end of the file (SIGBUS), the part of a grown shared
//! anonymous mapping past its object (SIGBUS), and pages of a private file mapping not yet
//! written (mapped read-only from the cache; the write fault copies the page). [`fault`]
//! turns such host faults into what Linux does.
//!
//! Writes the sentry makes into a private file page (read(2) into a `.data` buffer, the
//! loader zeroing bss) copy the page too; the host mapping is then fixed by
//! [`MemoryManager::sync_host`], which the task runs before it next runs app code. The same
//! call unmaps pages past a file's end after a truncation (see `cache`).
//!
//! Locks: `MemoryManager::inner` (RwLock) first, then a page cache's lock, then a private
//! mapping's copy set and the `stale` list; MemFile's allocator lock nests inside all.
//!
//! [`fault`]: MemoryManager::fault

mod access;
pub mod cache;
mod fault;
mod map;
pub mod memfile;
mod remap;
mod vma;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use cache::{MapKey, PageCache};
pub use memfile::{MemFile, PAGE};
pub use vma::{Backing, Copies, MapSource, Pages, Vma, VmaKind};

use crate::abi::{Errno, Pod};
use crate::platform::Layout;

pub const PROT_READ: i32 = 1;
pub const PROT_WRITE: i32 = 2;
pub const PROT_EXEC: i32 = 4;

const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRERR: i32 = 2;

/// Lowest address a mapping may have (Linux's default vm.mmap_min_addr).
const MMAP_MIN_ADDR: u64 = 0x10000;

/// Bytes of stack the initial thread gets.
pub const STACK_SIZE: u64 = 8 << 20;

pub fn page_up(x: u64) -> Option<u64> {
    x.checked_next_multiple_of(PAGE)
}
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

/// A piece of host mapping: `len` bytes at `addr` from memory-file offset `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    addr: u64,
    len: u64,
    off: u64,
    prot: i32,
}

/// Where one app page is.
enum Where {
    /// At this memory-file offset, with this host protection.
    Mem(u64, i32),
    /// Nowhere: past the end of the file or object (SIGBUS).
    Beyond,
}

/// The address space state.
pub struct Mm {
    pub vmas: BTreeMap<u64, Vma>,
    pub layout: Layout,
    pub brk_start: u64,
    pub brk: u64,
    /// Top of the area top-down mmap allocations come from.
    pub mmap_base: u64,
    /// Where argv/envp live (for /proc/PID/cmdline and environ).
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    pub stack_top: u64,
}

/// One app address space, shared by the threads of a process.
pub struct MemoryManager {
    pub id: u64,
    pub mf: Arc<MemFile>,
    inner: RwLock<Mm>,
    /// Tasks running in this address space.
    users: std::sync::atomic::AtomicUsize,
    /// Pages whose host mapping is out of date (copied by a sentry-side write).
    stale: Mutex<Vec<u64>>,
    has_stale: AtomicBool,
    /// The truncation generation the host mappings reflect.
    eof_seen: AtomicU64,
    /// The last address a fault was retried at and how many times in a row.
    retries: Mutex<(u64, u32)>,
}

/// Options of one mapping request.
pub struct MapReq {
    pub addr: u64,
    pub len: u64,
    pub prot: i32,
    pub shared: bool,
    /// MAP_FIXED: replace what is there. Without it `addr` is a hint.
    pub fixed: bool,
    /// MAP_FIXED_NOREPLACE.
    pub noreplace: bool,
    /// PROT_WRITE may be added later by mprotect.
    pub may_write: bool,
    pub kind: VmaKind,
}

/// How mremap may place the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Remap {
    /// MREMAP_MAYMOVE.
    pub may_move: bool,
    /// MREMAP_FIXED: the new address.
    pub fixed_to: Option<u64>,
    /// MREMAP_DONTUNMAP: the old range stays mapped (and empty, if private).
    pub dont_unmap: bool,
}

/// madvise(2) advice the address space acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// MADV_DONTNEED, MADV_FREE: private pages are dropped.
    DontNeed,
    DontFork,
    DoFork,
    WipeOnFork,
    KeepOnFork,
    /// Accepted, changes nothing here.
    Other,
}

/// What the task does about a host fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The sentry fixed the mapping: run the instruction again.
    Retry,
    /// Deliver this signal and code.
    Signal(i32, i32),
}

static NEXT_MM_ID: AtomicU64 = AtomicU64::new(1);

fn host(e: crate::platform::PlatformError) -> Errno {
    tracing::warn!(error = %e, "address space operation failed");
    Errno::ENOMEM
}

impl MemoryManager {
    pub fn new(mf: Arc<MemFile>, layout: Layout) -> MemoryManager {
        let stack_top = layout.top - PAGE;
        MemoryManager {
            id: NEXT_MM_ID.fetch_add(1, Ordering::Relaxed),
            mf,
            inner: RwLock::new(Mm {
                vmas: BTreeMap::new(),
                layout,
                brk_start: 0,
                brk: 0,
                mmap_base: stack_top - STACK_SIZE - (256 << 20),
                arg_range: (0, 0),
                env_range: (0, 0),
                stack_top,
            }),
            users: std::sync::atomic::AtomicUsize::new(0),
            stale: Mutex::new(Vec::new()),
            has_stale: AtomicBool::new(false),
            eof_seen: AtomicU64::new(cache::eof_generation()),
            retries: Mutex::new((0, 0)),
        }
    }

    /// A task starts running in this address space.
    pub fn attach(&self) {
        self.users.fetch_add(1, Ordering::SeqCst);
    }
    /// A task leaves; true if it was the last one.
    pub fn detach(&self) -> bool {
        self.users.fetch_sub(1, Ordering::SeqCst) == 1
    }
    pub fn users(&self) -> usize {
        self.users.load(Ordering::SeqCst)
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Mm> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn write(&self) -> RwLockWriteGuard<'_, Mm> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The memory-file ranges this address space holds anonymous or copied-on-write pages in
    /// (what counts as its resident memory), appended to `out`.
    pub fn private_ranges(&self, out: &mut Vec<(u64, u64)>) {
        for v in self.read().vmas.values() {
            let len = v.end - v.start;
            match &v.pages {
                vma::Pages::Anon { backing, boff } => out.push((backing.offset() + boff, len)),
                vma::Pages::File {
                    copies: Some((c, coff)),
                    ..
                } => out.push((c.mem.offset() + coff, len)),
                vma::Pages::File { .. } => {}
            }
        }
    }

    /// Releases every mapping (exec, exit); shared file mappings are written back as their
    /// page caches go. The host side dies with the stub.
    pub fn clear(&self) {
        let vmas = std::mem::take(&mut self.write().vmas);
        drop(vmas);
    }
}

fn overlaps(r: (u64, u64), lo: u64, hi: u64) -> bool {
    lo < r.1 && r.0 < hi
}

impl Mm {
    /// The VMAs meeting [lo, hi), in address order.
    fn covering(&self, lo: u64, hi: u64) -> Vec<&Vma> {
        let first = self
            .vmas
            .range(..=lo)
            .next_back()
            .filter(|(_, v)| v.end > lo)
            .map(|(&s, _)| s)
            .unwrap_or(lo);
        self.vmas
            .range(first..hi)
            .map(|(_, v)| v)
            .filter(|v| v.end > lo)
            .collect()
    }

    /// A free range of `len` bytes, top-down below `mmap_base` (or at `hint` if free).
    fn find_free(&mut self, hint: u64, len: u64) -> Result<u64, Errno> {
        let free = |mm: &Mm, a: u64| {
            a.checked_add(len).is_some_and(|end| {
                end <= mm.layout.top
                    && a >= MMAP_MIN_ADDR
                    && !overlaps(mm.layout.reserved, a, end)
                    && mm
                        .vmas
                        .range(..end)
                        .next_back()
                        .is_none_or(|(_, v)| v.end <= a)
            })
        };
        if hint != 0 && free(self, hint) {
            return Ok(hint);
        }
        let mut top = self.mmap_base;
        // Walk VMAs below `top` downwards looking for a gap.
        loop {
            let cand = top.checked_sub(len).ok_or(Errno::ENOMEM)?;
            if cand < MMAP_MIN_ADDR {
                return Err(Errno::ENOMEM);
            }
            let blocker = self
                .vmas
                .range(..top)
                .next_back()
                .filter(|(_, v)| v.end > cand)
                .map(|(_, v)| v.start);
            let blocker = match blocker {
                Some(b) => Some(b),
                None if overlaps(self.layout.reserved, cand, top) => Some(self.layout.reserved.0),
                None => None,
            };
            match blocker {
                Some(b) => top = b,
                None => return Ok(cand),
            }
        }
    }
}

/// The bytes of a Pod value.
pub fn pod_bytes<T: Pod>(v: &T) -> &[u8] {
    crate::sys::pod_bytes(v)
}
/// The bytes of a Pod value, writable.
pub fn pod_bytes_mut<T: Pod>(v: &mut T) -> &mut [u8] {
    crate::sys::pod_bytes_mut(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::signal::{SIGBUS, SIGSEGV};
    use crate::platform::{Event, Interrupter, PlatformError, PlatformThread, Seed};

    /// Records host mapping changes: page → (memory-file offset, prot).
    #[derive(Default)]
    struct FakePt {
        pages: BTreeMap<u64, (u64, i32)>,
    }

    impl PlatformThread for FakePt {
        fn switch(&mut self, _: &mut crate::abi::Regs) -> Result<Event, PlatformError> {
            Ok(Event::Interrupted)
        }
        fn map(&mut self, addr: u64, len: u64, prot: i32, off: u64) -> Result<(), PlatformError> {
            for p in (0..len).step_by(PAGE as usize) {
                self.pages.insert(addr + p, (off + p, prot));
            }
            Ok(())
        }
        fn unmap(&mut self, addr: u64, len: u64) -> Result<(), PlatformError> {
            self.pages.retain(|&p, _| p < addr || p >= addr + len);
            Ok(())
        }
        fn protect(&mut self, _: u64, _: u64, _: i32) -> Result<(), PlatformError> {
            Ok(())
        }
        fn new_sibling(&mut self) -> Result<Seed, PlatformError> {
            Err(PlatformError::StubGone { pid: 0 })
        }
        fn get_fpstate(&mut self) -> Result<Vec<u8>, PlatformError> {
            Ok(Vec::new())
        }
        fn set_fpstate(&mut self, _: &[u8]) -> Result<(), PlatformError> {
            Ok(())
        }
        fn interrupter(&self) -> Interrupter {
            Interrupter { pid: 0 }
        }
        fn exit(&mut self, _: bool) {}
    }

    /// A file in a Vec.
    struct VecFile(Mutex<Vec<u8>>, u64);
    impl MapSource for VecFile {
        fn fill(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno> {
            let d = self.0.lock().unwrap();
            let s = (file_off as usize).min(d.len());
            let e = (s + len as usize).min(d.len());
            mf.write(mf_off, &d[s..e]);
            Ok(())
        }
        fn write_back(&self, mf: &MemFile, mf_off: u64, len: u64, off: u64) -> Result<(), Errno> {
            let mut d = self.0.lock().unwrap();
            let s = (off as usize).min(d.len());
            let e = (s + len as usize).min(d.len());
            mf.read(mf_off, &mut d[s..e]);
            Ok(())
        }
        fn describe(&self) -> (u64, u64, Vec<u8>) {
            (0, 0, Vec::new())
        }
        fn key(&self) -> MapKey {
            (u64::MAX - 1, self.1)
        }
        fn size(&self) -> u64 {
            self.0.lock().unwrap().len() as u64
        }
    }

    fn setup(key: u64, data: &[u8]) -> (MemoryManager, FakePt, Arc<VecFile>) {
        let mf = Arc::new(MemFile::new(1 << 32).unwrap());
        let layout = Layout {
            top: 1 << 40,
            reserved: (0, 0),
        };
        let file = Arc::new(VecFile(Mutex::new(data.to_vec()), key));
        (MemoryManager::new(mf, layout), FakePt::default(), file)
    }

    fn file_req(file: &Arc<VecFile>, len: u64, shared: bool) -> MapReq {
        let src: Arc<dyn MapSource> = file.clone();
        MapReq {
            addr: 0,
            len,
            prot: PROT_READ | PROT_WRITE,
            shared,
            fixed: false,
            noreplace: false,
            may_write: true,
            kind: VmaKind::File { src, file_off: 0 },
        }
    }

    #[test]
    fn private_file_pages_are_copied_on_write_and_sigbus_past_eof() {
        let (mm, mut pt, file) = setup(1, &[7u8; 2 * PAGE as usize + 10]);
        let a = mm.mmap(&mut pt, file_req(&file, 4 * PAGE, false)).unwrap();
        // Three file pages mapped read-only from the cache, the fourth not at all.
        assert_eq!(pt.pages.len(), 3);
        assert!(pt.pages.values().all(|&(_, p)| p == PROT_READ));
        // A sentry-side write copies the page; sync_host maps the copy writable.
        mm.copy_out(a + 1, b"x").unwrap();
        assert_eq!(pt.pages[&a].1, PROT_READ);
        mm.sync_host(&mut pt);
        assert_eq!(pt.pages[&a].1, PROT_READ | PROT_WRITE);
        // The app's write fault on page 1 copies it too.
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_ACCERR, a + PAGE + 3);
        assert_eq!(r, FaultOutcome::Retry);
        assert_eq!(pt.pages[&(a + PAGE)].1, PROT_READ | PROT_WRITE);
        // A read-only page's genuine write fault is passed on.
        mm.mprotect(&mut pt, a + 2 * PAGE, PAGE, PROT_READ).unwrap();
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_ACCERR, a + 2 * PAGE);
        assert_eq!(r, FaultOutcome::Signal(SIGSEGV, SEGV_ACCERR));
        // Past the end of file: SIGBUS.
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_MAPERR, a + 3 * PAGE);
        assert_eq!(r, FaultOutcome::Signal(SIGBUS, BUS_ADRERR));
        assert_eq!(mm.copy_in(a + 3 * PAGE, &mut [0u8; 1]), Err(Errno::EFAULT));
        // A write to the file shows in the pages not copied, not in the copies.
        let nine = [9u8; 3 * PAGE as usize];
        cache::write(file.key(), 0, &nine, || {
            *file.0.lock().unwrap() = nine.to_vec();
            Ok(nine.len())
        })
        .unwrap();
        let mut b = [0u8; 1];
        mm.copy_in(a + 2 * PAGE, &mut b).unwrap();
        assert_eq!(b, [9]);
        mm.copy_in(a + 1, &mut b).unwrap();
        assert_eq!(b, *b"x");
        // The file grew: its fourth page can be mapped now.
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_MAPERR, a + 3 * PAGE);
        assert_eq!(r, FaultOutcome::Signal(SIGBUS, BUS_ADRERR));
        file.0.lock().unwrap().resize(4 * PAGE as usize, 5);
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_MAPERR, a + 3 * PAGE);
        assert_eq!(r, FaultOutcome::Retry);
    }

    #[test]
    fn shared_file_mappings_share_pages_and_write_back() {
        let (mm, mut pt, file) = setup(2, &[1u8; PAGE as usize]);
        let a = mm.mmap(&mut pt, file_req(&file, PAGE, true)).unwrap();
        let b = mm.mmap(&mut pt, file_req(&file, PAGE, true)).unwrap();
        assert_eq!(pt.pages[&a], pt.pages[&b]);
        mm.copy_out(a, b"S").unwrap();
        assert_eq!(file.0.lock().unwrap()[0], 1);
        mm.msync(b, PAGE).unwrap();
        assert_eq!(file.0.lock().unwrap()[0], b'S');
        mm.copy_out(b + 1, b"T").unwrap();
        mm.clear();
        assert_eq!(file.0.lock().unwrap()[1], b'T');
        assert!(cache::lookup(file.key()).is_none());
    }

    #[test]
    fn mremap_moves_merged_anonymous_pieces_and_keeps_shared_objects() {
        let (mm, mut pt, _) = setup(3, &[]);
        let anon = |addr, len, shared| MapReq {
            addr,
            len,
            prot: PROT_READ | PROT_WRITE,
            shared,
            fixed: addr != 0,
            noreplace: false,
            may_write: true,
            kind: VmaKind::Anon,
        };
        let a = mm.mmap(&mut pt, anon(0, 2 * PAGE, false)).unwrap();
        mm.copy_out(a + PAGE, b"a").unwrap();
        // Grown in place as a second VMA, then moved as one.
        assert_eq!(
            mm.mremap(&mut pt, a, 2 * PAGE, 3 * PAGE, Remap::default()),
            Ok(a)
        );
        mm.copy_out(a + 2 * PAGE, b"b").unwrap();
        mm.mmap(&mut pt, anon(a + 3 * PAGE, PAGE, false)).unwrap();
        let how = Remap {
            may_move: true,
            ..Remap::default()
        };
        let to = mm.mremap(&mut pt, a, 3 * PAGE, 8 * PAGE, how).unwrap();
        assert_ne!(to, a);
        let mut got = [0u8; 2];
        mm.copy_in(to + PAGE, &mut got[..1]).unwrap();
        mm.copy_in(to + 2 * PAGE, &mut got[1..]).unwrap();
        assert_eq!(&got, b"ab");
        assert!(!pt.pages.contains_key(&a));
        // A shared object keeps its size: the grown part is not mapped (SIGBUS).
        let s = mm.mmap(&mut pt, anon(0, PAGE, true)).unwrap();
        let s2 = mm.mremap(&mut pt, s, PAGE, 2 * PAGE, how).unwrap();
        assert!(pt.pages.contains_key(&s2) && !pt.pages.contains_key(&(s2 + PAGE)));
        let r = mm.fault(&mut pt, SIGSEGV, SEGV_MAPERR, s2 + PAGE);
        assert_eq!(r, FaultOutcome::Signal(SIGBUS, BUS_ADRERR));
    }
}
