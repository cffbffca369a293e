//! `spec` and `features`: the default config.json and what this runtime supports.

use std::path::Path;

use nix::unistd::{getegid, geteuid};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// runc's default spec, or with `rootless` its rootless one (a user namespace mapping the
/// current user to root, no network namespace, the host's /sys bound read-only, no cgroup
/// limits), written to BUNDLE/config.json unless one is there. Like runc's on a cgroup v1
/// host, neither has a cgroup namespace (runc adds one on v2; one default for both here).
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<(), String> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{} already exists: remove it first", path.display()));
    }
    let spec =
        if rootless { Spec::rootless(geteuid().as_raw(), getegid().as_raw()) } else { Spec::default() };
    let mut value = serde_json::to_value(spec).expect("the default spec serializes");
    value["hostname"] = json!("rocker");
    // runc's process: a terminal, and no inheritable capabilities (so no ambient ones either).
    value["process"]["terminal"] = json!(true);
    if let Some(caps) = value["process"]["capabilities"].as_object_mut() {
        caps.remove("inheritable");
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
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
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
