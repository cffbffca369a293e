//! The cpu controller: CFS quota/period and shares (v1), cpu.max and cpu.weight (v2).

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::fs::{self, CgroupError};
use super::Version;

const DEFAULT_PERIOD: u64 = 100_000;

pub fn wanted(c: &LinuxCpu) -> bool {
    c.quota().is_some() || c.period().is_some() || c.shares().is_some()
}

pub fn apply(dir: &Path, c: &LinuxCpu, version: Version) -> Result<(), CgroupError> {
    match version {
        Version::V1 => apply_v1(dir, c),
        Version::V2 => apply_v2(dir, c),
    }
}

fn apply_v1(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares() {
        fs::write(dir, "cpu.shares", shares.to_string())?;
    }
    // The period first: the kernel checks the quota against the period in force.
    if let Some(period) = c.period() {
        fs::write(dir, "cpu.cfs_period_us", period.to_string())?;
    }
    if let Some(quota) = c.quota() {
        fs::write(dir, "cpu.cfs_quota_us", quota.to_string())?;
    }
    Ok(())
}

fn apply_v2(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares() {
        fs::write(dir, "cpu.weight", shares_to_weight(shares).to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        let period = c.period().unwrap_or(DEFAULT_PERIOD);
        fs::write(dir, "cpu.max", format!("{quota} {period}"))?;
    }
    Ok(())
}

/// Maps v1 shares [2, 262144] onto v2 weight [1, 10000], the conversion runc and crun use.
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_the_weight_range() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
