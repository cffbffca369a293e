//! The container's init: runs in the cloned child, in its new namespaces, and ends in the
//! user's process (or in `_exit` after reporting what failed). Each step is a small named
//! function; the comments say why a step sits where it does.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{sethostname, Gid, Uid};
use oci_spec::runtime::{Process, Spec};
use serde_json::Value;

use super::channel::{Channel, Message};
use super::clone::{clone_child, Cloned};
use super::network;
use super::user_process::{self, step, wait_for_start};
use super::{LaunchOptions, StartSignal};
use crate::cgroups;
use crate::hooks::{self, Kind};
use crate::namespaces::{self, Plan};
use crate::state::Status;
use crate::{rootfs, security, tty};

/// What the init needs besides its channel.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub namespaces: &'a Plan,
    /// The container's cgroup directories, for a `cgroup` mount (known before the clone
    /// only then: see `cgroups::prepare`).
    pub cgroup_dirs: &'a [(String, std::path::PathBuf)],
    /// The clone could not place the child in its cgroup, so it moves itself.
    pub join_cgroup: bool,
    /// Where the new network namespace comes from, when a helper makes it (process/network.rs).
    pub network: Option<&'a Channel>,
    pub opts: &'a LaunchOptions,
}

/// Entry point of the child after clone. Never returns.
pub fn run(channel: Channel, args: &InitArgs) -> ! {
    user_process::run_child(&channel, || init(&channel, args))
}

/// Entry point of the child after clone when the spec joins a user namespace by path (a
/// Kubernetes pod's): namespaces made by the clone would belong to the runtime's user
/// namespace, where the init, once in the joined one, has no privilege over them. So this
/// first child joins it, makes the spec's new namespaces from inside, and clones the init
/// into them as the runtime's child (CLONE_PARENT); it reports the init's pid and exits.
/// A PID namespace joined too is joined here, for the init, before the user namespace (while
/// this child still has the host's privileges, whichever user namespace owns it): the pid
/// the clone returns is then in this child's own PID namespace, the runtime's.
pub fn run_in_joined_user_namespace(channel: Channel, userns: &OwnedFd, args: &InitArgs) -> ! {
    user_process::run_child(&channel, || {
        if let Some(pidns) = args.namespaces.joined(CloneFlags::CLONE_NEWPID) {
            step("joining the PID namespace", nix::sched::setns(pidns, CloneFlags::CLONE_NEWPID))?;
        }
        step("joining the user namespace", nix::sched::setns(userns, CloneFlags::CLONE_NEWUSER))?;
        let new = args.namespaces.new;
        // The PID namespace is for the init, the next child; the cgroup one the init makes.
        let here = new - CloneFlags::CLONE_NEWPID - CloneFlags::CLONE_NEWCGROUP;
        step("creating the container's namespaces", nix::sched::unshare(here))?;
        let flags = CloneFlags::CLONE_PARENT | (new & CloneFlags::CLONE_NEWPID);
        match step("cloning the container's init", clone_child(flags, None))? {
            Cloned::Child { .. } => init(&channel, args),
            Cloned::Parent { child, .. } => {
                step("reporting the init's pid", channel.send(&Message::InitPid { pid: child.as_raw() }))?;
                user_process::exit_now(0)
            }
        }
    })
}

