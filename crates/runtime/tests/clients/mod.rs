//! What the client tests share (client_containerd.rs, client_docker.rs, client_podman.rs,
//! each a test crate of its own that says `mod clients;`): the logging wrapper around
//! rocker-runtime, a client's command line run to its end within a timeout, the busybox
//! image layer, processes and cgroups on the host, what a test must leave as it found it,
//! and the cleanup after a failure. `containerd` is the private containerd (and the daemons
//! of its client) that client_containerd.rs and client_docker.rs run.
#![allow(dead_code)] // every test crate uses a part of it

pub mod containerd;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Display;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rocker_test_support::{mounts_under, unique, Rootfs, Run, TestCgroup};
use serde_json::{json, Value};

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_rocker-runtime");

/// The directories of a usual PATH, after the client's own.
pub const STD_PATH: [&str; 6] =
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

static SERIAL: Mutex<()> = Mutex::new(());

/// One client test at a time in this process, whatever --test-threads says: they compare
/// /sys/fs/cgroup, /proc and /run before and after (and podman's share this process as the
/// subreaper of conmon).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- the wrapper ----------------------------------------------------------------------------

/// rocker-runtime behind a shell script that appends its argv to a log and, on `create`, keeps
/// a copy of the bundle's config.json (the bundle goes with the container) named after the
/// container id (the last argument). Every test checks the log, so a silent fallback to the
/// host's runc (or crun) cannot pass.
pub struct Wrapper {
    pub path: PathBuf,
    pub log: PathBuf,
    pub configs: PathBuf,
}

impl Wrapper {
    /// The wrapper in `dir`; `runtime_opts` go before the client's arguments.
    pub fn new(dir: &Path, runtime_opts: &[&str]) -> Wrapper {
        let w = Wrapper {
            path: dir.join("rocker-runtime-wrapper"),
            log: dir.join("runtime-calls.log"),
            configs: dir.join("configs"),
        };
        fs::create_dir(&w.configs).unwrap();
        let opts: Vec<String> = runtime_opts.iter().map(|o| shell_quote(o)).collect();
        fs::write(
            &w.path,
            format!(
                "#!/bin/sh\n# rocker-runtime as a client's OCI runtime: logs its argv, keeps config.json\n\
                 printf '%s\\n' \"$*\" >> {log}\n\
                 bundle=; prev=; id=\n\
                 for a in \"$@\"; do [ \"$prev\" = --bundle ] && bundle=$a; prev=$a; id=$a; done\n\
                 if [ -n \"$bundle\" ] && [ -f \"$bundle/config.json\" ]; then cp \"$bundle/config.json\" {configs}/\"$id.json\"; fi\n\
                 exec {rt} {opts} \"$@\"\n",
                log = shell_quote(&w.log.display().to_string()),
                configs = shell_quote(&w.configs.display().to_string()),
                rt = shell_quote(RUNTIME),
                opts = opts.join(" "),
            ),
        )
        .unwrap();
        fs::set_permissions(&w.path, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&w.log, "").unwrap();
        w
    }

    /// The runtime command lines the wrapper logged, as given.
    pub fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// The runtime subcommands the wrapper saw: (subcommand, the remaining arguments).
    pub fn calls(&self) -> Vec<(String, Vec<String>)> {
        self.lines()
            .iter()
            .filter_map(|line| {
                let mut toks = line.split_whitespace().map(str::to_string);
                while let Some(t) = toks.next() {
                    if matches!(t.as_str(), "--root" | "--log" | "--log-format" | "--criu" | "--rootless") {
                        toks.next();
                    } else if !t.starts_with('-') {
                        return Some((t, toks.collect()));
                    }
                }
                None
            })
            .collect()
    }

