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

/// A container that has printed what it had to say and waits for its stdin to close,
/// so the test can look at it from the host while it runs.
pub struct Waiting {
    child: std::process::Child,
    /// What the container printed before "ready".
    pub lines: Vec<String>,
}

impl Waiting {
    /// `rocker run -i FLAGS /bin/sh -c "PRELUDE; echo ready; read x; exit CODE"`.
    pub fn start(cg: &TestCgroup, rootfs: &Path, flags: &[&str], prelude: &str, code: i32) -> Waiting {
        use std::io::BufRead;
        let script = format!("{prelude}\necho ready; read x; exit {code}");
        let mut args = vec!["-i"];
        args.extend(flags);
        args.extend(["/bin/sh", "-c", &script]);
        let mut c = rocker_run(cg, rootfs, &args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "the container ended before ready: {lines:?}");
            if line == "ready\n" {
                break;
            }
            lines.push(line.trim_end().to_string());
        }
        Waiting { child, lines }
    }

    /// Lets the container finish; its exit code.
    pub fn finish(mut self) -> Option<i32> {
        drop(self.child.stdin.take());
        self.child.wait().unwrap().code()
    }
}

/// A file of the container's cgroup (whichever hierarchy has it), trimmed.
pub fn container_cgroup_file(cg: &TestCgroup, file: &str) -> Option<String> {
    cg.children()
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
        .map(|s| s.trim().to_string())
}
