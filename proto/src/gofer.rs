//! Sentry ⇄ gofer file protocol.
//!
//! Transport: a unix SOCK_SEQPACKET socket; each [`Request`] is one packet and gets exactly
//! one [`Reply`] packet, in order. A reply to `Open` and `Create` carries the opened host file
//! descriptor as SCM_RIGHTS, so data reads and writes go straight from the sentry to the host
//! file. Paths are byte strings relative to the gofer's root: no leading `/`, components
//! separated by `/`, `""` is the root itself. The sentry walks paths and follows symlinks
//! itself (its own mount tree decides where a link leads); the gofer refuses to follow any
//! symlink and never resolves outside its root.

use crate::wire::{DecodeError, Decoder, Encoder, Message};

/// File attributes, as `struct stat` carries them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attr {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: (i64, u64),
    pub mtime: (i64, u64),
    pub ctime: (i64, u64),
}

impl Message for Attr {
    fn encode_into(&self, e: &mut Encoder) {
        e.u64(self.dev).u64(self.ino).u32(self.mode).u64(self.nlink);
        e.u32(self.uid).u32(self.gid).u64(self.rdev).u64(self.size);
        e.u64(self.blksize).u64(self.blocks);
        for t in [self.atime, self.mtime, self.ctime] {
            e.i64(t.0).u64(t.1);
        }
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut a = Attr {
            dev: d.u64()?,
            ino: d.u64()?,
            mode: d.u32()?,
            nlink: d.u64()?,
            uid: d.u32()?,
            gid: d.u32()?,
            rdev: d.u64()?,
            size: d.u64()?,
            blksize: d.u64()?,
            blocks: d.u64()?,
            ..Attr::default()
        };
        a.atime = (d.i64()?, d.u64()?);
        a.mtime = (d.i64()?, d.u64()?);
        a.ctime = (d.i64()?, d.u64()?);
        Ok(a)
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// `DT_*` type.
    pub kind: u8,
    pub name: Vec<u8>,
}

/// Filesystem statistics (`statfs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStat {
    pub kind: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
}

/// Which attributes a [`Request::SetAttr`] changes.
pub mod setattr {
    pub const MODE: u32 = 1;
    pub const UID: u32 = 2;
    pub const GID: u32 = 4;
    pub const SIZE: u32 = 8;
    pub const ATIME: u32 = 16;
    pub const MTIME: u32 = 32;
    /// With ATIME/MTIME: set to now instead of the given time.
    pub const ATIME_NOW: u32 = 64;
    pub const MTIME_NOW: u32 = 128;
}

/// A request from the sentry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// lstat of `path`.
    Stat {
        path: Vec<u8>,
    },
    /// All entries of directory `path` (without `.` and `..`).
    ReadDir {
        path: Vec<u8>,
    },
    /// Open an existing non-symlink file; `flags` are O_ACCMODE | O_TRUNC | O_DIRECTORY bits.
    /// The reply carries the fd.
    Open {
        path: Vec<u8>,
        flags: u32,
    },
    /// Create and open `name` in directory `dir` (O_CREAT|O_EXCL semantics).
    Create {
        dir: Vec<u8>,
        name: Vec<u8>,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        dir: Vec<u8>,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mknod {
        dir: Vec<u8>,
        name: Vec<u8>,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    },
    Symlink {
        dir: Vec<u8>,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// Hard link existing `old` as `name` in `dir`.
    Link {
        old: Vec<u8>,
        dir: Vec<u8>,
        name: Vec<u8>,
    },
    /// unlinkat; `rmdir` removes a directory.
    Unlink {
        dir: Vec<u8>,
        name: Vec<u8>,
        rmdir: bool,
    },
    /// renameat2 with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE).
    Rename {
        old_dir: Vec<u8>,
        old_name: Vec<u8>,
        new_dir: Vec<u8>,
        new_name: Vec<u8>,
        flags: u32,
    },
    Readlink {
        path: Vec<u8>,
    },
    SetAttr {
        path: Vec<u8>,
        mask: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        atime: (i64, u64),
        mtime: (i64, u64),
    },
    StatFs {
        path: Vec<u8>,
    },
}

/// The gofer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// A Linux errno (positive).
    Err(u32),
    Attr(Attr),
    /// The fd travels as SCM_RIGHTS with this packet.
    Opened(Attr),
    Dirents(Vec<Dirent>),
    Bytes(Vec<u8>),
    FsStat(FsStat),
}

