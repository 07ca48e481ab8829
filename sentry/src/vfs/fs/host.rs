//! Host fds the sentry was handed as the app's stdio (terminals, pipes, files).
//! Only read, write, poll and a few terminal ioctls are done on them, by the sentry.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::abi::{Errno, Stat, SysResult, Termios, Winsize};
use crate::kernel::Task;
use crate::vfs::file::*;
use crate::vfs::{next_id, Inode, InodeRef, S_IFCHR};

pub struct HostFd {
    fd: OwnedFd,
    tty: bool,
}

impl HostFd {
    pub fn new(fd: OwnedFd) -> Arc<HostFd> {
        let mut t = Termios::default();
        let tty = crate::sys::tcgets(fd.as_fd(), &mut t).is_ok();
        Arc::new(HostFd { fd, tty })
    }
}

impl FileOps for HostFd {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        loop {
            let ev = crate::sys::poll_one(
                self.fd.as_fd(),
                libc::POLLIN,
                if io.nonblock { 0 } else { 50 },
            )
            .map_err(|e| Errno::from_host(&e))?;
            if ev != 0 {
                return crate::sys::read(self.fd.as_fd(), buf).map_err(|e| Errno::from_host(&e));
            }
            if io.nonblock {
                return Err(Errno::EAGAIN);
            }
            if io.task.interrupted() {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }
    fn write(&self, _io: &Io<'_>, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        crate::sys::write(self.fd.as_fd(), buf).map_err(|e| Errno::from_host(&e))
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        let ev =
            crate::sys::poll_one(self.fd.as_fd(), libc::POLLIN | libc::POLLOUT, 0).unwrap_or(0);
        ev as u16 as u32
    }
    fn is_tty(&self) -> bool {
        self.tty
    }
    fn ioctl(&self, t: &mut Task, cmd: u32, arg: u64) -> SysResult {
        if !self.tty {
            return Err(Errno::ENOTTY);
        }
        match cmd {
            0x5401 => {
                // TCGETS
                let mut tm = Termios::default();
                crate::sys::tcgets(self.fd.as_fd(), &mut tm).map_err(|e| Errno::from_host(&e))?;
                t.mm.write_obj(arg, &tm)?;
                Ok(0)
            }
            0x5402..=0x5404 => {
                // TCSETS, TCSETSW, TCSETSF
                let tm: Termios = t.mm.read_obj(arg)?;
                crate::sys::tcsets(self.fd.as_fd(), u64::from(cmd), &tm)
                    .map_err(|e| Errno::from_host(&e))?;
                Ok(0)
            }
            0x5413 => {
                // TIOCGWINSZ
                let mut w = Winsize::default();
                crate::sys::winsize(self.fd.as_fd(), &mut w).map_err(|e| Errno::from_host(&e))?;
                t.mm.write_obj(arg, &w)?;
                Ok(0)
            }
            0x5414 => Ok(0), // TIOCSWINSZ
            0x540f => {
                // TIOCGPGRP: the sandbox's foreground group is init's.
                let pgid = t.k.pgid_of(1).unwrap_or(1);
                t.mm.write_obj(arg, &pgid)?;
                Ok(0)
            }
            0x5410 => Ok(0), // TIOCSPGRP
            0x5429 => {
                // TIOCGSID
                t.mm.write_obj(arg, &1i32)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

/// An inode for a file that lives in no filesystem: host stdio, pipes, eventfds
/// (what fstat sees).
pub struct AnonInode {
    ino: u64,
    mode: u32,
    rdev: u64,
}

impl AnonInode {
    pub fn make(mode: u32, rdev: u64) -> InodeRef {
        Arc::new(AnonInode {
            ino: next_id(),
            mode,
            rdev,
        })
    }
    /// What a host stdio fd looks like: a terminal or a pipe.
    pub fn stdio(tty: bool) -> InodeRef {
        if tty {
            AnonInode::make(S_IFCHR | 0o620, 136 << 8)
        } else {
            AnonInode::make(crate::vfs::S_IFIFO | 0o600, 0)
        }
    }
}

impl Inode for AnonInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(crate::vfs::make_stat(
            self.ino,
            self.mode,
            1,
            0,
            0,
            0,
            self.rdev,
            [crate::vfs::now(); 3],
        ))
    }
    fn kind(&self) -> u32 {
        self.mode & crate::vfs::S_IFMT
    }
    fn open(&self, _me: &InodeRef, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ENXIO)
    }
    fn fs_id(&self) -> u64 {
        0
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
