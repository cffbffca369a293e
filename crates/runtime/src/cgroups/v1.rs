//! The cgroup v1 backend: one directory per mounted hierarchy.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::fs::{self, CgroupError};
use super::{cpu, cpuset, memory, pids, Manager};

/// One v1 hierarchy the container joined.
struct Hierarchy {
    /// Controllers co-mounted in this hierarchy, e.g. ["cpu", "cpuacct"].
    controllers: Vec<String>,
    dir: PathBuf,
}

pub struct V1Cgroup {
    hierarchies: Vec<Hierarchy>,
}

/// A mounted v1 hierarchy, read from /proc/self/mountinfo.
struct Mount {
    controllers: Vec<String>,
    mount_point: PathBuf,
}

impl V1Cgroup {
    pub fn create(path: &Path) -> Result<V1Cgroup, CgroupError> {
        let own = own_cgroups()?;
        let mut cg = V1Cgroup { hierarchies: Vec::new() };
        for m in mounts()? {
            let Some((_, own_path)) = own.iter().find(|(c, _)| *c == m.controllers) else {
                continue;
            };
            let dir = super::resolve(&m.mount_point, own_path, path);
            if let Err(e) = init_dir(&dir, &m.controllers) {
                let _ = cg.destroy();
                return Err(e);
            }
            cg.hierarchies.push(Hierarchy { controllers: m.controllers, dir });
        }
        if cg.hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy("any"));
        }
        Ok(cg)
    }

    fn dir_of(&self, controller: &'static str) -> Result<&Path, CgroupError> {
        self.hierarchies
            .iter()
            .find(|h| h.has(controller))
            .map(|h| h.dir.as_path())
            .ok_or(CgroupError::NoHierarchy(controller))
    }
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

impl Manager for V1Cgroup {
    fn clone_target(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn add_process(&self, pid: Pid) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        self.hierarchies.iter().try_for_each(|h| fs::write(&h.dir, "cgroup.procs", &pid))
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(c) = r.cpu() {
            if cpu::wanted(c) {
                cpu::apply_v1(self.dir_of("cpu")?, c)?;
            }
            if cpuset::wanted(c) {
                cpuset::apply(self.dir_of("cpuset")?, c)?;
            }
        }
        if let Some(m) = r.memory() {
            memory::apply_v1(self.dir_of("memory")?, m)?;
        }
        if let Some(p) = r.pids() {
            pids::apply(self.dir_of("pids")?, p)?;
        }
        Ok(())
    }

    fn oom_kills(&self) -> Result<u64, CgroupError> {
        fs::read_key(self.dir_of("memory")?, "memory.oom_control", "oom_kill")
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Remove in every hierarchy even if one fails, then report the first failure.
        let mut first = None;
        for h in &self.hierarchies {
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
        // A new v1 cpuset cgroup starts empty and refuses tasks until it has CPUs and
        // memory nodes: give each new level its parent's.
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
    let controllers: Vec<String> = super_opts
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('=') && !o.starts_with("clone_children"))
        .map(str::to_string)
        .collect();
    let mount_point = pre.split(' ').nth(4)?;
    (!controllers.is_empty())
        .then(|| Mount { controllers: sorted(controllers), mount_point: mount_point.into() })
}

/// This process's cgroup in each v1 hierarchy: (controllers, path) from /proc/self/cgroup.
fn own_cgroups() -> Result<Vec<(Vec<String>, String)>, CgroupError> {
    let text =
        std::fs::read_to_string("/proc/self/cgroup").map_err(|e| CgroupError::OwnCgroup(e.to_string()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            (!controllers.is_empty() && !controllers.starts_with("name="))
                .then(|| (sorted(controllers.split(',').map(str::to_string).collect()), path.to_string()))
        })
        .collect())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_comounted_hierarchy() {
        let m =
            parse_mount("35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct")
                .unwrap();
        assert_eq!(m.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn skips_named_and_v2_mounts() {
        assert!(parse_mount("1 2 0:3 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd").is_none());
        assert!(parse_mount("1 2 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw").is_none());
    }
}
