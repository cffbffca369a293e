//! Cgroups: one [`Manager`] trait, a v1 and a v2 backend, one small file per controller.
//!
//! The backend is chosen by what the host mounts at `/sys/fs/cgroup`: a cgroup2 filesystem
//! there means the unified hierarchy (v2); anything else (a tmpfs of v1 hierarchies, possibly
//! with a controller-less cgroup2 at `unified`, the "hybrid" layout) means v1.

mod blkio;
mod bpf;
mod cpu;
mod cpuset;
mod devices;
mod fs;
mod hugetlb;
mod memory;
mod pids;
mod v1;
mod v2;

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};

pub use fs::{read_virtual, CgroupError};

/// What the runtime needs from a container's cgroup, whichever backend holds it.
pub trait Manager {
    /// Makes what [`prepare`] left to be made while the init sets up its mounts: the v1
    /// directories (v2 made its one directory before the clone, which puts the init in it).
    fn make_dirs(&mut self) -> Result<(), CgroupError>;
    /// The cgroup directory to clone the init straight into (`CLONE_INTO_CGROUP`), if the
    /// backend allows it.
    fn clone_target(&self) -> Option<BorrowedFd<'_>>;
    /// The files through which a process moves itself into the container's cgroup by
    /// writing `0` (v1: each hierarchy's `tasks`; v2: `cgroup.procs`), opened for writing.
    /// The kernel takes a fast path when a single-threaded process moves itself, while
    /// moving another process by pid waits for an RCU grace period, several milliseconds on
    /// a cold cgroup; so the runtime opens these and the init writes to them.
    fn join_files(&self) -> Result<Vec<OwnedFd>, CgroupError>;
    /// Moves the calling (single-threaded) process into the container's cgroup.
    fn join_self(&self) -> Result<(), CgroupError> {
        join_through(&self.join_files()?)
    }
    /// Moves `pid` into the container's cgroup, for a child that cannot move itself (root of
    /// a user namespace is nobody to the host's cgroup files).
    fn add_process(&self, pid: nix::unistd::Pid) -> Result<(), CgroupError>;
    /// Writes the spec's resource limits.
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// How many processes the kernel's OOM killer has killed in this cgroup.
    fn oom_kills(&self) -> Result<u64, CgroupError>;
    /// The pids of the processes in the container's cgroup.
    fn procs(&self) -> Result<Vec<i32>, CgroupError>;
    /// Freezes or thaws every process in the cgroup, and returns once the kernel has.
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen.
    fn frozen(&self) -> Result<bool, CgroupError>;
    /// Current usage, for `events --stats`.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// The container's directories: (hierarchy name, path) per v1 hierarchy ("cpu,cpuacct"),
    /// or one with an empty name on v2. What a `cgroup` mount shows the container.
    fn dirs(&self) -> Vec<(String, PathBuf)>;
    /// Kills what is left in the cgroup and removes every directory it made or was given.
    fn destroy(&self) -> Result<(), CgroupError>;
}

