//! The OCI lifecycle across runtime invocations: create, start, state, kill, delete, and
//! the commands built on them (run, list, ps, pause, resume). Each command locks the
//! container's state directory, so concurrent commands on one container are serialized.

use std::collections::HashMap;
use std::io::{IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::WaitStatus;
use nix::unistd::{mkfifo, Pid};
use oci_spec::runtime::Spec;
use serde::Serialize;

use crate::cgroups::{self, CgroupError};
use crate::error::{Error, Result};
use crate::namespaces::JoinedPath;
use crate::pidfd::PidFd;
use crate::process::channel::{ChannelError, Message};
use crate::process::{clone_init, run_in_foreground, Container, LaunchOptions, StartSignal};
use crate::state::{proc_stat, JoinedRoot, Record, StateDir, StateError, Status};
use crate::{hooks, signals};

/// `runc state`'s JSON: the OCI state plus runc's rootfs, created and owner.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: HashMap<String, String>,
}

pub struct CreateOptions<'a> {
    pub bundle: &'a Path,
    pub preserve_fds: u32,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
}

/// Reads `config.json` from a bundle.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| Error::Bundle { path, reason: e.to_string() })
}

/// OCI create: everything up to the user's process, which waits for `start`.
pub fn create(root: &Path, id: &str, opts: &CreateOptions) -> Result<()> {
    let bundle = absolute(opts.bundle)?;
    let spec = load_spec(&bundle)?;
    check_terminal(&spec, opts.console_socket)?;
    warn(&spec);
    let state = StateDir::create(root, id)?;
    match create_in(&state, &spec, &bundle, opts) {
        Ok(container) => {
            container.detach();
            Ok(())
        }
        Err(e) => {
            // The Container's drop already killed the init and removed the cgroup (and its
            // mounts from a joined mount namespace).
            let _ = state.remove();
            Err(e)
        }
    }
}

fn create_in(state: &StateDir, spec: &Spec, bundle: &Path, opts: &CreateOptions) -> Result<Container> {
    let fifo_path = state.fifo();
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).map_err(Error::sys("mkfifo exec.fifo"))?;
    // Writable by the init whoever it runs as (root of a user namespace is not the host's),
    // whatever the umask took off.
    std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| Error::Sys { op: "chmod exec.fifo", source: io_errno(&e) })?;
    let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys("open exec.fifo"))?;
    Ok(launch_recorded(state, spec, bundle, opts, StartSignal::Fifo(fifo))?.0)
}

/// Create's work, for `create` and `run`: the init launched and recorded (while it sets
/// itself up: other commands wait for the state's lock meanwhile), its terminal sent to the
/// console socket, its pid written.
fn launch_recorded(
    state: &StateDir,
    spec: &Spec,
    bundle: &Path,
    opts: &CreateOptions,
    start: StartSignal,
) -> Result<(Container, Record)> {
    // `run` with nothing to do, or to fail, between the init's Ready and its start: the
    // go-ahead goes with the setup, so that the init does not wait for it.
    let start_at_once = matches!(start, StartSignal::Channel)
        && opts.console_socket.is_none()
        && opts.pid_file.is_none()
        && !spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false)
        && !hooks::init_waits_for_runtime(spec.hooks().as_ref());
    let mut record = new_record(&state.id, spec, bundle);
    // Saved before the cgroup is made, so that `delete` finds whatever a runtime killed
    // midway left: the directories resolved once here (a later command may run in another
    // cgroup than `create` did, as podman's conmon does, and would resolve a relative
    // cgroupsPath elsewhere), the init's pid as soon as there is one.
    let mut save = |pid: Option<Pid>, dirs: &[(String, PathBuf)]| -> Result<()> {
        if let Some(pid) = pid {
            record.pid = pid.as_raw();
            // 0, that is stopped, for an init gone already: wait_ready brings its report of why.
            record.pid_start = proc_stat(pid.as_raw()).map_or(0, |p| p.start);
        }
        record.cgroup = dirs.to_vec();
        Ok(state.save(&record)?)
    };
    let launch = LaunchOptions { start, preserve_fds: opts.preserve_fds };
    let mut container = clone_init(spec, bundle, launch, &mut save)?;
    if start_at_once {
        container.queue_start();
    }
    container.wait_ready(Some(&mut |pid| run_create_hooks(spec, &record, pid)))?;
    if let (Some((path, mount_id)), Some(namespace)) = (container.joined_root(), JoinedPath::mount_of(spec)) {
        record.joined_root = Some(JoinedRoot { namespace, path: path.to_path_buf(), mount_id });
        state.save(&record)?;
    }
    if let Some(socket) = opts.console_socket {
        if let Some(master) = container.take_pty_master() {
            send_console(socket, master)?;
        }
    }
    if let Some(pid_file) = opts.pid_file {
        write_pid_file(pid_file, container.pid())?;
    }
    Ok((container, record))
}

