//! The virtual filesystem: inodes, dentries, mounts, path walk, open file descriptions and
//! fd tables. Filesystems live in `fs/`.
//!
//! Locks: `Vfs::mounts` is taken alone; a `Dentry`'s `children` lock may be held while
//! calling into its inode (never the other way round); `FdTable` is locked by the task only.

pub mod fdtable;
pub mod file;
pub mod fs;
pub mod locks;

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use fdtable::FdTable;
pub use file::{File, FileOps, Io};

use crate::abi::{Errno, Stat};

pub type InodeRef = Arc<dyn Inode>;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// Linux's limit on symlinks followed in one walk.
const MAX_SYMLINKS: u32 = 40;

/// `DT_*` type of a mode.
pub fn dtype(mode: u32) -> u8 {
    ((mode & S_IFMT) >> 12) as u8
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub kind: u8,
    pub name: Vec<u8>,
}

/// What to create in a directory.
#[derive(Debug, Clone)]
pub enum NewNode {
    File {
        mode: u32,
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A fifo, socket or device node (`mode` has the type bits).
    Node {
        mode: u32,
        rdev: u64,
    },
}

/// Attribute changes (chmod, chown, truncate, utimes).
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// `None` leaves the time; `Some(None)` sets it to now.
    pub atime: Option<Option<(i64, u64)>>,
    pub mtime: Option<Option<(i64, u64)>>,
}

/// statfs(2) answer: the same fields the gofer protocol carries.
pub use moat_proto::gofer::FsStat;

/// A file, directory or other node of some filesystem.
pub trait Inode: Send + Sync + Any {
    fn stat(&self) -> Result<Stat, Errno>;
    /// The `S_IFMT` bits, cheaply.
    fn kind(&self) -> u32;
    fn lookup(&self, _name: &[u8]) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn create(&self, _name: &[u8], _node: NewNode, _owner: (u32, u32)) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn link(&self, _name: &[u8], _target: &InodeRef) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Renames `old` in this directory to `new` in `new_dir` (same filesystem, else EXDEV).
    fn rename(
        &self,
        _old: &[u8],
        _new_dir: &InodeRef,
        _new: &[u8],
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(Errno::EXDEV)
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }
    fn setattr(&self, _a: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    /// Opens the node; `me` is this inode's own Arc.
    fn open(&self, me: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno>;
    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat {
            kind: 0x0102_1994,
            bsize: 4096,
            namelen: 255,
            ..FsStat::default()
        })
    }
    /// Whether dentries of this directory's children may be cached (false for /proc).
    fn cacheable(&self) -> bool {
        true
    }
    /// Identifies the filesystem, to refuse cross-filesystem links and renames.
    fn fs_id(&self) -> u64;
    fn as_any(&self) -> &dyn Any;
    /// For magic links in /proc (fd/N, exe, cwd): the path they point at, not their text.
    fn magic_link(&self, _t: &crate::kernel::Task) -> Option<VPath> {
        None
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A name in the tree, caching its inode and (for directories) looked-up children.
pub struct Dentry {
    pub id: u64,
    pub inode: InodeRef,
    name: Mutex<Vec<u8>>,
    parent: Mutex<Option<Arc<Dentry>>>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Removed from its directory (rmdir): getcwd fails with ENOENT.
    dead: std::sync::atomic::AtomicBool,
}

impl Dentry {
    pub fn new_root(inode: InodeRef) -> Arc<Dentry> {
        Arc::new(Dentry {
            id: next_id(),
            inode,
            name: Mutex::new(b"/".to_vec()),
            parent: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            dead: std::sync::atomic::AtomicBool::new(false),
        })
    }
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }
    pub fn name(&self) -> Vec<u8> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.parent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The child called `name`, from the cache or the inode.
    pub fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if self.inode.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let cache = self.inode.cacheable();
        let mut ch = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if cache {
            if let Some(d) = ch.get(name) {
                return Ok(d.clone());
            }
        }
        let inode = self.inode.lookup(name)?;
        let d = Arc::new(Dentry {
            id: next_id(),
            inode,
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(Some(self.clone())),
            children: Mutex::new(HashMap::new()),
            dead: std::sync::atomic::AtomicBool::new(false),
        });
        if cache {
            ch.insert(name.to_vec(), d.clone());
        }
        Ok(d)
    }

