//! The state store on real files: records survive reopening, filters and id prefixes select as
//! CRI wants, names stay reserved, pods keep their containers unless told, a second daemon is
//! locked out, readers see whole transactions while a writer runs, and `kill -9` of a writer at
//! random instants loses no committed transaction and shows no part of an uncommitted one.
//!
//! The crash test re-runs this test binary as the writer: the test
//! `crash_child_writes_until_killed` does nothing unless `MOAT_STATE_CRASH_CHILD` names a
//! database, and then writes transactions until it is killed, printing `committed N` after each.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moat_cri::state::{
    Cascade, Container, ContainerFilter, ContainerMetadata, ContainerState, EnvVar, Kind,
    PodFilter, PodMetadata, PodSandbox, PodState, ProcessRef, ReadTx, SandboxProcesses, StateError,
    StateStore, StringMap, WriteTx,
};

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().expect("make a temporary directory");
    let store = StateStore::open_in(dir.path()).expect("open a new store");
    (dir, store)
}

fn labels(pairs: &[(&str, &str)]) -> StringMap {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn pod(id: &str, name: &str, attempt: u32) -> PodSandbox {
    let mut p = PodSandbox::new(
        id,
        PodMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt,
        },
        1_700_000_000_000_000_000,
    );
    p.labels = labels(&[("app", name)]);
    p
}

fn container(id: &str, pod_id: &str, name: &str, attempt: u32) -> Container {
    let mut c = Container::new(
        id,
        pod_id,
        ContainerMetadata {
            name: name.into(),
            attempt,
        },
        "docker.io/library/busybox:latest",
        1_700_000_000_000_000_001,
    );
    c.labels = labels(&[("role", name)]);
    c
}

fn ids<T>(records: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    records.iter().map(|r| id(r).to_owned()).collect()
}

#[test]
fn records_round_trip_through_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pod("8f3a", "web", 1);
    p.annotations = labels(&[("kubernetes.io/config.source", "api")]);
    p.runtime_handler = "moat".into();
    p.hostname = "web-0".into();
    p.log_directory = "/var/log/pods/default_web_uid-web".into();
    p.network.netns = Some(PathBuf::from("/run/moat/netns/8f3a"));
    p.network.cni_attachment = Some("8f3a".into());
    p.network.ips = vec!["10.88.0.7".parse().unwrap(), "fd00::7".parse().unwrap()];
    p.linux.cgroup_parent = "/kubepods/besteffort/poduid-web".into();
    p.sandbox = Some(SandboxProcesses {
        sentry: ProcessRef::of(std::process::id()).unwrap(),
        gofer: None,
        control_socket: PathBuf::from("/run/moat/8f3a/control.sock"),
    });
    let mut c = container("41bc", "8f3a", "app", 0);
    c.command = vec!["/bin/sh".into()];
    c.args = vec!["-c".into(), "echo hi".into()];
    c.envs = vec![EnvVar {
        key: "PATH".into(),
        value: "/bin".into(),
    }];
    c.state = ContainerState::Exited;
    c.exit_code = 137;
    c.reason = "Error".into();
    c.pid = Some(1);
    {
        let store = StateStore::open_in(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.put_pod(&p)?;
                tx.put_container(&c)
            })
            .unwrap();
    }
    let store = StateStore::open_in(dir.path()).unwrap();
    assert_eq!(store.pod("8f3a").unwrap(), Some(p.clone()));
    assert_eq!(store.container("41bc").unwrap(), Some(c.clone()));
    assert_eq!(store.containers_of_pod("8f3a").unwrap(), vec![c]);
    assert!(p.sandbox.unwrap().sentry.is_running());
}

