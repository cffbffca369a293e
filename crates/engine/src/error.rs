//! The engine's error, and the exit code Docker gives each kind of failure.

use std::path::{Path, PathBuf};

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

/// The image crate's errors become the engine's through its aggregate, so `?` takes them.
macro_rules! from_image_errors {
    ($($kind:ty),*) => {
        $(impl From<$kind> for EngineError {
            fn from(e: $kind) -> EngineError {
                EngineError::Image(e.into())
            }
        })*
    };
}

from_image_errors!(
    rocker_image::reference::ReferenceError,
    rocker_image::registry::RegistryError,
    rocker_image::store::StoreError,
    rocker_image::pull::PullError,
    rocker_image::credentials::CredentialsError,
    rocker_image::overlay::OverlayError,
    rocker_image::import::ImportError,
    rocker_image::archive::ArchiveError
);

impl EngineError {
    /// What a failed file operation on `path` becomes.
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> EngineError + 'a {
        move |source| EngineError::Io { what, path: path.to_path_buf(), source }
    }

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
