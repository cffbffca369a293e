//! A real client: Debian's containerd 1.6 drives rocker-runtime through its runc v2 shim
//! (`containerd-shim-runc-v2`), with `ctr` as the user. Needs `tests/clients/setup.sh` (as
//! root); see `tests/clients/containerd.md`.
//!
//! Each test starts a private containerd (its own config, root, state, socket and runc root
//! in a temp dir; CRI disabled), builds a busybox OCI image and imports it, and runs
//! containers whose cgroups lie below the test's own cgroup (`ctr run --cgroup`, relative)
//! and that get a new network namespace with only `lo`. rocker-runtime is reached through a
//! wrapper script that logs its argv, and every test checks that log: a silent fallback to
//! the host's runc cannot pass. The end of each test checks that nothing is left: tasks,
//! containers, shims, shim sockets, mounts, cgroups; a `Drop` guard cleans up after a
//! failure (tasks, the daemon, shims, container processes, mounts) without asserting.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rocker_test_support::*;
use serde_json::{json, Value};

const RUNTIME: &str = env!("CARGO_BIN_EXE_rocker-runtime");
const IMAGE: &str = "docker.io/library/rocker-busybox:test";
/// containerd 1.6 puts every shim's socket here, whatever its state dir (the path is
/// compiled in: `defaults.DefaultStateDir + "/s"`), named by sha256(address/namespace/id).
const SHIM_SOCKETS: &str = "/run/containerd/s";
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// The tests compare /sys/fs/cgroup and /proc before and after: one at a time in this
/// process, whatever --test-threads says.
static SERIAL: Mutex<()> = Mutex::new(());

/// How the runc shim is told to run rocker-runtime (the wrapper) instead of runc.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wiring {
    /// `ctr run --runc-binary WRAPPER`: ctr stores the runc shim's `BinaryName` option
    /// (`containerd.runc.v1.Options`, field 6) in the container's runtime options; the
    /// daemon hands them to the shim as the task's options. This is the same option a CRI
    /// runtime entry's `options.BinaryName` sets; containerd 1.6 has no other (non-CRI)
    /// place to configure it, and `--runtime-config-path` is ignored for io.containerd.runc.v2.
    BinaryName,
    /// No option at all: the shim runs "runc" from its PATH, which it inherits from the
    /// daemon; the daemon's PATH starts with a directory whose `runc` is the wrapper.
    PathRunc,
}

/// A private containerd and everything a test made with it. Field order is drop order:
/// the cgroup parent is checked after the daemon stopped, the temp dir removed last.
struct Containerd {
    wiring: Wiring,
    ns: String,
    sock: PathBuf,
    log: PathBuf,
    state: PathBuf,
    wrapper: PathBuf,
    wrapper_log: PathBuf,
    runc_root: PathBuf,
    fifo: PathBuf,
    ctr_bin: PathBuf,
    daemon: Option<Child>,
    /// Container ids used, for the wrapper-log, shim-socket and cgroup checks.
    ids: RefCell<BTreeSet<String>>,
    cgroups_before: BTreeSet<PathBuf>,
    /// /run/containerd and /run/containerd/s as the test found them (absent: removed at
    /// the end when empty).
    run_dirs_before: [bool; 2],
    cg: TestCgroup,
    tmp: TempDir,
    _serial: MutexGuard<'static, ()>,
}

/// The binaries of Debian's containerd package (`dpkg -L containerd`).
struct Binaries {
    containerd: PathBuf,
    ctr: PathBuf,
    shim: PathBuf,
}

fn binaries() -> Binaries {
    let out = Command::new("dpkg").args(["-L", "containerd"]).output();
    let listing = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!("Debian's containerd package is not installed: run tests/clients/setup.sh as root"),
    };
    let find = |name: &str| {
        listing
            .lines()
            .map(PathBuf::from)
            .find(|p| p.file_name().is_some_and(|f| f == name) && p.is_file())
            .unwrap_or_else(|| panic!("the containerd package has no {name}: run tests/clients/setup.sh"))
    };
    Binaries { containerd: find("containerd"), ctr: find("ctr"), shim: find("containerd-shim-runc-v2") }
}

impl Containerd {
    fn start(wiring: Wiring) -> Containerd {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let bins = binaries();
        let tmp = TempDir::new("containerd");
        let dir = tmp.path().to_path_buf();
        let ns = unique("ns");
        let (wrapper, wrapper_log) = (dir.join("rocker-runtime-wrapper"), dir.join("runtime-calls.log"));
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# rocker-runtime, called as containerd's runc shim calls runc; logs its argv\n\
                 printf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                wrapper_log.display(),
                RUNTIME
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&wrapper_log, "").unwrap();

