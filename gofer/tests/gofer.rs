//! The real `moat-gofer` binary, booted the way the runtime boots it, serving a scratch tree
//! under its seccomp filter. Runs as root (the gofer pivot_roots into the tree).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use moat_gofer::{sys, Channel, GoferClient};
use moat_proto::boot::GoferBoot;
use moat_proto::gofer::{setattr, Attr, Reply, Request};
use moat_proto::wire::Message;

const HELLO: &[u8] = b"hello, gofer\n";

/// A scratch directory tree, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("moat-gofer-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let make = || -> std::io::Result<()> {
            fs::create_dir_all(dir.join("sub/nested"))?;
            fs::create_dir(dir.join("empty"))?;
            fs::write(dir.join("hello.txt"), HELLO)?;
            fs::set_permissions(dir.join("hello.txt"), fs::Permissions::from_mode(0o640))?;
            fs::write(dir.join("sub/nested/deep.txt"), b"deep")?;
            symlink("/etc/passwd", dir.join("passwd"))?;
            symlink("../../..", dir.join("sub/up"))
        };
        make().expect("cannot build the test tree");
        Tree(dir)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Spawns the gofer on `root` and returns it with the sentry's end of its socket.
fn spawn(root: &Path, read_only: bool) -> (Child, Channel) {
    let (boot, boot_theirs) = Channel::pair().expect("boot socket pair");
    let (sentry, gofer) = Channel::pair().expect("sentry socket pair");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat-gofer"));
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or("warn".into()),
    );
    let child = sys::spawn_with_boot_fd(&mut cmd, boot_theirs.into_fd()).expect("spawn gofer");
    let msg = GoferBoot {
        root: root.as_os_str().as_encoded_bytes().to_vec(),
        read_only,
    };
    boot.send_msg(&msg, &[gofer.as_fd()])
        .expect("send boot message");
    (child, sentry)
}

/// A gofer serving a fresh tree; killed and reaped on drop.
struct Gofer {
    client: Option<GoferClient>,
    child: Child,
    tree: Tree,
}

impl Gofer {
    fn start(read_only: bool) -> Gofer {
        let tree = Tree::new();
        let (child, chan) = spawn(&tree.0, read_only);
        Gofer {
            client: Some(GoferClient::new(chan)),
            child,
            tree,
        }
    }

    fn call(&self, req: Request) -> (Reply, Option<OwnedFd>) {
        let client = self.client.as_ref().expect("client already dropped");
        client.call(&req).expect("gofer call failed")
    }

    fn reply(&self, req: Request) -> Reply {
        let (reply, fd) = self.call(req);
        assert!(fd.is_none());
        reply
    }

    fn stat(&self, path: &str) -> Reply {
        self.reply(Request::Stat { path: path.into() })
    }

