//! The daemon's state store: pod sandboxes and containers in one embedded transactional database
//! under the root directory (`<root>/state.redb`, a [redb] file), so that a restart of moat-cri,
//! also after `kill -9` at any instant, finds every committed change and no part of an
//! uncommitted one.
//! May touch: only its database file (and creates the directory holding it); [`ProcessRef`] reads
//! `/proc/<pid>/stat`.
//! Never: leaves a record without its index entries or the other way round, or lets two pods (or
//! two containers of a pod) hold the same CRI name.
//!
//! [`records`] are the stored types, [`db`] the store and its transactions, [`cri`] the mapping
//! between both and CRI v1's messages.
//!
//! Every change runs in [`StateStore::write`], whose closure either returns `Ok`, and all its
//! changes commit (durably: the commit returns after fsync), or fails, and none of them happen.
//! Reads see one committed snapshot ([`StateStore::read`]); any number of them run concurrently
//! with each other and with the one writer. The store is synchronous: a commit waits for the
//! disk, so async callers run it on a blocking thread.
//!
//! Locks: none of its own; redb serializes write transactions (a second `write` waits for the
//! first to end) and lets reads proceed from their snapshot. A `write` closure must not call
//! `write` again on the same store: it would wait for itself.

pub mod cri;
pub mod db;
pub mod records;

pub use db::{
    state_path, Cascade, ContainerFilter, PodFilter, ReadTx, RemovedPod, StateStore, WriteTx,
    STATE_FILE,
};
pub use records::*;

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What kind of record an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Container,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pod => "pod sandbox",
            Self::Container => "container",
        })
    }
}

/// Why a state store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No record has this id (or, for a prefix, no id starts with it).
    #[error("{kind} {id:?} not found")]
    NotFound { kind: Kind, id: String },
    /// The CRI name is held by another record, until that one is deleted.
    #[error("{kind} name {name} is reserved by {holder}")]
    AlreadyExists {
        kind: Kind,
        name: String,
        holder: String,
    },
    /// More than one id starts with the prefix given.
    #[error("{kind} id prefix {prefix:?} is ambiguous")]
    Ambiguous { kind: Kind, prefix: String },
    /// A pod was to be deleted without its containers while it still has some.
    #[error("pod sandbox {id} still has {containers} container(s)")]
    PodHasContainers { id: String, containers: usize },
    /// An id the store cannot key a record by.
    #[error("{kind} id {id:?} is empty, longer than 255 bytes or has characters other than [A-Za-z0-9_.-]")]
    InvalidId { kind: Kind, id: String },
    /// An update changed the id of the record it was given.
    #[error("{kind} {from} cannot change its id to {to}")]
    IdChanged {
        kind: Kind,
        from: String,
        to: String,
    },
    /// A container was stored under another pod sandbox than the one it was created in.
    #[error("container {id} cannot move from pod sandbox {from} to {to}")]
    ContainerMoved {
        id: String,
        from: String,
        to: String,
    },
    /// A record or the file does not hold what the store wrote.
    #[error("{what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("cannot encode {kind} {id}")]
    Encode {
        kind: Kind,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Another process (another moat-cri on the same root) has the database open.
    #[error("state database {} is in use by another process", path.display())]
    Locked { path: PathBuf },
    #[error("state database {} has schema version {found}; this moat-cri reads up to {known}", path.display())]
    Schema {
        path: PathBuf,
        found: u64,
        known: u64,
    },
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {what} in the state database")]
    Db {
        what: &'static str,
        #[source]
        source: redb::Error,
    },
}
