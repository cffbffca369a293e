//! The cpuset controller: which CPUs and memory nodes the container may use.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::fs::{self, CgroupError};

pub fn wanted(c: &LinuxCpu) -> bool {
    c.cpus().is_some() || c.mems().is_some()
}

/// Same file names in v1 and v2.
pub fn apply(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus() {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Copies the parent's CPUs and memory nodes into a freshly made v1 cpuset cgroup, which
/// starts empty (or, with clone_children, with these same values).
pub fn inherit_v1(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        fs::write(dir, file, fs::read(parent, file)?.trim())?;
    }
    Ok(())
}
