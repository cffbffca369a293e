//! `rocker run`: what the container sees, checked from inside real containers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn the_command_is_pid_1_and_sees_only_its_own_processes() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "echo $$; ps -o pid= | wc -l");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1");
    // sh, and ps in a subshell, and wc: nothing of the host.
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 3, "{}", r.stdout);
}

#[test]
fn arguments_arrive_intact_and_the_exit_code_comes_back() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = output(rocker_run(&cg, rootfs.path(), &["/bin/sh", "-c", "echo \"a  b\"; exit 3"]));
    assert_eq!(r.stdout, "a  b\n");
    assert_eq!(r.code, 3);
}

#[test]
fn every_namespace_is_new() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let kinds = ["pid", "mnt", "uts", "ipc", "net"];
    let script = kinds.map(|k| format!("readlink /proc/self/ns/{k}")).join(";");
    let r = sh(&cg, rootfs.path(), &[], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (kind, inside) in kinds.iter().zip(r.stdout.lines()) {
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(host.to_str().unwrap(), inside, "{kind} namespace is the host's");
    }
}

#[test]
fn the_network_namespace_holds_only_lo_and_it_is_up() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(
        &cg,
        rootfs.path(),
        &[],
        "ls /sys/class/net; ip -o link show lo; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("lo"));
    assert!(lines.next().unwrap().contains(",UP"), "{}", r.stdout);
    assert_eq!(lines.next(), Some("ping-ok"));
}

#[test]
fn hostname_is_the_short_id_by_default_and_can_be_set() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "hostname; echo $HOSTNAME");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0].len(), 12, "{}", r.stdout);
    assert!(lines[0].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(lines[0], lines[1]);
    assert_ne!(lines[0], nix_hostname());

    let r = sh(&cg, rootfs.path(), &["--hostname", "box"], "hostname; echo $HOSTNAME");
    assert_eq!(r.stdout, "box\nbox\n");
    let r = sh(&cg, rootfs.path(), &["-h", "box2"], "hostname");
    assert_eq!(r.stdout, "box2\n");
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

#[test]
fn environment_is_dockers_plus_the_users() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &["-e", "FOO=bar baz", "--env", "HOME=/home/x"], "env | sort");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let env: Vec<&str> = r.stdout.lines().collect();
    assert!(env.contains(&"FOO=bar baz"), "{env:?}");
    assert!(env.contains(&"HOME=/home/x"), "{env:?}");
    assert!(env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("HOSTNAME=")), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("TERM=")), "no TERM without -t: {env:?}");
}

#[test]
fn workdir_is_created_and_used() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &["-w", "/work/dir"], "pwd");
    assert_eq!(r.stdout, "/work/dir\n", "{}", r.stderr);
    let r = sh(&cg, rootfs.path(), &["-w", "relative"], "pwd");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("absolute path"), "{}", r.stderr);
}

#[test]
fn the_command_is_looked_up_on_path_inside_the_rootfs() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // Only the rootfs has this program, in a PATH directory the host doesn't use.
    let dir = rootfs.path().join("usr/local/bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello-rootfs"), "#!/bin/sh\necho from-rootfs \"$@\"\n").unwrap();
    std::fs::set_permissions(dir.join("hello-rootfs"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let r = output(rocker_run(&cg, rootfs.path(), &["hello-rootfs", "x  y"]));
    assert_eq!(r.stdout, "from-rootfs x  y\n", "{}", r.stderr);
    assert_eq!(r.code, 0);
}

#[test]
fn dev_has_the_standard_nodes_and_nothing_of_the_host() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "ls /dev; echo ---; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; echo ---; stat -c '%t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; ls /dev/pts");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let parts: Vec<&str> = r.stdout.split("---\n").collect();
    let names: Vec<&str> = parts[0].lines().collect();
    for n in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd", "stdin", "stdout",
        "stderr", "ptmx",
    ] {
        assert!(names.contains(&n), "/dev lacks {n}: {names:?}");
    }
    for host_only in ["vda", "sda", "kmsg", "mem", "loop0"] {
        assert!(!names.contains(&host_only), "/dev shows the host's {host_only}");
    }
    assert_eq!(parts[1], "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n");
    assert_eq!(parts[2], "1:3 666\n1:5 666\n1:7 666\n1:8 666\n1:9 666\n5:0 666\nptmx\n");
}

