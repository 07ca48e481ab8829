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

pub mod cache;
pub mod memfile;
mod remap;
mod vma;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use cache::{MapKey, PageCache};
pub use memfile::{MemFile, PAGE};
pub use vma::{Backing, Copies, MapSource, Pages, Vma, VmaKind};

use crate::abi::signal::{SIGBUS, SIGSEGV};
use crate::abi::{Errno, Pod};
use crate::platform::{Layout, PlatformThread};

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

    /// Where the page at `addr` (page aligned, inside `v`) is.
    fn locate(&self, v: &Vma, addr: u64) -> Result<Where, Errno> {
        match &v.pages {
            Pages::Anon { backing, boff } => {
                let d = addr - v.start;
                if boff + d >= backing.len {
                    return Ok(Where::Beyond);
                }
                Ok(Where::Mem(backing.off + boff + d, v.prot))
            }
            Pages::File { cache, .. } => {
                let mut g = cache.lock();
                let eof = page_up(cache.size()).unwrap_or(u64::MAX);
                self.file_page(&mut g, eof, v, addr, false).map(|(w, _)| w)
            }
        }
    }

    /// Where the page at `page` of the file VMA `v` is, given its cache locked in `g` and the
    /// page-aligned end of file `eof`. With `copy`, a private page not yet copied is copied
    /// first (the bool says it was just now).
    fn file_page(
        &self,
        g: &mut cache::Guard<'_>,
        eof: u64,
        v: &Vma,
        page: u64,
        copy: bool,
    ) -> Result<(Where, bool), Errno> {
        let Pages::File {
            file_off, copies, ..
        } = &v.pages
        else {
            return Err(Errno::EFAULT);
        };
        let d = page - v.start;
        let fpos = file_off + d;
        if fpos >= eof {
            return Ok((Where::Beyond, false));
        }
        let Some((c, coff)) = copies else {
            return Ok((Where::Mem(g.page(fpos)?, v.prot), false));
        };
        let dst = c.mem.off + coff + d;
        let mut done = c.done();
        if done.contains(&(coff + d)) {
            return Ok((Where::Mem(dst, v.prot), false));
        }
        let src = g.page(fpos)?;
        if !copy {
            return Ok((Where::Mem(src, v.prot & !PROT_WRITE), false));
        }
        self.mf.copy(src, dst, PAGE);
        done.insert(coff + d);
        Ok((Where::Mem(dst, v.prot), true))
    }

    /// The host mapping of [lo, hi) ⊆ `v`; pages outside the runs stay unmapped.
    fn runs(&self, v: &Vma, lo: u64, hi: u64) -> Result<Vec<Run>, Errno> {
        let mut out: Vec<Run> = Vec::new();
        match &v.pages {
            Pages::Anon { backing, boff } => {
                let avail = backing.len.saturating_sub(boff + (lo - v.start));
                let n = (hi - lo).min(avail);
                if n > 0 {
                    out.push(Run {
                        addr: lo,
                        len: n,
                        off: backing.off + boff + (lo - v.start),
                        prot: v.prot,
                    });
                }
            }
            Pages::File { cache, .. } => {
                let mut g = cache.lock();
                let eof = page_up(cache.size()).unwrap_or(u64::MAX);
                if v.shared && v.prot & PROT_WRITE != 0 {
                    g.set_writers();
                }
                let mut addr = lo;
                while addr < hi {
                    let (off, prot) = match self.file_page(&mut g, eof, v, addr, false)?.0 {
                        Where::Mem(off, prot) => (off, prot),
                        Where::Beyond => break,
                    };
                    match out.last_mut() {
                        Some(r)
                            if r.addr + r.len == addr && r.off + r.len == off && r.prot == prot =>
                        {
                            r.len += PAGE;
                        }
                        _ => out.push(Run {
                            addr,
                            len: PAGE,
                            off,
                            prot,
                        }),
                    }
                    addr += PAGE;
                }
            }
        }
        Ok(out)
    }

    /// Makes the host mapping of [lo, hi) ⊆ `v` match the model.
    fn install(&self, pt: &mut dyn PlatformThread, v: &Vma, lo: u64, hi: u64) -> Result<(), Errno> {
        let runs = self.runs(v, lo, hi)?;
        let mut pos = lo;
        for r in runs {
            if r.addr > pos {
                pt.unmap(pos, r.addr - pos).map_err(host)?;
            }
            pt.map(r.addr, r.len, r.prot, r.off).map_err(host)?;
            pos = r.addr + r.len;
        }
        if pos < hi {
            pt.unmap(pos, hi - pos).map_err(host)?;
        }
        Ok(())
    }

    /// Maps a new range and fills it (from the file for file mappings); returns its address.
    pub fn mmap(&self, pt: &mut dyn PlatformThread, req: MapReq) -> Result<u64, Errno> {
        let len = page_up(req.len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        let mut mm = self.write();
        let addr = if req.fixed || req.noreplace {
            if !req.addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            if req.addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            let end = req.addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if end > mm.layout.top || overlaps(mm.layout.reserved, req.addr, end) {
                return Err(Errno::ENOMEM);
            }
            if req.noreplace
                && mm
                    .vmas
                    .range(..end)
                    .next_back()
                    .is_some_and(|(_, v)| v.end > req.addr)
            {
                return Err(Errno::EEXIST);
            }
            req.addr
        } else {
            mm.find_free(page_down(req.addr), len)?
        };
        let pages = match &req.kind {
            VmaKind::File { src, file_off } if !src.anonymous() => {
                file_off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
                Pages::File {
                    cache: PageCache::get(&self.mf, src),
                    file_off: *file_off,
                    copies: if req.shared {
                        None
                    } else {
                        Some((Copies::new(&self.mf, len)?, 0))
                    },
                }
            }
            _ => Pages::Anon {
                backing: Backing::new(&self.mf, len)?,
                boff: 0,
            },
        };
        let vma = Vma {
            start: addr,
            end: addr + len,
            prot: req.prot,
            shared: req.shared,
            may_write: req.may_write,
            dontfork: false,
            wipeonfork: false,
            pages,
            kind: req.kind,
        };
        self.unmap_locked(&mut mm, addr, addr + len);
        if let Err(e) = self.install(pt, &vma, addr, addr + len) {
            let _ = pt.unmap(addr, len);
            return Err(e);
        }
        mm.vmas.insert(addr, vma);
        Ok(addr)
    }

    /// Removes [addr, addr+len).
    pub fn munmap(&self, pt: &mut dyn PlatformThread, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        let mut mm = self.write();
        if end > mm.layout.top {
            return Err(Errno::EINVAL);
        }
        self.unmap_locked(&mut mm, addr, end);
        pt.unmap(addr, end - addr).map_err(host)
    }

    /// Takes [lo, hi) out of the VMA tree (splitting VMAs at the edges); returns the pieces.
    fn take(mm: &mut Mm, lo: u64, hi: u64) -> Vec<Vma> {
        let hit: Vec<u64> = mm
            .vmas
            .range(..hi)
            .rev()
            .take_while(|(_, v)| v.end > lo)
            .map(|(&s, _)| s)
            .collect();
        let mut out = Vec::new();
        for s in hit.into_iter().rev() {
            let Some(v) = mm.vmas.remove(&s) else {
                continue;
            };
            if v.start < lo {
                mm.vmas.insert(v.start, v.slice(v.start, lo));
            }
            if v.end > hi {
                mm.vmas.insert(hi, v.slice(hi, v.end));
            }
            out.push(v.slice(lo, hi));
        }
        out
    }

    /// Releases the private memory of a VMA piece that goes away.
    fn release(&self, v: &Vma) {
        match &v.pages {
            Pages::Anon { backing, boff } if !v.shared => {
                self.mf.punch(backing.off + boff, v.len());
            }
            Pages::File {
                copies: Some((c, coff)),
                ..
            } => c.forget(*coff, v.len()),
            _ => {}
        }
    }

    /// Removes [lo, hi) from the model (the caller fixes the host side).
    fn unmap_locked(&self, mm: &mut Mm, lo: u64, hi: u64) {
        for v in Self::take(mm, lo, hi) {
            self.release(&v);
        }
    }

    /// msync: writes shared file mappings in the range back. ENOMEM if part is unmapped.
    pub fn msync(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        let pieces: Vec<Vma> = {
            let mm = self.read();
            mm.covering(addr, end)
                .into_iter()
                .map(|v| v.slice(addr, end))
                .collect()
        };
        let mut pos = addr;
        for v in &pieces {
            if v.start > pos {
                return Err(Errno::ENOMEM);
            }
            pos = v.end;
            if let Pages::File {
                cache, file_off, ..
            } = &v.pages
            {
                if v.shared {
                    cache.flush(*file_off, v.len())?;
                }
            }
        }
        if pos < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Applies `f` to the VMAs of [lo, hi), split at the edges, then brings the host mapping of
    /// the range up to date. Every page must be mapped (ENOMEM), and `check` must pass for
    /// every VMA before anything changes.
    fn modify(
        &self,
        pt: &mut dyn PlatformThread,
        lo: u64,
        hi: u64,
        check: impl Fn(&Vma) -> Result<(), Errno>,
        f: impl Fn(&mut Vma),
    ) -> Result<(), Errno> {
        let mut mm = self.write();
        let mut pos = lo;
        for v in mm.covering(lo, hi) {
            if v.start > pos {
                return Err(Errno::ENOMEM);
            }
            check(v)?;
            pos = v.end;
        }
        if pos < hi {
            return Err(Errno::ENOMEM);
        }
        let pieces = Self::take(&mut mm, lo, hi);
        let mut res = Ok(());
        for mut v in pieces {
            f(&mut v);
            if res.is_ok() {
                res = self.install(pt, &v, v.start, v.end);
            }
            mm.vmas.insert(v.start, v);
        }
        res
    }

    pub fn mprotect(
        &self,
        pt: &mut dyn PlatformThread,
        addr: u64,
        len: u64,
        prot: i32,
    ) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) || prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        if end == addr {
            return Ok(());
        }
        self.modify(
            pt,
            addr,
            end,
            |v| {
                if prot & PROT_WRITE != 0 && !v.may_write {
                    return Err(Errno::EACCES);
                }
                Ok(())
            },
            |v| v.prot = prot,
        )
    }

    /// brk(2): returns the new (or unchanged) break.
    pub fn brk(&self, pt: &mut dyn PlatformThread, want: u64) -> u64 {
        let (start, cur) = {
            let mm = self.read();
            (mm.brk_start, mm.brk)
        };
        if want < start {
            return cur;
        }
        let old_top = page_up(cur).unwrap_or(cur);
        let Some(new_top) = page_up(want) else {
            return cur;
        };
        if new_top > old_top {
            let req = MapReq {
                addr: old_top,
                len: new_top - old_top,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                fixed: false,
                noreplace: true,
                may_write: true,
                kind: VmaKind::Heap,
            };
            if self.mmap(pt, req).is_err() {
                return cur;
            }
        } else if new_top < old_top && self.munmap(pt, new_top, old_top - new_top).is_err() {
            return cur;
        }
        self.write().brk = want;
        want
    }

    /// madvise(2) on [addr, addr+len) (`addr` page aligned, `len` not zero). The advice is
    /// applied to the mapped parts; ENOMEM if some of the range is unmapped, as Linux.
    pub fn madvise(
        &self,
        pt: &mut dyn PlatformThread,
        addr: u64,
        len: u64,
        advice: Advice,
    ) -> Result<(), Errno> {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        let (mapped, hole) = {
            let mm = self.read();
            let mut pos = addr;
            let mut hole = false;
            let mut mapped = Vec::new();
            for v in mm.covering(addr, end) {
                hole |= v.start > pos;
                pos = v.end;
                mapped.push((v.start.max(addr), v.end.min(end), v.private_anon()));
            }
            (mapped, hole || pos < end)
        };
        if advice == Advice::WipeOnFork && mapped.iter().any(|&(_, _, anon)| !anon) {
            return Err(Errno::EINVAL);
        }
        for (lo, hi, _) in mapped {
            match advice {
                Advice::DontNeed => self.dontneed(pt, lo, hi)?,
                Advice::DontFork => self.modify(pt, lo, hi, |_| Ok(()), |v| v.dontfork = true)?,
                Advice::DoFork => self.modify(pt, lo, hi, |_| Ok(()), |v| v.dontfork = false)?,
                Advice::WipeOnFork => {
                    self.modify(pt, lo, hi, |_| Ok(()), |v| v.wipeonfork = true)?
                }
                Advice::KeepOnFork => {
                    self.modify(pt, lo, hi, |_| Ok(()), |v| v.wipeonfork = false)?
                }
                Advice::Other => {}
            }
        }
        if hole {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// MADV_DONTNEED on mapped [lo, hi): private anonymous pages read back as zeros, private
    /// file pages show the file again; shared pages keep their contents.
    fn dontneed(&self, pt: &mut dyn PlatformThread, lo: u64, hi: u64) -> Result<(), Errno> {
        let mm = self.read();
        for v in mm.covering(lo, hi) {
            let s = v.slice(lo, hi);
            if s.shared {
                continue;
            }
            match &s.pages {
                Pages::Anon { backing, boff } => self.mf.punch(backing.off + boff, s.len()),
                Pages::File {
                    copies: Some((c, coff)),
                    ..
                } => {
                    c.forget(*coff, s.len());
                    self.install(pt, &s, s.start, s.end)?;
                }
                Pages::File { .. } => {}
            }
        }
        Ok(())
    }

    /// Maps every VMA into `pt`, a new and empty address space (after `fork_copy`).
    pub fn map_all(&self, pt: &mut dyn PlatformThread) -> Result<(), Errno> {
        let mm = self.read();
        for v in mm.vmas.values() {
            self.install(pt, v, v.start, v.end)?;
        }
        Ok(())
    }

    /// A copy of this address space for fork(2): private memory is copied now, shared
    /// memory (and the unwritten pages of private file mappings) is shared. The copy is
    /// mapped into its stub later with `map_all`.
    pub fn fork_copy(&self) -> Result<MemoryManager, Errno> {
        let mm = self.read();
        let mut vmas = BTreeMap::new();
        for v in mm.vmas.values().filter(|v| !v.dontfork) {
            let len = v.len();
            let mut nv = v.clone();
            match &mut nv.pages {
                Pages::Anon { backing, boff } if !v.shared => {
                    let b = Backing::new(&self.mf, len)?;
                    if !v.wipeonfork {
                        self.mf.copy(backing.off + *boff, b.off, len);
                    }
                    *backing = b;
                    *boff = 0;
                }
                Pages::File {
                    copies: Some((c, coff)),
                    ..
                } => {
                    *c = c.transplant(*coff, len, len, 0)?;
                    *coff = 0;
                }
                _ => {}
            }
            vmas.insert(nv.start, nv);
        }
        let new = MemoryManager::new(self.mf.clone(), mm.layout);
        {
            let mut n = new.write();
            n.vmas = vmas;
            n.brk_start = mm.brk_start;
            n.brk = mm.brk;
            n.mmap_base = mm.mmap_base;
            n.arg_range = mm.arg_range;
            n.env_range = mm.env_range;
            n.stack_top = mm.stack_top;
        }
        Ok(new)
    }

    /// Makes the host mappings current before app code runs again: pages copied by
    /// sentry-side writes, and pages past the end of files that shrank. Cheap when nothing
    /// changed.
    pub fn sync_host(&self, pt: &mut dyn PlatformThread) {
        let gen = cache::eof_generation();
        let shrunk = self.eof_seen.swap(gen, Ordering::AcqRel) != gen;
        if !shrunk && !self.has_stale.load(Ordering::Acquire) {
            return;
        }
        let mm = self.read();
        let stale = {
            let mut s = self.stale.lock().unwrap_or_else(|e| e.into_inner());
            self.has_stale.store(false, Ordering::Release);
            std::mem::take(&mut *s)
        };
        let mut res = Ok(());
        if shrunk {
            for v in mm.vmas.values().filter(|v| v.is_file()) {
                res = res.and(self.install(pt, v, v.start, v.end));
            }
        }
        for page in stale {
            if let Some(v) = mm.covering(page, page + PAGE).first() {
                res = res.and(self.install(pt, v, page, page + PAGE));
            }
        }
        if let Err(e) = res {
            tracing::warn!(?e, "cannot bring host mappings up to date");
        }
    }

    /// A host fault (`signo`, `code`) at `addr` in app code: fixes the mapping and retries
    /// when the page is only not mapped yet (a private file page's first write, a file that
    /// grew), turns faults past the end of a file or object into SIGBUS, else passes the
    /// fault on.
    pub fn fault(
        &self,
        pt: &mut dyn PlatformThread,
        signo: i32,
        code: i32,
        addr: u64,
    ) -> FaultOutcome {
        self.sync_host(pt);
        let pass = FaultOutcome::Signal(signo, code);
        if signo != SIGSEGV {
            return pass;
        }
        let page = page_down(addr);
        let outcome = {
            let mm = self.read();
            let Some(v) = mm
                .covering(page, page.saturating_add(PAGE))
                .first()
                .copied()
            else {
                return pass;
            };
            match self.locate(v, page) {
                Ok(Where::Beyond) | Err(_) => FaultOutcome::Signal(SIGBUS, BUS_ADRERR),
                // Not mapped on the host though it should be: a file that grew.
                Ok(Where::Mem(..)) if code == SEGV_MAPERR => {
                    match self.install(pt, v, page, page + PAGE) {
                        Ok(()) => FaultOutcome::Retry,
                        Err(_) => pass,
                    }
                }
                // The first write to a private file page.
                Ok(Where::Mem(_, hprot))
                    if code == SEGV_ACCERR
                        && v.prot & PROT_WRITE != 0
                        && hprot & PROT_WRITE == 0 =>
                {
                    let fixed = self.copy_page(v, page).is_ok()
                        && self.install(pt, v, page, page + PAGE).is_ok();
                    if fixed {
                        FaultOutcome::Retry
                    } else {
                        pass
                    }
                }
                Ok(Where::Mem(..)) => pass,
            }
        };
        // A retry that changes nothing would loop forever: give up after a few.
        let mut r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        if outcome != FaultOutcome::Retry {
            *r = (0, 0);
            return outcome;
        }
        if r.0 == addr {
            r.1 += 1;
            if r.1 > 8 {
                *r = (0, 0);
                return pass;
            }
        } else {
            *r = (addr, 1);
        }
        FaultOutcome::Retry
    }

    /// Copies the private file page at `page` of `v` (if not yet copied); returns its
    /// memory-file offset.
    fn copy_page(&self, v: &Vma, page: u64) -> Result<u64, Errno> {
        let Pages::File { cache, .. } = &v.pages else {
            return Err(Errno::EFAULT);
        };
        let mut g = cache.lock();
        let eof = page_up(cache.size()).unwrap_or(u64::MAX);
        match self.file_page(&mut g, eof, v, page, true)?.0 {
            Where::Mem(off, _) => Ok(off),
            Where::Beyond => Err(Errno::EFAULT),
        }
    }

    /// Calls `f(memfile_offset, at, len)` for each piece of [addr, addr+len), after checking
    /// that every byte is mapped with `need` protection. With `write`, private file pages are
    /// copied first (their host mapping is fixed by `sync_host`).
    fn each_piece(
        &self,
        addr: u64,
        len: usize,
        need: i32,
        write: bool,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mm = self.read();
        let mut pos = addr;
        for v in mm.covering(addr, end) {
            if v.start > pos || v.prot & need != need || v.prot == 0 {
                return Err(Errno::EFAULT);
            }
            let stop = v.end.min(end);
            match &v.pages {
                Pages::Anon { backing, boff } => {
                    // Contiguous to the end of the VMA or of a shared object.
                    let obj_end = v.start + backing.len.saturating_sub(*boff);
                    let n = stop.min(obj_end).saturating_sub(pos);
                    f(
                        backing.off + boff + (pos - v.start),
                        (pos - addr) as usize,
                        n as usize,
                    );
                    pos += n;
                    if pos < stop {
                        return Err(Errno::EFAULT);
                    }
                }
                Pages::File { cache, copies, .. } => {
                    if write && v.shared && v.prot & PROT_WRITE == 0 {
                        return Err(Errno::EFAULT);
                    }
                    let copy = write && copies.is_some();
                    let mut g = cache.lock();
                    let eof = page_up(cache.size()).unwrap_or(u64::MAX);
                    while pos < stop {
                        let page = page_down(pos);
                        let off = match self.file_page(&mut g, eof, v, page, copy)? {
                            (Where::Mem(off, _), fresh) => {
                                if fresh {
                                    self.mark_stale(page);
                                }
                                off
                            }
                            (Where::Beyond, _) => return Err(Errno::EFAULT),
                        };
                        let n = (page + PAGE).min(stop) - pos;
                        f(off + (pos - page), (pos - addr) as usize, n as usize);
                        pos += n;
                    }
                }
            }
            if pos == end {
                break;
            }
        }
        if pos < end {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    fn mark_stale(&self, page: u64) {
        let mut s = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        s.push(page);
        self.has_stale.store(true, Ordering::Release);
    }

    /// Copies app memory at `addr` into `dst`.
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, dst.len(), PROT_READ, false, |off, at, n| {
            mf.read(off, &mut dst[at..at + n])
        })
    }

    /// Copies `src` into app memory at `addr`.
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, src.len(), PROT_WRITE, true, |off, at, n| {
            mf.write(off, &src[at..at + n])
        })
    }

    /// Writes `src` even into read-only pages (the loader, signal frames never need this, but
    /// ELF segments are filled before their protection is final).
    pub fn poke(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, src.len(), 0, true, |off, at, n| {
            mf.write(off, &src[at..at + n])
        })
    }

    /// Zeroes app memory (ignoring protection), e.g. the tail of a bss page.
    pub fn zero(&self, addr: u64, len: usize) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, len, 0, true, |off, _, n| mf.zero(off, n as u64))
    }

    pub fn read_obj<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut v = T::default();
        self.copy_in(addr, pod_bytes_mut(&mut v))?;
        Ok(v)
    }

    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.copy_out(addr, pod_bytes(v))
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut pos = addr;
        loop {
            // Read up to the end of the page, so an unmapped next page is not touched early.
            let chunk = (PAGE - pos % PAGE) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(pos, &mut buf)?;
            if let Some(i) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..i]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            pos = pos.checked_add(chunk as u64).ok_or(Errno::EFAULT)?;
        }
    }

    /// The memory-file offset of an aligned u32 at `addr` (for futexes); needs read access.
    /// A futex in a writable private file page gets the page copied first, so that its
    /// offset does not change under waiters.
    pub fn futex_word(&self, addr: u64) -> Result<(u64, bool), Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let (writable, shared) = {
            let mm = self.read();
            let v = mm.covering(addr, addr.saturating_add(4));
            let v = v.first().ok_or(Errno::EFAULT)?;
            (v.prot & PROT_WRITE != 0, v.shared)
        };
        let mut out = None;
        self.each_piece(addr, 4, PROT_READ, writable, |off, _, _| out = Some(off))?;
        out.map(|o| (o, shared)).ok_or(Errno::EFAULT)
    }

    /// Pieces (memfile offset, length) of an app range, checked for `need` access.
    pub fn pieces(&self, addr: u64, len: usize, need: i32) -> Result<Vec<(u64, usize)>, Errno> {
        let mut v = Vec::new();
        let write = need & PROT_WRITE != 0;
        self.each_piece(addr, len, need, write, |off, _, n| v.push((off, n)))?;
        Ok(v)
    }

    /// Bytes mapped in [lo, hi) (all of the address space for (0, u64::MAX)).
    pub fn mapped_in(&self, lo: u64, hi: u64) -> u64 {
        let mm = self.read();
        mm.covering(lo, hi)
            .iter()
            .map(|v| v.end.min(hi) - v.start.max(lo))
            .sum()
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
    use crate::platform::{Event, Interrupter, PlatformError, Seed};

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
