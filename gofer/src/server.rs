//! The gofer's request loop: one [`Request`] in, one [`Reply`] out, until the sentry hangs up.
//!
//! Every path the sentry sends is first checked to be plain components (no absolute path, no
//! empty, `.` or `..` component, no NUL), then resolved with openat2 beneath the root fd with
//! RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: a symlink in the middle of a path is ELOOP, one at the
//! end is opened as itself (O_PATH | O_NOFOLLOW), never followed. A new or removed name is acted
//! on with *at() calls relative to its resolved parent. Failures go back as the host's errno.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libc::{c_int, mode_t};
use moat_proto::gofer::{setattr, Attr, Dirent, FsStat, Reply, Request};
use moat_proto::wire::Message;
use tracing::{debug, warn};

use crate::channel::{Channel, ChannelError, MAX_PACKET};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot receive request")]
    Recv(#[source] ChannelError),
    #[error("cannot send reply")]
    Send(#[source] ChannelError),
}

/// A host errno, sent back to the sentry unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Errno(c_int);

impl From<io::Error> for Errno {
    /// The host's errno passes through as it is; an error without one (none of the calls
    /// here make such) would be EIO.
    fn from(e: io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

const EINVAL: Errno = Errno(libc::EINVAL);

/// A reply and the fd that travels with it (`Opened` only).
type Answer = Result<(Reply, Option<OwnedFd>), Errno>;

/// How every sentry path is resolved beneath the root.
const RESOLVE: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
/// Open flags the sentry may pass to `Open`; the gofer adds O_NOFOLLOW, O_CLOEXEC, O_NOCTTY.
const OPEN_FLAGS: c_int =
    libc::O_ACCMODE | libc::O_TRUNC | libc::O_DIRECTORY | libc::O_APPEND | libc::O_NONBLOCK;
/// Open flags the sentry may pass to `Create`; the gofer adds O_CREAT | O_EXCL and the above.
const CREATE_FLAGS: c_int = libc::O_ACCMODE | libc::O_TRUNC | libc::O_APPEND | libc::O_NONBLOCK;
const SETATTR_MASK: u32 = setattr::MODE
    | setattr::UID
    | setattr::GID
    | setattr::SIZE
    | setattr::ATIME
    | setattr::MTIME
    | setattr::ATIME_NOW
    | setattr::MTIME_NOW;
const RENAME_FLAGS: u32 = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
/// Acts on the O_PATH fd itself, even if it is a symlink.
const SELF: c_int = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
/// Symlink targets are at most PATH_MAX - 1 bytes, so a read of this size is never cut short.
const PATH_MAX: usize = 4096;

/// Serves `chan` from `root` (a directory fd) until the sentry closes its end. A request
/// that cannot be decoded gets EINVAL; only a failing socket ends the loop with an error.
pub fn serve(root: OwnedFd, chan: &Channel, read_only: bool) -> Result<(), ServerError> {
    let server = Server { root, read_only };
    loop {
        let answer = match chan.recv() {
            // Fds the sentry attached to a request are closed unread.
            Ok((buf, _fds)) => match Request::decode(&buf) {
                Ok(req) => {
                    let answer = server.handle(&req);
                    debug!(?req, err = answer.as_ref().err().map(|e| e.0), "request");
                    answer
                }
                Err(error) => {
                    warn!(%error, "malformed request");
                    Err(EINVAL)
                }
            },
            Err(ChannelError::Closed) => return Ok(()),
            Err(ChannelError::Truncated) => {
                warn!("oversized request");
                Err(EINVAL)
            }
            Err(e) => return Err(ServerError::Recv(e)),
        };
        send(chan, answer)?;
    }
}

/// Sends one answer; a reply too large for one packet becomes EOVERFLOW.
fn send(chan: &Channel, answer: Answer) -> Result<(), ServerError> {
    let (reply, fd) = answer.unwrap_or_else(|e| (Reply::Err(e.0.unsigned_abs()), None));
    let overflow = || Reply::Err(libc::EOVERFLOW.unsigned_abs()).encode();
    let mut bytes = reply.encode();
    if bytes.len() > MAX_PACKET {
        bytes = overflow();
    }
    let fds: Vec<BorrowedFd<'_>> = fd.iter().map(AsFd::as_fd).collect();
    match chan.send(&bytes, &fds) {
        Err(ChannelError::Send(e)) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
            chan.send(&overflow(), &[])
        }
        r => r,
    }
    .map_err(ServerError::Send)
}

struct Server {
    root: OwnedFd,
    read_only: bool,
}

impl Server {
    fn handle(&self, req: &Request) -> Answer {
        use Request as R;
        let reads = matches!(
            req,
            R::Stat { .. }
                | R::ReadDir { .. }
                | R::Open { .. }
                | R::Readlink { .. }
                | R::StatFs { .. }
        );
        // `Open` checks its own flags.
        if self.read_only && !reads {
            return Err(Errno(libc::EROFS));
        }
        let attr = |a: Result<Attr, Errno>| a.map(|a| (Reply::Attr(a), None));
        match req {
            R::Stat { path } => attr(stat(self.lookup(path)?.as_fd(), c"", SELF)),
            R::ReadDir { path } => Ok((Reply::Dirents(self.read_dir(path)?), None)),
            R::Open { path, flags } => self.open(path, *flags),
            R::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                let flags = check_flags(*flags, CREATE_FLAGS)?;
                let flags = flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY;
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                let fd = open_beneath(dir.as_fd(), &name, flags, *mode & 0o7777)?;
                set_owner(fd.as_fd(), c"", *uid, *gid, *mode)?;
                opened(fd)
            }
            R::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                sys::mkdirat(dir.as_fd(), &name, *mode & 0o7777)?;
                set_owner(dir.as_fd(), &name, *uid, *gid, *mode)?;
                attr(stat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW))
            }
            R::Mknod {
                dir,
                name,
                mode,
                rdev: _,
                uid,
                gid,
            } => {
                // The sentry has its own /dev: no device nodes on the host.
                let kind = match *mode & libc::S_IFMT {
                    0 => libc::S_IFREG,
                    k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK) => k,
                    libc::S_IFCHR | libc::S_IFBLK => return Err(Errno(libc::EPERM)),
                    _ => return Err(EINVAL),
                };
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                sys::mknodat(dir.as_fd(), &name, kind | (*mode & 0o7777), 0)?;
                set_owner(dir.as_fd(), &name, *uid, *gid, *mode)?;
                attr(stat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW))
            }
            R::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                if target.is_empty() {
                    return Err(Errno(libc::ENOENT));
                }
                let target = CString::new(target.as_slice()).map_err(|_| EINVAL)?;
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                sys::symlinkat(&target, dir.as_fd(), &name)?;
                set_owner(dir.as_fd(), &name, *uid, *gid, 0)?;
                attr(stat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW))
            }
            R::Link { old, dir, name } => {
                let (old_dir, old_name) = split_last(old);
                let (old_dir, old_name) = (self.dir(old_dir)?, check_name(old_name)?);
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                // Flags 0: a symlink `old` is linked itself, not followed.
                sys::linkat(old_dir.as_fd(), &old_name, dir.as_fd(), &name, 0)?;
                attr(stat(dir.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW))
            }
            R::Unlink { dir, name, rmdir } => {
                let (dir, name) = (self.dir(dir)?, check_name(name)?);
                let flags = if *rmdir { libc::AT_REMOVEDIR } else { 0 };
                sys::unlinkat(dir.as_fd(), &name, flags)?;
                Ok((Reply::Ok, None))
            }
            R::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                if flags & !RENAME_FLAGS != 0 {
                    return Err(EINVAL);
                }
                let (od, on) = (self.dir(old_dir)?, check_name(old_name)?);
                let (nd, nn) = (self.dir(new_dir)?, check_name(new_name)?);
                sys::renameat2(od.as_fd(), &on, nd.as_fd(), &nn, *flags)?;
                Ok((Reply::Ok, None))
            }
            R::Readlink { path } => {
                let mut buf = vec![0u8; PATH_MAX];
                let n = match sys::readlinkat(self.lookup(path)?.as_fd(), c"", &mut buf) {
                    // On an empty path that is not a symlink; readlink(2) says EINVAL.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(EINVAL),
                    r => r?,
                };
                buf.truncate(n);
                Ok((Reply::Bytes(buf), None))
            }
            R::SetAttr {
                path,
                mask,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            } => {
                let times = (*atime, *mtime);
                attr(self.set_attr(path, *mask, *mode, (*uid, *gid), *size, times))
            }
            R::StatFs { path } => {
                let s = sys::fstatfs(self.lookup(path)?.as_fd())?;
                let u = |v: i64| u64::try_from(v).unwrap_or_default();
                Ok((
                    Reply::FsStat(FsStat {
                        kind: u(s.f_type),
                        bsize: u(s.f_bsize),
                        blocks: s.f_blocks,
                        bfree: s.f_bfree,
                        bavail: s.f_bavail,
                        files: s.f_files,
                        ffree: s.f_ffree,
                        namelen: u(s.f_namelen),
                    }),
                    None,
                ))
            }
        }
    }

    /// Opens checked `path` beneath the root, never following a symlink.
    fn open_path(&self, path: &[u8], flags: c_int) -> Result<OwnedFd, Errno> {
        open_beneath(self.root.as_fd(), &check_path(path)?, flags, 0)
    }

    /// An O_PATH fd of `path` itself (a symlink there is not followed).
    fn lookup(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_path(path, libc::O_PATH)
    }

    /// An O_PATH fd of directory `path`, the parent of a name being created or removed.
    fn dir(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_path(path, libc::O_PATH | libc::O_DIRECTORY)
    }

    fn read_dir(&self, path: &[u8]) -> Result<Vec<Dirent>, Errno> {
        let dir = self.open_path(path, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut buf = vec![0u8; 64 << 10];
        let mut out = Vec::new();
        loop {
            let n = sys::getdents64(dir.as_fd(), &mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            parse_dirents(buf.get(..n).unwrap_or_default(), &mut out);
        }
    }

    fn open(&self, path: &[u8], flags: u32) -> Answer {
        let flags = check_flags(flags, OPEN_FLAGS)?;
        if self.read_only
            && (flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0)
        {
            return Err(Errno(libc::EROFS));
        }
        // Check the type before opening: opening a device or a FIFO can act or block.
        let extra = match stat(self.lookup(path)?.as_fd(), c"", SELF)?.mode & libc::S_IFMT {
            libc::S_IFLNK => return Err(Errno(libc::ELOOP)),
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno(libc::EACCES)),
            // The gofer must never wait for a FIFO's other end; the sentry may clear it.
            libc::S_IFIFO => libc::O_NONBLOCK,
            _ => 0,
        };
        opened(self.open_path(path, flags | extra | libc::O_NOCTTY)?)
    }

    fn set_attr(
        &self,
        path: &[u8],
        mask: u32,
        mode: u32,
        (uid, gid): (u32, u32),
        size: u64,
        (atime, mtime): ((i64, u64), (i64, u64)),
    ) -> Result<Attr, Errno> {
        if mask & !SETATTR_MASK != 0 {
            return Err(EINVAL);
        }
        let fd = self.lookup(path)?;
        let here = fd.as_fd();
        // Size first and mode after owner: truncation sets mtime, chown clears set-id bits.
        if mask & setattr::SIZE != 0 {
            match stat(here, c"", SELF)?.mode & libc::S_IFMT {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Errno(libc::EISDIR)),
                _ => return Err(EINVAL),
            }
            let len = i64::try_from(size).map_err(|_| Errno(libc::EFBIG))?;
            let file = self.open_path(path, libc::O_WRONLY | libc::O_NONBLOCK)?;
            sys::ftruncate(file.as_fd(), len)?;
        }
        if mask & (setattr::UID | setattr::GID) != 0 {
            // u32::MAX (-1) leaves the id as it is.
            let pick = |bit, id| if mask & bit != 0 { id } else { u32::MAX };
            let (uid, gid) = (pick(setattr::UID, uid), pick(setattr::GID, gid));
            sys::fchownat(here, c"", uid, gid, SELF)?;
        }
        if mask & setattr::MODE != 0 {
            sys::fchmodat2(here, c"", mode & 0o7777, SELF)?;
        }
        if mask & (setattr::ATIME | setattr::MTIME) != 0 {
            let times = [
                timespec(mask, setattr::ATIME, setattr::ATIME_NOW, atime)?,
                timespec(mask, setattr::MTIME, setattr::MTIME_NOW, mtime)?,
            ];
            sys::utimensat(here, c"", &times, SELF)?;
        }
        stat(here, c"", SELF)
    }
}

