//! Page caches: one set of memory-file pages per mapped file, shared by every mapping of it.
//!
//! A file that is mapped gets a [`PageCache`] (found again by the file's [`MapKey`] while any
//! mapping holds it): its pages, in chunks of the memory file filled from the file when first
//! needed. Shared mappings map these pages writable; private mappings map them read-only and
//! copy a page on its first write (see `Pages::File`). The file stays the authority for its
//! size; its bytes are kept coherent with the cache at the syscall boundary:
//! - `write(2)` updates the file, then the cached copy of the bytes ([`write`]);
//! - `read(2)` first writes back what shared mappings may have stored ([`before_read`]);
//! - truncation zeroes the cached tail and, when it shrinks, bumps [`eof_generation`] so
//!   address spaces unmap pages that fell past the end (they SIGBUS from then on; another
//!   address space notices before it next runs app code after entering the sentry);
//! - msync and the cache's end (last mapping gone) write stores back.
//!
//! Limits: changes made to a host file behind the sentry's back are not seen by pages already
//! cached; a cache that ever had a writable shared mapping writes all its cached pages back
//! (not only the ones stored to).
//!
//! Locks: the registry lock is taken alone; a cache's lock nests inside the address space's
//! and outside the file's own locks (`MapSource` methods are called with it held).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{page_up, MapSource, MemFile, PAGE};
use crate::abi::Errno;

/// What identifies a file across opens: (device, inode) or another unique pair.
pub type MapKey = (u64, u64);

/// Bytes of memory file allocated (and filled) at a time.
const CHUNK: u64 = 2 << 20;

static CACHES: Mutex<BTreeMap<MapKey, Weak<PageCache>>> = Mutex::new(BTreeMap::new());

/// Bumped whenever a cached file shrinks.
static EOF_GEN: AtomicU64 = AtomicU64::new(0);

/// The current truncation generation (compared by address spaces to notice a shrink).
pub fn eof_generation() -> u64 {
    EOF_GEN.load(Ordering::Acquire)
}

fn registry() -> MutexGuard<'static, BTreeMap<MapKey, Weak<PageCache>>> {
    CACHES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live cache of a file, if it is mapped.
pub fn lookup(key: MapKey) -> Option<Arc<PageCache>> {
    registry().get(&key).and_then(Weak::upgrade)
}

/// Whether any file is cached (lets hooks skip computing a key).
pub fn any() -> bool {
    !registry().is_empty()
}

/// The pages of one file.
pub struct PageCache {
    mf: Arc<MemFile>,
    src: Arc<dyn MapSource>,
    key: MapKey,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Chunk index → memory-file offset.
    chunks: BTreeMap<u64, u64>,
    /// A writable shared mapping was installed: cached pages may differ from the file.
    writers: bool,
}

/// Exclusive access to a cache's pages.
pub struct Guard<'a> {
    cache: &'a PageCache,
    g: MutexGuard<'a, Inner>,
}

impl PageCache {
    /// The cache of `src`'s file, made if it has none.
    pub fn get(mf: &Arc<MemFile>, src: &Arc<dyn MapSource>) -> Arc<PageCache> {
        let key = src.key();
        let mut reg = registry();
        if let Some(c) = reg.get(&key).and_then(Weak::upgrade) {
            return c;
        }
        let c = Arc::new(PageCache {
            mf: mf.clone(),
            src: src.clone(),
            key,
            inner: Mutex::new(Inner {
                chunks: BTreeMap::new(),
                writers: false,
            }),
        });
        reg.insert(key, Arc::downgrade(&c));
        c
    }

    pub fn lock(&self) -> Guard<'_> {
        Guard {
            cache: self,
            g: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The file's current size.
    pub fn size(&self) -> u64 {
        self.src.size()
    }

    /// The source the cache reads and writes back.
    pub fn source(&self) -> &Arc<dyn MapSource> {
        &self.src
    }

    /// Writes back what mappings stored in file range [off, off+len) (nothing unless a
    /// writable shared mapping was ever installed).
    pub fn flush(&self, off: u64, len: u64) -> Result<(), Errno> {
        self.lock().flush(off, len)
    }
}

impl Guard<'_> {
    /// The memory-file offset of the page at file offset `fpos` (page aligned), filling its
    /// chunk from the file the first time.
    pub fn page(&mut self, fpos: u64) -> Result<u64, Errno> {
        let c = self.cache;
        let idx = fpos / CHUNK;
        if let Some(&base) = self.g.chunks.get(&idx) {
            return Ok(base + fpos % CHUNK);
        }
        let base = c.mf.alloc(CHUNK)?;
        if let Err(e) = c.src.fill(&c.mf, base, CHUNK, idx * CHUNK) {
            c.mf.free(base, CHUNK);
            return Err(e);
        }
        self.g.chunks.insert(idx, base);
        Ok(base + fpos % CHUNK)
    }

