//! The cgroup v2 backend: one directory in the unified hierarchy.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxResources;

use super::fs::{self, CgroupError};
use super::{bpf, Manager, Stats, Version, CGROUP_ROOT};

/// The controllers rocker sets limits with, enabled down to the container's cgroup.
const CONTROLLERS: [&str; 6] = ["cpu", "cpuset", "memory", "pids", "io", "hugetlb"];

pub struct V2Cgroup {
    dir: PathBuf,
    /// Held open for `CLONE_INTO_CGROUP` and the device filter (so not O_PATH: attaching a
    /// BPF program needs a real open file).
    fd: OwnedFd,
    /// The leaf's cgroup.controllers, read once at creation.
    available: Vec<String>,
}

impl V2Cgroup {
    /// Makes the container's directory `dir` (from [`V2Cgroup::locate`]).
    pub fn create(dir: PathBuf) -> Result<V2Cgroup, CgroupError> {
        fs::create_leaf(&dir)?;
        match delegate_controllers(&dir).and_then(|available| Self::with_controllers(dir.clone(), available))
        {
            Ok(cg) => Ok(cg),
            Err(e) => {
                let _ = fs::remove(&dir);
                Err(e)
            }
        }
    }

    /// The container's directory, without making it.
    pub fn locate(path: &Path) -> Result<PathBuf, CgroupError> {
        Ok(super::resolve(Path::new(CGROUP_ROOT), "/", &own_cgroup()?, path))
    }

    /// An existing cgroup directory (made by `create`, possibly by another runtime process):
    /// only reads, so that `state` or `ps` never change the hierarchy.
    pub fn open(dir: PathBuf) -> Result<V2Cgroup, CgroupError> {
        let available = controllers(&dir)?;
        Self::with_controllers(dir, available)
    }

    fn with_controllers(dir: PathBuf, available: Vec<String>) -> Result<V2Cgroup, CgroupError> {
        let fd = open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| CgroupError::Io { op: "open", path: dir.clone(), source: e.into() })?;
        Ok(V2Cgroup { dir, fd, available })
    }

    /// The directory, after checking that `controller` can be used in it.
    fn dir_for(&self, controller: &str) -> Result<&Path, CgroupError> {
        if self.available.iter().any(|a| a == controller) {
            Ok(&self.dir)
        } else {
            Err(CgroupError::ControllerUnavailable {
                controller: controller.to_string(),
                path: self.dir.clone(),
            })
        }
    }
}

impl Manager for V2Cgroup {
    fn make_dirs(&mut self) -> Result<(), CgroupError> {
        Ok(())
    }

    fn clone_target(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn join_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        Ok(vec![fs::open_for_writing(&self.dir, "cgroup.procs")?])
    }

    fn add_process(&self, pid: nix::unistd::Pid) -> Result<(), CgroupError> {
        fs::write(&self.dir, "cgroup.procs", pid.to_string())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        super::apply_resources(r, Version::V2, |c| self.dir_for(c))?;
        // linux.resources.unified: cgroup v2 files written as given.
        for (key, value) in r.unified().iter().flatten() {
            if key.contains('/') || key.starts_with('.') {
                return Err(CgroupError::InvalidPath(key.clone()));
            }
            fs::write(&self.dir, key, value)?;
        }
        match r.devices() {
            Some(rules) => bpf::attach_device_filter(self.fd.as_fd(), &bpf::compile(rules))
                .map_err(|source| CgroupError::DeviceFilter { path: self.dir.clone(), source }),
            None => Ok(()),
        }
    }

    fn oom_kills(&self) -> Result<u64, CgroupError> {
        // Without the memory controller there is no memory limit, so no OOM kill of ours.
        match self.dir_for("memory") {
            Ok(dir) => fs::read_key(dir, "memory.events", "oom_kill"),
            Err(_) => Ok(0),
        }
    }

    fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        fs::procs(&self.dir)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        fs::write(&self.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        // The kernel reports completion in cgroup.events ("frozen 1").
        for _ in 0..1000 {
            if self.frozen()? == frozen {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Busy { path: self.dir.clone() })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        s.cpu.usage.total = fs::read_key(&self.dir, "cpu.stat", "usage_usec")? * 1000;
        if let Ok(dir) = self.dir_for("memory") {
            s.memory.usage.usage = fs::read_u64(dir, "memory.current")?;
            s.memory.usage.limit = fs::read_u64(dir, "memory.max")?;
        }
        if let Ok(dir) = self.dir_for("pids") {
            s.pids.current = fs::read_u64(dir, "pids.current")?;
        }
        Ok(s)
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.dir.clone())]
    }

    fn frozen(&self) -> Result<bool, CgroupError> {
        Ok(fs::read_key(&self.dir, "cgroup.events", "frozen")? == 1)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        fs::remove(&self.dir)
    }
}

/// Makes rocker's controllers available in a new leaf (only what the root offers and the
/// leaf lacks is worth enabling, and usually that is nothing); returns the leaf's controllers.
fn delegate_controllers(leaf: &Path) -> Result<Vec<String>, CgroupError> {
    let has = |list: &[String], c: &str| list.iter().any(|a| a == c);
    let available = controllers(leaf)?;
    if CONTROLLERS.iter().all(|c| has(&available, c)) {
        return Ok(available);
    }
    let offered = controllers(Path::new(CGROUP_ROOT))?;
    if CONTROLLERS.iter().any(|c| has(&offered, c) && !has(&available, c)) {
        enable_controllers(leaf)?;
        return controllers(leaf);
    }
    Ok(available)
}

fn controllers(dir: &Path) -> Result<Vec<String>, CgroupError> {
    Ok(fs::read(dir, "cgroup.controllers")?.split_whitespace().map(str::to_string).collect())
}

/// Enables rocker's controllers, where the root offers them, in the subtree_control of every
/// ancestor of `leaf`, from the root down: a controller reaches a cgroup only if its parent
/// delegates it.
fn enable_controllers(leaf: &Path) -> Result<(), CgroupError> {
    let root = Path::new(CGROUP_ROOT);
    let offered = controllers(root)?;
    let wanted: Vec<&str> = CONTROLLERS.iter().copied().filter(|c| offered.iter().any(|o| o == c)).collect();
    let mut ancestors: Vec<&Path> = leaf.ancestors().skip(1).take_while(|p| p.starts_with(root)).collect();
    ancestors.reverse();
    for dir in ancestors {
        let enabled = fs::read(dir, "cgroup.subtree_control")?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            match fs::write(dir, "cgroup.subtree_control", missing.join(" ")) {
                Err(CgroupError::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::InternalProcesses { path: dir.to_path_buf() })
                }
                r => r?,
            }
        }
    }
    Ok(())
}

/// This process's cgroup in the unified hierarchy (the `0::` line of /proc/self/cgroup).
fn own_cgroup() -> Result<String, CgroupError> {
    super::own_cgroups()?
        .into_iter()
        .find_map(|(controllers, path)| controllers.is_empty().then_some(path))
        .ok_or_else(|| CgroupError::OwnCgroup("no unified (0::) entry".to_string()))
}