mod tag {
    pub const STAT: u8 = 1;
    pub const READDIR: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CREATE: u8 = 4;
    pub const MKDIR: u8 = 5;
    pub const MKNOD: u8 = 6;
    pub const SYMLINK: u8 = 7;
    pub const LINK: u8 = 8;
    pub const UNLINK: u8 = 9;
    pub const RENAME: u8 = 10;
    pub const READLINK: u8 = 11;
    pub const SETATTR: u8 = 12;
    pub const STATFS: u8 = 13;

    pub const OK: u8 = 100;
    pub const ERR: u8 = 101;
    pub const ATTR: u8 = 102;
    pub const OPENED: u8 = 103;
    pub const DIRENTS: u8 = 104;
    pub const BYTES: u8 = 105;
    pub const FSSTAT: u8 = 106;
}

impl Message for Request {
    fn encode_into(&self, e: &mut Encoder) {
        match self {
            Request::Stat { path } => {
                e.u8(tag::STAT).bytes(path);
            }
            Request::ReadDir { path } => {
                e.u8(tag::READDIR).bytes(path);
            }
            Request::Open { path, flags } => {
                e.u8(tag::OPEN).bytes(path).u32(*flags);
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                e.u8(tag::CREATE)
                    .bytes(dir)
                    .bytes(name)
                    .u32(*flags)
                    .u32(*mode)
                    .u32(*uid)
                    .u32(*gid);
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                e.u8(tag::MKDIR)
                    .bytes(dir)
                    .bytes(name)
                    .u32(*mode)
                    .u32(*uid)
                    .u32(*gid);
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                e.u8(tag::MKNOD)
                    .bytes(dir)
                    .bytes(name)
                    .u32(*mode)
                    .u64(*rdev)
                    .u32(*uid)
                    .u32(*gid);
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                e.u8(tag::SYMLINK)
                    .bytes(dir)
                    .bytes(name)
                    .bytes(target)
                    .u32(*uid)
                    .u32(*gid);
            }
            Request::Link { old, dir, name } => {
                e.u8(tag::LINK).bytes(old).bytes(dir).bytes(name);
            }
            Request::Unlink { dir, name, rmdir } => {
                e.u8(tag::UNLINK).bytes(dir).bytes(name).bool(*rmdir);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                e.u8(tag::RENAME)
                    .bytes(old_dir)
                    .bytes(old_name)
                    .bytes(new_dir)
                    .bytes(new_name);
                e.u32(*flags);
            }
            Request::Readlink { path } => {
                e.u8(tag::READLINK).bytes(path);
            }
            Request::SetAttr {
                path,
                mask,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            } => {
                e.u8(tag::SETATTR)
                    .bytes(path)
                    .u32(*mask)
                    .u32(*mode)
                    .u32(*uid)
                    .u32(*gid);
                e.u64(*size)
                    .i64(atime.0)
                    .u64(atime.1)
                    .i64(mtime.0)
                    .u64(mtime.1);
            }
            Request::StatFs { path } => {
                e.u8(tag::STATFS).bytes(path);
            }
        }
    }

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            tag::STAT => Request::Stat { path: d.bytes()? },
            tag::READDIR => Request::ReadDir { path: d.bytes()? },
            tag::OPEN => Request::Open {
                path: d.bytes()?,
                flags: d.u32()?,
            },
            tag::CREATE => Request::Create {
                dir: d.bytes()?,
                name: d.bytes()?,
                flags: d.u32()?,
                mode: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            tag::MKDIR => Request::Mkdir {
                dir: d.bytes()?,
                name: d.bytes()?,
                mode: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            tag::MKNOD => Request::Mknod {
                dir: d.bytes()?,
                name: d.bytes()?,
                mode: d.u32()?,
                rdev: d.u64()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            tag::SYMLINK => Request::Symlink {
                dir: d.bytes()?,
                name: d.bytes()?,
                target: d.bytes()?,
                uid: d.u32()?,
                gid: d.u32()?,
            },
            tag::LINK => Request::Link {
                old: d.bytes()?,
                dir: d.bytes()?,
                name: d.bytes()?,
            },
            tag::UNLINK => Request::Unlink {
                dir: d.bytes()?,
                name: d.bytes()?,
                rmdir: d.bool()?,
            },
            tag::RENAME => Request::Rename {
                old_dir: d.bytes()?,
                old_name: d.bytes()?,
                new_dir: d.bytes()?,
                new_name: d.bytes()?,
                flags: d.u32()?,
            },
            tag::READLINK => Request::Readlink { path: d.bytes()? },
            tag::SETATTR => Request::SetAttr {
                path: d.bytes()?,
                mask: d.u32()?,
                mode: d.u32()?,
                uid: d.u32()?,
                gid: d.u32()?,
                size: d.u64()?,
                atime: (d.i64()?, d.u64()?),
                mtime: (d.i64()?, d.u64()?),
            },
            tag::STATFS => Request::StatFs { path: d.bytes()? },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "gofer request",
                    tag: t.into(),
                })
            }
        })
    }
}