#[test]
fn unique_prefixes_resolve_and_shared_ones_are_ambiguous() {
    let (_dir, store) = store();
    store
        .write(|tx| {
            tx.put_pod(&pod("abc123", "a", 0))?;
            tx.put_pod(&pod("abd456", "b", 0))?;
            tx.put_pod(&pod("ab", "c", 0))?;
            tx.put_container(&container("ff01", "abc123", "x", 0))
        })
        .unwrap();
    assert_eq!(store.resolve_pod_id("abc").unwrap(), "abc123");
    assert_eq!(store.get_pod("abd").unwrap().id, "abd456");
    // An exact id wins over the longer ids it is a prefix of.
    assert_eq!(store.resolve_pod_id("ab").unwrap(), "ab");
    assert!(matches!(
        store.resolve_pod_id("a"),
        Err(StateError::Ambiguous {
            kind: Kind::Pod,
            ..
        })
    ));
    for missing in ["abe", "", "abc1234"] {
        assert!(
            matches!(
                store.get_pod(missing),
                Err(StateError::NotFound {
                    kind: Kind::Pod,
                    ..
                })
            ),
            "{missing:?}"
        );
    }
    assert_eq!(store.get_container("ff").unwrap().pod_id, "abc123");
    // Pod and container ids are looked up apart.
    assert!(store.get_pod("ff").is_err());
    assert!(store.get_container("abc").is_err());
}

#[test]
fn pod_filters_select_by_id_prefix_state_and_labels() {
    let (_dir, store) = store();
    store
        .write(|tx| {
            tx.put_pod(&pod("aa01", "web", 0))?;
            let mut db = pod("aa02", "db", 0);
            db.state = PodState::NotReady;
            db.labels.insert("tier".into(), "data".into());
            tx.put_pod(&db)?;
            tx.put_pod(&pod("bb01", "cache", 0))
        })
        .unwrap();
    let list = |f: PodFilter| ids(&store.list_pods(&f).unwrap(), |p| &p.id);
    assert_eq!(list(PodFilter::default()), ["aa01", "aa02", "bb01"]);
    let by_id = |id: &str| PodFilter {
        id: Some(id.into()),
        ..Default::default()
    };
    assert_eq!(list(by_id("aa02")), ["aa02"]);
    assert_eq!(list(by_id("bb")), ["bb01"]);
    // As in containerd: an ambiguous or unknown prefix selects nothing.
    assert!(list(by_id("aa")).is_empty());
    assert!(list(by_id("zz")).is_empty());
    let ready = PodFilter {
        state: Some(PodState::Ready),
        ..Default::default()
    };
    assert_eq!(list(ready), ["aa01", "bb01"]);
    let data = PodFilter {
        labels: labels(&[("app", "db"), ("tier", "data")]),
        ..Default::default()
    };
    assert_eq!(list(data), ["aa02"]);
    let wrong_value = PodFilter {
        labels: labels(&[("app", "db"), ("tier", "web")]),
        ..Default::default()
    };
    assert!(list(wrong_value).is_empty());
    let ready_db = PodFilter {
        id: Some("aa02".into()),
        state: Some(PodState::Ready),
        ..Default::default()
    };
    assert!(list(ready_db).is_empty());
}