    /// Fails unless rocker-runtime was called with each of `subcommands` for container `id`.
    pub fn assert_called(&self, id: &str, subcommands: &[&str], diag: impl Fn() -> String) {
        assert!(!id.is_empty(), "no container id");
        let calls = self.calls();
        for sub in subcommands {
            assert!(
                calls.iter().any(|(s, rest)| s == sub && rest.iter().any(|a| a == id)),
                "rocker-runtime was not called for `{sub}` of container {id}: was the host's runc (or crun) \
                 used instead?\n{}",
                diag()
            );
        }
    }

    /// The config.json rocker-runtime got for container `id` (the wrapper's copy).
    pub fn config(&self, id: &str) -> Result<Value, String> {
        let p = self.configs.join(format!("{id}.json"));
        let text = fs::read_to_string(&p)
            .map_err(|e| format!("no copy of the bundle's config.json ({}): {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---- running commands -----------------------------------------------------------------------

/// A client's command line tool (ctr, docker, podman): its leading arguments and environment,
/// run to its end within a timeout, with its output in files in `dir`.
pub struct Cli {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Variables to set (Some) or remove (None).
    pub env: Vec<(&'static str, Option<OsString>)>,
    dir: PathBuf,
    timeout: Duration,
}

impl Cli {
    pub fn new(program: impl Into<PathBuf>, dir: &Path, timeout: Duration) -> Cli {
        Cli { program: program.into(), args: Vec::new(), env: Vec::new(), dir: dir.to_path_buf(), timeout }
    }

    pub fn args<A: Into<OsString>>(mut self, args: impl IntoIterator<Item = A>) -> Cli {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &'static str, value: Option<impl Into<OsString>>) -> Cli {
        self.env.push((key, value.map(Into::into)));
        self
    }

    /// The program and its leading arguments.
    pub fn argv(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone().into_os_string()).chain(self.args.iter().cloned()).collect()
    }

    /// Gives `cmd` this client's environment.
    pub fn set_env(&self, cmd: &mut Command) {
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).args(args);
        self.set_env(&mut cmd);
        cmd
    }

    fn name(&self, args: &[&str]) -> String {
        let program = self.program.file_name().unwrap_or_default().to_string_lossy();
        format!("{program} {}", args.join(" "))
    }

    pub fn try_run(&self, args: &[&str], timeout: Duration) -> Result<Run, String> {
        run_with_timeout(self.command(args), &self.dir, timeout)
    }

    /// Runs any `cmd` as this client's commands run (panics after the timeout, with `diag`).
    pub fn wait(&self, cmd: Command, what: &str, diag: impl FnOnce() -> String) -> Run {
        run_with_timeout(cmd, &self.dir, self.timeout).unwrap_or_else(|e| panic!("{what}: {e}\n{}", diag()))
    }

    /// The client with `args`, to its end.
    pub fn run(&self, args: &[&str], diag: impl FnOnce() -> String) -> Run {
        self.wait(self.command(args), &self.name(args), diag)
    }

    /// The client with `args`, which must succeed.
    pub fn run_ok(&self, args: &[&str], diag: impl Fn() -> String) -> Run {
        let r = self.run(args, &diag);
        assert_ok(&self.name(args), &r, diag);
        r
    }
}

/// Runs `cmd` to its end, stdout and stderr to files (nothing can hold a pipe open), within
/// `timeout` (then the command is killed by pid and an error returned).
pub fn run_with_timeout(mut cmd: Command, dir: &Path, timeout: Duration) -> Result<Run, String> {
    let (out, err) = (dir.join(unique("out")), dir.join(unique("err")));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out).map_err(|e| e.to_string())?)
        .stderr(fs::File::create(&err).map_err(|e| e.to_string())?);
    let mut child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let read = |p: &Path| {
        let s = fs::read_to_string(p).unwrap_or_default();
        let _ = fs::remove_file(p);
        s
    };
    let (stdout, stderr) = (read(&out), read(&err));
    match status {
        Some(s) => Ok(Run { code: s.code().unwrap_or(-1), stdout, stderr }),
        None => Err(format!("timed out after {timeout:?}\nstdout: {stdout}\nstderr: {stderr}")),
    }
}

/// Fails unless `r` exited 0, showing its output and `diag`.
pub fn assert_ok(what: &str, r: &Run, diag: impl FnOnce() -> String) {
    assert_eq!(r.code, 0, "{what} failed:\nstdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, diag());
}

/// Runs `cmd` (a short local tool) to its end; it must succeed.
pub fn run_checked(mut cmd: Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Polls `cond` until it holds; fails after `secs` seconds with `diag`.
pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool, diag: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", diag());
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

pub fn sha256_file(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

// ---- the image ------------------------------------------------------------------------------

/// The image's one layer: a tar of the busybox root filesystem of `rocker-test-support`
/// (bin, etc, tmp, root), owned by root.
pub fn busybox_layer(tar: &Path) {
    let rootfs = Rootfs::new();
    let mut cmd = Command::new("tar");
    cmd.args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(rootfs.path());
    cmd.arg("-cf").arg(tar).args(["bin", "etc", "tmp", "root"]);
    run_checked(cmd, "tar of the busybox layer");
}

/// The image config of the busybox image (OCI and docker-archive alike): `Cmd ["sh"]`, the
/// usual PATH, the layer's digest (hex).
pub fn image_config(layer_digest: &str) -> Value {
    json!({
        "architecture": image_arch(),
        "os": "linux",
        "config": {
            "Cmd": ["sh"],
            "Env": [format!("PATH={}", STD_PATH.join(":"))],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    })
}

/// This machine's architecture as images name it.
pub fn image_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

// ---- processes ------------------------------------------------------------------------------

/// (pid, command line joined by spaces) of every live process.
pub fn processes() -> Vec<(i32, String)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            (!cmd.is_empty()).then_some((pid, cmd))
        })
        .collect()
}

/// The state letter (R, S, Z...) and the parent of a process; None when it is gone.
pub fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut f = stat.rsplit_once(") ")?.1.split(' ');
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?))
}

