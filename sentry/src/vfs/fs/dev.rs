//! Device files: null, zero, full, random, urandom, tty; and the /dev tree.

use std::sync::{Arc, OnceLock};

use super::host::HostFd;
use super::tmpfs::TmpFs;
use crate::abi::Errno;
use crate::vfs::file::*;
use crate::vfs::{InodeRef, NewNode, S_IFCHR};

/// The sandbox's terminal, when its stdin is one (for /dev/tty).
pub static CONSOLE: OnceLock<Arc<HostFd>> = OnceLock::new();

const fn dev(major: u64, minor: u64) -> u64 {
    (major << 8) | minor
}

/// Opens the device `rdev`.
pub fn open_device(rdev: u64, _mode: u32) -> Result<Arc<dyn FileOps>, Errno> {
    match rdev {
        x if x == dev(1, 3) => Ok(Arc::new(Null)),
        x if x == dev(1, 5) => Ok(Arc::new(Zero)),
        x if x == dev(1, 7) => Ok(Arc::new(Full)),
        x if x == dev(1, 8) || x == dev(1, 9) => Ok(Arc::new(Random)),
        x if x == dev(5, 0) => match CONSOLE.get() {
            Some(c) => Ok(c.clone()),
            None => Err(Errno::ENXIO),
        },
        _ => Err(Errno::ENXIO),
    }
}

struct Null;
impl FileOps for Null {
    fn read(&self, _: &Io<'_>, _: &mut [u8], _: u64) -> Result<usize, Errno> {
        Ok(0)
    }
    fn write(&self, _: &Io<'_>, b: &[u8], _: u64) -> Result<usize, Errno> {
        Ok(b.len())
    }
    fn size(&self) -> Option<u64> {
        Some(0)
    }
}

struct Zero;

/// Mapping /dev/zero gives zero-filled memory.
struct ZeroMap;
impl crate::mm::MapSource for ZeroMap {
    fn fill(&self, _: &crate::mm::MemFile, _: u64, _: u64, _: u64) -> Result<(), Errno> {
        Ok(())
    }
    fn write_back(&self, _: &crate::mm::MemFile, _: u64, _: u64, _: u64) -> Result<(), Errno> {
        Ok(())
    }
    fn describe(&self) -> (u64, u64, Vec<u8>) {
        (dev(0, 5), 4, b"/dev/zero".to_vec())
    }
    fn anonymous(&self) -> bool {
        true
    }
    fn key(&self) -> crate::mm::MapKey {
        (dev(0, 5), 4)
    }
    fn size(&self) -> u64 {
        0
    }
}

impl FileOps for Zero {
    fn map_source(&self) -> Option<Arc<dyn crate::mm::MapSource>> {
        Some(Arc::new(ZeroMap))
    }
    fn read(&self, _: &Io<'_>, b: &mut [u8], _: u64) -> Result<usize, Errno> {
        b.fill(0);
        Ok(b.len())
    }
    fn write(&self, _: &Io<'_>, b: &[u8], _: u64) -> Result<usize, Errno> {
        Ok(b.len())
    }
    fn size(&self) -> Option<u64> {
        Some(0)
    }
}

struct Full;
impl FileOps for Full {
    fn read(&self, _: &Io<'_>, b: &mut [u8], _: u64) -> Result<usize, Errno> {
        b.fill(0);
        Ok(b.len())
    }
    fn write(&self, _: &Io<'_>, _: &[u8], _: u64) -> Result<usize, Errno> {
        Err(Errno::ENOSPC)
    }
    fn size(&self) -> Option<u64> {
        Some(0)
    }
}

struct Random;
impl FileOps for Random {
    fn read(&self, _: &Io<'_>, b: &mut [u8], _: u64) -> Result<usize, Errno> {
        crate::sys::getrandom(b);
        Ok(b.len())
    }
    fn write(&self, _: &Io<'_>, b: &[u8], _: u64) -> Result<usize, Errno> {
        Ok(b.len())
    }
    fn size(&self) -> Option<u64> {
        Some(0)
    }
}

/// Builds /dev: device nodes, the stdio links, shm and pts directories.
pub fn build() -> Result<InodeRef, Errno> {
    let fs = TmpFs::new();
    let root = fs.root(0o755);
    let nodes = [
        ("null", dev(1, 3)),
        ("zero", dev(1, 5)),
        ("full", dev(1, 7)),
        ("random", dev(1, 8)),
        ("urandom", dev(1, 9)),
        ("tty", dev(5, 0)),
    ];
    for (name, rdev) in nodes {
        root.create(
            name.as_bytes(),
            NewNode::Node {
                mode: S_IFCHR | 0o666,
                rdev,
            },
            (0, 0),
        )?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        root.create(
            name.as_bytes(),
            NewNode::Symlink {
                target: target.as_bytes().to_vec(),
            },
            (0, 0),
        )?;
    }
    root.create(b"shm", NewNode::Dir { mode: 0o1777 }, (0, 0))?;
    root.create(b"pts", NewNode::Dir { mode: 0o755 }, (0, 0))?;
    Ok(root)
}
