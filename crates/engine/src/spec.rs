//! The OCI spec for a `rocker run`: the user's flags on top of Docker's defaults.

use oci_spec::runtime::{
    BoxBuilder, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, User,
};
use std::path::Path;

use rocker_runtime::process::DEFAULT_PATH;

use crate::error::EngineError;
use crate::run::{Limits, RunRequest};

const CFS_PERIOD: u64 = 100_000;

/// Docker's masked paths: kernel interfaces that leak host information or allow harm.
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Docker's default capabilities: root in the container, without the powers over the host.
const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// System calls Docker's default seccomp profile refuses (EPERM) that the default capability
/// set alone would not stop, or that matter even to a process holding them: kernel modules,
/// keyrings, clock, tracing other processes, BPF, namespaces, and such.
const REFUSED_SYSCALLS: [&str; 44] = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// clone() flags for new namespaces, refused like unshare (one rule each: a masked compare
/// tests one bit pattern).
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x1000_0000, // CLONE_NEWUSER
    0x0002_0000, // CLONE_NEWNS
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x0200_0000, // CLONE_NEWCGROUP
];

/// Everything about the container that is not in the request itself.
pub struct Context<'a> {
    pub id: &'a str,
    pub hostname: &'a str,
    /// The caller's terminal size (rows, columns), given to the container's pty.
    pub console_size: Option<(u16, u16)>,
    pub rootfs: &'a Path,
    /// The command line, with the image's Entrypoint and Cmd already applied.
    pub args: Vec<String>,
    /// The image's Env and WorkingDir (empty for a plain root filesystem).
    pub image_env: &'a [String],
    pub image_workdir: Option<&'a str>,
    pub user: User,
    /// HOME: the user's home in the container's /etc/passwd, else `/`.
    pub home: &'a str,
}

pub fn build(req: &RunRequest, ctx: Context) -> Result<Spec, EngineError> {
    let cwd = req.workdir.as_deref().or(ctx.image_workdir.filter(|w| !w.is_empty())).unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "the working directory {cwd:?} is invalid: it needs to be an absolute path"
        )));
    }
    let mut process = ProcessBuilder::default()
        .terminal(req.tty)
        .args(ctx.args)
        .env(environment(req, ctx.image_env, ctx.hostname, ctx.home))
        .cwd(cwd)
        .user(ctx.user)
        .capabilities(capabilities(&req.cap_add, &req.cap_drop)?);
    if let Some((rows, cols)) = ctx.console_size.filter(|_| req.tty) {
        process = process.console_size(
            BoxBuilder::default().height(rows as u64).width(cols as u64).build().map_err(invalid)?,
        );
    }

    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build().map_err(invalid))
    .collect::<Result<Vec<_>, _>>()?;

    let mut linux = LinuxBuilder::default();
    if req.seccomp {
        linux = linux.seccomp(seccomp_profile()?);
    }
    let linux = linux
        .namespaces(namespaces)
        .cgroups_path(cgroups_path(&req.cgroup_parent, ctx.id))
        .resources(resources(&req.limits)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(invalid)?;

    SpecBuilder::default()
        .version("1.2.0")
        .process(process.build().map_err(invalid)?)
        .root(RootBuilder::default().path(ctx.rootfs).readonly(req.read_only).build().map_err(invalid)?)
        .hostname(ctx.hostname)
        .mounts(default_mounts()?)
        .linux(linux)
        .build()
        .map_err(invalid)
}

