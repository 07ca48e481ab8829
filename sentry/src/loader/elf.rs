//! A checked view of ELF64 x86-64 headers (untrusted bytes from the app's files).

use crate::abi::Errno;

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;

/// The ELF header fields the loader uses.
#[derive(Debug, Clone)]
pub struct Header {
    pub kind: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
}

/// One program header.
#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, Errno> {
    let s = b.get(o..o + 2).ok_or(Errno::ENOEXEC)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, Errno> {
    let s = b.get(o..o + 4).ok_or(Errno::ENOEXEC)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, Errno> {
    let s = b.get(o..o + 8).ok_or(Errno::ENOEXEC)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Parses and validates the ELF header: 64-bit, little-endian, x86-64, EXEC or DYN.
pub fn parse_header(b: &[u8]) -> Result<Header, Errno> {
    if b.len() < 64 || &b[0..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    if b[4] != 2 || b[5] != 1 || b[6] != 1 {
        return Err(Errno::ENOEXEC);
    }
    let kind = u16_at(b, 16)?;
    let machine = u16_at(b, 18)?;
    if machine != 62 || (kind != ET_EXEC && kind != ET_DYN) {
        return Err(Errno::ENOEXEC);
    }
    let h = Header {
        kind,
        entry: u64_at(b, 24)?,
        phoff: u64_at(b, 32)?,
        phentsize: u16_at(b, 54)?,
        phnum: u16_at(b, 56)?,
    };
    if h.phentsize as usize != 56 || h.phnum == 0 || h.phnum > 128 {
        return Err(Errno::ENOEXEC);
    }
    Ok(h)
}

/// Parses the program header table from its bytes.
pub fn parse_phdrs(h: &Header, table: &[u8]) -> Result<Vec<Phdr>, Errno> {
    let mut v = Vec::with_capacity(h.phnum as usize);
    for i in 0..h.phnum as usize {
        let o = i * 56;
        let p = Phdr {
            kind: u32_at(table, o)?,
            flags: u32_at(table, o + 4)?,
            offset: u64_at(table, o + 8)?,
            vaddr: u64_at(table, o + 16)?,
            filesz: u64_at(table, o + 32)?,
            memsz: u64_at(table, o + 40)?,
            align: u64_at(table, o + 48)?,
        };
        if p.kind == PT_LOAD
            && (p.filesz > p.memsz
                || p.vaddr.checked_add(p.memsz).is_none()
                || p.offset.checked_add(p.filesz).is_none()
                || p.vaddr % 4096 != p.offset % 4096)
        {
            return Err(Errno::ENOEXEC);
        }
        v.push(p);
    }
    if !v.iter().any(|p| p.kind == PT_LOAD) {
        return Err(Errno::ENOEXEC);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_wrong_machine() {
        assert_eq!(parse_header(b"#!/bin/sh\n").unwrap_err(), Errno::ENOEXEC);
        let mut b = vec![0u8; 64];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16] = 2;
        b[18] = 40; // ARM
        assert_eq!(parse_header(&b).unwrap_err(), Errno::ENOEXEC);
    }

    #[test]
    fn parses_the_host_shell() {
        let b = std::fs::read("/bin/sh").unwrap();
        let h = parse_header(&b).unwrap();
        let table = &b[h.phoff as usize..h.phoff as usize + 56 * h.phnum as usize];
        let ph = parse_phdrs(&h, table).unwrap();
        assert!(ph.iter().any(|p| p.kind == PT_INTERP));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for len in 0..300 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            if b.len() >= 64 {
                b[0..4].copy_from_slice(b"\x7fELF");
            }
            if let Ok(h) = parse_header(&b) {
                let _ = parse_phdrs(&h, &b);
            }
        }
    }
}
