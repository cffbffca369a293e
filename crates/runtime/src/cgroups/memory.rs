//! The memory controller: limit, reservation and swap.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::fs::{self, CgroupError};
use super::Version;

pub fn apply(dir: &Path, m: &LinuxMemory, version: Version) -> Result<(), CgroupError> {
    match version {
        Version::V1 => apply_v1(dir, m),
        Version::V2 => apply_v2(dir, m),
    }
}

fn apply_v1(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(limit) = m.limit() {
        fs::write(dir, "memory.limit_in_bytes", limit.to_string())?;
    }
    if let Some(reservation) = m.reservation() {
        fs::write(dir, "memory.soft_limit_in_bytes", reservation.to_string())?;
    }
    // v1's swap value is memory+swap, and needs swap accounting in the kernel.
    if let Some(swap) = m.swap() {
        fs::write(dir, "memory.memsw.limit_in_bytes", swap.to_string())?;
    }
    if let Some(swappiness) = m.swappiness() {
        fs::write(dir, "memory.swappiness", swappiness.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// v2 has no swappiness and no switch for the OOM killer: a spec asking for them is refused
/// rather than silently run without.
fn apply_v2(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) {
        return Err(CgroupError::Unsupported(
            "memory.swappiness and memory.disableOOMKiller have no cgroup v2 equivalent".into(),
        ));
    }
    if let Some(limit) = m.limit() {
        fs::write(dir, "memory.max", max_or(limit))?;
    }
    if let Some(reservation) = m.reservation() {
        fs::write(dir, "memory.low", max_or(reservation))?;
    }
    // The spec's swap is memory+swap (v1's meaning); v2 limits swap alone.
    if let Some(swap) = m.swap() {
        let value = match (swap, m.limit()) {
            (s, _) if s < 0 => "max".to_string(),
            (s, Some(l)) if l > 0 => s.saturating_sub(l).max(0).to_string(),
            (s, _) => s.to_string(),
        };
        fs::write(dir, "memory.swap.max", value)?;
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}
