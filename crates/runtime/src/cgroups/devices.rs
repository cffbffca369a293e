//! The devices controller (v1): which device nodes the container may create and open.
//! (On v2 the same rules become an eBPF program: see bpf.rs.)

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::fs::{self, CgroupError};

/// Writes the spec's rules in order, each to devices.allow or devices.deny, so that a
/// leading "deny all" followed by allowances gives an allow-list.
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    for r in rules {
        let file = if r.allow() { "devices.allow" } else { "devices.deny" };
        fs::write(dir, file, rule(r))?;
    }
    Ok(())
}

/// One rule as the kernel writes it: "c 1:3 rwm", "a *:* rwm".
fn rule(r: &LinuxDeviceCgroup) -> String {
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P | LinuxDeviceType::A => 'a',
    };
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let access = r.access().as_deref().unwrap_or("rwm");
    format!("{typ} {}:{} {access}", num(r.major()), num(r.minor()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn rules_are_written_as_the_kernel_reads_them() {
        let deny_all = LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().unwrap();
        assert_eq!(rule(&deny_all), "a *:* rwm");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(rule(&null), "c 1:3 rwm");
    }
}