    /// Notes that a writable shared mapping is installed.
    pub fn set_writers(&mut self) {
        self.g.writers = true;
    }

    /// Calls `f(memfile offset, file offset, len)` for each cached piece of [off, off+len).
    fn each_cached(&self, off: u64, len: u64, mut f: impl FnMut(u64, u64, u64)) {
        let end = off.saturating_add(len);
        if end <= off {
            return;
        }
        for (&idx, &base) in self.g.chunks.range(off / CHUNK..=(end - 1) / CHUNK) {
            let cstart = idx * CHUNK;
            let s = off.max(cstart);
            let e = end.min(cstart + CHUNK);
            f(base + (s - cstart), s, e - s);
        }
    }

    fn flush(&self, off: u64, len: u64) -> Result<(), Errno> {
        if !self.g.writers {
            return Ok(());
        }
        let size = self.cache.src.size();
        let end = off.saturating_add(len).min(size);
        if end <= off {
            return Ok(());
        }
        let mut res = Ok(());
        let c = self.cache;
        self.each_cached(off, end - off, |mf_off, file_off, n| {
            if let Err(e) = c.src.write_back(&c.mf, mf_off, n, file_off) {
                res = Err(e);
            }
        });
        res
    }

    /// Zeroes cached bytes [from, to); whole pages are released rather than written.
    fn zero(&self, from: u64, to: u64) {
        let mf = &self.cache.mf;
        self.each_cached(from, to.saturating_sub(from), |mf_off, file_off, n| {
            let first_full = page_up(file_off).unwrap_or(u64::MAX);
            let head = (first_full - file_off).min(n);
            mf.zero(mf_off, head);
            let rest = n - head;
            let whole = rest & !(PAGE - 1);
            mf.punch(mf_off + head, whole);
            mf.zero(mf_off + head + whole, rest - whole);
        });
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let g = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let chunks = std::mem::take(&mut g.chunks);
        if g.writers {
            let size = self.src.size();
            for (&idx, &base) in chunks.range(..size.div_ceil(CHUNK)) {
                let n = (size - idx * CHUNK).min(CHUNK);
                if let Err(e) = self.src.write_back(&self.mf, base, n, idx * CHUNK) {
                    tracing::warn!(?e, "cannot write a shared mapping back");
                }
            }
        }
        for base in chunks.into_values() {
            self.mf.free(base, CHUNK);
        }
        let mut reg = registry();
        if reg
            .get(&self.key)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            reg.remove(&self.key);
        }
    }
}

/// read(2) hook: before reading [off, off+len) of the file `key`, write back what shared
/// mappings stored there.
pub fn before_read(key: MapKey, off: u64, len: u64) {
    if let Some(c) = lookup(key) {
        if let Err(e) = c.flush(off, len) {
            tracing::warn!(?e, "cannot write a shared mapping back before a read");
        }
    }
}

/// write(2) hook: `write` stores `buf` at `off` of the file `key` (returning how many bytes it
/// took); the cache, if any, then gets the same bytes, so mappings see them.
pub fn write(
    key: MapKey,
    off: u64,
    buf: &[u8],
    write: impl FnOnce() -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    let Some(c) = lookup(key) else {
        return write();
    };
    let g = c.lock();
    let old = c.src.size();
    // Stores past the old end (in its last page) must not show up inside the file.
    if off > old {
        g.zero(old, off);
    }
    let n = write()?;
    let data = buf.get(..n).unwrap_or(buf);
    g.each_cached(off, n as u64, |mf_off, file_off, len| {
        let at = (file_off - off) as usize;
        c.mf.write(mf_off, &data[at..at + len as usize]);
    });
    Ok(n)
}

/// Truncation hook: `resize` changes the size of the file `key` to `new`; cached bytes past
/// the end are zeroed, and a shrink makes address spaces drop the pages past it.
pub fn resize(
    key: MapKey,
    new: u64,
    resize: impl FnOnce() -> Result<(), Errno>,
) -> Result<(), Errno> {
    let Some(c) = lookup(key) else {
        return resize();
    };
    let g = c.lock();
    let old = c.src.size();
    resize()?;
    if new < old {
        g.zero(new, page_up(old).unwrap_or(u64::MAX));
        EOF_GEN.fetch_add(1, Ordering::AcqRel);
    } else if new > old {
        g.zero(old, new.min(page_up(old).unwrap_or(u64::MAX)));
    }
    Ok(())
}
