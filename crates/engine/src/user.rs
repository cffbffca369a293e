//! `--user` / an image's `User`: `name|uid[:group|gid]`, names looked up in the container's own
//! /etc/passwd and /etc/group (read inside its root, never the host's), as Docker does.

use std::path::Path;

use oci_spec::runtime::{User, UserBuilder};

use crate::error::EngineError;

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// /etc/passwd and /etc/group are small; a bigger one is not read (names then fail).
const DATABASE_LIMIT: u64 = 4 << 20;

fn read(rootfs: &Path, file: &str) -> String {
    // A root filesystem without the file (or with a FIFO, device or huge file there) has no
    // names: numeric ids still work.
    rocker_runtime::read_in_root(rootfs, Path::new(file), DATABASE_LIMIT)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn passwd(rootfs: &Path) -> Vec<Passwd> {
    read(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn groups(rootfs: &Path) -> Vec<Group> {
    read(rootfs, "/etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The process user for `spec` (`None`: root) in the root filesystem at `rootfs`, and its
/// home directory (Docker's HOME): /etc/passwd's, or `/` where it names none.
pub fn resolve(spec: Option<&str>, rootfs: &Path) -> Result<(User, String), EngineError> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("0");
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let entry = match user.parse::<u32>() {
        // An id /etc/passwd does not name: group 0 and HOME=/ (Docker's and runc's default).
        Ok(uid) => users.into_iter().find(|p| p.uid == uid).or(Some(Passwd {
            name: String::new(),
            uid,
            gid: 0,
            home: String::new(),
        })),
        Err(_) => users.into_iter().find(|p| p.name == user),
    };
    let Passwd { name, uid, gid: primary, home } = entry.ok_or_else(|| {
        EngineError::InvalidArgument(format!(
            "unable to find user {user}: no matching entries in the container's /etc/passwd (use a numeric UID)"
        ))
    })?;
    // With an explicit group Docker sets only that one; otherwise the user's groups too
    // (/etc/group lists members by name: a user without one has none).
    let (gid, additional): (u32, Vec<u32>) = match group {
        None if name.is_empty() => (primary, vec![]),
        None => {
            let theirs = groups(rootfs).into_iter().filter(|g| g.members.contains(&name) && g.gid != primary);
            (primary, theirs.map(|g| g.gid).collect())
        }
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => (gid, vec![]),
            Err(_) => {
                let gid = groups(rootfs).into_iter().find(|e| e.name == g).map(|e| e.gid).ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "unable to find group {g}: no matching entries in the container's /etc/group (use a numeric GID)"
                    ))
                })?;
                (gid, vec![])
            }
        },
    };
    let mut builder = UserBuilder::default().uid(uid).gid(gid);
    if !additional.is_empty() {
        builder = builder.additional_gids(additional);
    }
    let user = builder.build().map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
    Ok((user, if home.is_empty() { "/".into() } else { home }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rocker-user-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = rootfs();
        let (u, home) = resolve(Some("alice"), &r).unwrap();
        assert_eq!((u.uid(), u.gid(), u.additional_gids().clone()), (1000, 1000, Some(vec![10, 29])));
        assert_eq!(home, "/home/alice");
        let (u, _) = resolve(Some("alice:wheel"), &r).unwrap();
        assert_eq!((u.uid(), u.gid(), u.additional_gids().clone()), (1000, 10, None));
        let (u, home) = resolve(Some("4242:7"), &r).unwrap();
        assert_eq!((u.uid(), u.gid(), home.as_str()), (4242, 7, "/"));
        let (u, home) = resolve(None, &r).unwrap();
        assert_eq!((u.uid(), u.gid(), home.as_str()), (0, 0, "/root"));
        assert!(resolve(Some("mallory"), &r)
            .unwrap_err()
            .to_string()
            .contains("unable to find user mallory"));
        assert!(resolve(Some("alice:nogroup"), &r).is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_fifo_or_device_as_passwd_is_not_read() {
        let r = rootfs();
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(&r.join("etc/passwd"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        // Without O_NONBLOCK and the type check this blocks for ever.
        assert!(resolve(Some("alice"), &r).is_err());
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        nix::sys::stat::mknod(
            &r.join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        assert!(resolve(Some("alice"), &r).is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_symlink_out_of_the_rootfs_is_not_followed() {
        let r = rootfs();
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        // Followed on the host this reads the host's /etc/passwd (which has root); inside the
        // rootfs it points at itself, so no user is found.
        std::os::unix::fs::symlink("/etc/passwd", r.join("etc/passwd")).unwrap();
        assert!(resolve(Some("root"), &r).is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }
}
