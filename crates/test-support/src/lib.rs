//! Fixtures for rocker's integration tests, which run real containers through the built
//! binaries: a busybox root filesystem, a cgroup parent of the test's own that is checked
//! and removed at the end, temp dirs that refuse to delete through a leaked mount, and
//! running a command to completion.
#![allow(clippy::new_without_default)] // fixtures make directories and names: not a Default

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
pub mod oci_image;
pub mod registry;

/// Debian's busybox-static; the VM harness puts it at the same path.
pub const BUSYBOX: &str = "/bin/busybox";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call, for directories and cgroups.
pub fn unique(prefix: &str) -> String {
    format!("rocker-test-{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A temporary directory, removed (after unmount checks) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let leaked = mounts_under(&self.0);
        // Never delete through a leaked mount: it could reach the host's files.
        if leaked.is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
        if !std::thread::panicking() {
            assert!(leaked.is_empty(), "mounts left under {}: {leaked:?}", self.0.display());
        }
    }
}

/// Mount points at or below `dir` in this (the host's) mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// A busybox root filesystem in a fresh temp dir: /bin/busybox and a relative symlink per applet.
pub struct Rootfs {
    pub dir: TempDir,
}

impl Rootfs {
    pub fn new() -> Rootfs {
        let dir = TempDir::new("rootfs");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines().filter(|a| *a != "busybox") {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        for d in ["etc", "tmp", "root"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Rootfs { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A cgroup parent below this test process's own cgroup in every hierarchy. On drop it
/// checks that rocker left no container cgroup inside it, then removes it.
pub struct TestCgroup {
    pub name: String,
}

impl TestCgroup {
    pub fn new() -> TestCgroup {
        TestCgroup { name: unique("cg") }
    }

    /// This parent's directory in every mounted hierarchy (whether or not it exists yet).
    pub fn dirs(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|(mount, own)| mount.join(own.trim_start_matches('/')).join(&self.name))
            .collect()
    }

    /// The container cgroups currently inside this parent.
    pub fn children(&self) -> Vec<PathBuf> {
        self.dirs()
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let left = self.children();
        for d in &left {
            let _ = std::fs::remove_dir(d);
        }
        for d in self.dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "rocker left cgroups behind: {left:?}");
        }
    }
}

/// (mount point, this process's path in it) for every cgroup hierarchy with controllers:
/// v1 hierarchies, or the unified one when it is the only one mounted (pure v2).
pub fn hierarchies() -> Vec<(PathBuf, String)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut out = Vec::new();
    for line in std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default();
        let super_opts = post.nth(1).unwrap_or_default();
        let mount = PathBuf::from(pre.split(' ').nth(4).unwrap());
        let key = match fstype {
            "cgroup2" if pure_v2 => String::new(),
            "cgroup" => {
                let mut c: Vec<&str> = super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro") && !o.contains('=') && !o.starts_with("clone_children")
                    })
                    .collect();
                if c.is_empty() {
                    continue;
                }
                c.sort();
                c.join(",")
            }
            _ => continue,
        };
        let path = own.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            let mut c: Vec<&str> = ctrl.split(',').collect();
            c.sort();
            (c.join(",") == key).then(|| path.to_string())
        });
        if let Some(path) = path {
            out.push((mount, path));
        }
    }
    out
}

pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn output(mut c: Command) -> Run {
    let Output { status, stdout, stderr } = c.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Starts `cmd` with each `(open, as_fd)` descriptor open as number `as_fd`, not close-on-exec:
/// what a careless caller (or a socket-activating one) leaves to the process it runs.
pub fn inherit_fds(cmd: &mut Command, fds: &[(std::os::fd::RawFd, std::os::fd::RawFd)]) {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    // SAFETY: only dup2 and fcntl between fork and exec, both async-signal-safe. dup2 onto the
    // same number keeps close-on-exec, hence the explicit clear.
    unsafe {
        cmd.pre_exec(move || {
            for &(from, to) in &fds {
                if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