#[test]
fn container_filters_select_by_pod_id_state_and_labels() {
    let (_dir, store) = store();
    store
        .write(|tx| {
            tx.put_pod(&pod("p1aa", "web", 0))?;
            tx.put_pod(&pod("p2bb", "db", 0))?;
            tx.put_container(&container("c1", "p1aa", "app", 0))?;
            let mut sidecar = container("c2", "p1aa", "sidecar", 0);
            sidecar.state = ContainerState::Running;
            tx.put_container(&sidecar)?;
            let mut db = container("c3", "p2bb", "app", 0);
            db.state = ContainerState::Running;
            tx.put_container(&db)
        })
        .unwrap();
    let list = |f: ContainerFilter| ids(&store.list_containers(&f).unwrap(), |c| &c.id);
    assert_eq!(list(ContainerFilter::default()), ["c1", "c2", "c3"]);
    let in_pod = |p: &str| ContainerFilter {
        pod_id: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(list(in_pod("p1")), ["c1", "c2"]);
    assert_eq!(list(in_pod("p2bb")), ["c3"]);
    assert!(list(in_pod("p")).is_empty());
    assert!(list(in_pod("p3")).is_empty());
    let running = ContainerFilter {
        state: Some(ContainerState::Running),
        ..Default::default()
    };
    assert_eq!(list(running), ["c2", "c3"]);
    let apps = ContainerFilter {
        labels: labels(&[("role", "app")]),
        ..Default::default()
    };
    assert_eq!(list(apps), ["c1", "c3"]);
    let c3_in_p1 = ContainerFilter {
        id: Some("c3".into()),
        pod_id: Some("p1aa".into()),
        ..Default::default()
    };
    assert!(list(c3_in_p1).is_empty());
    let running_in_p1 = ContainerFilter {
        pod_id: Some("p1aa".into()),
        state: Some(ContainerState::Running),
        ..Default::default()
    };
    assert_eq!(list(running_in_p1), ["c2"]);
}

#[test]
fn pod_names_are_reserved_until_the_pod_is_deleted() {
    let (_dir, store) = store();
    store.write(|tx| tx.put_pod(&pod("p1", "web", 0))).unwrap();
    let err = store
        .write(|tx| tx.put_pod(&pod("p2", "web", 0)))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::AlreadyExists { kind: Kind::Pod, holder, .. } if holder == "p1"),
        "{err}"
    );
    assert!(err.to_string().contains("web_default_uid-web_0"), "{err}");
    // Another attempt, uid or namespace is another name.
    let mut other_uid = pod("p3", "web", 0);
    other_uid.metadata.uid = "uid-2".into();
    let mut other_ns = pod("p4", "web", 0);
    other_ns.metadata.namespace = "prod".into();
    store
        .write(|tx| {
            tx.put_pod(&pod("p2", "web", 1))?;
            tx.put_pod(&other_uid)?;
            tx.put_pod(&other_ns)
        })
        .unwrap();
    // Updating the holder itself is no conflict.
    store
        .write(|tx| tx.update_pod("p1", |p| p.state = PodState::NotReady))
        .unwrap();
    store
        .write(|tx| tx.delete_pod("p1", Cascade::IfEmpty))
        .unwrap();
    store.write(|tx| tx.put_pod(&pod("p5", "web", 0))).unwrap();
    assert_eq!(store.list_pods(&PodFilter::default()).unwrap().len(), 4);
}

#[test]
fn container_names_are_reserved_per_pod_until_deleted() {
    let (_dir, store) = store();
    store
        .write(|tx| {
            tx.put_pod(&pod("p1", "web", 0))?;
            tx.put_pod(&pod("p2", "db", 0))?;
            tx.put_container(&container("c1", "p1", "app", 0))
        })
        .unwrap();
    let err = store
        .write(|tx| tx.put_container(&container("c2", "p1", "app", 0)))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::AlreadyExists { kind: Kind::Container, holder, .. } if holder == "c1"),
        "{err}"
    );
    store
        .write(|tx| {
            tx.put_container(&container("c2", "p2", "app", 0))?;
            tx.put_container(&container("c3", "p1", "app", 1))
        })
        .unwrap();
    // An exited container keeps its name; a removed one frees it.
    store
        .write(|tx| {
            tx.update_container("c1", |c| {
                c.state = ContainerState::Exited;
                c.exit_code = 0;
                c.reason = "Completed".into();
            })
        })
        .unwrap();
    assert!(store
        .write(|tx| tx.put_container(&container("c4", "p1", "app", 0)))
        .is_err());
    let removed = store.write(|tx| tx.delete_container("c1")).unwrap();
    assert_eq!(removed.map(|c| c.exit_code), Some(0));
    store
        .write(|tx| tx.put_container(&container("c4", "p1", "app", 0)))
        .unwrap();
}

#[test]
fn a_container_needs_its_pod() {
    let (_dir, store) = store();
    let err = store
        .write(|tx| tx.put_container(&container("c1", "nope", "app", 0)))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::NotFound { kind: Kind::Pod, id } if id == "nope"),
        "{err}"
    );
    let err = store
        .write(|tx| tx.update_container("c1", |_| {}))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StateError::NotFound {
                kind: Kind::Container,
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .write(|tx| tx.put_pod(&pod("bad/id", "web", 0)))
        .unwrap_err();
    assert!(matches!(err, StateError::InvalidId { .. }), "{err}");
}