/// A container's resource usage, in runc's `events --stats` shape.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CpuUsage {
    /// Nanoseconds of CPU time.
    pub total: u64,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct MemoryStats {
    pub usage: MemoryUsage,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct MemoryUsage {
    pub usage: u64,
    /// 0: no limit.
    pub limit: u64,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct PidsStats {
    pub current: u64,
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub fn detect() -> Result<Version, CgroupError> {
    let st = nix::sys::statfs::statfs(CGROUP_ROOT).map_err(|e| CgroupError::Io {
        op: "statfs",
        path: PathBuf::from(CGROUP_ROOT),
        source: e.into(),
    })?;
    if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        Ok(Version::V2)
    } else {
        Ok(Version::V1)
    }
}

/// The container's cgroup at `cgroups_path` (the OCI `linux.cgroupsPath`): an absolute path
/// is taken from the root of each hierarchy, a relative one from the calling process's own
/// cgroup in each hierarchy (as runc does). Made in steps around the clone: here located what
/// the clone needs (v2's directory, for `CLONE_INTO_CGROUP`, which [`Prepared::make_v2`]
/// then makes; v1's directories only when `init_mounts_it`, the init then mounting them), the
/// rest by [`Prepared::manager`] and [`Manager::make_dirs`] while the init sets up its mounts.
/// Nothing is made here: the caller can record where the cgroup will be first.
pub fn prepare(cgroups_path: &str, init_mounts_it: bool) -> Result<Prepared, CgroupError> {
    let rel = checked_path(cgroups_path)?;
    match detect()? {
        Version::V1 if init_mounts_it => Ok(Prepared::Now(Box::new(v1::V1Cgroup::locate(rel)?))),
        // Reading mountinfo and our own cgroups took a tenth of the time before the clone.
        Version::V1 => Ok(Prepared::Later(rel.to_path_buf())),
        Version::V2 => Ok(Prepared::V2(v2::V2Cgroup::locate(rel)?)),
    }
}

/// What [`prepare`] did before the clone.
pub enum Prepared {
    Now(Box<dyn Manager>),
    /// A v1 cgroup, still to be located (its path checked).
    Later(PathBuf),
    /// The v2 directory, located but not made yet.
    V2(PathBuf),
}

impl Prepared {
    /// Makes a v2 directory located by [`prepare`] (to clone the init into); anything else
    /// is made later, by [`Manager::make_dirs`].
    pub fn make_v2(self) -> Result<Prepared, CgroupError> {
        match self {
            Prepared::V2(dir) => Ok(Prepared::Now(Box::new(v2::V2Cgroup::create(dir)?))),
            other => Ok(other),
        }
    }

    /// The directory to clone the init straight into, if any (see [`Manager::clone_target`]).
    pub fn clone_target(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Prepared::Now(m) => m.clone_target(),
            Prepared::Later(_) | Prepared::V2(_) => None,
        }
    }

    /// The directories known before the clone (see [`Manager::dirs`]).
    pub fn dirs(&self) -> Vec<(String, PathBuf)> {
        match self {
            Prepared::Now(m) => m.dirs(),
            Prepared::Later(_) => Vec::new(),
            Prepared::V2(dir) => vec![(String::new(), dir.clone())],
        }
    }

    /// The container's cgroup, located if it was not yet (a v2 one must have been made).
    pub fn manager(self) -> Result<Box<dyn Manager>, CgroupError> {
        match self {
            Prepared::Now(m) => Ok(m),
            Prepared::Later(rel) => Ok(Box::new(v1::V1Cgroup::locate(&rel)?)),
            Prepared::V2(dir) => Prepared::V2(dir).make_v2()?.manager(),
        }
    }
}

/// Moves the calling process into a cgroup through its [`Manager::join_files`].
pub fn join_through(files: &[OwnedFd]) -> Result<(), CgroupError> {
    files.iter().try_for_each(|f| {
        nix::unistd::write(f, b"0").map(drop).map_err(|e| CgroupError::Io {
            op: "write 0 to",
            path: fs::fd_path(f),
            source: e.into(),
        })
    })
}

/// The spec's resources with the device rules a container always needs added after its own
/// (only when it has device rules at all: none means the devices are not restricted).
pub fn with_default_devices(resources: &LinuxResources, devices: Option<&[LinuxDevice]>) -> LinuxResources {
    let mut r = resources.clone();
    if let Some(rules) = resources.devices() {
        r.set_devices(Some(devices::effective_rules(rules, devices.unwrap_or_default())));
    }
    r
}

/// The existing cgroup of a container created earlier (by another runtime process), from the
/// directories its Manager reported (`Manager::dirs`).
pub fn reopen(dirs: &[(String, PathBuf)]) -> Result<Box<dyn Manager>, CgroupError> {
    match (detect()?, dirs) {
        (Version::V2, [(_, dir)]) => Ok(Box::new(v2::V2Cgroup::open(dir.clone())?)),
        (Version::V1, _) if !dirs.is_empty() => Ok(Box::new(v1::V1Cgroup::from_dirs(dirs))),
        _ => Err(CgroupError::InvalidPath(format!("{dirs:?}"))),
    }
}

fn checked_path(cgroups_path: &str) -> Result<&Path, CgroupError> {
    let rel = Path::new(cgroups_path);
    if cgroups_path.is_empty() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(CgroupError::InvalidPath(cgroups_path.to_string()));
    }
    Ok(rel)
}

