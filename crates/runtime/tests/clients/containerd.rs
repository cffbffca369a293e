//! A private containerd (Debian's 1.6, with its runc v2 shim) for a test, and the daemons of
//! its client (dockerd): its own config, root, state, gRPC and ttrpc sockets in a temp dir,
//! CRI (unless the test asks for it) and the snapshotters that cannot work here disabled,
//! the package's shim first in its PATH. The shims it starts run rocker-runtime through the
//! logging `Wrapper`. `Fixture` holds all a test made with it, and its `finish` and `Drop`
//! check and clean up what a test may leave: daemons, shims, shim sockets, mounts, cgroups,
//! paths on the host.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use rocker_test_support::{mounts_under, unique, Run, TempDir, TestCgroup};

use super::{
    cgroup_of, kill_leftovers, ppid, proc_state, processes, remove_deepest_first, serial, sha256_hex,
    unmount_all_under, wait_until, Cli, HostSnapshot, Wrapper, STD_PATH,
};

/// containerd 1.6 puts every shim's socket here, whatever its state dir (the path is
/// compiled in: `defaults.DefaultStateDir + "/s"`), named by sha256(address/namespace/id).
pub const SHIM_SOCKETS: &str = "/run/containerd/s";

/// The binaries of Debian's containerd package (`dpkg -L containerd`).
pub struct Binaries {
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub shim: PathBuf,
}

/// `setup`: the script that installs the package, for the messages.
pub fn binaries(setup: &str) -> Binaries {
    let out = Command::new("dpkg").args(["-L", "containerd"]).output();
    let listing = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!("Debian's containerd package is not installed: run {setup} as root"),
    };
    let find = |name: &str| {
        listing
            .lines()
            .map(PathBuf::from)
            .find(|p| p.file_name().is_some_and(|f| f == name) && p.is_file())
            .unwrap_or_else(|| panic!("the containerd package has no {name}: run {setup}"))
    };
    Binaries { containerd: find("containerd"), ctr: find("ctr"), shim: find("containerd-shim-runc-v2") }
}

/// A daemon of the test's, its output in a log file.
pub struct Daemon {
    pub name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
    /// How long it may take to stop after SIGTERM.
    grace: Duration,
}

impl Daemon {
    pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf, grace: Duration) -> Daemon {
        let file = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon { name, child: Some(child), log, grace }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn alive(&self) -> bool {
        self.pid().is_some_and(|pid| proc_state(pid as i32).is_some_and(|s| s != 'Z'))
    }

    /// SIGTERM by pid, then SIGKILL after its grace time; reaps it. Says how it ended (None:
    /// stopped already).
    pub fn stop(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        // SAFETY: kill with our child's pid and a signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(format!("{s}, exited after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let s = child.wait().map(|s| s.to_string()).unwrap_or_default();
        Some(format!("{s}, killed: did not stop within {:?} of SIGTERM", self.grace))
    }

    /// The last warnings and errors in its log.
    pub fn warnings(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let notable: Vec<&str> =
            text.lines().filter(|l| l.contains("level=warning") || l.contains("level=error")).collect();
        let mut s = format!("--- {} warnings and errors ({}):\n", self.name, self.log.display());
        for l in &notable[notable.len().saturating_sub(30)..] {
            s += l;
            s += "\n";
        }
        s
    }
}

/// Things of a client's that a test may leave (containers, tasks): the client command that
/// lists them (an id a line) and the commands that remove one (each with the id appended).
pub struct Leftovers {
    pub list: &'static [&'static str],
    pub remove: &'static [&'static [&'static str]],
}

/// Writes the CRI plugin's config tables, given the temp dir and the wrapper.
pub type CriConfig = fn(&Path, &Wrapper) -> String;

/// What `ctr` sees of a test's containers in its namespace (tasks, then containers), and how
/// it removes them: a task thawed, killed, deleted; then the container.
pub const CTR_LEFTOVERS: &[Leftovers] = &[
    Leftovers {
        list: &["task", "ls", "-q"],
        remove: &[&["task", "resume"], &["task", "kill", "-a", "-s", "SIGKILL"], &["task", "delete", "-f"]],
    },
    Leftovers { list: &["container", "ls", "-q"], remove: &[&["container", "delete"]] },
];