#[test]
fn a_pod_is_deleted_with_its_containers_only_when_asked() {
    let (_dir, store) = store();
    store
        .write(|tx| {
            tx.put_pod(&pod("p1", "web", 0))?;
            tx.put_pod(&pod("p2", "db", 0))?;
            tx.put_container(&container("c1", "p1", "app", 0))?;
            tx.put_container(&container("c2", "p1", "sidecar", 0))?;
            tx.put_container(&container("c3", "p2", "app", 0))
        })
        .unwrap();
    let err = store
        .write(|tx| tx.delete_pod("p1", Cascade::IfEmpty))
        .unwrap_err();
    assert!(
        matches!(err, StateError::PodHasContainers { containers: 2, .. }),
        "{err}"
    );
    assert!(store.pod("p1").unwrap().is_some());
    let removed = store
        .write(|tx| tx.delete_pod("p1", Cascade::WithContainers))
        .unwrap()
        .unwrap();
    assert_eq!(removed.pod.id, "p1");
    assert_eq!(ids(&removed.containers, |c| &c.id), ["c1", "c2"]);
    assert!(store.pod("p1").unwrap().is_none());
    assert_eq!(
        ids(
            &store.list_containers(&ContainerFilter::default()).unwrap(),
            |c| &c.id
        ),
        ["c3"]
    );
    // Deleting what is gone is no error (CRI removals are idempotent).
    assert!(store
        .write(|tx| tx.delete_pod("p1", Cascade::IfEmpty))
        .unwrap()
        .is_none());
    assert!(store
        .write(|tx| tx.delete_container("c1"))
        .unwrap()
        .is_none());
    // The names are free again.
    store
        .write(|tx| {
            tx.put_pod(&pod("p9", "web", 0))?;
            tx.put_container(&container("c9", "p9", "app", 0))
        })
        .unwrap();
}

/// The error of a test transaction that gives up on purpose.
#[derive(Debug)]
enum TestAbort {
    State(StateError),
    GiveUp,
}

impl From<StateError> for TestAbort {
    fn from(e: StateError) -> Self {
        Self::State(e)
    }
}

#[test]
fn a_failed_transaction_leaves_nothing_and_sees_its_own_writes() {
    let (_dir, store) = store();
    store.write(|tx| tx.put_pod(&pod("p0", "keep", 0))).unwrap();
    let result = store.write(|tx| {
        tx.put_pod(&pod("p1", "web", 0))?;
        tx.put_container(&container("c1", "p1", "app", 0))?;
        tx.update_pod("p0", |p| p.state = PodState::NotReady)?;
        // Reads inside the transaction see its changes.
        assert_eq!(tx.containers_of_pod("p1")?.len(), 1);
        assert_eq!(tx.get_pod("p0")?.state, PodState::NotReady);
        Err::<(), _>(TestAbort::GiveUp)
    });
    assert!(matches!(result, Err(TestAbort::GiveUp)));
    assert!(store.pod("p1").unwrap().is_none());
    assert!(store.container("c1").unwrap().is_none());
    assert_eq!(store.get_pod("p0").unwrap().state, PodState::Ready);
    // Its names were never taken.
    store
        .write(|tx| {
            tx.put_pod(&pod("p2", "web", 0))?;
            tx.put_container(&container("c2", "p2", "app", 0))
        })
        .unwrap();
    // A StateError from a later step undoes the earlier ones.
    let err = store
        .write(|tx| {
            tx.put_pod(&pod("p3", "cache", 0))?;
            tx.put_container(&container("c3", "p2", "app", 0))
        })
        .unwrap_err();
    assert!(matches!(err, StateError::AlreadyExists { .. }), "{err}");
    assert!(store.pod("p3").unwrap().is_none());
    if let Err(TestAbort::State(e)) = store.write(|_| Err::<(), _>(TestAbort::GiveUp)) {
        panic!("unexpected {e}");
    }
}

#[test]
fn a_second_daemon_on_the_same_root_is_locked_out() {
    let (dir, store) = store();
    let err = StateStore::open_in(dir.path()).unwrap_err();
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
    drop(store);
    StateStore::open_in(dir.path()).unwrap();
}

