//! Program loading for execve: `#!` scripts, ELF (static, static-PIE, dynamic with
//! PT_INTERP), the initial stack with argv, envp and auxv.

pub mod elf;

use std::sync::Arc;

use crate::abi::{Errno, Regs};
use crate::kernel::Task;
use crate::mm::{
    page_down, page_up, MapReq, MemoryManager, VmaKind, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use crate::platform::PlatformThread;
use crate::vfs::{File, VPath};
use elf::{Phdr, PT_INTERP, PT_LOAD};

/// Where PIE executables and the interpreter are placed.
const PIE_BASE: u64 = 0x5555_5555_4000;
const INTERP_BASE: u64 = 0x7fff_f7fc_0000 - 0x0100_0000;

/// An executable, opened and checked.
pub struct Image {
    pub file: Arc<File>,
    pub path: VPath,
    pub head: Vec<u8>,
}

/// Reads `len` bytes at `off` of an opened file.
pub fn read_at(t: &Task, f: &File, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let io = t.io(false);
    let mut done = 0;
    while done < len {
        let n = f.ops.read(&io, &mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// The result of loading: registers to start with.
pub struct Loaded {
    pub entry: u64,
    pub sp: u64,
}

fn prot_of(p: &Phdr) -> i32 {
    let mut prot = 0;
    if p.flags & 4 != 0 {
        prot |= PROT_READ;
    }
    if p.flags & 2 != 0 {
        prot |= PROT_WRITE;
    }
    if p.flags & 1 != 0 {
        prot |= PROT_EXEC;
    }
    prot
}

/// Maps one ELF file's PT_LOAD segments at `bias`; returns the end of its image.
fn map_segments(
    t: &Task,
    mm: &MemoryManager,
    pt: &mut dyn PlatformThread,
    f: &File,
    phdrs: &[Phdr],
    bias: u64,
) -> Result<u64, Errno> {
    let src = f.ops.map_source().ok_or(Errno::EACCES)?;
    let mut end = 0;
    let _ = t;
    for p in phdrs.iter().filter(|p| p.kind == PT_LOAD && p.memsz > 0) {
        let prot = prot_of(p);
        let start = page_down(p.vaddr.checked_add(bias).ok_or(Errno::ENOEXEC)?);
        let file_end = p.vaddr + bias + p.filesz;
        let mem_end = page_up(p.vaddr + bias + p.memsz).ok_or(Errno::ENOEXEC)?;
        let file_map_end = page_up(file_end).ok_or(Errno::ENOEXEC)?;
        if p.filesz > 0 {
            let req = MapReq {
                addr: start,
                len: file_map_end - start,
                prot,
                shared: false,
                fixed: true,
                noreplace: false,
                may_write: true,
                kind: VmaKind::File {
                    src: src.clone(),
                    file_off: page_down(p.offset),
                },
            };
            mm.mmap(pt, req)?;
            // The bss part of the last file page must read as zeros (this copies the page;
            // `load` brings the host mapping up to date at the end).
            if p.memsz > p.filesz && file_end < file_map_end {
                mm.zero(file_end, (file_map_end - file_end) as usize)?;
            }
        }
        let anon_start = if p.filesz > 0 { file_map_end } else { start };
        if mem_end > anon_start {
            let req = MapReq {
                addr: anon_start,
                len: mem_end - anon_start,
                prot,
                shared: false,
                fixed: true,
                noreplace: false,
                may_write: true,
                kind: VmaKind::Anon,
            };
            mm.mmap(pt, req)?;
        }
        end = end.max(mem_end);
    }
    Ok(end)
}

fn load_phdrs(t: &Task, f: &File, head: &[u8]) -> Result<(elf::Header, Vec<Phdr>), Errno> {
    let h = elf::parse_header(head)?;
    let size = 56 * h.phnum as usize;
    let table = match head.get(h.phoff as usize..).and_then(|s| s.get(..size)) {
        Some(s) => s.to_vec(),
        None => read_at(t, f, h.phoff, size)?,
    };
    let ph = elf::parse_phdrs(&h, &table)?;
    Ok((h, ph))
}

/// Checks an image is a loadable ELF (for ENOEXEC before the point of no return).
pub fn check(t: &Task, img: &Image) -> Result<(), Errno> {
    load_phdrs(t, &img.file, &img.head).map(|_| ())
}

/// Loads `img` into the empty address space `mm`/`pt`, builds the stack; returns the entry
/// and stack pointer.
pub fn load(
    t: &Task,
    mm: &MemoryManager,
    pt: &mut dyn PlatformThread,
    img: &Image,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
) -> Result<Loaded, Errno> {
    let (h, ph) = load_phdrs(t, &img.file, &img.head)?;
    let bias = if h.kind == elf::ET_DYN {
        let lo = ph
            .iter()
            .filter(|p| p.kind == PT_LOAD)
            .map(|p| page_down(p.vaddr))
            .min()
            .unwrap_or(0);
        PIE_BASE - lo
    } else {
        0
    };
    let end = map_segments(t, mm, pt, &img.file, &ph, bias)?;
    let phdr_addr = ph
        .iter()
        .find(|p| p.kind == elf::PT_PHDR)
        .map(|p| p.vaddr + bias)
        .or_else(|| {
            ph.iter()
                .find(|p| p.kind == PT_LOAD && p.offset == 0)
                .map(|p| p.vaddr + bias + h.phoff)
        })
        .unwrap_or(0);
    let mut entry = h.entry + bias;
    let mut interp_base = 0;
    if let Some(ip) = ph.iter().find(|p| p.kind == PT_INTERP) {
        if ip.filesz > 4096 || ip.filesz < 2 {
            return Err(Errno::ENOEXEC);
        }
        let mut name = read_at(t, &img.file, ip.offset, ip.filesz as usize)?;
        while name.last() == Some(&0) {
            name.pop();
        }
        let interp = crate::syscalls::process::open_exec(t, &name)?;
        let (ih, iph) = load_phdrs(t, &interp.file, &interp.head)?;
        let lo = iph
            .iter()
            .filter(|p| p.kind == PT_LOAD)
            .map(|p| page_down(p.vaddr))
            .min()
            .unwrap_or(0);
        let ibias = if ih.kind == elf::ET_DYN {
            INTERP_BASE - lo
        } else {
            0
        };
        map_segments(t, mm, pt, &interp.file, &iph, ibias)?;
        interp_base = ibias;
        entry = ih.entry + ibias;
    }
    {
        let mut m = mm.write();
        m.brk_start = end;
        m.brk = end;
    }
    // The stack.
    let stack_top = mm.read().stack_top;
    let stack_lo = stack_top - crate::mm::STACK_SIZE;
    mm.mmap(
        pt,
        MapReq {
            addr: stack_lo,
            len: crate::mm::STACK_SIZE,
            prot: PROT_READ | PROT_WRITE,
            shared: false,
            fixed: true,
            noreplace: false,
            may_write: true,
            kind: VmaKind::Stack,
        },
    )?;
    let mut sp = stack_top;
    let push_bytes = |sp: &mut u64, mm: &MemoryManager, b: &[u8]| -> Result<u64, Errno> {
        *sp -= b.len() as u64;
        mm.copy_out(*sp, b)?;
        Ok(*sp)
    };
    let mut random = [0u8; 16];
    crate::sys::getrandom(&mut random);
    let cstr = |v: &[u8]| {
        let mut s = v.to_vec();
        s.push(0);
        s
    };
    let execfn_addr = push_bytes(&mut sp, mm, &cstr(execfn))?;
    let mut env_addrs = Vec::new();
    let env_hi = sp;
    for e in envp.iter().rev() {
        env_addrs.push(push_bytes(&mut sp, mm, &cstr(e))?);
    }
    env_addrs.reverse();
    let env_lo = sp;
    let mut arg_addrs = Vec::new();
    let arg_hi = sp;
    for a in argv.iter().rev() {
        arg_addrs.push(push_bytes(&mut sp, mm, &cstr(a))?);
    }
    arg_addrs.reverse();
    let arg_lo = sp;
    let platform = push_bytes(&mut sp, mm, b"x86_64\0")?;
    let rand_addr = push_bytes(&mut sp, mm, &random)?;
    let auxv: Vec<(u64, u64)> = vec![
        (3, phdr_addr),                        // AT_PHDR
        (4, 56),                               // AT_PHENT
        (5, u64::from(h.phnum)),               // AT_PHNUM
        (6, PAGE),                             // AT_PAGESZ
        (7, interp_base),                      // AT_BASE
        (8, 0),                                // AT_FLAGS
        (9, h.entry + bias),                   // AT_ENTRY
        (11, u64::from(t.creds.uid)),          // AT_UID
        (12, u64::from(t.creds.euid)),         // AT_EUID
        (13, u64::from(t.creds.gid)),          // AT_GID
        (14, u64::from(t.creds.egid)),         // AT_EGID
        (17, 100),                             // AT_CLKTCK
        (16, crate::sys::hwcap(16)),           // AT_HWCAP
        (26, crate::sys::hwcap(26)),           // AT_HWCAP2
        (15, platform),                        // AT_PLATFORM
        (23, 0),                               // AT_SECURE
        (25, rand_addr),                       // AT_RANDOM
        (31, execfn_addr),                     // AT_EXECFN
        (51, crate::sys::hwcap(51).max(2048)), // AT_MINSIGSTKSZ
        (0, 0),                                // AT_NULL
    ];
    let words = 1 + argv.len() + 1 + envp.len() + 1 + auxv.len() * 2;
    sp = (sp - (words as u64) * 8) & !15;
    let mut v: Vec<u64> = Vec::with_capacity(words);
    v.push(argv.len() as u64);
    v.extend(arg_addrs.iter());
    v.push(0);
    v.extend(env_addrs.iter());
    v.push(0);
    for (k, val) in auxv {
        v.push(k);
        v.push(val);
    }
    let bytes: Vec<u8> = v.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.copy_out(sp, &bytes)?;
    {
        let mut m = mm.write();
        m.arg_range = (arg_lo, arg_hi);
        m.env_range = (env_lo, env_hi);
    }
    mm.sync_host(pt);
    Ok(Loaded { entry, sp })
}

/// Fresh registers for a new program (user code and stack segments of x86-64 Linux).
pub fn initial_regs(l: &Loaded) -> Regs {
    Regs {
        rip: l.entry,
        rsp: l.sp,
        eflags: 0x202,
        cs: 0x33,
        ss: 0x2b,
        ..Regs::default()
    }
}