/// Joins `path` (absolute: from the hierarchy root; relative: from `own`) below `mount`,
/// whose own root within the hierarchy is `mount_root` (not `/` inside a container that
/// sees only part of the hierarchy).
fn resolve(mount: &Path, mount_root: &str, own: &str, path: &Path) -> PathBuf {
    let base = if path.is_absolute() { Path::new("/") } else { Path::new(own) };
    let full = base.join(path);
    let below_root = full.strip_prefix(mount_root).unwrap_or(&full);
    mount.join(below_root.strip_prefix("/").unwrap_or(below_root))
}

/// Writes the spec's limits through the controller files, wherever `dir_for` says each
/// controller lives. Shared by both backends; the controller modules know the file names.
/// Device rules differ in kind between v1 (files) and v2 (eBPF), so each backend does them.
fn apply_resources<'a>(
    r: &LinuxResources,
    version: Version,
    dir_for: impl Fn(&'static str) -> Result<&'a Path, CgroupError>,
) -> Result<(), CgroupError> {
    if let Some(c) = r.cpu() {
        if cpu::wanted(c) {
            cpu::apply(dir_for("cpu")?, c, version)?;
        }
        if cpuset::wanted(c) {
            cpuset::apply(dir_for("cpuset")?, c)?;
        }
    }
    if let Some(m) = r.memory() {
        memory::apply(dir_for("memory")?, m, version)?;
    }
    if let Some(p) = r.pids() {
        pids::apply(dir_for("pids")?, p)?;
    }
    if let Some(b) = r.block_io() {
        blkio::apply(dir_for(if version == Version::V1 { "blkio" } else { "io" })?, b, version)?;
    }
    if let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
        hugetlb::apply(dir_for("hugetlb")?, limits, version)?;
    }
    Ok(())
}

/// This process's cgroups from /proc/self/cgroup: (sorted controllers, path) per hierarchy;
/// the unified hierarchy has no controllers listed.
fn own_cgroups() -> Result<Vec<(Vec<String>, String)>, CgroupError> {
    let text = fs::read_virtual(Path::new("/proc/self/cgroup"))
        .map_err(|e| CgroupError::OwnCgroup(e.to_string()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let mut c: Vec<String> =
                controllers.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
            c.sort();
            Some((c, path.to_string()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_hang_below_the_callers_cgroup() {
        assert_eq!(
            resolve(Path::new("/sys/fs/cgroup/memory"), "/", "/session/1", Path::new("t/abc")),
            PathBuf::from("/sys/fs/cgroup/memory/session/1/t/abc")
        );
    }

    #[test]
    fn absolute_paths_start_at_the_hierarchy_root() {
        assert_eq!(
            resolve(Path::new("/sys/fs/cgroup/cpu"), "/", "/session/1", Path::new("/rocker/abc")),
            PathBuf::from("/sys/fs/cgroup/cpu/rocker/abc")
        );
    }

    #[test]
    fn a_mount_of_part_of_the_hierarchy_drops_its_root() {
        assert_eq!(
            resolve(Path::new("/sys/fs/cgroup/cpu"), "/docker/x", "/docker/x", Path::new("t/abc")),
            PathBuf::from("/sys/fs/cgroup/cpu/t/abc")
        );
    }

    #[test]
    fn parent_components_are_refused() {
        for init_mounts_it in [false, true] {
            assert!(matches!(prepare("../escape", init_mounts_it), Err(CgroupError::InvalidPath(_))));
        }
    }
}