fn init(channel: &Channel, args: &InitArgs) -> Result<Infallible, Message> {
    let InitArgs { spec, rootfs, namespaces, cgroup_dirs, opts, .. } = *args;
    let start = &opts.start;
    if let StartSignal::Channel = start {
        // Die with the runtime: a foreground run that is killed takes its container along
        // instead of leaving it running unsupervised.
        step("setting the parent-death signal", nix::sys::prctl::set_pdeathsig(Signal::SIGKILL))?;
    }
    if namespaces.in_user_namespace() {
        // Nothing privileged before the runtime has written the maps (of a new namespace) and
        // moved it into its cgroup: until then this process is nobody in its namespace.
        if !matches!(channel.recv(), Ok(Some((Message::Mapped, _)))) {
            user_process::exit_now(1);
        }
        step(
            "becoming root in the user namespace",
            nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)),
        )?;
        step(
            "becoming root in the user namespace",
            nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)),
        )?;
    }
    let waits_for_runtime = hooks::init_waits_for_runtime(spec.hooks().as_ref());
    // The runtime makes the cgroup while this process sets up its root: it joins at the end
    // of that, through files the runtime opened (the host's cgroup tree is out of its reach
    // after pivot_root), unless something on the way needs the cgroup: a `cgroup` mount (its
    // directories), a cgroup namespace (rooted where the init is; a joined one also decides
    // what it may write), or hooks (which run in, or look at, the container's cgroup).
    let cgroup_first =
        waits_for_runtime || has_cgroup_mount(spec) || namespaces.all().contains(CloneFlags::CLONE_NEWCGROUP);
    if cgroup_first {
        enter_cgroup(channel, args)?;
    }
    // Namespaces shared with others (a Kubernetes pod's network, say); the PID namespace, if
    // any, was joined by the runtime before the clone, the user one before the init's clone.
    let joined_before = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUSER;
    for (flag, fd) in namespaces.join.iter().filter(|(f, _)| !joined_before.contains(*f)) {
        step(&format!("joining the namespace {flag:?}"), nix::sched::setns(fd, *flag))?;
    }
    // Device nodes and directories get exactly the modes the spec asks for.
    umask(Mode::empty());
    let process = spec.process().as_ref().expect("launch checked that the spec has a process");

    let mount_ns = match namespaces.joined(CloneFlags::CLONE_NEWNS) {
        Some(_) => rootfs::MountNamespace::Joined,
        None => rootfs::MountNamespace::New,
    };
    let join_network = || match args.network {
        Some(from_helper) => network::join(from_helper).map_err(rootfs::RootfsError::Network),
        None => Ok(()),
    };
    if let Some(mount_id) = step("setting up the root filesystem", rootfs::bind_root(rootfs, mount_ns))? {
        // So that the runtime removes this mount, and only this one, from the joined
        // namespace once the container is gone, whatever happens to it from here.
        step("reporting the root's mount", channel.send(&Message::RootBound { mount_id }))?;
    }
    step("setting up the root filesystem", rootfs::mount_all(spec, rootfs, cgroup_dirs, join_network))?;
    let hook_state = if waits_for_runtime { Some(run_create_hooks(channel, spec)?) } else { None };
    step("setting up the root filesystem", rootfs::switch_root(spec, rootfs, mount_ns))?;
    if namespaces.new.contains(CloneFlags::CLONE_NEWNET) && args.network.is_none() {
        step("bringing up the loopback interface", namespaces::loopback_up())?;
    }
    if let Some(name) = spec.hostname() {
        step(&format!("setting the hostname to {name:?}"), sethostname(name))?;
    }
    if let Some(name) = spec.domainname() {
        step(&format!("setting the domain name to {name:?}"), namespaces::set_domainname(name))?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        step("setting the personality", security::set_personality(p))?;
    }
    if !cgroup_first {
        // Before anything is allocated for the user's process, and while still privileged.
        enter_cgroup(channel, args)?;
    }
    // After pivot_root, so /dev/ptmx is the container's own devpts instance.
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let prepared = user_process::prepare(process, seccomp, opts.preserve_fds)?;
    if let Some(p) = &prepared.pty {
        step("making the terminal /dev/console", tty::bind_console(p))?;
    }
    let finalized = user_process::finalize(process, prepared)?;
    if let StartSignal::Channel = start {
        // A change of user cleared the parent-death signal.
        step("setting the parent-death signal", nix::sys::prctl::set_pdeathsig(Signal::SIGKILL))?;
    }
    let master = finalized.pty_master.as_ref().map(|m| m.as_raw_fd());
    step("reporting readiness", channel.send_with_fds(&Message::Ready, master.as_slice()))?;
    let fifo = wait_for_start(channel, start);
    let Err(failure) = start_process(spec, process, hook_state, finalized);
    if let Some(fifo) = fifo {
        user_process::report_to_fifo(fifo, &failure);
    }
    Err(failure)
}

/// Into the container's cgroup, once the runtime has made and limited it; then into a new
/// cgroup namespace, rooted there, if the spec asks for one: the container sees its own
/// cgroup as "/".
fn enter_cgroup(channel: &Channel, args: &InitArgs) -> Result<(), Message> {
    if args.join_cgroup {
        let files = match channel.recv() {
            Ok(Some((Message::CgroupReady, files))) => files,
            // The runtime failed, and kills the init.
            _ => user_process::exit_now(1),
        };
        step("joining the container's cgroup", cgroups::join_through(&files))?;
    }
    if args.namespaces.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        step("creating the cgroup namespace", nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP))?;
    }
    Ok(())
}

pub(super) fn has_cgroup_mount(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")))
}

/// Where the spec puts them, between the mounts and pivot_root: the runtime's prestart and
/// createRuntime hooks, then the init's createContainer hooks. Those run in the container's
/// namespaces but with the host's `/` still in place (their paths are the host's, as the
/// spec says), as root with the init's full capabilities and no seccomp filter yet. Returns
/// the container's state, which the startContainer hooks get too.
fn run_create_hooks(channel: &Channel, spec: &Spec) -> Result<Value, Message> {
    step("reporting the mounts done", channel.send(&Message::Mounted))?;
    let mut state = match channel.recv() {
        Ok(Some((Message::HooksRan { state }, _))) => state,
        // The runtime's hooks failed, and the runtime kills the init.
        _ => user_process::exit_now(1),
    };
    step(
        "running hooks",
        hooks::run_in_container(spec.hooks().as_ref(), Kind::CreateContainer, &mut state, Status::Creating),
    )?;
    Ok(state)
}

/// After start: the startContainer hooks, then the exec. The hooks run as the process
/// will, with its user, capabilities and seccomp filter (unless no_new_privs leaves the
/// filter to the last step before the exec), as runc runs them: the process is set up
/// before the container reports ready, so that its failures fail create.
fn start_process(
    spec: &Spec,
    process: &Process,
    hook_state: Option<Value>,
    finalized: user_process::Finalized,
) -> Result<Infallible, Message> {
    if let Some(mut state) = hook_state {
        step(
            "running hooks",
            hooks::run_in_container(spec.hooks().as_ref(), Kind::StartContainer, &mut state, Status::Created),
        )?;
    }
    user_process::exec_process(process, finalized)
}
