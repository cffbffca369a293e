//! A real client: Debian's Docker (docker.io 20.10: dockerd and the docker CLI) drives
//! rocker-runtime, registered with `dockerd --add-runtime rocker=WRAPPER` and chosen per
//! container with `docker run --runtime rocker`. Needs `tests/clients/docker/setup.sh` (as
//! root); see `tests/clients/docker/docker.md`.
//!
//! Each test starts a PRIVATE dockerd and a private containerd for it (containerd as in
//! client_containerd.rs: its own config, root, state and sockets in a temp dir; dockerd gets
//! `--containerd`, so it never uses or starts a system containerd). dockerd has its own
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

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rocker_test_support::*;
use serde_json::{json, Value};

const RUNTIME: &str = env!("CARGO_BIN_EXE_rocker-runtime");
/// The name dockerd knows rocker-runtime by (`--add-runtime rocker=WRAPPER`).
const RUNTIME_NAME: &str = "rocker";
const IMAGE: &str = "rocker-busybox:test";
/// Where setup.sh unpacks Debian's docker.io (`dpkg-deb -x`), unless ROCKER_DOCKER_DIR says.
const DOCKER_DIR: &str = "/var/cache/rocker-docker";
/// containerd 1.6 puts every shim's socket here, whatever its state dir (compiled in).
const SHIM_SOCKETS: &str = "/run/containerd/s";
/// dockerd 20.10 always makes this (the v1 plugin socket dir, compiled in); removed at the
/// end when the test made it and it is empty.
const DOCKER_PLUGINS: &str = "/run/docker/plugins";
/// Docker's default paths on the host: none may appear because of these tests.
const GLOBAL_PATHS: &[&str] = &[
    "/var/lib/docker",
    "/etc/docker",
    "/run/docker.sock",
    "/run/docker.pid",
    "/run/containerd/containerd.sock",
];
const TIMEOUT: Duration = Duration::from_secs(60);

/// The tests compare /sys/fs/cgroup, /proc and /run before and after: one at a time in this
/// process, whatever --test-threads says.
static SERIAL: Mutex<()> = Mutex::new(());

/// The binaries: Debian's containerd package (`dpkg -L containerd`) and the docker.io
/// package unpacked by setup.sh.
struct Binaries {
    containerd: PathBuf,
    shim: PathBuf,
    dockerd: PathBuf,
    docker: PathBuf,
}

fn binaries() -> Binaries {
    let out = Command::new("dpkg").args(["-L", "containerd"]).output();
    let listing = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            panic!("Debian's containerd package is not installed: run tests/clients/docker/setup.sh as root")
        }
    };
    let find = |name: &str| {
        listing
            .lines()
            .map(PathBuf::from)
            .find(|p| p.file_name().is_some_and(|f| f == name) && p.is_file())
            .unwrap_or_else(|| {
                panic!("the containerd package has no {name}: run tests/clients/docker/setup.sh")
            })
    };
    let root = docker_root();
    let (dockerd, docker) = (root.join("usr/sbin/dockerd"), root.join("usr/bin/docker"));
    for b in [&dockerd, &docker] {
        assert!(
            b.is_file(),
            "{} is missing: run tests/clients/docker/setup.sh as root (it unpacks Debian's docker.io there)",
            b.display()
        );
    }
    Binaries { containerd: find("containerd"), shim: find("containerd-shim-runc-v2"), dockerd, docker }
}

/// The unpacked docker.io package (its usr/sbin/dockerd, usr/bin/docker).
fn docker_root() -> PathBuf {
    PathBuf::from(std::env::var("ROCKER_DOCKER_DIR").unwrap_or_else(|_| DOCKER_DIR.into())).join("root")
}

