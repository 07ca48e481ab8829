//! Pipes (and fifos): a bounded byte queue with reader and writer counts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::abi::Errno;
use crate::kernel::wait::WaitQueue;
use crate::vfs::file::*;
use crate::vfs::File;

pub const PIPE_BUF: usize = 4096;
const DEFAULT_CAP: usize = 65536;

struct State {
    data: VecDeque<u8>,
    cap: usize,
    readers: usize,
    writers: usize,
    /// Whether a writer ever existed (a fifo opened only for reading sees no EOF before).
    had_writer: bool,
}

/// The shared pipe buffer.
pub struct Pipe {
    st: Mutex<State>,
    pub queue: WaitQueue,
}

impl Pipe {
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            st: Mutex::new(State {
                data: VecDeque::new(),
                cap: DEFAULT_CAP,
                readers: 0,
                writers: 0,
                had_writer: false,
            }),
            queue: WaitQueue::default(),
        })
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Opens an end (fifo open or pipe creation).
    pub fn open_end(self: &Arc<Self>, write: bool) -> Arc<PipeEnd> {
        {
            let mut s = self.lock();
            if write {
                s.writers += 1;
                s.had_writer = true;
            } else {
                s.readers += 1;
            }
        }
        self.queue.wake_all();
        Arc::new(PipeEnd {
            pipe: self.clone(),
            write,
        })
    }
}

/// One end of a pipe.
pub struct PipeEnd {
    pub pipe: Arc<Pipe>,
    write: bool,
}

impl FileOps for PipeEnd {
    fn read(&self, io: &Io<'_>, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if self.write {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = io.block(&self.pipe.queue, || {
            let mut s = self.pipe.lock();
            if !s.data.is_empty() {
                let n = buf.len().min(s.data.len());
                for (i, b) in s.data.drain(..n).enumerate() {
                    buf[i] = b;
                }
                return Ok(Some(n));
            }
            if s.writers == 0 && s.had_writer {
                return Ok(Some(0));
            }
            Ok(None)
        })?;
        self.pipe.queue.notify(POLLOUT | POLLWRNORM);
        Ok(n)
    }

    fn write(&self, io: &Io<'_>, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            let r = io.block(&self.pipe.queue, || {
                let mut s = self.pipe.lock();
                if s.readers == 0 {
                    return Err(Errno::EPIPE);
                }
                let space = s.cap - s.data.len().min(s.cap);
                // Writes up to PIPE_BUF are atomic.
                let need = if rest.len() <= PIPE_BUF {
                    rest.len()
                } else {
                    1
                };
                if space < need {
                    return Ok(None);
                }
                let n = rest.len().min(space);
                s.data.extend(&rest[..n]);
                Ok(Some(n))
            });
            match r {
                Ok(n) => {
                    done += n;
                    self.pipe.queue.notify(POLLIN | POLLRDNORM);
                }
                Err(e) if done > 0 && (e == Errno::EAGAIN || e == Errno::ERESTARTSYS) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> u32 {
        let s = self.pipe.lock();
        let mut m = 0;
        if self.write {
            // Linux: writable while not full, and EPOLLERR too once the readers are gone.
            if s.cap - s.data.len().min(s.cap) >= PIPE_BUF.min(s.cap) {
                m |= POLLOUT | POLLWRNORM;
            }
            if s.readers == 0 {
                m |= POLLERR;
            }
        } else {
            if !s.data.is_empty() {
                m |= POLLIN | POLLRDNORM;
            }
            if s.writers == 0 && s.had_writer {
                m |= POLLHUP;
            }
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn ioctl(&self, t: &mut crate::kernel::Task, cmd: u32, arg: u64) -> crate::abi::SysResult {
        if cmd == 0x541b {
            // FIONREAD
            let n = self.pipe.lock().data.len() as i32;
            t.mm.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn release(&self) {
        {
            let mut s = self.pipe.lock();
            if self.write {
                s.writers -= 1;
            } else {
                s.readers -= 1;
            }
        }
        self.pipe.queue.wake_all();
    }

    fn pipe(&self) -> Option<&Arc<Pipe>> {
        Some(&self.pipe)
    }
}

/// A new anonymous pipe: (read end, write end).
pub fn new_pair(nonblock: u32) -> (Arc<File>, Arc<File>) {
    let p = Pipe::new();
    let r = p.open_end(false);
    let w = p.open_end(true);
    let inode = super::host::AnonInode::make(crate::vfs::S_IFIFO | 0o600, 0);
    (
        File::new(r, Some(inode.clone()), None, O_RDONLY | nonblock),
        File::new(w, Some(inode), None, O_WRONLY | nonblock),
    )
}

pub fn pipe_size(f: &File) -> Result<usize, Errno> {
    let p = f.ops.pipe().ok_or(Errno::EBADF)?;
    Ok(p.lock().cap)
}

pub fn set_pipe_size(f: &File, size: usize) -> Result<usize, Errno> {
    let p = f.ops.pipe().ok_or(Errno::EBADF)?;
    if size > 1 << 20 {
        return Err(Errno::EPERM);
    }
    let cap = size.max(4096).next_power_of_two();
    let mut s = p.lock();
    if s.data.len() > cap {
        return Err(Errno::EBUSY);
    }
    s.cap = cap;
    Ok(cap)
}
