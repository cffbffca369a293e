//! `rocker run` in the foreground: spec, launch, supervise, report.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::unistd::isatty;
use rocker_runtime::console;
use rocker_runtime::process::{clone_init, exit_code, run_in_foreground, LaunchOptions, StartSignal};
use rocker_runtime::signals;

use crate::container_root::ContainerRoot;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::images::{self, PullPolicy};
use crate::{id, spec, user};
use rocker_image::Progress;

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `--rootfs DIR`: a directory used as it is.
    Rootfs(PathBuf),
    /// An image, run on an overlay of its layers.
    Image { name: String, pull: PullPolicy },
}

/// What the user asked `rocker run` for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub source: Source,
    /// The words after the image (or all of them with `--rootfs`): they replace the image's Cmd.
    pub command: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd); "" clears it.
    pub entrypoint: Option<String>,
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

pub fn run(engine: &Engine, req: &RunRequest) -> Result<Outcome, EngineError> {
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
    let (root, rootfs, config) = match &req.source {
        Source::Rootfs(dir) => (None, dir.clone(), None),
        Source::Image { name, pull } => {
            let store = engine.store()?;
            // Shared from the lookup to the mount: `rmi` cannot delete the image in between.
            let store_lock = store.lock(false)?;
            let image = images::for_run(engine, &store, name, *pull, Progress::for_stderr(false))?;
            let config = images::config(&store, &image)?;
            let root = ContainerRoot::create(engine, &store, &image, &id)?;
            drop(store_lock);
            let rootfs = root.rootfs().to_path_buf();
            (Some(root), rootfs, config.config().clone())
        }
    };
    let config = config.unwrap_or_default();
    let image_user = config.user().clone();
    let (user, home) = user::resolve(req.user.as_deref().or(image_user.as_deref()), &rootfs)?;
    let spec = spec::build(
        req,
        spec::Context {
            id: &id,
            hostname: &hostname,
            console_size,
            rootfs: &rootfs,
            args: command_line(req, config.entrypoint().as_deref(), config.cmd().as_deref())?,
            image_env: config.env().as_deref().unwrap_or_default(),
            image_workdir: config.working_dir().as_deref(),
            home: &home,
            user,
        },
    )?;
    if !req.interactive {
        detach_stdin()?;
    }
    let bundle = std::env::current_dir().map_err(EngineError::io("reading", Path::new(".")))?;

    let signals = signals::block()?;
    // No record: rocker keeps no state of a foreground container, so one killed midway
    // leaves its cgroup behind (unlike rocker-runtime's create, which records it first).
    let launch = LaunchOptions { start: StartSignal::Channel, preserve_fds: 0 };
    let mut container = clone_init(&spec, &bundle, launch, &mut |_, _| Ok(()))?;
    // Without a terminal to set up, nothing is left to do, or to fail, between the init's
    // Ready and its start: the go-ahead goes with the setup (no hooks to answer on the way).
    if !req.tty {
        container.queue_start();
    }
    container.wait_ready(None)?;
    let exit = run_in_foreground(container, &signals, req.interactive.then_some(stdin))?;
    let mut warnings: Vec<String> = exit.cleanup_errors.iter().map(|e| e.to_string()).collect();
    if let Some(Err(e)) = root.map(ContainerRoot::remove) {
        warnings.push(crate::error_chain(&e));
    }
    Ok(Outcome {
        short_id: id::short(&id).to_string(),
        exit_code: exit_code(exit.status),
        oom_killed: exit.oom_killed,
        warnings,
    })
}

/// Docker's rule: `--entrypoint` replaces the image's Entrypoint and drops its Cmd; words
/// after the image replace Cmd; the process runs Entrypoint followed by Cmd.
fn command_line(
    req: &RunRequest,
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
) -> Result<Vec<String>, EngineError> {
    let entrypoint: Vec<String> = match &req.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => entrypoint.unwrap_or_default().to_vec(),
    };
    let cmd = match (&req.entrypoint, req.command.is_empty()) {
        (_, false) => req.command.clone(),
        (Some(_), true) => vec![],
        (None, true) => cmd.unwrap_or_default().to_vec(),
    };
    let args = [entrypoint, cmd].concat();
    if args.is_empty() {
        return Err(EngineError::InvalidArgument(
            "no command specified: give one after the image, or use an image with an Entrypoint or Cmd"
                .into(),
        ));
    }
    Ok(args)
}

/// Without `-i` the container reads nothing, as with Docker: its stdin is /dev/null.
fn detach_stdin() -> Result<(), EngineError> {
    let null =
        std::fs::File::open("/dev/null").map_err(EngineError::io("opening", Path::new("/dev/null")))?;
    nix::unistd::dup2_stdin(null).map_err(EngineError::sys("redirecting stdin"))
}