impl Message for Reply {
    fn encode_into(&self, e: &mut Encoder) {
        match self {
            Reply::Ok => {
                e.u8(tag::OK);
            }
            Reply::Err(errno) => {
                e.u8(tag::ERR).u32(*errno);
            }
            Reply::Attr(a) => {
                e.u8(tag::ATTR);
                a.encode_into(e);
            }
            Reply::Opened(a) => {
                e.u8(tag::OPENED);
                a.encode_into(e);
            }
            Reply::Dirents(list) => {
                e.u8(tag::DIRENTS).count(list.len());
                for de in list {
                    e.u64(de.ino).u8(de.kind).bytes(&de.name);
                }
            }
            Reply::Bytes(b) => {
                e.u8(tag::BYTES).bytes(b);
            }
            Reply::FsStat(s) => {
                e.u8(tag::FSSTAT)
                    .u64(s.kind)
                    .u64(s.bsize)
                    .u64(s.blocks)
                    .u64(s.bfree);
                e.u64(s.bavail).u64(s.files).u64(s.ffree).u64(s.namelen);
            }
        }
    }

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u8()? {
            tag::OK => Reply::Ok,
            tag::ERR => Reply::Err(d.u32()?),
            tag::ATTR => Reply::Attr(Attr::decode_from(d)?),
            tag::OPENED => Reply::Opened(Attr::decode_from(d)?),
            tag::DIRENTS => {
                let n = d.count()?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(Dirent {
                        ino: d.u64()?,
                        kind: d.u8()?,
                        name: d.bytes()?,
                    });
                }
                Reply::Dirents(list)
            }
            tag::BYTES => Reply::Bytes(d.bytes()?),
            tag::FSSTAT => Reply::FsStat(FsStat {
                kind: d.u64()?,
                bsize: d.u64()?,
                blocks: d.u64()?,
                bfree: d.u64()?,
                bavail: d.u64()?,
                files: d.u64()?,
                ffree: d.u64()?,
                namelen: d.u64()?,
            }),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "gofer reply",
                    tag: t.into(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_roundtrips() {
        let reqs = vec![
            Request::Stat {
                path: b"etc/passwd".to_vec(),
            },
            Request::Open {
                path: b"bin/sh".to_vec(),
                flags: 2,
            },
            Request::Create {
                dir: b"tmp".to_vec(),
                name: b"x".to_vec(),
                flags: 2,
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            Request::Rename {
                old_dir: b"a".to_vec(),
                old_name: b"b".to_vec(),
                new_dir: b"c".to_vec(),
                new_name: b"d".to_vec(),
                flags: 1,
            },
            Request::SetAttr {
                path: b"f".to_vec(),
                mask: setattr::SIZE | setattr::MTIME,
                mode: 0,
                uid: 0,
                gid: 0,
                size: 10,
                atime: (1, 2),
                mtime: (-3, 4),
            },
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn replies_roundtrip() {
        let reps = vec![
            Reply::Err(2),
            Reply::Attr(Attr {
                ino: 5,
                mode: 0o100644,
                size: 3,
                ..Attr::default()
            }),
            Reply::Dirents(vec![Dirent {
                ino: 1,
                kind: 4,
                name: b"usr".to_vec(),
            }]),
            Reply::Bytes(b"/target".to_vec()),
        ];
        for r in reps {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn corpus_replays_without_panics() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gofer_request");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            if let Ok(r) = Request::decode(&data) {
                assert_eq!(Request::decode(&r.encode()).unwrap(), r);
            }
            let _ = Reply::decode(&data);
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn garbage_requests_never_panic() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..512usize {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed.to_le_bytes()[0]
                })
                .collect();
            let _ = Request::decode(&buf);
            let _ = Reply::decode(&buf);
        }
    }
}
