//! The gofer-backed filesystem: every operation is a request to the `moat-gofer` process;
//! opened files come back as host fds that the sentry reads and writes directly.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use moat_gofer::GoferClient;
use moat_proto::gofer::{setattr as sa, Attr, Reply, Request};

use crate::abi::{Errno, Stat};
use crate::mm::{MapKey, MapSource, MemFile};
use crate::vfs::file::*;
use crate::vfs::{
    next_id, DirEntry, FsStat, Inode, InodeRef, NewNode, SetAttr, S_IFDIR, S_IFLNK, S_IFMT,
};

/// One gofer connection seen as a filesystem.
pub struct GoferFs {
    client: Arc<GoferClient>,
    id: u64,
    /// The tree is read-only (the overlay's lower layer): attributes may be cached.
    cache: bool,
}

impl GoferFs {
    pub fn new(client: Arc<GoferClient>, read_only: bool) -> Arc<GoferFs> {
        Arc::new(GoferFs {
            client,
            id: next_id(),
            cache: read_only,
        })
    }

    fn call(&self, req: &Request) -> Result<(Reply, Option<OwnedFd>), Errno> {
        let (r, fd) = self.client.call(req).map_err(|e| {
            tracing::error!(error = %e, "gofer call failed");
            Errno::EIO
        })?;
        if let Reply::Err(e) = r {
            return Err(Errno(e as i32));
        }
        Ok((r, fd))
    }

    fn attr(&self, req: &Request) -> Result<Attr, Errno> {
        match self.call(req)?.0 {
            Reply::Attr(a) | Reply::Opened(a) => Ok(a),
            _ => Err(Errno::EIO),
        }
    }
}

/// A file of the gofer's tree, known by its parent and name.
pub struct GoferInode {
    fs: Arc<GoferFs>,
    parent: Option<Arc<GoferInode>>,
    name: Mutex<Vec<u8>>,
    kind: u32,
    me: Mutex<Option<std::sync::Weak<GoferInode>>>,
    /// Attributes from the last lookup (used only on read-only trees).
    attr: Mutex<Option<Attr>>,
    /// Symlink target (cached only on read-only trees).
    link: Mutex<Option<Vec<u8>>>,
    /// A donated read-only fd reused by later opens (read-only trees only).
    ro_fd: Mutex<Option<Arc<OwnedFd>>>,
}

fn to_stat(a: &Attr) -> Stat {
    Stat {
        dev: a.dev,
        ino: a.ino,
        nlink: a.nlink,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        size: a.size as i64,
        blksize: a.blksize as i64,
        blocks: a.blocks as i64,
        atime: a.atime.0,
        atime_nsec: a.atime.1 as i64,
        mtime: a.mtime.0,
        mtime_nsec: a.mtime.1 as i64,
        ctime: a.ctime.0,
        ctime_nsec: a.ctime.1 as i64,
        ..Stat::default()
    }
}