        // PATH: the package's shim first (containerd looks the shim up in PATH), then the
        // usual dirs, so that a lost BinaryName would really fall back to the host's runc
        // (and be caught by the wrapper-log checks). PathRunc puts the wrapper before all.
        let mut path = vec![bins.shim.parent().unwrap().to_path_buf()];
        if wiring == Wiring::PathRunc {
            let bin = dir.join("bin");
            fs::create_dir(&bin).unwrap();
            std::os::unix::fs::symlink(&wrapper, bin.join("runc")).unwrap();
            path.insert(0, bin);
        }
        path.extend(
            ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .map(PathBuf::from),
        );

        let (sock, config, log, state) = (
            dir.join("containerd.sock"),
            dir.join("config.toml"),
            dir.join("containerd.log"),
            dir.join("state"),
        );
        let (runc_root, fifo, root) = (dir.join("runc"), dir.join("fifo"), dir.join("root"));
        fs::create_dir(&fifo).unwrap();
        let toml = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
# No CRI (faster, quieter; its runtime entries would be CRI-only anyway), no snapshotters
# that cannot work here. (The v1 runtime "io.containerd.runtime.v1.linux" must stay: the
# tasks service of 1.6 will not load without it.)
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
# The daemon stays in the test's cgroup (no [cgroup] path) and keeps its oom_score.
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = root.display(),
            state = state.display(),
            sock = sock.display(),
            opt = dir.join("opt").display(),
        );
        fs::write(&config, toml).unwrap();

        let cgroups_before = cgroup_dirs();
        let run_dirs_before =
            [Path::new(SHIM_SOCKETS).exists(), Path::new(SHIM_SOCKETS).parent().unwrap().exists()];
        let log_file = fs::File::create(&log).unwrap();
        let daemon = Command::new(&bins.containerd)
            .arg("--config")
            .arg(&config)
            .env("PATH", std::env::join_paths(&path).unwrap())
            // The shim writes exec process specs to its TMPDIR.
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting containerd");
        let c = Containerd {
            wiring,
            ns,
            sock,
            log,
            state,
            wrapper,
            wrapper_log,
            runc_root,
            fifo,
            ctr_bin: bins.ctr,
            daemon: Some(daemon),
            ids: RefCell::new(BTreeSet::new()),
            cgroups_before,
            run_dirs_before,
            cg: TestCgroup::new(),
            tmp,
            _serial: serial,
        };
        c.wait_until("containerd to serve its socket", 20, |c| {
            if let Some(d) = c.daemon.as_ref() {
                let pid = d.id();
                let exited =
                    !Path::new(&format!("/proc/{pid}")).exists() || proc_state(pid as i32) == Some('Z');
                assert!(!exited, "containerd exited at start:\n{}", c.diag());
            }
            c.try_ctr(&["version"], Duration::from_secs(5)).is_ok_and(|r| r.code == 0)
        });
        c.import_image();
        c
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    // ---- ctr -----------------------------------------------------------------------------

    fn try_ctr(&self, args: &[&str], timeout: Duration) -> Result<Run, String> {
        let mut cmd = Command::new(&self.ctr_bin);
        cmd.arg("-a").arg(&self.sock).arg("-n").arg(&self.ns).args(args);
        run_with_timeout(cmd, self.dir(), timeout)
    }

    /// `ctr ARGS` to its end (panics after CTR_TIMEOUT, with the logs).
    fn ctr(&self, args: &[&str]) -> Run {
        self.try_ctr(args, CTR_TIMEOUT)
            .unwrap_or_else(|e| panic!("ctr {}: {e}\n{}", args.join(" "), self.diag()))
    }

    fn ctr_ok(&self, args: &[&str]) -> Run {
        let r = self.ctr(args);
        assert_eq!(
            r.code,
            0,
            "ctr {} failed:\nstdout: {}\nstderr: {}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr,
            self.diag()
        );
        r
    }

    /// `ctr run` arguments for container `id`: IO fifos and runc state in the temp dir,
    /// a relative cgroups path below the test's own cgroup, the network namespace of
    /// containerd's default spec (a new one: no --net-host).
    fn run_args(&self, mode: &str, id: &str, cmd: &[&str]) -> Vec<String> {
        self.ids.borrow_mut().insert(id.to_string());
        let mut a: Vec<String> = vec!["run".into(), mode.into()];
        a.extend(["--fifo-dir".into(), self.fifo.display().to_string()]);
        a.extend(["--runc-root".into(), self.runc_root.display().to_string()]);
        if self.wiring == Wiring::BinaryName {
            a.extend(["--runc-binary".into(), self.wrapper.display().to_string()]);
        }
        a.extend(["--cgroup".into(), format!("{}/{id}", self.cg.name)]);
        a.extend([IMAGE.to_string(), id.to_string()]);
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    }

    /// `ctr run --rm`: in the foreground, to the container's end.
    fn run(&self, id: &str, cmd: &[&str]) -> Run {
        let args = self.run_args("--rm", id, cmd);
        self.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `ctr run -d`, checked to be RUNNING; returns the container's init pid.
    fn run_detached(&self, id: &str, cmd: &[&str]) -> i32 {
        let args = self.run_args("-d", id, cmd);
        self.ctr_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let (pid, status) = self.task(id).unwrap_or_else(|| panic!("no task {id}:\n{}", self.diag()));
        assert_eq!(status, "RUNNING", "{}", self.diag());
        pid
    }

    /// (pid, status) of a task, from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let r = self.ctr_ok(&["task", "ls"]);
        r.stdout.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap_or(-1), f[2].to_string()))
        })
    }

    fn wait_status(&self, id: &str, want: &str) {
        self.wait_until(&format!("task {id} to be {want}"), 10, |c| {
            c.task(id).is_some_and(|(_, s)| s == want)
        });
    }

    /// Kills a task with SIGKILL, deletes it and its container.
    fn kill_and_remove(&self, id: &str) {
        self.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
        self.wait_status(id, "STOPPED");
        self.ctr_ok(&["task", "delete", id]);
        self.ctr_ok(&["container", "delete", id]);
    }

    /// The container's root filesystem as the shim mounted it (bundle/rootfs).
    fn rootfs(&self, id: &str) -> PathBuf {
        self.state.join("io.containerd.runtime.v2.task").join(&self.ns).join(id).join("rootfs")
    }

    /// The container's runtime options as containerd stored them (`ctr container info`).
    fn runc_options(&self, id: &str) -> RuncOptions {
        let r = self.ctr_ok(&["container", "info", id]);
        let info: Value = serde_json::from_str(&r.stdout).expect("ctr container info prints JSON");
        let runtime = &info["Runtime"];
        assert_eq!(runtime["Name"], "io.containerd.runc.v2", "{info:#}");
        let opts = &runtime["Options"];
        assert_eq!(opts["type_url"], "containerd.runc.v1.Options", "{info:#}");
        RuncOptions::decode(&base64_decode(opts["value"].as_str().unwrap_or("")))
    }

    // ---- the image -------------------------------------------------------------------------

    /// An OCI image layout, built here: one uncompressed layer (the busybox rootfs), a
    /// config with Cmd ["sh"], a manifest, an index naming it; imported (and unpacked
    /// into the overlayfs snapshotter) with `ctr images import`.
    fn import_image(&self) {
        let dir = self.dir().join("image");
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let rootfs = Rootfs::new();
        let layer = self.dir().join("layer.tar");
        let mut tar = Command::new("tar");
        tar.args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(rootfs.path());
        tar.arg("-cf").arg(&layer).args(["bin", "etc", "tmp", "root"]);
        ok(tar, "tar of the busybox layer");
        let layer = add_blob(&blobs, &layer, "application/vnd.oci.image.layer.v1.tar");
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Cmd": ["sh"],
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        });
        let config = add_json_blob(&blobs, &config, "application/vnd.oci.image.config.v1+json");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        });
        let mut manifest = add_json_blob(&blobs, &manifest, "application/vnd.oci.image.manifest.v1+json");
        manifest["platform"] = json!({"architecture": arch, "os": "linux"});
        manifest["annotations"] = json!({
            "io.containerd.image.name": IMAGE,
            "org.opencontainers.image.ref.name": "test",
        });
        fs::write(dir.join("index.json"), json!({"schemaVersion": 2, "manifests": [manifest]}).to_string())
            .unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = self.dir().join("image.tar");
        let mut tar = Command::new("tar");
        tar.arg("-C").arg(&dir).arg("-cf").arg(&archive).args(["oci-layout", "index.json", "blobs"]);
        ok(tar, "tar of the image layout");
        self.ctr_ok(&["images", "import", archive.to_str().unwrap()]);
        let names = self.ctr_ok(&["images", "ls", "-q"]).stdout;
        assert!(names.lines().any(|l| l == IMAGE), "image not imported: {names}\n{}", self.diag());
    }

    // ---- what was left, and what was called ---------------------------------------------------

    /// The runtime subcommands the wrapper saw: (subcommand, the remaining arguments).
    fn runtime_calls(&self) -> Vec<(String, Vec<String>)> {
        let log = fs::read_to_string(&self.wrapper_log).unwrap_or_default();
        log.lines()
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

    fn assert_runtime_called(&self, id: &str, subcommands: &[&str]) {
        let calls = self.runtime_calls();
        for sub in subcommands {
            assert!(
                calls.iter().any(|(s, rest)| s == sub && rest.iter().any(|a| a == id)),
                "rocker-runtime was not called for `{sub}` of container {id} ({:?}); \
                 was the host's runc used instead?\n{}",
                self.wiring,
                self.diag()
            );
        }
    }

    /// Live shims of this daemon (their command line names our socket).
    fn shim_pids(&self) -> Vec<i32> {
        let sock = self.sock.display().to_string();
        processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim") && cmd.contains(&sock))
            .map(|(pid, _)| pid)
            .collect()
    }

    fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{}/{}", self.sock.display(), self.ns, id);
        Path::new(SHIM_SOCKETS).join(sha256_hex(key.as_bytes()))
    }

    /// New cgroup directories (anywhere under /sys/fs/cgroup, every hierarchy) named after
    /// this test's namespace, containerd, a shim or one of its containers. With `running`,
    /// the containers' own cgroups below the test's cgroup parent are expected.
    fn stray_cgroups(&self, running: bool) -> Vec<PathBuf> {
        let ids = self.ids.borrow();
        let ours = self.cg.dirs();
        cgroup_dirs()
            .difference(&self.cgroups_before)
            .filter(|p| !(running && ours.iter().any(|d| p.starts_with(d))))
            .filter(|p| {
                p.components().any(|c| {
                    let s = c.as_os_str().to_string_lossy();
                    s == self.ns.as_str()
                        || s.contains("containerd")
                        || s.contains("shim")
                        || ids.contains(&*s)
                })
            })
            .cloned()
            .collect()
    }

    /// The checks every test ends with, then the daemon is stopped (by `Drop`), the cgroup
    /// parent checked for leftovers and removed, the temp dir checked for mounts and removed.
    fn finish(self) {
        let tasks = self.ctr_ok(&["task", "ls", "-q"]).stdout;
        assert!(tasks.trim().is_empty(), "tasks left: {tasks}\n{}", self.diag());
        let containers = self.ctr_ok(&["container", "ls", "-q"]).stdout;
        assert!(containers.trim().is_empty(), "containers left: {containers}\n{}", self.diag());
        for id in self.ids.borrow().iter() {
            self.assert_runtime_called(id, &["create", "start", "delete"]);
        }
        self.wait_until("the shims to exit", 10, |c| c.shim_pids().is_empty());
        for id in self.ids.borrow().iter() {
            let s = self.shim_socket(id);
            assert!(!s.exists(), "the shim of {id} left its socket {}", s.display());
        }
        let mounts = mounts_under(self.dir());
        assert!(mounts.is_empty(), "mounts left under {}: {mounts:?}\n{}", self.dir().display(), self.diag());
        let stray = self.stray_cgroups(false);
        assert!(stray.is_empty(), "cgroups made outside the test's own cgroup, or left: {stray:?}");
        // The daemon's own cgroup did not change either.
        if let Some(d) = &self.daemon {
            assert_eq!(
                fs::read_to_string(format!("/proc/{}/cgroup", d.id())).unwrap_or_default(),
                fs::read_to_string("/proc/self/cgroup").unwrap(),
                "containerd moved itself out of the test's cgroup"
            );
        }
    }

    /// Everything worth reading when something failed.
    fn diag(&self) -> String {
        let mut s = String::new();
        s += &format!("--- rocker-runtime calls ({}):\n", self.wrapper_log.display());
        s += &fs::read_to_string(&self.wrapper_log).unwrap_or_default();
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let notable: Vec<&str> =
            log.lines().filter(|l| l.contains("level=warning") || l.contains("level=error")).collect();
        s += &format!("--- containerd warnings and errors ({}):\n", self.log.display());
        for l in &notable[notable.len().saturating_sub(30)..] {
            s += l;
            s += "\n";
        }
        let bundles = self.state.join("io.containerd.runtime.v2.task").join(&self.ns);
        for e in fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let j = e.path().join("log.json");
            if let Ok(t) = fs::read_to_string(&j) {
                s += &format!("--- {}:\n{t}", j.display());
            }
        }
        s
    }

    fn wait_until(&self, what: &str, secs: u64, mut cond: impl FnMut(&Containerd) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", self.diag());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Containerd {
    /// Cleanup that cannot be forgotten, after a failure too; never panics.
    fn drop(&mut self) {
        let short = Duration::from_secs(10);
        // Tasks and containers a failed test left: through containerd, so the shims
        // unmount the rootfs, remove the container cgroups and exit.
        if self.daemon.is_some() {
            let ls = |what: &str| {
                self.try_ctr(&[what, "ls", "-q"], short)
                    .map(|r| r.stdout.lines().map(str::to_string).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            for id in ls("task") {
                let _ = self.try_ctr(&["task", "resume", &id], short);
                let _ = self.try_ctr(&["task", "kill", "-a", "-s", "SIGKILL", &id], short);
                let _ = self.try_ctr(&["task", "delete", "-f", &id], short);
            }
            for id in ls("container") {
                let _ = self.try_ctr(&["container", "delete", &id], short);
            }
        }
        // The daemon: SIGTERM by pid, then SIGKILL.
        if let Some(mut d) = self.daemon.take() {
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + short;
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // Shims and runtime processes of this daemon still alive (their command lines name
        // our temp dir), and container processes still in our cgroups.
        let dir = self.dir().display().to_string();
        let mut pids: Vec<i32> =
            processes().into_iter().filter(|(_, cmd)| cmd.contains(&dir)).map(|(p, _)| p).collect();
        for d in self.cg.dirs() {
            pids.extend(procs_below(&d));
        }
        for d in self.cg.dirs() {
            // Thaw first: a frozen process does not die.
            for sub in fs::read_dir(&d).into_iter().flatten().flatten() {
                let _ = fs::write(sub.path().join("freezer.state"), "THAWED");
                let _ = fs::write(sub.path().join("cgroup.freeze"), "0");
            }
        }
        for &p in &pids {
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|&p| proc_state(p).is_some_and(|s| s != 'Z')) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Container cgroups a killed shim could not remove: the TestCgroup removes them
        // (its direct children), and reports them when the test did not fail already.
        // Shim sockets of killed shims:
        for id in self.ids.borrow().iter() {
            let _ = fs::remove_file(self.shim_socket(id));
        }
        // The shims' socket dir, if the test made it (rmdir: only when empty).
        let sockets = Path::new(SHIM_SOCKETS);
        for (dir, existed) in [sockets, sockets.parent().unwrap()].into_iter().zip(self.run_dirs_before) {
            if !existed {
                let _ = fs::remove_dir(dir);
            }
        }
        // Mounts left under the temp dir (a shim's rootfs), deepest first.
        let mut mounts = mounts_under(self.dir());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

// ---- helpers ---------------------------------------------------------------------------------

/// Runs `cmd` to its end, stdout and stderr to files (nothing can hold a pipe open), within
/// `timeout` (then the command is killed by pid and an error returned).
fn run_with_timeout(mut cmd: Command, dir: &Path, timeout: Duration) -> Result<Run, String> {
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

fn ok(mut cmd: Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Moves `file` into the blob store under its digest; returns its OCI descriptor.
fn add_blob(blobs: &Path, file: &Path, media_type: &str) -> Value {
    let out = Command::new("sha256sum").arg(file).output().expect("sha256sum (coreutils)");
    let digest = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string();
    let size = fs::metadata(file).unwrap().len();
    fs::rename(file, blobs.join(&digest)).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": size})
}

fn add_json_blob(blobs: &Path, value: &Value, media_type: &str) -> Value {
    let tmp = blobs.join("new.json");
    fs::write(&tmp, serde_json::to_vec(value).unwrap()).unwrap();
    add_blob(blobs, &tmp, media_type)
}

/// Every cgroup directory on the host, in every hierarchy (v1, named, unified).
fn cgroup_dirs() -> BTreeSet<PathBuf> {
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
fn procs_below(dir: &Path) -> Vec<i32> {
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

/// (pid, command line joined by spaces) of every live process.
fn processes() -> Vec<(i32, String)> {
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

/// The state letter of a process (R, S, Z...), None when it is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn ppid(pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok())
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The string fields of the runc shim's options (containerd's runtime/v2/runc/options
/// `Options` protobuf): shim_cgroup = 3, binary_name = 6, root = 7.
#[derive(Debug, Default)]
struct RuncOptions {
    shim_cgroup: String,
    binary_name: String,
    root: String,
}

impl RuncOptions {
    fn decode(mut b: &[u8]) -> RuncOptions {
        fn varint(b: &mut &[u8]) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            while let Some((&x, rest)) = b.split_first() {
                *b = rest;
                v |= ((x & 0x7f) as u64) << shift;
                shift += 7;
                if x & 0x80 == 0 {
                    break;
                }
            }
            v
        }
        let mut o = RuncOptions::default();
        while !b.is_empty() {
            let key = varint(&mut b);
            match key & 7 {
                0 => {
                    varint(&mut b);
                }
                2 => {
                    let n = (varint(&mut b) as usize).min(b.len());
                    let s = String::from_utf8_lossy(&b[..n]).into_owned();
                    b = &b[n..];
                    match key >> 3 {
                        3 => o.shim_cgroup = s,
                        6 => o.binary_name = s,
                        7 => o.root = s,
                        _ => {}
                    }
                }
                _ => break, // no fixed-width fields in this message
            }
        }
        o
    }
}

// ---- the tests ---------------------------------------------------------------------------------

#[test]
fn run_rm_echo_hello() {
    let c = Containerd::start(Wiring::BinaryName);
    let r = c.run("hello", &["echo", "hello"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello\n"), "stderr: {}\n{}", r.stderr, c.diag());
    c.finish();
}

#[test]
fn run_rm_returns_the_exit_code() {
    let c = Containerd::start(Wiring::BinaryName);
    let r = c.run("exit3", &["sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, c.diag());
    c.finish();
}

/// The second wiring: no runtime option at all, `runc` from the daemon's PATH.
#[test]
fn runc_from_the_daemons_path_is_rocker_runtime() {
    let c = Containerd::start(Wiring::PathRunc);
    let r = c.run("viapath", &["sh", "-c", "echo via-path; exit 4"]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "via-path\n"), "stderr: {}\n{}", r.stderr, c.diag());
    c.finish();
}

/// ctr's default spec asks for new pid, ipc, uts, mount and network namespaces: the
/// container's network namespace is not the host's and has only `lo`, up, and no route.
#[test]
fn the_container_gets_a_network_namespace_with_only_lo() {
    let c = Containerd::start(Wiring::BinaryName);
    let script = "ip -o link; echo ---; cat /proc/net/route; echo ---; readlink /proc/self/ns/net";
    let r = c.run("net", &["sh", "-c", script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, c.diag());
    let parts: Vec<&str> = r.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{}", r.stdout);
    let up: Vec<&str> = parts[0].lines().filter(|l| l.contains(",UP")).collect();
    assert!(
        up.len() == 1 && up[0].contains(": lo: "),
        "only lo may be up in the container's network namespace:\n{}",
        parts[0]
    );
    assert_eq!(parts[1].lines().count(), 1, "the container has IPv4 routes:\n{}", parts[1]);
    let host = fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(parts[2].trim(), host.to_str().unwrap(), "the container is in the host's network namespace");
    c.finish();
}

/// `ctr run -d`, then the task commands: ls, ps, kill (SIGTERM by default, caught by the
/// container; then SIGKILL to all processes), delete (with the exit code), container delete.
/// Also checks where containerd, the shim and the container are in the cgroup tree, and the
/// runtime options ctr stored (BinaryName = the wrapper, no ShimCgroup).
#[test]
fn detached_task_kill_and_delete() {
    let c = Containerd::start(Wiring::BinaryName);
    let script = "trap 'exit 42' TERM; touch /ready; while :; do sleep 0.1; done";
    let pid = c.run_detached("k1", &["sh", "-c", script]);

    let opts = c.runc_options("k1");
    assert_eq!(opts.binary_name, c.wrapper.to_str().unwrap(), "BinaryName: {opts:?}");
    assert_eq!(opts.root, c.runc_root.to_str().unwrap(), "Root: {opts:?}");
    assert_eq!(opts.shim_cgroup, "", "ShimCgroup must stay empty (the shim stays in the test's cgroup)");

    // The container in <test cgroup>/<TestCgroup>/k1 in every hierarchy; the shim (its
    // parent: the shim is a subreaper) and containerd in the test's own cgroup.
    for d in c.cg.dirs() {
        let procs = fs::read_to_string(d.join("k1/cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "pid {pid} not in {}/k1: {procs:?}",
            d.display()
        );
    }
    let shim = ppid(pid).unwrap();
    let shim_cmd = fs::read_to_string(format!("/proc/{shim}/cmdline")).unwrap().replace('\0', " ");
    assert!(shim_cmd.contains("containerd-shim-runc-v2"), "the init's parent is not the shim: {shim_cmd}");
    assert_eq!(c.shim_pids(), vec![shim], "one shim for one container");
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{shim}/cgroup")).unwrap(),
        own,
        "the shim left the test's cgroup"
    );
    let stray = c.stray_cgroups(true);
    assert!(stray.is_empty(), "cgroups made outside the test's cgroup: {stray:?}");

    let ps = c.ctr_ok(&["task", "ps", "k1"]);
    assert!(
        ps.stdout.lines().skip(1).any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "{}",
        ps.stdout
    );

    c.wait_until("the trap to be set", 10, |c| c.rootfs("k1").join("ready").exists());
    c.ctr_ok(&["task", "kill", "k1"]);
    c.wait_status("k1", "STOPPED");
    let r = c.ctr_ok(&["task", "delete", "k1"]);
    assert!(r.stderr.contains("exit code 42"), "task delete: {} {}\n{}", r.stdout, r.stderr, c.diag());
    c.ctr_ok(&["container", "delete", "k1"]);

    c.run_detached("k2", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    c.ctr_ok(&["task", "kill", "--all", "-s", "SIGKILL", "k2"]);
    c.wait_status("k2", "STOPPED");
    let r = c.ctr_ok(&["task", "delete", "k2"]);
    assert!(r.stderr.contains("exit code 137"), "task delete: {} {}\n{}", r.stdout, r.stderr, c.diag());
    c.ctr_ok(&["container", "delete", "k2"]);

    let calls = c.runtime_calls();
    assert!(calls.iter().any(|(s, a)| s == "kill" && a.ends_with(&["k1".into(), "15".into()])), "{calls:?}");
    assert!(
        calls.iter().any(|(s, a)| s == "kill" && a.contains(&"--all".into()) && a.contains(&"k2".into())),
        "{calls:?}"
    );
    assert!(calls.iter().any(|(s, a)| s == "ps" && a.contains(&"k1".into())), "{calls:?}");
    c.finish();
}

#[test]
fn pause_and_resume() {
    let c = Containerd::start(Wiring::BinaryName);
    c.run_detached("p1", &["sleep", "100"]);
    let freezer: Vec<PathBuf> =
        c.cg.dirs()
            .into_iter()
            .map(|d| d.join("p1"))
            .filter(|d| d.join("freezer.state").exists() || d.join("cgroup.freeze").exists())
            .collect();
    assert_eq!(freezer.len(), 1, "the container has no freezer cgroup below the test's: {:?}", c.cg.dirs());
    let frozen = || {
        let f = &freezer[0];
        fs::read_to_string(f.join("freezer.state"))
            .or_else(|_| fs::read_to_string(f.join("cgroup.freeze")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };

    c.ctr_ok(&["task", "pause", "p1"]);
    c.wait_status("p1", "PAUSED");
    assert!(matches!(frozen().as_str(), "FROZEN" | "1"), "freezer: {}", frozen());
    c.ctr_ok(&["task", "resume", "p1"]);
    c.wait_status("p1", "RUNNING");
    assert!(matches!(frozen().as_str(), "THAWED" | "0"), "freezer: {}", frozen());
    c.assert_runtime_called("p1", &["pause", "resume"]);
    c.kill_and_remove("p1");
    c.finish();
}

/// `ctr task exec`: a second process in a running container (the shim calls
/// `runc exec --process FILE --detach --pid-file F ID`).
#[test]
fn exec_in_a_running_task() {
    let c = Containerd::start(Wiring::BinaryName);
    c.run_detached("e1", &["sleep", "100"]);
    let fifo = c.fifo.display().to_string();
    let script = "echo exec-ok; cat /proc/1/comm; exit 5";
    let r = c.ctr(&["task", "exec", "--exec-id", "x1", "--fifo-dir", &fifo, "e1", "sh", "-c", script]);
    assert!(
        r.code == 5 && r.stdout == "exec-ok\nsleep\n",
        "ctr task exec failed (rocker-runtime `exec`): code {}\nstdout: {}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        c.diag()
    );
    c.assert_runtime_called("e1", &["exec"]);
    c.kill_and_remove("e1");
    c.finish();
}

/// containerd 1.6's default linux.maskedPaths and linux.readonlyPaths (oci/spec.go).
const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// What the container sees matches containerd's default spec (ctr run, no flags): rlimits
/// (RLIMIT_NOFILE 1024, the test runs with a different limit), no_new_privileges, the 14
/// default capabilities, the mounts, masked and read-only paths.
#[test]
fn containerd_default_spec_is_honoured() {
    let c = Containerd::start(Wiring::BinaryName);
    let script =
        "echo nofile=$(ulimit -n)/$(ulimit -Hn); grep -E '^(NoNewPrivs|CapBnd|CapEff):' /proc/self/status; \
                  cat /proc/self/mounts; \
                  for p in $MASKED; do \
                    if [ -c $p ] || { [ -d $p ] && [ -z \"$(ls -A $p)\" ]; }; then echo masked $p; \
                    elif [ -e $p ]; then echo visible $p; fi; \
                  done";
    let script = script.replace("$MASKED", &MASKED_PATHS.join(" "));
    let r = c.run("spec", &["sh", "-c", &script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, c.diag());
    let out = &r.stdout;
    let mut wrong = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            wrong.push(what.to_string())
        }
    };
    want(out.contains("nofile=1024/1024"), "process.rlimits RLIMIT_NOFILE 1024/1024 (rlimits)");
    want(out.contains("NoNewPrivs:\t1"), "process.noNewPrivileges");
    want(out.contains("CapBnd:\t00000000a80425fb"), "process.capabilities.bounding (14 default caps)");
    want(out.contains("CapEff:\t00000000a80425fb"), "process.capabilities.effective");
    let mount = |dst: &str, fstype: &str| {
        out.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 3 && f[1] == dst && f[2] == fstype
        })
    };
    for (dst, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/run", "tmpfs"),
    ] {
        want(mount(dst, fstype), &format!("mounts: {dst} ({fstype})"));
    }
    let read_only = |dst: &str| {
        out.lines().any(|l| {
            l.split(' ').nth(1) == Some(dst) && l.split(' ').nth(3).is_some_and(|o| o.starts_with("ro"))
        })
    };
    want(read_only("/sys"), "mounts: /sys read-only");
    // Only the paths this kernel has (the container sees the host's kernel).
    for p in MASKED_PATHS.iter().filter(|p| Path::new(p).exists()) {
        want(out.lines().any(|l| l == format!("masked {p}")), &format!("linux.maskedPaths: {p}"));
    }
    for p in READONLY_PATHS.iter().filter(|p| Path::new(p).exists()) {
        want(read_only(p), &format!("linux.readonlyPaths: {p}"));
    }
    assert!(wrong.is_empty(), "the container does not get what the spec asks for: {wrong:?}\noutput:\n{out}");
    c.finish();
}

/// After a shim exits, containerd runs `containerd-shim-runc-v2 delete`, which calls
/// `runc delete --force ID` for a container that is already gone: runc succeeds then (its
/// delete --force ignores a missing container); an error becomes a containerd warning
/// ("failed to remove runc container: <binary> did not terminate successfully: exit
/// status N: <its stderr>"). Only warnings carrying rocker-runtime's own message count:
/// with Debian's runc too, this cleanup now and then ends in "exit status 255: " with no
/// output (the runtime killed, not failing), which is containerd's noise, not the runtime's.
#[test]
fn dead_shim_cleanup_delete_force_of_a_gone_container_succeeds() {
    let c = Containerd::start(Wiring::BinaryName);
    let r = c.run("gone", &["true"]);
    assert_eq!(r.code, 0, "stderr: {}\n{}", r.stderr, c.diag());
    c.wait_until("containerd's cleanup to call `delete --force`", 10, |c| {
        c.runtime_calls().iter().any(|(s, a)| s == "delete" && a.contains(&"--force".into()))
    });
    c.wait_until("the shims to exit", 10, |c| c.shim_pids().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let log = fs::read_to_string(&c.log).unwrap_or_default();
    let warning =
        log.lines().find(|l| l.contains("failed to remove runc container") && l.contains("rocker-runtime:"));
    assert!(
        warning.is_none(),
        "`delete --force` of a container that is gone failed:\n{}",
        warning.unwrap_or("")
    );
    c.finish();
}