/// Docker's environment: PATH, HOSTNAME, HOME and TERM (with a tty), then the image's Env,
/// then the user's `-e`s, each replacing an earlier entry of the same name. `-e NAME` alone
/// takes NAME from rocker's own environment, and is dropped if rocker has none.
fn environment(req: &RunRequest, image_env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut env =
        vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={hostname}"), format!("HOME={home}")];
    if req.tty {
        env.push("TERM=xterm".to_string());
    }
    // Only the user's `-e NAME` may copy a value from rocker's own environment: an image's
    // bare NAME must not pull the caller's secrets into the container, so it is dropped.
    let image = image_env.iter().filter(|e| e.contains('=')).cloned();
    let user = req.env.iter().filter_map(|e| match e.split_once('=') {
        Some(_) => Some(e.clone()),
        None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
    });
    for entry in image.chain(user) {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        env.retain(|old| old.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    env
}

/// `--cgroup-parent` plus the id: absolute from the hierarchy roots, relative from rocker's
/// own cgroup (the runtime resolves both).
fn cgroups_path(parent: &str, id: &str) -> String {
    format!("{}/{}", parent.trim_end_matches('/'), id)
}

fn resources(l: &Limits) -> Result<oci_spec::runtime::LinuxResources, EngineError> {
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(cpus) = l.cpus {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if cpus > available {
            return Err(EngineError::InvalidArgument(format!(
                "range of CPUs is from 0.01 to {available:.2}, as there are only {available} CPUs available"
            )));
        }
        cpu = cpu.quota((cpus * CFS_PERIOD as f64).round() as i64).period(CFS_PERIOD);
    }
    if let Some(shares) = l.cpu_shares {
        cpu = cpu.shares(shares);
    }
    if let Some(cpuset) = &l.cpuset_cpus {
        cpu = cpu.cpus(cpuset.clone());
    }
    let mut res =
        LinuxResourcesBuilder::default().cpu(cpu.build().map_err(invalid)?).devices(device_rules()?);
    if let Some(bytes) = l.memory {
        if bytes < MIN_MEMORY {
            return Err(EngineError::InvalidArgument(
                "minimum memory limit allowed is 6MB: give --memory 6m or more".to_string(),
            ));
        }
        res = res.memory(LinuxMemoryBuilder::default().limit(bytes as i64).build().map_err(invalid)?);
    }
    if let Some(limit) = l.pids_limit {
        res = res.pids(LinuxPidsBuilder::default().limit(limit).build().map_err(invalid)?);
    }
    res.build().map_err(invalid)
}

const MIN_MEMORY: u64 = 6 << 20;

/// rocker's default seccomp profile: allow, except what Docker's default refuses. clone3
/// gets ENOSYS rather than EPERM, so that libc falls back to clone, whose flags can be checked.
fn seccomp_profile() -> Result<oci_spec::runtime::LinuxSeccomp, EngineError> {
    use oci_spec::runtime::{
        Arch, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator,
        LinuxSyscallBuilder,
    };
    let refuse = |names: Vec<String>, errno: u32| {
        LinuxSyscallBuilder::default().names(names).action(LinuxSeccompAction::ScmpActErrno).errno_ret(errno)
    };
    let mut syscalls = vec![
        refuse(REFUSED_SYSCALLS.map(String::from).to_vec(), libc::EPERM as u32).build().map_err(invalid)?,
        refuse(vec!["clone3".into()], libc::ENOSYS as u32).build().map_err(invalid)?,
    ];
    for flag in CLONE_NAMESPACE_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag)
            .value_two(flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .map_err(invalid)?;
        syscalls
            .push(refuse(vec!["clone".into()], libc::EPERM as u32).args(vec![arg]).build().map_err(invalid)?);
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32])
        .syscalls(syscalls)
        .build()
        .map_err(invalid)
}