/// prestart (deprecated, but Docker still uses it; run during create as runc does, so before
/// createRuntime, as the spec then asks), then createRuntime: the init `pid` has made the
/// container's namespaces and mounts, not yet its pivot_root. A failure fails the create.
/// Returns the state they got, for the hooks the init runs.
fn run_create_hooks(spec: &Spec, record: &Record, pid: Pid) -> Result<serde_json::Value> {
    let record = Record { pid: pid.as_raw(), ..record.clone() };
    let state = serde_json::to_value(oci_state(&record, Status::Creating)).expect("the state serializes");
    let text = state.to_string();
    hooks::run(spec.hooks().as_ref(), hooks::Kind::Prestart, &text)?;
    hooks::run(spec.hooks().as_ref(), hooks::Kind::CreateRuntime, &text)?;
    Ok(state)
}

/// poststart and poststop failures do not undo what happened: the spec asks for a warning.
/// They are the hooks create saw (the bundle's config.json may have changed since), as runc's.
fn run_warning_hooks(kind: hooks::Kind, record: &Record, status: Status) {
    // A record written before the hooks were kept in it: the bundle's, as then.
    let from_bundle;
    let hooks = match &record.hooks {
        Some(kept) => kept.as_ref(),
        None => {
            from_bundle = load_spec(&record.bundle).ok().and_then(|s| s.hooks().clone());
            from_bundle.as_ref()
        }
    };
    if let Err(e) = hooks::run(hooks, kind, &state_json(record, status)) {
        warn_of(&e);
    }
}

/// What went wrong without undoing what happened (the spec's rule for some hooks; cleanup).
fn warn_of(e: &dyn std::error::Error) {
    eprintln!("rocker-runtime: warning: {}", crate::error::chain(e));
}

fn state_json(record: &Record, status: Status) -> String {
    serde_json::to_string(&oci_state(record, status)).expect("the state serializes")
}

/// OCI start: lets a created container's init exec the user's process.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    // Opened before the status check, which makes sure that its pid still names the init.
    let pidfd = init_pidfd(&record);
    expect_status(&state, &record, "start", &[Status::Created])?;
    let stopped = || Error::InvalidState { id: id.into(), op: "start", status: Status::Stopped };
    let fifo = open(&state.fifo(), OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys("open exec.fifo"))?;
    // The init writes one byte once its open for writing returns, which our open let through.
    // Until it has opened, the FIFO polls as nothing to read (no hang-up before a writer
    // came): wait for that byte, or for the init's exit (without a pidfd, looked at every
    // 10 ms).
    let timeout = if pidfd.is_some() { PollTimeout::NONE } else { PollTimeout::from(10u8) };
    let mut byte = [0u8; 1];
    loop {
        let mut fds = vec![PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        fds.extend(pidfd.as_ref().map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN)));
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            r => r.map_err(Error::sys("poll exec.fifo"))?,
        };
        let has = |i: usize, flag| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| r.contains(flag));
        // Exited, or closed its end without the byte on its way out.
        let gone = has(1, PollFlags::POLLIN)
            || has(0, PollFlags::POLLHUP)
            || (pidfd.is_none() && !init_alive(&record));
        match nix::unistd::read(&fifo, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(Errno::EAGAIN) if gone => return Err(stopped()),
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Sys { op: "read exec.fifo", source: e }),
        }
    }
    std::fs::remove_file(state.fifo())
        .map_err(|e| Error::Sys { op: "remove exec.fifo", source: io_errno(&e) })?;
    wait_for_exec(fifo)?;
    run_warning_hooks(hooks::Kind::Poststart, &record, Status::Running);
    Ok(())
}

/// Reads the exec FIFO to its end, once the init has written its first byte: the init's end
/// closes when it execs the user's process (close-on-exec), or when it exits after a
/// failure on the way (a startContainer hook, the exec), which it writes there first.
fn wait_for_exec(fifo: OwnedFd) -> Result<()> {
    // Blocking from now on: the init holds the other end until its exec or exit.
    fcntl(&fifo, FcntlArg::F_SETFL(OFlag::empty())).map_err(Error::sys("fcntl exec.fifo"))?;
    let mut report = Vec::new();
    std::fs::File::from(fifo)
        .read_to_end(&mut report)
        .map_err(|e| Error::Sys { op: "read exec.fifo", source: io_errno(&e) })?;
    if report.is_empty() {
        return Ok(());
    }
    let failure: Message = serde_json::from_slice(&report).map_err(ChannelError::Decode)?;
    Err(crate::process::failure(failure, "the exec"))
}

