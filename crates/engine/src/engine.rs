//! Where rocker keeps its images and containers, and how it reaches registries.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rocker_image::credentials::Credentials;
use rocker_image::{registry, Progress, PullOptions, Reference, Store};

use crate::error::EngineError;

/// Shared by every command: `--root`, the credentials file, `--insecure-registry`.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Images under `root/image`, containers under `root/containers`.
    pub root: PathBuf,
    pub auth_file: PathBuf,
    pub insecure_registries: Vec<String>,
}

impl Engine {
    pub fn store(&self) -> Result<Store, EngineError> {
        self.restricted(&self.root, 0o711)?;
        Ok(Store::open(&self.root.join("image"))?)
    }

    /// `containers/`, made (or tightened to) 0700: containers' upper directories hold what
    /// they wrote as root, setuid files and device nodes included, out of host users' reach.
    /// Its callers have opened the store, which made the root.
    pub fn containers_dir(&self) -> Result<PathBuf, EngineError> {
        let dir = self.root.join("containers");
        self.restricted(&dir, 0o700)?;
        Ok(dir)
    }

    fn restricted(&self, dir: &Path, mode: u32) -> Result<(), EngineError> {
        fs::create_dir_all(dir).map_err(EngineError::io("creating", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(EngineError::io("restricting", dir))
    }

    pub fn credentials(&self) -> Credentials {
        Credentials::new(self.auth_file.clone())
    }

    pub fn pull_options(
        &self,
        reference: &Reference,
        platform: Option<String>,
        progress: Progress,
    ) -> Result<PullOptions, EngineError> {
        let credentials = self.credentials().get(&reference.registry)?;
        Ok(PullOptions {
            registry: registry::Options {
                insecure_registries: self.insecure_registries.clone(),
                credentials,
            },
            platform,
            progress,
        })
    }
}

pub fn parse_reference(s: &str) -> Result<Reference, EngineError> {
    Ok(Reference::from_str(s)?)
}