/// A database of `n` chain transactions.
fn chain_file(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("state.redb");
    let store = StateStore::open(&path).expect("open a new store");
    for i in 0..n {
        store
            .write(|tx| chain_step(tx, i))
            .expect("write a chain transaction");
    }
    path
}

#[test]
fn a_damaged_file_is_reported_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = chain_file(&dir.path().join("truncated"), 40);
    let len = std::fs::metadata(&truncated).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let err = StateStore::open(&truncated).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");

    let flipped = chain_file(&dir.path().join("flipped"), 40);
    let mut bytes = std::fs::read(&flipped).unwrap();
    let at = bytes.len() / 3;
    for b in &mut bytes[at..at + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&flipped, &bytes).unwrap();
    let err = StateStore::open(&flipped).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");

    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x42; 64 << 10]).unwrap();
    assert!(StateStore::open(&junk).is_err());
}

// ---- the chain of transactions the crash and concurrency tests write ----

/// Annotation size of chain pods: several pages per transaction, so a kill can land mid-commit.
const BLOB: usize = 12 << 10;

fn chain_pod_id(i: usize) -> String {
    format!("pod{i:07}")
}

fn chain_ctr_id(i: usize) -> String {
    format!("ctr{i:07}")
}

fn exit_code(i: usize) -> i32 {
    i32::try_from(i % 256).expect("below 256")
}

/// The byte pod `i`'s annotation is made of.
fn blob_byte(i: usize) -> u8 {
    b'a' + u8::try_from(i % 26).expect("below 26")
}

/// Transaction `i` adds pod `i` with its container, and marks pod `i-1` not ready and its
/// container exited: every committed prefix of the chain has exactly one shape.
fn chain_step(tx: &mut WriteTx<'_>, i: usize) -> Result<(), StateError> {
    if let Some(prev) = i.checked_sub(1) {
        tx.update_pod(&chain_pod_id(prev), |p| p.state = PodState::NotReady)?;
        tx.update_container(&chain_ctr_id(prev), |c| {
            c.state = ContainerState::Exited;
            c.exit_code = exit_code(prev);
            c.finished_at = c.created_at + 1;
        })?;
    }
    let mut p = pod(&chain_pod_id(i), &format!("pod-{i}"), 0);
    p.annotations.insert(
        "blob".into(),
        char::from(blob_byte(i)).to_string().repeat(BLOB),
    );
    tx.put_pod(&p)?;
    let mut c = container(&chain_ctr_id(i), &p.id, "app", 0);
    c.state = ContainerState::Running;
    tx.put_container(&c)
}

/// Checks a snapshot holds a whole prefix of the chain and returns its length.
fn check_chain(r: &ReadTx) -> Result<usize, StateError> {
    let pods = r.list_pods(&PodFilter::default())?;
    let ctrs = r.list_containers(&ContainerFilter::default())?;
    let n = pods.len();
    assert_eq!(ctrs.len(), n, "pods and containers differ in number");
    for (i, (p, c)) in pods.iter().zip(&ctrs).enumerate() {
        let last = i + 1 == n;
        assert_eq!(p.id, chain_pod_id(i));
        assert_eq!(c.id, chain_ctr_id(i));
        assert_eq!(c.pod_id, p.id);
        assert_eq!(p.metadata.name, format!("pod-{i}"));
        let blob = &p.annotations["blob"];
        assert_eq!(blob.len(), BLOB, "pod {i}");
        assert!(blob.bytes().all(|b| b == blob_byte(i)), "pod {i}");
        if last {
            assert_eq!(p.state, PodState::Ready, "pod {i}");
            assert_eq!(c.state, ContainerState::Running, "container {i}");
        } else {
            assert_eq!(p.state, PodState::NotReady, "pod {i}");
            assert_eq!(c.state, ContainerState::Exited, "container {i}");
            assert_eq!(c.exit_code, exit_code(i));
        }
        assert_eq!(
            ids(&r.containers_of_pod(&p.id)?, |c| &c.id),
            [c.id.as_str()]
        );
    }
    Ok(n)
}