/// OCI state.
pub fn state(root: &Path, id: &str) -> Result<OciState> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    Ok(oci_state(&record, status(&state, &record)))
}

/// Every container under `root`, with its status.
pub fn list(root: &Path) -> Result<Vec<OciState>> {
    let mut out = Vec::new();
    for id in crate::state::list(root)? {
        // One deleted meanwhile is simply not listed.
        if let Ok(s) = state(root, &id) {
            out.push(s);
        }
    }
    Ok(out)
}

/// OCI kill: `signal` to the init, or with `all` to every process in the container's cgroup.
/// As runc, `all` reaches a stopped container too: what is left in its cgroup (a container
/// without a PID namespace of its own keeps running processes after its init; containerd's
/// shim kills them this way once the init has exited), or nothing once that is gone.
pub fn kill_container(root: &Path, id: &str, signal: Signal, all: bool) -> Result<()> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    let allowed = [Status::Created, Status::Running, Status::Paused, Status::Stopped];
    let current = expect_status(&state, &record, "kill", &allowed[..if all { 4 } else { 3 }])?;
    if all {
        let procs = cgroups::reopen(&record.cgroup).and_then(|c| c.procs());
        let procs = match procs {
            Err(CgroupError::Io { source, .. })
                if current == Status::Stopped && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Vec::new()
            }
            r => r?,
        };
        for pid in procs {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    } else {
        kill(Pid::from_raw(record.pid), signal).map_err(Error::sys("kill"))?;
    }
    // A frozen process takes its SIGKILL only once thawed.
    if current == Status::Paused && signal == Signal::SIGKILL {
        cgroups::reopen(&record.cgroup)?.freeze(false)?;
    }
    Ok(())
}

/// OCI delete: removes a stopped (or created) container; `force` kills a running one first.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let state = match StateDir::open(root, id) {
        // As runc: forcing the removal of what is already gone succeeds (containerd's cleanup
        // after a shim exits relies on it). What a create killed before its record left goes.
        Err(StateError::NotFound(_)) if force => return Ok(StateDir::remove_unrecorded(root, id)?),
        r => r?,
    };
    let record = state.load()?;
    match status(&state, &record) {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&record)?,
        Status::Running | Status::Paused if force => kill_and_wait(&record)?,
        other => return Err(Error::InvalidState { id: id.into(), op: "delete", status: other }),
    }
    // Not a reason to keep a container that is gone: a warning, as for hooks.
    if let Err(e) = release_joined_root(&record) {
        warn_of(&e);
    }
    destroy_cgroup(&record.cgroup)?;
    state.remove()?;
    run_warning_hooks(hooks::Kind::Poststop, &record, Status::Stopped);
    Ok(())
}

/// `ps`: the pids in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    Ok(cgroups::reopen(&record.cgroup)?.procs()?)
}

/// Freezes (pause) or thaws (resume) every process of a container.
pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    let (op, from) = if paused { ("pause", Status::Running) } else { ("resume", Status::Paused) };
    expect_status(&state, &record, op, &[from])?;
    Ok(cgroups::reopen(&record.cgroup)?.freeze(paused)?)
}

pub struct ExecOptions<'a> {
    pub detach: bool,
    /// Exec into a paused container too: the process joins the frozen cgroup, so it runs
    /// once the container is resumed.
    pub ignore_paused: bool,
    pub preserve_fds: u32,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
}

/// The container's own `process` from its bundle: the base that `exec` flags override.
pub fn container_process(root: &Path, id: &str) -> Result<oci_spec::runtime::Process> {
    let state = StateDir::open(root, id)?;
    let spec = load_spec(&state.load()?.bundle)?;
    spec.process().clone().ok_or_else(|| Error::InvalidSpec("the container's spec has no process".into()))
}

