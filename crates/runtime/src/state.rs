//! Containers created by `rocker-runtime create` live on after the process that made them:
//! their state is a directory under the runtime's root (`--root`), one per container,
//! holding `state.json`, the exec FIFO until `start`, and a lock file that serializes the
//! commands acting on the container.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};
use serde::{Deserialize, Serialize};

/// What is kept about a container between runtime invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    /// The init's pid in the runtime's PID namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat): a pid reused by another process
    /// after the init exited has a different one.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    /// The container's cgroup directories: (hierarchy, path) per v1 hierarchy, or one
    /// unnamed on v2, as `cgroups::Manager::dirs` gives them.
    pub cgroup: Vec<(String, PathBuf)>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The spec's hooks as create saw them (`null`: none): start and delete run poststart and
    /// poststop from here, without reading config.json again. Missing (outer None) in a
    /// record written by an older rocker-runtime.
    #[serde(default, deserialize_with = "present")]
    pub hooks: Option<Option<oci_spec::runtime::Hooks>>,
    /// The container's root in a mount namespace it joined by path, to be removed from
    /// there when it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_root: Option<JoinedRoot>,
}

/// Where a container's root is mounted in a mount namespace it joined by path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinedRoot {
    pub namespace: crate::namespaces::JoinedPath,
    /// The path the init bound there (the rootfs, canonical).
    pub path: PathBuf,
    /// The bind's mount id (see `rootfs::release_joined`).
    pub mount_id: u64,
}

/// A field that is there, even as `null`: Some (serde would read `null` as a missing one).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The OCI statuses (and `paused`, as runc reports it). `creating` is only ever told to the
/// hooks that run during create: a container's state is recorded once it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str: tables format statuses with a width.
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

const STATE_FILE: &str = "state.json";
const FIFO: &str = "exec.fifo";
const LOCK: &str = ".lock";

/// A container's state directory, locked for as long as this value lives.
pub struct StateDir {
    pub id: String,
    dir: PathBuf,
    /// Holds a POSIX record lock on the directory's lock file, the whole file: such a lock
    /// is the process's, so the container's init, a fork of the runtime, does not keep it
    /// (a `flock` would stay held through the init's copy of the descriptor while it waits
    /// for `start`, when the runtime that took it was killed: every later command on the
    /// container would wait for ever). It goes when the process closes the file or ends.
    _lock: File,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io { op, path: path.to_path_buf(), source }
}

impl StateDir {
    /// Makes the directory of a new container; fails if the id is taken. The directory
    /// appears whole, its lock taken: made under a temporary name, then renamed into place,
    /// so that no other command finds it without its lock file (`delete` would take it for
    /// what a killed create left, and remove it from under this one).
    pub fn create(root: &Path, id: &str) -> Result<StateDir, StateError> {
        check_id(id)?;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(io_err("mkdir", root))?;
        let dir = root.join(id);
        let tmp = root.join(format!("{CREATING}{id}.{}", std::process::id()));
        let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(&tmp);
        match mkdir() {
            // Left by a dead process that had our pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_dir_all(&tmp);
                mkdir()
            }
            r => r,
        }
        .map_err(io_err("mkdir", &tmp))?;
        let lock_path = tmp.join(LOCK);
        let made = File::options()
            .create_new(true)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("create", &lock_path))
            .and_then(|file| lock_whole(file, &lock_path))
            .and_then(|lock| {
                let flags = nix::fcntl::RenameFlags::RENAME_NOREPLACE;
                match nix::fcntl::renameat2(nix::fcntl::AT_FDCWD, &tmp, nix::fcntl::AT_FDCWD, &dir, flags) {
                    Ok(()) => Ok(StateDir { id: id.to_string(), dir, _lock: lock }),
                    Err(nix::errno::Errno::EEXIST) => Err(StateError::Exists(id.into())),
                    Err(e) => Err(StateError::Io { op: "rename", path: tmp.clone(), source: e.into() }),
                }
            });
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        made
    }

    /// Opens and locks an existing container's directory, waiting for other commands on it.
    pub fn open(root: &Path, id: &str) -> Result<StateDir, StateError> {
        check_id(id)?;
        let state = Self::lock(id, root.join(id))?;
        // A delete that held the lock before us may have removed everything meanwhile.
        if !state.dir.join(STATE_FILE).exists() {
            return Err(StateError::NotFound(id.into()));
        }
        Ok(state)
    }

    /// Removes the directory of a container without a record, all a `create` killed before
    /// its first record leaves (it records before it makes anything else), and the temporary
    /// ones of creates killed before their rename. Nothing to do if there is no such
    /// directory, or if it has a record by the time we hold its lock.
    pub fn remove_unrecorded(root: &Path, id: &str) -> Result<(), StateError> {
        check_id(id)?;
        remove_abandoned_creates(root, id);
        match Self::lock(id, root.join(id)) {
            Err(StateError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
            Ok(state) if state.dir.join(STATE_FILE).exists() => Ok(()),
            Ok(state) => state.remove(),
        }
    }

    fn lock(id: &str, dir: PathBuf) -> Result<StateDir, StateError> {
        let path = dir.join(LOCK);
        let file = match File::options().write(true).open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotFound(id.into())),
            r => r.map_err(io_err("open", &path))?,
        };
        let lock = lock_whole(file, &path)?;
        // Removed while we waited (by the delete that held the lock).
        match lock.metadata() {
            Ok(m) if std::os::unix::fs::MetadataExt::nlink(&m) == 0 => Err(StateError::NotFound(id.into())),
            Ok(_) => Ok(StateDir { id: id.to_string(), dir, _lock: lock }),
            Err(e) => Err(StateError::Io { op: "stat", path, source: e }),
        }
    }

    pub fn load(&self) -> Result<Record, StateError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Replaces state.json atomically: a crash leaves the old file or the new one.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(record).expect("a record always serializes");
        std::fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    /// Removes the directory (the lock goes with it; waiters then find no state.json).
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))
    }
}

