//! The devices controller (v1): which device nodes the container may create and open.
//! (On v2 the same rules become an eBPF program: see bpf.rs.)

use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use super::fs::{self, CgroupError};

/// What every container may use whatever its rules say, as runc grants it: the OCI default
/// devices, its own pts and ptmx, tun, and mknod of any node. (type, major, minor, access)
const ALWAYS_ALLOWED: [(LinuxDeviceType, Option<i64>, Option<i64>, &str); 11] = [
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"),    // null
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"),    // zero
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"),    // full
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"),    // random
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"),    // urandom
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"),    // tty
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"),    // ptmx
    (LinuxDeviceType::C, Some(136), None, "rwm"),     // the container's pts
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"), // tun
];

/// The spec's rules followed by allowances for the default devices and for each device the
/// spec creates (`linux.devices`): a container can always use the nodes it is given.
pub fn effective_rules(rules: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Vec<LinuxDeviceCgroup> {
    let allow = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(true).typ(typ).access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("all fields are set")
    };
    let mut out = rules.to_vec();
    out.extend(ALWAYS_ALLOWED.iter().map(|&(t, ma, mi, a)| allow(t, ma, mi, a)));
    out.extend(devices.iter().map(|d| allow(d.typ(), Some(d.major()), Some(d.minor()), "rwm")));
    out
}

/// Writes the spec's rules in order, each to devices.allow or devices.deny, so that a
/// leading "deny all" followed by allowances gives an allow-list. Each file is opened once:
/// the kernel takes one rule per write, and a dozen opens were most of the time spent here.
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let (mut allow, mut deny) = (None, None);
    for r in rules {
        let (file, name) =
            if r.allow() { (&mut allow, "devices.allow") } else { (&mut deny, "devices.deny") };
        let file = match file {
            Some(f) => f,
            None => file.insert(std::fs::File::from(fs::open_for_writing(dir, name)?)),
        };
        file.write_all(rule(r).as_bytes()).map_err(|source| CgroupError::Io {
            op: "write",
            path: dir.join(name),
            source,
        })?;
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