/// A private dockerd + containerd and everything a test made with them. Field order is drop
/// order: the cgroup parent is checked after the daemons stopped, the temp dir removed last.
struct Docker {
    docker_bin: PathBuf,
    sock: PathBuf,
    containerd_sock: PathBuf,
    containerd_state: PathBuf,
    exec_root: PathBuf,
    dockerd_log: PathBuf,
    containerd_log: PathBuf,
    wrapper: PathBuf,
    wrapper_log: PathBuf,
    /// Copies of the bundles' config.json, one per container id (made by the wrapper).
    configs: PathBuf,
    cids: PathBuf,
    dockerd: Option<Child>,
    containerd: Option<Child>,
    /// Full ids of the containers this test made.
    ids: RefCell<BTreeSet<String>>,
    /// Those of them whose `create` was meant to fail (no `start` expected).
    failed_creates: RefCell<BTreeSet<String>>,
    cgroups_before: BTreeSet<PathBuf>,
    /// [/run/containerd/s, /run/containerd, /run/docker/plugins, /run/docker] as the test
    /// found them (absent: removed at the end when empty).
    run_dirs_before: [bool; 4],
    globals_before: Vec<bool>,
    cg: TestCgroup,
    tmp: TempDir,
    _serial: MutexGuard<'static, ()>,
}

fn run_dirs() -> [&'static Path; 4] {
    let s = Path::new(SHIM_SOCKETS);
    let p = Path::new(DOCKER_PLUGINS);
    [s, s.parent().unwrap(), p, p.parent().unwrap()]
}

impl Docker {
    fn start() -> Docker {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let bins = binaries();
        let tmp = TempDir::new("docker");
        let dir = tmp.path().to_path_buf();
        let (wrapper, wrapper_log, configs) =
            (dir.join("rocker-runtime-wrapper"), dir.join("runtime-calls.log"), dir.join("configs"));
        fs::create_dir(&configs).unwrap();
        // Logs its argv; on `create` keeps a copy of the bundle's config.json (the bundle is
        // removed with the container), named after the container id (the last argument).
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# rocker-runtime as dockerd's runtime `{RUNTIME_NAME}`: logs its argv, keeps config.json\n\
                 printf '%s\\n' \"$*\" >> '{log}'\n\
                 bundle=; prev=; id=\n\
                 for a in \"$@\"; do [ \"$prev\" = --bundle ] && bundle=$a; prev=$a; id=$a; done\n\
                 if [ -n \"$bundle\" ] && [ -f \"$bundle/config.json\" ]; then cp \"$bundle/config.json\" '{configs}'/\"$id.json\"; fi\n\
                 exec '{rt}' \"$@\"\n",
                log = wrapper_log.display(),
                configs = configs.display(),
                rt = RUNTIME
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&wrapper_log, "").unwrap();
        let cids = dir.join("cids");
        fs::create_dir(&cids).unwrap();

        let cgroups_before = cgroup_dirs();
        let run_dirs_before = run_dirs().map(Path::exists);
        let globals_before = GLOBAL_PATHS.iter().map(|p| Path::new(p).exists()).collect();

