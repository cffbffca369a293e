//! The runtime's side of starting a container: checks, cgroup, clone, and the handshake.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CloneFlags, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::channel::{Channel, ChannelError, ExecFailure, Message};
use super::clone::{clone_child, Cloned};
use super::network::NetworkHelper;
use super::{init, LaunchOptions};
use crate::cgroups::{self, Manager};
use crate::error::{Error, Result};
use crate::namespaces;

/// A container whose init is set up and waiting for [`Container::start`], then running.
///
/// Dropping it before [`Container::finish`] kills and reaps the init and removes its cgroup,
/// so an error anywhere on the way leaves nothing behind.
pub struct Container {
    pid: Pid,
    channel: Channel,
    pty_master: Option<OwnedFd>,
    cgroup: CgroupGuard,
    status: Option<WaitStatus>,
    start_queued: bool,
    joined_root: Option<JoinedRoot>,
}

/// The container's root in a mount namespace joined by path: its bind there, removed (and
/// everything below it) once the container is gone.
struct JoinedRoot {
    ns: OwnedFd,
    rootfs: PathBuf,
    /// Reported by the init once it made the bind (`Message::RootBound`).
    mount_id: Option<u64>,
}

/// How the container's init ended.
#[derive(Debug)]
pub struct Exit {
    pub status: WaitStatus,
    /// The init was killed by SIGKILL, and the kernel's OOM killer struck in the container.
    pub oom_killed: bool,
    /// What went wrong reading the OOM count, removing the cgroup or the container's mounts
    /// from a mount namespace it joined: worth a warning, but the container's own exit
    /// status stands.
    pub cleanup_errors: Vec<Error>,
}

/// A reaped process's exit code as shells and Docker give it: its own, or 128+N when signal
/// N killed it. (`try_wait` only ever records those two kinds of status.)
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        WaitStatus::Exited(_, code) => code,
        _ => 1,
    }
}

/// The container's cgroup, removed on drop unless taken.
struct CgroupGuard(Option<Box<dyn Manager>>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            let _ = cgroup.destroy();
        }
    }
}

/// The cgroup as far as it was made before the clone, removed on drop unless taken.
struct PreparedGuard(Option<cgroups::Prepared>);

impl PreparedGuard {
    fn get(&self) -> &cgroups::Prepared {
        self.0.as_ref().expect("taken once, after the clone")
    }

    fn take(mut self) -> cgroups::Prepared {
        self.0.take().expect("taken once, after the clone")
    }
}

impl Drop for PreparedGuard {
    fn drop(&mut self) {
        if let Some(cgroups::Prepared::Now(cgroup)) = self.0.take() {
            let _ = cgroup.destroy();
        }
    }
}

/// The runtime's part in a spec's hooks during [`Container::wait_ready`]: called with the init's
/// pid once its mounts are made (before its pivot_root), it runs the prestart and
/// createRuntime hooks and returns the container's OCI state, which the init passes on to the
/// createContainer and startContainer hooks it runs itself.
pub type OnMounted<'a> = &'a mut dyn FnMut(Pid) -> Result<serde_json::Value>;

/// The caller's record of a container being created (see [`clone_init`]): called with the
/// cgroup's directories before any of them is made, and with the init's pid once it is
/// cloned (None before), so that a runtime killed at any point leaves a cgroup that a later
/// `delete` finds.
pub type RecordCgroup<'a> = &'a mut dyn FnMut(Option<Pid>, &[(String, PathBuf)]) -> Result<()>;

