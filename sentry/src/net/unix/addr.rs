//! AF_UNIX names: checking a `sockaddr_un`, binding (a socket node in the VFS for a path
//! name, a byte string for an abstract one, a generated abstract name for autobind), and
//! finding the socket a name refers to.
//!
//! The registry maps path names by the node's (dev, ino) and abstract names by socket type
//! and bytes: Linux hashes the type into an abstract name's bucket, so a stream and a
//! datagram socket may hold the same abstract name and each finds only its own type.
//!
//! Locks: `REGISTRY` is a leaf, taken after a socket's state lock or alone; the VFS is
//! never called with either held.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::UnixSocket;
use crate::abi::{Errno, Stat};
use crate::kernel::Task;
use crate::net::{Ctx, AF_UNIX};
use crate::syscalls::file::AT_FDCWD;
use crate::vfs::{Follow, NewNode, S_IFMT, S_IFSOCK};

/// `offsetof(struct sockaddr_un, sun_path)`.
const PATH_OFF: usize = 2;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: usize = 110;
/// Autobind names are five hex digits: at most this many of them.
const AUTOBIND_NAMES: u32 = 0x10_0000;

/// The name an unbound socket reports: the family alone.
pub(super) fn unnamed() -> Vec<u8> {
    (AF_UNIX as u16).to_le_bytes().to_vec()
}

/// The `sa_family` of a sockaddr, if it has one.
pub(super) fn family(addr: &[u8]) -> Option<i32> {
    let b: [u8; 2] = addr.get(..2)?.try_into().ok()?;
    Some(i32::from(u16::from_le_bytes(b)))
}

/// What a `sockaddr_un` names.
pub(super) enum Target<'a> {
    /// A filesystem path, without its terminating NUL.
    Path(&'a [u8]),
    /// An abstract name: the whole sockaddr as given (family, leading NUL, bytes).
    Abstract(&'a [u8]),
}

/// Checks a sockaddr_un as Linux's `unix_validate_addr`: longer than the family, at most
/// `sizeof(struct sockaddr_un)`, family AF_UNIX. A path ends at its first NUL.
pub(super) fn parse(addr: &[u8]) -> Result<Target<'_>, Errno> {
    if addr.len() <= PATH_OFF || addr.len() > SOCKADDR_UN || family(addr) != Some(AF_UNIX) {
        return Err(Errno::EINVAL);
    }
    let path = &addr[PATH_OFF..];
    if path[0] == 0 {
        return Ok(Target::Abstract(addr));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Ok(Target::Path(&path[..end]))
}

/// A registry key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// A path name: the socket node's (dev, ino).
    Path(u64, u64),
    /// An abstract name: socket type and the sockaddr bytes.
    Abstract(i32, Vec<u8>),
}

#[derive(Default)]
struct Registry {
    bound: HashMap<Key, Weak<UnixSocket>>,
    /// The next autobind number to try.
    next_auto: u32,
}

/// Bound sockets of the sentry (one kernel, one network namespace per sandbox).
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Whether a socket holds `key` (without making a reference that could be the last one
    /// and drop a socket under the lock).
    fn taken(&self, key: &Key) -> bool {
        self.bound.get(key).is_some_and(|w| w.strong_count() > 0)
    }
}

/// The socket bound to `key`, if it is still open.
fn lookup(key: &Key) -> Option<Arc<UnixSocket>> {
    let found = registry().bound.get(key).map(Weak::clone);
    found.and_then(|w| w.upgrade())
}

/// Forgets `key` if `s` still holds it (the socket is being closed).
pub(super) fn unregister(key: &Key, s: &UnixSocket) {
    let mut r = registry();
    if r.bound
        .get(key)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), s))
    {
        r.bound.remove(key);
    }
}

/// bind(2) of an AF_UNIX socket.
pub(super) fn bind(s: &UnixSocket, t: &Task, addr: &[u8]) -> Result<(), Errno> {
    if addr.len() == PATH_OFF && family(addr) == Some(AF_UNIX) {
        return autobind(s);
    }
    match parse(addr)? {
        Target::Abstract(name) => {
            let mut st = s.lock();
            if s.name.get().is_some() {
                return Err(Errno::EINVAL);
            }
            let key = Key::Abstract(s.kind, name.to_vec());
            {
                let mut r = registry();
                if r.taken(&key) {
                    return Err(Errno::EADDRINUSE);
                }
                r.bound.insert(key.clone(), s.me.clone());
            }
            st.key = Some(key);
            let _ = s.name.set(name.to_vec());
            Ok(())
        }
        Target::Path(path) => bind_path(s, t, path),
    }
}

