//! getdents64(2).

use crate::abi::{Errno, SysResult};
use crate::kernel::Task;
use crate::syscalls::Args;
use crate::vfs::file::*;
use crate::vfs::S_IFDIR;

pub fn sys_getdents64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a.fd(0))?;
    let (buf, count) = (a.ptr(1), a.usize(2));
    let p = f.path.clone().ok_or(Errno::ENOTDIR)?;
    if p.d.inode.kind() != S_IFDIR || f.flags() & O_PATH != 0 {
        return Err(Errno::ENOTDIR);
    }
    let mut dir = f.dir.lock().unwrap_or_else(|e| e.into_inner());
    let mut pos = f.pos.lock().unwrap_or_else(|e| e.into_inner());
    if dir.is_none() || *pos == 0 {
        let st = p.d.inode.stat()?;
        let mut v = vec![
            crate::vfs::DirEntry {
                ino: st.ino,
                kind: 4,
                name: b".".to_vec(),
            },
            crate::vfs::DirEntry {
                ino: 1,
                kind: 4,
                name: b"..".to_vec(),
            },
        ];
        v.extend(p.d.inode.readdir()?);
        *dir = Some(v);
    }
    let entries = dir.as_ref().map(|d| d.as_slice()).unwrap_or(&[]);
    let mut out = Vec::new();
    let mut i = *pos as usize;
    while i < entries.len() {
        let e = &entries[i];
        let reclen = (19 + e.name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > count {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&((i + 1) as i64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(e.kind);
        out.extend_from_slice(&e.name);
        out.resize(start + reclen, 0);
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(buf, &out)?;
    *pos = i as u64;
    Ok(out.len() as u64)
}
