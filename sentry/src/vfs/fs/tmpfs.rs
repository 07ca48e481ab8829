//! tmpfs: files, directories, links and nodes in sentry memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::abi::{Errno, Stat};
use crate::mm::{MapKey, MapSource, MemFile};
use crate::vfs::file::*;
use crate::vfs::{
    make_stat, next_id, now, DirEntry, Inode, InodeRef, NewNode, SetAttr, S_IFDIR, S_IFIFO,
    S_IFLNK, S_IFMT, S_IFREG,
};

pub struct TmpFs {
    id: u64,
    next_ino: AtomicU64,
}

impl TmpFs {
    pub fn new() -> Arc<TmpFs> {
        Arc::new(TmpFs {
            id: next_id(),
            next_ino: AtomicU64::new(2),
        })
    }
    pub fn root(self: &Arc<Self>, mode: u32) -> InodeRef {
        self.node(
            S_IFDIR | mode,
            (0, 0),
            Body::Dir(Mutex::new(BTreeMap::new())),
        )
    }
    fn node(self: &Arc<Self>, mode: u32, owner: (u32, u32), body: Body) -> Arc<TmpInode> {
        let t = now();
        Arc::new(TmpInode {
            fs: self.clone(),
            ino: self.next_ino.fetch_add(1, Ordering::Relaxed),
            meta: Mutex::new(Meta {
                mode,
                uid: owner.0,
                gid: owner.1,
                nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
                times: [t; 3],
                rdev: 0,
            }),
            body,
        })
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    times: [(i64, u64); 3],
    rdev: u64,
}

pub type Data = Arc<Mutex<Vec<u8>>>;

enum Body {
    File(Data),
    Dir(Mutex<BTreeMap<Vec<u8>, InodeRef>>),
    Symlink(Vec<u8>),
    Fifo(Arc<super::pipe::Pipe>),
    Node,
}

pub struct TmpInode {
    fs: Arc<TmpFs>,
    ino: u64,
    meta: Mutex<Meta>,
    body: Body,
}

impl TmpInode {
    fn meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn dir(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, InodeRef>>, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d.lock().unwrap_or_else(|e| e.into_inner())),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn touch(&self) {
        let t = now();
        let mut m = self.meta();
        m.times[1] = t;
        m.times[2] = t;
    }
    /// The whole content of a regular file.
    pub fn contents(&self) -> Option<Vec<u8>> {
        match &self.body {
            Body::File(d) => Some(d.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            _ => None,
        }
    }
    /// Replaces a regular file's content.
    pub fn set_contents(&self, v: Vec<u8>) {
        if let Body::File(d) = &self.body {
            *d.lock().unwrap_or_else(|e| e.into_inner()) = v;
        }
    }
    pub fn rdev(&self) -> u64 {
        self.meta().rdev
    }
}

fn as_tmp(i: &InodeRef) -> Option<&TmpInode> {
    i.as_any().downcast_ref::<TmpInode>()
}

impl Inode for TmpInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let m = self.meta();
        let size = match &self.body {
            Body::File(d) => d.lock().unwrap_or_else(|e| e.into_inner()).len() as u64,
            Body::Symlink(t) => t.len() as u64,
            Body::Dir(_) => 4096,
            _ => 0,
        };
        Ok(make_stat(
            self.ino, m.mode, m.nlink, m.uid, m.gid, size, m.rdev, m.times,
        ))
    }
    fn kind(&self) -> u32 {
        self.meta().mode & S_IFMT
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        self.dir()?.get(name).cloned().ok_or(Errno::ENOENT)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let d = self.dir()?;
        Ok(d.iter()
            .map(|(n, i)| {
                let ino = i.stat().map(|s| s.ino).unwrap_or(0);
                DirEntry {
                    ino,
                    kind: crate::vfs::dtype(i.kind()),
                    name: n.clone(),
                }
            })
            .collect())
    }
    fn create(&self, name: &[u8], node: NewNode, owner: (u32, u32)) -> Result<InodeRef, Errno> {
        if self.meta().nlink == 0 {
            // The directory was removed.
            return Err(Errno::ENOENT);
        }
        let mut d = self.dir()?;
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let n: Arc<TmpInode> = match node {
            NewNode::File { mode } => self.fs.node(
                S_IFREG | mode,
                owner,
                Body::File(Arc::new(Mutex::new(Vec::new()))),
            ),
            NewNode::Dir { mode } => {
                self.meta().nlink += 1;
                self.fs.node(
                    S_IFDIR | mode,
                    owner,
                    Body::Dir(Mutex::new(BTreeMap::new())),
                )
            }
            NewNode::Symlink { target } => {
                self.fs.node(S_IFLNK | 0o777, owner, Body::Symlink(target))
            }
            NewNode::Node { mode, rdev } => {
                let body = if mode & S_IFMT == S_IFIFO {
                    Body::Fifo(super::pipe::Pipe::new())
                } else {
                    Body::Node
                };
                let n = self.fs.node(mode, owner, body);
                n.meta().rdev = rdev;
                n
            }
        };
        d.insert(name.to_vec(), n.clone());
        drop(d);
        self.touch();
        Ok(n)
    }
    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let t = as_tmp(target).ok_or(Errno::EXDEV)?;
        let mut d = self.dir()?;
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        t.meta().nlink += 1;
        d.insert(name.to_vec(), target.clone());
        Ok(())
    }
    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let mut d = self.dir()?;
        let c = d.get(name).cloned().ok_or(Errno::ENOENT)?;
        if dir {
            if c.kind() != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            if !c.readdir()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            self.meta().nlink -= 1;
        } else if c.kind() == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        d.remove(name);
        drop(d);
        if let Some(t) = as_tmp(&c) {
            let mut m = t.meta();
            m.nlink = m.nlink.saturating_sub(if dir { 2 } else { 1 });
            m.times[2] = now();
        }
        self.touch();
        Ok(())
    }
    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8], flags: u32) -> Result<(), Errno> {
        let nd = as_tmp(new_dir).ok_or(Errno::EXDEV)?;
        let same = std::ptr::eq(nd, self);
        let src = self.dir()?.get(old).cloned().ok_or(Errno::ENOENT)?;
        let dst = nd.dir()?.get(new).cloned();
        if flags & 2 != 0 {
            // RENAME_EXCHANGE
            let dst = dst.ok_or(Errno::ENOENT)?;
            if same {
                let mut d = self.dir()?;
                d.insert(old.to_vec(), dst);
                d.insert(new.to_vec(), src);
            } else {
                self.dir()?.insert(old.to_vec(), dst);
                nd.dir()?.insert(new.to_vec(), src);
            }
            return Ok(());
        }
        if let Some(dst) = &dst {
            if dst.kind() == S_IFDIR && !dst.readdir()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        }
        self.dir()?.remove(old);
        nd.dir()?.insert(new.to_vec(), src.clone());
        if src.kind() == S_IFDIR && !same {
            self.meta().nlink -= 1;
            nd.meta().nlink += 1;
        }
        if let Some(dst) = dst.and_then(|d| as_tmp(&d).map(|t| t.ino)) {
            let _ = dst;
        }
        self.touch();
        nd.touch();
        Ok(())
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = a.size {
            match &self.body {
                Body::File(d) => {
                    if size > 1 << 36 {
                        return Err(Errno::EFBIG);
                    }
                    crate::mm::cache::resize(data_key(d), size, || {
                        d.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .resize(size as usize, 0);
                        Ok(())
                    })?;
                    self.touch();
                }
                Body::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        let mut m = self.meta();
        let t = now();
        if let Some(mode) = a.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
            m.times[2] = t;
        }
        if let Some(uid) = a.uid {
            m.uid = uid;
            m.times[2] = t;
        }
        if let Some(gid) = a.gid {
            m.gid = gid;
            m.times[2] = t;
        }
        if let Some(at) = a.atime {
            m.times[0] = at.unwrap_or(t);
            m.times[2] = t;
        }
        if let Some(mt) = a.mtime {
            m.times[1] = mt.unwrap_or(t);
            m.times[2] = t;
        }
        Ok(())
    }
    fn open(&self, _me: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match &self.body {
            Body::File(d) => Ok(Arc::new(TmpFile {
                data: d.clone(),
                inode: _me.clone(),
            })),
            Body::Dir(_) => Ok(Arc::new(super::gofer::DirOnly)),
            Body::Fifo(p) => {
                let acc = flags & O_ACCMODE;
                Ok(p.open_end(acc == O_WRONLY))
            }
            Body::Node => {
                let (rdev, mode) = {
                    let m = self.meta();
                    (m.rdev, m.mode)
                };
                super::dev::open_device(rdev, mode)
            }
            Body::Symlink(_) => Err(Errno::ELOOP),
        }
    }
    fn fs_id(&self) -> u64 {
        self.fs.id
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open tmpfs file.
pub struct TmpFile {
    data: Data,
    inode: InodeRef,
}

impl FileOps for TmpFile {
    fn read(&self, _io: &Io<'_>, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        crate::mm::cache::before_read(data_key(&self.data), off, buf.len() as u64);
        let d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let off = off as usize;
        if off >= d.len() {
            return Ok(0);
        }
        let n = buf.len().min(d.len() - off);
        buf[..n].copy_from_slice(&d[off..off + n]);
        Ok(n)
    }
    fn write(&self, _io: &Io<'_>, buf: &[u8], off: u64) -> Result<usize, Errno> {
        crate::mm::cache::write(data_key(&self.data), off, buf, || {
            let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
            let end = (off as usize).checked_add(buf.len()).ok_or(Errno::EFBIG)?;
            if end > 1 << 36 {
                return Err(Errno::EFBIG);
            }
            if d.len() < end {
                d.resize(end, 0);
            }
            d[off as usize..end].copy_from_slice(buf);
            Ok(buf.len())
        })?;
        if let Some(t) = as_tmp(&self.inode) {
            t.touch();
        }
        Ok(buf.len())
    }
    fn size(&self) -> Option<u64> {
        Some(self.data.lock().unwrap_or_else(|e| e.into_inner()).len() as u64)
    }
    fn map_source(&self) -> Option<Arc<dyn MapSource>> {
        Some(Arc::new(TmpMap {
            data: self.data.clone(),
        }))
    }
}

struct TmpMap {
    data: Data,
}

/// The page-cache key of a tmpfs file: its data's address (stable while mapped, since the
/// cache holds the data).
fn data_key(d: &Data) -> MapKey {
    (u64::MAX, Arc::as_ptr(d).addr() as u64)
}

impl MapSource for TmpMap {
    fn fill(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno> {
        let d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let start = (file_off as usize).min(d.len());
        let end = (start + len as usize).min(d.len());
        mf.write(mf_off, &d[start..end]);
        Ok(())
    }
    fn write_back(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno> {
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let start = (file_off as usize).min(d.len());
        let end = (start + len as usize).min(d.len());
        mf.read(mf_off, &mut d[start..end]);
        Ok(())
    }
    fn describe(&self) -> (u64, u64, Vec<u8>) {
        (0x2f, 0, Vec::new())
    }
    fn key(&self) -> MapKey {
        data_key(&self.data)
    }
    fn size(&self) -> u64 {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
}