#[test]
fn proc_sys_and_special_mounts_have_the_right_options() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "cat /proc/self/mounts");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let opts = |dest: &str| -> (String, String) {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(dest))
            .unwrap_or_else(|| panic!("{dest} not mounted:\n{}", r.stdout));
        let f: Vec<&str> = line.split(' ').collect();
        (f[2].to_string(), f[3].to_string())
    };
    let (t, o) = opts("/proc");
    assert_eq!(t, "proc");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(o.split(',').any(|x| x == flag), "/proc: {o}");
    }
    let (t, o) = opts("/sys");
    assert_eq!(t, "sysfs");
    assert!(o.starts_with("ro,"), "/sys: {o}");
    assert_eq!(opts("/dev").0, "tmpfs");
    let (t, o) = opts("/dev/pts");
    assert_eq!(t, "devpts");
    assert!(o.contains("ptmxmode=666"), "{o}");
    assert_eq!(opts("/dev/shm").0, "tmpfs");
    assert_eq!(opts("/dev/mqueue").0, "mqueue");
    // No host filesystem other than the rootfs itself is visible.
    let host_root_dev = r.stdout.lines().next().unwrap().split(' ').next().unwrap().to_string();
    let others: Vec<&str> = r
        .stdout
        .lines()
        .skip(1)
        .filter(|l| {
            l.starts_with(&host_root_dev) && !host_root_dev.is_empty() && l.split(' ').nth(2) != Some("proc")
        })
        .collect();
    assert!(others.is_empty(), "host mounts visible: {others:?}");
    // The spec's masked paths are hidden.
    let r = sh(&cg, rootfs.path(), &[], "wc -c < /proc/keys; ls /sys/firmware | wc -l");
    assert_eq!(r.stdout, "0\n0\n", "{}", r.stderr);
}

#[test]
fn nothing_is_left_in_the_rootfs_or_the_host_mount_table() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "ls -a /");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(".pivot_root"), "{}", r.stdout);
    let entries: Vec<String> = std::fs::read_dir(rootfs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!entries.iter().any(|e| e.starts_with('.')), "{entries:?}");
    assert!(mounts_under(rootfs.path()).is_empty());
}

#[test]
fn pivot_root_works_when_the_hosts_root_is_shared() {
    // A private mount namespace whose root is shared stands in for a systemd host.
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "shared", "--"])
        .arg(ROCKER)
        .arg("run")
        .arg("--cgroup-parent")
        .arg(&cg.name)
        .arg("--rootfs")
        .arg(rootfs.path())
        .args(["/bin/sh", "-c", "echo pivoted"]);
    let r = output(c);
    assert_eq!(r.stdout, "pivoted\n", "{}", r.stderr);
    assert_eq!(r.code, 0);
}

#[test]
fn the_rootfs_may_be_relative_to_the_current_directory() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let mut c = Command::new(ROCKER);
    c.current_dir(rootfs.path().parent().unwrap())
        .args(["run", "--cgroup-parent", &cg.name])
        .arg(format!("-rootfs={}", rootfs.path().file_name().unwrap().to_str().unwrap()))
        .args(["/bin/echo", "relative"]);
    let r = output(c);
    assert_eq!(r.stdout, "relative\n", "{}", r.stderr);
}

#[test]
fn without_i_stdin_is_empty_and_with_i_it_is_attached() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let piped = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["/bin/cat"]);
        let mut c = rocker_run(&cg, rootfs.path(), &args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        let written = child.stdin.take().unwrap().write_all(b"through stdin\n");
        // Without -i rocker drops its stdin at once, so the write may meet a closed pipe.
        if flags.contains(&"-i") {
            written.unwrap();
        }
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(piped(&["-i"]), "through stdin\n");
    assert_eq!(piped(&[]), "");
}

#[test]
fn output_can_be_redirected_to_a_file() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let dir = TempDir::new("out");
    let file = std::fs::File::create(dir.path().join("out")).unwrap();
    let mut c = rocker_run(&cg, rootfs.path(), &["/bin/sh", "-c", "echo to-file; echo to-err >&2"]);
    c.stdout(file.try_clone().unwrap()).stderr(file);
    assert!(c.status().unwrap().success());
    assert_eq!(std::fs::read_to_string(dir.path().join("out")).unwrap(), "to-file\nto-err\n");
}

#[test]
fn signals_to_rocker_reach_the_containers_pid_1() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGINT, "INT"), (libc::SIGHUP, "HUP")] {
        let script =
            format!("trap 'echo got {name}; exit 42' {name}; echo ready; while :; do sleep 0.05; done");
        let mut c = rocker_run(&cg, rootfs.path(), &["/bin/sh", "-c", &script]);
        c.stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        // SAFETY: plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got {name}\n"));
        assert_eq!(child.wait().unwrap().code(), Some(42));
    }
}

#[test]
fn with_t_the_container_gets_a_pty_of_its_own_and_the_terminal_is_restored() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let inner = format!(
        "stty cols 101 rows 33; stty -g; {ROCKER} run -it --cgroup-parent {} -rootfs={} /bin/sh; echo rc=$?; stty -g",
        cg.name,
        rootfs.path().display()
    );
    let r = script_session(
        &inner,
        "tty; stty size; echo TERM=$TERM; ls /dev/pts; stat -L -c console=%t:%T /dev/console; stat -L -c console=%t:%T $(tty); exit 7\n",
    );
    let out = r.replace('\r', "");
    assert!(out.contains("\n/dev/pts/0\n"), "{out}");
    assert!(out.contains("\n33 101\n"), "window size not passed: {out}");
    assert!(out.contains("\nTERM=xterm\n"), "{out}");
    assert!(out.contains("rc=7"), "{out}");
    // /dev/console is the container's pty: both stats name the same device.
    let consoles: Vec<&str> = out.lines().filter(|l| l.starts_with("console=")).collect();
    assert_eq!(consoles.len(), 2, "{out}");
    assert_eq!(consoles[0], consoles[1], "{out}");
    // stty -g before and after are the same line: raw mode was undone.
    let settings: Vec<&str> = out.lines().filter(|l| l.matches(':').count() > 10).collect();
    assert_eq!(settings.len(), 2, "{out}");
    assert_eq!(settings[0], settings[1], "terminal settings were not restored");
}