/// How a test wants its containerd.
pub struct Setup {
    /// The temp dir's prefix.
    pub name: &'static str,
    /// The script that installs what the test needs, for the messages.
    pub script: &'static str,
    /// The containerd namespace the client uses (None: a unique one).
    pub ns: Option<&'static str>,
    /// Whether `runc` in the daemon's PATH is the wrapper (the shim's default binary).
    pub runc_on_path: bool,
    /// Paths the client uses by default on the host: none may appear.
    pub host_paths: &'static [&'static str],
    /// Directories the client's daemon always makes (besides containerd's shim socket dirs),
    /// children first: removed at the end when the test made them and they are empty.
    pub run_dirs: &'static [&'static str],
    /// Cgroup names that are the test's doing, besides the namespace, containerd, shims and
    /// the cgroup parent (a relative path resolved from the wrong place): given a path
    /// component and the container ids.
    pub names: fn(&str, &BTreeSet<String>) -> bool,
    /// What none may be left of at the end (checked with the client, and removed with it
    /// after a failure).
    pub leftovers: &'static [Leftovers],
}

/// A private containerd, the client's daemons, and everything a test made with them; `own`
/// is what only that client's test needs. Its `Drop` cleans up after a failure too (never
/// asserting); field order is drop order: the cgroup parent is checked after the daemons
/// stopped, the temp dir removed last.
pub struct Fixture<C> {
    pub own: C,
    pub ns: String,
    pub sock: PathBuf,
    pub state: PathBuf,
    pub bins: Binaries,
    /// In the order they were started: containerd, then the client's (dockerd).
    pub daemons: Vec<Daemon>,
    /// The client's command line tool (`set_client`).
    client: Option<Cli>,
    leftovers: &'static [Leftovers],
    pub wrapper: Wrapper,
    /// Ids of the containers this test made (for the wrapper-log, shim-socket and cgroup checks).
    pub ids: RefCell<BTreeSet<String>>,
    /// Those of them whose `create` was meant to fail (no `start` expected).
    pub failed_creates: RefCell<BTreeSet<String>>,
    host: HostSnapshot,
    names: fn(&str, &BTreeSet<String>) -> bool,
    pub cg: TestCgroup,
    pub tmp: TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl<C> Fixture<C> {
    /// Starts containerd and waits for its socket; `own` is made in the temp dir.
    pub fn new(setup: Setup, own: impl FnOnce(&Path) -> C) -> Fixture<C> {
        Fixture::launch(setup, None, own)
    }

    /// The same with containerd's CRI plugin enabled: `cri` writes its tables
    /// (`[plugins."io.containerd.grpc.v1.cri"...]`), given the temp dir and the wrapper.
    pub fn with_cri(setup: Setup, cri: CriConfig, own: impl FnOnce(&Path) -> C) -> Fixture<C> {
        Fixture::launch(setup, Some(cri), own)
    }

    fn launch(setup: Setup, cri: Option<CriConfig>, own: impl FnOnce(&Path) -> C) -> Fixture<C> {
        let serial = serial();
        let bins = binaries(setup.script);
        let tmp = TempDir::new(setup.name);
        let dir = tmp.path().to_path_buf();
        let wrapper = Wrapper::new(&dir, &[]);

        // PATH: the package's shim first (containerd looks the shim up in PATH), then the
        // usual dirs, so that a lost BinaryName would really fall back to the host's runc
        // (and be caught by the wrapper-log checks). runc_on_path puts the wrapper before all.
        let mut path = vec![bins.shim.parent().unwrap().to_path_buf()];
        if setup.runc_on_path {
            let bin = dir.join("bin");
            fs::create_dir(&bin).unwrap();
            std::os::unix::fs::symlink(&wrapper.path, bin.join("runc")).unwrap();
            path.insert(0, bin);
        }
        path.extend(STD_PATH.map(PathBuf::from));

        let (sock, state, config) =
            (dir.join("containerd.sock"), dir.join("containerd-state"), dir.join("containerd.toml"));
        // No snapshotters that cannot work here; no CRI unless the test asks for it (without,
        // containerd starts faster and logs less). (The v1 runtime
        // "io.containerd.runtime.v1.linux" must stay: the tasks service of 1.6 will not load
        // without it.)
        let mut disabled = vec![
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
        ];
        if cri.is_none() {
            disabled.push("io.containerd.grpc.v1.cri");
        }
        let disabled: String = disabled.iter().map(|p| format!("\n  \"{p}\",")).collect();
        let cri = cri.map_or_else(String::new, |config| config(&dir, &wrapper));
        let toml = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [{disabled}
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
{cri}"#,
            root = dir.join("containerd-root").display(),
            state = state.display(),
            sock = sock.display(),
            opt = dir.join("opt").display(),
        );
        fs::write(&config, toml).unwrap();

        let run_dirs = [&[SHIM_SOCKETS, "/run/containerd"][..], setup.run_dirs].concat();
        let host = HostSnapshot::take(setup.host_paths, &run_dirs, &[]);
        let mut cmd = Command::new(&bins.containerd);
        cmd.arg("--config").arg(&config).env("PATH", std::env::join_paths(&path).unwrap());
        // The shim writes exec process specs to its TMPDIR.
        cmd.env("TMPDIR", &dir);
        let daemon = Daemon::spawn("containerd", cmd, dir.join("containerd.log"), Duration::from_secs(10));
        let fx = Fixture {
            own: own(&dir),
            ns: setup.ns.map_or_else(|| unique("ns"), str::to_string),
            sock,
            state,
            bins,
            daemons: vec![daemon],
            client: None,
            leftovers: setup.leftovers,
            wrapper,
            ids: RefCell::new(BTreeSet::new()),
            failed_creates: RefCell::new(BTreeSet::new()),
            host,
            names: setup.names,
            cg: TestCgroup::new(),
            tmp,
            _serial: serial,
        };
        fx.wait_ready("containerd to serve its socket", 20, || fx.sock.exists());
        fx
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The client's command line tool (ctr, docker), once its daemon runs.
    pub fn set_client(&mut self, cli: Cli) {
        self.client = Some(cli);
    }

    pub fn client(&self) -> &Cli {
        self.client.as_ref().expect("set_client: no client")
    }

    /// Waits until the client's `args` (a version query) succeed: its daemon answers.
    pub fn wait_for_client(&self, what: &str, secs: u64, args: &[&str]) {
        let answers = || self.client().try_run(args, Duration::from_secs(5)).is_ok_and(|r| r.code == 0);
        self.wait_ready(what, secs, answers);
    }

    /// The client with `args`, to its end (panics after its timeout, with the logs).
    pub fn cli(&self, args: &[&str]) -> Run {
        self.client().run(args, || self.diag())
    }

    /// The client with `args`, which must succeed.
    pub fn cli_ok(&self, args: &[&str]) -> Run {
        self.client().run_ok(args, || self.diag())
    }

    /// Whether every daemon is still alive.
    pub fn running(&self) -> bool {
        self.daemons.iter().all(Daemon::alive)
    }

    /// Waits until `ready`; fails when a daemon exited meanwhile.
    pub fn wait_ready(&self, what: &str, secs: u64, mut ready: impl FnMut() -> bool) {
        let cond = || {
            assert!(self.running(), "a daemon exited while waiting for {what}:\n{}", self.diag());
            ready()
        };
        wait_until(what, secs, cond, || self.diag());
    }

    /// The containers' bundles (each `<id>/`, with `rootfs` as the shim mounted it).
    pub fn bundles(&self) -> PathBuf {
        self.state.join("io.containerd.runtime.v2.task").join(&self.ns)
    }

    /// Live shims of this containerd (their command line names its socket).
    pub fn shim_pids(&self) -> Vec<i32> {
        let sock = self.sock.display().to_string();
        processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim") && cmd.contains(&sock))
            .map(|(pid, _)| pid)
            .collect()
    }

    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{}/{}", self.sock.display(), self.ns, id);
        Path::new(SHIM_SOCKETS).join(sha256_hex(key.as_bytes()))
    }

    /// New cgroup directories (anywhere, every hierarchy) that are this test's doing, outside
    /// its cgroup parent: named after the namespace, containerd, a shim, the cgroup parent or
    /// what `Setup::names` says. With `running`, the containers' own cgroups below the parent
    /// are expected.
    pub fn stray_cgroups(&self, running: bool) -> Vec<PathBuf> {
        let ids = self.ids.borrow();
        self.host.new_cgroups(&self.cg, running, |s| {
            s == self.ns
                || s.contains("containerd")
                || s.contains("shim")
                || s == self.cg.name
                || (self.names)(s, &ids)
        })
    }

    pub fn assert_runtime_called(&self, id: &str, subcommands: &[&str]) {
        self.wrapper.assert_called(id, subcommands, || self.diag());
    }

    /// Where a running container's init (`pid`) and its shim are: the init in
    /// `<TestCgroup>/<child>` in every hierarchy, its parent the one shim (a subreaper), the
    /// shim in the test's own cgroup, no cgroup of the test's made elsewhere.
    pub fn assert_placed(&self, child: &str, pid: i32) {
        for d in self.cg.dirs() {
            let procs = fs::read_to_string(d.join(child).join("cgroup.procs")).unwrap_or_default();
            assert!(
                procs.lines().any(|l| l == pid.to_string()),
                "pid {pid} is not in {}/{child}: {procs:?}",
                d.display()
            );
        }
        let shim = ppid(pid).unwrap();
        let shim_cmd = fs::read_to_string(format!("/proc/{shim}/cmdline")).unwrap().replace('\0', " ");
        assert!(
            shim_cmd.contains("containerd-shim-runc-v2"),
            "the init's parent is not the shim: {shim_cmd}"
        );
        assert_eq!(self.shim_pids(), vec![shim], "one shim for one container");
        assert_eq!(cgroup_of(shim), cgroup_of("self"), "the shim left the test's cgroup");
        let stray = self.stray_cgroups(true);
        assert!(stray.is_empty(), "cgroups made outside the test's cgroup: {stray:?}");
    }

    /// Stops the daemons, the client's first. Says how each ended.
    pub fn stop_daemons(&mut self) -> Vec<String> {
        let stop = |d: &mut Daemon| d.stop().map(|how| format!("{}: {how}", d.name));
        self.daemons.iter_mut().rev().filter_map(stop).collect()
    }

    /// The checks every test ends with: nothing of the client's left (`Setup::leftovers`),
    /// the runtime called for each container (`create`, `start`, `delete`; no `start` for a
    /// failed create), the daemons still in the test's cgroup and stopping on SIGTERM (the
    /// client's first: dockerd stops its containers and unmounts its data root), then no
    /// shim, shim socket, mount under the temp dir, stray cgroup, run dir or host path left.
    /// The cgroup parent is checked for leftovers and removed by `TestCgroup`, the temp dir
    /// by `TempDir`.
    pub fn finish(mut self) {
        for l in self.leftovers {
            let left = self.cli_ok(l.list).stdout;
            assert!(left.trim().is_empty(), "left ({}): {left}\n{}", l.list.join(" "), self.diag());
        }
        for id in self.ids.borrow().iter() {
            if self.failed_creates.borrow().contains(id) {
                self.assert_runtime_called(id, &["create", "delete"]);
            } else {
                self.assert_runtime_called(id, &["create", "start", "delete"]);
            }
        }
        let own = cgroup_of("self");
        for d in &self.daemons {
            assert_eq!(
                cgroup_of(d.pid().unwrap_or(0)),
                own,
                "{} moved itself out of the test's cgroup",
                d.name
            );
        }
        let diag = self.diag();
        let how = self.stop_daemons();
        assert!(how.iter().all(|h| h.ends_with("exited after SIGTERM")), "daemons: {how:?}\n{diag}");
        wait_until("the shims to exit", 10, || self.shim_pids().is_empty(), || self.diag());
        for id in self.ids.borrow().iter() {
            let s = self.shim_socket(id);
            assert!(!s.exists(), "the shim of {id} left its socket {}", s.display());
        }
        let mounts = mounts_under(self.dir());
        assert!(mounts.is_empty(), "mounts left under {}: {mounts:?}\n{diag}", self.dir().display());
        let stray = self.stray_cgroups(false);
        assert!(stray.is_empty(), "cgroups made outside the test's own cgroup, or left: {stray:?}");
        self.host.remove_run_dirs();
        let changes = self.host.changes();
        assert!(changes.is_empty(), "left on the host:\n{}", changes.join("\n"));
    }

    /// Everything worth reading when something failed.
    pub fn diag(&self) -> String {
        let mut s = format!("--- rocker-runtime calls ({}):\n", self.wrapper.log.display());
        s += &fs::read_to_string(&self.wrapper.log).unwrap_or_default();
        for d in &self.daemons {
            s += &d.warnings();
        }
        for e in fs::read_dir(self.bundles()).into_iter().flatten().flatten() {
            let j = e.path().join("log.json");
            if let Ok(t) = fs::read_to_string(&j) {
                s += &format!("--- {}:\n{t}", j.display());
            }
        }
        s += &format!("--- config.json copies: {}\n", self.wrapper.configs.display());
        s
    }
}

impl<C> Drop for Fixture<C> {
    /// Cleanup that cannot be forgotten, after a failure too; never panics.
    fn drop(&mut self) {
        // What a failed test left: through the client, so the shims unmount the rootfs,
        // remove the container cgroups and exit.
        if let Some(cli) = self.client.as_ref().filter(|_| self.running()) {
            let short = Duration::from_secs(15);
            for l in self.leftovers {
                let ids = cli.try_run(l.list, short).map(|r| r.stdout).unwrap_or_default();
                for id in ids.lines() {
                    for cmd in l.remove {
                        let _ = cli.try_run(&[cmd, &[id][..]].concat(), short);
                    }
                }
            }
        }
        self.stop_daemons();
        kill_leftovers(self.tmp.path(), &self.cg);
        // Container cgroups a killed shim could not remove: TestCgroup removes them (its
        // direct children) and reports them when the test did not fail already. Cgroups of
        // ours made in the wrong place (reported by `finish`):
        remove_deepest_first(self.stray_cgroups(false));
        // Shim sockets of killed shims, and the run dirs the test made (when empty).
        for id in self.ids.borrow().iter() {
            let _ = fs::remove_file(self.shim_socket(id));
        }
        self.host.remove_run_dirs();
        unmount_all_under(self.tmp.path());
    }
}
