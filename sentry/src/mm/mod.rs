//! Virtual memory of an app address space.
//!
//! Every app page is a page of the [`MemFile`]; a [`Vma`] maps a range of app addresses to a
//! range of a [`Backing`] (a reserved piece of the memory file). The stub's host mappings
//! mirror the VMAs exactly (each change is injected through the platform thread), so a host
//! fault in the stub is always a real app fault. Private file mappings are filled from the file
//! when mapped; shared writable file mappings are written back on msync, munmap and exit.
//!
//! Locks: `MemoryManager::inner` (RwLock) is taken alone; MemFile's allocator lock nests inside.

pub mod memfile;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use memfile::{MemFile, PAGE};

use crate::abi::{Errno, Pod};
use crate::platform::{Layout, PlatformThread};

pub const PROT_READ: i32 = 1;
pub const PROT_WRITE: i32 = 2;
pub const PROT_EXEC: i32 = 4;

/// Bytes of stack the initial thread gets.
pub const STACK_SIZE: u64 = 8 << 20;

pub fn page_up(x: u64) -> Option<u64> {
    x.checked_next_multiple_of(PAGE)
}
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

/// A reserved range of the memory file, released when the last VMA using it goes.
pub struct Backing {
    mf: Arc<MemFile>,
    off: u64,
    len: u64,
}

impl Backing {
    pub fn new(mf: &Arc<MemFile>, len: u64) -> Result<Arc<Backing>, Errno> {
        let off = mf.alloc(len)?;
        Ok(Arc::new(Backing {
            mf: mf.clone(),
            off,
            len,
        }))
    }
    pub fn offset(&self) -> u64 {
        self.off
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.mf.free(self.off, self.len);
    }
}

/// What a file mapping is of, for `/proc/PID/maps`, writeback and refilling.
pub trait MapSource: Send + Sync {
    /// Fills `len` bytes of the memory file at `mf_off` from the file at `file_off`; bytes past
    /// the end of file are left zero.
    fn fill(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno>;
    /// Writes `len` bytes of the memory file at `mf_off` back to the file at `file_off`.
    fn write_back(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno>;
    /// (dev, ino, path) shown in maps.
    fn describe(&self) -> (u64, u64, Vec<u8>);
}

/// What a VMA is called in `/proc/PID/maps`.
#[derive(Clone)]
pub enum VmaKind {
    Anon,
    Heap,
    Stack,
    File {
        src: Arc<dyn MapSource>,
        file_off: u64,
    },
}

/// A mapped range.
#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: i32,
    pub shared: bool,
    pub backing: Arc<Backing>,
    /// Offset into `backing` of `start`.
    pub boff: u64,
    pub kind: VmaKind,
}

impl Vma {
    fn mf_off(&self, addr: u64) -> u64 {
        self.backing.off + self.boff + (addr - self.start)
    }
    /// The part of `self` within [lo, hi).
    fn slice(&self, lo: u64, hi: u64) -> Vma {
        let mut v = self.clone();
        v.start = lo.max(self.start);
        v.end = hi.min(self.end);
        v.boff = self.boff + (v.start - self.start);
        if let VmaKind::File { file_off, .. } = &mut v.kind {
            *file_off += v.start - self.start;
        }
        v
    }
    fn writes_back(&self) -> bool {
        self.shared && self.prot & PROT_WRITE != 0 && matches!(self.kind, VmaKind::File { .. })
    }
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
    pub kind: VmaKind,
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

