//! Host mappings and faults: where each app page is, mirroring it into the stub, fork copies.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::{
    cache, host, page_down, page_up, Backing, FaultOutcome, MemoryManager, Pages, Run, Vma, Where,
    BUS_ADRERR, PAGE, PROT_WRITE, SEGV_ACCERR, SEGV_MAPERR,
};
use crate::abi::signal::{SIGBUS, SIGSEGV};
use crate::abi::Errno;
use crate::platform::PlatformThread;

impl MemoryManager {
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
    pub(super) fn file_page(
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
    pub(super) fn install(
        &self,
        pt: &mut dyn PlatformThread,
        v: &Vma,
        lo: u64,
        hi: u64,
    ) -> Result<(), Errno> {
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
}
