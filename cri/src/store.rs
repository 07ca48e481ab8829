//! The image store under the root directory: content-addressed blobs, unpacked layers shared by
//! every image that has them, and one JSON record per image.
//! May touch: only `<root>/blobs`, `<root>/layers`, `<root>/images` and `<root>/tmp`.
//! Never: makes a blob visible under a digest its content does not have, or a layer directory
//! whose tar was refused or whose diff ID differs; both are built in a temporary place and
//! renamed in only when complete.
//!
//! Layout: `<root>/blobs/sha256/<hex>`, `<root>/layers/<diff-id hex>/`, `<root>/images.redb`
//! (the image records, one redb transaction per change: a tag moving from one image to another
//! is one commit), `<root>/tmp/` for work in progress (emptied on open). Records an older
//! version left as `<root>/images/<hex>.json` are moved into the database on open.
//!
//! Locks: `locks` (the map) is held only to look up a key's lock; a key lock (`blob:<digest>`,
//! `layer:<diff id>`, `images`) is held for the whole download, unpack or record update, and a
//! thread holds at most one key lock at a time. `gc` comes before all of them: a pull holds it
//! shared for its whole length, [`Store::collect_garbage`] exclusively.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hashing};
use crate::layer::{self, LayerError};
use crate::oci::Compression;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob written as {expected} has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("cannot unpack layer {diff_id}")]
    Layer {
        diff_id: Digest,
        #[source]
        source: LayerError,
    },
    #[error("cannot apply layer {diff_id} to {rootfs}")]
    Apply {
        diff_id: Digest,
        rootfs: PathBuf,
        #[source]
        source: LayerError,
    },
    #[error("image record {path} is malformed")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("image database: cannot {what}")]
    Db {
        what: &'static str,
        #[source]
        source: redb::Error,
    },
    #[error("layer {0} is not unpacked")]
    MissingLayer(Digest),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// One layer of an image, as its manifest and config describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

/// An image as the store keeps it; its ID is its config digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// `registry/repository:tag` names that point at this image.
    pub repo_tags: Vec<String>,
    /// `registry/repository@sha256:...` of the manifest (or index) pulled.
    pub repo_digests: Vec<String>,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<LayerRecord>,
}

impl ImageRecord {
    /// The compressed size of all layers, as the registry served them.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The on-disk image store. Thread-safe; share it with `Arc`.
pub struct Store {
    root: PathBuf,
    /// `<root>/images.redb`: the image records.
    db: redb::Database,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Pulls hold it shared from their first blob to their record; garbage collection holds it
    /// exclusively, so it never deletes what a pull stored but has not recorded yet.
    gc: RwLock<()>,
    blobs_written: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Image id (hex) → the record as JSON.
const IMAGES: redb::TableDefinition<'static, &'static str, &'static [u8]> =
    redb::TableDefinition::new("images");

fn db_err<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Db {
        what,
        source: e.into(),
    }
}

fn encode(rec: &ImageRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(rec).map_err(|source| StoreError::Record {
        path: PathBuf::from(rec.id.hex()),
        source,
    })
}

/// What garbage collection freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
}

