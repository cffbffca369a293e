//! Where rocker keeps its images and containers, and how it reaches registries.

use std::path::PathBuf;
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
        Ok(Store::open(&self.root.join("image")).map_err(rocker_image::Error::from)?)
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
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
        let credentials = self.credentials().get(&reference.registry).map_err(rocker_image::Error::from)?;
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
    Ok(Reference::from_str(s).map_err(rocker_image::Error::from)?)
}
