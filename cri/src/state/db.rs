//! The store: a redb database of six tables, and the read and write transactions over them.
//!
//! Tables (keys are `&str`):
//! - `pods`, `containers`: id → JSON record ([`PodSandbox`], [`Container`]).
//! - `pod_names`: JSON `[namespace, name, uid, attempt]` → pod id; `container_names`: JSON
//!   `[pod id, name, attempt]` → container id. A name stays reserved until its record is deleted,
//!   as containerd reserves them.
//! - `pod_containers`: `<pod id>/<container id>` → (), the containers of each pod (ids never hold
//!   `/`).
//! - `meta`: `schema` → the layout version, [`SCHEMA`].
//!
//! Every write method keeps the records and the three index tables consistent, and checks before
//! it changes anything, so a failed call leaves the transaction as it was.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use redb::{
    Builder, Database, DatabaseError, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, Table, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::records::{Container, ContainerState, PodMetadata, PodSandbox, PodState, StringMap};
use super::{Kind, StateError};

/// The database file's name under the daemon's root directory.
pub const STATE_FILE: &str = "state.redb";

/// The layout version this code reads and writes.
pub const SCHEMA: u64 = 1;

/// The database file under `root`.
pub fn state_path(root: &Path) -> PathBuf {
    root.join(STATE_FILE)
}

type RecordTable = TableDefinition<'static, &'static str, &'static [u8]>;
type NameTable = TableDefinition<'static, &'static str, &'static str>;

const PODS: RecordTable = TableDefinition::new("pods");
const CONTAINERS: RecordTable = TableDefinition::new("containers");
const POD_NAMES: NameTable = TableDefinition::new("pod_names");
const CONTAINER_NAMES: NameTable = TableDefinition::new("container_names");
const POD_CONTAINERS: TableDefinition<'static, &'static str, ()> =
    TableDefinition::new("pod_containers");
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema";

/// Page cache of the database: the whole state of a busy node is a few megabytes.
const CACHE_BYTES: usize = 16 << 20;

/// Wraps a redb error; a checksum or structure failure becomes [`StateError::Corrupt`].
fn db_err<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StateError {
    move |e| match e.into() {
        redb::Error::Corrupted(reason) => StateError::Corrupt {
            what: "state database".to_owned(),
            reason,
        },
        source => StateError::Db { what, source },
    }
}

/// A stored record type.
trait Record: Serialize + DeserializeOwned {
    const KIND: Kind;
    fn id(&self) -> &str;
}

impl Record for PodSandbox {
    const KIND: Kind = Kind::Pod;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for Container {
    const KIND: Kind = Kind::Container;
    fn id(&self) -> &str {
        &self.id
    }
}

fn encode<T: Record>(record: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(record).map_err(|source| StateError::Encode {
        kind: T::KIND,
        id: record.id().to_owned(),
        source,
    })
}

fn decode<T: Record>(key: &str, bytes: &[u8]) -> Result<T, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        what: format!("{} record {key:?}", T::KIND),
        reason,
    };
    let record: T = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if record.id() != key {
        return Err(corrupt(format!("it holds id {:?}", record.id())));
    }
    Ok(record)
}

/// Ids key records and name files elsewhere (CNI caches, `/run/moat/<id>`): the CNI rule for
/// container ids, which also keeps `/` out of index keys.
fn check_id(kind: Kind, id: &str) -> Result<(), StateError> {
    if crate::cni::valid_container_id(id) {
        Ok(())
    } else {
        Err(StateError::InvalidId {
            kind,
            id: id.to_owned(),
        })
    }
}

fn name_key<T: Serialize>(kind: Kind, id: &str, parts: &T) -> Result<String, StateError> {
    serde_json::to_string(parts).map_err(|source| StateError::Encode {
        kind,
        id: id.to_owned(),
        source,
    })
}

fn pod_name_key(pod: &PodSandbox) -> Result<String, StateError> {
    let m = &pod.metadata;
    name_key(
        Kind::Pod,
        &pod.id,
        &(&m.namespace, &m.name, &m.uid, m.attempt),
    )
}