/// Docker's default capabilities, with `--cap-drop` (which may say ALL) then `--cap-add`.
fn capabilities(
    add: &[String],
    drop: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities, EngineError> {
    let parse = |name: &String| -> Result<Option<Capability>, EngineError> {
        let bare = name.to_ascii_uppercase();
        let bare = bare.strip_prefix("CAP_").unwrap_or(&bare);
        if bare == "ALL" {
            return Ok(None);
        }
        bare.parse()
            .map(Some)
            .map_err(|_| EngineError::InvalidArgument(format!("unknown capability {name:?}")))
    };
    let mut set: oci_spec::runtime::Capabilities = CAPABILITIES.into_iter().collect();
    for name in drop {
        match parse(name)? {
            None => set.clear(),
            Some(c) => {
                set.remove(&c);
            }
        }
    }
    for name in add {
        match parse(name)? {
            None => {
                return Err(EngineError::InvalidArgument(
                    "--cap-add ALL is not supported: name the capabilities to add".into(),
                ))
            }
            Some(c) => {
                set.insert(c);
            }
        }
    }
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        // The builder's defaults would grant some; Docker grants none here.
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(invalid)
}

/// Docker's device rule: deny everything; the runtime adds what every container needs.
fn device_rules() -> Result<Vec<LinuxDeviceCgroup>, EngineError> {
    Ok(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().map_err(invalid)?])
}

fn default_mounts() -> Result<Vec<Mount>, EngineError> {
    let m = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .map_err(invalid)
    };
    Ok(vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        m("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        m("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        m("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        m("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
    ])
}

fn invalid(e: oci_spec::OciSpecError) -> EngineError {
    EngineError::InvalidArgument(format!("building the container spec: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Source;

    fn request(env: &[&str], tty: bool) -> RunRequest {
        RunRequest {
            source: Source::Rootfs("/tmp/r".into()),
            command: vec!["sh".into()],
            entrypoint: None,
            tty,
            interactive: false,
            env: env.iter().map(|s| s.to_string()).collect(),
            workdir: None,
            hostname: None,
            limits: Limits::default(),
            cgroup_parent: "/rocker".into(),
            seccomp: true,
            read_only: false,
            user: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
        }
    }

    #[test]
    fn user_env_replaces_defaults_by_name() {
        let env = environment(
            &request(&["HOME=/home/x", "A=1"], true),
            &["A=0".into(), "B=2".into()],
            "h",
            "/root",
        );
        assert!(env.contains(&"B=2".to_string()));
        assert!(!env.contains(&"A=0".to_string()));
        assert!(env.contains(&"HOME=/home/x".to_string()));
        assert!(!env.contains(&"HOME=/root".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
        assert!(env.contains(&"HOSTNAME=h".to_string()));
        assert!(env.contains(&"A=1".to_string()));
    }

    #[test]
    fn an_images_bare_name_takes_nothing_from_rockers_environment() {
        // A name of this test's own, set in rocker's (this process's) environment.
        std::env::set_var("ROCKER_SPEC_TEST_SECRET", "leaked");
        let env = environment(&request(&[], false), &["ROCKER_SPEC_TEST_SECRET".into()], "h", "/root");
        assert!(!env.iter().any(|e| e.contains("leaked")), "{env:?}");
        // The user's own `-e NAME` still takes it.
        let env = environment(&request(&["ROCKER_SPEC_TEST_SECRET"], false), &[], "h", "/root");
        assert!(env.contains(&"ROCKER_SPEC_TEST_SECRET=leaked".to_string()), "{env:?}");
    }

    #[test]
    fn no_term_without_a_tty() {
        assert!(!environment(&request(&[], false), &[], "h", "/root").iter().any(|e| e.starts_with("TERM=")));
    }

    #[test]
    fn cgroup_path_joins_parent_and_id() {
        assert_eq!(cgroups_path("/rocker/", "abc"), "/rocker/abc");
        assert_eq!(cgroups_path("test-1", "abc"), "test-1/abc");
    }

    #[test]
    fn half_a_cpu_is_half_the_period() {
        let l = Limits { cpus: Some(0.5), ..Default::default() };
        let r = resources(&l).unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
    }

    #[test]
    fn tiny_memory_is_refused() {
        let l = Limits { memory: Some(1 << 20), ..Default::default() };
        assert!(resources(&l).is_err());
    }
}