/// Creates the container described by `spec` (a relative `root.path` is taken from `bundle`):
/// its init cloned in new namespaces, its cgroup made and limited. The init goes on setting
/// up its root while the caller does its own work, then [`Container::wait_ready`]; it waits
/// for `opts.start` ([`Container::start`], or a reader on the exec FIFO) before it runs any
/// user code. `record` learns where the cgroup is before it is made.
pub fn clone_init(
    spec: &Spec,
    bundle: &Path,
    opts: LaunchOptions,
    record: RecordCgroup,
) -> Result<Container> {
    check_process(spec)?;
    let rootfs = rootfs_path(spec, bundle)?;
    let plan = namespaces::plan(spec)?;
    if (spec.hostname().is_some() || spec.domainname().is_some())
        && !plan.new.contains(CloneFlags::CLONE_NEWUTS)
    {
        // Setting it would rename the host.
        return Err(Error::InvalidSpec(
            "hostname and domainname need a new UTS namespace: add {\"type\": \"uts\"} to linux.namespaces"
                .into(),
        ));
    }
    // First, to have the most time: the new network namespace's helper (see process/network.rs).
    let mut network = if plan.new.contains(CloneFlags::CLONE_NEWNET) && !plan.in_user_namespace() {
        Some(NetworkHelper::start()?)
    } else {
        None
    };
    let linux = spec.linux().as_ref();
    let cgroup_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .ok_or_else(|| Error::InvalidSpec("linux.cgroupsPath is required".into()))?;
    let prepared = cgroups::prepare(&cgroup_path.to_string_lossy(), init::has_cgroup_mount(spec))?;
    let made_before_clone = matches!(prepared, cgroups::Prepared::V2(_));
    if made_before_clone {
        record_new(record, None, &prepared.dirs())?;
    }
    // (A v2 directory made now is removed if anything fails before the Container has it.)
    let prepared = PreparedGuard(Some(prepared.make_v2()?));
    let (parent_end, child_end) = Channel::pair()?;

    let for_children = namespaces::for_children(&plan, linux.and_then(|l| l.time_offsets().as_ref()))?;
    // The cgroup namespace is made by the init once it is in its cgroup (its root is the
    // cgroup of whoever makes it): not by the clone, which runs where the runtime is.
    // A joined user namespace: the first child makes the new namespaces from inside it.
    let joined_user = plan.joined(CloneFlags::CLONE_NEWUSER);
    let flags = match joined_user {
        Some(_) => CloneFlags::empty(),
        None if network.is_some() => plan.new - CloneFlags::CLONE_NEWCGROUP - CloneFlags::CLONE_NEWNET,
        None => plan.new - CloneFlags::CLONE_NEWCGROUP,
    };
    let cloned = clone_child(flags, prepared.get().clone_target());
    if !matches!(cloned, Ok(Cloned::Child { .. })) {
        for_children.restore()?;
    }
    let userns = plan.in_user_namespace();
    let (pid, in_cgroup) = match cloned? {
        Cloned::Child { in_cgroup } => {
            drop(parent_end);
            let args = init::InitArgs {
                spec,
                rootfs: &rootfs,
                namespaces: &plan,
                cgroup_dirs: &prepared.get().dirs(),
                // In a user namespace the runtime moves it (see set_up_cgroup).
                join_cgroup: !in_cgroup && !userns,
                network: network.as_ref().and_then(NetworkHelper::init_end),
                opts: &opts,
            };
            match joined_user {
                Some(userns) => init::run_in_joined_user_namespace(child_end, userns, &args),
                None => init::run(child_end, &args),
            }
        }
        Cloned::Parent { child, in_cgroup } if joined_user.is_some() => {
            (init_from_first_child(child, &parent_end)?, in_cgroup)
        }
        Cloned::Parent { child, in_cgroup } => (child, in_cgroup),
    };
    drop((child_end, opts));
    // The helper is reaped when `network` drops, at the end.
    if let Some(n) = network.as_mut() {
        n.init_has_its_end();
    }
    // From here on, an error drops the Container: it kills and reaps the init, then removes
    // the cgroup.
    let mut container = Container::new(pid, parent_end);
    if let Some(ns) = plan.joined(CloneFlags::CLONE_NEWNS) {
        let ns = ns.try_clone().map_err(|e| Error::Sys {
            op: "dup the mount namespace",
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        container.joined_root = Some(JoinedRoot { ns, rootfs: rootfs.clone(), mount_id: None });
    }
    // The other CPU is the network helper's, if there is one: the runtime then does its
    // cgroup work beside the init, which soon waits for the helper anyway.
    let aside = if network.is_some() { StepAside(None) } else { StepAside::new() };
    container.cgroup = CgroupGuard(Some(prepared.take().manager()?));
    if made_before_clone {
        record(Some(pid), &container.cgroup_dirs())?;
    } else {
        record_new(record, Some(pid), &container.cgroup_dirs())?;
    }
    container.set_up_cgroup(spec, &plan, in_cgroup)?;
    drop(aside);
    Ok(container)
}

/// Records the container's cgroup (see [`RecordCgroup`]), first making sure that it is still
/// to be made: a record of another container's directories (the same cgroupsPath) would have
/// `delete` remove them.
fn record_new(record: RecordCgroup, pid: Option<Pid>, dirs: &[(String, PathBuf)]) -> Result<()> {
    if let Some((_, dir)) = dirs.iter().find(|(_, dir)| dir.exists()) {
        return Err(cgroups::CgroupError::Exists(dir.clone()).into());
    }
    record(pid, dirs)
}

/// Removes a container's root, `mount_id` at `rootfs`, and what is below it from the mount
/// namespace `ns` it joined (see `rootfs::release_joined`), in a child process: joining a mount
/// namespace changes what paths mean.
pub fn release_joined_root(ns: BorrowedFd, rootfs: &Path, mount_id: u64) -> Result<()> {
    super::in_child("remove the container's mounts from the mount namespace it joined", || {
        crate::rootfs::release_joined(ns, rootfs, mount_id)
    })
}

/// The init that `first` (see `init::run_in_joined_user_namespace`) cloned as our child,
/// once `first` has reported it and exited.
fn init_from_first_child(first: Pid, channel: &Channel) -> Result<Pid> {
    let report = channel.recv();
    if !matches!(report, Ok(Some((Message::InitPid { .. }, _)))) {
        let _ = kill(first, Signal::SIGKILL);
    }
    let _ = waitpid(first, None);
    match report? {
        Some((Message::InitPid { pid }, _)) => Ok(Pid::from_raw(pid)),
        Some((other, _)) => Err(failure(other, "the init's pid")),
        None => Err(ChannelError::Closed { expected: "the init's pid" }.into()),
    }
}

/// The kernel starts a new child on its parent's CPU, where it waits for the parent to
/// sleep (seen here 47 times in 50, on a 2-CPU VM): the init's setup and the runtime's
/// cgroup work would take turns on one CPU while another idles. So the runtime steps aside
/// to the other CPUs it may use, for that work only; the init keeps its CPU and the
/// affinity it inherited. Best effort: with a single CPU, or if the calls fail, nothing
/// changes. (Not when a network helper has the other CPU: see process/network.rs.)
struct StepAside(Option<CpuSet>);

impl StepAside {
    fn new() -> StepAside {
        match other_cpus() {
            Some((allowed, others)) if sched_setaffinity(Pid::from_raw(0), &others).is_ok() => {
                StepAside(Some(allowed))
            }
            _ => StepAside(None),
        }
    }
}

/// The CPUs this process may use, and those of them it is not running on, if any.
pub(super) fn other_cpus() -> Option<(CpuSet, CpuSet)> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut others = allowed;
    others.unset(sched_getcpu().ok()?).ok()?;
    (0..CpuSet::count()).any(|cpu| others.is_set(cpu).unwrap_or(false)).then_some((allowed, others))
}

impl Drop for StepAside {
    fn drop(&mut self) {
        if let Some(allowed) = &self.0 {
            let _ = sched_setaffinity(Pid::from_raw(0), allowed);
        }
    }
}

impl Container {
    fn new(pid: Pid, channel: Channel) -> Container {
        Container {
            pid,
            channel,
            pty_master: None,
            cgroup: CgroupGuard(None),
            status: None,
            start_queued: false,
            joined_root: None,
        }
    }

    /// Takes charge of a process cloned into a container once it reports ready.
    pub(super) fn ready(pid: Pid, channel: Channel) -> Result<Container> {
        let mut container = Container::new(pid, channel);
        container.wait_ready(None)?;
        Ok(container)
    }

    /// The runtime's part of the cgroup, done while the init sets up its mounts: the
    /// directories the clone did not need, the limits, and then what lets the init go on
    /// (in a user namespace, whose root is nobody to the host's cgroup files, the runtime
    /// writes its maps if it is new and moves it; otherwise the init joins by itself, which the
    /// kernel does without the RCU wait that moving another process costs).
    fn set_up_cgroup(&mut self, spec: &Spec, plan: &namespaces::Plan, in_cgroup: bool) -> Result<()> {
        let linux = spec.linux().as_ref();
        let cgroup = self.cgroup.0.as_mut().expect("launch gives the container its cgroup");
        cgroup.make_dirs()?;
        if let Some(resources) = linux.and_then(|l| l.resources().as_ref()) {
            cgroup.apply(&cgroups::with_default_devices(
                resources,
                linux.and_then(|l| l.devices().as_deref()),
            ))?;
        }
        if plan.in_user_namespace() {
            if plan.new.contains(CloneFlags::CLONE_NEWUSER) {
                namespaces::write_id_maps(self.pid, spec)?;
            }
            if !in_cgroup {
                cgroup.add_process(self.pid)?;
            }
            self.tell(&Message::Mapped, &[])?;
        } else if !in_cgroup {
            let files = cgroup.join_files()?;
            let raw: Vec<_> = files.iter().map(|f| f.as_raw_fd()).collect();
            self.tell(&Message::CgroupReady, &raw)?;
        }
        Ok(())
    }

    /// Sends the init a message. If it is gone (it failed meanwhile), the error is its own
    /// report of why, queued before it exited, rather than the broken pipe.
    fn tell(&mut self, msg: &Message, fds: &[RawFd]) -> Result<()> {
        let Err(e) = self.channel.send_with_fds(msg, fds) else { return Ok(()) };
        let peer_gone = matches!(&e, ChannelError::Send { source: Errno::EPIPE | Errno::ECONNRESET, .. });
        match self.recv() {
            Ok(Some((report @ (Message::InitFailed { .. } | Message::ExecFailed { .. }), _)))
                if peer_gone =>
            {
                Err(failure(report, "a failure report"))
            }
            _ => Err(e.into()),
        }
    }

    /// The init's next message, once it has said where its root is mounted (which it may
    /// do at any time before, and which is kept for later).
    fn recv(&mut self) -> std::result::Result<Option<(Message, Vec<OwnedFd>)>, ChannelError> {
        loop {
            match self.channel.recv()? {
                Some((Message::RootBound { mount_id }, _)) if self.joined_root.is_some() => {
                    self.joined_root.as_mut().expect("checked").mount_id = Some(mount_id);
                }
                other => return Ok(other),
            }
        }
    }

    /// The container's mounts out of the mount namespace it joined by path, if the init got
    /// as far as making them. Once only.
    fn release_joined_root(&mut self) -> Result<()> {
        let Some(JoinedRoot { ns, rootfs, mount_id: Some(id) }) = self.joined_root.take() else {
            return Ok(());
        };
        release_joined_root(ns.as_fd(), &rootfs, id)
    }

    /// The container's root in a mount namespace joined by path, once the init reported its
    /// mount: the path and the mount id `delete` needs to remove it there.
    pub fn joined_root(&self) -> Option<(&Path, u64)> {
        self.joined_root.as_ref().and_then(|j| Some((j.rootfs.as_path(), j.mount_id?)))
    }

    /// The init's pid, as seen from the runtime.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The container's cgroup directories (see `cgroups::Manager::dirs`); none for a process
    /// exec'd into a container.
    pub fn cgroup_dirs(&self) -> Vec<(String, std::path::PathBuf)> {
        self.cgroup.0.as_ref().map(|c| c.dirs()).unwrap_or_default()
    }

    /// The master side of the container's terminal, when its process has one.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Sends the init its go-ahead (`Start`) before it is ready: it then goes straight on
    /// from Ready to its exec, without a round trip. Only for a caller with nothing left to
    /// do, or to fail, between the init's Ready and its start, and no hooks to answer on the
    /// way (the init reads its messages in order).
    pub fn queue_start(&mut self) {
        // A failed send means the init is gone already: waiting for it to be ready then
        // reads its own report of why, a better error than this one.
        self.start_queued = self.channel.send(&Message::Start).is_ok();
    }

    /// Lets the init exec the user's process, and returns once the exec succeeded.
    pub fn start(&mut self) -> Result<()> {
        if !self.start_queued {
            self.tell(&Message::Start, &[])?;
        }
        match self.recv()? {
            None => Ok(()),
            Some((other, _)) => Err(failure(other, "the exec's outcome")),
        }
    }

    /// The init's exit status if it has exited (reaping it), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<WaitStatus>> {
        if self.status.is_none() {
            if let s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).map_err(Error::sys("waitpid"))?
            {
                self.status = Some(s);
            }
        }
        Ok(self.status)
    }

    /// Once the init has been reaped by [`Container::try_wait`]: reads whether the OOM killer
    /// struck and removes the cgroup.
    pub fn finish(mut self) -> Result<Exit> {
        let status = self.status.ok_or(Error::StillRunning)?;
        let mut cleanup_errors = Vec::new();
        if let Err(e) = self.release_joined_root() {
            cleanup_errors.push(e);
        }
        // An exec'd process leaves the container's cgroup to the container.
        let Some(cgroup) = self.cgroup.0.take() else {
            return Ok(Exit { status, oom_killed: false, cleanup_errors });
        };
        // The OOM killer kills with SIGKILL: any other end spares reading the count.
        let killed = matches!(status, WaitStatus::Signaled(_, Signal::SIGKILL, _));
        let oom_killed = killed
            && cgroup.oom_kills().map(|n| n > 0).unwrap_or_else(|e| {
                cleanup_errors.push(e.into());
                false
            });
        if let Err(e) = cgroup.destroy() {
            cleanup_errors.push(e.into());
        }
        Ok(Exit { status, oom_killed, cleanup_errors })
    }

    /// Waits for the init to report ready (with its terminal's master, if it has one);
    /// `on_mounted` runs the runtime's hooks when the init stops for them.
    pub fn wait_ready(&mut self, mut on_mounted: Option<OnMounted>) -> Result<()> {
        loop {
            match self.recv()? {
                Some((Message::Ready, fds)) => {
                    self.pty_master = fds.into_iter().next();
                    return Ok(());
                }
                Some((Message::Mounted, _)) => {
                    // Once at most: a second Mounted, or one without hooks to run, is unexpected.
                    let Some(run_hooks) = on_mounted.take() else {
                        return Err(failure(Message::Mounted, "Ready"));
                    };
                    let state = run_hooks(self.pid)?;
                    self.tell(&Message::HooksRan { state }, &[])?;
                }
                Some((other, _)) => return Err(failure(other, "Ready")),
                None => return Err(ChannelError::Closed { expected: "Ready" }.into()),
            }
        }
    }

    /// Leaves the created container to live on its own (OCI create): its init and cgroup
    /// are no longer this process's to clean up; the state file tracks them.
    pub fn detach(mut self) -> Pid {
        // Marked as if reaped, so Drop neither kills nor waits.
        self.status = Some(WaitStatus::StillAlive);
        self.cgroup.0 = None;
        self.joined_root = None;
        self.pid
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Only an init not yet reaped is still ours to kill: a reaped pid may be reused.
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
        // Where the init's root is mounted may be among what it sent before it died (its end
        // is closed now: this reads to the end of what is queued).
        while self.joined_root.as_ref().is_some_and(|j| j.mount_id.is_none()) {
            if !matches!(self.recv(), Ok(Some(_))) {
                break;
            }
        }
        let _ = self.release_joined_root();
    }
}