    /// Maps a new range and fills it (from the file for file mappings); returns its address.
    pub fn mmap(&self, pt: &mut dyn PlatformThread, req: MapReq) -> Result<u64, Errno> {
        let len = page_up(req.len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        let mut mm = self.write();
        let addr = if req.fixed || req.noreplace {
            if !req.addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
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
        let backing = Backing::new(&self.mf, len)?;
        if let VmaKind::File { src, file_off } = &req.kind {
            src.fill(&self.mf, backing.off, len, *file_off)?;
        }
        let vma = Vma {
            start: addr,
            end: addr + len,
            prot: req.prot,
            shared: req.shared,
            backing,
            boff: 0,
            kind: req.kind,
        };
        self.unmap_locked(&mut mm, pt, addr, addr + len, false)?;
        pt.map(addr, len, req.prot, vma.backing.off).map_err(host)?;
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
        self.unmap_locked(&mut mm, pt, addr, end, true)
    }

    fn unmap_locked(
        &self,
        mm: &mut Mm,
        pt: &mut dyn PlatformThread,
        lo: u64,
        hi: u64,
        host_unmap: bool,
    ) -> Result<(), Errno> {
        let hit: Vec<u64> = mm
            .vmas
            .range(..hi)
            .rev()
            .take_while(|(_, v)| v.end > lo)
            .map(|(&s, _)| s)
            .collect();
        if hit.is_empty() {
            return Ok(());
        }
        for s in hit {
            let Some(v) = mm.vmas.remove(&s) else {
                continue;
            };
            let gone = v.slice(lo, hi);
            if gone.writes_back() {
                let _ = self.write_back(&gone);
            }
            if !v.shared {
                self.mf
                    .punch(gone.mf_off(gone.start), gone.end - gone.start);
            }
            if v.start < lo {
                mm.vmas.insert(v.start, v.slice(v.start, lo));
            }
            if v.end > hi {
                mm.vmas.insert(hi, v.slice(hi, v.end));
            }
        }
        if host_unmap {
            pt.unmap(lo, hi - lo).map_err(host)?;
        }
        Ok(())
    }

    fn write_back(&self, v: &Vma) -> Result<(), Errno> {
        if let VmaKind::File { src, file_off } = &v.kind {
            src.write_back(&self.mf, v.mf_off(v.start), v.end - v.start, *file_off)?;
        }
        Ok(())
    }

    /// msync: writes shared file mappings in the range back.
    pub fn msync(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mm = self.read();
        for (_, v) in mm.vmas.range(..end).rev().take_while(|(_, v)| v.end > addr) {
            let s = v.slice(addr, end);
            if s.writes_back() {
                self.write_back(&s)?;
            }
        }
        Ok(())
    }

    /// Writes every shared file mapping back (process exit).
    pub fn sync_all(&self) {
        let mm = self.read();
        for v in mm.vmas.values().filter(|v| v.writes_back()) {
            let _ = self.write_back(v);
        }
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
        let mut mm = self.write();
        // Every page must be mapped.
        let mut pos = addr;
        for (_, v) in mm.vmas.range(..end).filter(|(_, v)| v.end > addr) {
            if v.start > pos {
                return Err(Errno::ENOMEM);
            }
            pos = v.end;
        }
        if pos < end {
            return Err(Errno::ENOMEM);
        }
        let hit: Vec<u64> = mm
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > addr)
            .map(|(&s, _)| s)
            .collect();
        for s in hit {
            let Some(v) = mm.vmas.remove(&s) else {
                continue;
            };
            if v.start < addr {
                mm.vmas.insert(v.start, v.slice(v.start, addr));
            }
            if v.end > end {
                mm.vmas.insert(end, v.slice(end, v.end));
            }
            let mut mid = v.slice(addr, end);
            mid.prot = prot;
            mm.vmas.insert(mid.start, mid);
        }
        pt.protect(addr, end - addr, prot).map_err(host)
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

    /// madvise(MADV_DONTNEED): private pages read back as zeros (file pages are refilled).
    pub fn dontneed(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        let mm = self.read();
        for (_, v) in mm.vmas.range(..end).filter(|(_, v)| v.end > addr) {
            let s = v.slice(addr, end);
            if v.shared {
                continue;
            }
            self.mf.punch(s.mf_off(s.start), s.end - s.start);
            if let VmaKind::File { src, file_off } = &s.kind {
                src.fill(&self.mf, s.mf_off(s.start), s.end - s.start, *file_off)?;
            }
        }
        Ok(())
    }

    /// mremap(2) without MREMAP_FIXED's exotic cases: shrink in place, grow in place if free,
    /// else move (with MREMAP_MAYMOVE).
    pub fn mremap(
        &self,
        pt: &mut dyn PlatformThread,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE) || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        let v = {
            let mm = self.read();
            let (_, v) = mm.vmas.range(..=old).next_back().ok_or(Errno::EFAULT)?;
            if v.end < old + old_len.max(PAGE) || v.start > old {
                return Err(Errno::EFAULT);
            }
            v.slice(old, old + old_len.max(PAGE))
        };
        if fixed_to.is_none() && new_len <= old_len {
            if new_len < old_len {
                self.munmap(pt, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        if fixed_to.is_none() {
            // Grow in place when the pages after are free.
            let free_after = {
                let mm = self.read();
                mm.vmas.range(old + old_len..old + new_len).next().is_none()
                    && old + new_len <= mm.layout.top
                    && !overlaps(mm.layout.reserved, old + old_len, old + new_len)
            };
            if free_after && !v.shared {
                let kind = match &v.kind {
                    VmaKind::File { .. } => VmaKind::Anon,
                    k => k.clone(),
                };
                let req = MapReq {
                    addr: old + old_len,
                    len: new_len - old_len,
                    prot: v.prot,
                    shared: false,
                    fixed: true,
                    noreplace: false,
                    kind,
                };
                self.mmap(pt, req)?;
                return Ok(old);
            }
            if !may_move {
                return Err(Errno::ENOMEM);
            }
        }
        // Move: new backing, copy, unmap the old range.
        let dest = {
            let mut mm = self.write();
            match fixed_to {
                Some(a) => a,
                None => mm.find_free(0, new_len)?,
            }
        };
        if let Some(a) = fixed_to {
            if !a.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            self.munmap(pt, a, new_len)?;
        }
        let backing = if v.shared && new_len <= old_len {
            v.backing.clone()
        } else {
            let b = Backing::new(&self.mf, new_len)?;
            self.mf.copy(v.mf_off(old), b.off, old_len.min(new_len));
            b
        };
        let boff = if Arc::ptr_eq(&backing, &v.backing) {
            v.boff
        } else {
            0
        };
        let nv = Vma {
            start: dest,
            end: dest + new_len,
            backing,
            boff,
            ..v.clone()
        };
        let mut mm = self.write();
        self.unmap_locked(&mut mm, pt, old, old + old_len, true)?;
        pt.map(dest, new_len, nv.prot, nv.mf_off(dest))
            .map_err(host)?;
        mm.vmas.insert(dest, nv);
        Ok(dest)
    }

    /// Maps every VMA into `pt`, a new and empty address space (after `fork_copy`).
    pub fn map_all(&self, pt: &mut dyn PlatformThread) -> Result<(), Errno> {
        let mm = self.read();
        for v in mm.vmas.values() {
            pt.map(v.start, v.end - v.start, v.prot, v.mf_off(v.start))
                .map_err(host)?;
        }
        Ok(())
    }

    /// A copy of this address space for fork(2): private memory is copied now, shared
    /// memory is shared. The copy is mapped into its stub later with `map_all`.
    pub fn fork_copy(&self) -> Result<MemoryManager, Errno> {
        let mm = self.read();
        let mut vmas = BTreeMap::new();
        for v in mm.vmas.values() {
            let len = v.end - v.start;
            let nv = if v.shared {
                v.clone()
            } else {
                let b = Backing::new(&self.mf, len)?;
                self.mf.copy(v.mf_off(v.start), b.off, len);
                Vma {
                    backing: b,
                    boff: 0,
                    ..v.clone()
                }
            };
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

    /// Calls `f(memfile_offset, len)` for each piece of [addr, addr+len), after checking that
    /// every byte is mapped with `need` protection.
    fn each_piece(
        &self,
        addr: u64,
        len: usize,
        need: i32,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mm = self.read();
        let mut pos = addr;
        for (_, v) in mm.vmas.range(..end).filter(|(_, v)| v.end > addr) {
            if v.start > pos || v.prot & need != need || v.prot == 0 {
                return Err(Errno::EFAULT);
            }
            let stop = v.end.min(end);
            f(v.mf_off(pos), (pos - addr) as usize, (stop - pos) as usize);
            pos = stop;
            if pos == end {
                break;
            }
        }
        if pos < end {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// Copies app memory at `addr` into `dst`.
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, dst.len(), PROT_READ, |off, at, n| {
            mf.read(off, &mut dst[at..at + n])
        })
    }

    /// Copies `src` into app memory at `addr`.
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, src.len(), PROT_WRITE, |off, at, n| {
            mf.write(off, &src[at..at + n])
        })
    }

    /// Writes `src` even into read-only pages (the loader, signal frames never need this, but
    /// ELF segments are filled before their protection is final).
    pub fn poke(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, src.len(), 0, |off, at, n| {
            mf.write(off, &src[at..at + n])
        })
    }

    /// Zeroes app memory (ignoring protection), e.g. the tail of a bss page.
    pub fn zero(&self, addr: u64, len: usize) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.each_piece(addr, len, 0, |off, _, n| mf.zero(off, n as u64))
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
    pub fn futex_word(&self, addr: u64) -> Result<(u64, bool), Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let mut out = None;
        self.each_piece(addr, 4, PROT_READ, |off, _, _| out = Some(off))?;
        let shared = {
            let mm = self.read();
            mm.vmas
                .range(..=addr)
                .next_back()
                .is_some_and(|(_, v)| v.shared)
        };
        out.map(|o| (o, shared)).ok_or(Errno::EFAULT)
    }

    /// Pieces (memfile offset, length) of an app range, checked for `need` access.
    pub fn pieces(&self, addr: u64, len: usize, need: i32) -> Result<Vec<(u64, usize)>, Errno> {
        let mut v = Vec::new();
        self.each_piece(addr, len, need, |off, _, n| v.push((off, n)))?;
        Ok(v)
    }

    /// Releases every mapping (exec, exit). The host side dies with the stub.
    pub fn clear(&self) {
        self.sync_all();
        self.write().vmas.clear();
    }
}

fn overlaps(r: (u64, u64), lo: u64, hi: u64) -> bool {
    lo < r.1 && r.0 < hi
}

impl Mm {
    /// A free range of `len` bytes, top-down below `mmap_base` (or at `hint` if free).
    fn find_free(&mut self, hint: u64, len: u64) -> Result<u64, Errno> {
        let free = |mm: &Mm, a: u64| {
            a.checked_add(len).is_some_and(|end| {
                end <= mm.layout.top
                    && a >= 0x10000
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
            if cand < 0x10000 {
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
