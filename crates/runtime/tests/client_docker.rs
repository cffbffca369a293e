//! A real client: Debian's Docker (docker.io 20.10: dockerd and the docker CLI) drives
//! rocker-runtime, registered with `dockerd --add-runtime rocker=WRAPPER` and chosen per
//! container with `docker run --runtime rocker`. Needs `tests/clients/docker/setup.sh` (as
//! root); see `tests/clients/docker/docker.md`.
//!
//! Each test starts a PRIVATE dockerd and a private containerd for it (the one of
//! client_containerd.rs, `clients/containerd.rs`: its own config, root, state and sockets in
//! a temp dir; dockerd gets `--containerd`, so it never uses or starts a system containerd). dockerd has its own
//! --data-root, --exec-root, --pidfile, unix socket and config file (so /etc/docker is not
//! read or written), no iptables, no ip forwarding, no bridge (`--bridge=none`; containers
//! run with `--network none`), overlay2, the cgroupfs driver and a RELATIVE `--cgroup-parent`
//! (the test's `TestCgroup`): docker passes `<parent>/<id>` as the spec's cgroupsPath, which
//! rocker-runtime resolves below its caller's cgroup (the shim's = the test's own). The
//! image is a docker-archive built here from /bin/busybox and `docker load`ed: no registry.
//!
//! rocker-runtime is reached through a wrapper script that logs its argv (and keeps a copy
//! of each bundle's config.json), and every test checks that log for `create`, `start` and
//! `delete` of each of its containers: a fallback to runc cannot pass. The end of each test
//! stops both daemons and checks that nothing is left: containers, shims, shim sockets,
//! mounts under the temp dir, cgroups outside the test's own, paths docker made on the host.
//! A `Drop` guard cleans up after a failure too, without asserting.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clients::containerd::{Daemon, Fixture, Leftovers, Setup};
use clients::{busybox_layer, image_config, rlimit, run_checked, sha256_file, wait_until, Cli, Freezer};
use rocker_test_support::Run;
use serde_json::{json, Value};

mod clients;

/// The name dockerd knows rocker-runtime by (`--add-runtime rocker=WRAPPER`).
const RUNTIME_NAME: &str = "rocker";
const IMAGE: &str = "rocker-busybox:test";
const SETUP: &str = "tests/clients/docker/setup.sh";
/// Where setup.sh unpacks Debian's docker.io (`dpkg-deb -x`), unless ROCKER_DOCKER_DIR says.
const DOCKER_DIR: &str = "/var/cache/rocker-docker";
/// Docker's default paths on the host: none may appear because of these tests.
const GLOBAL_PATHS: &[&str] = &[
    "/var/lib/docker",
    "/etc/docker",
    "/run/docker.sock",
    "/run/docker.pid",
    "/run/containerd/containerd.sock",
];
/// dockerd 20.10 always makes /run/docker/plugins (the v1 plugin socket dir, compiled in);
/// removed at the end when the test made it and it is empty.
const RUN_DIRS: &[&str] = &["/run/docker/plugins", "/run/docker"];
const TIMEOUT: Duration = Duration::from_secs(60);

/// dockerd and the docker CLI of the docker.io package unpacked by setup.sh.
fn docker_binaries() -> (PathBuf, PathBuf) {
    let root = docker_root();
    let (dockerd, docker) = (root.join("usr/sbin/dockerd"), root.join("usr/bin/docker"));
    for b in [&dockerd, &docker] {
        assert!(
            b.is_file(),
            "{} is missing: run {SETUP} as root (it unpacks Debian's docker.io there)",
            b.display()
        );
    }
    (dockerd, docker)
}

/// The unpacked docker.io package (its usr/sbin/dockerd, usr/bin/docker).
fn docker_root() -> PathBuf {
    PathBuf::from(std::env::var("ROCKER_DOCKER_DIR").unwrap_or_else(|_| DOCKER_DIR.into())).join("root")
}

/// A private dockerd on a private containerd, driven by the docker CLI: the shared
/// `Fixture` (the daemons, the wrapper, the cgroup parent, the temp dir, the checks at the
/// end and the cleanup after a failure) and dockerd's own dirs.
type Docker = Fixture<Dockerd>;

struct Dockerd {
    /// `dockerd --exec-root`.
    exec_root: PathBuf,
    /// The cidfiles of `docker run`.
    cids: PathBuf,
}