/// Runs `command` under `script`, which gives it a real terminal, feeding `input` as typed.
pub fn script_session(command: &str, input: &str) -> String {
    let mut c = Command::new("script");
    c.args(["-qec", command, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_courses_command_lines_work_as_written() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    for extra in ["", "-cpus=1 "] {
        let inner = format!(
            "{ROCKER} run -it {extra}-rootfs={} --cgroup-parent {} /bin/sh; echo rc=$?",
            rootfs.path().display(),
            cg.name
        );
        let out = script_session(&inner, "echo inside-$((6*7)); exit 0\n").replace('\r', "");
        assert!(out.contains("inside-42"), "{out}");
        assert!(out.contains("rc=0"), "{out}");
    }
}

#[test]
fn a_container_killed_by_signal_n_exits_128_plus_n() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let mut c = rocker_run(&cg, rootfs.path(), &["/bin/sh", "-c", "echo ready; exec sleep 100"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // The container's init is rocker's only child.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let init: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: plain kill(2) of the container's init, which this test started.
    assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("out of memory"));
}

/// rocker running on a pty of the test's own, which stands in for the user's terminal.
struct PtySession {
    master: std::fs::File,
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PtySession {
    fn start(args: &[&std::ffi::OsStr]) -> PtySession {
        use std::io::Read;
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;

        let (master, slave) = {
            let (mut m, mut s) = (0, 0);
            let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
            // SAFETY: openpty writes two new descriptors into m and s; names and termios are unused.
            let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
            assert_eq!(rc, 0);
            // SAFETY: both descriptors are new and owned only here.
            unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
        };
        let mut c = Command::new(ROCKER);
        c.args(args)
            .stdin(std::fs::File::from(slave.try_clone().unwrap()))
            .stdout(std::fs::File::from(slave.try_clone().unwrap()))
            .stderr(std::fs::File::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: rocker gets the pty as
        // its controlling terminal, as a shell would give it.
        unsafe {
            c.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap();
        drop(c);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        PtySession { master, child, seen }
    }

    fn type_in(&mut self, text: &[u8]) {
        use std::io::Write;
        self.master.write_all(text).unwrap();
    }

    /// Types `command` until a line of output equals `want` (for results that travel
    /// asynchronously), failing after 20 s.
    fn expect_line(&mut self, command: &[u8], want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            self.type_in(command);
            std::thread::sleep(std::time::Duration::from_millis(100));
            if self.seen.lock().unwrap().lines().any(|l| l.trim_end_matches('\r') == want) {
                return;
            }
        }
        panic!("never saw {want:?}: {}", self.seen.lock().unwrap());
    }
}

#[test]
fn the_containers_pty_follows_the_callers_window_size() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let args =
        ["run", "-it", "--cgroup-parent", &cg.name, "--rootfs", rootfs.path().to_str().unwrap(), "/bin/sh"];
    let mut s = PtySession::start(&args.map(std::ffi::OsStr::new));
    s.expect_line(b"stty size\n", "24 80");
    let ws = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize through a valid pointer.
    assert_eq!(unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&s.master), libc::TIOCSWINSZ, &ws) }, 0);
    s.expect_line(b"stty size\n", "40 120");
    s.type_in(b"exit 4\n");
    assert_eq!(s.child.wait().unwrap().code(), Some(4));
}

#[test]
fn a_large_paste_reaches_a_container_that_reads_slowly() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // The container's pty in raw mode takes any bytes; it reads nothing for a second, so
    // rocker must hold the input without blocking, then deliver all of it.
    let script = "stty raw -echo; echo ready; sleep 1; head -c 409600 | wc -c; sleep 0.2";
    let args = [
        "run",
        "-it",
        "--cgroup-parent",
        &cg.name,
        "--rootfs",
        rootfs.path().to_str().unwrap(),
        "/bin/sh",
        "-c",
        script,
    ];
    let mut s = PtySession::start(&args.map(std::ffi::OsStr::new));
    while !s.seen.lock().unwrap().contains("ready") {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let paste = vec![b'x'; 409600];
    let writer = {
        let mut m = s.master.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            m.write_all(&paste).unwrap();
        })
    };
    // SIGTERM would not be read by a rocker stuck writing to the container.
    writer.join().unwrap();
    assert_eq!(s.child.wait().unwrap().code(), Some(0));
    let seen = s.seen.lock().unwrap().clone();
    assert!(seen.lines().any(|l| l.trim() == "409600"), "{seen}");
}
