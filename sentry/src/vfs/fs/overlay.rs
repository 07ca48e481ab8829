//! Overlay: a read-only lower tree (the host root, through the gofer) under a writable
//! in-memory tmpfs. Writes copy a file up; deletions of lower names leave whiteouts (kept in
//! the sentry, never on the host).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

use super::tmpfs::{TmpFs, TmpInode};
use crate::abi::{Errno, Stat};
use crate::vfs::file::*;
use crate::vfs::{DirEntry, FsStat, Inode, InodeRef, NewNode, SetAttr, S_IFDIR, S_IFLNK, S_IFREG};

pub struct OvlFs {
    upper_fs: Arc<TmpFs>,
    id: u64,
}

pub struct OvlInode {
    fs: Arc<OvlFs>,
    me: Weak<OvlInode>,
    parent: Option<Arc<OvlInode>>,
    name: Vec<u8>,
    kind: u32,
    lower: Option<InodeRef>,
    upper: Mutex<Option<InodeRef>>,
    /// Names deleted in this directory that still exist below.
    whiteouts: Mutex<HashSet<Vec<u8>>>,
    /// Names re-created here whose lower entry must stay hidden.
    no_lower: Mutex<HashSet<Vec<u8>>>,
    /// A merged directory whose upper side was changed (its attributes are the upper's).
    dirty: std::sync::atomic::AtomicBool,
}