/// `Opened` with the attributes of the fd just opened; refuses a device swapped in since the
/// type check.
fn opened(fd: OwnedFd) -> Answer {
    let attr = stat(fd.as_fd(), c"", SELF)?;
    if matches!(attr.mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK) {
        return Err(Errno(libc::EACCES));
    }
    Ok((Reply::Opened(attr), Some(fd)))
}

/// openat2 beneath `dir` without following any symlink, close-on-exec.
fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: c_int,
    mode: mode_t,
) -> Result<OwnedFd, Errno> {
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    Ok(sys::openat2(dir, path, flags, mode, RESOLVE)?)
}

/// Gives a new `name` in `dir` to `uid`/`gid` (EPERM, as in a user namespace that lacks
/// them, is ignored) and puts back the set-id bits of `mode` that the chown cleared.
fn set_owner(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32, mode: u32) -> Result<(), Errno> {
    match sys::fchownat(dir, name, uid, gid, SELF) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        r => r?,
    }
    if mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
        sys::fchmodat2(dir, name, mode & 0o7777, SELF)?;
    }
    Ok(())
}

fn stat(dir: BorrowedFd<'_>, path: &CStr, flags: c_int) -> Result<Attr, Errno> {
    let st = sys::fstatat(dir, path, flags)?;
    let u = |v: i64| u64::try_from(v).unwrap_or_default();
    Ok(Attr {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: u(st.st_size),
        blksize: u(st.st_blksize),
        blocks: u(st.st_blocks),
        atime: (st.st_atime, u(st.st_atime_nsec)),
        mtime: (st.st_mtime, u(st.st_mtime_nsec)),
        ctime: (st.st_ctime, u(st.st_ctime_nsec)),
    })
}