/// How a pod's name reads in errors: containerd's sandbox name.
fn pod_display_name(m: &PodMetadata) -> String {
    format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

fn container_name_key(c: &Container) -> Result<String, StateError> {
    name_key(
        Kind::Container,
        &c.id,
        &(&c.pod_id, &c.metadata.name, c.metadata.attempt),
    )
}

fn container_display_name(c: &Container) -> String {
    format!(
        "{} (attempt {}) in pod sandbox {}",
        c.metadata.name, c.metadata.attempt, c.pod_id
    )
}

/// The `pod_containers` key of a container.
fn member_key(pod_id: &str, container_id: &str) -> String {
    format!("{pod_id}/{container_id}")
}

/// Selects pod sandboxes, as CRI's PodSandboxFilter; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    /// An id or a unique prefix of one. A prefix that matches no pod, or several, selects
    /// nothing, as in containerd.
    pub id: Option<String>,
    pub state: Option<PodState>,
    /// Labels the pod must have, with these values.
    pub labels: StringMap,
}

impl PodFilter {
    fn matches(&self, pod: &PodSandbox) -> bool {
        self.state.is_none_or(|s| s == pod.state) && labels_match(&self.labels, &pod.labels)
    }
}

/// Selects containers, as CRI's ContainerFilter; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    /// An id or a unique prefix of one; one that matches no container, or several, selects
    /// nothing.
    pub id: Option<String>,
    /// A pod id or a unique prefix of one, resolved like `id`.
    pub pod_id: Option<String>,
    pub state: Option<ContainerState>,
    pub labels: StringMap,
}

impl ContainerFilter {
    fn matches(&self, c: &Container) -> bool {
        self.state.is_none_or(|s| s == c.state) && labels_match(&self.labels, &c.labels)
    }
}

fn labels_match(selector: &StringMap, labels: &StringMap) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What [`WriteTx::delete_pod`] does with a pod's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cascade {
    /// Refuse ([`StateError::PodHasContainers`]) while the pod has containers.
    IfEmpty,
    /// Delete the containers with the pod.
    WithContainers,
}

/// A deleted pod and the containers deleted with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedPod {
    pub pod: PodSandbox,
    pub containers: Vec<Container>,
}

/// The tables both kinds of transaction read.
struct View<R, X> {
    pods: R,
    containers: R,
    pod_containers: X,
}

fn get_record<T: Record>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<T>, StateError> {
    let Some(guard) = table.get(id).map_err(db_err("read a record"))? else {
        return Ok(None);
    };
    decode(id, guard.value()).map(Some)
}

/// The one id that is `prefix` or starts with it; an exact match wins over longer ids.
fn resolve(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    kind: Kind,
    prefix: &str,
) -> Result<String, StateError> {
    let not_found = || StateError::NotFound {
        kind,
        id: prefix.to_owned(),
    };
    if prefix.is_empty() {
        return Err(not_found());
    }
    let mut found = None;
    for entry in table.range(prefix..).map_err(db_err("look up an id"))? {
        let (key, _) = entry.map_err(db_err("look up an id"))?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        // The exact id sorts before every longer one that starts with it.
        if key == prefix {
            return Ok(key.to_owned());
        }
        if found.is_some() {
            return Err(StateError::Ambiguous {
                kind,
                prefix: prefix.to_owned(),
            });
        }
        found = Some(key.to_owned());
    }
    found.ok_or_else(not_found)
}