/// Builds the overlay root over `lower`.
pub fn new(lower: InodeRef) -> InodeRef {
    let fs = Arc::new(OvlFs {
        upper_fs: TmpFs::new(),
        id: crate::vfs::next_id(),
    });
    let upper = fs.upper_fs.root(0o755);
    let kind = lower.kind();
    Arc::new_cyclic(|me| OvlInode {
        fs: fs.clone(),
        me: me.clone(),
        parent: None,
        name: Vec::new(),
        kind,
        lower: Some(lower),
        upper: Mutex::new(Some(upper)),
        whiteouts: Mutex::new(HashSet::new()),
        no_lower: Mutex::new(HashSet::new()),
        dirty: std::sync::atomic::AtomicBool::new(false),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OvlInode {
    fn upper(&self) -> Option<InodeRef> {
        lock(&self.upper).clone()
    }
    fn top(&self) -> Result<InodeRef, Errno> {
        self.upper()
            .or_else(|| self.lower.clone())
            .ok_or(Errno::ENOENT)
    }
    fn wrap(
        &self,
        name: &[u8],
        kind: u32,
        lower: Option<InodeRef>,
        upper: Option<InodeRef>,
    ) -> InodeRef {
        let parent = self.me.upgrade();
        Arc::new_cyclic(|me| OvlInode {
            fs: self.fs.clone(),
            me: me.clone(),
            parent,
            name: name.to_vec(),
            kind,
            lower,
            upper: Mutex::new(upper),
            whiteouts: Mutex::new(HashSet::new()),
            no_lower: Mutex::new(HashSet::new()),
            dirty: std::sync::atomic::AtomicBool::new(false),
        })
    }
    fn mark_dirty(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes sure this node exists in the upper layer; returns its upper inode.
    fn copy_up(&self) -> Result<InodeRef, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let parent = self.parent.as_ref().ok_or(Errno::EIO)?;
        let pu = parent.copy_up()?;
        let lower = self.lower.clone().ok_or(Errno::EIO)?;
        let st = lower.stat()?;
        let owner = (st.uid, st.gid);
        let u = match pu.lookup(&self.name) {
            Ok(u) => u,
            Err(_) => match self.kind {
                S_IFDIR => pu.create(
                    &self.name,
                    NewNode::Dir {
                        mode: st.mode & 0o7777,
                    },
                    owner,
                )?,
                S_IFLNK => pu.create(
                    &self.name,
                    NewNode::Symlink {
                        target: lower.readlink()?,
                    },
                    owner,
                )?,
                S_IFREG => {
                    let data = contents(&lower)?;
                    let u = pu.create(
                        &self.name,
                        NewNode::File {
                            mode: st.mode & 0o7777,
                        },
                        owner,
                    )?;
                    if let Some(t) = u.as_any().downcast_ref::<TmpInode>() {
                        t.set_contents(data);
                    }
                    u
                }
                k => pu.create(
                    &self.name,
                    NewNode::Node {
                        mode: k | (st.mode & 0o7777),
                        rdev: st.rdev,
                    },
                    owner,
                )?,
            },
        };
        if self.kind != S_IFLNK {
            let _ = u.setattr(&SetAttr {
                atime: Some(Some((st.atime, st.atime_nsec as u64))),
                mtime: Some(Some((st.mtime, st.mtime_nsec as u64))),
                ..SetAttr::default()
            });
        }
        *lock(&self.upper) = Some(u.clone());
        Ok(u)
    }

    fn lower_child(&self, name: &[u8]) -> Option<InodeRef> {
        if lock(&self.no_lower).contains(name) {
            return None;
        }
        self.lower.as_ref().and_then(|l| l.lookup(name).ok())
    }
}

fn contents(i: &InodeRef) -> Result<Vec<u8>, Errno> {
    if let Some(g) = i.as_any().downcast_ref::<super::gofer::GoferInode>() {
        return g.contents();
    }
    if let Some(t) = i.as_any().downcast_ref::<TmpInode>() {
        return t.contents().ok_or(Errno::EINVAL);
    }
    Err(Errno::EXDEV)
}

fn as_ovl(i: &InodeRef) -> Option<&OvlInode> {
    i.as_any().downcast_ref::<OvlInode>()
}

impl Inode for OvlInode {
    fn stat(&self) -> Result<Stat, Errno> {
        if let Some(l) = &self.lower {
            if self.kind == S_IFDIR && !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
                return l.stat();
            }
        }
        let mut st = self.top()?.stat()?;
        if let (Some(l), Some(_)) = (&self.lower, self.upper()) {
            if let Ok(ls) = l.stat() {
                st.ino = ls.ino;
                st.dev = ls.dev;
            }
        }
        Ok(st)
    }
    fn kind(&self) -> u32 {
        self.kind
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        if lock(&self.whiteouts).contains(name) {
            return Err(Errno::ENOENT);
        }
        let up = self.upper().and_then(|u| u.lookup(name).ok());
        let lo = self.lower_child(name);
        match (up, lo) {
            (Some(u), Some(l)) => {
                let kind = u.kind();
                let lower = (kind == S_IFDIR && l.kind() == S_IFDIR).then_some(l);
                Ok(self.wrap(name, kind, lower, Some(u)))
            }
            (Some(u), None) => Ok(self.wrap(name, u.kind(), None, Some(u))),
            (None, Some(l)) => Ok(self.wrap(name, l.kind(), Some(l), None)),
            (None, None) => Err(Errno::ENOENT),
        }
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        if let Some(u) = self.upper() {
            for e in u.readdir()? {
                seen.insert(e.name.clone());
                out.push(e);
            }
        }
        if let Some(l) = &self.lower {
            let wo = lock(&self.whiteouts).clone();
            let nl = lock(&self.no_lower).clone();
            for e in l.readdir()? {
                if !seen.contains(&e.name) && !wo.contains(&e.name) && !nl.contains(&e.name) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
    fn create(&self, name: &[u8], node: NewNode, owner: (u32, u32)) -> Result<InodeRef, Errno> {
        let up = self.copy_up()?;
        self.mark_dirty();
        let was_whiteout = lock(&self.whiteouts).remove(name);
        let u = up.create(name, node, owner)?;
        if was_whiteout || self.lower.as_ref().is_some_and(|l| l.lookup(name).is_ok()) {
            lock(&self.no_lower).insert(name.to_vec());
        }
        Ok(self.wrap(name, u.kind(), None, Some(u)))
    }
    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let t = as_ovl(target).ok_or(Errno::EXDEV)?;
        let tu = t.copy_up()?;
        let up = self.copy_up()?;
        lock(&self.whiteouts).remove(name);
        up.link(name, &tu)
    }
    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let child = self.lookup(name)?;
        if dir && !child.readdir()?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let up = self.copy_up()?;
        self.mark_dirty();
        if up.lookup(name).is_ok() {
            up.unlink(name, dir)?;
        }
        if self.lower.as_ref().is_some_and(|l| l.lookup(name).is_ok()) {
            lock(&self.whiteouts).insert(name.to_vec());
            lock(&self.no_lower).remove(name);
        }
        Ok(())
    }
    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8], flags: u32) -> Result<(), Errno> {
        let nd = as_ovl(new_dir).ok_or(Errno::EXDEV)?;
        let src = self.lookup(old)?;
        let s = as_ovl(&src).ok_or(Errno::EXDEV)?;
        if s.kind == S_IFDIR && s.lower.is_some() {
            // Like overlayfs without redirect_dir: callers (mv) fall back to copying.
            return Err(Errno::EXDEV);
        }
        s.copy_up()?;
        if flags & 2 != 0 {
            // RENAME_EXCHANGE: both sides move up, then swap there.
            let dst = nd.lookup(new)?;
            let d = as_ovl(&dst).ok_or(Errno::EXDEV)?;
            if d.kind == S_IFDIR && d.lower.is_some() {
                return Err(Errno::EXDEV);
            }
            d.copy_up()?;
            let up = self.copy_up()?;
            let nup = nd.copy_up()?;
            up.rename(old, &nup, new, flags)?;
            if self.lower.as_ref().is_some_and(|l| l.lookup(old).is_ok()) {
                lock(&self.no_lower).insert(old.to_vec());
            }
            if nd.lower.as_ref().is_some_and(|l| l.lookup(new).is_ok()) {
                lock(&nd.no_lower).insert(new.to_vec());
            }
            self.mark_dirty();
            nd.mark_dirty();
            return Ok(());
        }
        let up = self.copy_up()?;
        let nup = nd.copy_up()?;
        if let Ok(dst) = nd.lookup(new) {
            if dst.kind() == S_IFDIR && !dst.readdir()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            if let Some(d) = as_ovl(&dst) {
                d.copy_up()?;
            }
        }
        up.rename(old, &nup, new, flags)?;
        self.mark_dirty();
        nd.mark_dirty();
        if self.lower.as_ref().is_some_and(|l| l.lookup(old).is_ok()) {
            lock(&self.whiteouts).insert(old.to_vec());
        }
        lock(&nd.whiteouts).remove(new);
        if nd.lower.as_ref().is_some_and(|l| l.lookup(new).is_ok()) {
            lock(&nd.no_lower).insert(new.to_vec());
        }
        Ok(())
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.top()?.readlink()
    }
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if self.kind == S_IFDIR && !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            // Start from the lower attributes, then apply the change.
            let up = self.copy_up()?;
            if let Some(l) = &self.lower {
                let st = l.stat()?;
                up.setattr(&SetAttr {
                    mode: Some(st.mode & 0o7777),
                    uid: Some(st.uid),
                    gid: Some(st.gid),
                    atime: Some(Some((st.atime, st.atime_nsec as u64))),
                    mtime: Some(Some((st.mtime, st.mtime_nsec as u64))),
                    ..SetAttr::default()
                })?;
            }
            self.mark_dirty();
        }
        self.copy_up()?.setattr(a)
    }
    fn open(&self, _me: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let acc = flags & O_ACCMODE;
        let write = acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0;
        let target = if write && self.kind == S_IFREG {
            self.copy_up()?
        } else {
            self.top()?
        };
        target.open(&target, flags)
    }
    fn statfs(&self) -> Result<FsStat, Errno> {
        match &self.lower {
            Some(l) => l.statfs().map(|mut s| {
                s.kind = 0x794c_7630;
                s
            }),
            None => Ok(FsStat {
                kind: 0x794c_7630,
                bsize: 4096,
                namelen: 255,
                ..FsStat::default()
            }),
        }
    }
    fn fs_id(&self) -> u64 {
        self.fs.id
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