/// Binds to a path: makes the socket node (mode 0777 less the umask), then takes the name;
/// a socket already bound gets EINVAL and the node is removed again, as Linux does.
fn bind_path(s: &UnixSocket, t: &Task, path: &[u8]) -> Result<(), Errno> {
    let (parent, leaf) = t.parent_at(AT_FDCWD, path)?;
    if leaf == b"." || leaf == b".." || parent.d.child(&leaf).is_ok() {
        return Err(Errno::EADDRINUSE);
    }
    if path.ends_with(b"/") {
        return Err(Errno::ENOENT);
    }
    if parent.mnt.readonly {
        return Err(Errno::EROFS);
    }
    let mode = S_IFSOCK | (0o777 & !t.fsctx().umask);
    let owner = (t.creds.euid, t.creds.egid);
    parent
        .d
        .inode
        .create(&leaf, NewNode::Node { mode, rdev: 0 }, owner)
        .map_err(|e| {
            if e == Errno::EEXIST {
                Errno::EADDRINUSE
            } else {
                e
            }
        })?;
    parent.d.forget(&leaf);
    let undo = || {
        let _ = parent.d.inode.unlink(&leaf, false);
        parent.d.forget(&leaf);
    };
    let node = match parent.d.child(&leaf).and_then(|d| d.inode.stat()) {
        Ok(st) => st,
        Err(e) => {
            undo();
            return Err(e);
        }
    };
    let mut st = s.lock();
    if s.name.get().is_some() {
        drop(st);
        undo();
        return Err(Errno::EINVAL);
    }
    let key = Key::Path(node.dev, node.ino);
    // A stale entry for the same node (a socket whose node was removed and its inode
    // number reused) gives way to the new binding.
    registry().bound.insert(key.clone(), s.me.clone());
    st.key = Some(key);
    let mut name = unnamed();
    name.extend_from_slice(path);
    name.push(0);
    let _ = s.name.set(name);
    Ok(())
}

/// Binds an unbound socket to a free abstract name "\0" + five hex digits (Linux's
/// `unix_autobind`); a bound socket keeps its name.
pub(super) fn autobind(s: &UnixSocket) -> Result<(), Errno> {
    let mut st = s.lock();
    if s.name.get().is_some() {
        return Ok(());
    }
    let mut r = registry();
    for _ in 0..AUTOBIND_NAMES {
        let n = r.next_auto;
        r.next_auto = (n + 1) % AUTOBIND_NAMES;
        let mut name = unnamed();
        name.push(0);
        name.extend_from_slice(format!("{n:05x}").as_bytes());
        let key = Key::Abstract(s.kind, name.clone());
        if r.taken(&key) {
            continue;
        }
        r.bound.insert(key.clone(), s.me.clone());
        st.key = Some(key);
        let _ = s.name.set(name);
        return Ok(());
    }
    Err(Errno::ENOSPC)
}

/// Whether the caller may write the node `st` describes (connecting needs it).
fn may_write(t: &Task, st: &Stat) -> bool {
    let c = &t.creds;
    if c.euid == 0 {
        return true;
    }
    let bits = if st.uid == c.euid {
        st.mode >> 6
    } else if st.gid == c.egid || c.groups.contains(&st.gid) {
        st.mode >> 3
    } else {
        st.mode
    };
    bits & 2 != 0
}

/// The open socket of type `kind` that `addr` names, as Linux's `unix_find_other`: a path
/// is looked up following symlinks (its errors, EACCES without write permission on the
/// node, ECONNREFUSED when it is no socket or nobody is bound to it, EPROTOTYPE when the
/// bound socket has another type); an abstract name of that type, else ECONNREFUSED.
pub(super) fn find(c: &Ctx<'_>, addr: &[u8], kind: i32) -> Result<Arc<UnixSocket>, Errno> {
    match parse(addr)? {
        Target::Abstract(name) => {
            lookup(&Key::Abstract(kind, name.to_vec())).ok_or(Errno::ECONNREFUSED)
        }
        Target::Path(path) => {
            let t = c.task.ok_or(Errno::ECONNREFUSED)?;
            let p = t.lookup_at(AT_FDCWD, path, Follow::Yes, false)?;
            let st = p.d.inode.stat()?;
            if !may_write(t, &st) {
                return Err(Errno::EACCES);
            }
            if st.mode & S_IFMT != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            let s = lookup(&Key::Path(st.dev, st.ino)).ok_or(Errno::ECONNREFUSED)?;
            if s.kind != kind {
                return Err(Errno::EPROTOTYPE);
            }
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockaddr(path: &[u8]) -> Vec<u8> {
        let mut v = unnamed();
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn path_ends_at_first_nul() {
        let a = sockaddr(b"/tmp/s\0junk");
        assert!(matches!(parse(&a), Ok(Target::Path(p)) if p == b"/tmp/s"));
    }

    #[test]
    fn path_filling_sun_path_needs_no_nul() {
        let a = sockaddr(&[b'a'; 108]);
        assert!(matches!(parse(&a), Ok(Target::Path(p)) if p.len() == 108));
    }

    #[test]
    fn abstract_name_is_the_whole_sockaddr() {
        let a = sockaddr(b"\0abc\0");
        assert!(matches!(parse(&a), Ok(Target::Abstract(n)) if n == a.as_slice()));
    }

    #[test]
    fn bad_sockaddrs_are_einval() {
        assert!(parse(&unnamed()).is_err());
        assert!(parse(&[1]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&sockaddr(&[b'a'; 109])).is_err());
        let mut inet = sockaddr(b"/x");
        inet[0] = 2;
        assert!(parse(&inet).is_err());
    }
}
