//! A container's root filesystem: the image's layers as overlayfs lowerdirs, with an upper and
//! a work directory of the container's own, so its changes never touch the image.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("path {0} holds a ':' or ',', which overlayfs mount options cannot carry")]
    BadPath(PathBuf),
    #[error("the image's {layers} layers make mount options longer than the kernel's page ({len} bytes)")]
    TooManyLayers { layers: usize, len: usize },
    #[error("mounting the overlay on {target}: {source} (lowerdir={lower})")]
    Mount {
        target: PathBuf,
        lower: String,
        #[source]
        source: nix::Error,
    },
}

/// The kernel copies mount options into one page.
const OPTIONS_MAX: usize = 4095;

/// Mounts `lowers` (topmost first) + `upper` + `work` on `target`.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), OverlayError> {
    let checked = |p: &Path| -> Result<String, OverlayError> {
        let s = p.to_string_lossy();
        if s.contains([':', ',']) {
            return Err(OverlayError::BadPath(p.to_path_buf()));
        }
        Ok(s.into_owned())
    };
    let lower = lowers.iter().map(|p| checked(p)).collect::<Result<Vec<_>, _>>()?.join(":");
    let options = format!("lowerdir={lower},upperdir={},workdir={}", checked(upper)?, checked(work)?);
    if options.len() > OPTIONS_MAX {
        return Err(OverlayError::TooManyLayers { layers: lowers.len(), len: options.len() });
    }
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|source| OverlayError::Mount { target: target.to_path_buf(), lower, source })
}