impl Docker {
    fn start() -> Docker {
        let (dockerd, docker) = docker_binaries();
        let own = |dir: &Path| Dockerd { exec_root: dir.join("exec"), cids: dir.join("cids") };
        let mut d = Fixture::new(
            Setup {
                name: "docker",
                script: SETUP,
                // dockerd's containerd namespace.
                ns: Some("moby"),
                runc_on_path: false,
                host_paths: GLOBAL_PATHS,
                run_dirs: RUN_DIRS,
                names: |s, ids| s.contains("docker") || ids.iter().any(|id| s.contains(&id[..12])),
                leftovers: &[Leftovers {
                    list: &["ps", "--all", "--quiet", "--no-trunc"],
                    remove: &[&["unpause"], &["rm", "--force"]],
                }],
            },
            own,
        );
        let dir = d.dir().to_path_buf();
        fs::create_dir(&d.own.cids).unwrap();

        let sock = dir.join("docker.sock");
        // The config file replaces /etc/docker/daemon.json; the trust key (which dockerd 20.10
        // otherwise keeps in /etc/docker/key.json) has only a config-file spelling.
        let daemon_json = dir.join("daemon.json");
        fs::write(&daemon_json, json!({"deprecated-key-path": dir.join("key.json")}).to_string()).unwrap();
        let mut path = vec![docker_root().join("usr/sbin"), docker_root().join("usr/bin")];
        path.extend(clients::STD_PATH.map(PathBuf::from));
        let mut cmd = Command::new(dockerd);
        cmd.arg("--config-file").arg(&daemon_json);
        cmd.arg("--data-root").arg(dir.join("data"));
        cmd.arg("--exec-root").arg(&d.own.exec_root);
        cmd.arg("--pidfile").arg(dir.join("dockerd.pid"));
        cmd.arg("--host").arg(format!("unix://{}", sock.display()));
        cmd.arg("--containerd").arg(&d.sock);
        cmd.args(["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"]);
        cmd.args(["--bridge=none", "--userland-proxy=false", "--oom-score-adjust=0"]);
        cmd.args(["--storage-driver", "overlay2"]);
        cmd.arg("--add-runtime").arg(format!("{RUNTIME_NAME}={}", d.wrapper.path.display()));
        cmd.args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
        cmd.arg("--cgroup-parent").arg(&d.cg.name);
        cmd.args(["--log-level", "debug"]);
        cmd.env("PATH", std::env::join_paths(&path).unwrap()).env("TMPDIR", &dir);

        // The CLI's own config (~/.docker) stays in the temp dir too.
        let docker = Cli::new(docker, &dir, TIMEOUT)
            .args(["--host".to_string(), format!("unix://{}", sock.display())])
            .env("DOCKER_CONFIG", Some(dir.join("cli")))
            .env("DOCKER_HOST", None::<&str>)
            .env("DOCKER_CONTEXT", None::<&str>);
        d.set_client(docker);
        d.daemons.push(Daemon::spawn("dockerd", cmd, dir.join("dockerd.log"), Duration::from_secs(30)));
        d.wait_for_client("dockerd to serve its socket", 30, &["version", "--format", "{{.Server.Version}}"]);
        let info = d.docker_ok(&["info", "--format", "{{json .}}"]);
        let info: Value = serde_json::from_str(&info.stdout).expect("docker info --format json");
        assert_eq!(
            info["Runtimes"][RUNTIME_NAME]["path"],
            d.wrapper.path.to_str().unwrap(),
            "dockerd does not list the runtime `{RUNTIME_NAME}` as the wrapper: {info:#}"
        );
        assert_eq!(info["CgroupDriver"], "cgroupfs", "{info:#}");
        assert_eq!(info["DockerRootDir"], dir.join("data").to_str().unwrap(), "{info:#}");
        d.load_image();
        d
    }

    // ---- the docker CLI ----------------------------------------------------------------------

    fn docker(&self, args: &[&str]) -> Run {
        self.cli(args)
    }

    fn docker_ok(&self, args: &[&str]) -> Run {
        self.cli_ok(args)
    }

