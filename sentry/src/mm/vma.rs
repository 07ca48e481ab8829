//! Mapped ranges and what their pages are: anonymous memory, a file's page cache, a private
//! file mapping's copies of the pages it wrote.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::{page_up, MapKey, MemFile, PageCache, PAGE};
use crate::abi::Errno;

/// A reserved range of the memory file, released when the last user goes.
pub struct Backing {
    pub(super) mf: Arc<MemFile>,
    pub(super) off: u64,
    pub(super) len: u64,
}

impl Backing {
    pub fn new(mf: &Arc<MemFile>, len: u64) -> Result<Arc<Backing>, Errno> {
        Backing::alloc(mf, len).map(Arc::new)
    }
    pub(super) fn alloc(mf: &Arc<MemFile>, len: u64) -> Result<Backing, Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let off = mf.alloc(len)?;
        Ok(Backing {
            mf: mf.clone(),
            off,
            len,
        })
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

/// A private file mapping's own pages: copies of the pages it wrote.
pub struct Copies {
    pub(super) mem: Backing,
    /// Offsets in `mem` of the pages that hold a copy.
    done: Mutex<BTreeSet<u64>>,
}

impl Copies {
    pub(super) fn new(mf: &Arc<MemFile>, len: u64) -> Result<Arc<Copies>, Errno> {
        Ok(Arc::new(Copies {
            mem: Backing::alloc(mf, len)?,
            done: Mutex::new(BTreeSet::new()),
        }))
    }
    pub(super) fn done(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// A new set of `len` bytes holding the copies of `self`'s [coff, coff+n) at `at`.
    pub(super) fn transplant(
        &self,
        coff: u64,
        n: u64,
        len: u64,
        at: u64,
    ) -> Result<Arc<Copies>, Errno> {
        let new = Copies::new(&self.mem.mf, len)?;
        let done = self.done();
        let mut nd = new.done();
        for &p in done.range(coff..coff + n) {
            let dst = at + (p - coff);
            if dst < len {
                self.mem.mf.copy(self.mem.off + p, new.mem.off + dst, PAGE);
                nd.insert(dst);
            }
        }
        drop(nd);
        Ok(new)
    }
    /// Drops the copies in [coff, coff+n): those pages show the file again.
    pub(super) fn forget(&self, coff: u64, n: u64) {
        let mut done = self.done();
        let gone: Vec<u64> = done.range(coff..coff + n).copied().collect();
        for p in gone {
            done.remove(&p);
            self.mem.mf.punch(self.mem.off + p, PAGE);
        }
    }
}

/// Where a VMA's pages are.
#[derive(Clone)]
pub enum Pages {
    /// Anonymous memory from offset `boff` of `backing`. A shared mapping's pages past the end
    /// of `backing` (after mremap grew it) raise SIGBUS, like Linux's shmem object.
    Anon { backing: Arc<Backing>, boff: u64 },
    /// A file's pages from `file_off`; pages past the end of file raise SIGBUS. A private
    /// mapping has `copies` (and the offset in it of the VMA's start).
    File {
        cache: Arc<PageCache>,
        file_off: u64,
        copies: Option<(Arc<Copies>, u64)>,
    },
}

/// What a file mapping is of, for `/proc/PID/maps`, the page cache and writeback.
pub trait MapSource: Send + Sync {
    /// Fills `len` bytes of the memory file at `mf_off` from the file at `file_off`; bytes past
    /// the end of file are left zero.
    fn fill(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno>;
    /// Writes `len` bytes of the memory file at `mf_off` back to the file at `file_off`,
    /// without growing the file.
    fn write_back(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno>;
    /// (dev, ino, path) shown in maps.
    fn describe(&self) -> (u64, u64, Vec<u8>);
    /// The file's identity: equal for every open of the same file.
    fn key(&self) -> MapKey;
    /// The file's current size.
    fn size(&self) -> u64;
    /// Mapping it gives anonymous memory (/dev/zero): no page cache, no end of file.
    fn anonymous(&self) -> bool {
        false
    }
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
    /// PROT_WRITE may be set (false for a shared mapping of a file not opened for writing).
    pub may_write: bool,
    /// MADV_DONTFORK: a fork child does not get the range.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: a fork child gets zeros.
    pub wipeonfork: bool,
    pub pages: Pages,
    pub kind: VmaKind,
}

impl Vma {
    /// The part of `self` within [lo, hi).
    pub(super) fn slice(&self, lo: u64, hi: u64) -> Vma {
        let mut v = self.clone();
        v.start = lo.max(self.start);
        v.end = hi.min(self.end);
        let d = v.start - self.start;
        match &mut v.pages {
            Pages::Anon { boff, .. } => *boff += d,
            Pages::File {
                file_off, copies, ..
            } => {
                *file_off += d;
                if let Some((_, coff)) = copies {
                    *coff += d;
                }
            }
        }
        if let VmaKind::File { file_off, .. } = &mut v.kind {
            *file_off += d;
        }
        v
    }
    pub(super) fn len(&self) -> u64 {
        self.end - self.start
    }
    pub(super) fn is_file(&self) -> bool {
        matches!(self.pages, Pages::File { .. })
    }
    pub(super) fn private_anon(&self) -> bool {
        !self.shared && matches!(self.pages, Pages::Anon { .. })
    }
    /// Whether `self` and `next` (starting where `self` ends) would be one VMA in Linux.
    pub(super) fn continues(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.private_anon()
            && next.private_anon()
            && self.prot == next.prot
            && self.dontfork == next.dontfork
            && self.wipeonfork == next.wipeonfork
    }
}