/// Runs `process` in a running container. Foreground: returns its wait status; detached:
/// returns once it has started.
pub fn exec(
    root: &Path,
    id: &str,
    process: &oci_spec::runtime::Process,
    opts: &ExecOptions,
) -> Result<Option<WaitStatus>> {
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::InvalidSpec("a detached exec with a terminal needs --console-socket".into()));
    }
    let (record, spec) = {
        // The lock is held only while reading: a long exec must not block kill or delete.
        let state = StateDir::open(root, id)?;
        let record = state.load()?;
        let current = expect_status(&state, &record, "exec in", &[Status::Running, Status::Paused])?;
        if current == Status::Paused && !opts.ignore_paused {
            return Err(Error::ExecInPaused);
        }
        let spec = load_spec(&record.bundle)?;
        (record, spec)
    };
    let namespaces = crate::namespaces::plan(&spec)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let cgroup = cgroups::reopen(&record.cgroup)?;
    let signals = if opts.detach { None } else { Some(signals::block()?) };
    let mut container = crate::process::enter(
        Pid::from_raw(record.pid),
        &namespaces,
        cgroup,
        process,
        seccomp,
        opts.preserve_fds,
    )?;
    if let Some(socket) = opts.console_socket {
        if let Some(master) = container.take_pty_master() {
            send_console(socket, master)?;
        }
    }
    if let Some(pid_file) = opts.pid_file {
        write_pid_file(pid_file, container.pid())?;
    }
    match signals {
        None => {
            container.start()?;
            container.detach();
            Ok(None)
        }
        Some(signals) => {
            let stdin = std::io::stdin();
            Ok(Some(run_in_foreground(container, &signals, Some(std::os::fd::AsFd::as_fd(&stdin)))?.status))
        }
    }
}

/// One `events` record: runc's `{"type": "stats", "id": ..., "data": {...}}`.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub data: cgroups::Stats,
}

/// `events`: the container's usage now (a `stats` event).
pub fn stats(root: &Path, id: &str) -> Result<Event> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    expect_status(&state, &record, "read the stats of", &[Status::Created, Status::Running, Status::Paused])?;
    Ok(Event { kind: "stats", id: id.to_string(), data: cgroups::reopen(&record.cgroup)?.stats()? })
}

/// `update`: writes new limits to a running (or created, or paused) container's cgroup.
pub fn update(root: &Path, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let state = StateDir::open(root, id)?;
    let record = state.load()?;
    expect_status(&state, &record, "update", &[Status::Created, Status::Running, Status::Paused])?;
    Ok(cgroups::reopen(&record.cgroup)?.apply(resources)?)
}

/// `run` in the foreground: create, start, wait, delete; returns the init's wait status.
pub fn run(root: &Path, id: &str, opts: &CreateOptions) -> Result<WaitStatus> {
    let bundle = absolute(opts.bundle)?;
    let spec = load_spec(&bundle)?;
    warn(&spec);
    let state = StateDir::create(root, id)?;
    let result = (|| -> Result<crate::process::Exit> {
        let signals = signals::block()?;
        let (container, record) = launch_recorded(&state, &spec, &bundle, opts, StartSignal::Channel)?;
        let stdin = std::io::stdin();
        let exit = run_in_foreground(container, &signals, Some(std::os::fd::AsFd::as_fd(&stdin)))?;
        exit.cleanup_errors.iter().for_each(|e| warn_of(e));
        run_warning_hooks(hooks::Kind::Poststop, &record, Status::Stopped);
        Ok(exit)
    })();
    let _ = state.remove();
    Ok(result?.status)
}

/// The container's status now, from its init's /proc entry, the exec FIFO and the freezer.
fn status(state: &StateDir, record: &Record) -> Status {
    if !init_alive(record) {
        Status::Stopped
    } else if state.fifo().exists() {
        Status::Created
    } else if cgroups::reopen(&record.cgroup).and_then(|c| c.frozen()).unwrap_or(false) {
        Status::Paused
    } else {
        Status::Running
    }
}

fn expect_status(state: &StateDir, record: &Record, op: &'static str, allowed: &[Status]) -> Result<Status> {
    let current = status(state, record);
    if allowed.contains(&current) {
        Ok(current)
    } else {
        Err(Error::InvalidState { id: state.id.clone(), op, status: current })
    }
}

fn oci_state(record: &Record, status: Status) -> OciState {
    OciState {
        oci_version: "1.2.0".into(),
        id: record.id.clone(),
        pid: if status == Status::Stopped { 0 } else { record.pid },
        status,
        bundle: record.bundle.clone(),
        rootfs: record.rootfs.clone(),
        created: record.created.clone(),
        owner: String::new(),
        annotations: record.annotations.clone(),
    }
}

/// What is known of a container before its launch: all but its init and cgroup.
fn new_record(id: &str, spec: &Spec, bundle: &Path) -> Record {
    Record {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.to_path_buf(),
        rootfs: spec.root().as_ref().map(|r| bundle.join(r.path())).unwrap_or_default(),
        created: crate::state::now_rfc3339(),
        cgroup: Vec::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        hooks: Some(spec.hooks().clone()),
        joined_root: None,
    }
}