impl GoferInode {
    /// The path relative to the gofer root.
    pub fn path(&self) -> Vec<u8> {
        let mut parts = vec![self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()];
        let mut p = self.parent.clone();
        while let Some(x) = p {
            parts.push(x.name.lock().unwrap_or_else(|e| e.into_inner()).clone());
            p = x.parent.clone();
        }
        let parts: Vec<Vec<u8>> = parts.into_iter().rev().filter(|s| !s.is_empty()).collect();
        parts.join(&b'/')
    }
    fn child_path(&self, name: &[u8]) -> Vec<u8> {
        let mut p = self.path();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    }
    fn arc(&self) -> Option<Arc<GoferInode>> {
        self.me
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|w| w.upgrade())
    }
    fn make_child(&self, name: &[u8], kind: u32, attr: Option<Attr>) -> InodeRef {
        let parent = self.arc();
        let attr = Mutex::new(attr.filter(|_| self.fs.cache));
        let c = Arc::new(GoferInode {
            fs: self.fs.clone(),
            parent,
            name: Mutex::new(name.to_vec()),
            kind,
            me: Mutex::new(None),
            attr,
            link: Mutex::new(None),
            ro_fd: Mutex::new(None),
        });
        *c.me.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&c));
        c
    }
    /// Opens the file read-only and reads it whole (overlay copy-up).
    pub fn contents(&self) -> Result<Vec<u8>, Errno> {
        let (_, fd) = self.fs.call(&Request::Open {
            path: self.path(),
            flags: O_RDONLY,
        })?;
        let fd = fd.ok_or(Errno::EIO)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = crate::sys::pread(fd.as_fd(), &mut buf, out.len() as u64)
                .map_err(|e| Errno::from_host(&e))?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> Result<Stat, Errno> {
        if let Some(a) = *self.attr.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(to_stat(&a));
        }
        let a = self.fs.attr(&Request::Stat { path: self.path() })?;
        if self.fs.cache {
            *self.attr.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
        }
        Ok(to_stat(&a))
    }
    fn kind(&self) -> u32 {
        self.kind
    }
    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let a = self.fs.attr(&Request::Stat {
            path: self.child_path(name),
        })?;
        Ok(self.make_child(name, a.mode & S_IFMT, Some(a)))
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        match self.fs.call(&Request::ReadDir { path: self.path() })?.0 {
            Reply::Dirents(v) => Ok(v
                .into_iter()
                .map(|d| DirEntry {
                    ino: d.ino,
                    kind: d.kind,
                    name: d.name,
                })
                .collect()),
            _ => Err(Errno::EIO),
        }
    }
    fn create(&self, name: &[u8], node: NewNode, owner: (u32, u32)) -> Result<InodeRef, Errno> {
        let (uid, gid) = owner;
        let dir = self.path();
        let name_v = name.to_vec();
        let kind = match node {
            NewNode::File { mode } => {
                self.fs.call(&Request::Create {
                    dir,
                    name: name_v,
                    flags: O_RDWR,
                    mode,
                    uid,
                    gid,
                })?;
                crate::vfs::S_IFREG
            }
            NewNode::Dir { mode } => {
                self.fs.call(&Request::Mkdir {
                    dir,
                    name: name_v,
                    mode,
                    uid,
                    gid,
                })?;
                S_IFDIR
            }
            NewNode::Symlink { target } => {
                self.fs.call(&Request::Symlink {
                    dir,
                    name: name_v,
                    target,
                    uid,
                    gid,
                })?;
                S_IFLNK
            }
            NewNode::Node { mode, rdev } => {
                self.fs.call(&Request::Mknod {
                    dir,
                    name: name_v,
                    mode,
                    rdev,
                    uid,
                    gid,
                })?;
                mode & S_IFMT
            }
        };
        Ok(self.make_child(name, kind, None))
    }
    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let t = target
            .as_any()
            .downcast_ref::<GoferInode>()
            .ok_or(Errno::EXDEV)?;
        self.fs
            .call(&Request::Link {
                old: t.path(),
                dir: self.path(),
                name: name.to_vec(),
            })
            .map(|_| ())
    }
    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        self.fs
            .call(&Request::Unlink {
                dir: self.path(),
                name: name.to_vec(),
                rmdir: dir,
            })
            .map(|_| ())
    }
    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8], flags: u32) -> Result<(), Errno> {
        let nd = new_dir
            .as_any()
            .downcast_ref::<GoferInode>()
            .ok_or(Errno::EXDEV)?;
        self.fs
            .call(&Request::Rename {
                old_dir: self.path(),
                old_name: old.to_vec(),
                new_dir: nd.path(),
                new_name: new.to_vec(),
                flags,
            })
            .map(|_| ())
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if let Some(t) = self.link.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(t);
        }
        let t = match self.fs.call(&Request::Readlink { path: self.path() })?.0 {
            Reply::Bytes(b) => b,
            _ => return Err(Errno::EIO),
        };
        if self.fs.cache {
            *self.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
        }
        Ok(t)
    }
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        let mut mask = 0;
        let mut req_at = (0, 0);
        let mut req_mt = (0, 0);
        if a.mode.is_some() {
            mask |= sa::MODE;
        }
        if a.uid.is_some() {
            mask |= sa::UID;
        }
        if a.gid.is_some() {
            mask |= sa::GID;
        }
        if a.size.is_some() {
            mask |= sa::SIZE;
        }
        match a.atime {
            Some(Some(t)) => {
                mask |= sa::ATIME;
                req_at = t;
            }
            Some(None) => mask |= sa::ATIME | sa::ATIME_NOW,
            None => {}
        }
        match a.mtime {
            Some(Some(t)) => {
                mask |= sa::MTIME;
                req_mt = t;
            }
            Some(None) => mask |= sa::MTIME | sa::MTIME_NOW,
            None => {}
        }
        let key = match a.size {
            Some(_) if crate::mm::cache::any() => self.stat().ok().map(|s| (s.dev, s.ino)),
            _ => None,
        };
        let req = Request::SetAttr {
            path: self.path(),
            mask,
            mode: a.mode.unwrap_or(0),
            uid: a.uid.unwrap_or(0),
            gid: a.gid.unwrap_or(0),
            size: a.size.unwrap_or(0),
            atime: req_at,
            mtime: req_mt,
        };
        match (key, a.size) {
            (Some(k), Some(size)) => {
                crate::mm::cache::resize(k, size, || self.fs.call(&req).map(|_| ()))
            }
            _ => self.fs.call(&req).map(|_| ()),
        }
    }
    fn open(&self, _me: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if self.kind == S_IFDIR {
            return Ok(Arc::new(DirOnly));
        }
        let acc = flags & O_ACCMODE;
        let mut path = b"/".to_vec();
        path.extend_from_slice(&self.path());
        let path = Arc::new(path);
        // On a read-only tree one donated read-only fd serves every open of the file: all
        // I/O uses explicit offsets, so descriptions do not share a host offset.
        let reuse = self.fs.cache && acc == O_RDONLY && self.kind == crate::vfs::S_IFREG;
        if reuse {
            if let Some(fd) = self.ro_fd.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return Ok(Arc::new(HostFile { fd, path }));
            }
        }
        let (_, fd) = self.fs.call(&Request::Open {
            path: self.path(),
            flags: acc | (flags & O_DIRECTORY),
        })?;
        let fd = Arc::new(fd.ok_or(Errno::EIO)?);
        if reuse && CACHED_FDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < MAX_CACHED_FDS {
            *self.ro_fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd.clone());
        }
        Ok(Arc::new(HostFile { fd, path }))
    }
    fn statfs(&self) -> Result<FsStat, Errno> {
        match self.fs.call(&Request::StatFs { path: self.path() })?.0 {
            Reply::FsStat(s) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }
    fn fs_id(&self) -> u64 {
        self.fs.id
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Makes the root's self link (children hold their parent strongly).
pub fn root_inode(fs: &Arc<GoferFs>) -> Result<InodeRef, Errno> {
    let attr = fs.attr(&Request::Stat { path: Vec::new() })?;
    let r = Arc::new(GoferInode {
        fs: fs.clone(),
        parent: None,
        name: Mutex::new(Vec::new()),
        kind: attr.mode & S_IFMT,
        me: Mutex::new(None),
        attr: Mutex::new(fs.cache.then_some(attr)),
        link: Mutex::new(None),
        ro_fd: Mutex::new(None),
    });
    *r.me.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&r));
    Ok(r)
}

