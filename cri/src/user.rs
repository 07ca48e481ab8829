//! Who a container's processes run as: the request's run_as_user / run_as_username /
//! run_as_group / supplemental groups, else the image config's `User`, looked up in the
//! container's own `/etc/passwd` and `/etc/group` (as the runtimes kubelet knows do).
//! May touch: the two files, opened beneath the container's mounted root (RESOLVE_IN_ROOT, so an
//! image symlink cannot make us read a host file).

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

/// Why the user could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} is not in the image's /etc/passwd")]
    NoSuchUser(String),
    #[error("group {0:?} is not in the image's /etc/group")]
    NoSuchGroup(String),
    #[error("{what} {value} is out of range")]
    Range { what: &'static str, value: i64 },
    #[error("cannot read {path} of the image")]
    Read {
        path: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What the request asks for (the image's `User` last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRequest {
    pub run_as_user: Option<i64>,
    pub run_as_username: String,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    pub image_user: String,
}

/// The decided identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group, the groups that list the user, the request's.
    pub groups: Vec<u32>,
    /// The home directory, for HOME when the environment has none.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: (*f.first()?).to_owned(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| (*s).to_owned()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: (*f.first()?).to_owned(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `path` beneath `rootfs`; a missing file reads as empty.
fn read_in_root(rootfs: &Path, path: &'static str) -> Result<String, UserError> {
    let err = |source| UserError::Read { path, source };
    let root = std::fs::File::open(rootfs).map_err(err)?;
    // Non-blocking, and only a regular file is read: a FIFO or device planted by the image
    // (or reached through a volume) must not hang or feed the create.
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = match crate::sys::open_in_root(root.as_fd(), Path::new(path), flags) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(err(e)),
    };
    let file = std::fs::File::from(fd);
    if !file.metadata().map_err(err)?.is_file() {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(4 << 20).read_to_end(&mut bytes).map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn id(what: &'static str, value: i64) -> Result<u32, UserError> {
    u32::try_from(value).map_err(|_| UserError::Range { what, value })
}

/// Decides the user of a container whose root is mounted at `rootfs`.
pub fn resolve(rootfs: &Path, req: &UserRequest) -> Result<User, UserError> {
    let passwd = parse_passwd(&read_in_root(rootfs, "/etc/passwd")?);
    let groups = parse_group(&read_in_root(rootfs, "/etc/group")?);
    resolve_with(&passwd, &groups, req)
}

fn resolve_with(
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
    req: &UserRequest,
) -> Result<User, UserError> {
    let by_name = |name: &str| {
        passwd
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| UserError::NoSuchUser(name.to_owned()))
    };
    let by_uid = |uid: u32| passwd.iter().find(|e| e.uid == uid);
    let (user_part, group_part) = match req.image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (req.image_user.as_str(), None),
    };
    let (uid, entry) = if let Some(uid) = req.run_as_user {
        let uid = id("run_as_user", uid)?;
        (uid, by_uid(uid))
    } else if !req.run_as_username.is_empty() {
        let e = by_name(&req.run_as_username)?;
        (e.uid, Some(e))
    } else if user_part.is_empty() {
        (0, by_uid(0))
    } else if let Ok(uid) = user_part.parse::<u32>() {
        (uid, by_uid(uid))
    } else {
        let e = by_name(user_part)?;
        (e.uid, Some(e))
    };
    let image_group = if req.run_as_user.is_none() && req.run_as_username.is_empty() {
        group_part.filter(|g| !g.is_empty())
    } else {
        None
    };
    let gid = match (req.run_as_group, image_group) {
        (Some(g), _) => id("run_as_group", g)?,
        (None, Some(g)) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|e| e.name == g)
                    .ok_or_else(|| UserError::NoSuchGroup(g.to_owned()))?
                    .gid
            }
        },
        (None, None) => entry.map_or(0, |e| e.gid),
    };
    let mut all = vec![gid];
    if let Some(e) = entry {
        all.extend(
            groups
                .iter()
                .filter(|g| g.members.contains(&e.name))
                .map(|g| g.gid),
        );
    }
    for g in &req.supplemental_groups {
        all.push(id("supplemental group", *g)?);
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|g| seen.insert(*g));
    Ok(User {
        uid,
        gid,
        groups: all,
        home: entry
            .map(|e| e.home.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken line\n";
    const GROUP: &str =
        "root:x:0:\nwww:x:33:\nalice:x:1000:\nvideo:x:44:alice,bob\naudio:x:29:bob\n";

    fn run(req: UserRequest) -> Result<User, UserError> {
        resolve_with(&parse_passwd(PASSWD), &parse_group(GROUP), &req)
    }

    #[test]
    fn request_fields_win_over_the_image_and_groups_come_from_etc_group() {
        let u = run(UserRequest {
            run_as_username: "alice".into(),
            supplemental_groups: vec![5000],
            image_user: "www".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone()),
            (1000, 1000, vec![1000, 44, 5000])
        );
        assert_eq!(u.home, "/home/alice");
        let u = run(UserRequest {
            run_as_user: Some(33),
            run_as_group: Some(7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (33, 7, "/var/www"));
    }

    #[test]
    fn image_user_forms() {
        let u = run(UserRequest::default()).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        let u = run(UserRequest {
            image_user: "www:video".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((u.uid, u.gid), (33, 44));
        let u = run(UserRequest {
            image_user: "4242:4343".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        let u = run(UserRequest {
            image_user: "4242".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
    }

    #[test]
    fn unknown_names_and_bad_ids_are_errors() {
        let e = |req| run(req).unwrap_err().to_string();
        assert!(e(UserRequest {
            run_as_username: "mallory".into(),
            ..Default::default()
        })
        .contains("mallory"));
        assert!(e(UserRequest {
            image_user: "www:nogroup".into(),
            ..Default::default()
        })
        .contains("nogroup"));
        assert!(e(UserRequest {
            run_as_user: Some(-1),
            ..Default::default()
        })
        .contains("out of range"));
    }
}
