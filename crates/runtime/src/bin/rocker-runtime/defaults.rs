//! `spec` and `features`: the default config.json and what this runtime supports.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// runc's default spec, less what rocker-runtime does not run yet (a cgroup mount, the
/// cgroup namespace), written to BUNDLE/config.json unless one is there.
pub fn write_spec(bundle: &Path) -> Result<(), String> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{} already exists: remove it first", path.display()));
    }
    let mut value = serde_json::to_value(Spec::default()).expect("the default spec serializes");
    value["hostname"] = json!("rocker");
    if let Some(mounts) = value["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
    }
    if let Some(ns) = value["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "cgroup");
    }
    let text = serde_json::to_string_pretty(&value).expect("json serializes");
    std::fs::write(&path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The OCI runtime features document (runtime-spec features.md).
pub fn features() -> String {
    let namespaces = ["pid", "network", "mount", "ipc", "uts", "cgroup", "time"];
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mount_options = [
        "async",
        "atime",
        "bind",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    ];
    let doc: Value = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": { "io.github.rocker.runtime.version": env!("CARGO_PKG_VERSION") }
    });
    serde_json::to_string_pretty(&doc).expect("json serializes")
}