pub fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid).map(|(s, _)| s)
}

pub fn ppid(pid: i32) -> Option<i32> {
    proc_stat(pid).map(|(_, p)| p)
}

/// A process's /proc/PID/cgroup ("self": this test's), empty when it is gone.
pub fn cgroup_of(pid: impl Display) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

pub fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut l) }, 0);
    (l.rlim_cur, l.rlim_max)
}

// ---- cgroups --------------------------------------------------------------------------------

/// Every cgroup directory on the host, in every hierarchy (v1, named, unified).
pub fn cgroup_dirs() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(e.path());
                stack.push(e.path());
            }
        }
    }
    out
}

/// Pids in `dir`'s cgroup.procs and in those of its descendants.
pub fn procs_below(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(procs_below(&e.path()));
        }
    }
    pids
}

/// A container's freezer: its cgroup `child` below the test's cgroup parent in the hierarchy
/// that has freezer.state (v1) or cgroup.freeze (v2).
pub struct Freezer(PathBuf);

impl Freezer {
    pub fn of(cg: &TestCgroup, child: &str) -> Freezer {
        let dirs: Vec<PathBuf> = cg
            .dirs()
            .into_iter()
            .map(|d| d.join(child))
            .filter(|d| d.join("freezer.state").exists() || d.join("cgroup.freeze").exists())
            .collect();
        assert_eq!(dirs.len(), 1, "the container has no freezer cgroup below the test's: {:?}", cg.dirs());
        Freezer(dirs.into_iter().next().unwrap())
    }

