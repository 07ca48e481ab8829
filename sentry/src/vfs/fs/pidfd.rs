//! pidfd: an fd referring to a process; readable once the process has exited.

use std::sync::Arc;

use crate::kernel::wait::WaitQueue;
use crate::kernel::ThreadGroup;
use crate::vfs::file::*;

pub struct PidFd {
    tg: Arc<ThreadGroup>,
}

impl PidFd {
    pub fn new(tg: Arc<ThreadGroup>) -> PidFd {
        PidFd { tg }
    }
}

impl FileOps for PidFd {
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> u32 {
        if self.tg.lock().exit.is_some() {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tg.exit_wait)
    }
    fn pidfd(&self) -> Option<i32> {
        Some(self.tg.tgid)
    }
}
