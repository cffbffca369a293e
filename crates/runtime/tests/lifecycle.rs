//! rocker-runtime's runc command line, driven as containerd and Podman drive it, against
//! real containers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rocker_test_support::*;
use serde_json::Value;

const RUNTIME: &str = env!("CARGO_BIN_EXE_rocker-runtime");

/// A state root and a bundle (busybox rootfs + config.json from `rocker-runtime spec`).
struct Fixture {
    cg: TestCgroup,
    root: TempDir,
    bundle: TempDir,
    _rootfs: Rootfs,
}

impl Fixture {
    fn new() -> Fixture {
        let (cg, root, bundle, rootfs) =
            (TestCgroup::new(), TempDir::new("state"), TempDir::new("bundle"), Rootfs::new());
        let r = output(runtime_cmd(root.path(), &["spec", "--bundle", bundle.path().to_str().unwrap()]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let f = Fixture { cg, root, bundle, _rootfs: rootfs };
        f.edit_config(|c| {
            c["root"]["path"] = f._rootfs.path().to_str().unwrap().into();
            c["root"]["readonly"] = false.into();
            c["process"]["terminal"] = false.into();
        });
        f
    }

    fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let path = self.bundle.path().join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// Sets the command and a cgroup below the test's own, for container `id`.
    fn command(&self, id: &str, script: &str) {
        let cgroup = format!("{}/{id}", self.cg.name);
        self.edit_config(|c| {
            c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
            c["linux"]["cgroupsPath"] = cgroup.into();
        });
    }

    /// Runs the runtime to its exit. Its stdout and stderr go to files: a created
    /// container's init inherits them (as with runc), so pipes would stay open.
    fn rt(&self, args: &[&str]) -> Run {
        let mut c = runtime_cmd(self.root.path(), args);
        c.current_dir(self.bundle.path());
        let out = self.bundle.path().join(unique("stdout"));
        let err = self.bundle.path().join(unique("stderr"));
        c.stdout(std::fs::File::create(&out).unwrap()).stderr(std::fs::File::create(&err).unwrap());
        let status = c.status().unwrap();
        let read = |p: &Path| {
            let s = std::fs::read_to_string(p).unwrap();
            std::fs::remove_file(p).unwrap();
            s
        };
        Run { code: status.code().unwrap_or(-1), stdout: read(&out), stderr: read(&err) }
    }

    fn status(&self, id: &str) -> String {
        let r = self.rt(&["state", id]);
        assert_eq!(r.code, 0, "state {id}: {}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    /// What is under the state root: nothing once every container is deleted.
    fn state_left(&self) -> Vec<String> {
        let entries = std::fs::read_dir(self.root.path()).unwrap().flatten();
        entries.map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    }

    fn rootfs_file(&self, name: &str) -> PathBuf {
        self._rootfs.path().join(name)
    }
}

impl Drop for Fixture {
    /// A test that fails half-way must not leave containers running: force-delete whatever
    /// is still under its state root (before the cgroup and temp dirs check themselves).
    fn drop(&mut self) {
        let r = output(runtime_cmd(self.root.path(), &["list", "-q"]));
        for id in r.stdout.lines() {
            let _ = output(runtime_cmd(self.root.path(), &["delete", "--force", id]));
        }
    }
}

fn runtime_cmd(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(RUNTIME);
    c.arg("--root").arg(root).args(args).stdin(Stdio::null());
    c
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "stdout {} stderr {}", r.stdout, r.stderr);
}

/// An executable shell script (a hook) at `path`.
fn write_script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn create_waits_for_start_then_kill_and_delete_clean_up() {
    let f = Fixture::new();
    f.command("c1", "echo started > /started; exec sleep 100");
    ok(&f.rt(&["create", "--pid-file", "pidfile", "c1"]));
    assert_eq!(f.status("c1"), "created");
    let state: Value = serde_json::from_str(&f.rt(&["state", "c1"]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(f.bundle.path().join("pidfile")).unwrap(), pid.to_string());
    assert_eq!(state["bundle"].as_str().unwrap(), f.bundle.path().to_str().unwrap());
    // Created: everything is set up, but no user code has run.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!f.rootfs_file("started").exists());

    ok(&f.rt(&["start", "c1"]));
    wait_for("the container's first write", || f.rootfs_file("started").exists());
    assert_eq!(f.status("c1"), "running");
    let r = f.rt(&["start", "c1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cannot start container c1: it is running"), "{}", r.stderr);

    let r = f.rt(&["ps", "--format", "json", "c1"]);
    ok(&r);
    assert_eq!(serde_json::from_str::<Vec<i64>>(&r.stdout).unwrap(), vec![pid]);

    let r = f.rt(&["delete", "c1"]);
    assert_ne!(r.code, 0, "a running container must not be deleted without --force");
    assert!(r.stderr.contains("it is running"), "{}", r.stderr);

    ok(&f.rt(&["kill", "c1", "KILL"]));
    wait_for("the container to stop", || f.status("c1") == "stopped");
    ok(&f.rt(&["delete", "c1"]));
    let r = f.rt(&["state", "c1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("container c1 does not exist"), "{}", r.stderr);
    assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
}

#[test]
fn run_in_the_foreground_returns_the_exit_code_and_leaves_nothing() {
    let f = Fixture::new();
    f.command("r1", "echo \"a  b\"; exit 7");
    let r = f.rt(&["run", "r1"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(r.stdout, "a  b\n");
    assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
}

#[test]
fn the_container_runs_on_the_cpus_the_runtime_may_use() {
    // The runtime moves itself off its CPU while it sets up the cgroup; the init must keep
    // the affinity it was started with.
    let f = Fixture::new();
    f.command("a1", "grep Cpus_allowed_list /proc/self/status");
    let r = f.rt(&["run", "a1"]);
    ok(&r);
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own = own.lines().find(|l| l.starts_with("Cpus_allowed_list")).unwrap();
    assert_eq!(r.stdout.trim(), own);
}

#[test]
fn an_init_that_fails_while_its_cgroup_is_made_reports_its_own_error() {
    // Without a cgroup mount the init joins late, so it may fail (here: a bind mount of a
    // missing source) before the runtime has sent it the cgroup; the error must be the
    // init's, not the runtime's broken pipe. A race: tried twenty times.
    let f = Fixture::new();
    f.command("fail", "true");
    f.edit_config(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["type"] != "cgroup");
        mounts.push(serde_json::json!({"destination": "/mnt", "type": "bind",
            "source": "/nonexistent-rocker-test-source", "options": ["rbind"]}));
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
    });
    for _ in 0..20 {
        let r = f.rt(&["run", "fail"]);
        assert!(r.code != 0 && r.stderr.contains("nonexistent-rocker-test-source"), "{}", r.stderr);
    }
    assert!(f.cg.children().is_empty());
    assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
}

#[test]
fn a_new_network_namespace_has_lo_up_and_sysfs_shows_its_devices() {
    let f = Fixture::new();
    f.command("net", "ls /sys/class/net; ip -o link show lo; readlink /proc/self/ns/net");
    let r = f.rt(&["run", "net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "lo", "sysfs shows the container's namespace, with only lo: {}", r.stdout);
    assert!(lines[1].contains(",UP"), "lo is up: {}", r.stdout);
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(lines[2], host.to_str().unwrap(), "a namespace of its own");
}

#[test]
fn run_detached_then_force_delete() {
    let f = Fixture::new();
    f.command("d1", "exec sleep 100");
    ok(&f.rt(&["run", "--detach", "d1"]));
    assert_eq!(f.status("d1"), "running");
    ok(&f.rt(&["delete", "--force", "d1"]));
    assert!(f.rt(&["state", "d1"]).code != 0);
}

#[test]
fn start_waits_for_the_init_and_fails_when_it_dies_meanwhile() {
    let f = Fixture::new();
    f.command("w1", "exec sleep 100");
    ok(&f.rt(&["create", "w1"]));
    let state: Value = serde_json::from_str(&f.rt(&["state", "w1"]).stdout).unwrap();
    // The init this test created: stopped, it cannot take start's go-ahead.
    let init = state["pid"].as_i64().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(init, libc::SIGSTOP) }, 0);
    let mut start = runtime_cmd(f.root.path(), &["start", "w1"]).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(start.try_wait().unwrap().is_none(), "start returned before the init took its go-ahead");
    assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
    let out = start.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("it is stopped"), "{stderr}");
    ok(&f.rt(&["delete", "w1"]));
}

#[test]
fn a_created_container_can_be_deleted_without_force() {
    let f = Fixture::new();
    f.command("c2", "exec sleep 100");
    ok(&f.rt(&["create", "c2"]));
    ok(&f.rt(&["delete", "c2"]));
    assert!(f.rt(&["state", "c2"]).code != 0);
}

#[test]
fn pause_and_resume_freeze_the_container() {
    let f = Fixture::new();
    f.command("p1", "exec sleep 100");
    ok(&f.rt(&["run", "-d", "p1"]));
    ok(&f.rt(&["pause", "p1"]));
    assert_eq!(f.status("p1"), "paused");
    let r = f.rt(&["pause", "p1"]);
    assert!(r.code != 0 && r.stderr.contains("it is paused"), "{}", r.stderr);
    ok(&f.rt(&["resume", "p1"]));
    assert_eq!(f.status("p1"), "running");
    // A paused container can be killed and deleted too.
    ok(&f.rt(&["pause", "p1"]));
    ok(&f.rt(&["delete", "--force", "p1"]));
}

#[test]
fn kill_all_reaches_every_process() {
    let f = Fixture::new();
    f.command("k1", "trap '' TERM; sleep 100 & sleep 100 & echo ready > /ready; wait");
    ok(&f.rt(&["run", "-d", "k1"]));
    wait_for("the children", || f.rootfs_file("ready").exists());
    let pids: Vec<i64> = serde_json::from_str(&f.rt(&["ps", "-f", "json", "k1"]).stdout).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    ok(&f.rt(&["kill", "--all", "k1", "9"]));
    wait_for("the container to stop", || f.status("k1") == "stopped");
    ok(&f.rt(&["delete", "k1"]));
}

#[test]
fn kill_all_reaches_what_a_stopped_init_left_behind_as_with_runc() {
    // Without a PID namespace of its own (a Kubernetes pod's container), what the init
    // started outlives it; containerd's shim then kills it with `kill --all`.
    let f = Fixture::new();
    f.command("k2", "sleep 100 > /dev/null 2>&1 & echo $! > /left");
    f.edit_config(|c| c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid"));
    ok(&f.rt(&["run", "-d", "k2"]));
    wait_for("the init to stop", || f.status("k2") == "stopped");
    let left = std::fs::read_to_string(f.rootfs_file("left")).unwrap().trim().to_string();
    let alive = || std::fs::read_to_string(format!("/proc/{left}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(alive(), "the init's child outlived it");
    let r = f.rt(&["kill", "k2", "9"]);
    assert!(r.code != 0 && r.stderr.contains("it is stopped"), "{}", r.stderr);
    ok(&f.rt(&["kill", "--all", "k2", "9"]));
    wait_for("what was left to be killed", || !alive());
    ok(&f.rt(&["delete", "k2"]));
}

#[test]
fn a_failing_create_leaves_no_state_and_no_cgroup() {
    let f = Fixture::new();
    f.edit_config(|c| {
        c["process"]["args"] = serde_json::json!(["no-such-command"]);
        c["linux"]["cgroupsPath"] = format!("{}/bad", f.cg.name).into();
    });
    let r = f.rt(&["create", "bad"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("executable file not found"), "{}", r.stderr);
    assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
    assert!(f.cg.children().is_empty());
}

/// The processes whose root directory is `dir` (a container's, after its pivot_root): the
/// same directory, by device and inode (the link of /proc/PID/root reads "/" for them).
fn processes_rooted_at(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(dir).unwrap();
    let same = |m: std::fs::Metadata| (m.dev(), m.ino()) == (want.dev(), want.ino());
    let pids =
        std::fs::read_dir("/proc").unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned());
    pids.filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| std::fs::metadata(format!("/proc/{p}/root")).is_ok_and(same))
        .collect()
}

/// rocker-runtime killed (SIGKILL) at points spread over a whole `create`, then over a
/// foreground `run`, leaves what one `delete --force` removes: no state, no cgroup, no
/// process of the container. Before, a killed create could leave cgroups made before its
/// record (which no command then knew of) and a state directory that `delete` ignored and
/// `create` refused; and the state lock, a `flock`, stayed held through a created init's copy
/// of the descriptor, so that `delete` of a container whose `create` was killed once its
/// init had reported ready waited for ever.
#[test]
fn a_runtime_killed_at_any_point_leaves_what_delete_force_removes() {
    // Fine steps over a little more than a create: the narrowest windows are near its end.
    const STEPS: u32 = 60;
    let f = Fixture::new();
    f.command("k", "exec sleep 100");
    let t = std::time::Instant::now();
    ok(&f.rt(&["create", "k"]));
    let whole = t.elapsed();
    // The check below sees a created container's init.
    assert!(!processes_rooted_at(f._rootfs.path()).is_empty(), "the created container's init is not seen");
    ok(&f.rt(&["delete", "--force", "k"]));
    for cmd in ["create", "run"] {
        for i in 0..STEPS {
            let delay = whole * 5 * i / (4 * STEPS);
            let mut c = runtime_cmd(f.root.path(), &[cmd, "k"]);
            c.current_dir(f.bundle.path()).stdout(Stdio::null()).stderr(Stdio::null());
            let mut runtime = c.spawn().unwrap();
            std::thread::sleep(delay);
            runtime.kill().unwrap();
            runtime.wait().unwrap();
            let when = format!("{cmd} killed after {delay:?} (a whole create: {whole:?})");
            let mut delete = runtime_cmd(f.root.path(), &["delete", "--force", "k"]).spawn().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let status = loop {
                match delete.try_wait().unwrap() {
                    Some(status) => break status,
                    None if std::time::Instant::now() > deadline => {
                        let _ = delete.kill();
                        panic!("{when}: delete --force still waits after 20 s");
                    }
                    None => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            };
            assert!(status.success(), "{when}: delete --force failed ({status})");
            assert_eq!(f.state_left(), Vec::<String>::new(), "{when}: state left");
            assert!(f.cg.children().is_empty(), "{when}: cgroups left: {:?}", f.cg.children());
            // An init that was setting up when its runtime died ends once it finds the
            // runtime gone (or at its parent-death signal).
            wait_for(&format!("{when}: the container's processes to end"), || {
                processes_rooted_at(f._rootfs.path()).is_empty()
            });
        }
    }
}

#[test]
fn two_deletes_racing_are_serialized() {
    let f = Fixture::new();
    f.command("race", "exit 0");
    ok(&f.rt(&["create", "race"]));
    ok(&f.rt(&["start", "race"]));
    wait_for("the container to stop", || f.status("race") == "stopped");
    let spawn = || {
        let mut c = runtime_cmd(f.root.path(), &["delete", "race"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    // (delete leaves no process behind, so pipes are fine here)
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "{codes:?}");
    let loser = if a.status.success() { b } else { a };
    assert!(String::from_utf8_lossy(&loser.stderr).contains("does not exist"));
}

#[test]
fn state_survives_the_runtime_process_and_lists() {
    let f = Fixture::new();
    f.command("l1", "exec sleep 100");
    ok(&f.rt(&["create", "l1"]));
    let r = f.rt(&["list", "--format", "json"]);
    ok(&r);
    let list: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "l1");
    assert_eq!(list[0]["status"], "created");
    let r = f.rt(&["list", "-q"]);
    assert_eq!(r.stdout, "l1\n");
    ok(&f.rt(&["delete", "--force", "l1"]));
}

#[test]
fn spec_features_and_bad_usage() {
    let f = Fixture::new();
    let r = f.rt(&["spec"]);
    assert_ne!(r.code, 0, "spec must not overwrite config.json");
    let r = f.rt(&["features"]);
    ok(&r);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ociVersionMax"], "1.2.0");
    assert!(v["linux"]["namespaces"].as_array().unwrap().contains(&"pid".into()));
    let hooks = v["hooks"].as_array().unwrap();
    assert!(["createContainer", "startContainer"].iter().all(|h| hooks.contains(&(*h).into())), "{hooks:?}");
    let r = f.rt(&["--systemd-cgroup", "list"]);
    assert!(r.code != 0 && r.stderr.contains("--systemd-cgroup is not supported"), "{}", r.stderr);
    let r = f.rt(&["create", "--no-such-flag", "x"]);
    assert_ne!(r.code, 0);
    // Global flags go before the command, as runc takes them.
    let r = f.rt(&["list", "--root", "/elsewhere"]);
    assert!(r.code != 0 && r.stderr.contains("'--root'"), "{}", r.stderr);
    let r = f.rt(&["create", "--help"]);
    assert!(r.code == 0 && r.stdout.contains("--console-socket"), "{}", r.stdout);
    let r = f.rt(&["kill", "nope", "NOTASIGNAL"]);
    assert_ne!(r.code, 0);
    let r = f.rt(&["state", "../escape"]);
    assert!(r.code != 0 && r.stderr.contains("invalid container id"), "{}", r.stderr);
}

#[test]
fn spec_rootless_maps_the_current_user_to_root_in_a_user_namespace() {
    let f = Fixture::new();
    // As runc's: the current user (here an unprivileged one) mapped to root, no network
    // namespace, the host's /sys bound read-only, no gid= for devpts, no cgroup limits.
    let user_bundle = TempDir::new("rootless");
    let status = Command::new("chown").args(["1000:1000"]).arg(user_bundle.path()).status().unwrap();
    assert!(status.success());
    let r = output({
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "1000",
            "--regid",
            "1000",
            "--clear-groups",
            RUNTIME,
            "spec",
            "--rootless",
            "--bundle",
        ])
        .arg(user_bundle.path());
        c
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c: Value =
        serde_json::from_slice(&std::fs::read(user_bundle.path().join("config.json")).unwrap()).unwrap();
    let map = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_eq!((&c["linux"]["uidMappings"], &c["linux"]["gidMappings"]), (&map, &map));
    let namespaces: Vec<&str> =
        c["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert!(namespaces.contains(&"user") && !namespaces.contains(&"network"), "{namespaces:?}");
    assert!(c["linux"].get("resources").is_none(), "{c}");
    let mount =
        |dest: &str| c["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == dest).unwrap();
    assert_eq!((&mount("/sys")["type"], &mount("/sys")["source"]), (&"none".into(), &"/sys".into()));
    let sys_options = mount("/sys")["options"].as_array().unwrap();
    assert!(["rbind", "ro", "nosuid", "noexec", "nodev"].iter().all(|o| sys_options.contains(&(*o).into())));
    assert!(!mount("/dev/pts")["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o.as_str().unwrap().starts_with("gid=")));

    // It runs (here as root, so mapped to root): seen from inside.
    std::fs::remove_file(f.bundle.path().join("config.json")).unwrap();
    ok(&f.rt(&["spec", "--rootless"]));
    f.edit_config(|c| {
        c["root"]["path"] = f.rootfs_file("").to_str().unwrap().into();
        c["process"]["terminal"] = false.into();
    });
    f.command(
        "rootless",
        "cat /proc/self/uid_map; readlink /proc/self/ns/net; touch /sys/x 2>/dev/null || echo sys-read-only",
    );
    let r = f.rt(&["run", "rootless"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["0", "0", "1"]);
    assert_eq!(lines[1], std::fs::read_link("/proc/self/ns/net").unwrap().to_str().unwrap());
    assert_eq!(lines[2], "sys-read-only");
}

#[test]
fn errors_go_to_the_log_file_as_json() {
    let f = Fixture::new();
    let log = f.bundle.path().join("log.json");
    let r = f.rt(&["--log", log.to_str().unwrap(), "--log-format", "json", "start", "missing"]);
    assert_ne!(r.code, 0);
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container missing does not exist");
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_cgroup() {
    let f = Fixture::new();
    f.command("e1", "echo $$ > /init-pid; exec sleep 100");
    ok(&f.rt(&["run", "-d", "e1"]));
    wait_for("the init", || f.rootfs_file("init-pid").exists());
    // Same PID namespace (the init is 1 there), same mount namespace (sees /init-pid),
    // same hostname, same cgroup.
    let r =
        f.rt(&["exec", "e1", "sh", "-c", "cat /init-pid; echo $$; hostname; cat /proc/self/cgroup; exit 5"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1");
    assert_ne!(lines[1], "1");
    assert!(lines[1].parse::<u32>().unwrap() < 100, "pid {} is not from the container's namespace", lines[1]);
    assert_eq!(lines[2], "rocker");
    let parent = format!("/{}/e1", f.cg.name);
    assert!(lines[3..].iter().any(|l| l.ends_with(&parent)), "{}", r.stdout);

    // Detached, with a pid file; the process shows in ps.
    ok(&f.rt(&["exec", "-d", "--pid-file", "exec.pid", "e1", "sleep", "100"]));
    let pid: i64 = std::fs::read_to_string(f.bundle.path().join("exec.pid")).unwrap().parse().unwrap();
    let pids: Vec<i64> = serde_json::from_str(&f.rt(&["ps", "-f", "json", "e1"]).stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");

    let r = f.rt(&["exec", "e1", "no-such-command"]);
    assert!(r.code != 0 && r.stderr.contains("executable file not found"), "{}", r.stderr);

    // --process, with its own cwd and env.
    let process = serde_json::json!({
        "args": ["/bin/sh", "-c", "pwd; echo $X"], "cwd": "/proc", "env": ["X=from-process-json"],
        "user": {"uid": 0, "gid": 0}
    });
    std::fs::write(f.bundle.path().join("process.json"), process.to_string()).unwrap();
    let r = f.rt(&["exec", "--process", "process.json", "e1"]);
    assert_eq!(r.stdout, "/proc\nfrom-process-json\n", "{}", r.stderr);

    ok(&f.rt(&["kill", "e1", "KILL"]));
    wait_for("the container to stop", || f.status("e1") == "stopped");
    let r = f.rt(&["exec", "e1", "true"]);
    assert!(r.code != 0 && r.stderr.contains("it is stopped"), "{}", r.stderr);
    ok(&f.rt(&["delete", "e1"]));
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused_and_runs_once_resumed() {
    let f = Fixture::new();
    f.command("ip", "exec sleep 100");
    ok(&f.rt(&["run", "-d", "ip"]));
    ok(&f.rt(&["pause", "ip"]));
    let r = f.rt(&["exec", "ip", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{}",
        r.stderr
    );
    // The process joins the frozen cgroup: it is frozen with the container until the resume.
    let mut c =
        runtime_cmd(f.root.path(), &["exec", "--ignore-paused", "ip", "sh", "-c", "echo ran; exit 3"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut exec = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let early = exec.try_wait().unwrap();
    ok(&f.rt(&["resume", "ip"]));
    let out = exec.wait_with_output().unwrap();
    assert!(early.is_none(), "the exec ran while the container was paused: {out:?}");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    ok(&f.rt(&["delete", "-f", "ip"]));
}

#[test]
fn rlimits_are_applied_and_a_refused_one_is_named() {
    let f = Fixture::new();
    f.command("rl", "ulimit -n; ulimit -Hn");
    f.edit_config(|c| {
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}])
    });
    let r = f.rt(&["run", "rl"]);
    assert_eq!(r.stdout, "512\n768\n", "{}", r.stderr);
    // Above our own hard limit: needs CAP_SYS_RESOURCE, which root may lack (it does on the
    // development machines); either it works, or the error names the limit.
    let hard = u64::MAX - 1;
    f.edit_config(|c| {
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NPROC", "soft": 1024, "hard": hard}])
    });
    let r = f.rt(&["run", "rl"]);
    if r.code != 0 {
        assert!(r.stderr.contains("RLIMIT_NPROC"), "{}", r.stderr);
    }
}

#[test]
fn a_cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    let f = Fixture::new();
    f.command("cg", "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null; touch /sys/fs/cgroup/x 2>/dev/null || echo read-only");
    f.edit_config(|c| {
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 33});
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
        }));
    });
    // v2: the container's directory itself; v1: one directory per hierarchy.
    let r = f.rt(&["run", "cg"]);
    assert_eq!(r.stdout, "33\nread-only\n", "{}", r.stderr);
}

#[test]
fn hooks_run_with_the_state_on_stdin_and_a_failing_one_fails_create() {
    let f = Fixture::new();
    let dir = f.bundle.path();
    let hook = |name: &str, body: &str| {
        let path = dir.join(name);
        write_script(&path, body);
        serde_json::json!({"path": path, "args": [name, "arg1"], "env": ["HOOK_ENV=yes"], "timeout": 5})
    };
    let out = |name: &str| dir.join(format!("{name}.out"));
    let record =
        |name: &str| format!("cat > {0}; echo >> {0}; echo \"$1 $HOOK_ENV\" >> {0}", out(name).display());
    f.command("h1", "exec sleep 100");
    let (cr, pre, post, stop) = (
        hook("createRuntime", &record("cr")),
        hook("prestart", &record("pre")),
        hook("poststart", &record("post")),
        hook("poststop", &record("stop")),
    );
    // As a CNI plugin would, a createRuntime hook finds the container's network namespace
    // through its pid (made by a helper and joined by the init before the hooks run).
    let netns = hook(
        "netns",
        &format!(
            "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/ns/net > {}",
            out("netns").display()
        ),
    );
    f.edit_config(|c| {
        c["hooks"] = serde_json::json!({"createRuntime": [cr, netns], "prestart": [pre], "poststart": [post], "poststop": [stop]});
    });
    ok(&f.rt(&["create", "h1"]));
    let init: Value = serde_json::from_str(&f.rt(&["state", "h1"]).stdout).unwrap();
    let init_netns = std::fs::read_link(format!("/proc/{}/ns/net", init["pid"])).unwrap();
    assert_eq!(std::fs::read_to_string(out("netns")).unwrap().trim(), init_netns.to_str().unwrap());
    assert_ne!(init_netns, std::fs::read_link("/proc/self/ns/net").unwrap(), "the container's own");
    let text = std::fs::read_to_string(out("cr")).unwrap();
    let (json, tail) = text.split_once('\n').unwrap();
    let state: Value = serde_json::from_str(json).unwrap();
    assert_eq!(state["id"], "h1");
    assert!(state["pid"].as_i64().unwrap() > 0);
    // (argv[0] is not visible to a #! script: the kernel passes the script's path.)
    assert_eq!(tail, "arg1 yes\n");
    assert!(out("pre").exists());
    assert!(!out("post").exists(), "poststart ran before start");
    // The hooks create saw run later, whatever config.json says by then (as runc's).
    f.edit_config(|c| c["hooks"] = serde_json::json!({}));
    ok(&f.rt(&["start", "h1"]));
    assert!(out("post").exists());
    ok(&f.rt(&["delete", "--force", "h1"]));
    assert!(std::fs::read_to_string(out("stop")).unwrap().contains("\"status\":\"stopped\""));

    // A failing createRuntime hook fails create and leaves nothing; so does one that hangs,
    // and what it started is killed with it.
    let child_pid = dir.join("hook-child");
    let hang = format!("sleep 30 & echo $! > {}; wait", child_pid.display());
    for (id, body) in [("h2", "exit 3"), ("h3", hang.as_str())] {
        let mut bad = hook("bad", body);
        bad["timeout"] = 1.into();
        f.command(id, "exec sleep 100");
        f.edit_config(|c| c["hooks"] = serde_json::json!({"createRuntime": [bad]}));
        let r = f.rt(&["create", id]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("createRuntime hook"), "{}", r.stderr);
        assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
    }
    let sleep = std::fs::read_to_string(child_pid).unwrap();
    wait_for("the hook's child to be killed", || {
        std::fs::read_to_string(format!("/proc/{}/stat", sleep.trim())).map_or(true, |s| s.contains(") Z "))
    });
    assert!(f.cg.children().is_empty());
}

#[test]
fn create_container_and_start_container_hooks_run_inside_the_container_in_the_specs_order() {
    let f = Fixture::new();
    let dir = f.bundle.path();
    let rootfs = f.rootfs_file("");
    let order = dir.join("order");
    let log = |name: &str| format!("echo {name} >> {}", order.display());
    // Hooks in the runtime's namespaces, and createContainer, whose path is the host's too.
    let host_hook = |name: &str, body: &str| {
        let path = dir.join(name);
        write_script(&path, body);
        serde_json::json!({"path": path, "timeout": 5})
    };
    // The createContainer hook, between the mounts and pivot_root: it sees the host's root
    // and the container's mounts below the rootfs, and can still write to a root that is to
    // be read-only. (One path per readlink: the cgroup v2 VM has busybox's.)
    let create_container = host_hook(
        "create-container",
        &format!(
            "{{ cat; echo; readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; grep CapEff /proc/self/status; \
             [ -c {root}/dev/null ] && echo dev-mounted; }} > {out}; echo from-hook > {root}/from-hook; {log}",
            root = rootfs.display(),
            out = dir.join("cc.out").display(),
            log = log("createContainer")
        ),
    );
    // startContainer's path is the container's: the script lives in its rootfs.
    write_script(
        &f.rootfs_file("hooks/start"),
        "{ cat; echo; readlink /proc/self/ns/mnt; [ -e /dev/shm/started ] && echo after || echo before; } > /dev/shm/sc.out",
    );
    f.command(
        "hk",
        "cat /from-hook > /dev/shm/seen; grep CapEff /proc/self/status >> /dev/shm/seen; \
         echo > /dev/shm/started; exec sleep 100",
    );
    let (pre, cr, post) = (
        host_hook("prestart", &log("prestart")),
        host_hook("cr", &log("createRuntime")),
        host_hook("post", &log("poststart")),
    );
    f.edit_config(|c| {
        c["root"]["readonly"] = true.into();
        c["hooks"] = serde_json::json!({
            "prestart": [pre], "createRuntime": [cr], "createContainer": [create_container],
            "startContainer": [{"path": "/hooks/start", "timeout": 5}], "poststart": [post]
        });
    });
    ok(&f.rt(&["create", "hk"]));
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "prestart\ncreateRuntime\ncreateContainer\n");
    let state: Value = serde_json::from_str(&f.rt(&["state", "hk"]).stdout).unwrap();
    let init = state["pid"].as_i64().unwrap();
    let init_ns = |kind: &str| std::fs::read_link(format!("/proc/{init}/ns/{kind}")).unwrap();
    let text = std::fs::read_to_string(dir.join("cc.out")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The state as the container sees it: its init is PID 1 there.
    let hook_state: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!((hook_state["id"].as_str(), hook_state["status"].as_str()), (Some("hk"), Some("creating")));
    assert_eq!(hook_state["pid"], 1);
    assert_eq!(lines[1], init_ns("mnt").to_str().unwrap(), "not in the container's mount namespace");
    assert_ne!(lines[1], std::fs::read_link("/proc/self/ns/mnt").unwrap().to_str().unwrap());
    assert_eq!(lines[2], init_ns("pid").to_str().unwrap(), "not in the container's PID namespace");
    // Root with all of the runtime's capabilities, unlike the container's process.
    let own_caps = std::fs::read_to_string("/proc/self/status").unwrap();
    let own_caps = own_caps.lines().find(|l| l.starts_with("CapEff")).unwrap();
    assert_eq!(lines[3], own_caps);
    assert_eq!(lines[4], "dev-mounted");
    let in_container = |name: &str| std::fs::read_to_string(format!("/proc/{init}/root/dev/shm/{name}"));
    assert!(in_container("sc.out").is_err(), "startContainer ran before start");

    ok(&f.rt(&["start", "hk"]));
    // start returns once the process has started: the poststart hook ran after it.
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "prestart\ncreateRuntime\ncreateContainer\npoststart\n"
    );
    wait_for("the container's process", || in_container("started").is_ok());
    let text = in_container("sc.out").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let hook_state: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!((hook_state["status"].as_str(), hook_state["pid"].as_i64()), (Some("created"), Some(1)));
    assert_eq!(lines[1], init_ns("mnt").to_str().unwrap());
    assert_eq!(lines[2], "before", "startContainer ran after the container's process");
    let seen = in_container("seen").unwrap();
    assert!(seen.starts_with("from-hook\n"), "{seen}");
    assert!(!seen.contains(own_caps), "the container's process kept every capability: {seen}");
    ok(&f.rt(&["delete", "--force", "hk"]));
}

#[test]
fn a_failing_create_container_hook_fails_create_and_a_failing_start_container_hook_fails_start() {
    let f = Fixture::new();
    let bad = f.bundle.path().join("bad");
    // A failure and a hang (killed at its timeout) fail create, and leave nothing.
    for (id, body, error) in
        [("cc1", "exit 3", "exited with exit status: 3"), ("cc2", "sleep 30", "timed out after 1s")]
    {
        write_script(&bad, body);
        f.command(id, "exec sleep 100");
        f.edit_config(|c| c["hooks"] = serde_json::json!({"createContainer": [{"path": bad, "timeout": 1}]}));
        let r = f.rt(&["create", id]);
        assert_ne!(r.code, 0);
        let named = format!("createContainer hook {}: {error}", bad.display());
        assert!(r.stderr.contains(&named), "{}", r.stderr);
        assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
        assert!(f.cg.children().is_empty());
    }

    // startContainer: create succeeds, start reports the failure, the process never runs.
    write_script(&f.rootfs_file("hooks/bad"), "exit 4");
    f.command("sc1", "echo > /started; exec sleep 100");
    f.edit_config(|c| c["hooks"] = serde_json::json!({"startContainer": [{"path": "/hooks/bad"}]}));
    ok(&f.rt(&["create", "sc1"]));
    let r = f.rt(&["start", "sc1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("startContainer hook /hooks/bad: exited with exit status: 4"), "{}", r.stderr);
    assert_eq!(f.status("sc1"), "stopped");
    assert!(!f.rootfs_file("started").exists(), "the process ran after its startContainer hook failed");
    ok(&f.rt(&["delete", "sc1"]));
    assert!(f.cg.children().is_empty());
    // So does `run`, which waits for the process itself.
    f.command("sc2", "echo > /started; exec sleep 100");
    let r = f.rt(&["run", "sc2"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("startContainer hook /hooks/bad: exited with exit status: 4"), "{}", r.stderr);
    assert!(!f.rootfs_file("started").exists());
    assert_eq!(f.state_left(), Vec::<String>::new(), "state left behind");
}

#[test]
fn a_seccomp_filter_blocks_what_it_names() {
    let f = Fixture::new();
    f.command("sc", "mkdir /tmp/blocked 2>&1; echo mkdir=$?; uname -s");
    for nnp in [false, true] {
        f.edit_config(|c| {
            c["process"]["noNewPrivileges"] = nnp.into();
            c["linux"]["seccomp"] = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"names": ["not_a_syscall_of_this_kernel"], "action": "SCMP_ACT_ERRNO"}
                ]
            });
        });
        let r = f.rt(&["run", "sc"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("Operation not permitted"), "noNewPrivileges={nnp}: {}", r.stdout);
        assert!(r.stdout.contains("mkdir=1\nLinux\n"), "{}", r.stdout);
    }
    // exec'd processes get the container's filter too.
    f.command("sc2", "exec sleep 100");
    ok(&f.rt(&["run", "-d", "sc2"]));
    let r = f.rt(&["exec", "sc2", "mkdir", "/tmp/x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "sc2"]));
    // A profile that cannot be compiled fails create, before anything runs.
    f.edit_config(|c| c["linux"]["seccomp"]["architectures"] = serde_json::json!(["SCMP_ARCH_NOPE"]));
    let r = f.rt(&["create", "sc3"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
}

#[test]
fn force_deleting_a_container_that_is_gone_succeeds_as_with_runc() {
    let f = Fixture::new();
    ok(&f.rt(&["delete", "--force", "never-existed"]));
    let r = f.rt(&["delete", "never-existed"]);
    assert!(r.code != 0 && r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn ambient_capabilities_outside_inheritable_are_skipped_as_runc_does() {
    let f = Fixture::new();
    f.command("amb", "grep -E '^Cap(Inh|Amb)' /proc/self/status");
    // runc's own default spec lists ambient capabilities but no inheritable set.
    f.edit_config(|c| {
        c["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_KILL", "CAP_AUDIT_WRITE"]);
        c["process"]["capabilities"].as_object_mut().unwrap().remove("inheritable");
    });
    let r = f.rt(&["run", "amb"]);
    assert_eq!(r.stdout, "CapInh:\t0000000000000000\nCapAmb:\t0000000000000000\n", "{}", r.stderr);
    // Inheritable and permitted: raised.
    f.edit_config(|c| c["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]));
    let r = f.rt(&["run", "amb"]);
    assert_eq!(r.stdout, "CapInh:\t0000000000000020\nCapAmb:\t0000000000000020\n", "{}", r.stderr);
}

#[test]
fn the_runtime_binary_cannot_be_reached_from_a_container_cve_2019_5736() {
    let f = Fixture::new();
    // A created container's init is a copy of rocker-runtime, waiting in the container's PID
    // namespace: exactly what CVE-2019-5736 opened through /proc/PID/exe.
    f.command("cve", "exec sleep 100");
    ok(&f.rt(&["create", "cve"]));
    let state: Value = serde_json::from_str(&f.rt(&["state", "cve"]).stdout).unwrap();
    let init = state["pid"].as_i64().unwrap();
    // Root without CAP_SYS_PTRACE, like a container's root (Docker's capabilities lack it).
    let readlink_without_ptrace = |pid: i64| {
        output({
            let mut c = Command::new("setpriv");
            c.args(["--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace", "readlink", "-v"])
                .arg(format!("/proc/{pid}/exe"));
            c
        })
    };
    let r = readlink_without_ptrace(init);
    assert_ne!(r.code, 0, "the init's exe was reachable: {}", r.stdout);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // The same check does reach an ordinary process of the same user whose capabilities are
    // no more than ours (as the init's, dropped to the spec's): it can tell the difference.
    let mut control = Command::new("setpriv")
        .args(["--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace", "sleep", "100"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let r = readlink_without_ptrace(control.id() as i64);
    let _ = control.kill();
    let _ = control.wait();
    assert_eq!(r.code, 0, "{}", r.stderr);
    ok(&f.rt(&["delete", "cve"]));
}

#[test]
fn no_host_descriptor_reaches_the_container_cve_2024_21626() {
    let f = Fixture::new();
    let host_dir = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host_dir);
    // The runtime's caller leaves the host's / open as fd 7.
    let rt_with_fd7 = |args: &[&str]| {
        let mut c = runtime_cmd(f.root.path(), args);
        c.current_dir(f.bundle.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        inherit_fds(&mut c, &[(raw, 7)]);
        output(c)
    };
    f.command("fd", "ls /proc/self/fd");
    let r = rt_with_fd7(&["run", "fd"]);
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"], "{}", r.stderr);
    // A working directory through that descriptor must not put the process on the host.
    f.edit_config(|c| c["process"]["cwd"] = "/proc/self/fd/7".into());
    let r = rt_with_fd7(&["run", "fd2"]);
    assert_ne!(r.code, 0, "the container started in a host directory: {}", r.stdout);
    f.command("fd3", "exec sleep 100");
    f.edit_config(|c| c["process"]["cwd"] = "/".into());
    ok(&f.rt(&["run", "-d", "fd3"]));
    let r = rt_with_fd7(&["exec", "--cwd", "/proc/self/fd/7", "fd3", "ls"]);
    assert_ne!(r.code, 0, "exec started in a host directory: {}", r.stdout);
    assert!(r.stderr.contains("inside the container"), "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "fd3"]));
}

#[test]
fn a_user_starts_in_a_directory_only_root_may_enter_as_with_runc() {
    let f = Fixture::new();
    std::fs::set_permissions(f.rootfs_file("root"), std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    f.command("cwd", "pwd; id -u");
    f.edit_config(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        c["process"]["cwd"] = "/root".into();
    });
    let r = f.rt(&["run", "cwd"]);
    assert_eq!(r.stdout, "/root\n1000\n", "{}", r.stderr);
}

#[test]
fn later_commands_find_the_cgroup_create_made_even_from_another_cgroup() {
    use std::os::unix::process::CommandExt;
    let f = Fixture::new();
    f.command("moved", "exec sleep 100");
    // `create` runs in a cgroup of its own below ours (as podman's conmon does); a relative
    // cgroupsPath is resolved from there, and `delete`, run from our cgroup, must still find it.
    let runner: Vec<PathBuf> = f.cg.dirs().iter().map(|d| d.join("runner")).collect();
    for d in &runner {
        std::fs::create_dir_all(d).unwrap();
        if d.to_string_lossy().contains("cpuset") {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                for dir in [d.parent().unwrap(), d.as_path()] {
                    let parent = std::fs::read_to_string(dir.parent().unwrap().join(file)).unwrap();
                    std::fs::write(dir.join(file), parent.trim()).unwrap();
                }
            }
        }
    }
    let procs: Vec<PathBuf> = runner.iter().map(|d| d.join("cgroup.procs")).collect();
    let mut c = runtime_cmd(f.root.path(), &["create", "moved"]);
    c.current_dir(f.bundle.path());
    // SAFETY: only writes to files between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for p in &procs {
                std::fs::write(p, "0")?;
            }
            Ok(())
        });
    }
    if cgroup_v2() {
        // cgroup v2 forbids what this needs (controllers delegated below a cgroup that holds
        // a process, the runner): the error must say so and leave nothing.
        c.stderr(Stdio::piped());
        let out = c.output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no-internal-processes"), "{out:?}");
        for d in runner.iter().rev() {
            let _ = std::fs::remove_dir(d.join(f.cg.name.as_str()));
            std::fs::remove_dir(d).unwrap();
        }
        return;
    }
    assert!(c.status().unwrap().success());
    let made: Vec<PathBuf> = runner.iter().map(|d| d.join(f.cg.name.as_str()).join("moved")).collect();
    assert!(made.iter().all(|d| d.is_dir()), "create did not resolve below its own cgroup: {made:?}");
    ok(&f.rt(&["delete", "moved"]));
    assert!(made.iter().all(|d| !d.exists()), "delete left {made:?}");
    for d in runner.iter().rev() {
        let _ = std::fs::remove_dir(d.join(f.cg.name.as_str()));
        std::fs::remove_dir(d).unwrap();
    }
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    let f = Fixture::new();
    f.command("up", "exec sleep 100");
    ok(&f.rt(&["run", "-d", "up"]));
    ok(&f.rt(&[
        "update",
        "--memory",
        "50331648",
        "--pids-limit",
        "40",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "up",
    ]));
    let dirs = f.cg.children();
    let read = |file: &str| {
        dirs.iter().find_map(|d| std::fs::read_to_string(d.join(file)).ok()).map(|s| s.trim().to_string())
    };
    assert_eq!(read("pids.max").as_deref(), Some("40"));
    if cgroup_v2() {
        assert_eq!(read("memory.max").as_deref(), Some("50331648"));
        assert_eq!(read("cpu.max").as_deref(), Some("20000 100000"));
    } else {
        assert_eq!(read("memory.limit_in_bytes").as_deref(), Some("50331648"));
        assert_eq!(read("cpu.cfs_quota_us").as_deref(), Some("20000"));
    }
    // The spec's JSON form, from stdin.
    let mut c = runtime_cmd(f.root.path(), &["update", "--resources", "-", "up"]);
    c.stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(br#"{"pids": {"limit": 41}}"#).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(read("pids.max").as_deref(), Some("41"));
    ok(&f.rt(&["delete", "-f", "up"]));
    let r = f.rt(&["update", "--pids-limit", "5", "up"]);
    assert!(r.code != 0 && r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn a_real_time_budget_lets_the_containers_process_take_a_real_time_class() {
    let f = Fixture::new();
    // Field 41 of /proc/self/stat is the policy (1 = SCHED_FIFO).
    f.command("rt", "set -- $(cat /proc/self/stat); echo policy=${41}");
    f.edit_config(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_FIFO", "priority": 10});
        c["linux"]["resources"]["cpu"] =
            serde_json::json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    });
    // This test's own cgroup and its cgroup parent in the cpu hierarchy (v1).
    let cpu = f.cg.dirs().into_iter().find(|d| d.parent().unwrap().join("cpu.shares").exists());
    let rt_file = cpu.as_ref().map(|d| d.parent().unwrap().join("cpu.rt_runtime_us"));
    if cgroup_v2() || !rt_file.as_ref().unwrap().exists() {
        // No real-time group scheduling: refused, never ignored.
        let r = f.rt(&["run", "rt"]);
        assert_ne!(r.code, 0, "{}", r.stdout);
        let why = if cgroup_v2() { "cgroup v2 has no real-time controller" } else { "CONFIG_RT_GROUP_SCHED" };
        assert!(r.stderr.contains("cpu.rt_runtime_us") && r.stderr.contains(why), "{}", r.stderr);
        assert!(f.cg.children().is_empty());
        return;
    }
    let parent = cpu.unwrap();
    // A new cgroup has no real-time budget, so neither has the container's below it.
    let r = f.rt(&["run", "rt"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("cpu.rt_runtime_us") && r.stderr.contains("give the parent a budget"),
        "{}",
        r.stderr
    );
    assert!(f.cg.children().is_empty());
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::write(parent.join("cpu.rt_runtime_us"), "20000")
        .expect("this test's own cgroup has no real-time budget to give");
    let r = f.rt(&["run", "rt"]);
    assert_eq!(r.stdout, "policy=1\n", "{}", r.stderr);
    // Without a budget of its own the process may not take a real-time class.
    f.edit_config(|c| {
        c["linux"]["resources"].as_object_mut().unwrap().remove("cpu");
    });
    let r = f.rt(&["run", "rt"]);
    assert!(r.code != 0 && r.stderr.contains("setting the scheduler"), "{}", r.stderr);

    // The files, and `update`.
    f.command("rt2", "exec sleep 100");
    f.edit_config(|c| {
        c["linux"]["resources"]["cpu"] =
            serde_json::json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000})
    });
    ok(&f.rt(&["run", "-d", "rt2"]));
    let dir = parent.join("rt2");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap().trim().to_string();
    assert_eq!((read("cpu.rt_runtime_us"), read("cpu.rt_period_us")), ("10000".into(), "1000000".into()));
    ok(&f.rt(&["update", "--cpu-rt-period", "500000", "--cpu-rt-runtime", "5000", "rt2"]));
    assert_eq!((read("cpu.rt_runtime_us"), read("cpu.rt_period_us")), ("5000".into(), "500000".into()));
    let r = f.rt(&["update", "--cpu-rt-runtime", "400000", "rt2"]);
    assert!(r.code != 0 && r.stderr.contains("cpu.rt_runtime_us"), "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "rt2"]));
}

#[test]
fn events_report_usage_as_runc_does() {
    let f = Fixture::new();
    f.command("ev", "exec sleep 100");
    f.edit_config(|c| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864}));
    ok(&f.rt(&["run", "-d", "ev"]));
    let r = f.rt(&["events", "--stats", "ev"]);
    ok(&r);
    let e: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], "ev");
    assert_eq!(e["data"]["memory"]["usage"]["limit"], 67108864);
    assert!(e["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["data"]["pids"]["current"], 1);
    // Streaming: a line per interval until the container is gone.
    let mut c = runtime_cmd(f.root.path(), &["events", "--interval", "100ms", "ev"]);
    c.stdout(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    ok(&f.rt(&["delete", "-f", "ev"]));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(lines >= 2, "{lines} events in a second at 100 ms");
}

#[test]
fn preserve_fds_passes_descriptors_on_and_no_others() {
    let f = Fixture::new();
    let shared = f.bundle.path().join("shared");
    std::fs::write(&shared, "through fd 3\n").unwrap();
    let file = std::fs::File::open(&shared).unwrap();
    let other = std::fs::File::open("/").unwrap();
    let (raw3, raw4) = (std::os::fd::AsRawFd::as_raw_fd(&file), std::os::fd::AsRawFd::as_raw_fd(&other));
    f.command("pf", "cat <&3; ls /proc/self/fd");
    let mut c = runtime_cmd(f.root.path(), &["run", "--preserve-fds", "1", "pf"]);
    c.current_dir(f.bundle.path());
    // fd 3 to pass on, fd 4 to hold back.
    inherit_fds(&mut c, &[(raw3, 3), (raw4, 4)]);
    let r = output(c);
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("through fd 3"), "{}", r.stderr);
    // 0-3, and the one ls opened for the directory: not fd 4.
    assert_eq!(lines.flat_map(|l| l.split_whitespace()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4"]);
}

#[test]
fn a_dev_null_that_is_not_the_null_device_is_refused_for_masks_cve_2025_31133() {
    let f = Fixture::new();
    // No tmpfs /dev from the spec: the image's /dev is used, and in it /dev/null points at a
    // file that masking would turn into a writable alias of a kernel knob.
    std::fs::create_dir_all(f.rootfs_file("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", f.rootfs_file("dev/null")).unwrap();
    f.command("mask", "true");
    f.edit_config(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        c["linux"]["maskedPaths"] = serde_json::json!(["/proc/timer_list"]);
    });
    let r = f.rt(&["run", "mask"]);
    assert_ne!(r.code, 0, "masked with a fake /dev/null: {}", r.stdout);
    assert!(r.stderr.contains("not the null device"), "{}", r.stderr);
}

#[test]
fn personality_domainname_and_more_resources() {
    let f = Fixture::new();
    f.command("misc", "uname -m; cat /proc/sys/kernel/domainname");
    f.edit_config(|c| {
        c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
        c["domainname"] = "rocker.test".into();
        c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into();
    });
    let r = f.rt(&["run", "misc"]);
    assert_eq!(r.stdout, "i686\nrocker.test\n", "{}", r.stderr);
    assert!(r.stderr.contains("linux.mountLabel ignored"), "{}", r.stderr);

    // linux.resources.unified: written as given on v2; refused on v1, never ignored.
    f.command("uni", "exec sleep 100");
    f.edit_config(|c| {
        c["linux"].as_object_mut().unwrap().remove("personality");
        c["linux"]["resources"]["unified"] = serde_json::json!({"pids.max": "42"});
    });
    let r = f.rt(&["run", "-d", "uni"]);
    if cgroup_v2() {
        ok(&r);
        let dirs = f.cg.children();
        assert_eq!(std::fs::read_to_string(dirs[0].join("pids.max")).unwrap().trim(), "42");
        ok(&f.rt(&["delete", "-f", "uni"]));
    } else {
        assert!(r.code != 0 && r.stderr.contains("needs cgroup v2"), "{}", r.stderr);
        // v1 only: memory swappiness.
        f.edit_config(|c| {
            c["linux"]["resources"].as_object_mut().unwrap().remove("unified");
            c["linux"]["resources"]["memory"] = serde_json::json!({"swappiness": 7});
        });
        ok(&f.rt(&["run", "-d", "uni"]));
        let swappiness =
            f.cg.children().iter().find_map(|d| std::fs::read_to_string(d.join("memory.swappiness")).ok());
        assert_eq!(swappiness.as_deref().map(str::trim), Some("7"));
        ok(&f.rt(&["delete", "-f", "uni"]));
    }
}

/// Points the spec's namespaces of these kinds (as /proc/PID/ns names them) at `sandbox`'s.
fn join_by_path(config: &mut Value, sandbox: i64, kinds: &[&str]) {
    for n in config["linux"]["namespaces"].as_array_mut().unwrap() {
        let kind = match n["type"].as_str().unwrap() {
            "network" => "net",
            "mount" => "mnt",
            other => other,
        };
        if kinds.contains(&kind) {
            n["path"] = format!("/proc/{sandbox}/ns/{kind}").into();
        }
    }
}

#[test]
fn a_container_joins_another_ones_namespaces_by_path_like_a_pod() {
    let f = Fixture::new();
    f.command("sandbox", "exec sleep 100");
    ok(&f.rt(&["run", "-d", "sandbox"]));
    let state: Value = serde_json::from_str(&f.rt(&["state", "sandbox"]).stdout).unwrap();
    let sandbox = state["pid"].as_i64().unwrap();
    let kinds = ["net", "ipc", "uts", "pid"];
    f.command("member", "for k in net ipc uts pid; do readlink /proc/self/ns/$k; done; echo $$");
    f.edit_config(|c| {
        c.as_object_mut().unwrap().remove("hostname");
        join_by_path(c, sandbox, &kinds);
    });
    let r = f.rt(&["run", "member"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    for (kind, seen) in kinds.iter().zip(&lines) {
        let sandbox_ns = std::fs::read_link(format!("/proc/{sandbox}/ns/{kind}")).unwrap();
        assert_eq!(sandbox_ns.to_str().unwrap(), *seen, "{kind}");
    }
    assert_ne!(lines[4], "1", "the member is not the PID namespace's init");
    ok(&f.rt(&["delete", "-f", "sandbox"]));
}

/// The mount points below `dir` in the mount namespace of `pid`.
fn mounts_below(pid: &str, dir: &str) -> Vec<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    info.lines()
        .map(|l| l.split(' ').nth(4).unwrap().to_string())
        .filter(|m| m == dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

#[test]
fn a_container_joins_a_mount_namespace_by_path_and_removes_only_its_own_mounts() {
    let f = Fixture::new();
    let rootfs = f.rootfs_file("").canonicalize().unwrap().to_str().unwrap().to_string();
    // A mount namespace held by a process of the test's, as a sandbox would hold one, where
    // the rootfs is a mount already (as an image's is): not the container's to remove.
    let holder = Killed(
        Command::new("unshare").args(["-m", "--propagation", "private", "sleep", "100"]).spawn().unwrap(),
    );
    let held = holder.0.id().to_string();
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    wait_for("the holder's namespace", || ns(&held) != ns("self"));
    let status = Command::new("nsenter")
        .args(["-t", &held, "-m", "mount", "--bind", &rootfs, &rootfs])
        .status()
        .unwrap();
    assert!(status.success());
    let before = vec![rootfs.clone()];
    assert_eq!(mounts_below(&held, &rootfs), before);
    f.command("mnt", "echo ready > /ready; exec sleep 100");
    f.edit_config(|c| {
        join_by_path(c, held.parse().unwrap(), &["mnt"]);
        // Docker's default set has it.
        c["process"]["capabilities"]["bounding"].as_array_mut().unwrap().push("CAP_SYS_CHROOT".into());
    });
    let r = f.rt(&["run", "-d", "mnt"]);
    ok(&r);
    // A chroot is all that keeps it in its root there, which CAP_SYS_CHROOT can leave: said.
    assert!(r.stderr.contains("CAP_SYS_CHROOT"), "{}", r.stderr);
    wait_for("the container", || f.rootfs_file("ready").exists());
    let state: Value = serde_json::from_str(&f.rt(&["state", "mnt"]).stdout).unwrap();
    let init = state["pid"].to_string();
    assert_eq!(ns(&init), ns(&held), "the init is in the joined mount namespace");
    // Its mounts are made there, below its root, and never reach the host's namespace.
    let there = mounts_below(&held, &rootfs);
    for m in ["/proc", "/dev", "/sys"] {
        assert!(there.contains(&format!("{rootfs}{m}")), "{rootfs}{m} in the joined namespace: {there:?}");
    }
    assert_eq!(there.iter().filter(|m| **m == rootfs).count(), 2, "its own bind on the holder's: {there:?}");
    assert_eq!(mounts_below("self", &rootfs), Vec::<String>::new());
    // Its root is its rootfs, for exec too; /proc is its own.
    let r = f.rt(&["exec", "mnt", "sh", "-c", "cat /ready; readlink /proc/self/ns/mnt; cat /proc/1/comm"]);
    assert_eq!(r.stdout, format!("ready\n{}\nsleep\n", ns(&held).display()), "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "mnt"]));
    assert_eq!(mounts_below(&held, &rootfs), before, "delete removes its mounts, only its own");
    // In the foreground; when create fails before the init made its mounts (a hostname
    // without a UTS namespace) and half-way (a bind of a missing source): the same.
    f.command("mnt-run", "test -f /ready && test -c /dev/null");
    let r = f.rt(&["run", "mnt-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mounts_below(&held, &rootfs), before);
    let uts = |c: &mut Value| c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "uts");
    f.edit_config(|c| {
        uts(c);
        c["hostname"] = "early".into();
    });
    let r = f.rt(&["create", "mnt-early"]);
    assert!(r.code != 0 && r.stderr.contains("UTS namespace"), "{}", r.stderr);
    assert_eq!(mounts_below(&held, &rootfs), before);
    let missing = f.bundle.path().join("missing");
    f.edit_config(|c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt/x", "type": "bind", "source": missing, "options": ["bind"]}))
    });
    let r = f.rt(&["create", "mnt-fail"]);
    assert!(r.code != 0 && r.stderr.contains("missing"), "{}", r.stderr);
    assert_eq!(mounts_below(&held, &rootfs), before);
    assert!(f.rt(&["state", "mnt-fail"]).code != 0);
    // Someone else's mount stacked on its root: not the container's, so delete leaves it
    // (and its own, under it, with it).
    f.command("mnt-stacked", "exec sleep 100");
    f.edit_config(|c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/mnt/x"));
    ok(&f.rt(&["run", "-d", "mnt-stacked"]));
    let status = Command::new("nsenter")
        .args(["-t", &held, "-m", "mount", "--bind", &rootfs, &rootfs])
        .status()
        .unwrap();
    assert!(status.success());
    ok(&f.rt(&["delete", "-f", "mnt-stacked"]));
    let left = mounts_below(&held, &rootfs);
    assert_eq!(left.iter().filter(|m| **m == rootfs).count(), 3, "the other's bind on top stays: {left:?}");
}

/// A process of the test's own, killed and reaped when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_time_namespace_shifts_the_containers_clocks() {
    let f = Fixture::new();
    f.command("time", "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time");
    f.edit_config(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "time"}));
        c["linux"]["timeOffsets"] = serde_json::json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    let r = f.rt(&["run", "time"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let uptime: u64 = lines[0].parse().unwrap();
    assert!(uptime >= 86_400_000, "uptime {uptime} was not shifted by 1000 days");
    assert_ne!(lines[1], std::fs::read_link("/proc/self/ns/time").unwrap().to_str().unwrap());
}

#[test]
fn scheduler_and_io_priority_are_applied() {
    let f = Fixture::new();
    // Field 19 of /proc/self/stat is the nice value, 41 the policy (3 = SCHED_BATCH).
    f.command("sched", "set -- $(cat /proc/self/stat); echo nice=${19} policy=${41}; ionice -p $$");
    f.edit_config(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let r = f.rt(&["run", "sched"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("nice=7 policy=3\n"), "{}", r.stdout);
    assert!(r.stdout.ends_with("\nidle\n") || r.stdout.contains("\nidle: prio"), "{}", r.stdout);
}

#[test]
fn a_user_namespace_maps_container_root_to_an_unprivileged_host_user() {
    let f = Fixture::new();
    // The rootfs belongs to the mapped range, as an image unpacked for it would.
    let status = Command::new("chown").args(["-R", "100000:100000"]).arg(f.rootfs_file("")).status().unwrap();
    assert!(status.success());
    f.command("userns", "{ id -u; cat /proc/self/uid_map; } > /out; echo ready > /ready; exec sleep 100");
    f.edit_config(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    ok(&f.rt(&["run", "-d", "userns"]));
    wait_for("the container", || f.rootfs_file("ready").exists());
    let text = std::fs::read_to_string(f.rootfs_file("out")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {text}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
    // Seen from the host, the container's root is uid 100000.
    let state: Value = serde_json::from_str(&f.rt(&["state", "userns"]).stdout).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", state["pid"])).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid_line.split_whitespace().nth(1), Some("100000"), "{uid_line}");
    // exec joins the user namespace too.
    let r = f.rt(&["exec", "userns", "id", "-u"]);
    assert_eq!(r.stdout, "0\n", "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "userns"]));
}

#[test]
fn a_member_joins_a_pods_user_namespace_by_path() {
    // As Kubernetes runs a pod with user namespaces: the sandbox makes the user namespace
    // (and network, IPC, UTS); a member joins them by path and has mount and PID of its own.
    let f = Fixture::new();
    let status = Command::new("chown").args(["-R", "100000:100000"]).arg(f.rootfs_file("")).status().unwrap();
    assert!(status.success());
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    f.command("sandbox", "echo ready > /ready; exec sleep 100");
    f.edit_config(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map.clone();
    });
    ok(&f.rt(&["run", "-d", "sandbox"]));
    wait_for("the sandbox", || f.rootfs_file("ready").exists());
    let state: Value = serde_json::from_str(&f.rt(&["state", "sandbox"]).stdout).unwrap();
    let sandbox = state["pid"].as_i64().unwrap();
    let joined = ["user", "net", "ipc", "uts"];
    f.command(
        "member",
        "for k in user net ipc uts mnt pid; do readlink /proc/self/ns/$k; done; id -u; cat /proc/self/uid_map; \
         echo $$; touch /made-by-member",
    );
    f.edit_config(|c| {
        c.as_object_mut().unwrap().remove("hostname");
        join_by_path(c, sandbox, &joined);
    });
    let r = f.rt(&["run", "member"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let ns = |pid: &str, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    for (i, kind) in ["user", "net", "ipc", "uts", "mnt", "pid"].iter().enumerate() {
        let sandbox_ns = ns(&sandbox.to_string(), kind);
        if joined.contains(kind) {
            assert_eq!(sandbox_ns.to_str().unwrap(), lines[i], "{kind}: {}", r.stdout);
        } else {
            assert_ne!(sandbox_ns.to_str().unwrap(), lines[i], "{kind} must be the member's own");
        }
    }
    assert_eq!(lines[6], "0", "root inside: {}", r.stdout);
    assert_eq!(lines[7].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
    assert_eq!(lines[8], "1", "the member is its own PID namespace's init");
    // Its files belong to the mapped range on the host.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(f.rootfs_file("made-by-member")).unwrap().uid(), 100000);
    // A path that is no user namespace fails the first child, which says so; nothing is left.
    f.edit_config(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "user" {
                n["path"] = format!("/proc/{sandbox}/ns/net").into();
            }
        }
    });
    let r = f.rt(&["run", "member3"]);
    assert!(r.code != 0 && r.stderr.contains("joining the user namespace"), "{}", r.stderr);
    let left = f.cg.children();
    assert!(left.iter().all(|d| d.ends_with("sandbox")), "only the sandbox's cgroup: {left:?}");
    // The PID namespace joined as well (a pod sharing its process namespace): the member is
    // one of the sandbox's processes, and the runtime still knows its pid.
    f.command("member2", "echo ready > /ready2; exec sleep 100");
    f.edit_config(|c| join_by_path(c, sandbox, &["user", "pid"]));
    ok(&f.rt(&["run", "-d", "member2"]));
    wait_for("the member", || f.rootfs_file("ready2").exists());
    let state: Value = serde_json::from_str(&f.rt(&["state", "member2"]).stdout).unwrap();
    let member = state["pid"].to_string();
    assert_eq!(ns(&member, "pid"), ns(&sandbox.to_string(), "pid"));
    assert_eq!(ns(&member, "user"), ns(&sandbox.to_string(), "user"));
    let comm = std::fs::read_to_string(format!("/proc/{member}/comm")).unwrap();
    assert_eq!(comm, "sleep\n", "the recorded pid is the member's init");
    let r = f.rt(&["exec", "member2", "sh", "-c", "id -u; cat /proc/1/comm"]);
    assert_eq!(r.stdout, "0\nsleep\n", "{}", r.stderr);
    ok(&f.rt(&["delete", "-f", "member2"]));
    ok(&f.rt(&["delete", "-f", "sandbox"]));
    assert!(f.cg.children().is_empty());
}

#[test]
fn a_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let f = Fixture::new();
    f.command("cgns", "cat /proc/self/cgroup");
    f.edit_config(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "cgroup"}))
    });
    let r = f.rt(&["run", "cgns"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every hierarchy the container was placed in shows its cgroup as the root.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for (line, own_line) in r.stdout.lines().zip(own.lines()) {
        let controllers = line.split(':').nth(1).unwrap();
        let managed = hierarchies().iter().any(|(_, p)| own_line.ends_with(&format!(":{p}")));
        if managed && !controllers.starts_with("name=") && (cgroup_v2() || !controllers.is_empty()) {
            assert!(line.ends_with(":/"), "{line} (all: {})", r.stdout);
        }
    }
}