/// A prefix lookup for a filter: no match and several matches both select nothing.
fn resolve_for_filter(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    kind: Kind,
    prefix: &str,
) -> Result<Option<String>, StateError> {
    match resolve(table, kind, prefix) {
        Ok(id) => Ok(Some(id)),
        Err(StateError::NotFound { .. } | StateError::Ambiguous { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn all_records<T: Record>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Vec<T>, StateError> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err("list records"))? {
        let (key, value) = entry.map_err(db_err("list records"))?;
        let record: T = decode(key.value(), value.value())?;
        if keep(&record) {
            out.push(record);
        }
    }
    Ok(out)
}

impl<R, X> View<R, X>
where
    R: ReadableTable<&'static str, &'static [u8]>,
    X: ReadableTable<&'static str, ()>,
{
    fn pod(&self, id: &str) -> Result<Option<PodSandbox>, StateError> {
        get_record(&self.pods, id)
    }

    fn container(&self, id: &str) -> Result<Option<Container>, StateError> {
        get_record(&self.containers, id)
    }

    fn resolve_pod_id(&self, prefix: &str) -> Result<String, StateError> {
        resolve(&self.pods, Kind::Pod, prefix)
    }

    fn resolve_container_id(&self, prefix: &str) -> Result<String, StateError> {
        resolve(&self.containers, Kind::Container, prefix)
    }

    fn get_pod(&self, id_or_prefix: &str) -> Result<PodSandbox, StateError> {
        let id = self.resolve_pod_id(id_or_prefix)?;
        self.pod(&id)?.ok_or(StateError::NotFound {
            kind: Kind::Pod,
            id,
        })
    }

    fn get_container(&self, id_or_prefix: &str) -> Result<Container, StateError> {
        let id = self.resolve_container_id(id_or_prefix)?;
        self.container(&id)?.ok_or(StateError::NotFound {
            kind: Kind::Container,
            id,
        })
    }

    fn list_pods(&self, filter: &PodFilter) -> Result<Vec<PodSandbox>, StateError> {
        let Some(prefix) = &filter.id else {
            return all_records(&self.pods, |p| filter.matches(p));
        };
        let Some(id) = resolve_for_filter(&self.pods, Kind::Pod, prefix)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .pod(&id)?
            .filter(|p| filter.matches(p))
            .into_iter()
            .collect())
    }

    fn container_ids_of(&self, pod_id: &str) -> Result<Vec<String>, StateError> {
        // `0` follows `/`: the range holds exactly the keys `<pod id>/...`.
        let (lo, hi) = (format!("{pod_id}/"), format!("{pod_id}0"));
        let mut ids = Vec::new();
        let range = self
            .pod_containers
            .range(lo.as_str()..hi.as_str())
            .map_err(db_err("list the containers of a pod sandbox"))?;
        for entry in range {
            let (key, _) = entry.map_err(db_err("list the containers of a pod sandbox"))?;
            if let Some(id) = key.value().strip_prefix(lo.as_str()) {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    fn containers_of_pod(&self, pod_id: &str) -> Result<Vec<Container>, StateError> {
        self.container_ids_of(pod_id)?
            .into_iter()
            .map(|id| {
                self.container(&id)?.ok_or_else(|| StateError::Corrupt {
                    what: format!("container index of pod sandbox {pod_id}"),
                    reason: format!("it lists container {id}, which does not exist"),
                })
            })
            .collect()
    }

    fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>, StateError> {
        let pod_id = match &filter.pod_id {
            None => None,
            Some(prefix) => match resolve_for_filter(&self.pods, Kind::Pod, prefix)? {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
        };
        let in_pod = |c: &Container| pod_id.as_ref().is_none_or(|p| *p == c.pod_id);
        if let Some(prefix) = &filter.id {
            let Some(id) = resolve_for_filter(&self.containers, Kind::Container, prefix)? else {
                return Ok(Vec::new());
            };
            return Ok(self
                .container(&id)?
                .filter(|c| in_pod(c) && filter.matches(c))
                .into_iter()
                .collect());
        }
        match &pod_id {
            Some(pod_id) => {
                let mut all = self.containers_of_pod(pod_id)?;
                all.retain(|c| filter.matches(c));
                Ok(all)
            }
            None => all_records(&self.containers, |c| filter.matches(c)),
        }
    }
}

/// The read methods of both transaction kinds, over their `view`.
macro_rules! read_methods {
    () => {
        /// The pod sandbox with exactly this id.
        pub fn pod(&self, id: &str) -> Result<Option<PodSandbox>, StateError> {
            self.view.pod(id)
        }

        /// The pod sandbox with this id or unique id prefix: [`StateError::NotFound`] or
        /// [`StateError::Ambiguous`] otherwise.
        pub fn get_pod(&self, id_or_prefix: &str) -> Result<PodSandbox, StateError> {
            self.view.get_pod(id_or_prefix)
        }

        /// The one pod id that is `prefix` or starts with it.
        pub fn resolve_pod_id(&self, prefix: &str) -> Result<String, StateError> {
            self.view.resolve_pod_id(prefix)
        }

        /// The pod sandboxes the filter selects, in id order.
        pub fn list_pods(&self, filter: &PodFilter) -> Result<Vec<PodSandbox>, StateError> {
            self.view.list_pods(filter)
        }

        /// The container with exactly this id.
        pub fn container(&self, id: &str) -> Result<Option<Container>, StateError> {
            self.view.container(id)
        }

        /// The container with this id or unique id prefix.
        pub fn get_container(&self, id_or_prefix: &str) -> Result<Container, StateError> {
            self.view.get_container(id_or_prefix)
        }

        /// The one container id that is `prefix` or starts with it.
        pub fn resolve_container_id(&self, prefix: &str) -> Result<String, StateError> {
            self.view.resolve_container_id(prefix)
        }

        /// The containers the filter selects, in id order.
        pub fn list_containers(
            &self,
            filter: &ContainerFilter,
        ) -> Result<Vec<Container>, StateError> {
            self.view.list_containers(filter)
        }

        /// The containers of the pod sandbox with exactly this id, in id order; none if there
        /// is no such pod.
        pub fn containers_of_pod(&self, pod_id: &str) -> Result<Vec<Container>, StateError> {
            self.view.containers_of_pod(pod_id)
        }
    };
}

/// A consistent snapshot of the store, as of the last commit before it began.
pub struct ReadTx {
    view: View<ReadOnlyTable<&'static str, &'static [u8]>, ReadOnlyTable<&'static str, ()>>,
    _txn: ReadTransaction,
}

impl ReadTx {
    fn open(txn: ReadTransaction) -> Result<Self, StateError> {
        let what = "open a table";
        Ok(Self {
            view: View {
                pods: txn.open_table(PODS).map_err(db_err(what))?,
                containers: txn.open_table(CONTAINERS).map_err(db_err(what))?,
                pod_containers: txn.open_table(POD_CONTAINERS).map_err(db_err(what))?,
            },
            _txn: txn,
        })
    }

    read_methods!();
}

/// The one write transaction: reads see its own changes; they commit together when the closure
/// given to [`StateStore::write`] returns `Ok`.
pub struct WriteTx<'t> {
    view: View<Table<'t, &'static str, &'static [u8]>, Table<'t, &'static str, ()>>,
    pod_names: Table<'t, &'static str, &'static str>,
    container_names: Table<'t, &'static str, &'static str>,
}

/// Who holds a name, if anyone.
fn holder(
    table: &Table<'_, &'static str, &'static str>,
    key: &str,
) -> Result<Option<String>, StateError> {
    Ok(table
        .get(key)
        .map_err(db_err("look up a name"))?
        .map(|g| g.value().to_owned()))
}

/// Frees a name if `id` holds it.
fn release(
    table: &mut Table<'_, &'static str, &'static str>,
    key: &str,
    id: &str,
) -> Result<(), StateError> {
    if holder(table, key)?.as_deref() == Some(id) {
        table.remove(key).map_err(db_err("release a name"))?;
    }
    Ok(())
}

impl<'t> WriteTx<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StateError> {
        let what = "open a table";
        Ok(Self {
            view: View {
                pods: txn.open_table(PODS).map_err(db_err(what))?,
                containers: txn.open_table(CONTAINERS).map_err(db_err(what))?,
                pod_containers: txn.open_table(POD_CONTAINERS).map_err(db_err(what))?,
            },
            pod_names: txn.open_table(POD_NAMES).map_err(db_err(what))?,
            container_names: txn.open_table(CONTAINER_NAMES).map_err(db_err(what))?,
        })
    }

    read_methods!();

    /// Stores a pod sandbox, new or changed, and reserves its name (namespace, name, uid,
    /// attempt): [`StateError::AlreadyExists`] if another pod holds it.
    pub fn put_pod(&mut self, pod: &PodSandbox) -> Result<(), StateError> {
        check_id(Kind::Pod, &pod.id)?;
        let name = pod_name_key(pod)?;
        if let Some(other) = holder(&self.pod_names, &name)?.filter(|h| *h != pod.id) {
            return Err(StateError::AlreadyExists {
                kind: Kind::Pod,
                name: pod_display_name(&pod.metadata),
                holder: other,
            });
        }
        let bytes = encode(pod)?;
        if let Some(old) = self.pod(&pod.id)? {
            let old_name = pod_name_key(&old)?;
            if old_name != name {
                release(&mut self.pod_names, &old_name, &pod.id)?;
            }
        }
        self.pod_names
            .insert(name.as_str(), pod.id.as_str())
            .map_err(db_err("reserve a pod sandbox name"))?;
        self.view
            .pods
            .insert(pod.id.as_str(), bytes.as_slice())
            .map_err(db_err("store a pod sandbox"))?;
        Ok(())
    }

    /// Changes the pod sandbox with exactly this id in place and returns it as stored.
    pub fn update_pod(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut PodSandbox),
    ) -> Result<PodSandbox, StateError> {
        self.update_with(id, change, Self::pod, Self::put_pod)
    }

    /// Loads record `id`, lets `change` change it (not its id) and stores it with `put`.
    fn update_with<R: Record>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut R),
        get: fn(&Self, &str) -> Result<Option<R>, StateError>,
        put: fn(&mut Self, &R) -> Result<(), StateError>,
    ) -> Result<R, StateError> {
        let mut r = get(self, id)?.ok_or_else(|| StateError::NotFound {
            kind: R::KIND,
            id: id.to_owned(),
        })?;
        change(&mut r);
        if r.id() != id {
            return Err(StateError::IdChanged {
                kind: R::KIND,
                from: id.to_owned(),
                to: r.id().to_owned(),
            });
        }
        put(self, &r)?;
        Ok(r)
    }

    /// Deletes the pod sandbox with exactly this id and frees its name; `None` if there is none.
    /// Its containers go with it only under [`Cascade::WithContainers`].
    pub fn delete_pod(
        &mut self,
        id: &str,
        cascade: Cascade,
    ) -> Result<Option<RemovedPod>, StateError> {
        let Some(pod) = self.pod(id)? else {
            return Ok(None);
        };
        let ids = self.view.container_ids_of(id)?;
        if !ids.is_empty() && cascade == Cascade::IfEmpty {
            return Err(StateError::PodHasContainers {
                id: id.to_owned(),
                containers: ids.len(),
            });
        }
        let name = pod_name_key(&pod)?;
        let mut containers = Vec::with_capacity(ids.len());
        for cid in ids {
            let c = self
                .delete_container(&cid)?
                .ok_or_else(|| StateError::Corrupt {
                    what: format!("container index of pod sandbox {id}"),
                    reason: format!("it lists container {cid}, which does not exist"),
                })?;
            containers.push(c);
        }
        release(&mut self.pod_names, &name, id)?;
        self.view
            .pods
            .remove(id)
            .map_err(db_err("delete a pod sandbox"))?;
        Ok(Some(RemovedPod { pod, containers }))
    }

    /// Stores a container, new or changed, in its pod sandbox ([`StateError::NotFound`] if that
    /// does not exist), and reserves its name (pod, name, attempt).
    pub fn put_container(&mut self, c: &Container) -> Result<(), StateError> {
        check_id(Kind::Container, &c.id)?;
        if self.pod(&c.pod_id)?.is_none() {
            return Err(StateError::NotFound {
                kind: Kind::Pod,
                id: c.pod_id.clone(),
            });
        }
        let name = container_name_key(c)?;
        if let Some(other) = holder(&self.container_names, &name)?.filter(|h| *h != c.id) {
            return Err(StateError::AlreadyExists {
                kind: Kind::Container,
                name: container_display_name(c),
                holder: other,
            });
        }
        let bytes = encode(c)?;
        if let Some(old) = self.container(&c.id)? {
            if old.pod_id != c.pod_id {
                return Err(StateError::ContainerMoved {
                    id: c.id.clone(),
                    from: old.pod_id,
                    to: c.pod_id.clone(),
                });
            }
            let old_name = container_name_key(&old)?;
            if old_name != name {
                release(&mut self.container_names, &old_name, &c.id)?;
            }
        }
        self.container_names
            .insert(name.as_str(), c.id.as_str())
            .map_err(db_err("reserve a container name"))?;
        self.view
            .pod_containers
            .insert(member_key(&c.pod_id, &c.id).as_str(), ())
            .map_err(db_err("index a container"))?;
        self.view
            .containers
            .insert(c.id.as_str(), bytes.as_slice())
            .map_err(db_err("store a container"))?;
        Ok(())
    }

    /// Changes the container with exactly this id in place and returns it as stored.
    pub fn update_container(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Container),
    ) -> Result<Container, StateError> {
        self.update_with(id, change, Self::container, Self::put_container)
    }

    /// Deletes the container with exactly this id and frees its name; `None` if there is none.
    pub fn delete_container(&mut self, id: &str) -> Result<Option<Container>, StateError> {
        let Some(c) = self.container(id)? else {
            return Ok(None);
        };
        let name = container_name_key(&c)?;
        release(&mut self.container_names, &name, id)?;
        self.view
            .pod_containers
            .remove(member_key(&c.pod_id, id).as_str())
            .map_err(db_err("unindex a container"))?;
        self.view
            .containers
            .remove(id)
            .map_err(db_err("delete a container"))?;
        Ok(Some(c))
    }
}

