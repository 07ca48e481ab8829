//! A task's fd table (shared by threads and CLONE_FILES).

use std::sync::Arc;

use super::File;
use crate::abi::Errno;

#[derive(Clone)]
struct Slot {
    file: Arc<File>,
    cloexec: bool,
}

/// Fd number → open file description.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
}

/// RLIMIT_NOFILE default.
pub const NOFILE: usize = 1024;
/// The hard cap on fd numbers.
pub const NR_OPEN: usize = 1 << 20;

impl FdTable {
    pub fn get(&self, fd: i32) -> Option<Arc<File>> {
        let i = usize::try_from(fd).ok()?;
        self.slots.get(i)?.as_ref().map(|s| s.file.clone())
    }

    pub fn cloexec(&self, fd: i32) -> Option<bool> {
        let i = usize::try_from(fd).ok()?;
        self.slots.get(i)?.as_ref().map(|s| s.cloexec)
    }

    pub fn set_cloexec(&mut self, fd: i32, v: bool) -> Result<(), Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match self.slots.get_mut(i) {
            Some(Some(s)) => {
                s.cloexec = v;
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// Installs at the lowest free fd >= `min`, below `limit`.
    pub fn install(
        &mut self,
        file: Arc<File>,
        cloexec: bool,
        min: usize,
        limit: usize,
    ) -> Result<i32, Errno> {
        let mut i = min;
        while i < self.slots.len() && self.slots[i].is_some() {
            i += 1;
        }
        if i >= limit {
            return Err(Errno::EMFILE);
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(Slot { file, cloexec });
        Ok(i as i32)
    }

    /// Installs at exactly `fd`, closing what was there; returns the old file.
    pub fn install_at(
        &mut self,
        fd: i32,
        file: Arc<File>,
        cloexec: bool,
        limit: usize,
    ) -> Result<Option<Arc<File>>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i >= limit {
            return Err(Errno::EBADF);
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i]
            .replace(Slot { file, cloexec })
            .map(|s| s.file))
    }

    pub fn remove(&mut self, fd: i32) -> Option<Arc<File>> {
        let i = usize::try_from(fd).ok()?;
        self.slots.get_mut(i)?.take().map(|s| s.file)
    }

    /// Closes every close-on-exec fd (execve).
    pub fn close_on_exec(&mut self) {
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|s| s.cloexec) {
                *s = None;
            }
        }
    }

    /// Open fd numbers, ascending.
    pub fn fds(&self) -> Vec<i32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as i32)
            .collect()
    }

    pub fn close_range(&mut self, lo: u32, hi: u32, cloexec_only: bool) {
        let end = (hi as usize).saturating_add(1).min(self.slots.len());
        for i in (lo as usize)..end {
            if cloexec_only {
                if let Some(s) = self.slots[i].as_mut() {
                    s.cloexec = true;
                }
            } else {
                self.slots[i] = None;
            }
        }
    }
}
