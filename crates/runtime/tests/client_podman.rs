//! A real client: Debian's podman (4.3, with conmon) driving rocker-runtime as its OCI
//! runtime. Podman is kept off the machine's own state: its storage, run root, tmp dir,
//! locks, events and network configs live in a temp dir, its config files are temp files
//! (no registry is ever asked: the image is imported from a tar and runs use
//! `--pull never`), and its containers' cgroups hang below the test's own cgroup. The
//! runtime is a logging wrapper around rocker-runtime, and every test checks the log, so a
//! fallback to crun or runc cannot pass.
//!
//! Needs root and `tests/clients/podman/setup.sh` (podman, conmon, busybox-static, script).
//! Run: `cargo test -p rocker-runtime --test client_podman -- --test-threads=1` (the tests
//! serialize themselves anyway: they share the test process as conmon's subreaper).
//!
//! What podman is told, and why:
//! - `--cgroup-parent <relative name>`: podman (cgroupfs manager) gives the runtime the
//!   relative `cgroupsPath` `<name>/libpod-<id>`, which rocker-runtime resolves below its
//!   caller's own cgroup in every hierarchy, as runc does. An absolute parent cannot be
//!   inside our cgroup in every v1 hierarchy (here memory is below /process_api/..., the
//!   others at /).
//! - `--cgroups no-conmon`: otherwise podman moves conmon into `<parent>/conmon`, taken from
//!   the ROOT of every hierarchy (so outside our memory cgroup), and conmon then runs
//!   `create` from there, so the relative path lands in `/<parent>/conmon/<parent>/...`
//!   while podman's own `kill`/`delete` calls resolve it from podman's cgroup.
//! - `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: podman asks for nofile 1048576,
//!   and root here lacks CAP_SYS_RESOURCE to raise a hard limit.
//! - no `--security-opt seccomp=unconfined`: podman's default profile is applied.
//! - `--network none` (also the containers.conf default): no CNI, no iptables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use clients::{
    assert_ok, busybox_layer, list_dir, proc_stat, remove_deepest_first, rlimit, serial, shell_quote,
    unmount_all_under, wait_until, Cli, HostSnapshot, Wrapper, RUNTIME,
};
use rocker_test_support::*;

mod clients;

const IMAGE: &str = "localhost/rocker-busybox:test";
const TIMEOUT: Duration = Duration::from_secs(90);

/// Until rocker-runtime loaded seccomp filters, every run needed this (the spec's
/// `linux.seccomp` was ignored); now the runs keep podman's default profile, and
/// podmans_default_seccomp_profile_is_loaded checks both.
const SECCOMP_UNCONFINED: [&str; 2] = ["--security-opt", "seccomp=unconfined"];

/// Paths on the host that podman (as root) uses by default. None may appear because of
/// these tests.
const GLOBAL_PATHS: &[&str] = &[
    "/var/lib/containers",
    "/run/libpod",
    "/run/containers",
    "/run/podman",
    "/dev/shm/libpod_lock",
    "/etc/containers/networks",
];
/// Directories whose entries must not change (new entries would be ours).
const GLOBAL_DIRS: &[&str] = &["/etc/cni/net.d", "/run/rocker-runtime"];

struct Podman {
    /// podman with the isolating global options and config files.
    podman: Cli,
    wrapper: Wrapper,
    host: HostSnapshot,
    ulimits: Vec<String>,
    dir: TempDir,
    cg: TestCgroup,
    /// One podman test at a time: they share this process as the subreaper of conmon (which
    /// daemonizes) and count its orphans at teardown.
    _serial: MutexGuard<'static, ()>,
}

