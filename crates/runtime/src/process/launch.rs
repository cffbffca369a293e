//! The runtime's side of starting a container: checks, cgroup, clone, and the handshake.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::channel::{Channel, ChannelError, ExecFailure, Message};
use super::clone::{clone_child, Cloned};
use super::init;
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
    cgroup: Option<Box<dyn Manager>>,
    reaped: bool,
}

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub status: WaitStatus,
    /// The kernel's OOM killer killed a process in the container.
    pub oom_killed: bool,
}

/// Creates the container described by `spec` (a relative `root.path` is taken from `bundle`):
/// its cgroup with limits, and its init in new namespaces with the rootfs ready. The init
/// waits for [`Container::start`] before it runs any user code.
pub fn launch(spec: &Spec, bundle: &Path) -> Result<Container> {
    check_process(spec)?;
    let rootfs = rootfs_path(spec, bundle)?;
    let flags = namespaces::clone_flags(spec)?;
    let linux = spec.linux().as_ref();
    let cgroup_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .ok_or_else(|| Error::InvalidSpec("linux.cgroupsPath is required".into()))?;
    let cgroup = cgroups::create(&cgroup_path.to_string_lossy())?;
    if let Some(resources) = linux.and_then(|l| l.resources().as_ref()) {
        if let Err(e) = cgroup.apply(resources) {
            let _ = cgroup.destroy();
            return Err(e.into());
        }
    }
    let (parent_end, child_end) = match Channel::pair() {
        Ok(pair) => pair,
        Err(e) => {
            let _ = cgroup.destroy();
            return Err(e.into());
        }
    };

    let (pid, joined_cgroup) = match clone_child(flags, cgroup.clone_target()) {
        Ok(Cloned::Child) => {
            drop(parent_end);
            init::run(child_end, spec, &rootfs, flags)
        }
        Ok(Cloned::Parent { child, joined_cgroup }) => (child, joined_cgroup),
        Err(e) => {
            let _ = cgroup.destroy();
            return Err(e);
        }
    };
    drop(child_end);
    let mut container =
        Container { pid, channel: parent_end, pty_master: None, cgroup: Some(cgroup), reaped: false };
    if !joined_cgroup {
        // The child is setting up its rootfs meanwhile; it waits for Start before user code.
        container.cgroup.as_ref().expect("set above").add_process(pid)?;
    }
    container.pty_master = container.expect_ready()?;
    Ok(container)
}

impl Container {
    /// The init's pid, as seen from the runtime.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The master side of the container's terminal, when its process has one.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Lets the init exec the user's process, and returns once the exec succeeded.
    pub fn start(&mut self) -> Result<()> {
        self.channel.send(&Message::Start)?;
        match self.channel.recv()? {
            None => Ok(()),
            Some((Message::ExecFailed { program, failure }, _)) => Err(match failure {
                ExecFailure::NotFound => Error::ExecNotFound { program },
                ExecFailure::NotExecutable => Error::ExecNotExecutable { program },
                ExecFailure::Other(message) => Error::ExecFailed { program, message },
            }),
            Some((other, _)) => Err(unexpected(other, "the exec's outcome")),
        }
    }

    /// Records how the init ended (the caller reaped it), then removes the cgroup.
    pub fn finish(mut self, status: WaitStatus) -> Result<Exit> {
        self.reaped = true;
        let cgroup = self.cgroup.take().expect("only finish takes the cgroup");
        let oom_killed = cgroup.oom_kills().map(|n| n > 0);
        cgroup.destroy()?;
        Ok(Exit { status, oom_killed: oom_killed? })
    }

    fn expect_ready(&self) -> Result<Option<OwnedFd>> {
        match self.channel.recv()? {
            Some((Message::Ready, fd)) => Ok(fd),
            Some((Message::InitFailed { step, message }, _)) => Err(Error::Init { step, message }),
            Some((other, _)) => Err(unexpected(other, "Ready")),
            None => Err(ChannelError::Closed { expected: "Ready" }.into()),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.destroy();
        }
    }
}

fn unexpected(got: Message, expected: &'static str) -> Error {
    ChannelError::Unexpected { got: Box::new(got), expected }.into()
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