    /// Forgets a cached child (after unlink, rename, or a failed revalidation).
    pub fn forget(&self, name: &[u8]) {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Moves a cached child to `new_parent` under `new_name` (after a rename).
    pub fn moved(self: &Arc<Self>, name: &[u8], new_parent: &Arc<Dentry>, new_name: &[u8]) {
        let d = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        new_parent.forget(new_name);
        if let Some(d) = d {
            *d.name.lock().unwrap_or_else(|e| e.into_inner()) = new_name.to_vec();
            *d.parent.lock().unwrap_or_else(|e| e.into_inner()) = Some(new_parent.clone());
            new_parent
                .children
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(new_name.to_vec(), d);
        }
    }
}

/// A mounted filesystem.
pub struct Mount {
    pub id: u64,
    pub root: Arc<Dentry>,
    /// Where it is mounted: (parent mount, dentry in it). None for the root mount.
    pub parent: Option<(Arc<Mount>, Arc<Dentry>)>,
    pub fstype: &'static str,
    pub source: Vec<u8>,
    pub readonly: bool,
}

/// A location: a dentry within a mount.
#[derive(Clone)]
pub struct VPath {
    pub mnt: Arc<Mount>,
    pub d: Arc<Dentry>,
}

impl VPath {
    /// Where this path's mount is mounted (None for the root mount).
    pub fn mountpoint(&self) -> Option<VPath> {
        self.mnt.parent.as_ref().map(|(m, d)| VPath {
            mnt: m.clone(),
            d: d.clone(),
        })
    }
    pub fn inode(&self) -> &InodeRef {
        &self.d.inode
    }
    fn same(&self, o: &VPath) -> bool {
        Arc::ptr_eq(&self.mnt, &o.mnt) && Arc::ptr_eq(&self.d, &o.d)
    }
}

/// Root and working directory of a task (shared with CLONE_FS).
#[derive(Clone)]
pub struct FsContext {
    pub root: VPath,
    pub cwd: VPath,
    pub umask: u32,
}

/// The mount tree of a sandbox.
pub struct Vfs {
    mounts: RwLock<HashMap<(u64, u64), Arc<Mount>>>,
    all: RwLock<Vec<Arc<Mount>>>,
    pub root: VPath,
}

/// How a walk treats the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow a final symlink.
    Yes,
    /// Stop at a final symlink (lstat, O_NOFOLLOW, unlink).
    No,
}

impl Vfs {
    pub fn new(root_inode: InodeRef, fstype: &'static str, source: &[u8], readonly: bool) -> Vfs {
        let m = Arc::new(Mount {
            id: next_id(),
            root: Dentry::new_root(root_inode),
            parent: None,
            fstype,
            source: source.to_vec(),
            readonly,
        });
        let root = VPath {
            mnt: m.clone(),
            d: m.root.clone(),
        };
        Vfs {
            mounts: RwLock::new(HashMap::new()),
            all: RwLock::new(vec![m]),
            root,
        }
    }

    /// Mounts `inode` on `at` (which must be a directory).
    pub fn mount(
        &self,
        at: &VPath,
        inode: InodeRef,
        fstype: &'static str,
        source: &[u8],
        readonly: bool,
    ) -> Result<(), Errno> {
        if at.d.inode.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let at = self.cross_mounts(at.clone());
        let m = Arc::new(Mount {
            id: next_id(),
            root: Dentry::new_root(inode),
            parent: Some((at.mnt.clone(), at.d.clone())),
            fstype,
            source: source.to_vec(),
            readonly,
        });
        self.mounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((at.mnt.id, at.d.id), m.clone());
        self.all.write().unwrap_or_else(|e| e.into_inner()).push(m);
        Ok(())
    }

    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.all.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes mount `top` and every mount beneath it out of the tree (a lazy unmount: files
    /// still open in them keep working).
    pub fn detach(&self, top: &Arc<Mount>) {
        let beneath = |m: &Arc<Mount>| {
            let mut cur = Some(m.clone());
            while let Some(c) = cur {
                if Arc::ptr_eq(&c, top) {
                    return true;
                }
                cur = c.parent.as_ref().map(|(p, _)| p.clone());
            }
            false
        };
        let mut all = self.all.write().unwrap_or_else(|e| e.into_inner());
        let mut mounts = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|m| {
            if !beneath(m) {
                return true;
            }
            if let Some((pm, pd)) = &m.parent {
                mounts.remove(&(pm.id, pd.id));
            }
            false
        });
    }

    /// `p` itself, or the root of what is mounted on it.
    pub fn enter(&self, p: VPath) -> VPath {
        self.cross_mounts(p)
    }

    fn cross_mounts(&self, mut p: VPath) -> VPath {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        while let Some(m) = mounts.get(&(p.mnt.id, p.d.id)) {
            p = VPath {
                mnt: m.clone(),
                d: m.root.clone(),
            };
        }
        p
    }

