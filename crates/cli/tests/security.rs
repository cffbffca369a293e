//! What a container may not do to its host, checked from inside real containers.

mod common;

use common::*;

#[test]
fn the_container_has_dockers_capabilities_and_no_more() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(&cg, rootfs.path(), &[], "grep ^Cap /proc/self/status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Docker's default set: chown, dac_override, fowner, fsetid, kill, setgid, setuid,
    // setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap.
    assert_eq!(
        r.stdout,
        "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
         CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n"
    );
}

#[test]
fn the_container_cannot_mount_or_make_sys_writable() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(
        &cg,
        rootfs.path(),
        &[],
        "mkdir /tmp/m; mount -t tmpfs x /tmp/m 2>/dev/null && echo mounted; \
         mount -o remount,rw /sys 2>/dev/null && echo sys-rw; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-rw; \
         touch /sys/rocker-x 2>/dev/null && echo sys-written; echo done",
    );
    assert_eq!(r.stdout, "done\n", "{}", r.stderr);
}

#[test]
fn host_devices_cannot_be_opened_even_when_created() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // /dev/kmsg (1:11) is the host's kernel log. CAP_MKNOD allows the node, as in Docker;
    // the device allow-list (v1 devices cgroup, v2 eBPF program) refuses to open it.
    let r = sh(
        &cg,
        rootfs.path(),
        &[],
        "mknod /dev/k c 1 11 && echo made; head -c1 /dev/k >/dev/null && echo read",
    );
    assert_eq!(r.stdout, "made\n", "{}", r.stderr);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
}

#[test]
fn descriptors_rocker_inherits_do_not_reach_the_container() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let host_dir = std::fs::File::open("/").unwrap();
    let mut c = rocker_run(&cg, rootfs.path(), &["/bin/ls", "/proc/self/fd"]);
    // rocker starts with the host's / open as fd 7, as a careless caller might leave it
    // (CVE-2024-21626).
    inherit_fds(&mut c, &[(std::os::fd::AsRawFd::as_raw_fd(&host_dir), 7)]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // 0-2 and the descriptor ls opened for the directory it lists.
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"], "{}", r.stdout);
}

#[test]
fn the_default_seccomp_profile_refuses_new_namespaces_unless_unconfined() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    // A user namespace needs no capability, so only seccomp stops it.
    let script = "unshare -U true 2>&1; echo rc=$?";
    let r = sh(&cg, rootfs.path(), &[], script);
    assert!(r.stdout.contains("Operation not permitted") && r.stdout.ends_with("rc=1\n"), "{}", r.stdout);
    let r = sh(&cg, rootfs.path(), &["--security-opt", "seccomp=unconfined"], script);
    assert_eq!(r.stdout, "rc=0\n", "{}", r.stderr);
    let r = sh(&cg, rootfs.path(), &["--security-opt", "label=disable"], "true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("not supported"), "{}", r.stderr);
}

#[test]
fn capabilities_can_be_dropped_and_added() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let eff = |flags: &[&str]| {
        let r = sh(&cg, rootfs.path(), flags, "grep ^CapEff /proc/self/status");
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(eff(&["--cap-drop", "ALL"]), "0000000000000000");
    // NET_ADMIN is bit 12: Docker's a80425fb plus 0x1000.
    assert_eq!(eff(&["--cap-add", "NET_ADMIN"]), "00000000a80435fb");
    assert_eq!(eff(&["--cap-drop", "CAP_CHOWN"]), "00000000a80425fa");
    let r = sh(&cg, rootfs.path(), &["--cap-add", "NOT_A_CAP"], "true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("unknown capability"), "{}", r.stderr);
}

#[test]
fn read_only_root_and_a_numeric_user() {
    let (cg, rootfs) = (TestCgroup::new(), Rootfs::new());
    let r = sh(
        &cg,
        rootfs.path(),
        &["--read-only"],
        "touch /x 2>&1 || echo refused; touch /dev/shm/ok && echo tmpfs-ok",
    );
    assert!(
        r.stdout.contains("Read-only file system") && r.stdout.contains("refused\ntmpfs-ok"),
        "{}",
        r.stdout
    );
    assert!(!rootfs.path().join("x").exists());
    let r = sh(&cg, rootfs.path(), &["-u", "1000:1001"], "id -u; id -g");
    assert_eq!(r.stdout, "1000\n1001\n", "{}", r.stderr);
    let r = sh(&cg, rootfs.path(), &["--user", "nobody"], "true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("numeric"), "{}", r.stderr);
}