    /// FROZEN or THAWED (v1), 1 or 0 (v2).
    pub fn state(&self) -> String {
        fs::read_to_string(self.0.join("freezer.state"))
            .or_else(|_| fs::read_to_string(self.0.join("cgroup.freeze")))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

// ---- what a test leaves ---------------------------------------------------------------------

/// The host as a test found it: every cgroup directory; the paths a client uses by default
/// that did not exist (none may appear); the directories a daemon always makes that did not
/// exist (removed at the end when empty; none may stay); the entries of directories whose
/// contents must not change.
pub struct HostSnapshot {
    cgroups: BTreeSet<PathBuf>,
    absent: Vec<&'static str>,
    run_dirs: Vec<&'static str>,
    entries: Vec<(&'static str, BTreeSet<String>)>,
}

impl HostSnapshot {
    /// `run_dirs` children before parents.
    pub fn take(paths: &[&'static str], run_dirs: &[&'static str], dirs: &[&'static str]) -> HostSnapshot {
        let absent = |p: &&str| !Path::new(p).exists();
        HostSnapshot {
            cgroups: cgroup_dirs(),
            absent: paths.iter().copied().filter(absent).collect(),
            run_dirs: run_dirs.iter().copied().filter(absent).collect(),
            entries: dirs.iter().map(|d| (*d, list_dir(Path::new(d)))).collect(),
        }
    }

    /// New cgroup directories (anywhere under /sys/fs/cgroup) with a path component that
    /// `named` recognizes as the test's doing, other than the test's cgroup parent itself
    /// (`TestCgroup` checks and removes it). With `running`, what is below the parent (the
    /// containers' own cgroups) is expected too.
    pub fn new_cgroups(&self, cg: &TestCgroup, running: bool, named: impl Fn(&str) -> bool) -> Vec<PathBuf> {
        let ours = cg.dirs();
        cgroup_dirs()
            .difference(&self.cgroups)
            .filter(|p| !ours.iter().any(|d| p == &d))
            .filter(|p| !(running && ours.iter().any(|d| p.starts_with(d))))
            .filter(|p| p.components().any(|c| named(&c.as_os_str().to_string_lossy())))
            .cloned()
            .collect()
    }

    /// Removes the run dirs the test made, when empty.
    pub fn remove_run_dirs(&self) {
        for d in &self.run_dirs {
            let _ = fs::remove_dir(d);
        }
    }

    /// What is not as it was: paths that appeared, run dirs left, new entries.
    pub fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.absent.iter().filter(|p| Path::new(p).exists()) {
            out.push(format!("{p} appeared on the host"));
        }
        for p in self.run_dirs.iter().filter(|p| Path::new(p).exists()) {
            out.push(format!("{p} left on the host: {:?}", list_dir(Path::new(p))));
        }
        for (d, before) in &self.entries {
            let added: Vec<String> = list_dir(Path::new(d)).difference(before).cloned().collect();
            if !added.is_empty() {
                out.push(format!("new entries in {d}: {added:?}"));
            }
        }
        out
    }
}

pub fn list_dir(d: &Path) -> BTreeSet<String> {
    fs::read_dir(d)
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

// ---- cleanup after a failure ----------------------------------------------------------------

/// Kills what a test left running: processes whose command lines name `dir` (shims, runtime
/// calls) and those in the cgroups below `cg` (the containers, thawed first: a frozen process
/// does not die); waits up to 5 s for them to go.
pub fn kill_leftovers(dir: &Path, cg: &TestCgroup) {
    let dir = dir.display().to_string();
    let mut pids: Vec<i32> =
        processes().into_iter().filter(|(_, cmd)| cmd.contains(&dir)).map(|(p, _)| p).collect();
    for d in cg.dirs() {
        pids.extend(procs_below(&d));
        for sub in fs::read_dir(&d).into_iter().flatten().flatten() {
            let _ = fs::write(sub.path().join("freezer.state"), "THAWED");
            let _ = fs::write(sub.path().join("cgroup.freeze"), "0");
        }
    }
    for &p in &pids {
        // SAFETY: kill with a pid we found and a signal number.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| proc_state(p).is_some_and(|s| s != 'Z')) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Unmounts everything at or below `dir` (a rootfs, a data root's bind mount, netns
/// files), deepest first.
pub fn unmount_all_under(dir: &Path) {
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: umount2 with a NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// rmdir of each of `dirs` (cgroups), deepest first.
pub fn remove_deepest_first(mut dirs: Vec<PathBuf>) {
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}