    fn parent_of(&self, root: &VPath, p: &VPath) -> VPath {
        if p.same(root) {
            return p.clone();
        }
        let mut p = p.clone();
        while Arc::ptr_eq(&p.d, &p.mnt.root) {
            match p.mountpoint() {
                Some(m) => p = m,
                None => return p,
            }
            if p.same(root) {
                return p;
            }
        }
        match p.d.parent() {
            Some(d) => VPath {
                mnt: p.mnt.clone(),
                d,
            },
            None => p,
        }
    }

    /// Walks `path` from `start` (or the root for absolute paths).
    pub fn walk(
        &self,
        t: &crate::kernel::Task,
        ctx: &FsContext,
        start: &VPath,
        path: &[u8],
        follow: Follow,
    ) -> Result<VPath, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.walk_inner(t, ctx, start, path, follow, &mut budget)
    }

    fn walk_inner(
        &self,
        t: &crate::kernel::Task,
        ctx: &FsContext,
        start: &VPath,
        path: &[u8],
        follow: Follow,
        budget: &mut u32,
    ) -> Result<VPath, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() > 4096 {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' {
            ctx.root.clone()
        } else {
            start.clone()
        };
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let trailing_slash = path.ends_with(b"/");
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if cur.d.inode.kind() != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            if c.len() > 255 {
                return Err(Errno::ENAMETOOLONG);
            }
            if *c == b"." {
                continue;
            }
            if *c == b".." {
                cur = self.parent_of(&ctx.root, &cur);
                continue;
            }
            let d = cur.d.child(c)?;
            let next = self.cross_mounts(VPath {
                mnt: cur.mnt.clone(),
                d,
            });
            let kind = next.d.inode.kind();
            if kind == S_IFLNK && (!last || follow == Follow::Yes || trailing_slash) {
                if *budget == 0 {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                if let Some(p) = next.d.inode.magic_link(t) {
                    cur = p;
                    continue;
                }
                let target = next.d.inode.readlink()?;
                cur = self.walk_inner(t, ctx, &cur, &target, Follow::Yes, budget)?;
                continue;
            }
            cur = next;
        }
        if trailing_slash && cur.d.inode.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Walks to the parent of `path`'s last component; returns it and the last name
    /// (which may be "." or ".." — callers reject those where Linux does).
    pub fn walk_parent(
        &self,
        t: &crate::kernel::Task,
        ctx: &FsContext,
        start: &VPath,
        path: &[u8],
    ) -> Result<(VPath, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed: &[u8] = {
            let mut p = path;
            while p.len() > 1 && p.ends_with(b"/") {
                p = &p[..p.len() - 1];
            }
            p
        };
        let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) => (&b"/"[..], &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        if name.is_empty() {
            // The path is "/" itself.
            return Ok((ctx.root.clone(), b".".to_vec()));
        }
        let parent = self.walk(t, ctx, start, dir, Follow::Yes)?;
        if parent.d.inode.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok((parent, name.to_vec()))
    }

    /// The absolute path of `p` as seen from `root` (for getcwd and /proc).
    pub fn path_of(&self, root: &VPath, p: &VPath) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = p.clone();
        let mut guard = 0;
        while !cur.same(root) && guard < 4096 {
            guard += 1;
            if Arc::ptr_eq(&cur.d, &cur.mnt.root) {
                match cur.mountpoint() {
                    Some(m) => {
                        cur = m;
                        continue;
                    }
                    None => break,
                }
            }
            parts.push(cur.d.name());
            match cur.d.parent() {
                Some(d) => {
                    cur = VPath {
                        mnt: cur.mnt.clone(),
                        d,
                    }
                }
                None => break,
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for part in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(part);
        }
        out
    }
}

/// Fills the fields of a Stat from a mode etc. (helper for in-memory filesystems).
#[allow(clippy::too_many_arguments)]
pub fn make_stat(
    ino: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    size: u64,
    rdev: u64,
    times: [(i64, u64); 3],
) -> Stat {
    Stat {
        dev: 0x2f,
        ino,
        nlink,
        mode,
        uid,
        gid,
        rdev,
        size: size as i64,
        blksize: 4096,
        blocks: size.div_ceil(512) as i64,
        atime: times[0].0,
        atime_nsec: times[0].1 as i64,
        mtime: times[1].0,
        mtime_nsec: times[1].1 as i64,
        ctime: times[2].0,
        ctime_nsec: times[2].1 as i64,
        ..Stat::default()
    }
}

/// The time now, as (sec, nsec).
pub fn now() -> (i64, u64) {
    let (s, n) = crate::sys::clock_gettime(libc::CLOCK_REALTIME);
    (s, n as u64)
}
