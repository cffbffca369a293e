//! The spec's namespaces as clone flags, and the one thing a fresh network namespace needs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use std::collections::HashMap;
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, LinuxTimeOffset, Spec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The spec's namespaces: those to create with clone, and those to join by path.
pub struct Plan {
    pub new: CloneFlags,
    /// A new time namespace: made by the runtime for its next child, not by clone (its clock
    /// offsets can only be set before a process is in it).
    pub new_time: bool,
    /// Open descriptors of the namespaces to join, with their kind.
    pub join: Vec<(CloneFlags, OwnedFd)>,
}

impl Plan {
    /// Every kind of namespace the container's processes are in apart from the runtime's.
    pub fn all(&self) -> CloneFlags {
        self.join.iter().fold(self.new, |acc, (flag, _)| acc | *flag)
    }

    /// The namespace of kind `flag` to join, if the spec names one by path.
    pub fn joined(&self, flag: CloneFlags) -> Option<&OwnedFd> {
        self.join.iter().find(|(f, _)| *f == flag).map(|(_, fd)| fd)
    }

    /// Whether the container's processes are in a user namespace of their own or joined.
    pub fn in_user_namespace(&self) -> bool {
        self.all().contains(CloneFlags::CLONE_NEWUSER)
    }

    /// The PID namespace joined by path that the runtime joins for its child, the init. With
    /// a joined user namespace the init is cloned by a first child, which joins it instead:
    /// that child then reports the init's pid as the runtime sees it, its own PID namespace
    /// being the runtime's (see `init::run_in_joined_user_namespace`).
    fn pid_joined_by_runtime(&self) -> Option<&OwnedFd> {
        match self.joined(CloneFlags::CLONE_NEWUSER) {
            Some(_) => None,
            None => self.joined(CloneFlags::CLONE_NEWPID),
        }
    }
}

pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut plan = Plan { new: CloneFlags::empty(), new_time: false, join: Vec::new() };
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_deref()).unwrap_or_default();
    for ns in namespaces {
        let flag = match ns.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Time if ns.path().is_none() => {
                plan.new_time = true;
                continue;
            }
            other => return Err(Error::InvalidSpec(format!("the {other:?} namespace is not supported yet"))),
        };
        match ns.path() {
            None => plan.new |= flag,
            Some(path) => {
                let fd = nix::fcntl::open(
                    path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| Error::InvalidSpec(format!("namespace path {}: {e}", path.display())))?;
                plan.join.push((flag, fd));
            }
        }
    }
    let linux = spec.linux().as_ref();
    let mapped = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            && l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    // A joined user namespace has its maps already; the spec may repeat them (containerd does).
    if plan.new.contains(CloneFlags::CLONE_NEWUSER) != mapped
        && plan.joined(CloneFlags::CLONE_NEWUSER).is_none()
    {
        return Err(Error::InvalidSpec(
            "a new user namespace needs linux.uidMappings and linux.gidMappings, and they need one".into(),
        ));
    }
    if !plan.all().contains(CloneFlags::CLONE_NEWNS) {
        return Err(Error::InvalidSpec(
            "a mount namespace is required: add {\"type\": \"mount\"} to linux.namespaces".into(),
        ));
    }
    Ok(plan)
}

/// A namespace joined by path, for a later command to find again: the path, and the
/// namespace (device and inode) it named when the container was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedPath {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl JoinedPath {
    /// The spec's mount namespace, when it is joined by path.
    pub fn mount_of(spec: &Spec) -> Option<JoinedPath> {
        let namespaces = spec.linux().as_ref()?.namespaces().as_ref()?;
        let path = namespaces.iter().find(|n| n.typ() == LinuxNamespaceType::Mount)?.path().as_ref()?;
        let st = nix::sys::stat::stat(path).ok()?;
        Some(JoinedPath { path: path.clone(), dev: st.st_dev, ino: st.st_ino })
    }

    /// The namespace, if the path still names it (None once it is gone: its last process
    /// exited, or the pid in a /proc path is another process's now).
    pub fn reopen(&self) -> Option<OwnedFd> {
        let fd = nix::fcntl::open(
            &self.path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        let st = nix::sys::stat::fstat(&fd).ok()?;
        (st.st_dev == self.dev && st.st_ino == self.ino).then_some(fd)
    }
}

const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// The runtime's own PID and time namespaces for children, while its next child is to land in
/// others; `restore` puts them back (the hooks it spawns later run in the runtime's own).
pub struct ForChildren {
    restore: Vec<(CloneFlags, OwnedFd)>,
}

/// Points the runtime's next child at the container's PID namespace (joined by path) and a
/// new time namespace with the spec's clock offsets.
pub fn for_children(plan: &Plan, offsets: Option<&HashMap<String, LinuxTimeOffset>>) -> Result<ForChildren> {
    let own = |name: &str| of_process(None, name).map_err(Error::sys("open the runtime's own namespace"));
    let mut guard = ForChildren { restore: Vec::new() };
    if let Some(pid_ns) = plan.pid_joined_by_runtime() {
        guard.restore.push((CloneFlags::CLONE_NEWPID, own("pid")?));
        setns(pid_ns, CloneFlags::CLONE_NEWPID).map_err(Error::sys("join the PID namespace"))?;
    }
    if plan.new_time {
        guard.restore.push((CLONE_NEWTIME, own("time")?));
        unshare(CLONE_NEWTIME).map_err(Error::sys("unshare the time namespace"))?;
        let lines: String = offsets
            .iter()
            .flat_map(|o| o.iter())
            .map(|(clock, o)| format!("{clock} {} {}\n", o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)))
            .collect();
        if !lines.is_empty() {
            std::fs::write("/proc/self/timens_offsets", lines)
                .map_err(|e| Error::InvalidSpec(format!("linux.timeOffsets: {e}")))?;
        }
    }
    Ok(guard)
}

impl ForChildren {
    pub fn restore(self) -> Result<()> {
        for (flag, fd) in self.restore {
            setns(fd, flag).map_err(Error::sys("return to the runtime's own namespace"))?;
        }
        Ok(())
    }
}

/// The namespace of kind `name` (as /proc/PID/ns names them) of process `pid`, or of the
/// calling one.
pub(crate) fn of_process(pid: Option<nix::unistd::Pid>, name: &str) -> nix::Result<OwnedFd> {
    let pid = pid.map_or_else(|| "self".to_string(), |p| p.to_string());
    nix::fcntl::open(
        format!("/proc/{pid}/ns/{name}").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// Writes the user namespace's maps for `pid` (the runtime does it: writing a map that
/// names other host ids needs privileges the child does not have in the parent namespace).
pub fn write_id_maps(pid: nix::unistd::Pid, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("plan checked the mappings");
    for (file, maps) in [("uid_map", linux.uid_mappings()), ("gid_map", linux.gid_mappings())] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        std::fs::write(format!("/proc/{pid}/{file}"), text)
            .map_err(|e| Error::InvalidSpec(format!("writing the user namespace's {file}: {e}")))?;
    }
    Ok(())
}

/// Brings `lo` up in the calling process's network namespace, as Docker's `--network none`
/// has it.
pub fn loopback_up() -> nix::Result<()> {
    // SAFETY: plain socket(2); the descriptor is new and moved straight into an OwnedFd.
    let sock = unsafe {
        let fd = Errno::result(libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0))?;
        OwnedFd::from_raw_fd(fd)
    };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, a valid ifreq that outlives the calls.
    unsafe {
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}

/// Sets the NIS domain name in the init's new UTS namespace.
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: setdomainname reads `len` bytes from a valid pointer.
    Errno::result(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}
