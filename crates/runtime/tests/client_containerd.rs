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
//! containers, shims, shim sockets, mounts, cgroups, /run/containerd if the test made it,
//! and that containerd stops on SIGTERM; a `Drop` guard cleans up after a failure (tasks,
//! the daemon, shims, container processes, mounts) without asserting. The private
//! containerd, the wrapper and those checks are shared with client_docker.rs
//! (`clients/containerd.rs`).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clients::containerd::{Fixture, Setup, CTR_LEFTOVERS};
use clients::{busybox_layer, image_config, run_checked, sha256_file, wait_until, Cli, Freezer};
use rocker_test_support::Run;
use serde_json::{json, Value};

mod clients;

const IMAGE: &str = "docker.io/library/rocker-busybox:test";
const CTR_TIMEOUT: Duration = Duration::from_secs(60);
const SETUP: &str = "tests/clients/setup.sh";

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

/// A private containerd driven by `ctr`: the shared `Fixture` (the daemon, the wrapper, the
/// cgroup parent, the temp dir, the checks at the end and the cleanup after a failure) and
/// what `ctr run` needs.
type Containerd = Fixture<Ctr>;

struct Ctr {
    wiring: Wiring,
    /// `ctr run --runc-root` (ctr's default is /run/containerd/runc).
    runc_root: PathBuf,
    /// `ctr run --fifo-dir` (ctr's default is /run/containerd/fifo).
    fifo: PathBuf,
}

impl Containerd {
    fn start(wiring: Wiring) -> Containerd {
        let own = |dir: &Path| Ctr { wiring, runc_root: dir.join("runc"), fifo: dir.join("fifo") };
        let mut c = Fixture::new(
            Setup {
                name: "containerd",
                script: SETUP,
                ns: None,
                runc_on_path: wiring == Wiring::PathRunc,
                host_paths: &[],
                run_dirs: &[],
                names: |s, ids| ids.contains(s),
                leftovers: CTR_LEFTOVERS,
            },
            own,
        );
        fs::create_dir(&c.own.fifo).unwrap();
        let ctr = [OsStr::new("-a"), c.sock.as_os_str(), OsStr::new("-n"), OsStr::new(&c.ns)];
        let ctr = Cli::new(&c.bins.ctr, c.dir(), CTR_TIMEOUT).args(ctr);
        c.set_client(ctr);
        c.wait_for_client("containerd to answer `ctr version`", 20, &["version"]);
        c.import_image();
        c
    }

    // ---- ctr -----------------------------------------------------------------------------

    /// `ctr ARGS` to its end (panics after CTR_TIMEOUT, with the logs).
    fn ctr(&self, args: &[&str]) -> Run {
        self.cli(args)
    }

    fn ctr_ok(&self, args: &[&str]) -> Run {
        self.cli_ok(args)
    }

    /// `ctr run` arguments for container `id`: IO fifos and runc state in the temp dir,
    /// a relative cgroups path below the test's own cgroup, the network namespace of
    /// containerd's default spec (a new one: no --net-host).
    fn run_args(&self, mode: &str, id: &str, cmd: &[&str]) -> Vec<String> {
        self.ids.borrow_mut().insert(id.to_string());
        let mut a: Vec<String> = vec!["run".into(), mode.into()];
        a.extend(["--fifo-dir".into(), self.own.fifo.display().to_string()]);
        a.extend(["--runc-root".into(), self.own.runc_root.display().to_string()]);
        if self.own.wiring == Wiring::BinaryName {
            a.extend(["--runc-binary".into(), self.wrapper.path.display().to_string()]);
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

    fn wait_until(&self, what: &str, secs: u64, mut cond: impl FnMut(&Containerd) -> bool) {
        wait_until(what, secs, || cond(self), || self.diag());
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
        self.bundles().join(id).join("rootfs")
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
        let layer = self.dir().join("layer.tar");
        busybox_layer(&layer);
        let layer = add_blob(&blobs, &layer, "application/vnd.oci.image.layer.v1.tar");
        let digest = layer["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let config = add_json_blob(&blobs, &image_config(digest), "application/vnd.oci.image.config.v1+json");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        });
        let mut manifest = add_json_blob(&blobs, &manifest, "application/vnd.oci.image.manifest.v1+json");
        manifest["platform"] = json!({"architecture": clients::image_arch(), "os": "linux"});
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
        run_checked(tar, "tar of the image layout");
        self.ctr_ok(&["images", "import", archive.to_str().unwrap()]);
        let names = self.ctr_ok(&["images", "ls", "-q"]).stdout;
        assert!(names.lines().any(|l| l == IMAGE), "image not imported: {names}\n{}", self.diag());
    }
}

// ---- helpers ---------------------------------------------------------------------------------

/// Moves `file` into the blob store under its digest; returns its OCI descriptor.
fn add_blob(blobs: &Path, file: &Path, media_type: &str) -> Value {
    let digest = sha256_file(file);
    let size = fs::metadata(file).unwrap().len();
    fs::rename(file, blobs.join(&digest)).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": size})
}

fn add_json_blob(blobs: &Path, value: &Value, media_type: &str) -> Value {
    let tmp = blobs.join("new.json");
    fs::write(&tmp, serde_json::to_vec(value).unwrap()).unwrap();
    add_blob(blobs, &tmp, media_type)
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
    assert_eq!(opts.binary_name, c.wrapper.path.to_str().unwrap(), "BinaryName: {opts:?}");
    assert_eq!(opts.root, c.own.runc_root.to_str().unwrap(), "Root: {opts:?}");
    assert_eq!(opts.shim_cgroup, "", "ShimCgroup must stay empty (the shim stays in the test's cgroup)");

    // The container in <test cgroup>/<TestCgroup>/k1 in every hierarchy; the shim (its
    // parent: the shim is a subreaper) in the test's own cgroup (containerd's: at the end).
    c.assert_placed("k1", pid);

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

    let calls = c.wrapper.calls();
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
    let freezer = Freezer::of(&c.cg, "p1");
    let frozen = || freezer.state();

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
    let fifo = c.own.fifo.display().to_string();
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
        c.wrapper.calls().iter().any(|(s, a)| s == "delete" && a.contains(&"--force".into()))
    });
    c.wait_until("the shims to exit", 10, |c| c.shim_pids().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let log = fs::read_to_string(&c.daemons[0].log).unwrap_or_default();
    let warning =
        log.lines().find(|l| l.contains("failed to remove runc container") && l.contains("rocker-runtime:"));
    assert!(
        warning.is_none(),
        "`delete --force` of a container that is gone failed:\n{}",
        warning.unwrap_or("")
    );
    c.finish();
}