        // ---- containerd, private ----
        let (containerd_sock, containerd_state) = (dir.join("containerd.sock"), dir.join("containerd-state"));
        let containerd_config = dir.join("containerd.toml");
        let containerd_log = dir.join("containerd.log");
        let toml = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
# No CRI, no snapshotters that cannot work here. (The v1 runtime must stay: the tasks
# service of 1.6 will not load without it.)
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
# The daemon stays in the test's cgroup (no [cgroup] path).
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = dir.join("containerd-root").display(),
            state = containerd_state.display(),
            sock = containerd_sock.display(),
            opt = dir.join("opt").display(),
        );
        fs::write(&containerd_config, toml).unwrap();
        // PATH: the package's shim first, then the usual dirs (the host's runc is there too:
        // a lost BinaryName would fall back to it, and be caught by the wrapper-log checks).
        let std_path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
        let mut path = vec![bins.shim.parent().unwrap().to_path_buf()];
        path.extend(std_path.map(PathBuf::from));
        let log_file = fs::File::create(&containerd_log).unwrap();
        let containerd = Command::new(&bins.containerd)
            .arg("--config")
            .arg(&containerd_config)
            .env("PATH", std::env::join_paths(&path).unwrap())
            // The shim writes exec process specs to its TMPDIR.
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting containerd");

        // ---- dockerd, private ----
        let (sock, exec_root, dockerd_log) =
            (dir.join("docker.sock"), dir.join("exec"), dir.join("dockerd.log"));
        // The config file replaces /etc/docker/daemon.json; the trust key (which dockerd 20.10
        // otherwise keeps in /etc/docker/key.json) has only a config-file spelling.
        let daemon_json = dir.join("daemon.json");
        fs::write(&daemon_json, json!({"deprecated-key-path": dir.join("key.json")}).to_string()).unwrap();
        let mut dpath = vec![docker_root().join("usr/sbin"), docker_root().join("usr/bin")];
        dpath.extend(std_path.map(PathBuf::from));
        let cg = TestCgroup::new();
        let log_file = fs::File::create(&dockerd_log).unwrap();
        let mut cmd = Command::new(&bins.dockerd);
        cmd.arg("--config-file").arg(&daemon_json);
        cmd.arg("--data-root").arg(dir.join("data"));
        cmd.arg("--exec-root").arg(&exec_root);
        cmd.arg("--pidfile").arg(dir.join("dockerd.pid"));
        cmd.arg("--host").arg(format!("unix://{}", sock.display()));
        cmd.arg("--containerd").arg(&containerd_sock);
        cmd.args(["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"]);
        cmd.args(["--bridge=none", "--userland-proxy=false", "--oom-score-adjust=0"]);
        cmd.args(["--storage-driver", "overlay2"]);
        cmd.arg("--add-runtime").arg(format!("{RUNTIME_NAME}={}", wrapper.display()));
        cmd.args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
        cmd.arg("--cgroup-parent").arg(&cg.name);
        cmd.args(["--log-level", "debug"]);
        cmd.env("PATH", std::env::join_paths(&dpath).unwrap())
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);

        let mut d = Docker {
            docker_bin: bins.docker,
            sock,
            containerd_sock,
            containerd_state,
            exec_root,
            dockerd_log,
            containerd_log,
            wrapper,
            wrapper_log,
            configs,
            cids,
            dockerd: None,
            containerd: Some(containerd),
            ids: RefCell::new(BTreeSet::new()),
            failed_creates: RefCell::new(BTreeSet::new()),
            cgroups_before,
            run_dirs_before,
            globals_before,
            cg,
            tmp,
            _serial: serial,
        };
        d.wait_until("containerd to serve its socket", 20, |d| {
            assert!(alive(d.containerd.as_ref()), "containerd exited at start:\n{}", d.diag());
            d.containerd_sock.exists()
        });
        d.dockerd = Some(cmd.spawn().expect("starting dockerd"));
        d.wait_until("dockerd to serve its socket", 30, |d| {
            assert!(alive(d.dockerd.as_ref()), "dockerd exited at start:\n{}", d.diag());
            d.try_docker(&["version", "--format", "{{.Server.Version}}"], Duration::from_secs(5))
                .is_ok_and(|r| r.code == 0)
        });
        let info = d.docker_ok(&["info", "--format", "{{json .}}"]);
        let info: Value = serde_json::from_str(&info.stdout).expect("docker info --format json");
        assert_eq!(
            info["Runtimes"][RUNTIME_NAME]["path"],
            d.wrapper.to_str().unwrap(),
            "dockerd does not list the runtime `{RUNTIME_NAME}` as the wrapper: {info:#}"
        );
        assert_eq!(info["CgroupDriver"], "cgroupfs", "{info:#}");
        assert_eq!(info["DockerRootDir"], d.dir().join("data").to_str().unwrap(), "{info:#}");
        d.load_image();
        d
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    // ---- the docker CLI ----------------------------------------------------------------------

    fn try_docker(&self, args: &[&str], timeout: Duration) -> Result<Run, String> {
        let mut cmd = Command::new(&self.docker_bin);
        cmd.arg("--host").arg(format!("unix://{}", self.sock.display())).args(args);
        // The CLI's own config (~/.docker) stays in the temp dir too.
        cmd.env("DOCKER_CONFIG", self.dir().join("cli"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        run_with_timeout(cmd, self.dir(), timeout)
    }

    fn docker(&self, args: &[&str]) -> Run {
        self.try_docker(args, TIMEOUT)
            .unwrap_or_else(|e| panic!("docker {}: {e}\n{}", args.join(" "), self.diag()))
    }

    fn docker_ok(&self, args: &[&str]) -> Run {
        let r = self.docker(args);
        assert_eq!(
            r.code,
            0,
            "docker {} failed:\nstdout: {}\nstderr: {}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr,
            self.diag()
        );
        r
    }

    /// `docker run --runtime rocker --network none --name NAME --cidfile F MODE... IMAGE CMD`;
    /// returns the run and the container's full id (from the cidfile, written at create).
    fn run(&self, name: &str, opts: &[&str], cmd: &[&str]) -> (Run, String) {
        let cidfile = self.cids.join(name);
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
        self.wait_until(&format!("container {name} to be {want}"), 20, |d| d.state(name)["Status"] == want);
    }

    /// The config.json rocker-runtime got for container `id` (the wrapper's copy).
    fn config(&self, id: &str) -> Value {
        let p = self.configs.join(format!("{id}.json"));
        let text = fs::read_to_string(&p).unwrap_or_else(|e| {
            panic!("no copy of the bundle's config.json ({}): {e}\n{}", p.display(), self.diag())
        });
        serde_json::from_str(&text).expect("config.json is JSON")
    }

    // ---- the image ---------------------------------------------------------------------------

    /// A docker-archive (`docker save`'s format: manifest.json, the image config, one
    /// uncompressed layer: the busybox rootfs), built here and `docker load`ed.
    fn load_image(&self) {
        let dir = self.dir().join("image");
        fs::create_dir_all(&dir).unwrap();
        let rootfs = Rootfs::new();
        let layer = self.dir().join("layer.tar");
        let mut tar = Command::new("tar");
        tar.args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(rootfs.path());
        tar.arg("-cf").arg(&layer).args(["bin", "etc", "tmp", "root"]);
        ok(tar, "tar of the busybox layer");
        let layer_digest = sha256_file(&layer);
        fs::create_dir(dir.join(&layer_digest)).unwrap();
        fs::rename(&layer, dir.join(&layer_digest).join("layer.tar")).unwrap();
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
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        });
        let config_path = dir.join("config.json");
        fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
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
        ok(tar, "tar of the docker-archive");
        let r = self.docker_ok(&["load", "--input", archive.to_str().unwrap()]);
        assert!(r.stdout.contains(&format!("Loaded image: {IMAGE}")), "docker load: {}", r.stdout);
    }

    // ---- what was called, and what was left -------------------------------------------------------

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
                "rocker-runtime was not called for `{sub}` of container {id}; was runc used instead?\n{}",
                self.diag()
            );
        }
    }

    /// Live shims of our containerd (their command line names its socket).
    fn shim_pids(&self) -> Vec<i32> {
        let sock = self.containerd_sock.display().to_string();
        processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim") && cmd.contains(&sock))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// dockerd's containerd namespace is "moby": the shim socket's name is
    /// sha256(address/moby/id).
    fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/moby/{}", self.containerd_sock.display(), id);
        Path::new(SHIM_SOCKETS).join(sha256_hex(key.as_bytes()))
    }

    /// New cgroup directories (anywhere under /sys/fs/cgroup, every hierarchy) that are this
    /// test's doing and outside its cgroup parent: named after docker, moby, containerd, a
    /// shim, one of its containers, or its cgroup parent (a relative path resolved from the
    /// wrong place). With `running`, the containers' own cgroups below the parent are expected.
    fn stray_cgroups(&self, running: bool) -> Vec<PathBuf> {
        let ids = self.ids.borrow();
        let ours = self.cg.dirs();
        cgroup_dirs()
            .difference(&self.cgroups_before)
            .filter(|p| !ours.iter().any(|d| p == &d))
            .filter(|p| !(running && ours.iter().any(|d| p.starts_with(d))))
            .filter(|p| {
                p.components().any(|c| {
                    let s = c.as_os_str().to_string_lossy();
                    s.contains("docker")
                        || s == "moby"
                        || s.contains("containerd")
                        || s.contains("shim")
                        || s == self.cg.name.as_str()
                        || ids.iter().any(|id| s.contains(&id[..12]))
                })
            })
            .cloned()
            .collect()
    }

    /// Stops dockerd (SIGTERM: it stops its containers and unmounts its data root), then
    /// containerd. Returns how each ended.
    fn stop_daemons(&mut self) -> Vec<String> {
        let mut how = Vec::new();
        if let Some(d) = self.dockerd.take() {
            how.push(format!("dockerd: {}", stop(d, Duration::from_secs(30))));
        }
        if let Some(c) = self.containerd.take() {
            how.push(format!("containerd: {}", stop(c, Duration::from_secs(10))));
        }
        how
    }

    /// The checks every test ends with: no container left, the runtime called for each, the
    /// daemons stopped cleanly, then no shim, shim socket, mount under the temp dir, stray
    /// cgroup or host path left. The cgroup parent is checked for leftovers and removed by
    /// `TestCgroup`, the temp dir by `TempDir`.
    fn finish(mut self) {
        let left = self.docker_ok(&["ps", "--all", "--quiet", "--no-trunc"]).stdout;
        assert!(left.trim().is_empty(), "containers left: {left}\n{}", self.diag());
        for id in self.ids.borrow().iter() {
            if self.failed_creates.borrow().contains(id) {
                self.assert_runtime_called(id, &["create", "delete"]);
            } else {
                self.assert_runtime_called(id, &["create", "start", "delete"]);
            }
        }
        // Both daemons still in the test's cgroup.
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        for (what, child) in [("dockerd", &self.dockerd), ("containerd", &self.containerd)] {
            let pid = child.as_ref().map(|c| c.id()).unwrap_or(0);
            assert_eq!(
                fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default(),
                own,
                "{what} moved itself out of the test's cgroup"
            );
        }
        let diag = self.diag();
        let how = self.stop_daemons();
        assert!(how.iter().all(|h| h.ends_with("exited after SIGTERM")), "daemons: {how:?}\n{diag}");
        self.wait_until("the shims to exit", 10, |d| d.shim_pids().is_empty());
        for id in self.ids.borrow().iter() {
            let s = self.shim_socket(id);
            assert!(!s.exists(), "the shim of {id} left its socket {}", s.display());
        }
        let mounts = mounts_under(self.dir());
        assert!(mounts.is_empty(), "mounts left under {}: {mounts:?}\n{diag}", self.dir().display());
        let stray = self.stray_cgroups(false);
        assert!(stray.is_empty(), "cgroups made outside the test's own cgroup, or left: {stray:?}");
        self.remove_run_dirs();
        for (p, before) in GLOBAL_PATHS.iter().zip(&self.globals_before) {
            assert!(*before || !Path::new(p).exists(), "{p} appeared on the host");
        }
        for (p, before) in run_dirs().iter().zip(self.run_dirs_before) {
            assert!(before || !p.exists(), "{} left on the host: {:?}", p.display(), list(p));
        }
    }

    /// /run/containerd/s, /run/containerd, /run/docker/plugins, /run/docker: removed when the
    /// test made them and they are empty (rmdir).
    fn remove_run_dirs(&self) {
        for (dir, existed) in run_dirs().into_iter().zip(self.run_dirs_before) {
            if !existed {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// Everything worth reading when something failed.
    fn diag(&self) -> String {
        let mut s = String::new();
        s += &format!("--- rocker-runtime calls ({}):\n", self.wrapper_log.display());
        s += &fs::read_to_string(&self.wrapper_log).unwrap_or_default();
        for (what, log) in [("dockerd", &self.dockerd_log), ("containerd", &self.containerd_log)] {
            let text = fs::read_to_string(log).unwrap_or_default();
            let notable: Vec<&str> =
                text.lines().filter(|l| l.contains("level=warning") || l.contains("level=error")).collect();
            s += &format!("--- {what} warnings and errors ({}):\n", log.display());
            for l in &notable[notable.len().saturating_sub(25)..] {
                s += l;
                s += "\n";
            }
        }
        let bundles = self.containerd_state.join("io.containerd.runtime.v2.task/moby");
        for e in fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let j = e.path().join("log.json");
            if let Ok(t) = fs::read_to_string(&j) {
                s += &format!("--- {}:\n{t}", j.display());
            }
        }
        s += &format!("--- config.json copies: {}\n", self.configs.display());
        s
    }

    fn wait_until(&self, what: &str, secs: u64, mut cond: impl FnMut(&Docker) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", self.diag());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Docker {
    /// Cleanup that cannot be forgotten, after a failure too; never panics.
    fn drop(&mut self) {
        let short = Duration::from_secs(15);
        // Containers a failed test left: through docker, so the shims unmount the rootfs,
        // remove the container cgroups and exit.
        if alive(self.dockerd.as_ref()) {
            let left = self
                .try_docker(&["ps", "--all", "--quiet"], short)
                .map(|r| r.stdout.lines().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default();
            for id in left {
                let _ = self.try_docker(&["unpause", &id], short);
                let _ = self.try_docker(&["rm", "--force", &id], short);
            }
        }
        self.stop_daemons();
        // Shims and runtime processes still alive (their command lines name our temp dir),
        // and container processes still in our cgroups.
        let dir = self.dir().display().to_string();
        let mut pids: Vec<i32> =
            processes().into_iter().filter(|(_, cmd)| cmd.contains(&dir)).map(|(p, _)| p).collect();
        for d in self.cg.dirs() {
            pids.extend(procs_below(&d));
            // Thaw first: a frozen process does not die.
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
        // Container cgroups a killed shim could not remove: TestCgroup removes them (its
        // direct children) and reports them when the test did not fail already. Cgroups of
        // ours made in the wrong place (reported by `finish`): rmdir, deepest first.
        let mut stray = self.stray_cgroups(false);
        stray.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in stray {
            let _ = fs::remove_dir(p);
        }
        for id in self.ids.borrow().iter() {
            let _ = fs::remove_file(self.shim_socket(id));
        }
        self.remove_run_dirs();
        // Mounts left under the temp dir (the data root's bind mount, overlay rootfs, netns
        // files), deepest first.
        let mut mounts = mounts_under(self.dir());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: umount2 with a NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

// ---- helpers ---------------------------------------------------------------------------------

fn alive(child: Option<&Child>) -> bool {
    child.is_some_and(|c| {
        let pid = c.id() as i32;
        proc_state(pid).is_some_and(|s| s != 'Z')
    })
}

/// SIGTERM by pid, then SIGKILL after `grace`; reaps the child. Says how it ended.
fn stop(mut child: Child, grace: Duration) -> String {
    // SAFETY: kill with our child's pid and a signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return format!("{s}, exited after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let s = child.wait().map(|s| s.to_string()).unwrap_or_default();
    format!("{s}, killed: did not stop within {grace:?} of SIGTERM")
}

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

fn sha256_file(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn list(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
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

fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut l) }, 0);
    (l.rlim_cur, l.rlim_max)
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
    for dir in d.cg.dirs() {
        let procs = fs::read_to_string(dir.join(&id).join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "pid {pid} is not in {}/{id}: {procs:?}",
            dir.display()
        );
    }
    let shim = ppid(pid).unwrap();
    let shim_cmd = fs::read_to_string(format!("/proc/{shim}/cmdline")).unwrap().replace('\0', " ");
    assert!(shim_cmd.contains("containerd-shim-runc-v2"), "the init's parent is not the shim: {shim_cmd}");
    assert_eq!(d.shim_pids(), vec![shim], "one shim for one container");
    assert_eq!(
        fs::read_to_string(format!("/proc/{shim}/cgroup")).unwrap(),
        fs::read_to_string("/proc/self/cgroup").unwrap(),
        "the shim left the test's cgroup"
    );
    let stray = d.stray_cgroups(true);
    assert!(stray.is_empty(), "cgroups made outside the test's cgroup: {stray:?}");

    // --network none: a new network namespace (not the host's), only lo. docker learns it
    // from its prestart hook (libnetwork-setkey gets the state JSON with the init's pid) and
    // bind-mounts it at SandboxKey under the exec root.
    let key = d.inspect("det", "{{.NetworkSettings.SandboxKey}}");
    assert!(Path::new(&key).starts_with(&d.exec_root), "SandboxKey {key} outside the exec root");
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
        d.runtime_calls().iter().any(|(s, a)| s == "ps" && a.contains(&id)),
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
    let calls = d.runtime_calls();
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
    let freezer: Vec<PathBuf> =
        d.cg.dirs()
            .into_iter()
            .map(|dir| dir.join(&id))
            .filter(|dir| dir.join("freezer.state").exists() || dir.join("cgroup.freeze").exists())
            .collect();
    assert_eq!(freezer.len(), 1, "the container has no freezer cgroup below the test's: {:?}", d.cg.dirs());
    let frozen = || {
        let f = &freezer[0];
        fs::read_to_string(f.join("freezer.state"))
            .or_else(|_| fs::read_to_string(f.join("cgroup.freeze")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };

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
    let calls = d.runtime_calls();
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
    let calls = d.runtime_calls();
    assert!(
        calls.iter().any(|(s, a)| s == "create" && a.contains(&"--console-socket".into()) && a.contains(&id)),
        "create without --console-socket: {calls:?}"
    );
    assert_eq!(d.config(&id)["process"]["terminal"], true);
    d.finish();
}
