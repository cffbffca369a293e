//! The cpu controller: CFS quota/period and shares (v1), cpu.max and cpu.weight (v2), and the
//! real-time budget (v1 only: cgroup v2 has no real-time group scheduling).

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::fs::{self, CgroupError};
use super::Version;

const DEFAULT_PERIOD: u64 = 100_000;

const RT_RUNTIME: &str = "cpu.rt_runtime_us";
const RT_PERIOD: &str = "cpu.rt_period_us";

pub fn wanted(c: &LinuxCpu) -> bool {
    c.quota().is_some()
        || c.period().is_some()
        || c.shares().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
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
    apply_realtime_v1(dir, c)
}

/// The real-time budget: `runtime` microseconds of each `period` for the cgroup's real-time
/// tasks. Only a kernel with CONFIG_RT_GROUP_SCHED has the files; without them a process
/// could not get a real-time class in the cgroup anyway.
fn apply_realtime_v1(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    let (runtime, period) = (c.realtime_runtime(), c.realtime_period());
    if runtime.is_none() && period.is_none() {
        return Ok(());
    }
    if !dir.join(RT_RUNTIME).exists() {
        // Zero asks for nothing, which is what the kernel gives.
        if runtime.unwrap_or(0) != 0 || period.unwrap_or(0) != 0 {
            return Err(CgroupError::RealtimeUnsupported { path: dir.join(RT_RUNTIME) });
        }
        return Ok(());
    }
    // The period first: the kernel checks a new runtime against the period in force. But a
    // period shorter than the runtime already set is refused (EINVAL) until the runtime
    // shrinks: then it goes after the runtime (runc's order).
    let mut period_after = None;
    if let Some(p) = period {
        match fs::write(dir, RT_PERIOD, p.to_string()) {
            Err(CgroupError::Io { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && runtime.is_some() =>
            {
                period_after = Some(p)
            }
            r => r?,
        }
    }
    if let Some(r) = runtime {
        fs::write(dir, RT_RUNTIME, r.to_string()).map_err(|e| match e {
            CgroupError::Io { path, source, .. }
                if matches!(source.raw_os_error(), Some(libc::EINVAL) | Some(libc::EBUSY)) =>
            {
                CgroupError::RealtimeBudget { path, runtime: r, source }
            }
            other => other,
        })?;
    }
    match period_after {
        Some(p) => fs::write(dir, RT_PERIOD, p.to_string()),
        None => Ok(()),
    }
}

fn apply_v2(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_runtime().unwrap_or(0) != 0 || c.realtime_period().unwrap_or(0) != 0 {
        return Err(CgroupError::Unsupported(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no real-time \
             controller (no cpu.rt_runtime_us); leave them out, or run on a cgroup v1 host"
                .into(),
        ));
    }
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
