//! The runtime crate's error: each variant names what failed and, where it helps, what to do.

use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::process::channel::ChannelError;
use crate::state::{StateError, Status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    #[error("cannot clone a container init: the runtime must be single-threaded, but {0}")]
    NotSingleThreaded(String),
    #[error("rootfs {path}: {reason}")]
    Rootfs { path: PathBuf, reason: String },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    #[error("cannot {op} container {id}: it is {status}")]
    InvalidState { id: String, op: &'static str, status: Status },
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("{op}: the child process doing it failed: {why}")]
    Child { op: &'static str, why: String },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    /// runc's words: clients may look for them.
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecInPaused,
    #[error("the container's init has not exited yet")]
    StillRunning,
    #[error("container init failed while {step}: {message}")]
    Init { step: String, message: String },
    #[error("exec {program:?}: {}", if program.contains('/') { "no such file or directory" } else { "executable file not found in $PATH" })]
    ExecNotFound { program: String },
    #[error("exec {program:?}: permission denied (not an executable file)")]
    ExecNotExecutable { program: String },
    #[error("exec {program:?}: {message}")]
    ExecFailed { program: String, message: String },
}

impl Error {
    pub(crate) fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |source| Error::Sys { op, source }
    }
}

/// An error and its causes on one line, "outer: inner: innermost", skipping a cause whose
/// text the outer message already ends with.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