impl Podman {
    fn new() -> Podman {
        let serial = serial();
        let version = Command::new("podman").arg("--version").output();
        assert!(
            matches!(&version, Ok(o) if o.status.success()),
            "podman is not installed: run tests/clients/podman/setup.sh ({version:?})"
        );
        // conmon daemonizes: with this process as subreaper it becomes our child, so
        // teardown can see (and reap) every conmon and `podman container cleanup` left.
        // SAFETY: prctl with integer arguments only.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);

        let host = HostSnapshot::take(GLOBAL_PATHS, &[], GLOBAL_DIRS);
        let dir = TempDir::new("podman");
        let d = dir.path();
        // The runtime gets a state root of its own (podman passes no `--root` as root, so the
        // runtime's default, /run/rocker-runtime, would be shared with the host). podman gives
        // conmon and the runtime a fixed environment, so paths are baked into the wrapper.
        let wrapper = Wrapper::new(d, &["--root", d.join("runtime-state").to_str().unwrap()]);
        let podman = Cli::new("podman", d, TIMEOUT)
            .args([
                "--root".as_ref(),
                d.join("root").as_os_str(),
                "--runroot".as_ref(),
                d.join("runroot").as_os_str(),
                "--tmpdir".as_ref(),
                d.join("tmp").as_os_str(),
                "--storage-driver".as_ref(),
                "vfs".as_ref(),
                "--cgroup-manager".as_ref(),
                "cgroupfs".as_ref(),
                "--events-backend".as_ref(),
                "file".as_ref(),
                "--runtime".as_ref(),
                wrapper.path.as_os_str(),
            ])
            .env("CONTAINERS_CONF", Some(d.join("containers.conf")))
            .env("CONTAINERS_REGISTRIES_CONF", Some(d.join("registries.conf")))
            .env("CONTAINERS_STORAGE_CONF", Some(d.join("storage.conf")));
        let p =
            Podman { podman, wrapper, host, ulimits: ulimits(), dir, cg: TestCgroup::new(), _serial: serial };
        p.write_config();
        p.import_image();
        let r = p.podman(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
        ok("podman info", &r);
        assert_eq!(r.stdout.trim(), p.wrapper.path.to_str().unwrap(), "podman's OCI runtime");
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn state_root(&self) -> PathBuf {
        self.path("runtime-state")
    }

    /// podman's config files: everything of its own in the temp dir.
    fn write_config(&self) {
        let d = self.dir.path().to_str().unwrap();
        // lock_type "file": locks under tmp_dir instead of the shared /dev/shm/libpod_lock.
        let conf = format!(
            r#"[containers]
netns = "none"

[network]
network_backend = "cni"
network_config_dir = "{d}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
lock_type = "file"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
static_dir = "{d}/root/libpod"
"#
        );
        std::fs::write(self.path("containers.conf"), conf).unwrap();
        std::fs::write(self.path("registries.conf"), "unqualified-search-registries = []\n").unwrap();
        let storage =
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n");
        std::fs::write(self.path("storage.conf"), storage).unwrap();
    }

    /// `podman ARGS` to its end (fails after TIMEOUT).
    fn podman(&self, args: &[&str]) -> Run {
        self.podman.run(args, String::new)
    }

    /// The options every container gets (see the module comment).
    fn run_opts(&self) -> Vec<String> {
        let mut o: Vec<String> = vec![
            "--pull".into(),
            "never".into(),
            "--network".into(),
            "none".into(),
            "--cgroup-parent".into(),
            self.cg.name.clone(),
            "--cgroups".into(),
            "no-conmon".into(),
        ];
        o.extend(self.ulimits.iter().cloned());
        o
    }

    /// `podman run <opts> <extra> IMAGE <command>`, the container's id written to a cid file.
    fn run_args(&self, extra: &[&str], command: &[&str]) -> (Vec<String>, PathBuf) {
        let cidfile = self.path(&unique("cid"));
        let mut a: Vec<String> = vec!["run".into(), "--cidfile".into(), cidfile.to_str().unwrap().into()];
        a.extend(self.run_opts());
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(IMAGE.into());
        a.extend(command.iter().map(|s| s.to_string()));
        (a, cidfile)
    }

    fn podman_run(&self, extra: &[&str], command: &[&str]) -> (Run, String) {
        let (args, cidfile) = self.run_args(extra, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = self.podman(&args);
        let id = std::fs::read_to_string(&cidfile).unwrap_or_default().trim().to_string();
        (r, id)
    }

    /// The busybox image, imported from a tar of a busybox root filesystem (no registry).
    /// `podman import` writes a blob-info cache to /var/lib/containers/cache whatever its
    /// --root (containers/image's default for root): it runs in a mount namespace of its
    /// own where /var/lib is a temp dir, so the host's /var/lib is left alone.
    fn import_image(&self) {
        let tar = self.path("busybox.tar");
        busybox_layer(&tar);
        let varlib = self.path("varlib");
        std::fs::create_dir_all(&varlib).unwrap();
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" /var/lib && shift && exec "$@""#)
            .arg("sh")
            .arg(&varlib)
            .args(self.podman.argv())
            .args(["import", "--change", "CMD=sh", tar.to_str().unwrap(), IMAGE]);
        self.podman.set_env(&mut c);
        ok("podman import", &self.podman.wait(c, "podman import", String::new));
        ok("podman image exists", &self.podman(&["image", "exists", IMAGE]));
    }

    /// Fails unless rocker-runtime was called with each of `ops` for container `id`.
    fn assert_runtime_called(&self, id: &str, ops: &[&str]) {
        self.wrapper.assert_called(id, ops, || format!("runtime calls: {:#?}", self.wrapper.lines()));
    }

    /// The container's directory in each cgroup hierarchy.
    fn container_cgroups(&self, id: &str) -> Vec<PathBuf> {
        self.cg.dirs().into_iter().map(|d| d.join(format!("libpod-{id}"))).collect()
    }

    /// Runs a shell command line under script(1), so podman has a real terminal.
    fn in_terminal(&self, args: &[String], rows_cols: (u16, u16)) -> Run {
        let podman: Vec<String> = self
            .podman
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .chain(args.iter().cloned())
            .collect();
        let line = format!(
            "stty rows {} cols {} && exec {}",
            rows_cols.0,
            rows_cols.1,
            podman.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
        );
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"]);
        self.podman.set_env(&mut c);
        self.podman.wait(c, &format!("script -qec {line:?}"), String::new)
    }

    /// Removes every container, then checks that nothing is left: processes, mounts,
    /// runtime state, cgroups, files on the host.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let r = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        if r.code != 0 {
            problems.push(format!("podman rm -af failed: {} {}", r.stdout, r.stderr));
        }
        // conmon and `podman container cleanup` (conmon's exit command) end on their own.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let live = reap_children();
            if live.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!("processes left running (killed now): {live:?}"));
                for (pid, _) in &live {
                    // SAFETY: plain kill(2) of a process podman started for this test.
                    unsafe { libc::kill(*pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(200));
                reap_children();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mounts = mounts_under(self.dir.path());
        if !mounts.is_empty() {
            problems.push(format!("mounts left under podman's dirs (unmounted now): {mounts:?}"));
            unmount_all_under(self.dir.path());
        }
        let state = list_dir(&self.state_root());
        if !state.is_empty() {
            problems.push(format!("rocker-runtime state left for containers {state:?}"));
            for id in &state {
                let _ = Command::new(RUNTIME)
                    .arg("--root")
                    .arg(self.state_root())
                    .args(["delete", "--force", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Every container is gone, so nothing may remain below our parent, and podman may
        // have made nothing of its own (conmon's cgroup, /libpod_parent, machine.slice)
        // anywhere else. Whatever is found is reported, then removed (deepest first).
        let ours: Vec<PathBuf> = self.cg.dirs();
        let new = self.host.new_cgroups(&self.cg, false, |c| {
            c.contains("libpod") || c == "conmon" || c == "machine.slice" || c == self.cg.name
        });
        let (inside, outside): (Vec<&PathBuf>, Vec<&PathBuf>) =
            new.iter().partition(|d| ours.iter().any(|o| d.starts_with(o)));
        if !outside.is_empty() {
            problems.push(format!("cgroups made outside the test's own: {outside:?}"));
        }
        if !inside.is_empty() {
            problems.push(format!("cgroups left below the test's cgroup after `podman rm -af`: {inside:?}"));
        }
        remove_deepest_first(new);
        problems.extend(self.host.changes());
        problems
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let problems = self.teardown();
        if !std::thread::panicking() {
            assert!(problems.is_empty(), "podman left things behind:\n{}", problems.join("\n"));
        } else if !problems.is_empty() {
            eprintln!("podman left things behind:\n{}", problems.join("\n"));
        }
    }
}

fn ok(what: &str, r: &Run) {
    assert_ok(what, r, String::new);
}

/// A cgroup line's controllers ("cpu,cpuacct"), as a set.
fn controllers(s: &str) -> std::collections::BTreeSet<&str> {
    s.split(',').filter(|c| !c.is_empty()).collect()
}

/// `--ulimit` options within the hard limits podman and conmon run with: podman asks for
/// nofile 1048576 by default, and raising a hard limit needs CAP_SYS_RESOURCE, which root
/// lacks here. (Not "our hard limit": podman lowers its own nproc hard limit to 32768, and
/// conmon and the runtime inherit that.)
fn ulimits() -> Vec<String> {
    let mut out = Vec::new();
    for (name, res) in [("nofile", libc::RLIMIT_NOFILE), ("nproc", libc::RLIMIT_NPROC)] {
        let v = rlimit(res).1.min(1024);
        out.push("--ulimit".into());
        out.push(format!("{name}={v}:{v}"));
    }
    out
}

/// Reaps this process's exited children (orphans handed to us as subreaper) and returns
/// the live ones as (pid, command line).
fn reap_children() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut live = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Some((state, ppid)) = proc_stat(pid) else { continue };
        if ppid != me {
            continue;
        }
        if state == 'Z' {
            let mut status = 0;
            // SAFETY: waitpid on one of our own exited children.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        } else {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            live.push((pid, cmdline.chars().take(200).collect()));
        }
    }
    live
}

fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    wait_until(what, 20, cond, String::new);
}

#[test]
fn run_rm_prints_output_and_returns_exit_codes() {
    let p = Podman::new();
    let (r, id) = p.podman_run(
        &["--rm"],
        &["sh", "-c", "echo 'hello  from podman'; echo to-stderr >&2; cat /proc/self/cgroup"],
    );
    ok("podman run --rm", &r);
    assert!(r.stdout.starts_with("hello  from podman\n"), "{:?}", r.stdout);
    assert!(r.stderr.contains("to-stderr"), "stderr {:?}", r.stderr);
    p.assert_runtime_called(&id, &["create", "start", "delete"]);
    // The container's cgroup is below the test's own, in every hierarchy.
    for (mount, own) in hierarchies() {
        let expected = Path::new(&own).join(&p.cg.name).join(format!("libpod-{id}"));
        let key = controllers(if cgroup_v2() { "" } else { mount.file_name().unwrap().to_str().unwrap() });
        let path = r
            .stdout
            .lines()
            .filter_map(|l| l.splitn(3, ':').collect::<Vec<_>>().get(1..3).map(|f| (f[0], f[1])))
            .find(|(c, _)| controllers(c) == key)
            .map(|(_, p)| p)
            .unwrap_or("");
        assert_eq!(
            Path::new(path),
            expected,
            "the container's cgroup in {}; its /proc/self/cgroup: {}",
            mount.display(),
            r.stdout
        );
    }
    assert!(
        p.container_cgroups(&id).iter().all(|d| !d.exists()),
        "the container's cgroup outlived `run --rm`"
    );

    let (r, id) = p.podman_run(&["--rm"], &["sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "exit code of `sh -c 'exit 3'`; stderr {:?}", r.stderr);
    p.assert_runtime_called(&id, &["create", "start", "delete"]);

    // Not found: create fails, podman maps the runtime's message to 127.
    let (r, _) = p.podman_run(&["--rm"], &["no-such-command"]);
    assert_eq!(r.code, 127, "stderr {:?}", r.stderr);
    assert!(r.stderr.contains("no-such-command"), "stderr {:?}", r.stderr);
    // After a failed create podman runs `delete --force` on the id; runc succeeds
    // silently when there is nothing to delete, so podman prints no second error.
    assert!(
        !r.stderr.contains("from runtime after creation failed"),
        "rocker-runtime `delete --force` of a container that does not exist fails (runc returns \
         success with --force), so podman reports an extra error: {:?}",
        r.stderr
    );
}

#[test]
fn detached_exec_pause_stop_rm() {
    let p = Podman::new();
    let script = "trap 'echo got-term; exit 0' TERM; echo up; while :; do sleep 0.1; done";
    let (r, id) = p.podman_run(&["-d", "--name", "det"], &["sh", "-c", script]);
    ok("podman run -d", &r);
    assert_eq!(r.stdout.trim(), id);
    p.assert_runtime_called(&id, &["create", "start"]);
    let status =
        |p: &Podman| p.podman(&["inspect", "--format", "{{.State.Status}}", "det"]).stdout.trim().to_string();
    assert_eq!(status(&p), "running");
    wait_for("the container's first output", || p.podman(&["logs", "det"]).stdout.contains("up"));

    let r =
        p.podman(&["exec", "det", "sh", "-c", "echo exec-ok $(cat /proc/1/cmdline | tr '\\0' ' '); exit 4"]);
    assert_eq!(r.code, 4, "exit code of exec; stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("exec-ok sh -c trap"), "{:?}", r.stdout);
    p.assert_runtime_called(&id, &["exec"]);
    let r = p.podman(&["exec", "-e", "X=y z", "-w", "/tmp", "det", "sh", "-c", "echo \"$X\" $(pwd)"]);
    ok("podman exec -e -w", &r);
    assert_eq!(r.stdout, "y z /tmp\n");

    ok("podman pause", &p.podman(&["pause", "det"]));
    assert_eq!(status(&p), "paused");
    ok("podman unpause", &p.podman(&["unpause", "det"]));
    assert_eq!(status(&p), "running");
    p.assert_runtime_called(&id, &["pause", "resume"]);

    let r = p.podman(&["stop", "--time", "20", "det"]);
    ok("podman stop", &r);
    let r = p.podman(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "det"]);
    assert_eq!(r.stdout.trim(), "exited 0", "SIGTERM reached the trap: the container exited 0");
    assert!(p.podman(&["logs", "det"]).stdout.contains("got-term"));
    p.assert_runtime_called(&id, &["kill"]);
    assert!(
        p.wrapper.lines().iter().any(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            t.contains(&"kill")
                && t.contains(&id.as_str())
                && ["15", "TERM", "SIGTERM"].iter().any(|s| t.contains(s))
        }),
        "podman stop sends SIGTERM through `kill`: {:#?}",
        p.wrapper.lines()
    );
    ok("podman rm", &p.podman(&["rm", "det"]));
    p.assert_runtime_called(&id, &["delete"]);
    assert!(p.container_cgroups(&id).iter().all(|d| !d.exists()), "the container's cgroup outlived `rm`");
    assert!(list_dir(&p.state_root()).is_empty(), "runtime state outlived `rm`");
}

#[test]
fn environment_variables() {
    let p = Podman::new();
    let (r, id) = p.podman_run(&["--rm", "-e", "FOO=bar", "-e", "SPACED=a  b", "--env", "EMPTY="], &[
        "sh",
        "-c",
        "echo \"FOO=$FOO\"; echo \"SPACED=$SPACED\"; echo \"EMPTY=[${EMPTY-unset}]\"; echo \"container=$container\"",
    ]);
    ok("podman run -e", &r);
    assert_eq!(r.stdout, "FOO=bar\nSPACED=a  b\nEMPTY=[]\ncontainer=podman\n");
    p.assert_runtime_called(&id, &["create", "start", "delete"]);
}

#[test]
fn memory_limit_is_applied_to_the_containers_cgroup() {
    let p = Podman::new();
    let (r, id) = p.podman_run(&["-d", "--name", "mem", "--memory", "64m"], &["sleep", "1000"]);
    ok("podman run -d --memory 64m", &r);
    p.assert_runtime_called(&id, &["create", "start"]);
    // On the host: the container's memory cgroup, below the test's own.
    let (host_file, inside_file) = if cgroup_v2() {
        (p.container_cgroups(&id)[0].join("memory.max"), "/sys/fs/cgroup/memory.max")
    } else {
        let (mount, own) = hierarchies()
            .into_iter()
            .find(|(m, _)| {
                m.file_name().is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == "memory"))
            })
            .expect("a memory hierarchy");
        let dir = mount.join(own.trim_start_matches('/')).join(&p.cg.name).join(format!("libpod-{id}"));
        (dir.join("memory.limit_in_bytes"), "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    };
    let host = std::fs::read_to_string(&host_file).unwrap_or_else(|e| panic!("{}: {e}", host_file.display()));
    assert_eq!(host.trim(), "67108864", "{}", host_file.display());
    // Inside: podman mounts the container's own cgroup at /sys/fs/cgroup.
    let r = p.podman(&["exec", "mem", "cat", inside_file]);
    ok("reading the limit inside", &r);
    assert_eq!(r.stdout.trim(), "67108864");
    ok("podman rm -f", &p.podman(&["rm", "--force", "--time", "0", "mem"]));
    p.assert_runtime_called(&id, &["delete"]);
    assert!(!host_file.parent().unwrap().exists(), "the container's memory cgroup outlived `rm`");
}

#[test]
fn network_none_has_only_loopback() {
    let p = Podman::new();
    // `--network none` is in every run's options (podman refuses it twice).
    let (r, id) = p.podman_run(
        &["--rm"],
        &[
            "sh",
            "-c",
            "ls /sys/class/net; ip -o addr show lo | grep -c 'inet 127.0.0.1'; readlink /proc/self/ns/net",
        ],
    );
    ok("podman run --network none", &r);
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{:?}", r.stdout);
    assert_eq!(lines[..2], ["lo", "1"], "interfaces, then the count of lo's 127.0.0.1: {:?}", r.stdout);
    assert_ne!(Path::new(lines[2]), host_ns, "the container has a network namespace of its own");
    p.assert_runtime_called(&id, &["create", "start", "delete"]);
}

#[test]
fn tty_with_a_real_terminal() {
    let p = Podman::new();
    let (args, cidfile) =
        p.run_args(&["--rm", "-t"], &["sh", "-c", "tty; stty size; [ -t 0 ] && echo stdin-is-a-tty; exit 5"]);
    let r = p.in_terminal(&args, (30, 100));
    assert_eq!(r.code, 5, "exit code through the terminal; output {:?} stderr {:?}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["/dev/pts/0", "30 100", "stdin-is-a-tty"], "output {:?}", r.stdout);
    let id = std::fs::read_to_string(cidfile).unwrap().trim().to_string();
    p.assert_runtime_called(&id, &["create", "start", "delete"]);
    assert!(
        p.wrapper.lines().iter().any(|l| l.contains("--console-socket") && l.contains(&id)),
        "podman -t passes a console socket to create: {:#?}",
        p.wrapper.lines()
    );

    // And exec -t into a detached container.
    let (r, id) = p.podman_run(&["-d", "--name", "ttyd"], &["sleep", "1000"]);
    ok("podman run -d", &r);
    let exec: Vec<String> =
        ["exec", "-t", "ttyd", "sh", "-c", "tty; stty size; exit 6"].iter().map(|s| s.to_string()).collect();
    let r = p.in_terminal(&exec, (40, 120));
    assert_eq!(r.code, 6, "exit code of exec -t; output {:?} stderr {:?}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.len() >= 2 && lines[0].starts_with("/dev/pts/") && lines[1] == "40 120",
        "output {:?}",
        r.stdout
    );
    p.assert_runtime_called(&id, &["exec"]);
}

/// runc applies the process's rlimits (and user, capabilities...) in `create`, before the
/// container waits to be started, so a failure there fails `create` and podman prints it
/// (exit 126, "OCI permission denied"). A hard RLIMIT_NOFILE above fs.nr_open is refused
/// even with CAP_SYS_RESOURCE, so this fails on every machine.
#[test]
fn a_process_setup_failure_reaches_podman() {
    let p = Podman::new();
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open").unwrap().trim().parse().unwrap();
    let nofile = format!("nofile={0}:{0}", nr_open + 1);
    let (r, id) = p.podman_run(&["--name", "rlim", "--ulimit", &nofile], &["echo", "must not run"]);
    p.assert_runtime_called(&id, &["create"]);
    let state = p.podman(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "rlim"]);
    assert!(!r.stdout.contains("must not run"), "{:?}", r.stdout);
    assert!(
        r.code == 126 && r.stderr.contains("RLIMIT_NOFILE"),
        "an rlimit the runtime cannot set must fail `create` with a message naming it (runc: exit 126, \
         \"error setting rlimit type 7: operation not permitted\"): podman got exit {} with stderr {:?}; \
         state {:?}; runtime calls {:#?}",
        r.code,
        r.stderr,
        state.stdout.trim(),
        p.wrapper.lines()
    );
    assert!(!p.wrapper.lines().iter().any(|l| l.starts_with("start ")), "start after a failed create");
}

/// Without `seccomp=unconfined`, podman's default profile (containers-common's seccomp.json)
/// is in the spec, and the container's processes run under it.
#[test]
fn podmans_default_seccomp_profile_is_loaded() {
    let p = Podman::new();
    let (r, id) = p.podman_run(&["--rm"], &["grep", "^Seccomp:", "/proc/self/status"]);
    ok("podman run with the default seccomp profile", &r);
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["Seccomp:", "2"], "2 is filter mode");
    p.assert_runtime_called(&id, &["create", "start", "delete"]);
    // And for a process exec'd into the container.
    let (r, id) = p.podman_run(&["-d", "--name", "sc"], &["sleep", "1000"]);
    ok("podman run -d", &r);
    let r = p.podman(&["exec", "sc", "grep", "^Seccomp:", "/proc/self/status"]);
    ok("podman exec", &r);
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["Seccomp:", "2"]);
    p.assert_runtime_called(&id, &["exec"]);

    let (r, _) = p.podman_run(
        &["--rm", SECCOMP_UNCONFINED[0], SECCOMP_UNCONFINED[1]],
        &["grep", "^Seccomp:", "/proc/self/status"],
    );
    ok("podman run with seccomp=unconfined", &r);
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["Seccomp:", "0"]);
}
