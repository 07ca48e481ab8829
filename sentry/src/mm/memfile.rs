//! The memory file: one memfd holding all app memory. The sentry maps it whole into itself,
//! so copying to and from app memory is a plain memcpy; stubs map ranges of it as app pages.
//! This is the only module of the sentry crate (besides `sys` modules) with unsafe code.
//!
//! App memory may change under us at any time (app threads run natively), so it is never
//! handed out as a Rust reference: only copied in and out here.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

use crate::abi::Errno;

pub const PAGE: u64 = 4096;

/// The memory file and its mapping in the sentry.
pub struct MemFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    /// Free ranges: offset → length.
    free: Mutex<BTreeMap<u64, u64>>,
}

// SAFETY: `base` points at a MAP_SHARED mapping that lives as long as the MemFile; every
// access goes through bounds-checked methods, and concurrent access is the app-memory model
// (racy by design, like a hypervisor's guest memory).
unsafe impl Send for MemFile {}
// SAFETY: see `Send`: no method hands out references into the mapping.
unsafe impl Sync for MemFile {}

impl MemFile {
    /// A sparse memory file of `size` bytes (only touched pages use memory).
    pub fn new(size: u64) -> io::Result<MemFile> {
        // SAFETY: the name is a NUL-terminated static string.
        let raw = unsafe { libc::memfd_create(c"moat-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = libc::off_t::try_from(size).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: ftruncate takes no pointers.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of the whole file at a kernel-chosen address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut free = BTreeMap::new();
        free.insert(0, size);
        Ok(MemFile {
            fd,
            base: p.cast(),
            size,
            free: Mutex::new(free),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reserves `len` bytes (page multiple) of file space; contents read as zeros.
    pub fn alloc(&self, len: u64) -> Result<u64, Errno> {
        let len = len.checked_next_multiple_of(PAGE).ok_or(Errno::ENOMEM)?;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (&off, &flen) = free.iter().find(|(_, &l)| l >= len).ok_or(Errno::ENOMEM)?;
        free.remove(&off);
        if flen > len {
            free.insert(off + len, flen - len);
        }
        Ok(off)
    }

    /// Returns a range to the free pool, releasing its memory.
    pub fn free(&self, off: u64, len: u64) {
        self.punch(off, len);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut off, mut len) = (off, len);
        if let Some((&p, &pl)) = free.range(..off).next_back() {
            if p + pl == off {
                free.remove(&p);
                off = p;
                len += pl;
            }
        }
        if let Some(&nl) = free.get(&(off + len)) {
            free.remove(&(off + len));
            len += nl;
        }
        free.insert(off, len);
    }

    /// How many bytes of the file hold memory (pages touched and not punched).
    pub fn used_bytes(&self) -> u64 {
        // SAFETY: an all-zero stat is a valid value (integers only).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the fd is ours and `st` a writable stat the kernel fills. The raw fstat
        // syscall (glibc's fstat is newfstatat, which the seccomp filter does not allow).
        if unsafe { libc::syscall(libc::SYS_fstat, self.fd.as_raw_fd(), &mut st) } != 0 {
            return 0;
        }
        u64::try_from(st.st_blocks).unwrap_or(0) * 512
    }

    /// How many bytes of the ranges `(offset, length)` hold memory; ranges may overlap (each
    /// page is counted once).
    pub fn resident(&self, ranges: &mut [(u64, u64)]) -> u64 {
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for &(off, len) in ranges.iter() {
            let end = off.saturating_add(len).min(self.size);
            let off = off - off % PAGE;
            match merged.last_mut() {
                Some(last) if off <= last.1 => last.1 = last.1.max(end),
                _ if off < end => merged.push((off, end)),
                _ => {}
            }
        }
        let mut pages = 0u64;
        let mut vec = Vec::new();
        for (start, end) in merged {
            let mut at = start;
            // A chunk at a time keeps the vector small for huge mappings.
            while at < end {
                let len = (end - at).min(1 << 30);
                let n = len.div_ceil(PAGE) as usize;
                vec.clear();
                vec.resize(n, 0u8);
                // SAFETY: [at, at+len) lies inside the sentry's mapping of the file (checked
                // against `size` above) and `vec` has one byte per page of it.
                let r = unsafe {
                    libc::mincore(
                        self.base.wrapping_add(at as usize).cast(),
                        len as usize,
                        vec.as_mut_ptr(),
                    )
                };
                if r == 0 {
                    pages += vec.iter().filter(|b| **b & 1 != 0).count() as u64;
                }
                at += len;
            }
        }
        pages * PAGE
    }

    /// Releases the memory of a range (it reads as zeros afterwards).
    pub fn punch(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        // SAFETY: fallocate takes no pointers; the range is inside the file.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
    }

    fn check(&self, off: u64, len: usize) -> *mut u8 {
        let end = off
            .checked_add(len as u64)
            .expect("memory file range overflows");
        assert!(end <= self.size, "memory file range out of bounds");
        self.base.wrapping_add(off as usize)
    }

    /// Copies file bytes at `off` into `dst`.
    pub fn read(&self, off: u64, dst: &mut [u8]) {
        let src = self.check(off, dst.len());
        // SAFETY:
        // 1. `src..src+len` lies in the mapping: `check` compared it with `self.size`.
        // 2. `dst` is a sentry-owned buffer, so the two regions cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }

    /// Copies `src` into the file at `off`.
    pub fn write(&self, off: u64, src: &[u8]) {
        let dst = self.check(off, src.len());
        // SAFETY: `dst..dst+len` lies in the mapping (`check`); `src` is sentry memory.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }

    /// Zeroes a range (without releasing it).
    pub fn zero(&self, off: u64, len: u64) {
        let dst = self.check(off, len as usize);
        // SAFETY: `dst..dst+len` lies in the mapping (`check`).
        unsafe { std::ptr::write_bytes(dst, 0, len as usize) };
    }

    /// Copies `len` bytes from `src` to `dst` (non-overlapping ranges), skipping holes so that
    /// untouched memory stays unallocated.
    pub fn copy(&self, src: u64, dst: u64, len: u64) {
        let mut pos = src;
        let end = src + len;
        while pos < end {
            // SAFETY: lseek takes no pointers.
            let data = unsafe { libc::lseek(self.fd.as_raw_fd(), pos as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            let data = data as u64;
            // SAFETY: lseek takes no pointers.
            let hole = unsafe { libc::lseek(self.fd.as_raw_fd(), data as i64, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            let s = self.check(data, (hole - data) as usize);
            let d = self.check(dst + (data - src), (hole - data) as usize);
            // SAFETY: both ranges lie in the mapping (`check`) and the caller passes
            // non-overlapping ranges.
            unsafe { std::ptr::copy_nonoverlapping(s, d, (hole - data) as usize) };
            pos = hole;
        }
    }

    /// Reads up to `len` bytes of host file `fd` at `file_off` straight into the memory file.
    pub fn read_from_fd(
        &self,
        off: u64,
        len: usize,
        fd: RawFd,
        file_off: u64,
    ) -> io::Result<usize> {
        let dst = self.check(off, len);
        loop {
            // SAFETY: `dst..dst+len` lies in the mapping (`check`) and is writable.
            let r = unsafe { libc::pread(fd, dst.cast(), len, file_off as libc::off_t) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Writes `len` bytes of the memory file at `off` to host file `fd` at `file_off`.
    pub fn write_to_fd(&self, off: u64, len: usize, fd: RawFd, file_off: u64) -> io::Result<usize> {
        let src = self.check(off, len);
        loop {
            // SAFETY: `src..src+len` lies in the mapping (`check`).
            let r = unsafe { libc::pwrite(fd, src.cast(), len, file_off as libc::off_t) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The 4-byte-aligned word at `off`, for futex operations the app races with.
    pub fn atomic_u32(&self, off: u64) -> &AtomicU32 {
        assert!(off.is_multiple_of(4), "unaligned atomic");
        let p = self.check(off, 4);
        // SAFETY: `p` is 4-byte aligned, inside the mapping (`check`), valid for the MemFile's
        // lifetime (which bounds the returned reference), and AtomicU32 accepts any bits.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // SAFETY: `base` is the mapping created in `new`, of `size` bytes; no references into
        // it outlive `self`.
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_coalesces_and_copy_skips_holes() {
        let m = MemFile::new(1 << 30).unwrap();
        let a = m.alloc(3 * PAGE).unwrap();
        let b = m.alloc(PAGE).unwrap();
        assert_ne!(a, b);
        m.write(a + PAGE + 5, b"hello");
        m.copy(a, b, PAGE); // the first page of `a` is a hole: nothing is copied
        let mut buf = [1u8; 5];
        m.read(b, &mut buf);
        assert_eq!(buf, [0; 5]);
        let c = m.alloc(3 * PAGE).unwrap();
        m.copy(a, c, 3 * PAGE);
        m.read(c + PAGE + 5, &mut buf);
        assert_eq!(&buf, b"hello");
        m.free(a, 3 * PAGE);
        m.free(b, PAGE);
        m.free(c, 3 * PAGE);
        assert_eq!(m.free.lock().unwrap().len(), 1);
    }
}
