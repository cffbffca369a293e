//! File operations on cgroup directories, with errors that carry the path that failed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} has processes of its own, so cgroup v2 cannot delegate controllers below it (the no-internal-processes rule): use an absolute --cgroup-parent, or run from a cgroup without processes")]
    InternalProcesses { path: PathBuf },
    #[error("cgroup {0} already exists: another container uses this cgroups path")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    DeviceFilter {
        path: PathBuf,
        #[source]
        source: super::bpf::BpfError,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid cgroup path {0:?}: use a path without '..' components")]
    InvalidPath(String),
    #[error("no cgroup v1 hierarchy with the {0} controller is mounted under /sys/fs/cgroup")]
    NoHierarchy(&'static str),
    #[error("no cgroup v1 hierarchy is mounted under /sys/fs/cgroup: mount the controllers, or boot with cgroup v2")]
    NoHierarchies,
    #[error("cannot read this process's cgroup from /proc/self/cgroup: {0}")]
    OwnCgroup(String),
    #[error("the {controller} controller is not available in {path} (cgroup.controllers); enable it in the parent's cgroup.subtree_control")]
    ControllerUnavailable { controller: String, path: PathBuf },
    #[error("linux.resources.cpu.realtimeRuntime: {path} does not exist: this kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED), so a container cannot be given a real-time budget; leave realtimeRuntime and realtimePeriod out")]
    RealtimeUnsupported { path: PathBuf },
    #[error("write {path}: a real-time runtime of {runtime} µs must not exceed the period, and the parent cgroup must have that share of real-time time left in its own cpu.rt_runtime_us (a new cgroup has none: give the parent a budget first): {source}")]
    RealtimeBudget {
        path: PathBuf,
        runtime: i64,
        #[source]
        source: io::Error,
    },
    #[error("{path} still has processes after they were killed; it was left in place")]
    Busy { path: PathBuf },
}

/// Writes one value to an existing control file: opened for writing only (no O_CREAT, whose
/// lookup locks the directory, nor O_TRUNC), and in one write, as the kernel parses it.
pub fn write(dir: &Path, file: &str, value: impl AsRef<[u8]>) -> Result<(), CgroupError> {
    use std::io::Write;
    std::fs::File::from(open_for_writing(dir, file)?)
        .write_all(value.as_ref())
        .map_err(|source| CgroupError::Io { op: "write", path: dir.join(file), source })
}

/// A control file opened for writing only, for a write now or later (possibly by another
/// process).
pub fn open_for_writing(dir: &Path, file: &str) -> Result<std::os::fd::OwnedFd, CgroupError> {
    let path = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(std::os::fd::OwnedFd::from)
        .map_err(|source| CgroupError::Io { op: "open", path, source })
}

/// What `fd` is open on, for an error message.
pub fn fd_path(fd: &std::os::fd::OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    read_virtual(&path).map_err(|source| CgroupError::Io { op: "read", path, source })
}

/// Reads a /proc or /sys file. Such files report size 0, so `fs::read_to_string` starts
/// with a 32-byte read and grows: mountinfo took seven system calls, each regenerating the
/// whole table. One large buffer takes it in one or two.
pub fn read_virtual(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The value of `key` in a flat-keyed file such as `memory.events` ("oom_kill 3").
pub fn read_key(dir: &Path, file: &str, key: &str) -> Result<u64, CgroupError> {
    Ok(read(dir, file)?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Creates the container's cgroup `dir`, which must not exist yet, and any missing parents;
/// returns the directories it made, outermost first, so the caller can initialise each one.
pub fn create_leaf(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mkdir_leaf = || match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CgroupError::Exists(dir.to_path_buf())),
        r => r.map_err(|source| CgroupError::Io { op: "mkdir", path: dir.to_path_buf(), source }),
    };
    // The parent usually exists: one mkdir is the whole job.
    match mkdir_leaf() {
        Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        r => return r.map(|()| vec![dir.to_path_buf()]),
    }
    let mut made: Vec<PathBuf> =
        dir.ancestors().skip(1).take_while(|p| !p.exists()).map(Path::to_path_buf).collect();
    made.reverse();
    for d in &made {
        if let Err(source) = std::fs::create_dir(d) {
            // Another container may have created a shared parent just now.
            if !d.is_dir() {
                return Err(CgroupError::Io { op: "mkdir", path: d.clone(), source });
            }
        }
    }
    mkdir_leaf()?;
    made.push(dir.to_path_buf());
    Ok(made)
}

/// Removes a container's cgroup directory, and any cgroups the container made inside it,
/// deepest first. The init's exit already took down its PID namespace, so normally nothing
/// is left to kill; what is left (a container without its own PID namespace) is killed.
pub fn remove(dir: &Path) -> Result<(), CgroupError> {
    // An empty cgroup, the usual case, goes with one rmdir: only a busy one is looked into.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&e.path())?;
            }
        }
    }
    for attempt in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // Busy only while processes remain; killing them and waiting for their exit helps.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && kill_all(dir) => {
                std::thread::sleep(Duration::from_millis(2 * attempt.min(10) + 1));
            }
            Err(source) => return Err(CgroupError::Io { op: "rmdir", path: dir.to_path_buf(), source }),
        }
    }
    Err(CgroupError::Busy { path: dir.to_path_buf() })
}

/// A file holding one number ("max", or a value beyond i64, counts as 0: no limit).
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    Ok(text.trim().parse::<u64>().ok().filter(|&v| v < i64::MAX as u64).unwrap_or(0))
}

/// The processes in `dir` (not in cgroups below it).
pub fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    Ok(read(dir, "cgroup.procs")?.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Kills every process in `dir`; false if there was none.
fn kill_all(dir: &Path) -> bool {
    let Ok(pids) = procs(dir) else { return false };
    for &pid in &pids {
        // The process may have exited meanwhile; that is what we want anyway.
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    !pids.is_empty()
}
