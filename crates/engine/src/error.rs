//! The engine's error, and the exit code Docker gives each kind of failure.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Runtime(#[from] rocker_runtime::Error),
    #[error(transparent)]
    Image(#[from] rocker_image::Error),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> EngineError {
        move |source| EngineError::Sys { what, source }
    }

    /// Docker's convention: 127 when the command is not found, 126 when it cannot be
    /// invoked, 125 when the engine itself failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Runtime(rocker_runtime::Error::ExecNotFound { .. }) => 127,
            EngineError::Runtime(rocker_runtime::Error::ExecNotExecutable { .. })
            | EngineError::Runtime(rocker_runtime::Error::ExecFailed { .. }) => 126,
            _ => 125,
        }
    }
}
