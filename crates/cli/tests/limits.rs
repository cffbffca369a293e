//! Cgroup limits, checked from inside real containers. The same tests run on cgroup v1 (this
//! host) and, through tests/vm, on a pure cgroup v2 kernel.

mod common;

use std::sync::Mutex;

use common::*;

/// The CPU measurement needs the machine's cores to itself, so limit tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn half_a_cpu_gets_about_half_a_cpu() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // A busy loop for 3 s of wall time; its CPU ticks (USER_HZ = 100) over 300 is its share.
    let script = "(while :; do :; done) & p=$!; sleep 3; set -- $(cat /proc/$p/stat); echo $(( ${14} + ${15} )); kill $p";
    let r = sh(&cg, rootfs.path(), &["--cpus", "0.5"], script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let share = r.stdout.trim().parse::<f64>().unwrap() / 300.0;
    assert!((0.35..=0.6).contains(&share), "busy loop under --cpus 0.5 got {share:.2} of a CPU");
}

#[test]
fn a_process_above_the_memory_limit_is_oom_killed_and_reported() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // PID 1 itself holds 100 MiB in a shell variable.
    let r = sh(
        &cg,
        rootfs.path(),
        &["-m", "32m"],
        "x=$(head -c 104857600 /dev/zero | tr '\\0' a); echo survived ${#x}",
    );
    assert_eq!(r.code, 137, "stdout {} stderr {}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("survived"));
    assert!(r.stderr.contains("ran out of memory") && r.stderr.contains("32 MiB"), "{}", r.stderr);

    // Below the limit nothing happens.
    let r = sh(
        &cg,
        rootfs.path(),
        &["-m", "64"],
        "x=$(head -c 8388608 /dev/zero | tr '\\0' a); echo survived ${#x}",
    );
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "survived 8388608\n", ""));
}

#[test]
fn the_pids_limit_stops_a_fork_loop() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // The loop runs in a child shell, which dies when fork fails; PID 1 then counts the
    // processes with a glob, since a new process for ls could not start either.
    let script =
        "sh -c 'while :; do sleep 30 & done' 2>/dev/null; echo loop-exit=$?; set -- /proc/[0-9]*; echo $#";
    let r = sh(&cg, rootfs.path(), &["--pids-limit", "10"], script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_ne!(lines[0], "loop-exit=0", "the fork loop was never stopped");
    let tasks: u32 = lines[1].parse().unwrap();
    assert!((2..=10).contains(&tasks), "{tasks} processes under --pids-limit 10");
}

#[test]
fn the_container_is_in_its_cgroup_before_its_first_instruction() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // cat is PID 1 and its very first act is to read its own cgroup membership.
    let r = output(rocker_run(&cg, rootfs.path(), &["/bin/cat", "/proc/self/cgroup"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut checked = 0;
    for (line, own_line) in r.stdout.lines().zip(own.lines()) {
        let (ctrl, path) = line.split_once(':').unwrap().1.split_once(':').unwrap();
        let own_path = own_line.splitn(3, ':').nth(2).unwrap();
        let managed = hierarchies().iter().any(|(_, p)| p == own_path) && !ctrl.starts_with("name=");
        if managed && (cgroup_v2() || !ctrl.is_empty()) {
            let parent = format!("{}/{}/", own_path.trim_end_matches('/'), cg.name);
            assert!(path.starts_with(&parent), "{ctrl}: {path} is not below {parent}");
            checked += 1;
        }
    }
    assert!(checked > 0, "{}", r.stdout);
}

#[test]
fn cpu_shares_and_cpuset_reach_the_cgroup() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let flags = ["--cpu-shares", "512", "--cpuset-cpus", "0"];
    let w = Waiting::start(&cg, rootfs.path(), &flags, "grep Cpus_allowed_list /proc/self/status", 0);
    assert_eq!(w.lines[0].split_whitespace().collect::<Vec<_>>(), ["Cpus_allowed_list:", "0"]);
    let dirs = cg.children();
    let read = |file: &str| container_cgroup_file(&cg, file);
    if cgroup_v2() {
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        // runc's conversion of 512 shares.
        assert_eq!(read("cpu.weight").as_deref(), Some("20"));
    } else {
        assert_eq!(dirs.len(), hierarchies().len(), "one cgroup per hierarchy: {dirs:?}");
        assert_eq!(read("cpu.shares").as_deref(), Some("512"));
    }
    assert_eq!(read("cpuset.cpus").as_deref(), Some("0"));
    assert_eq!(w.finish(), Some(0));
    assert!(cg.children().is_empty(), "cgroups left after exit: {:?}", cg.children());
}

#[test]
fn limits_are_written_where_the_container_runs() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let w = Waiting::start(&cg, rootfs.path(), &["--cpus", "1.5", "-m", "48m", "--pids-limit", "77"], ":", 0);
    let read = |file: &str| container_cgroup_file(&cg, file);
    if cgroup_v2() {
        assert_eq!(read("cpu.max").as_deref(), Some("150000 100000"));
        assert_eq!(read("memory.max").as_deref(), Some("50331648"));
    } else {
        assert_eq!(read("cpu.cfs_quota_us").as_deref(), Some("150000"));
        assert_eq!(read("cpu.cfs_period_us").as_deref(), Some("100000"));
        assert_eq!(read("memory.limit_in_bytes").as_deref(), Some("50331648"));
    }
    assert_eq!(read("pids.max").as_deref(), Some("77"));
    assert_eq!(w.finish(), Some(0));
}

#[test]
fn cgroups_made_inside_the_containers_cgroup_are_removed_with_it() {
    let _turn = serial();
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let w = Waiting::start(&cg, rootfs.path(), &[], ":", 7);
    // What a container with delegated cgroups (systemd inside, say) would do.
    for dir in cg.children() {
        std::fs::create_dir(dir.join("nested")).unwrap();
    }
    assert_eq!(w.finish(), Some(7), "the container's exit code must survive cleanup");
    assert!(cg.children().is_empty(), "left behind: {:?}", cg.children());
}