/// The daemon's state database. Thread-safe: share it with `Arc`.
#[derive(Debug)]
pub struct StateStore {
    db: Database,
    path: PathBuf,
}

impl StateStore {
    /// Opens the database at `path`, creating it (and its directory) if missing, and repairing
    /// it if its last writer died mid-transaction: then it holds exactly the transactions that
    /// committed. Every page's checksum is verified on open, so a damaged file is reported
    /// ([`StateError::Corrupt`]), not trusted. [`StateError::Locked`] if another process has it
    /// open.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(|source| StateError::Io {
            what: "create directory",
            path: dir.to_owned(),
            source,
        })?;
        if !path.exists() {
            // A new store is made whole under a temporary name and renamed into place, so a
            // crash while it is being created never leaves a half-made file at `path`.
            let tmp = dir.join(format!(
                ".{}.new",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
            ));
            let _ = fs::remove_file(&tmp);
            let fresh = Self {
                db: Self::builder()
                    .create(&tmp)
                    .map_err(db_err("create the database"))?,
                path: tmp.clone(),
            };
            fresh.init()?;
            drop(fresh);
            let io = |what: &'static str| {
                let path = tmp.clone();
                move |source| StateError::Io { what, path, source }
            };
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io("sync the new database"))?;
            fs::rename(&tmp, path).map_err(io("rename the new database"))?;
            // The new file's directory entry must outlive a power cut too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| StateError::Io {
                    what: "sync directory",
                    path: dir.to_owned(),
                    source,
                })?;
        }
        let db = Self::builder().create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StateError::Locked {
                path: path.to_owned(),
            },
            other => db_err("open the database")(other),
        })?;
        let store = Self {
            db,
            path: path.to_owned(),
        };
        store.init()?;
        Ok(store)
    }

    fn builder() -> Builder {
        let mut b = Builder::new();
        b.set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true);
        b
    }

    /// Opens `<root>/state.redb`.
    pub fn open_in(root: &Path) -> Result<Self, StateError> {
        Self::open(&state_path(root))
    }

    /// Creates the tables and checks the schema version.
    fn init(&self) -> Result<(), StateError> {
        let txn = self
            .db
            .begin_write()
            .map_err(db_err("begin a write transaction"))?;
        {
            let mut meta = txn.open_table(META).map_err(db_err("open a table"))?;
            let found = meta
                .get(SCHEMA_KEY)
                .map_err(db_err("read the schema version"))?
                .map(|g| g.value());
            match found {
                Some(found) if found > SCHEMA => {
                    return Err(StateError::Schema {
                        path: self.path.clone(),
                        found,
                        known: SCHEMA,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA)
                        .map_err(db_err("write the schema version"))?;
                }
            }
            // Creates the tables a read transaction expects.
            WriteTx::open(&txn)?;
        }
        txn.commit().map_err(db_err("commit"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the one write transaction and commits its changes when it returns `Ok`, or
    /// drops them all when it returns `Err`. The commit is durable when this returns: after
    /// `kill -9` or a power cut, the next [`open`](Self::open) finds all of it.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StateError>,
    {
        let txn = self
            .db
            .begin_write()
            .map_err(db_err("begin a write transaction"))?;
        let result = match WriteTx::open(&txn) {
            Ok(mut tx) => f(&mut tx),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(value) => {
                txn.commit().map_err(db_err("commit"))?;
                Ok(value)
            }
            Err(e) => {
                if let Err(abort) = txn.abort() {
                    tracing::warn!(error = %abort, "cannot abort a state transaction");
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on a snapshot of the last commit; concurrent writes do not show in it.
    pub fn read<T, E>(&self, f: impl FnOnce(&ReadTx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StateError>,
    {
        let txn = self
            .db
            .begin_read()
            .map_err(db_err("begin a read transaction"))?;
        let tx = ReadTx::open(txn)?;
        f(&tx)
    }

    /// [`ReadTx::pod`] in a transaction of its own.
    pub fn pod(&self, id: &str) -> Result<Option<PodSandbox>, StateError> {
        self.read(|r| r.pod(id))
    }

    /// [`ReadTx::get_pod`] in a transaction of its own.
    pub fn get_pod(&self, id_or_prefix: &str) -> Result<PodSandbox, StateError> {
        self.read(|r| r.get_pod(id_or_prefix))
    }

    /// [`ReadTx::resolve_pod_id`] in a transaction of its own.
    pub fn resolve_pod_id(&self, prefix: &str) -> Result<String, StateError> {
        self.read(|r| r.resolve_pod_id(prefix))
    }

    /// [`ReadTx::list_pods`] in a transaction of its own.
    pub fn list_pods(&self, filter: &PodFilter) -> Result<Vec<PodSandbox>, StateError> {
        self.read(|r| r.list_pods(filter))
    }

    /// [`ReadTx::container`] in a transaction of its own.
    pub fn container(&self, id: &str) -> Result<Option<Container>, StateError> {
        self.read(|r| r.container(id))
    }

    /// [`ReadTx::get_container`] in a transaction of its own.
    pub fn get_container(&self, id_or_prefix: &str) -> Result<Container, StateError> {
        self.read(|r| r.get_container(id_or_prefix))
    }

    /// [`ReadTx::resolve_container_id`] in a transaction of its own.
    pub fn resolve_container_id(&self, prefix: &str) -> Result<String, StateError> {
        self.read(|r| r.resolve_container_id(prefix))
    }

    /// [`ReadTx::list_containers`] in a transaction of its own.
    pub fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>, StateError> {
        self.read(|r| r.list_containers(filter))
    }

    /// [`ReadTx::containers_of_pod`] in a transaction of its own.
    pub fn containers_of_pod(&self, pod_id: &str) -> Result<Vec<Container>, StateError> {
        self.read(|r| r.containers_of_pod(pod_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::records::{ContainerMetadata, PodMetadata};

    fn meta(name: &str, namespace: &str) -> PodMetadata {
        PodMetadata {
            name: name.into(),
            uid: "uid".into(),
            namespace: namespace.into(),
            attempt: 0,
        }
    }

    fn open() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open_in(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn ids_follow_the_cni_container_id_rule() {
        for ok in ["a", "0abc", "a.b_c-d", &"f".repeat(255)] {
            assert!(check_id(Kind::Pod, ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "a\0", "é", &"f".repeat(256)] {
            assert!(check_id(Kind::Pod, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_keys_do_not_collide_when_parts_hold_separators() {
        let a = PodSandbox::new("a", meta("x_y", "z"), 0);
        let b = PodSandbox::new("b", meta("x", "y_z"), 0);
        assert_ne!(pod_name_key(&a).unwrap(), pod_name_key(&b).unwrap());
        let (_dir, store) = open();
        store
            .write(|tx| {
                tx.put_pod(&a)?;
                tx.put_pod(&b)
            })
            .unwrap();
        assert_eq!(store.list_pods(&PodFilter::default()).unwrap().len(), 2);
    }

    #[test]
    fn renaming_a_pod_moves_its_reservation() {
        let (_dir, store) = open();
        let mut pod = PodSandbox::new("p1", meta("old", "ns"), 0);
        store.write(|tx| tx.put_pod(&pod)).unwrap();
        pod.metadata.name = "new".into();
        store.write(|tx| tx.put_pod(&pod)).unwrap();
        let reuse = PodSandbox::new("p2", meta("old", "ns"), 0);
        store.write(|tx| tx.put_pod(&reuse)).unwrap();
        let clash = PodSandbox::new("p3", meta("new", "ns"), 0);
        let err = store.write(|tx| tx.put_pod(&clash)).unwrap_err();
        assert!(
            matches!(&err, StateError::AlreadyExists { holder, .. } if holder == "p1"),
            "{err}"
        );
    }

    #[test]
    fn a_refused_put_changes_nothing_in_the_transaction() {
        let (_dir, store) = open();
        let first = PodSandbox::new("p1", meta("a", "ns"), 0);
        let mut second = PodSandbox::new("p2", meta("b", "ns"), 0);
        store
            .write(|tx| {
                tx.put_pod(&first)?;
                tx.put_pod(&second)
            })
            .unwrap();
        // p2 tries to take p1's name: refused, and p2 keeps its own name.
        second.metadata.name = "a".into();
        store
            .write(|tx| {
                assert!(matches!(
                    tx.put_pod(&second),
                    Err(StateError::AlreadyExists { .. })
                ));
                Ok::<_, StateError>(())
            })
            .unwrap();
        let clash = PodSandbox::new("p3", meta("b", "ns"), 0);
        assert!(matches!(
            store.write(|tx| tx.put_pod(&clash)),
            Err(StateError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn a_container_cannot_move_between_pods() {
        let (_dir, store) = open();
        let mut c = Container::new(
            "c1",
            "p1",
            ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            },
            "busybox",
            0,
        );
        store
            .write(|tx| {
                tx.put_pod(&PodSandbox::new("p1", meta("a", "ns"), 0))?;
                tx.put_pod(&PodSandbox::new("p2", meta("b", "ns"), 0))?;
                tx.put_container(&c)
            })
            .unwrap();
        c.pod_id = "p2".into();
        let err = store.write(|tx| tx.put_container(&c)).unwrap_err();
        assert!(matches!(err, StateError::ContainerMoved { .. }), "{err}");
        assert_eq!(store.containers_of_pod("p1").unwrap().len(), 1);
        assert!(store.containers_of_pod("p2").unwrap().is_empty());
    }

    #[test]
    fn an_update_may_not_change_the_id() {
        let (_dir, store) = open();
        store
            .write(|tx| tx.put_pod(&PodSandbox::new("p1", meta("a", "ns"), 0)))
            .unwrap();
        let err = store
            .write(|tx| tx.update_pod("p1", |p| p.id = "p9".into()))
            .unwrap_err();
        assert!(matches!(err, StateError::IdChanged { .. }), "{err}");
        assert!(store.pod("p9").unwrap().is_none());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        drop(StateStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, SCHEMA + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = StateStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StateError::Schema { found, .. } if found == SCHEMA + 1),
            "{err}"
        );
    }

    #[test]
    fn a_record_stored_under_another_id_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        drop(StateStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let bytes = serde_json::to_vec(&PodSandbox::new("p1", meta("a", "ns"), 0)).unwrap();
            let mut pods = txn.open_table(PODS).unwrap();
            pods.insert("p2", bytes.as_slice()).unwrap();
            pods.insert("p3", &b"{not json"[..]).unwrap();
            drop(pods);
            txn.commit().unwrap();
        }
        let store = StateStore::open(&path).unwrap();
        let err = store.pod("p2").unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        let err = store.pod("p3").unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    }
}