/// One utimensat time: the given one, UTIME_NOW, or UTIME_OMIT when `set` is not in `mask`.
fn timespec(
    mask: u32,
    set: u32,
    now: u32,
    (sec, nsec): (i64, u64),
) -> Result<libc::timespec, Errno> {
    let tv_nsec = match (mask & set != 0, mask & now != 0) {
        (false, _) => libc::UTIME_OMIT,
        (true, true) => libc::UTIME_NOW,
        (true, false) => i64::try_from(nsec)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .ok_or(EINVAL)?,
    };
    Ok(libc::timespec {
        tv_sec: sec,
        tv_nsec,
    })
}

/// Checks open flags against `allowed`; O_ACCMODE itself (3) is not an access mode.
fn check_flags(flags: u32, allowed: c_int) -> Result<c_int, Errno> {
    let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
    if flags & !allowed != 0 || flags & libc::O_ACCMODE == libc::O_ACCMODE {
        return Err(EINVAL);
    }
    Ok(flags)
}

/// Whether `c` is a plain path component: not empty, `.` or `..`, without `/` or NUL.
fn is_component(c: &[u8]) -> bool {
    !c.is_empty() && c != b"." && c != b".." && !c.iter().any(|&b| b == b'/' || b == 0)
}

/// Checks a sentry path: `""` (the root, returned as `"."`) or components joined by single
/// `/`s, with no leading or trailing `/`.
fn check_path(path: &[u8]) -> Result<CString, Errno> {
    if path.is_empty() {
        return Ok(c".".into());
    }
    if !path.split(|&b| b == b'/').all(is_component) {
        return Err(EINVAL);
    }
    CString::new(path).map_err(|_| EINVAL)
}

