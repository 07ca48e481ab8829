//! Open file descriptions.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{DirEntry, InodeRef, VPath};
use crate::abi::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::TaskHandle;
use crate::mm::MapSource;

pub const O_ACCMODE: u32 = 3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DSYNC: u32 = 0o10000;
pub const O_ASYNC: u32 = 0o20000;
pub const O_DIRECT: u32 = 0o40000;
pub const O_LARGEFILE: u32 = 0o100000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_NOATIME: u32 = 0o1000000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_SYNC: u32 = 0o4010000;
pub const O_PATH: u32 = 0o10000000;
pub const O_TMPFILE: u32 = 0o20200000;

pub const POLLIN: u32 = 0x1;
pub const POLLPRI: u32 = 0x2;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLRDHUP: u32 = 0x2000;

/// What a blocking operation needs from the task doing it.
pub struct Io<'a> {
    pub task: &'a TaskHandle,
    pub nonblock: bool,
    /// The caller's pid and effective ids (what a unix socket's SCM_CREDENTIALS carry).
    pub cred: crate::net::Ucred,
}

impl Io<'_> {
    /// Calls `ready` until it yields a value, sleeping on `q` in between; EAGAIN when
    /// non-blocking, ERESTARTSYS when a signal or exit interrupts the wait.
    pub fn block<T>(
        &self,
        q: &WaitQueue,
        ready: impl FnMut() -> Result<Option<T>, Errno>,
    ) -> Result<T, Errno> {
        block_on(self.task, q, self.nonblock, None, ready)
    }
}

/// Calls `ready` until it yields a value, sleeping on `q` in between. EAGAIN when `nonblock`
/// or when `timeout` passes; a signal or exit interrupts the wait with ERESTARTSYS, or EINTR
/// when a timeout was set (Linux's `sock_intr_errno`).
pub fn block_on<T>(
    task: &TaskHandle,
    q: &WaitQueue,
    nonblock: bool,
    timeout: Option<std::time::Duration>,
    mut ready: impl FnMut() -> Result<Option<T>, Errno>,
) -> Result<T, Errno> {
    if let Some(v) = ready()? {
        return Ok(v);
    }
    if nonblock {
        return Err(Errno::EAGAIN);
    }
    let deadline = timeout.map(|d| std::time::Instant::now() + d);
    let w = &task.waiter;
    let _reg = q.register(w);
    loop {
        let seq = w.seq();
        if let Some(v) = ready()? {
            return Ok(v);
        }
        if task.interrupted() {
            return Err(if timeout.is_some() {
                Errno::EINTR
            } else {
                Errno::ERESTARTSYS
            });
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(Errno::EAGAIN);
        }
        w.wait(seq, deadline);
    }
}

/// Operations of an open file; defaults fit a file that supports nothing.
pub trait FileOps: Send + Sync {
    fn read(&self, _io: &Io<'_>, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _io: &Io<'_>, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// Whether reads and writes use the file offset (false: pipes, sockets, ttys).
    fn seekable(&self) -> bool {
        true
    }
    /// Whether a write failing with EPIPE raises SIGPIPE (false for datagram and seqpacket
    /// sockets, which Linux never signals).
    fn sigpipe(&self) -> bool {
        true
    }
    /// Current readiness (POLL* bits).
    fn poll(&self) -> u32 {
        POLLIN | POLLOUT
    }
    /// Queue notified when readiness may have changed.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    fn ioctl(&self, _t: &mut crate::kernel::Task, _cmd: u32, _arg: u64) -> SysResult {
        Err(Errno::ENOTTY)
    }
    /// Source for mmap of this file.
    fn map_source(&self) -> Option<Arc<dyn MapSource>> {
        None
    }
    fn fsync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// Size for SEEK_END (files whose inode does not know it).
    fn size(&self) -> Option<u64> {
        None
    }
    /// The host fd behind the file, if any (stdio ttys).
    fn is_tty(&self) -> bool {
        false
    }
    /// Called when the last fd referring to this description closes.
    fn release(&self) {}
    /// The pipe behind a pipe end or fifo (F_GETPIPE_SZ).
    fn pipe(&self) -> Option<&Arc<crate::vfs::fs::pipe::Pipe>> {
        None
    }
    /// The process a pidfd refers to.
    fn pidfd(&self) -> Option<i32> {
        None
    }
    /// The epoll instance, for epoll_ctl/epoll_wait.
    fn epoll(&self) -> Option<&crate::vfs::fs::epoll::Epoll> {
        None
    }
    /// Type-specific lines of /proc/PID/fdinfo/N (e.g. `eventfd-count:`).
    fn fdinfo(&self) -> String {
        String::new()
    }
    /// The concrete type, for the syscalls of special files (timerfd_settime, signalfd).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// An open file description.
pub struct File {
    pub ops: Arc<dyn FileOps>,
    pub inode: Option<InodeRef>,
    pub path: Option<VPath>,
    flags: AtomicU32,
    pub pos: Mutex<u64>,
    /// Directory listing snapshot taken at the first getdents.
    pub dir: Mutex<Option<Vec<DirEntry>>>,
    /// (dev, ino) of a regular file this description may write (for ETXTBSY).
    writer: Mutex<Option<(u64, u64)>>,
}

type WriterCounts = std::collections::HashMap<(u64, u64), usize>;

/// Open-for-write counts by (dev, ino): executing such a file fails with ETXTBSY.
static WRITERS: Mutex<Option<WriterCounts>> = Mutex::new(None);

/// Whether some open description may write the file `st` describes.
pub fn open_for_write(st: &crate::abi::Stat) -> bool {
    let w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    w.as_ref()
        .is_some_and(|m| m.get(&(st.dev, st.ino)).is_some_and(|&n| n > 0))
}

impl File {
    pub fn new(
        ops: Arc<dyn FileOps>,
        inode: Option<InodeRef>,
        path: Option<VPath>,
        flags: u32,
    ) -> Arc<File> {
        Arc::new(File {
            ops,
            inode,
            path,
            flags: AtomicU32::new(flags & !O_CLOEXEC),
            pos: Mutex::new(0),
            dir: Mutex::new(None),
            writer: Mutex::new(None),
        })
    }
    /// Counts this description as a writer of the file `st` describes.
    pub fn track_writer(&self, st: &crate::abi::Stat) {
        let key = (st.dev, st.ino);
        let mut w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        *w.get_or_insert_with(Default::default)
            .entry(key)
            .or_insert(0) += 1;
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }
    /// F_SETFL: only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME change.
    pub fn set_status_flags(&self, f: u32) {
        let keep = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
        let old = self.flags();
        self.flags
            .store((old & !keep) | (f & keep), Ordering::Relaxed);
    }
    pub fn readable(&self) -> bool {
        let a = self.flags() & O_ACCMODE;
        self.flags() & O_PATH == 0 && (a == O_RDONLY || a == O_RDWR)
    }
    pub fn writable(&self) -> bool {
        let a = self.flags() & O_ACCMODE;
        self.flags() & O_PATH == 0 && (a == O_WRONLY || a == O_RDWR)
    }
    pub fn nonblock(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }
}

impl Drop for File {
    fn drop(&mut self) {
        self.ops.release();
        if let Some(key) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let mut w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = w.as_mut() {
                if let Some(n) = m.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&key);
                    }
                }
            }
        }
    }
}