/// A directory opened for reading (entries come from the inode).
pub struct DirOnly;
impl FileOps for DirOnly {
    fn read(&self, _: &Io<'_>, _: &mut [u8], _: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
}

/// How many read-only fds the lower tree keeps open for reuse, at most.
const MAX_CACHED_FDS: usize = 4096;
static CACHED_FDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A host file donated by the gofer.
pub struct HostFile {
    fd: Arc<OwnedFd>,
    /// The file's path from the root (shown in /proc/PID/maps).
    path: Arc<Vec<u8>>,
}

impl FileOps for HostFile {
    fn read(&self, _io: &Io<'_>, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if let Some(k) = cache_key(&self.fd) {
            crate::mm::cache::before_read(k, off, buf.len() as u64);
        }
        crate::sys::pread(self.fd.as_fd(), buf, off).map_err(|e| Errno::from_host(&e))
    }
    fn write(&self, _io: &Io<'_>, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let write =
            || crate::sys::pwrite(self.fd.as_fd(), buf, off).map_err(|e| Errno::from_host(&e));
        match cache_key(&self.fd) {
            Some(k) => crate::mm::cache::write(k, off, buf, write),
            None => write(),
        }
    }
    fn size(&self) -> Option<u64> {
        crate::sys::fstat(self.fd.as_fd())
            .ok()
            .map(|s| s.st_size as u64)
    }
    fn fsync(&self) -> Result<(), Errno> {
        crate::sys::fsync(self.fd.as_fd()).map_err(|e| Errno::from_host(&e))
    }
    fn map_source(&self) -> Option<Arc<dyn MapSource>> {
        Some(Arc::new(HostMap {
            fd: self.fd.clone(),
            path: self.path.clone(),
        }))
    }
}

/// The page-cache key of a host file, when any file is cached.
fn cache_key(fd: &OwnedFd) -> Option<MapKey> {
    if !crate::mm::cache::any() {
        return None;
    }
    crate::sys::fstat(fd.as_fd())
        .ok()
        .map(|s| (s.st_dev, s.st_ino))
}

/// Maps of a donated host file.
pub struct HostMap {
    fd: Arc<OwnedFd>,
    path: Arc<Vec<u8>>,
}

impl MapSource for HostMap {
    fn fill(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno> {
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(1 << 30) as usize;
            let n = mf
                .read_from_fd(mf_off + done, want, self.fd.as_raw_fd(), file_off + done)
                .map_err(|e| Errno::from_host(&e))?;
            if n == 0 {
                break;
            }
            done += n as u64;
        }
        Ok(())
    }
    fn write_back(&self, mf: &MemFile, mf_off: u64, len: u64, file_off: u64) -> Result<(), Errno> {
        let size = crate::sys::fstat(self.fd.as_fd())
            .map(|s| s.st_size as u64)
            .unwrap_or(0);
        if file_off >= size {
            return Ok(());
        }
        let len = len.min(size - file_off) as usize;
        mf.write_to_fd(mf_off, len, self.fd.as_raw_fd(), file_off)
            .map_err(|e| Errno::from_host(&e))?;
        Ok(())
    }
    fn describe(&self) -> (u64, u64, Vec<u8>) {
        let st = crate::sys::fstat(self.fd.as_fd()).ok();
        (
            st.map(|s| s.st_dev).unwrap_or(0),
            st.map(|s| s.st_ino).unwrap_or(0),
            self.path.to_vec(),
        )
    }
    fn key(&self) -> MapKey {
        crate::sys::fstat(self.fd.as_fd())
            .map(|s| (s.st_dev, s.st_ino))
            .unwrap_or((0, Arc::as_ptr(&self.fd).addr() as u64))
    }
    fn size(&self) -> u64 {
        crate::sys::fstat(self.fd.as_fd())
            .map(|s| s.st_size as u64)
            .unwrap_or(0)
    }
}