impl Store {
    /// Opens (creating if needed) the store under `root`, throwing away unfinished work.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for d in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        // Unpacked layers keep their modes (setuid files too): only the owner may reach them.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
                .map_err(io_err("restrict", &root))?;
        }
        let tmp = root.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let p = e.map_err(io_err("list", &tmp))?.path();
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
        let db_path = root.join("images.redb");
        let db = redb::Database::create(&db_path).map_err(db_err("open"))?;
        {
            let txn = db.begin_write().map_err(db_err("begin a write"))?;
            txn.open_table(IMAGES).map_err(db_err("open the table"))?;
            txn.commit().map_err(db_err("commit"))?;
        }
        let store = Self {
            root,
            db,
            locks: Mutex::new(HashMap::new()),
            gc: RwLock::new(()),
            blobs_written: AtomicU64::new(0),
        };
        store.import_json_records()?;
        Ok(store)
    }

    /// Moves records of the old `<root>/images/*.json` layout into the database.
    fn import_json_records(&self) -> Result<(), StoreError> {
        let dir = self.root.join("images");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for e in entries {
            let p = e.map_err(io_err("list", &dir))?.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = fs::read(&p).map_err(io_err("read", &p))?;
            let rec: ImageRecord =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Record {
                    path: p.clone(),
                    source,
                })?;
            self.put_image(rec)?;
            fs::remove_file(&p).map_err(io_err("remove", &p))?;
        }
        let _ = fs::remove_dir(&dir);
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many blobs this store object has written since it was opened.
    pub fn blobs_written(&self) -> u64 {
        self.blobs_written.load(Ordering::SeqCst)
    }

    /// Runs `f` holding the lock of `key`; callers with the same key run one at a time.
    pub fn with_lock<T>(&self, key: &str, f: impl FnOnce() -> T) -> T {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let out = {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            f()
        };
        // Forget the key's lock once nobody else holds or waits for it (the map has one
        // reference, this call the other), so the map does not grow with every digest seen.
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&lock) == 2 {
            map.remove(key);
        }
        out
    }

    fn tmp_path(&self, tag: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::SeqCst);
        self.root
            .join("tmp")
            .join(format!("{tag}-{}-{n}", std::process::id()))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Stores blob `d` unless present: `fill` writes its bytes, which must hash to `d`. Concurrent
    /// callers for one digest wait for each other, so `fill` runs once. Returns whether it ran.
    pub fn write_blob<E: From<StoreError>>(
        &self,
        d: &Digest,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.with_lock(&format!("blob:{d}"), || {
            let dest = self.blob_path(d);
            if dest.is_file() {
                return Ok(false);
            }
            let tmp = self.tmp_path(d.hex());
            let result = self.write_blob_at(d, &tmp, &dest, fill);
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result.map(|()| true)
        })
    }

    fn write_blob_at<E: From<StoreError>>(
        &self,
        d: &Digest,
        tmp: &Path,
        dest: &Path,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(io_err("create", tmp))?;
        let mut w = Hashing::new(io::BufWriter::new(file));
        fill(&mut w)?;
        let (actual, buf) = w.finish();
        if &actual != d {
            return Err(StoreError::DigestMismatch {
                expected: d.clone(),
                actual,
            }
            .into());
        }
        let file = buf.into_inner().map_err(|e| StoreError::Io {
            what: "write",
            path: tmp.to_owned(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err("sync", tmp))?;
        fs::rename(tmp, dest).map_err(io_err("rename into place", dest))?;
        self.blobs_written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Deletes blob `d` if present (a layer that was refused is not kept).
    pub fn remove_blob(&self, d: &Digest) -> Result<(), StoreError> {
        self.with_lock(&format!("blob:{d}"), || {
            let p = self.blob_path(d);
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
                    what: "remove",
                    path: p,
                    source: e,
                }),
                _ => Ok(()),
            }
        })
    }

    /// Stores `bytes` as a blob under their own digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        self.write_blob(&d, |w| {
            w.write_all(bytes).map_err(io_err("write blob", &self.root))
        })?;
        Ok(d)
    }

    /// Like [`Store::put_blob`], but tells whether the blob was new.
    pub fn put_blob_counted(&self, bytes: &[u8]) -> Result<bool, StoreError> {
        let d = Digest::of(bytes);
        self.write_blob(&d, |w| {
            w.write_all(bytes).map_err(io_err("write blob", &self.root))
        })
    }

    /// Reads a whole (small) blob back, checking its digest again.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(d);
        let mut bytes = Vec::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_err("read", &p))?;
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(StoreError::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// Unpacks blob `blob` (compressed as `compression`) as layer `diff_id`, unless it already
    /// is. The tree is built under `tmp/` and renamed in only if every entry was accepted and
    /// the content's diff ID matches.
    pub fn unpack_layer(
        &self,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
    ) -> Result<PathBuf, StoreError> {
        self.with_lock(&format!("layer:{diff_id}"), || {
            let dest = self.layer_path(diff_id);
            if dest.is_dir() {
                return Ok(dest);
            }
            let tmp = self.tmp_path(&format!("layer-{}", diff_id.hex()));
            let result = self.unpack_layer_at(blob, compression, diff_id, &tmp, &dest);
            if result.is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
            result.map(|()| dest)
        })
    }

    fn unpack_layer_at(
        &self,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
        tmp: &Path,
        dest: &Path,
    ) -> Result<(), StoreError> {
        fs::create_dir(tmp).map_err(io_err("create", tmp))?;
        let src = self.blob_path(blob);
        let f = File::open(&src).map_err(io_err("open", &src))?;
        let layer_err = |source| StoreError::Layer {
            diff_id: diff_id.clone(),
            source,
        };
        let actual = layer::unpack(io::BufReader::new(f), compression, tmp).map_err(layer_err)?;
        if &actual != diff_id {
            return Err(layer_err(LayerError::DiffId {
                expected: diff_id.clone(),
                actual,
            }));
        }
        fs::rename(tmp, dest).map_err(io_err("rename into place", dest))
    }

    /// Builds a flat rootfs of `image` in the empty directory `rootfs`, lowest layer first.
    pub fn materialize(&self, image: &ImageRecord, rootfs: &Path) -> Result<(), StoreError> {
        for l in &image.layers {
            let p = self.layer_path(&l.diff_id);
            if !p.is_dir() {
                return Err(StoreError::MissingLayer(l.diff_id.clone()));
            }
            layer::apply(&p, rootfs).map_err(|source| StoreError::Apply {
                diff_id: l.diff_id.clone(),
                rootfs: rootfs.to_owned(),
                source,
            })?;
        }
        Ok(())
    }

    fn read_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        use redb::{ReadableDatabase, ReadableTable};
        let txn = self.db.begin_read().map_err(db_err("begin a read"))?;
        let table = txn.open_table(IMAGES).map_err(db_err("open the table"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err("list images"))? {
            let (k, v) = row.map_err(db_err("read an image"))?;
            let rec = serde_json::from_slice(v.value()).map_err(|source| StoreError::Record {
                path: PathBuf::from(k.value()),
                source,
            })?;
            out.push(rec);
        }
        out.sort_by(|a: &ImageRecord, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Records `rec`, merging names into an existing record of the same ID; a tag moves here from
    /// any other image that had it.
    pub fn put_image(&self, rec: ImageRecord) -> Result<ImageRecord, StoreError> {
        self.with_lock("images", || {
            let mut merged = rec;
            let mut changed = Vec::new();
            for mut other in self.read_records()? {
                if other.id == merged.id {
                    for t in other.repo_tags.drain(..) {
                        if !merged.repo_tags.contains(&t) {
                            merged.repo_tags.push(t);
                        }
                    }
                    for d in other.repo_digests.drain(..) {
                        if !merged.repo_digests.contains(&d) {
                            merged.repo_digests.push(d);
                        }
                    }
                    continue;
                }
                let before = other.repo_tags.len();
                other.repo_tags.retain(|t| !merged.repo_tags.contains(t));
                if other.repo_tags.len() != before {
                    changed.push(other);
                }
            }
            changed.push(merged.clone());
            let txn = self.db.begin_write().map_err(db_err("begin a write"))?;
            {
                let mut table = txn.open_table(IMAGES).map_err(db_err("open the table"))?;
                for r in &changed {
                    table
                        .insert(r.id.hex(), encode(r)?.as_slice())
                        .map_err(db_err("store an image"))?;
                }
            }
            txn.commit().map_err(db_err("commit"))?;
            Ok(merged)
        })
    }

    /// All image records, by ID.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.read_records()
    }

    /// Finds an image by ID (`sha256:...` or its hex), by `name:tag` or by `name@digest`.
    pub fn image(&self, key: &str) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.read_records()?.into_iter().find(|r| {
            r.id.to_string() == key
                || r.id.hex() == key
                || r.repo_tags.iter().any(|t| t == key)
                || r.repo_digests.iter().any(|d| d == key)
        }))
    }

    /// Held (shared) by a pull from its first blob to its image record.
    pub fn pull_guard(&self) -> RwLockReadGuard<'_, ()> {
        self.gc.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes every blob and unpacked layer that no image record refers to (a layer that a
    /// container's root has mounted stays).
    pub fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        let _exclusive = self.gc.write().unwrap_or_else(|e| e.into_inner());
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for rec in self.read_records()? {
            blobs.insert(rec.manifest_digest.hex().to_owned());
            blobs.insert(rec.config_digest.hex().to_owned());
            for d in &rec.repo_digests {
                if let Some((_, hex)) = d.rsplit_once("@sha256:") {
                    blobs.insert(hex.to_owned());
                }
            }
            for l in &rec.layers {
                blobs.insert(l.digest.hex().to_owned());
                layers.insert(l.diff_id.hex().to_owned());
            }
        }
        let mut report = GcReport::default();
        let blob_dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blob_dir).map_err(io_err("list", &blob_dir))? {
            let e = e.map_err(io_err("list", &blob_dir))?;
            if !blobs.contains(e.file_name().to_string_lossy().as_ref()) {
                fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
                report.blobs_removed += 1;
            }
        }
        let layer_dir = self.root.join("layers");
        // A layer under a container's root (an overlay mount) stays while that container
        // does, even after its image record went.
        let mounted = mounted_layers(&layer_dir);
        for e in fs::read_dir(&layer_dir).map_err(io_err("list", &layer_dir))? {
            let e = e.map_err(io_err("list", &layer_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !layers.contains(&name) && !mounted.contains(&name) {
                // Renamed out first, so a crash never leaves a half-deleted layer in place.
                let doomed = self.tmp_path("gc");
                fs::rename(e.path(), &doomed).map_err(io_err("move away", &e.path()))?;
                fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?;
                report.layers_removed += 1;
            }
        }
        Ok(report)
    }

    /// Removes the record of image `id`; its blobs and layers stay until
    /// [`Store::collect_garbage`].
    pub fn remove_image(&self, id: &Digest) -> Result<bool, StoreError> {
        self.with_lock("images", || {
            let txn = self.db.begin_write().map_err(db_err("begin a write"))?;
            let removed = {
                let mut table = txn.open_table(IMAGES).map_err(db_err("open the table"))?;
                let old = table.remove(id.hex()).map_err(db_err("remove an image"))?;
                old.is_some()
            };
            txn.commit().map_err(db_err("commit"))?;
            Ok(removed)
        })
    }
}