/// The error a message from the init stands for, when it is not the one expected.
pub(crate) fn failure(got: Message, expected: &'static str) -> Error {
    match got {
        Message::ExecFailed { program, failure } => match failure {
            ExecFailure::NotFound => Error::ExecNotFound { program },
            ExecFailure::NotExecutable => Error::ExecNotExecutable { program },
            ExecFailure::Other(message) => Error::ExecFailed { program, message },
        },
        Message::InitFailed { step, message } => Error::Init { step, message },
        other => ChannelError::Unexpected { got: Box::new(other), expected }.into(),
    }
}

fn check_process(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref().ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => Ok(()),
        _ => Err(Error::InvalidSpec("process.args is empty: give a command to run".into())),
    }
}

/// The rootfs directory, checked: it exists, is a directory, and is not the host's `/`.
fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| Error::InvalidSpec("root is missing".into()))?;
    let path = bundle.join(root.path());
    let fail = |reason: &str| Error::Rootfs { path: path.clone(), reason: reason.to_string() };
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail("does not exist"),
        _ => fail(&e.to_string()),
    })?;
    if !meta.is_dir() {
        return Err(fail("is not a directory"));
    }
    let canonical = path.canonicalize().map_err(|e| fail(&e.to_string()))?;
    if canonical == Path::new("/") {
        return Err(fail("is the host's root directory; give the container a root filesystem of its own"));
    }
    Ok(canonical)
}
