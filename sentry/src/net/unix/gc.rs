//! Files in flight: the SCM_RIGHTS files a queued message holds, the collection of unix
//! sockets reachable only from such messages (a socket sent over itself, or a cycle of
//! them, which no close would ever free), and disposal of removed messages.
//!
//! A unix socket's file is in flight while some message holds it; `INFLIGHT` counts how
//! many. A collection (Linux's `unix_gc`, run when a unix socket closes or rights are
//! sent) takes as candidates the in-flight sockets with no reference but those messages,
//! keeps every candidate that some other holder reaches (a queue of a socket that is not a
//! candidate) and everything reachable from those, and empties the queues of the rest.
//!
//! Dropping a message may drop the last reference to a socket, which closes it and drops
//! its queue in turn: `dispose` does that iteratively on the calling thread, so a long
//! chain of sockets never deepens the stack.
//!
//! Locks: `COLLECTING` (try-locked only), then one socket state lock at a time; `INFLIGHT`
//! is a leaf.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::queue::Msg;
use super::UnixSocket;
use crate::net::SocketFile;
use crate::vfs::File;

/// In-flight unix socket files by description address: the file and how many queued
/// references it has.
type Inflight = HashMap<usize, (Weak<File>, usize)>;
static INFLIGHT: LazyLock<Mutex<Inflight>> = LazyLock::new(Mutex::default);
/// Held while a collection runs; a second one at the same time is skipped.
static COLLECTING: Mutex<()> = Mutex::new(());
/// Calls of `collect` since it last ran.
static TRIGGERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Messages waiting to be dropped by the outermost `dispose` of this thread.
    static DOOMED: RefCell<Vec<Msg>> = const { RefCell::new(Vec::new()) };
    static DISPOSING: Cell<bool> = const { Cell::new(false) };
}

fn inflight() -> MutexGuard<'static, Inflight> {
    INFLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The unix socket behind an open file, if it is one.
pub(super) fn unix_of(f: &File) -> Option<&UnixSocket> {
    SocketFile::of(f)
        .ok()?
        .sock
        .as_any()?
        .downcast_ref::<UnixSocket>()
}

fn key(f: &Arc<File>) -> usize {
    Arc::as_ptr(f) as usize
}

/// Counts `files` in or out of flight.
fn track(files: &[Arc<File>], add: bool) {
    if !files.iter().any(|f| unix_of(f).is_some()) {
        return;
    }
    let mut m = inflight();
    for f in files.iter().filter(|f| unix_of(f).is_some()) {
        if add {
            m.entry(key(f)).or_insert_with(|| (Arc::downgrade(f), 0)).1 += 1;
        } else if let Some(e) = m.get_mut(&key(f)) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                m.remove(&key(f));
            }
        }
    }
}

/// The SCM_RIGHTS files of a queued message, counted in flight while it holds them.
#[derive(Default)]
pub(super) struct Rights(Vec<Arc<File>>);

impl Rights {
    pub(super) fn new(files: Vec<Arc<File>>) -> Rights {
        track(&files, true);
        Rights(files)
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Hands the files to a receiver.
    pub(super) fn take(&mut self) -> Vec<Arc<File>> {
        let v = std::mem::take(&mut self.0);
        track(&v, false);
        v
    }
    /// New references for MSG_PEEK (Linux installs duplicates).
    pub(super) fn peek(&self) -> Vec<Arc<File>> {
        self.0.clone()
    }
    fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(key)
    }
}

impl Drop for Rights {
    fn drop(&mut self) {
        track(&self.0, false);
    }
}

/// Drops removed messages (and whatever sockets and files they held last) without
/// recursion: an inner call from a drop queues its messages for the outermost one.
pub(super) fn dispose(msgs: impl IntoIterator<Item = Msg>) {
    DOOMED.with(|d| d.borrow_mut().extend(msgs));
    if DISPOSING.with(|d| d.replace(true)) {
        return;
    }
    while let Some(m) = DOOMED.with(|d| d.borrow_mut().pop()) {
        drop(m);
    }
    DISPOSING.with(|d| d.set(false));
}

/// Frees the in-flight sockets that only in-flight messages of other such sockets reach.
/// A collection costs time in the number of sockets in flight: with many of them it runs
/// only every `n / 8` calls, so that closing or sending n sockets stays linear.
pub(super) fn collect() {
    if DISPOSING.with(Cell::get) {
        return;
    }
    let n = inflight().len();
    if n == 0 || TRIGGERS.fetch_add(1, Ordering::Relaxed) + 1 < n / 8 {
        return;
    }
    let Ok(guard) = COLLECTING.try_lock() else {
        return;
    };
    TRIGGERS.store(0, Ordering::Relaxed);
    let snapshot: Vec<(Arc<File>, usize)> = inflight()
        .values()
        .filter_map(|(w, n)| Some((w.upgrade()?, *n)))
        .collect();
    // Candidates: every reference but the snapshot's own is a queued one.
    let index: HashMap<usize, usize> = snapshot
        .iter()
        .enumerate()
        .filter(|(_, (f, n))| Arc::strong_count(f) == n + 1)
        .map(|(i, (f, _))| (key(f), i))
        .collect();
    if index.is_empty() {
        return;
    }
    // Which candidates each candidate's queue holds, and how often each is held so.
    let mut edges: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut held = vec![0usize; snapshot.len()];
    for &i in index.values() {
        let Some(s) = unix_of(&snapshot[i].0) else {
            continue;
        };
        let mut out = Vec::new();
        s.queued_rights(&mut |r: &Rights| {
            for k in r.keys() {
                if let Some(&j) = index.get(&k) {
                    out.push(j);
                    held[j] += 1;
                }
            }
        });
        edges.insert(i, out);
    }
    // Live: held from outside the candidates, or reachable from a live candidate.
    let mut live = vec![true; snapshot.len()];
    let mut stack = Vec::new();
    for &i in index.values() {
        live[i] = held[i] < snapshot[i].1;
        if live[i] {
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        for &j in edges.get(&i).map(Vec::as_slice).unwrap_or_default() {
            if !live[j] {
                live[j] = true;
                stack.push(j);
            }
        }
    }
    let mut doomed = Vec::new();
    for &i in index.values() {
        if !live[i] {
            if let Some(s) = unix_of(&snapshot[i].0) {
                s.purge(&mut doomed);
            }
        }
    }
    drop(guard);
    // The purged messages hold the last references of the garbage: dropping them closes it.
    drop(snapshot);
    dispose(doomed);
}
