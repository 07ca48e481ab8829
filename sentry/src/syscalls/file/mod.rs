//! File descriptors and file I/O: open, read, write, seek, dup, fcntl, ioctl, pipes,
//! getdents.

mod dents;
mod fd;
mod locks;
mod open;
mod rw;

pub use dents::*;
pub use fd::*;
pub use locks::*;
pub use open::*;
pub use rw::*;

use crate::abi::Errno;
use crate::vfs::File;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
pub const AT_REMOVEDIR: u32 = 0x200;
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
pub const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_EACCESS: u32 = 0x200;

fn file_size(f: &File) -> Result<u64, Errno> {
    if let Some(s) = f.ops.size() {
        return Ok(s);
    }
    match &f.inode {
        Some(i) => Ok(i.stat()?.size.max(0) as u64),
        None => Ok(0),
    }
}