/// Checks a single name to create, remove or rename in a directory.
fn check_name(name: &[u8]) -> Result<CString, Errno> {
    if !is_component(name) {
        return Err(EINVAL);
    }
    CString::new(name).map_err(|_| EINVAL)
}

/// Splits `path` into its parent directory and its last component (`""` for the root).
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let mut parts = path.rsplitn(2, |&b| b == b'/');
    let name = parts.next().unwrap_or_default();
    (parts.next().unwrap_or_default(), name)
}

/// Appends the entries of a getdents64 buffer, skipping `.` and `..`. Each `linux_dirent64`
/// is: u64 ino, i64 offset, u16 record length, u8 type, NUL-terminated name.
fn parse_dirents(mut buf: &[u8], out: &mut Vec<Dirent>) {
    const HEADER: usize = 19;
    while let Some(hdr) = buf.get(..HEADER) {
        let (ino, rest) = hdr.split_at(8);
        let ino = u64::from_ne_bytes(ino.try_into().unwrap_or_default());
        let reclen = usize::from(u16::from_ne_bytes([rest[8], rest[9]]));
        let Some(rec) = buf.get(HEADER..reclen) else {
            return;
        };
        let name = rec.split(|&b| b == 0).next().unwrap_or_default();
        if name != b"." && name != b".." {
            out.push(Dirent {
                ino,
                kind: rest[10],
                name: name.to_vec(),
            });
        }
        buf = buf.get(reclen..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_plain_components_beneath_the_root() {
        for ok in [&b""[..], b"a", b"etc/passwd", b"a/b/c", b"...", b".a/b."] {
            assert!(check_path(ok).is_ok(), "{:?}", String::from_utf8_lossy(ok));
        }
        assert_eq!(check_path(b"").unwrap().as_bytes(), b".");
        for bad in [
            &b"/"[..],
            b"/etc",
            b"../x",
            b"a/../b",
            b"./a",
            b"a/.",
            b"a//b",
            b"a/",
            b"..",
            b"a\0b",
        ] {
            assert_eq!(
                check_path(bad),
                Err(EINVAL),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn names_are_single_components() {
        assert!(check_name(b"x").is_ok());
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0"] {
            assert_eq!(check_name(bad), Err(EINVAL));
        }
    }

    #[test]
    fn split_last_separates_parent_and_name() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_last(b""), (&b""[..], &b""[..]));
    }

    #[test]
    fn open_flags_outside_the_allowed_set_are_rejected() {
        assert_eq!(
            check_flags(libc::O_RDWR.unsigned_abs(), OPEN_FLAGS),
            Ok(libc::O_RDWR)
        );
        assert_eq!(check_flags(3, OPEN_FLAGS), Err(EINVAL));
        assert_eq!(
            check_flags(libc::O_CREAT.unsigned_abs(), OPEN_FLAGS),
            Err(EINVAL)
        );
        assert_eq!(check_flags(u32::MAX, OPEN_FLAGS), Err(EINVAL));
    }

    #[test]
    fn dirent_records_parse_and_truncated_ones_stop() {
        let mut buf = Vec::new();
        for (ino, name) in [(1u64, &b"."[..]), (7, b"file")] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let start = buf.len();
            buf.extend_from_slice(&ino.to_ne_bytes());
            buf.extend_from_slice(&0i64.to_ne_bytes());
            buf.extend_from_slice(&u16::try_from(reclen).unwrap().to_ne_bytes());
            buf.push(libc::DT_REG);
            buf.extend_from_slice(name);
            buf.resize(start + reclen, 0);
        }
        let mut out = Vec::new();
        parse_dirents(&buf, &mut out);
        assert_eq!(
            out,
            vec![Dirent {
                ino: 7,
                kind: libc::DT_REG,
                name: b"file".to_vec()
            }]
        );
        out.clear();
        parse_dirents(&buf[..buf.len() - 1], &mut out);
        assert!(out.is_empty());
    }
}
