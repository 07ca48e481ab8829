//! Image layers: unpacking one tar layer (plain, gzip or zstd) into an empty directory, checking
//! its diff ID, and applying a stack of unpacked layers to a rootfs with OCI whiteouts.
//! May touch: only paths beneath the directory it was given.
//! Never: follows a symlink while writing, creates a device node (other than overlayfs's 0/0
//! whiteout), or writes through an entry path that is absolute or climbs with `..`; such a layer
//! is refused whole with [`LayerError`].
//!
//! An unpacked layer is an overlayfs layer: the tar's `.wh.NAME` becomes a whiteout (character
//! device 0/0 named NAME) and `.wh..wh..opq` the `trusted.overlay.opaque` mark of its directory,
//! so a container's rootfs is an overlay mount of the image's layer directories. [`apply`]
//! interprets the same marks when it copies layers into a flat tree.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::digest::{Digest, Hashing};
use crate::oci::Compression;

/// The prefix of a whiteout entry's file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the entry that makes its directory opaque.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Why a layer could not be unpacked or applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot start decompressing layer")]
    Decompress(#[source] io::Error),
    #[error("cannot read layer tar stream")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?} is refused: {reason}")]
    Unsafe { path: String, reason: &'static str },
    #[error("layer entry {path:?} is a device node, which images may not carry")]
    DeviceNode { path: String },
    #[error("layer entry {path:?} has unsupported type {kind}")]
    EntryType { path: String, kind: String },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer content has diff ID {actual}, the image config says {expected}")]
    DiffId { expected: Digest, actual: Digest },
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Create {
        path: path.to_owned(),
        source,
    }
}

/// Unpacks the layer stream `reader` into the existing empty directory `dest` and returns the
/// diff ID (sha256 of the uncompressed tar). On an error `dest` holds a partial tree: the caller
/// unpacks into a temporary directory and throws it away.
pub fn unpack(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
) -> Result<Digest, LayerError> {
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(reader).map_err(LayerError::Decompress)?)
        }
    };
    let mut hashing = Hashing::new(decoder);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(LayerError::Read)? {
            let mut entry = entry.map_err(LayerError::Read)?;
            unpack_entry(&mut entry, dest)?;
        }
    }
    // The end-of-archive blocks and padding belong to the diff ID too.
    io::copy(&mut hashing, &mut io::sink()).map_err(LayerError::Read)?;
    Ok(hashing.finish().0)
}

/// Checks an entry path and returns it relative, without `.` components.
fn safe_relative(raw: &[u8]) -> Result<PathBuf, LayerError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.contains(&0) {
        return Err(LayerError::Unsafe {
            path: shown(),
            reason: "path contains a NUL byte",
        });
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(LayerError::Unsafe {
                    path: shown(),
                    reason: "absolute path",
                })
            }
            Component::ParentDir => {
                return Err(LayerError::Unsafe {
                    path: shown(),
                    reason: "path climbs with `..`",
                })
            }
        }
    }
    Ok(out)
}

/// Makes sure every parent of `rel` under `root` is a real directory, creating missing ones;
/// a symlink on the way is refused, so nothing is ever written through one.
fn ensure_parents(root: &Path, rel: &Path, shown: &str) -> Result<(), LayerError> {
    let mut cur = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LayerError::Unsafe {
                    path: shown.to_owned(),
                    reason: "path passes through a symlink",
                })
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(LayerError::Unsafe {
                    path: shown.to_owned(),
                    reason: "a parent is not a directory",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(create_err(&cur))?;
            }
            Err(e) => {
                return Err(LayerError::Create {
                    path: cur,
                    source: e,
                })
            }
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (not following a symlink); a directory is kept if `keep_dir`.
fn clear(path: &Path, keep_dir: bool) -> Result<bool, LayerError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if keep_dir {
                return Ok(true);
            }
            fs::remove_dir_all(path).map_err(create_err(path))?;
        }
        Ok(_) => fs::remove_file(path).map_err(create_err(path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(LayerError::Create {
                path: path.to_owned(),
                source: e,
            })
        }
    }
    Ok(false)
}

fn set_owner_and_mode(
    path: &Path,
    uid: u64,
    gid: u64,
    mode: Option<u32>,
) -> Result<(), LayerError> {
    if let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) {
        match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            // Without CAP_CHOWN the files stay ours; a rootless store is still usable.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            r => r.map_err(create_err(path))?,
        }
    }
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(create_err(path))?;
    }
    Ok(())
}