    /// `docker run --runtime rocker --network none --name NAME --cidfile F MODE... IMAGE CMD`;
    /// returns the run and the container's full id (from the cidfile, written at create).
    fn run(&self, name: &str, opts: &[&str], cmd: &[&str]) -> (Run, String) {
        let cidfile = self.own.cids.join(name);
        let mut a: Vec<String> = vec!["run".into(), "--runtime".into(), RUNTIME_NAME.into()];
        a.extend(["--network".into(), "none".into(), "--name".into(), name.into()]);
        a.extend(["--cidfile".into(), cidfile.display().to_string()]);
        a.extend(opts.iter().map(|s| s.to_string()));
        a.push(IMAGE.into());
        a.extend(cmd.iter().map(|s| s.to_string()));
        let r = self.docker(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let id = fs::read_to_string(&cidfile).unwrap_or_default().trim().to_string();
        assert!(
            id.len() == 64,
            "docker run wrote no container id to {}:\nstdout: {}\nstderr: {}\n{}",
            cidfile.display(),
            r.stdout,
            r.stderr,
            self.diag()
        );
        self.ids.borrow_mut().insert(id.clone());
        (r, id)
    }

    /// `docker run --rm`: in the foreground, to the container's end and removal.
    fn run_rm(&self, name: &str, opts: &[&str], cmd: &[&str]) -> (Run, String) {
        let mut o = vec!["--rm"];
        o.extend(opts);
        self.run(name, &o, cmd)
    }

    /// `docker run -d`, checked to be running; returns (full id, the init's host pid).
    fn run_detached(&self, name: &str, cmd: &[&str]) -> (String, i32) {
        let (r, id) = self.run(name, &["-d"], cmd);
        assert_eq!(
            r.code,
            0,
            "docker run -d failed (rocker-runtime `create`/`start`):\nstdout: {}\nstderr: {}\n{}",
            r.stdout,
            r.stderr,
            self.diag()
        );
        assert_eq!(r.stdout.trim(), id, "docker run -d prints the id");
        let state = self.state(name);
        assert_eq!(state["Status"], "running", "{state:#}\n{}", self.diag());
        let pid = state["Pid"].as_i64().unwrap_or(0) as i32;
        assert!(pid > 0, "{state:#}");
        (id, pid)
    }

    /// `docker inspect`'s .State of a container.
    fn state(&self, name: &str) -> Value {
        let r = self.docker_ok(&["inspect", "--format", "{{json .State}}", name]);
        serde_json::from_str(&r.stdout).expect("docker inspect prints JSON")
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.docker_ok(&["inspect", "--format", format, name]).stdout.trim().to_string()
    }

    fn wait_status(&self, name: &str, want: &str) {
        let what = format!("container {name} to be {want}");
        wait_until(&what, 20, || self.state(name)["Status"] == want, || self.diag());
    }

    /// The config.json rocker-runtime got for container `id` (the wrapper's copy).
    fn config(&self, id: &str) -> Value {
        self.wrapper.config(id).unwrap_or_else(|e| panic!("{e}\n{}", self.diag()))
    }

    // ---- the image ---------------------------------------------------------------------------

    /// A docker-archive (`docker save`'s format: manifest.json, the image config, one
    /// uncompressed layer: the busybox rootfs), built here and `docker load`ed.
    fn load_image(&self) {
        let dir = self.dir().join("image");
        fs::create_dir_all(&dir).unwrap();
        let layer = self.dir().join("layer.tar");
        busybox_layer(&layer);
        let layer_digest = sha256_file(&layer);
        fs::create_dir(dir.join(&layer_digest)).unwrap();
        fs::rename(&layer, dir.join(&layer_digest).join("layer.tar")).unwrap();
        let config_path = dir.join("config.json");
        fs::write(&config_path, serde_json::to_vec(&image_config(&layer_digest)).unwrap()).unwrap();
        let config_digest = sha256_file(&config_path);
        fs::rename(&config_path, dir.join(format!("{config_digest}.json"))).unwrap();
        let manifest = json!([{
            "Config": format!("{config_digest}.json"),
            "RepoTags": [IMAGE],
            "Layers": [format!("{layer_digest}/layer.tar")],
        }]);
        fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
        let archive = self.dir().join("image.tar");
        let mut tar = Command::new("tar");
        tar.arg("-C").arg(&dir).arg("-cf").arg(&archive).arg(".");
        run_checked(tar, "tar of the docker-archive");
        let r = self.docker_ok(&["load", "--input", archive.to_str().unwrap()]);
        assert!(r.stdout.contains(&format!("Loaded image: {IMAGE}")), "docker load: {}", r.stdout);
    }
}

// ---- the tests ---------------------------------------------------------------------------------

/// `docker run --rm`: the output, exit code 0, the container removed. The spec docker gave
/// the runtime: a relative cgroupsPath `<--cgroup-parent>/<id>` (passed through as given),
/// Docker's default seccomp profile, and the libnetwork-setkey prestart hook.
#[test]
fn run_rm_echo_hello() {
    let d = Docker::start();
    let (r, id) = d.run_rm("hello", &[], &["echo", "hello"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "hello\n"),
        "docker run --rm (rocker-runtime create/start/delete):\nstderr: {}\n{}",
        r.stderr,
        d.diag()
    );
    let config = d.config(&id);
    assert_eq!(
        config["linux"]["cgroupsPath"],
        format!("{}/{id}", d.cg.name),
        "docker must pass the relative --cgroup-parent through as cgroupsPath <parent>/<id>"
    );
    let seccomp = &config["linux"]["seccomp"];
    assert!(
        seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
            && seccomp["syscalls"].as_array().is_some_and(|s| !s.is_empty()),
        "docker's default seccomp profile (an allow-list) is not in the spec: {seccomp:#}"
    );
    let prestart = &config["hooks"]["prestart"];
    assert!(
        prestart.as_array().is_some_and(|h| h.iter().any(|h| h["args"][0] == "libnetwork-setkey")),
        "docker's libnetwork-setkey prestart hook: {prestart:#}"
    );
    let gone = d.docker(&["inspect", &id]);
    assert_ne!(gone.code, 0, "--rm: the container is still there: {}", gone.stdout);
    d.finish();
}

/// The container's exit code is `docker run`'s; a command that does not exist fails the
/// runtime's `create`, and docker maps the runtime's message ("executable file not found"
/// / "no such file or directory", naming the command) to 127, as with runc.
#[test]
fn run_rm_returns_the_exit_code() {
    let d = Docker::start();
    let (r, _) = d.run_rm("exit3", &[], &["sh", "-c", "exit 3"]);
    assert_eq!(
        r.code,
        3,
        "docker run --rm sh -c 'exit 3':\nstdout: {}\nstderr: {}\n{}",
        r.stdout,
        r.stderr,
        d.diag()
    );
    let (r, id) = d.run_rm("notfound", &[], &["no-such-command"]);
    d.failed_creates.borrow_mut().insert(id);
    assert!(
        r.code == 127 && r.stderr.contains("no-such-command"),
        "a missing command: docker exits 127 when the runtime's `create` fails naming the command and \
         \"executable file not found\" or \"no such file or directory\"; got {}\n\
         stdout: {}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        d.diag()
    );
    eprintln!("docker run of a missing command: exit {}, {}", r.code, r.stderr.trim());
    d.finish();
}

/// `docker run -d`, then `docker exec` (plain and `-t`), `docker top`, `docker stats`,
/// `docker logs`, `docker stop` (SIGTERM, trapped: exit code 7), `docker rm`. Checks where the container, the shim and the daemons are in the
/// cgroup tree, and the network namespace docker's prestart hook recorded.
#[test]
fn detached_exec_stop_rm() {
    let d = Docker::start();
    let script = "trap 'exit 7' TERM; echo started; while :; do sleep 0.1; done";
    let (id, pid) = d.run_detached("det", &["sh", "-c", script]);

    // The init in <own cgroup>/<TestCgroup>/<id> in every hierarchy; the shim (its parent:
    // the shim is a subreaper) in the test's own cgroup; nothing made elsewhere.
    d.assert_placed(&id, pid);

    // --network none: a new network namespace (not the host's), only lo. docker learns it
    // from its prestart hook (libnetwork-setkey gets the state JSON with the init's pid) and
    // bind-mounts it at SandboxKey under the exec root.
    let key = d.inspect("det", "{{.NetworkSettings.SandboxKey}}");
    assert!(Path::new(&key).starts_with(&d.own.exec_root), "SandboxKey {key} outside the exec root");
    let ns = |p: &str| fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    assert!(
        ns(&key).is_some() && ns(&key) == ns(&format!("/proc/{pid}/ns/net")),
        "the sandbox key {key} is not the container's network namespace (prestart hook state?)\n{}",
        d.diag()
    );
    assert_ne!(ns("/proc/self/ns/net"), ns(&format!("/proc/{pid}/ns/net")), "the host's network namespace");

    let r = d.docker(&["exec", "det", "sh", "-c", "echo exec-ok; cat /proc/1/comm; ip -o link; exit 5"]);
    assert!(
        r.code == 5 && r.stdout.starts_with("exec-ok\nsh\n"),
        "docker exec failed (rocker-runtime `exec`): code {}\nstdout: {}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        d.diag()
    );
    let up: Vec<&str> = r.stdout.lines().skip(2).filter(|l| l.contains(",UP")).collect();
    assert!(up.len() == 1 && up[0].contains(": lo: "), "only lo may be up:\n{}", r.stdout);
    d.assert_runtime_called(&id, &["exec"]);

    // exec with a terminal: `exec --console-socket`.
    let r = d.docker(&["exec", "--tty", "det", "tty"]);
    assert!(
        r.code == 0 && r.stdout.starts_with("/dev/pts/"),
        "docker exec -t (rocker-runtime `exec --console-socket`): code {}\nstdout: {:?}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        d.diag()
    );
    // docker top: rocker-runtime `ps --format json`; docker stats: the shim reads the
    // container's cgroups (found from the init's pid) itself.
    let top = d.docker(&["top", "det", "-o", "pid,args"]);
    assert!(
        top.code == 0
            && top.stdout.lines().skip(1).any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "docker top (rocker-runtime `ps --format json`): code {}\nstdout: {}\nstderr: {}\n{}",
        top.code,
        top.stdout,
        top.stderr,
        d.diag()
    );
    assert!(
        d.wrapper.calls().iter().any(|(s, a)| s == "ps" && a.contains(&id)),
        "docker top did not call `ps`"
    );
    let stats = d.docker_ok(&["stats", "--no-stream", "--format", "{{.PIDs}}", "det"]);
    let pids: u64 = stats.stdout.trim().parse().unwrap_or(0);
    assert!(pids >= 1, "docker stats (the container's pids cgroup): {:?}", stats.stdout);

    let logs = d.docker_ok(&["logs", "det"]);
    assert_eq!(logs.stdout, "started\n", "docker logs");

    d.docker_ok(&["stop", "--time", "20", "det"]);
    let state = d.state("det");
    assert_eq!(
        (state["Status"].as_str(), state["ExitCode"].as_i64()),
        (Some("exited"), Some(7)),
        "docker stop: SIGTERM (rocker-runtime `kill ID 15`) must reach the trap: {state:#}\n{}",
        d.diag()
    );
    let calls = d.wrapper.calls();
    assert!(
        calls.iter().any(|(s, a)| s == "kill" && a.ends_with(&[id.clone(), "15".into()])),
        "no `kill {id} 15`: {calls:?}"
    );
    d.docker_ok(&["rm", "det"]);
    d.finish();
}

/// `docker pause` / `docker unpause`: rocker-runtime `pause`/`resume` freeze and thaw the
/// container's freezer cgroup (below the test's cgroup); then `docker rm --force` (SIGKILL).
#[test]
fn pause_and_unpause() {
    let d = Docker::start();
    let (id, _) = d.run_detached("paused", &["sleep", "100"]);
    let freezer = Freezer::of(&d.cg, &id);
    let frozen = || freezer.state();

    let r = d.docker(&["pause", "paused"]);
    assert_eq!(r.code, 0, "docker pause (rocker-runtime `pause`): {}\n{}", r.stderr, d.diag());
    d.wait_status("paused", "paused");
    assert!(matches!(frozen().as_str(), "FROZEN" | "1"), "freezer: {}", frozen());
    let r = d.docker(&["unpause", "paused"]);
    assert_eq!(r.code, 0, "docker unpause (rocker-runtime `resume`): {}\n{}", r.stderr, d.diag());
    d.wait_status("paused", "running");
    assert!(matches!(frozen().as_str(), "THAWED" | "0"), "freezer: {}", frozen());
    d.assert_runtime_called(&id, &["pause", "resume"]);

    d.docker_ok(&["rm", "--force", "paused"]);
    let calls = d.wrapper.calls();
    assert!(calls.iter().any(|(s, a)| s == "kill" && a.ends_with(&[id.clone(), "9".into()])), "{calls:?}");
    d.finish();
}

/// Docker's default seccomp profile (an allow-list, SCMP_ACT_ERRNO by default) is loaded:
/// the container's init is in seccomp filter mode, and unshare(CLONE_NEWUSER), which the
/// profile refuses without CAP_SYS_ADMIN but the kernel allows, fails with EPERM. With
/// `--security-opt seccomp=unconfined` the spec has no filter and the same call succeeds.
#[test]
fn dockers_default_seccomp_profile_is_loaded() {
    let d = Docker::start();
    let script = "grep -E '^Seccomp(_filters)?:' /proc/self/status; \
                  unshare -U true && echo unshare-ok || echo unshare-refused";
    let (r, id) = d.run_rm("seccomp", &[], &["sh", "-c", script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, d.diag());
    assert!(d.config(&id)["linux"]["seccomp"].is_object(), "no linux.seccomp in the spec");
    assert!(
        r.stdout.contains("Seccomp:\t2\n") && r.stdout.contains("unshare-refused"),
        "Docker's default seccomp profile is not in force (rocker-runtime: linux.seccomp):\n\
         stdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.contains("Operation not permitted"), "unshare -U: {}", r.stderr);

    let (r, id) = d.run_rm("unconfined", &["--security-opt", "seccomp=unconfined"], &["sh", "-c", script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, d.diag());
    assert!(d.config(&id)["linux"]["seccomp"].is_null(), "seccomp=unconfined still has linux.seccomp");
    assert!(
        r.stdout.contains("Seccomp:\t0\n") && r.stdout.contains("unshare-ok"),
        "seccomp=unconfined:\nstdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    d.finish();
}

/// Docker passes no rlimits by default (no `--default-ulimit`): the spec has no
/// process.rlimits and the container keeps the shim's limits (the test's own). `--ulimit`
/// becomes process.rlimits, applied by the runtime. (Only limits at or below the current
/// hard limit: raising a hard limit needs CAP_SYS_RESOURCE, which root lacks here.)
#[test]
fn ulimits_default_and_explicit() {
    let d = Docker::start();
    let script = "echo nofile=$(ulimit -n)/$(ulimit -Hn)";
    let (soft, hard) = rlimit(libc::RLIMIT_NOFILE);
    let (r, id) = d.run_rm("ulimit-default", &[], &["sh", "-c", script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, d.diag());
    assert!(d.config(&id)["process"]["rlimits"].is_null(), "docker passed rlimits by default");
    assert_eq!(r.stdout, format!("nofile={soft}/{hard}\n"), "inherited from the shim (the test's limits)");

    let want_hard = hard.min(4096);
    let want_soft = want_hard / 2;
    let ulimit = format!("nofile={want_soft}:{want_hard}");
    let (r, id) = d.run_rm("ulimit-set", &["--ulimit", &ulimit], &["sh", "-c", script]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}\n{}", r.stdout, r.stderr, d.diag());
    let rl = &d.config(&id)["process"]["rlimits"];
    assert_eq!(
        rl,
        &json!([{"type": "RLIMIT_NOFILE", "hard": want_hard, "soft": want_soft}]),
        "process.rlimits"
    );
    assert_eq!(
        r.stdout,
        format!("nofile={want_soft}/{want_hard}\n"),
        "process.rlimits not applied (rocker-runtime: rlimits)"
    );
    d.finish();
}

/// `docker run -t`: the shim passes `--console-socket` to `create` and relays the pty the
/// runtime hands back; the container's stdin/stdout are that terminal.
#[test]
fn run_with_a_terminal() {
    let d = Docker::start();
    let script = "tty; [ -t 1 ] && echo stdout-is-a-tty; exit 4";
    let (r, id) = d.run_rm("tty", &["--tty"], &["sh", "-c", script]);
    assert!(
        r.code == 4 && r.stdout.contains("/dev/pts/0") && r.stdout.contains("stdout-is-a-tty"),
        "docker run -t (rocker-runtime create --console-socket): code {}\nstdout: {:?}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        d.diag()
    );
    let calls = d.wrapper.calls();
    assert!(
        calls.iter().any(|(s, a)| s == "create" && a.contains(&"--console-socket".into()) && a.contains(&id)),
        "create without --console-socket: {calls:?}"
    );
    assert_eq!(d.config(&id)["process"]["terminal"], true);
    d.finish();
}
