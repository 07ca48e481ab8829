//! Changing the address space: mmap, munmap, msync, mprotect, brk and madvise.

use super::{
    host, overlaps, page_down, page_up, Advice, Backing, Copies, MapReq, MemoryManager, Mm,
    PageCache, Pages, Vma, VmaKind, MMAP_MIN_ADDR, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use crate::abi::Errno;
use crate::platform::PlatformThread;

impl MemoryManager {
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
    pub(super) fn take(mm: &mut Mm, lo: u64, hi: u64) -> Vec<Vma> {
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
    pub(super) fn release(&self, v: &Vma) {
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
    pub(super) fn unmap_locked(&self, mm: &mut Mm, lo: u64, hi: u64) {
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
}
