//! `rocker run` in the foreground: spec, launch, supervise, report.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::unistd::isatty;
use rocker_runtime::console;
use rocker_runtime::process::{exit_code, launch, run_in_foreground, LaunchOptions, StartSignal};
use rocker_runtime::signals;

use crate::error::EngineError;
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
    /// The default seccomp profile (off with `--security-opt seccomp=unconfined`).
    pub seccomp: bool,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `-u uid[:gid]`.
    pub user: Option<String>,
    /// `--cap-add` / `--cap-drop`: capability names (`NET_ADMIN`, `CAP_CHOWN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
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
    pub short_id: String,
    /// The container's exit code, or 128+N when signal N killed it (Docker's convention).
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Cleanup that failed after the container ended (its exit code still stands).
    pub warnings: Vec<String>,
}

pub fn run(req: &RunRequest) -> Result<Outcome, EngineError> {
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    let stdout = std::io::stdout();
    let stdout = stdout.as_fd();
    let stdin_is_tty = isatty(stdin).unwrap_or(false);
    if req.tty && req.interactive && !stdin_is_tty {
        return Err(EngineError::InvalidArgument(
            "the input device is not a TTY: drop -t, or run rocker from a terminal".into(),
        ));
    }
    let id = id::new_id()?;
    let hostname = req.hostname.clone().unwrap_or_else(|| id::short(&id).to_string());
    // The window is the terminal rocker writes to; stdin may be /dev/null (-t without -i).
    let console_size = if req.tty { console::size(stdout) } else { None };
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
    let container = launch(&spec, &bundle, LaunchOptions { start: StartSignal::Channel, preserve_fds: 0 })?;
    let exit = run_in_foreground(container, &signals, req.interactive.then_some(stdin))?;
    Ok(Outcome {
        short_id: id::short(&id).to_string(),
        exit_code: exit_code(exit.status),
        oom_killed: exit.oom_killed,
        warnings: exit.cleanup_errors.iter().map(|e| e.to_string()).collect(),
    })
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
