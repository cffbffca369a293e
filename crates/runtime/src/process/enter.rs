//! Exec into a running container: a new process in the container's namespaces and cgroup,
//! made like the init's own process from the spec's `process`.
//!
//! The runtime joins the container's PID namespace itself (setns of a PID namespace only
//! affects the caller's future children), then clones the child, which joins the cgroup,
//! then the other namespaces (mount last, as it changes what paths mean), and from there
//! follows the init's protocol: Ready (with a pty), Start, exec.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxSeccomp, Process};

use super::channel::{Channel, Message};
use super::clone::{clone_child, Cloned};
use super::launch::Container;
use super::user_process::{self, step, wait_for_start};
use super::StartSignal;
use crate::cgroups::Manager;
use crate::error::{Error, Result};
use crate::namespaces::Plan;

/// The namespaces joined by the child, in order: the user namespace first (it owns the
/// others, and joining it gives the capabilities to join them), the mount namespace last.
const JOINED: [(CloneFlags, &str); 6] = [
    (CloneFlags::CLONE_NEWUSER, "user"),
    (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    (CloneFlags::CLONE_NEWIPC, "ipc"),
    (CloneFlags::CLONE_NEWUTS, "uts"),
    (CloneFlags::CLONE_NEWNET, "net"),
    (CloneFlags::CLONE_NEWNS, "mnt"),
];

/// Starts `process` in the running container whose init is `init` and which has the
/// namespaces of `plan`; the process waits for [`Container::start`]. The container's
/// seccomp filter applies to it too, as with runc.
pub fn enter(
    init: Pid,
    plan: &Plan,
    cgroup: Box<dyn Manager>,
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
    preserve_fds: u32,
) -> Result<Container> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidSpec("process.args is empty: give a command to run".into()));
    }
    let open_ns = |name: &str| {
        crate::namespaces::of_process(Some(init), name).map_err(Error::sys("open the container's namespace"))
    };
    let namespaces = plan.all();
    // A mount namespace joined by path is not the container's root: the init chrooted into
    // its rootfs there (see rootfs::switch_root), and so does this process.
    let init_root = match plan.joined(CloneFlags::CLONE_NEWNS) {
        Some(_) => Some(
            open(
                format!("/proc/{init}/root").as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(Error::sys("open the container's root"))?,
        ),
        None => None,
    };
    let joined: Vec<(CloneFlags, &str, OwnedFd)> = JOINED
        .iter()
        .filter(|(flag, _)| namespaces.contains(*flag))
        .map(|&(flag, name)| Ok((flag, name, open_ns(name)?)))
        .collect::<Result<_>>()?;
    if namespaces.contains(CloneFlags::CLONE_NEWPID) {
        setns(open_ns("pid")?, CloneFlags::CLONE_NEWPID)
            .map_err(Error::sys("join the container's PID namespace"))?;
    }
    let (parent_end, child_end) = Channel::pair()?;
    match clone_child(CloneFlags::empty(), cgroup.clone_target())? {
        Cloned::Child { in_cgroup } => {
            drop(parent_end);
            let join = (!in_cgroup).then_some(cgroup.as_ref());
            user_process::run_child(&child_end, || {
                child(&child_end, process, seccomp, preserve_fds, &joined, init_root.as_ref(), join)
            })
        }
        Cloned::Parent { child, .. } => {
            drop(child_end);
            Container::ready(child, parent_end)
        }
    }
}

fn child(
    channel: &Channel,
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
    preserve_fds: u32,
    joined: &[(CloneFlags, &str, OwnedFd)],
    init_root: Option<&OwnedFd>,
    join: Option<&dyn Manager>,
) -> Result<Infallible, Message> {
    if let Some(cgroup) = join {
        // While the host's /sys/fs/cgroup is still what that path means.
        step("joining the container's cgroup", cgroup.join_self())?;
    }
    for (flag, name, fd) in joined {
        step(&format!("joining the container's {name} namespace"), setns(fd.as_fd(), *flag))?;
    }
    if let Some(root) = init_root {
        step(
            "entering the container's root",
            nix::unistd::fchdir(root).and_then(|()| nix::unistd::chroot(".")),
        )?;
    }
    let prepared = user_process::prepare(process, seccomp, preserve_fds)?;
    let finalized = user_process::finalize(process, prepared)?;
    let master = finalized.pty_master.as_ref().map(|m| m.as_raw_fd());
    step("reporting readiness", channel.send_with_fds(&Message::Ready, master.as_slice()))?;
    wait_for_start(channel, &StartSignal::Channel);
    user_process::exec_process(process, finalized)
}
