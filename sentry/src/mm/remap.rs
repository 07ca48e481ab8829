//! mremap(2): shrinking, growing in place, moving (MREMAP_FIXED, MREMAP_DONTUNMAP).

use super::{
    host, overlaps, page_up, Backing, Copies, MemoryManager, Mm, Pages, Remap, Vma, MMAP_MIN_ADDR,
    PAGE,
};
use crate::abi::Errno;
use crate::platform::PlatformThread;

impl MemoryManager {
    /// mremap(2). `old` is page aligned and `new_len` not zero (checked by the caller).
    pub fn mremap(
        &self,
        pt: &mut dyn PlatformThread,
        old: u64,
        old_len: u64,
        new_len: u64,
        how: Remap,
    ) -> Result<u64, Errno> {
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        let mut mm = self.write();
        if let Some(to) = how.fixed_to {
            let to_end = to.checked_add(new_len).ok_or(Errno::EINVAL)?;
            if !to.is_multiple_of(PAGE) || to_end > mm.layout.top {
                return Err(Errno::EINVAL);
            }
            if to < old_end.max(old.saturating_add(PAGE)) && old < to_end {
                return Err(Errno::EINVAL);
            }
            if to < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
        }
        // The old range: one VMA (or private anonymous VMAs Linux would have merged).
        let pieces: Vec<Vma> = mm
            .covering(old, old_end.max(old.saturating_add(PAGE)))
            .into_iter()
            .cloned()
            .collect();
        let first = pieces.first().ok_or(Errno::EFAULT)?.clone();
        if first.start > old {
            return Err(Errno::EFAULT);
        }
        let mut pos = first.start;
        for (i, v) in pieces.iter().enumerate() {
            if v.start != pos || (i > 0 && !pieces[i - 1].continues(v)) {
                return Err(Errno::EFAULT);
            }
            pos = v.end;
        }
        if pos < old_end {
            return Err(Errno::EFAULT);
        }
        if let Pages::File { file_off, .. } = &first.pages {
            (file_off + (old - first.start))
                .checked_add(new_len)
                .ok_or(Errno::EINVAL)?;
        }
        if old_len == 0 {
            // A second mapping of the same shared pages.
            if !first.shared || !how.may_move {
                return Err(Errno::EINVAL);
            }
            let dest = match how.fixed_to {
                Some(a) => a,
                None => mm.find_free(0, new_len)?,
            };
            self.unmap_locked(&mut mm, dest, dest + new_len);
            let mut nv = first.slice(old, first.end);
            nv.end = nv.start + new_len;
            return self.place(&mut mm, pt, nv, dest);
        }
        if how.fixed_to.is_none() && !how.dont_unmap {
            if new_len <= old_len {
                if new_len < old_len {
                    self.unmap_locked(&mut mm, old + new_len, old_end);
                    pt.unmap(old + new_len, old_len - new_len).map_err(host)?;
                }
                return Ok(old);
            }
            let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            let free_after = grow_end <= mm.layout.top
                && !overlaps(mm.layout.reserved, old_end, grow_end)
                && mm.covering(old_end, grow_end).is_empty();
            if free_after {
                self.grow_in_place(&mut mm, pt, old, old_end, grow_end)?;
                return Ok(old);
            }
            if !how.may_move {
                return Err(Errno::ENOMEM);
            }
        }
        // Move.
        if let Some(to) = how.fixed_to {
            self.unmap_locked(&mut mm, to, to + new_len);
            pt.unmap(to, new_len).map_err(host)?;
        }
        let moved_len = old_len.min(new_len);
        if new_len < old_len {
            self.unmap_locked(&mut mm, old + new_len, old_end);
            pt.unmap(old + new_len, old_len - new_len).map_err(host)?;
        }
        let dest = match how.fixed_to {
            Some(a) => a,
            None => mm.find_free(0, new_len)?,
        };
        let taken = Self::take(&mut mm, old, old + moved_len);
        let nv = self.moved(&taken, new_len)?;
        if how.dont_unmap {
            // The old range stays, with fresh private pages.
            for v in &taken {
                let mut keep = v.clone();
                let len = keep.len();
                match &mut keep.pages {
                    Pages::Anon { backing, boff } if !v.shared => {
                        *backing = Backing::new(&self.mf, len)?;
                        *boff = 0;
                    }
                    Pages::File {
                        copies: Some(c), ..
                    } => *c = (Copies::new(&self.mf, len)?, 0),
                    _ => {}
                }
                self.install(pt, &keep, keep.start, keep.end)?;
                mm.vmas.insert(keep.start, keep);
            }
        } else {
            pt.unmap(old, moved_len).map_err(host)?;
        }
        self.place(&mut mm, pt, nv, dest)
    }

