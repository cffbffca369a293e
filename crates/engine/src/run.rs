//! `rocker run` in the foreground: spec, launch, supervise, report.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{isatty, Pid};
use rocker_runtime::process::{launch, Container};

use crate::console::{self, RawMode};
use crate::error::EngineError;
use crate::signals::{self, Signals};
use crate::{id, spec};

/// What the user asked `rocker run` for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub rootfs: PathBuf,
    pub command: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub limits: Limits,
    /// `--cgroup-parent`: absolute from the hierarchy roots, relative from rocker's own cgroup.
    pub cgroup_parent: String,
}

#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub cpus: Option<f64>,
    pub memory: Option<u64>,
    pub pids_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
}

/// How a container run ended.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    /// The container's exit code, or 128+N when signal N killed it (Docker's convention).
    pub exit_code: i32,
    pub oom_killed: bool,
}

pub fn run(req: &RunRequest) -> Result<Outcome, EngineError> {
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    let stdin_is_tty = isatty(stdin).unwrap_or(false);
    if req.tty && req.interactive && !stdin_is_tty {
        return Err(EngineError::InvalidArgument(
            "the input device is not a TTY: drop -t, or run rocker from a terminal".into(),
        ));
    }
    let id = id::new_id()?;
    let hostname = req.hostname.clone().unwrap_or_else(|| id::short(&id).to_string());
    let console_size = if req.tty { console::size(stdin) } else { None };
    let spec = spec::build(req, &spec::Context { id: &id, hostname: &hostname, console_size })?;
    if !req.interactive {
        detach_stdin()?;
    }
    let bundle = std::env::current_dir().map_err(|source| EngineError::Io {
        what: "reading",
        path: ".".into(),
        source,
    })?;

    let signals = signals::block()?;
    let mut container = launch(&spec, &bundle)?;
    let pty = container.take_pty_master();
    let _raw = match (&pty, req.interactive && stdin_is_tty) {
        (Some(_), true) => Some(RawMode::enable(stdin)?),
        _ => None,
    };
    container.start()?;
    let status = supervise(&container, &signals, pty, req.interactive.then_some(stdin))?;
    let exit = container.finish(status)?;
    Ok(Outcome { id, exit_code: exit_code(exit.status), oom_killed: exit.oom_killed })
}

/// Without `-i` the container reads nothing, as with Docker: its stdin is /dev/null.
fn detach_stdin() -> Result<(), EngineError> {
    let null = std::fs::File::open("/dev/null").map_err(|source| EngineError::Io {
        what: "opening",
        path: "/dev/null".into(),
        source,
    })?;
    nix::unistd::dup2_stdin(null).map_err(EngineError::sys("redirecting stdin"))
}

/// Waits for the container's init to exit while forwarding signals and, with a pty,
/// copying the terminal both ways. Returns once the init is reaped and its output drained.
fn supervise(
    container: &Container,
    signals: &Signals,
    mut pty: Option<OwnedFd>,
    mut stdin: Option<BorrowedFd>,
) -> Result<WaitStatus, EngineError> {
    let pid = container.pid();
    let stdout = std::io::stdout();
    let mut status = None;
    loop {
        if let (Some(done), None) = (status, &pty) {
            return Ok(done);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(p) = &pty {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            if let Some(s) = stdin {
                fds.push(PollFd::new(s, PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => r.map_err(EngineError::sys("poll"))?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        if ready[0] {
            while let Some(sig) = signals.next() {
                match sig {
                    Signal::SIGCHLD => status = status.or(reap(pid)?),
                    Signal::SIGWINCH => {
                        if let Some(p) = &pty {
                            console::copy_size(std::io::stdin().as_fd(), p.as_fd());
                        }
                    }
                    // The init may be gone already; then there is nothing to forward to.
                    other => drop(kill(pid, other)),
                }
            }
        }
        if let Some(p) = pty.as_ref().filter(|_| ready.get(1) == Some(&true)) {
            // Output the caller can't take (a closed pipe) is dropped, not fatal.
            if !console::pump(p.as_fd(), stdout.as_fd()).unwrap_or(true) {
                pty = None;
            }
        }
        if let (Some(p), Some(s)) = (&pty, stdin.filter(|_| ready.get(2) == Some(&true))) {
            if !console::pump(s, p.as_fd()).unwrap_or(false) {
                stdin = None;
            }
        }
    }
}

fn reap(pid: Pid) -> Result<Option<WaitStatus>, EngineError> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Ok(Some(s)),
        Ok(_) => Ok(None),
        Err(e) => Err(EngineError::Sys { what: "waiting for the container", source: e }),
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 125,
    }
}