fn kill_and_wait(record: &Record) -> Result<()> {
    let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
    if let Ok(cgroup) = cgroups::reopen(&record.cgroup) {
        // A frozen init takes its SIGKILL only once thawed.
        if cgroup.frozen().unwrap_or(false) {
            cgroup.freeze(false)?;
        }
    }
    let timed_out =
        || Error::Sys { op: "waiting for the killed container init to exit", source: Errno::ETIMEDOUT };
    match init_pidfd(record) {
        // (Checked after the pidfd is open: pids are reused.)
        Some(_) if !init_alive(record) => Ok(()),
        Some(init) => match init.wait_exit(Duration::from_secs(10)) {
            Ok(true) => Ok(()),
            Ok(false) => Err(timed_out()),
            Err(e) => Err(Error::Sys { op: "poll the init's pidfd", source: e }),
        },
        None => {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while init_alive(record) {
                if std::time::Instant::now() > deadline {
                    return Err(timed_out());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
    }
}

/// A pidfd of the container's init's pid, to wait for its exit in poll; None if that pid is
/// gone, or on a kernel without pidfds (before 5.3), where /proc is looked at instead. The
/// caller checks, once it has it, that the pid still names the init (pids are reused).
fn init_pidfd(record: &Record) -> Option<PidFd> {
    PidFd::open(record.pid).ok()
}

fn init_alive(record: &Record) -> bool {
    proc_stat(record.pid).is_some_and(|p| p.start == record.pid_start && p.state != 'Z' && p.state != 'X')
}

/// The container's mounts out of the mount namespace it joined by path, if it did and that
/// namespace is still there (see `rootfs::release_joined`).
fn release_joined_root(record: &Record) -> Result<()> {
    let Some(root) = &record.joined_root else { return Ok(()) };
    let Some(ns) = root.namespace.reopen() else { return Ok(()) };
    crate::process::release_joined_root(ns.as_fd(), &root.path, root.mount_id)
}

fn destroy_cgroup(dirs: &[(String, PathBuf)]) -> Result<()> {
    match cgroups::reopen(dirs) {
        Ok(cgroup) => Ok(cgroup.destroy()?),
        // Already gone (a failed create, or a host reboot).
        Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What a spec asks that is not what it may seem: labels for security modules this host
/// does not run (runc ignores them too, but says so), and a root in a joined mount namespace,
/// a chroot there (see rootfs/mod.rs), which CAP_SYS_CHROOT can leave.
fn warn(spec: &Spec) {
    let linux = spec.linux().as_ref();
    let process = spec.process().as_ref();
    let chroot_cap = process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::SysChroot));
    if let (Some(ns), true) = (JoinedPath::mount_of(spec), chroot_cap) {
        eprintln!(
            "rocker-runtime: warning: the container's root in the mount namespace it joins ({}) is a chroot, \
             which a process with CAP_SYS_CHROOT can leave for the rest of that namespace",
            ns.path.display()
        );
    }
    let ignored = [
        ("linux.mountLabel", linux.and_then(|l| l.mount_label().as_ref()).is_some()),
        ("process.selinuxLabel", process.and_then(|p| p.selinux_label().as_ref()).is_some()),
        ("process.apparmorProfile", process.and_then(|p| p.apparmor_profile().as_ref()).is_some()),
    ];
    for (field, set) in ignored {
        if set {
            eprintln!("rocker-runtime: warning: {field} ignored: no SELinux or AppArmor support");
        }
    }
}

fn check_terminal(spec: &Spec, console_socket: Option<&Path>) -> Result<()> {
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    match (terminal, console_socket) {
        (true, None) => Err(Error::InvalidSpec(
            "process.terminal is true but no --console-socket was given to receive the pty".into(),
        )),
        (false, Some(_)) => {
            Err(Error::InvalidSpec("--console-socket was given but process.terminal is false".into()))
        }
        _ => Ok(()),
    }
}

/// Hands the pty master to whoever listens on `socket`, as runc does: the fd as SCM_RIGHTS,
/// with the master's name as the message.
fn send_console(socket: &Path, master: OwnedFd) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| Error::Sys { op: "connect --console-socket", source: io_errno(&e) })?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(Error::sys("send the pty to --console-socket"))?;
    Ok(())
}

fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    // Atomic, as clients may be watching for it.
    let tmp = path.with_extension("rocker-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::Sys { op: "write --pid-file", source: io_errno(&e) })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::Bundle { path: path.to_path_buf(), reason: e.to_string() })
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