/// Every chain pod's name (and its container's) is reserved by that record.
fn check_chain_names(store: &StateStore, n: usize) -> Result<(), StateError> {
    store.write(|tx| {
        for i in 0..n {
            let clash = pod("other", &format!("pod-{i}"), 0);
            match tx.put_pod(&clash) {
                Err(StateError::AlreadyExists { holder, .. }) => {
                    assert_eq!(holder, chain_pod_id(i));
                }
                other => panic!("pod name {i} not reserved: {other:?}"),
            }
            let clash = container("other", &chain_pod_id(i), "app", 0);
            match tx.put_container(&clash) {
                Err(StateError::AlreadyExists { holder, .. }) => {
                    assert_eq!(holder, chain_ctr_id(i));
                }
                other => panic!("container name {i} not reserved: {other:?}"),
            }
        }
        Ok(())
    })
}

const CHILD_ENV: &str = "MOAT_STATE_CRASH_CHILD";

/// The writer the crash test kills; does nothing in a normal run.
#[test]
fn crash_child_writes_until_killed() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = StateStore::open(Path::new(&path)).unwrap();
    let mut i = store.read(check_chain).unwrap();
    println!("opened at {i}");
    loop {
        store.write(|tx| chain_step(tx, i)).unwrap();
        println!("committed {i}");
        i += 1;
    }
}

/// A small xorshift generator: the kill instants differ from run to run.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        Self(u64::from(t.subsec_nanos()) ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_at_any_moment_loses_no_commit_and_shows_no_partial_one() {
    const ROUNDS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut rng = Rng::new();
    let mut last_n = 0;
    for round in 0..ROUNDS {
        // Early kills land in open and repair; later ones among commits: those wait for the
        // writer's first commit (a loaded machine may take long to start it), then a while.
        let early = round % 3 == 0;
        let delay = if early {
            Duration::from_micros(rng.below(20_000))
        } else {
            Duration::from_micros(rng.below(300_000))
        };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writes_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let reader = thread::spawn(move || {
            let mut committed = None;
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if let Some(i) = line.strip_prefix("committed ") {
                    committed = Some(i.parse::<usize>().unwrap());
                    let _ = first_tx.send(());
                }
            }
            committed
        });
        if !early {
            first_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the writer committed nothing in a minute");
        }
        thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer stopped by itself"
        );
        let reported = reader.join().unwrap();

        let store = StateStore::open(&path).unwrap();
        let n = store.read(check_chain).unwrap();
        check_chain_names(&store, n).unwrap();
        assert!(
            n >= last_n,
            "round {round}: {n} transactions after {last_n}"
        );
        if let Some(i) = reported {
            // Every transaction reported committed is there; at most one more, whose report
            // the kill cut off.
            assert!(
                n == i + 1 || n == i + 2,
                "round {round}: {n} transactions stored, last reported {i}"
            );
        }
        println!(
            "round {round}: killed after {delay:?}, {n} transactions (reported up to {reported:?})"
        );
        last_n = n;
    }
    assert!(
        last_n > ROUNDS,
        "too few commits ({last_n}) to test anything"
    );
}

#[test]
fn readers_see_whole_transactions_while_a_writer_runs() {
    const TRANSACTIONS: usize = 150;
    const READERS: usize = 4;
    let (_dir, store) = store();
    let store = Arc::new(store);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            thread::spawn(move || {
                let (mut last, mut reads) = (0, 0usize);
                while !done.load(Ordering::Acquire) {
                    let n = store.read(check_chain).unwrap();
                    assert!(n >= last, "a snapshot went back from {last} to {n}");
                    if n > 0 {
                        let newest = store.get_pod(&chain_pod_id(n - 1)).unwrap();
                        assert_eq!(newest.id, chain_pod_id(n - 1));
                    }
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let start = Instant::now();
    for i in 0..TRANSACTIONS {
        store.write(|tx| chain_step(tx, i)).unwrap();
    }
    let writing = start.elapsed();
    done.store(true, Ordering::Release);
    let reads: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(
        reads.iter().all(|&r| r > 0),
        "a reader never ran: {reads:?}"
    );
    let n = store.read(check_chain).unwrap();
    assert_eq!(n, TRANSACTIONS);
    println!("{TRANSACTIONS} transactions in {writing:?}; snapshots checked per reader: {reads:?}");
}
