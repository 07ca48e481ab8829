//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, madvise, msync.

use super::Args;
use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{page_up, Advice, MapReq, Remap, VmaKind, PAGE, PROT_WRITE};

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_GROWSDOWN: u32 = 0x100;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;

/// mmap(2). A shared mapping of a file needs it open for reading, and for writing if the
/// mapping is writable now (EACCES) or is to be made so later (mprotect checks `may_write`).
pub fn sys_mmap(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, prot, flags, fd, off) =
        (a.u64(0), a.u64(1), a.i32(2), a.u32(3), a.fd(4), a.u64(5));
    if len == 0 || !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let kind_bits = flags & 3;
    if kind_bits != MAP_SHARED && kind_bits != MAP_PRIVATE && kind_bits != MAP_SHARED_VALIDATE {
        return Err(Errno::EINVAL);
    }
    if prot & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let shared = kind_bits != MAP_PRIVATE;
    let mut may_write = true;
    let kind = if flags & MAP_ANONYMOUS != 0 {
        if flags & MAP_GROWSDOWN != 0 {
            VmaKind::Stack
        } else {
            VmaKind::Anon
        }
    } else {
        let f = t.file(fd)?;
        if !f.readable() {
            return Err(Errno::EACCES);
        }
        if shared && !f.writable() {
            if prot & PROT_WRITE != 0 {
                return Err(Errno::EACCES);
            }
            may_write = false;
        }
        let src = f.ops.map_source().ok_or(Errno::ENODEV)?;
        page_up(len)
            .and_then(|l| off.checked_add(l))
            .ok_or(Errno::EOVERFLOW)?;
        VmaKind::File { src, file_off: off }
    };
    check_as(t, len, |t: &Task| {
        match page_up(len).and_then(|l| addr.checked_add(l)) {
            Some(end) if flags & MAP_FIXED != 0 => t.mm.mapped_in(addr, end),
            _ => 0,
        }
    })?;
    let req = MapReq {
        addr,
        len,
        prot,
        shared,
        fixed: flags & MAP_FIXED != 0,
        noreplace: flags & MAP_FIXED_NOREPLACE != 0,
        may_write,
        kind,
    };
    t.mm.mmap(t.pt.as_mut(), req)
}

/// ENOMEM if growing the address space by `len` bytes (after the `replaced` bytes go) would
/// pass RLIMIT_AS.
fn check_as(t: &Task, len: u64, replaced: impl FnOnce(&Task) -> u64) -> Result<(), Errno> {
    const RLIMIT_AS: usize = 9;
    let limit = t.rlimit(RLIMIT_AS);
    if limit == u64::MAX {
        return Ok(());
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let total = t.mm.mapped_in(0, u64::MAX).saturating_sub(replaced(t));
    if total.saturating_add(len) > limit {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

pub fn sys_munmap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.munmap(t.pt.as_mut(), a.u64(0), a.u64(1)).map(|_| 0)
}

/// mprotect(2). PROT_GROWSDOWN/UP are accepted and ignored; making a shared mapping of a
/// file opened read-only writable is EACCES.
pub fn sys_mprotect(t: &mut Task, a: &Args) -> SysResult {
    let prot = a.i32(2) & !0x0300_0000;
    t.mm.mprotect(t.pt.as_mut(), a.u64(0), a.u64(1), prot)
        .map(|_| 0)
}

/// brk(2). Growth past RLIMIT_AS leaves the break where it is.
pub fn sys_brk(t: &mut Task, a: &Args) -> SysResult {
    let want = a.u64(0);
    let cur = t.mm.read().brk;
    if let Some(grow) = page_up(want)
        .zip(page_up(cur))
        .and_then(|(w, c)| w.checked_sub(c))
    {
        if check_as(t, grow, |_| 0).is_err() {
            return Ok(cur);
        }
    }
    Ok(t.mm.brk(t.pt.as_mut(), want))
}

/// mremap(2): shrink in place, grow in place when the pages after are free, else move with
/// MREMAP_MAYMOVE; MREMAP_FIXED moves to an exact address (replacing what is there);
/// MREMAP_DONTUNMAP leaves the old range mapped with its private pages emptied.
pub fn sys_mremap(t: &mut Task, a: &Args) -> SysResult {
    const MAYMOVE: u32 = 1;
    const FIXED: u32 = 2;
    const DONTUNMAP: u32 = 4;
    let (old, old_len, new_len, flags) = (a.u64(0), a.u64(1), a.u64(2), a.u32(3));
    if flags & !(MAYMOVE | FIXED | DONTUNMAP) != 0 || !old.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if flags & (FIXED | DONTUNMAP) != 0 && flags & MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & DONTUNMAP != 0 && old_len != new_len {
        return Err(Errno::EINVAL);
    }
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(grow) = page_up(new_len)
        .zip(page_up(old_len))
        .and_then(|(n, o)| n.checked_sub(o))
    {
        check_as(t, grow, |_| 0)?;
    }
    let how = Remap {
        may_move: flags & MAYMOVE != 0,
        fixed_to: (flags & FIXED != 0).then(|| a.u64(4)),
        dont_unmap: flags & DONTUNMAP != 0,
    };
    t.mm.mremap(t.pt.as_mut(), old, old_len, new_len, how)
}

/// madvise(2). DONTNEED/FREE drop private pages, DONTFORK/DOFORK and WIPEONFORK/KEEPONFORK
/// mark the range for fork; other known advice is accepted and does nothing. The advice is
/// applied to the mapped parts of the range; ENOMEM if some of it is unmapped.
pub fn sys_madvise(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, advice) = (a.u64(0), a.u64(1), a.i32(2));
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let advice = match advice {
        4 | 8 => Advice::DontNeed, // MADV_DONTNEED, MADV_FREE
        10 => Advice::DontFork,
        11 => Advice::DoFork,
        18 => Advice::WipeOnFork,
        19 => Advice::KeepOnFork,
        0..=3 | 9 | 12..=17 | 20..=25 | 100..=101 => Advice::Other,
        _ => return Err(Errno::EINVAL),
    };
    if page_up(len).and_then(|l| addr.checked_add(l)).is_none() {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    t.mm.madvise(t.pt.as_mut(), addr, len, advice).map(|_| 0)
}

/// msync(2): MS_ASYNC (1), MS_INVALIDATE (2), MS_SYNC (4); MS_ASYNC with MS_SYNC is EINVAL.
pub fn sys_msync(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, flags) = (a.u64(0), a.u64(1), a.u32(2));
    if !addr.is_multiple_of(PAGE) || flags & !7 != 0 || flags & 5 == 5 {
        return Err(Errno::EINVAL);
    }
    t.mm.msync(addr, len).map(|_| 0)
}
