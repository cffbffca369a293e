//! The `rocker` binary under test, on top of the shared fixtures.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::Path;
use std::process::{Command, Stdio};

pub use rocker_test_support::*;

pub const ROCKER: &str = env!("CARGO_BIN_EXE_rocker");

/// `rocker run --cgroup-parent <test parent> --rootfs <rootfs> <args...>`.
pub fn rocker_run(cg: &TestCgroup, rootfs: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ROCKER);
    c.arg("run").arg("--cgroup-parent").arg(&cg.name).arg("--rootfs").arg(rootfs).args(args);
    c.stdin(Stdio::null());
    c
}

/// Runs `sh -c script` in a fresh container and returns what happened.
pub fn sh(cg: &TestCgroup, rootfs: &Path, flags: &[&str], script: &str) -> Run {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["/bin/sh", "-c", script]);
    output(rocker_run(cg, rootfs, &args))
}
