//! The sentry's access to app memory: copies in and out, strings, futex words.

use std::sync::atomic::Ordering;

use super::{
    page_down, page_up, pod_bytes, pod_bytes_mut, MemoryManager, Pages, Where, PAGE, PROT_READ,
    PROT_WRITE,
};
use crate::abi::{Errno, Pod};

impl MemoryManager {
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
}