    /// The VMA that `taken` (the contiguous pieces of one mapping) becomes when moved and
    /// resized to `new_len` (its `start` is still the old address).
    fn moved(&self, taken: &[Vma], new_len: u64) -> Result<Vma, Errno> {
        let first = taken.first().ok_or(Errno::EFAULT)?;
        let old_len: u64 = taken.iter().map(Vma::len).sum();
        let mut nv = first.clone();
        nv.end = nv.start + new_len;
        match &mut nv.pages {
            Pages::Anon { backing, boff }
                if !first.shared && (taken.len() > 1 || new_len > old_len) =>
            {
                let b = Backing::new(&self.mf, new_len)?;
                let mut at = 0;
                for v in taken {
                    if let Pages::Anon { backing, boff } = &v.pages {
                        self.mf.copy(backing.off + boff, b.off + at, v.len());
                        self.mf.punch(backing.off + boff, v.len());
                    }
                    at += v.len();
                }
                *backing = b;
                *boff = 0;
            }
            Pages::File {
                copies: Some((c, coff)),
                ..
            } if new_len > old_len => {
                *c = c.transplant(*coff, old_len, new_len, 0)?;
                *coff = 0;
            }
            _ => {}
        }
        Ok(nv)
    }

    /// Puts `v` (still at its old address) at `dest` and maps it.
    fn place(
        &self,
        mm: &mut Mm,
        pt: &mut dyn PlatformThread,
        mut v: Vma,
        dest: u64,
    ) -> Result<u64, Errno> {
        let len = v.len();
        v.start = dest;
        v.end = dest + len;
        if let Err(e) = self.install(pt, &v, dest, dest + len) {
            let _ = pt.unmap(dest, len);
            self.release(&v);
            return Err(e);
        }
        mm.vmas.insert(dest, v);
        Ok(dest)
    }

    /// Grows the mapping [old, old_end) up to `grow_end` (free) without moving it.
    fn grow_in_place(
        &self,
        mm: &mut Mm,
        pt: &mut dyn PlatformThread,
        old: u64,
        old_end: u64,
        grow_end: u64,
    ) -> Result<(), Errno> {
        let last = mm
            .covering(old, old_end)
            .last()
            .map(|v| (*v).clone())
            .ok_or(Errno::EFAULT)?;
        if last.private_anon() {
            // A neighbour VMA with its own memory; mremap treats the two as one.
            let v = Vma {
                start: old_end,
                end: grow_end,
                pages: Pages::Anon {
                    backing: Backing::new(&self.mf, grow_end - old_end)?,
                    boff: 0,
                },
                ..last
            };
            return self.place(mm, pt, v, old_end).map(|_| ());
        }
        let lo = last.start.max(old);
        let piece = Self::take(mm, lo, old_end).pop().ok_or(Errno::EFAULT)?;
        let mut v = piece.clone();
        let cur = v.len();
        if let Pages::File {
            copies: Some((c, coff)),
            ..
        } = &mut v.pages
        {
            let len = cur + (grow_end - old_end);
            match c.transplant(*coff, cur, len, 0) {
                Ok(n) => *c = n,
                Err(e) => {
                    mm.vmas.insert(lo, piece);
                    return Err(e);
                }
            }
            *coff = 0;
        }
        v.end = grow_end;
        if let Err(e) = self.install(pt, &v, lo, grow_end) {
            let _ = pt.unmap(old_end, grow_end - old_end);
            mm.vmas.insert(lo, piece);
            return Err(e);
        }
        mm.vmas.insert(lo, v);
        Ok(())
    }
}