fn unpack_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path) -> Result<(), LayerError> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let kind = entry.header().entry_type();
    let rel = safe_relative(&raw)?;
    let header = entry.header();
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let mode = header.mode().unwrap_or(0o644);
    let mtime = header.mtime().ok();
    if rel.as_os_str().is_empty() {
        // The layer's own root (`./`): nothing to create.
        return Ok(());
    }
    let file_name = rel.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
    if matches!(file_name, b".wh." | b".wh.." | b".wh...") {
        return Err(LayerError::Unsafe {
            path: shown,
            reason: "whiteout of nothing, `.` or `..`",
        });
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        ensure_parents(dest, &rel, &shown)?;
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if file_name == OPAQUE_WHITEOUT.as_bytes() {
            return crate::sys::set_opaque(&parent).map_err(create_err(&parent));
        }
        let path = parent.join(OsStr::from_bytes(hidden));
        clear(&path, false)?;
        return crate::sys::mknod_whiteout(&path).map_err(create_err(&path));
    }
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        return Err(LayerError::DeviceNode { path: shown });
    }
    ensure_parents(dest, &rel, &shown)?;
    let path = dest.join(&rel);
    match kind {
        tar::EntryType::Directory => {
            if !clear(&path, true)? {
                fs::create_dir(&path).map_err(create_err(&path))?;
            }
            set_owner_and_mode(&path, uid, gid, Some(mode))?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            clear(&path, false)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(create_err(&path))?;
            io::copy(entry, &mut f).map_err(LayerError::Read)?;
            if let Some(t) = mtime {
                let _ = f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
            }
            drop(f);
            set_owner_and_mode(&path, uid, gid, Some(mode))?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| LayerError::Unsafe {
                    path: shown.clone(),
                    reason: "symlink without a target",
                })?
                .into_owned();
            clear(&path, false)?;
            std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                .map_err(create_err(&path))?;
            set_owner_and_mode(&path, uid, gid, None)?;
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| LayerError::Unsafe {
                    path: shown.clone(),
                    reason: "hard link without a target",
                })?
                .into_owned();
            let target_rel = safe_relative(&target)?;
            ensure_parents(dest, &target_rel, &shown)?;
            let target_path = dest.join(&target_rel);
            match fs::symlink_metadata(&target_path) {
                Ok(m) if !m.is_dir() => {}
                _ => {
                    return Err(LayerError::Unsafe {
                        path: shown,
                        reason: "hard link target is not a file earlier in the layer",
                    })
                }
            }
            clear(&path, false)?;
            fs::hard_link(&target_path, &path).map_err(create_err(&path))?;
        }
        tar::EntryType::Fifo => {
            tracing::warn!(path = %shown, "skipping fifo in layer");
        }
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
        other => {
            return Err(LayerError::EntryType {
                path: shown,
                kind: format!("{other:?}"),
            })
        }
    }
    Ok(())
}

/// Whether `m` describes an overlayfs whiteout (a character device 0/0).
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Applies the unpacked layer at `layer` on top of `rootfs`: whiteouts delete what lower layers
/// put there, an opaque directory is emptied first, everything else is copied over.
pub fn apply(layer: &Path, rootfs: &Path) -> Result<(), LayerError> {
    apply_dir(layer, rootfs)
}

fn apply_dir(src: &Path, dst: &Path) -> Result<(), LayerError> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(LayerError::Read)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(LayerError::Read)?;
    names.sort();
    if crate::sys::is_opaque(src).map_err(LayerError::Read)? {
        for e in fs::read_dir(dst).map_err(LayerError::Read)? {
            let p = e.map_err(LayerError::Read)?.path();
            clear(&p, false)?;
        }
    }
    for n in &names {
        let s = src.join(n);
        let d = dst.join(n);
        let m = fs::symlink_metadata(&s).map_err(LayerError::Read)?;
        let (uid, gid) = (
            u64::from(std::os::unix::fs::MetadataExt::uid(&m)),
            u64::from(std::os::unix::fs::MetadataExt::gid(&m)),
        );
        let mode = m.permissions().mode();
        if is_whiteout(&m) {
            clear(&d, false)?;
        } else if m.is_dir() {
            if !clear(&d, true)? {
                fs::create_dir(&d).map_err(create_err(&d))?;
            }
            apply_dir(&s, &d)?;
            set_owner_and_mode(&d, uid, gid, Some(mode))?;
        } else if m.file_type().is_symlink() {
            clear(&d, false)?;
            let target = fs::read_link(&s).map_err(LayerError::Read)?;
            std::os::unix::fs::symlink(&target, &d).map_err(create_err(&d))?;
            set_owner_and_mode(&d, uid, gid, None)?;
        } else if m.is_file() {
            clear(&d, false)?;
            let mut from = File::open(&s).map_err(LayerError::Read)?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&d)
                .map_err(create_err(&d))?;
            io::copy(&mut from, &mut to).map_err(create_err(&d))?;
            if let Ok(t) = m.modified() {
                let _ = to.set_modified(t);
            }
            drop(to);
            set_owner_and_mode(&d, uid, gid, Some(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_that_escape_are_refused() {
        assert!(matches!(
            safe_relative(b"/etc/passwd"),
            Err(LayerError::Unsafe { .. })
        ));
        assert!(matches!(
            safe_relative(b"a/../../x"),
            Err(LayerError::Unsafe { .. })
        ));
        assert!(matches!(
            safe_relative(b"../x"),
            Err(LayerError::Unsafe { .. })
        ));
        assert_eq!(
            safe_relative(b"./a/./b").expect("relative"),
            PathBuf::from("a/b")
        );
        assert_eq!(safe_relative(b"./").expect("root"), PathBuf::new());
    }
}