/// The prefix of a state directory being made (see [`StateDir::create`]).
const CREATING: &str = ".creating.";

/// A POSIX record lock on the whole of `file`, waited for.
fn lock_whole(file: File, path: &Path) -> Result<File, StateError> {
    let whole_file = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    loop {
        match fcntl(&file, FcntlArg::F_SETLKW(&whole_file)) {
            Ok(_) => return Ok(file),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(StateError::Io { op: "lock", path: path.to_path_buf(), source: e.into() }),
        }
    }
}

/// Removes the temporary directories of creates of `id` whose process is gone: a create
/// killed before its directory was renamed into place leaves one. (Its name ends with the
/// creator's pid; one that another process has taken since keeps it for a later delete.)
fn remove_abandoned_creates(root: &Path, id: &str) {
    let prefix = format!("{CREATING}{id}.");
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).filter(|p| p.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The ids of all containers under `root`.
pub fn list(root: &Path) -> Result<Vec<String>, StateError> {
    let entries = match std::fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.map_err(io_err("read", root))?,
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.into()))
    }
}

/// A process's /proc/PID/stat, if it exists.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = crate::cgroups::read_virtual(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    // Fields 3 (state) and 22 (starttime), counted from 1 before the name.
    Some(ProcStat { state: fields.first()?.chars().next()?, start: fields.get(19)?.parse().ok()? })
}

/// What /proc/PID/stat tells the runtime about a process.
pub struct ProcStat {
    pub state: char,
    /// Clock ticks after boot: with the pid, it names a process (pids are reused).
    pub start: u64,
}

/// Now, as RFC 3339 in UTC (what runc's `state` prints as `created`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn our_own_stat_parses() {
        let stat = proc_stat(std::process::id() as i32).unwrap();
        assert!("RS".contains(stat.state));
        assert!(stat.start > 0);
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn hooks_kept_none_kept_and_not_kept_are_told_apart() {
        let base = serde_json::json!({"id": "x", "pid": 1, "pidStart": 2, "bundle": "/b", "rootfs": "/b/r",
            "created": "t", "cgroup": []});
        let read = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<Record>(v).unwrap().hooks
        };
        assert!(read(serde_json::json!({})).is_none(), "an older record: not kept");
        assert!(matches!(read(serde_json::json!({"hooks": null})), Some(None)), "kept: none");
        assert!(matches!(read(serde_json::json!({"hooks": {"poststop": []}})), Some(Some(_))));
    }
}
