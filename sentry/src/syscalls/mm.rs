//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, madvise, msync.

use super::Args;
use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{MapReq, VmaKind, PAGE};

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_GROWSDOWN: u32 = 0x100;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;

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
        if shared && prot & 2 != 0 && !f.writable() {
            return Err(Errno::EACCES);
        }
        let src = f.ops.map_source().ok_or(Errno::ENODEV)?;
        VmaKind::File { src, file_off: off }
    };
    let req = MapReq {
        addr,
        len,
        prot,
        shared,
        fixed: flags & MAP_FIXED != 0,
        noreplace: flags & MAP_FIXED_NOREPLACE != 0,
        kind,
    };
    t.mm.mmap(t.pt.as_mut(), req)
}

pub fn sys_munmap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.munmap(t.pt.as_mut(), a.u64(0), a.u64(1)).map(|_| 0)
}

pub fn sys_mprotect(t: &mut Task, a: &Args) -> SysResult {
    let prot = a.i32(2) & !0x0300_0000; // PROT_GROWSDOWN/UP are accepted and ignored
    t.mm.mprotect(t.pt.as_mut(), a.u64(0), a.u64(1), prot)
        .map(|_| 0)
}

pub fn sys_brk(t: &mut Task, a: &Args) -> SysResult {
    Ok(t.mm.brk(t.pt.as_mut(), a.u64(0)))
}

pub fn sys_mremap(t: &mut Task, a: &Args) -> SysResult {
    const MAYMOVE: u32 = 1;
    const FIXED: u32 = 2;
    let flags = a.u32(3);
    if flags & !(MAYMOVE | FIXED | 4) != 0 || (flags & FIXED != 0 && flags & MAYMOVE == 0) {
        return Err(Errno::EINVAL);
    }
    let fixed = (flags & FIXED != 0).then(|| a.u64(4));
    t.mm.mremap(
        t.pt.as_mut(),
        a.u64(0),
        a.u64(1),
        a.u64(2),
        flags & MAYMOVE != 0,
        fixed,
    )
}

pub fn sys_madvise(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, advice) = (a.u64(0), a.u64(1), a.i32(2));
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    match advice {
        4 | 8 => t.mm.dontneed(addr, len).map(|_| 0), // MADV_DONTNEED, MADV_FREE
        0..=3 | 9..=19 | 100..=101 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_msync(t: &mut Task, a: &Args) -> SysResult {
    if !a.u64(0).is_multiple_of(PAGE) || a.u32(2) & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.msync(a.u64(0), a.u64(1)).map(|_| 0)
}
