//! The cgroup v1 backend: one directory per mounted hierarchy.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::fs::{self, CgroupError};
use super::{cpuset, devices, Manager, Stats, Version};

/// One v1 hierarchy the container joined.
struct Hierarchy {
    /// Controllers co-mounted in this hierarchy, sorted, e.g. ["cpu", "cpuacct"].
    controllers: Vec<String>,
    dir: PathBuf,
}

pub struct V1Cgroup {
    hierarchies: Vec<Hierarchy>,
    /// How many of `hierarchies`, from the first, have their directory (made by us, or
    /// given): only those are ever removed.
    made: usize,
}

/// A mounted v1 hierarchy, read from /proc/self/mountinfo.
struct Mount {
    controllers: Vec<String>,
    /// Which cgroup of the hierarchy is mounted there (`/` unless only a part is visible).
    root: String,
    mount_point: PathBuf,
}

impl V1Cgroup {
    /// A cgroup made earlier, from its `dirs()`.
    pub fn from_dirs(dirs: &[(String, PathBuf)]) -> V1Cgroup {
        let hierarchies = dirs
            .iter()
            .map(|(name, dir)| Hierarchy {
                controllers: name.split(',').map(str::to_string).collect(),
                dir: dir.clone(),
            })
            .collect();
        V1Cgroup { made: dirs.len(), hierarchies }
    }

    /// The container's directory in every mounted hierarchy, without making any.
    pub fn locate(path: &Path) -> Result<V1Cgroup, CgroupError> {
        let own = super::own_cgroups()?;
        let hierarchies: Vec<Hierarchy> = mounts()?
            .into_iter()
            .filter_map(|m| {
                let (_, own_path) = own.iter().find(|(c, _)| *c == m.controllers)?;
                let dir = super::resolve(&m.mount_point, &m.root, own_path, path);
                Some(Hierarchy { controllers: m.controllers, dir })
            })
            .collect();
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchies);
        }
        Ok(V1Cgroup { hierarchies, made: 0 })
    }

    fn dir_of(&self, controller: &'static str) -> Result<&Path, CgroupError> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
            .ok_or(CgroupError::NoHierarchy(controller))
    }
}

impl Manager for V1Cgroup {
    fn make_dirs(&mut self) -> Result<(), CgroupError> {
        while let Some(h) = self.hierarchies.get(self.made) {
            init_dir(&h.dir, &h.controllers)?;
            self.made += 1;
        }
        Ok(())
    }

    fn clone_target(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn join_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        // `tasks` moves the calling thread; the init is single-threaded, so that is all of it.
        self.hierarchies.iter().map(|h| fs::open_for_writing(&h.dir, "tasks")).collect()
    }

    fn add_process(&self, pid: nix::unistd::Pid) -> Result<(), CgroupError> {
        self.hierarchies.iter().try_for_each(|h| fs::write(&h.dir, "cgroup.procs", pid.to_string()))
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::Unsupported(
                "linux.resources.unified needs cgroup v2; this host has v1".into(),
            ));
        }
        super::apply_resources(r, Version::V1, |c| self.dir_of(c))?;
        match r.devices() {
            Some(rules) => devices::apply_v1(self.dir_of("devices")?, rules),
            None => Ok(()),
        }
    }

    fn oom_kills(&self) -> Result<u64, CgroupError> {
        fs::read_key(self.dir_of("memory")?, "memory.oom_control", "oom_kill")
    }

    fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        fs::procs(self.dir_of("pids").or_else(|_| self.dir_of("memory"))?)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.dir_of("freezer")?;
        fs::write(dir, "freezer.state", if frozen { "FROZEN" } else { "THAWED" })?;
        // Freezing is asynchronous on v1: wait until the kernel reports it done.
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            if fs::read(dir, "freezer.state")?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Busy { path: dir.to_path_buf() })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        s.cpu.usage.total = fs::read_u64(self.dir_of("cpuacct")?, "cpuacct.usage")?;
        let memory = self.dir_of("memory")?;
        s.memory.usage.usage = fs::read_u64(memory, "memory.usage_in_bytes")?;
        s.memory.usage.limit = fs::read_u64(memory, "memory.limit_in_bytes")?;
        s.pids.current = fs::read_u64(self.dir_of("pids")?, "pids.current")?;
        Ok(s)
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        self.hierarchies.iter().map(|h| (h.controllers.join(","), h.dir.clone())).collect()
    }

    fn frozen(&self) -> Result<bool, CgroupError> {
        Ok(fs::read(self.dir_of("freezer")?, "freezer.state")?.trim() == "FROZEN")
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Remove in every hierarchy even if one fails, then report the first failure.
        let mut first = None;
        for h in &self.hierarchies[..self.made] {
            if let Err(e) = fs::remove(&h.dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Makes the container's directory in one hierarchy.
fn init_dir(dir: &Path, controllers: &[String]) -> Result<(), CgroupError> {
    let created = fs::create_leaf(dir)?;
    if controllers.iter().any(|c| c == "cpuset") {
        // A new v1 cpuset cgroup refuses tasks until it has CPUs and memory nodes.
        if let Err(e) = created.iter().try_for_each(|d| cpuset::inherit_v1(d)) {
            let _ = fs::remove(dir);
            return Err(e);
        }
    }
    Ok(())
}

fn mounts() -> Result<Vec<Mount>, CgroupError> {
    let info = fs::read(Path::new("/proc/self"), "mountinfo")?;
    Ok(info.lines().filter_map(parse_mount).collect())
}

/// A mountinfo line: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_mount(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut post = post.split(' ');
    if post.next()? != "cgroup" {
        return None;
    }
    let super_opts = post.nth(1)?;
    let mut controllers: Vec<String> = super_opts
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('=') && !o.starts_with("clone_children"))
        .map(str::to_string)
        .collect();
    controllers.sort();
    let mut pre = pre.split(' ');
    let root = pre.nth(3)?.to_string();
    let mount_point = pre.next()?.into();
    (!controllers.is_empty()).then_some(Mount { controllers, root, mount_point })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_comounted_hierarchy() {
        let m =
            parse_mount("35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpuacct,cpu")
                .unwrap();
        assert_eq!(m.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m.root, "/");
        assert_eq!(m.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn skips_named_and_v2_mounts() {
        assert!(parse_mount("1 2 0:3 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd").is_none());
        assert!(parse_mount("1 2 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw").is_none());
    }
}