/// The names of the directories in `layer_dir` that an overlay mount of this host uses as a
/// lower layer (from /proc/self/mountinfo).
fn mounted_layers(layer_dir: &Path) -> HashSet<String> {
    let prefix = format!("{}/", layer_dir.display());
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = HashSet::new();
    for line in text.lines() {
        let Some((_, super_opts)) = line.split_once(" - overlay ") else {
            continue;
        };
        for opt in super_opts.split([',', ' ']) {
            // `lowerdir=a:b:c` (mount(2)), or one `lowerdir+=a` per layer (the mount API).
            let dirs: Vec<&str> = if let Some(one) = opt.strip_prefix("lowerdir+=") {
                vec![one]
            } else if let Some(list) = opt.strip_prefix("lowerdir=") {
                list.split(':').collect()
            } else {
                continue;
            };
            for dir in dirs {
                if let Some(name) = dir.strip_prefix(&prefix) {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &[u8], tags: &[&str]) -> ImageRecord {
        let d = Digest::of(id);
        ImageRecord {
            id: d.clone(),
            repo_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            repo_digests: vec![],
            manifest_digest: d.clone(),
            config_digest: d,
            layers: vec![],
        }
    }

    #[test]
    fn a_tag_moves_to_the_newest_image_that_claims_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        s.put_image(rec(b"a", &["x:1", "x:2"])).expect("put a");
        s.put_image(rec(b"b", &["x:1"])).expect("put b");
        let a = s
            .image(&Digest::of(b"a").to_string())
            .expect("read")
            .expect("a exists");
        assert_eq!(a.repo_tags, vec!["x:2".to_owned()]);
        let by_tag = s.image("x:1").expect("read").expect("tag exists");
        assert_eq!(by_tag.id, Digest::of(b"b"));
        assert!(s.remove_image(&Digest::of(b"b")).expect("remove"));
        assert!(s.image("x:1").expect("read").is_none());
        assert!(!s.remove_image(&Digest::of(b"b")).expect("second remove"));
    }

    #[test]
    fn blob_with_wrong_content_is_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let d = Digest::of(b"right");
        let r = s.write_blob(&d, |w| {
            w.write_all(b"wrong")
                .map_err(io_err("write", Path::new("x")))
        });
        assert!(matches!(r, Err(StoreError::DigestMismatch { .. })));
        assert!(!s.has_blob(&d));
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0
        );
        assert_eq!(s.put_blob(b"right").expect("put"), d);
        assert_eq!(s.read_blob(&d).expect("read"), b"right");
    }

    fn tar_with_file(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(name).expect("path");
        h.set_cksum();
        b.append(&h, data).expect("append");
        b.into_inner().expect("tar")
    }

    #[test]
    fn layer_with_wrong_diff_id_is_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let tar = tar_with_file("f", b"data");
        let blob = s.put_blob(&tar).expect("put");
        let wrong = Digest::of(b"not this layer");
        let r = s.unpack_layer(&blob, Compression::None, &wrong);
        assert!(matches!(
            r,
            Err(StoreError::Layer {
                source: LayerError::DiffId { .. },
                ..
            })
        ));
        assert_eq!(
            fs::read_dir(dir.path().join("layers"))
                .expect("layers")
                .count(),
            0
        );
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0
        );
        let p = s
            .unpack_layer(&blob, Compression::None, &blob)
            .expect("right diff id");
        assert_eq!(fs::read(p.join("f")).expect("unpacked"), b"data");
    }

    #[test]
    fn whiteout_of_parent_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let tar = tar_with_file("a/.wh...", b"");
        let blob = s.put_blob(&tar).expect("put");
        let r = s.unpack_layer(&blob, Compression::None, &blob);
        assert!(
            matches!(
                r,
                Err(StoreError::Layer {
                    source: LayerError::Unsafe { .. },
                    ..
                })
            ),
            "{r:?}"
        );
    }
}