    fn attr(&self, path: &str) -> Attr {
        match self.stat(path) {
            Reply::Attr(a) => a,
            r => panic!("stat {path}: {r:?}"),
        }
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn err(errno: i32) -> Reply {
    Reply::Err(errno.unsigned_abs())
}

fn create(name: &str) -> Request {
    create_in("sub", name, 0o600)
}

fn create_in(dir: &str, name: &str, mode: u32) -> Request {
    Request::Create {
        dir: dir.into(),
        name: name.into(),
        flags: libc::O_RDWR.unsigned_abs(),
        mode,
        uid: 1234,
        gid: 5678,
    }
}

fn wait_with_timeout(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for gofer") {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gofer did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stat_reports_the_host_files_size_mode_and_inode() {
    let g = Gofer::start(false);
    let a = g.attr("hello.txt");
    let host = fs::symlink_metadata(g.tree.path("hello.txt")).unwrap();
    assert_eq!(a.size, HELLO.len() as u64);
    assert_eq!(a.mode, libc::S_IFREG | 0o640);
    assert_eq!((a.ino, a.nlink), (host.ino(), 1));
    assert_eq!(g.attr("").mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!(g.attr("sub/nested/deep.txt").size, 4);
    assert_eq!(g.stat("missing"), err(libc::ENOENT));
    assert_eq!(g.stat("hello.txt/x"), err(libc::ENOTDIR));
}

#[test]
fn readdir_lists_every_entry_but_dot_and_dotdot() {
    let g = Gofer::start(false);
    let names = |path: &str| match g.reply(Request::ReadDir { path: path.into() }) {
        Reply::Dirents(d) => {
            let mut n: Vec<_> = d.into_iter().map(|d| d.name).collect();
            n.sort();
            n
        }
        r => panic!("readdir {path}: {r:?}"),
    };
    let want: Vec<Vec<u8>> = ["empty", "hello.txt", "passwd", "sub"]
        .map(Into::into)
        .into();
    assert_eq!(names(""), want);
    assert_eq!(names("sub"), vec![b"nested".to_vec(), b"up".to_vec()]);
    assert!(names("empty").is_empty());
    assert_eq!(
        g.reply(Request::ReadDir {
            path: "hello.txt".into()
        }),
        err(libc::ENOTDIR)
    );
}

#[test]
fn readdir_of_a_large_directory_fits_one_reply() {
    let g = Gofer::start(false);
    let big = g.tree.path("big");
    fs::create_dir(&big).unwrap();
    for i in 0..12_000 {
        fs::write(
            big.join(format!("entry-with-a-fairly-long-name-{i:06}")),
            b"",
        )
        .unwrap();
    }
    match g.reply(Request::ReadDir { path: "big".into() }) {
        Reply::Dirents(d) => assert_eq!(d.len(), 12_000),
        r => panic!("readdir big: {r:?}"),
    }
}

#[test]
fn open_hands_over_an_fd_that_reads_the_file() {
    let g = Gofer::start(false);
    let (reply, fd) = g.call(Request::Open {
        path: "hello.txt".into(),
        flags: libc::O_RDONLY.unsigned_abs(),
    });
    assert!(matches!(reply, Reply::Opened(a) if a.size == HELLO.len() as u64));
    let mut buf = Vec::new();
    fs::File::from(fd.unwrap()).read_to_end(&mut buf).unwrap();
    assert_eq!(buf, HELLO);
    let (reply, fd) = g.call(Request::Open {
        path: "".into(),
        flags: libc::O_DIRECTORY.unsigned_abs(),
    });
    assert!(matches!(reply, Reply::Opened(_)) && fd.is_some());
    let bad_flags = Request::Open {
        path: "hello.txt".into(),
        flags: libc::O_CREAT.unsigned_abs(),
    };
    assert_eq!(g.reply(bad_flags), err(libc::EINVAL));
}

#[test]
fn devices_are_never_opened_or_made() {
    let g = Gofer::start(false);
    let made = Command::new("mknod")
        .arg(g.tree.path("null"))
        .args(["c", "1", "3"])
        .status();
    assert!(made.unwrap().success());
    let open = Request::Open {
        path: "null".into(),
        flags: libc::O_RDWR.unsigned_abs(),
    };
    assert_eq!(g.reply(open), err(libc::EACCES));
    let mknod = |mode| Request::Mknod {
        dir: "".into(),
        name: "dev".into(),
        mode,
        rdev: libc::makedev(1, 3),
        uid: 0,
        gid: 0,
    };
    assert_eq!(g.reply(mknod(libc::S_IFCHR | 0o600)), err(libc::EPERM));
    assert_eq!(g.reply(mknod(libc::S_IFBLK | 0o600)), err(libc::EPERM));
    let fifo = g.reply(mknod(libc::S_IFIFO | 0o600));
    assert!(
        matches!(fifo, Reply::Attr(a) if a.mode == libc::S_IFIFO | 0o600),
        "{fifo:?}"
    );
    // A FIFO opens without waiting for a writer.
    let (reply, fd) = g.call(Request::Open {
        path: "dev".into(),
        flags: libc::O_RDONLY.unsigned_abs(),
    });
    assert!(matches!(reply, Reply::Opened(_)) && fd.is_some());
}

#[test]
fn create_write_and_stat_in_a_writable_root() {
    let g = Gofer::start(false);
    let (reply, fd) = g.call(create("new.txt"));
    let Reply::Opened(a) = reply else {
        panic!("create: {reply:?}")
    };
    assert_eq!((a.mode, a.uid, a.gid), (libc::S_IFREG | 0o600, 1234, 5678));
    fs::File::from(fd.unwrap()).write_all(b"written").unwrap();
    assert_eq!(g.attr("sub/new.txt").size, 7);
    assert_eq!(fs::read(g.tree.path("sub/new.txt")).unwrap(), b"written");
    assert_eq!(g.reply(create("new.txt")), err(libc::EEXIST));
    // set-id bits survive the chown that follows the create.
    let (reply, _) = g.call(create_in("sub", "suid", 0o4755));
    assert!(
        matches!(reply, Reply::Opened(a) if a.mode == libc::S_IFREG | 0o4755),
        "{reply:?}"
    );
}

#[test]
fn a_read_only_root_refuses_every_change() {
    let g = Gofer::start(true);
    assert_eq!(g.reply(create("new.txt")), err(libc::EROFS));
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC] {
        let open = Request::Open {
            path: "hello.txt".into(),
            flags: flags.unsigned_abs(),
        };
        assert_eq!(g.reply(open), err(libc::EROFS));
    }
    let changes = [
        Request::Mkdir {
            dir: "".into(),
            name: "d".into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
        Request::Unlink {
            dir: "".into(),
            name: "hello.txt".into(),
            rmdir: false,
        },
        Request::SetAttr {
            path: "hello.txt".into(),
            mask: setattr::MODE,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            atime: (0, 0),
            mtime: (0, 0),
        },
    ];
    for req in changes {
        assert_eq!(g.reply(req), err(libc::EROFS));
    }
    let (reply, fd) = g.call(Request::Open {
        path: "hello.txt".into(),
        flags: libc::O_RDONLY.unsigned_abs(),
    });
    assert!(matches!(reply, Reply::Opened(_)) && fd.is_some());
    assert_eq!(fs::read(g.tree.path("hello.txt")).unwrap(), HELLO);
}

#[test]
fn symlinks_are_read_but_never_followed() {
    let g = Gofer::start(false);
    assert_eq!(g.attr("passwd").mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(g.stat("passwd/x"), err(libc::ELOOP));
    assert_eq!(g.stat("sub/up/etc"), err(libc::ELOOP));
    assert_eq!(g.stat("sub/up/tmp/x"), err(libc::ELOOP));
    let open = Request::Open {
        path: "passwd".into(),
        flags: libc::O_RDONLY.unsigned_abs(),
    };
    assert_eq!(g.reply(open), err(libc::ELOOP));
    let readdir = |path: &str| g.reply(Request::ReadDir { path: path.into() });
    assert_eq!(readdir("sub/up"), err(libc::ENOTDIR));
    assert_eq!(readdir("sub/up/tmp"), err(libc::ELOOP));
    let readlink = |path: &str| g.reply(Request::Readlink { path: path.into() });
    assert_eq!(readlink("passwd"), Reply::Bytes(b"/etc/passwd".to_vec()));
    assert_eq!(readlink("sub/up"), Reply::Bytes(b"../../..".to_vec()));
    assert_eq!(readlink("hello.txt"), err(libc::EINVAL));
    // A symlink as the directory to create in is not one; through one is ELOOP.
    assert_eq!(g.reply(create_in("sub/up", "x", 0o600)), err(libc::ENOTDIR));
    assert_eq!(
        g.reply(create_in("sub/up/tmp", "x", 0o600)),
        err(libc::ELOOP)
    );
}

#[test]
fn paths_leaving_the_root_are_einval() {
    let g = Gofer::start(false);
    for path in [
        "../x",
        "/etc",
        "/",
        "a/../b",
        "sub/..",
        "./hello.txt",
        "sub//nested",
        "sub/",
    ] {
        assert_eq!(g.stat(path), err(libc::EINVAL), "{path}");
    }
    assert_eq!(g.stat("hello\0.txt"), err(libc::EINVAL));
    let unlink = |name: &str| Request::Unlink {
        dir: "sub".into(),
        name: name.into(),
        rmdir: true,
    };
    for name in ["..", ".", "nested/x", ""] {
        assert_eq!(g.reply(unlink(name)), err(libc::EINVAL), "{name}");
    }
}

#[test]
fn a_garbage_packet_gets_einval_and_the_next_request_still_works() {
    let tree = Tree::new();
    let (mut child, chan) = spawn(&tree.0, false);
    let stat = Request::Stat {
        path: b"hello.txt".to_vec(),
    };
    let mut truncated = stat.encode();
    truncated.pop();
    for garbage in [
        &[0xff, 1, 2, 3][..],
        &[1, 0xff, 0xff, 0xff, 0xff],
        &truncated,
    ] {
        chan.send(garbage, &[]).unwrap();
        let (reply, fds) = chan.recv_msg::<Reply>().unwrap();
        assert_eq!((reply, fds.len()), (err(libc::EINVAL), 0));
    }
    // Fds the sentry attaches are dropped, not kept or used.
    chan.send(&stat.encode(), &[chan.as_fd()]).unwrap();
    let (reply, _) = chan.recv_msg::<Reply>().unwrap();
    assert!(matches!(reply, Reply::Attr(a) if a.size == HELLO.len() as u64));
    let client = GoferClient::new(chan);
    let (reply, _) = client.call(&stat).unwrap();
    assert!(matches!(reply, Reply::Attr(_)));
    drop(client);
    assert!(wait_with_timeout(&mut child).success());
}

#[test]
fn rename_link_and_unlink_change_the_tree() {
    let g = Gofer::start(false);
    let rename = |old: &str, new: &str, flags| Request::Rename {
        old_dir: "".into(),
        old_name: old.into(),
        new_dir: "sub/nested".into(),
        new_name: new.into(),
        flags,
    };
    assert_eq!(g.reply(rename("hello.txt", "moved", 0)), Reply::Ok);
    assert_eq!(g.stat("hello.txt"), err(libc::ENOENT));
    assert_eq!(g.attr("sub/nested/moved").size, HELLO.len() as u64);
    let noreplace = rename("passwd", "moved", libc::RENAME_NOREPLACE);
    assert_eq!(g.reply(noreplace), err(libc::EEXIST));
    assert_eq!(g.reply(rename("passwd", "x", 0x100)), err(libc::EINVAL));

    let link = Request::Link {
        old: "sub/nested/moved".into(),
        dir: "".into(),
        name: "hard".into(),
    };
    assert!(matches!(g.reply(link), Reply::Attr(a) if a.nlink == 2));
    // A symlink is linked itself, not its target.
    let link = Request::Link {
        old: "passwd".into(),
        dir: "".into(),
        name: "passwd2".into(),
    };
    assert!(matches!(g.reply(link), Reply::Attr(a) if a.mode & libc::S_IFMT == libc::S_IFLNK));

    let unlink = |dir: &str, name: &str, rmdir| Request::Unlink {
        dir: dir.into(),
        name: name.into(),
        rmdir,
    };
    assert_eq!(g.reply(unlink("sub/nested", "moved", false)), Reply::Ok);
    assert_eq!(g.attr("hard").nlink, 1);
    assert_eq!(g.reply(unlink("", "empty", false)), err(libc::EISDIR));
    assert_eq!(g.reply(unlink("", "empty", true)), Reply::Ok);
    assert_eq!(g.reply(unlink("", "sub", true)), err(libc::ENOTEMPTY));
    assert!(!g.tree.path("empty").exists());
}

#[test]
fn mkdir_symlink_setattr_and_statfs() {
    let g = Gofer::start(false);
    let mkdir = Request::Mkdir {
        dir: "sub".into(),
        name: "d".into(),
        mode: 0o2750,
        uid: 7,
        gid: 8,
    };
    let reply = g.reply(mkdir);
    assert!(
        matches!(reply, Reply::Attr(a) if (a.mode, a.uid, a.gid) == (libc::S_IFDIR | 0o2750, 7, 8)),
        "{reply:?}"
    );
    let symlink = Request::Symlink {
        dir: "sub/d".into(),
        name: "l".into(),
        target: b"../../hello.txt".to_vec(),
        uid: 9,
        gid: 10,
    };
    assert!(matches!(g.reply(symlink), Reply::Attr(a) if a.uid == 9 && a.size == 15));
    let readlink = Request::Readlink {
        path: "sub/d/l".into(),
    };
    assert_eq!(g.reply(readlink), Reply::Bytes(b"../../hello.txt".to_vec()));

    let setattr_at = |path: &str, mask, mode, size, times| Request::SetAttr {
        path: path.into(),
        mask,
        mode,
        uid: 11,
        gid: 12,
        size,
        atime: times,
        mtime: times,
    };
    let setattr = |mask, mode, size, times| setattr_at("hello.txt", mask, mode, size, times);
    let all = setattr::MODE
        | setattr::UID
        | setattr::GID
        | setattr::SIZE
        | setattr::ATIME
        | setattr::MTIME;
    let a = match g.reply(setattr(all, 0o600, 5, (1_000_000, 42))) {
        Reply::Attr(a) => a,
        r => panic!("setattr: {r:?}"),
    };
    assert_eq!(
        (a.mode, a.uid, a.gid, a.size),
        (libc::S_IFREG | 0o600, 11, 12, 5)
    );
    assert_eq!((a.atime, a.mtime), ((1_000_000, 42), (1_000_000, 42)));
    assert_eq!(fs::read(g.tree.path("hello.txt")).unwrap(), &HELLO[..5]);
    let now = setattr::MTIME | setattr::MTIME_NOW;
    let a = match g.reply(setattr(now, 0, 0, (0, 0))) {
        Reply::Attr(a) => a,
        r => panic!("setattr now: {r:?}"),
    };
    // (The read above may have moved atime: relatime.)
    assert!(a.mtime.0 > 1_000_000, "{a:?}");
    assert_eq!(g.reply(setattr(1 << 20, 0, 0, (0, 0))), err(libc::EINVAL));
    let truncate_dir = setattr_at("sub", setattr::SIZE, 0, 0, (0, 0));
    assert_eq!(g.reply(truncate_dir), err(libc::EISDIR));

    match g.reply(Request::StatFs { path: "".into() }) {
        Reply::FsStat(s) => assert!(s.bsize > 0 && s.namelen > 0),
        r => panic!("statfs: {r:?}"),
    }
}

#[test]
fn the_host_root_itself_can_be_served_read_only() {
    let (mut child, chan) = spawn(Path::new("/"), true);
    let client = GoferClient::new(chan);
    let stat = Request::Stat {
        path: b"etc/passwd".to_vec(),
    };
    let host = fs::symlink_metadata("/etc/passwd").unwrap();
    let (reply, _) = client.call(&stat).unwrap();
    assert!(matches!(reply, Reply::Attr(a) if (a.ino, a.size) == (host.ino(), host.size())));
    let (reply, _) = client.call(&create_in("tmp", "x", 0o600)).unwrap();
    assert_eq!(reply, err(libc::EROFS));
    drop(client);
    assert!(wait_with_timeout(&mut child).success());
}

#[test]
fn the_gofer_runs_under_its_seccomp_filter() {
    let g = Gofer::start(false);
    g.attr("hello.txt");
    let status = fs::read_to_string(format!("/proc/{}/status", g.child.id())).unwrap();
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
}

#[test]
fn the_gofer_exits_zero_when_the_sentry_hangs_up() {
    let mut g = Gofer::start(false);
    g.attr("hello.txt");
    g.client = None;
    assert!(wait_with_timeout(&mut g.child).success());
}
