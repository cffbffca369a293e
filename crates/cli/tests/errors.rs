//! Bad input: one clear line, Docker's exit code, and nothing left behind.

mod common;

use common::*;

/// Runs rocker with `args` and checks the exit code, that stderr names `needle`, and (through
/// the fixtures' drop checks) that no cgroup or mount is left.
fn fails(cg: &TestCgroup, args: &[&str], code: i32, needle: &str) {
    let mut c = std::process::Command::new(ROCKER);
    c.arg("run").arg("--cgroup-parent").arg(&cg.name).args(args).stdin(std::process::Stdio::null());
    let r = output(c);
    assert_eq!(r.code, code, "{args:?}: stderr {}", r.stderr);
    assert!(r.stderr.contains(needle), "{args:?}: stderr lacks {needle:?}: {}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(cg.children().is_empty(), "{args:?} left {:?}", cg.children());
}

#[test]
fn a_missing_rootfs_is_an_engine_error() {
    let cg = TestCgroup::new();
    fails(
        &cg,
        &["--rootfs", "/nonexistent/rocker-rootfs", "/bin/sh"],
        125,
        "rootfs /nonexistent/rocker-rootfs: does not exist",
    );
}

#[test]
fn a_rootfs_that_is_a_file_is_refused() {
    let cg = TestCgroup::new();
    let dir = TempDir::new("file");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    fails(&cg, &["--rootfs", file.to_str().unwrap(), "/bin/sh"], 125, "is not a directory");
}

#[test]
fn the_hosts_root_is_refused_as_a_rootfs() {
    let cg = TestCgroup::new();
    fails(&cg, &["--rootfs", "/", "/bin/sh"], 125, "host's root directory");
    fails(&cg, &["--rootfs", "/tmp/..", "/bin/sh"], 125, "host's root directory");
}

#[test]
fn a_command_not_in_the_rootfs_exits_127() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let root = rootfs.path().to_str().unwrap();
    fails(&cg, &["--rootfs", root, "no-such-command"], 127, "executable file not found in $PATH");
    fails(&cg, &["--rootfs", root, "/bin/no-such-command"], 127, "no such file or directory");
    assert!(mounts_under(rootfs.path()).is_empty());
}

#[test]
fn a_command_that_is_not_executable_exits_126() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    std::fs::write(rootfs.path().join("bin/not-exec"), "plain text\n").unwrap();
    let root = rootfs.path().to_str().unwrap();
    fails(&cg, &["--rootfs", root, "not-exec"], 126, "permission denied");
    fails(&cg, &["--rootfs", root, "/bin/not-exec"], 126, "permission denied");
    fails(&cg, &["--rootfs", root, "/etc"], 126, "permission denied");
}

#[test]
fn invalid_limits_are_refused_before_anything_is_made() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let root = rootfs.path().to_str().unwrap();
    fails(&cg, &["--rootfs", root, "--cpus", "-1", "/bin/true"], 125, "--cpus");
    fails(&cg, &["--rootfs", root, "--cpus", "1000", "/bin/true"], 125, "CPUs available");
    fails(&cg, &["--rootfs", root, "-m", "abc", "/bin/true"], 125, "invalid memory size \"abc\"");
    fails(&cg, &["--rootfs", root, "-m", "1k", "/bin/true"], 125, "minimum memory limit");
    fails(&cg, &["--rootfs", root, "--cpuset-cpus", "999", "/bin/true"], 125, "cpuset.cpus");
    fails(&cg, &["--rootfs", root, "--cgroup-parent", "../escape", "/bin/true"], 125, "invalid cgroup path");
}

#[test]
fn a_missing_command_or_unknown_flag_is_a_usage_error() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let root = rootfs.path().to_str().unwrap();
    fails(&cg, &["--rootfs", root], 125, "needs a command");
    fails(&cg, &["--rootfs", root, "--no-such-flag", "/bin/true"], 125, "--no-such-flag");
}

#[test]
fn a_tty_with_stdin_that_is_not_a_terminal_is_refused() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    fails(&cg, &["-it", "--rootfs", rootfs.path().to_str().unwrap(), "/bin/sh"], 125, "not a TTY");
}
