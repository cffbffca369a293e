//! The pids controller: how many tasks the container may have.

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use super::fs::{self, CgroupError};

/// Same file in v1 and v2; zero or less means unlimited, as in the spec.
pub fn apply(dir: &Path, p: &LinuxPids) -> Result<(), CgroupError> {
    let limit = p.limit();
    let value = if limit > 0 { limit.to_string() } else { "max".to_string() };
    fs::write(dir, "pids.max", value)
}
