//! A container's root filesystem: the image's layers as overlayfs lowerdirs, with an upper and
//! a work directory of the container's own, so its changes never touch the image.

use std::path::{Path, PathBuf};

use std::fs::File;

use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, fchdir};

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

/// Mounts `lowers` (topmost first) + `upper` + `work` on `target`. Lower directories that
/// share a parent (the store's `layers/`) are named relative to it, from inside it: 65 bytes
/// a layer instead of ~95 in the one page of options, so images of about 55 layers mount
/// (Docker reaches 128 through short symlinks). The working directory is restored before
/// returning.
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
    let parent =
        lowers.first().and_then(|l| l.parent()).filter(|p| lowers.iter().all(|l| l.parent() == Some(*p)));
    let names: Vec<&Path> = match parent {
        Some(_) => lowers.iter().filter_map(|l| l.file_name()).map(Path::new).collect(),
        None => lowers.iter().map(PathBuf::as_path).collect(),
    };
    let lower = names.iter().map(|p| checked(p)).collect::<Result<Vec<_>, _>>()?.join(":");
    let options = format!("lowerdir={lower},upperdir={},workdir={}", checked(upper)?, checked(work)?);
    if options.len() > OPTIONS_MAX {
        return Err(OverlayError::TooManyLayers { layers: lowers.len(), len: options.len() });
    }
    let mount_err =
        |source| OverlayError::Mount { target: target.to_path_buf(), lower: lower.clone(), source };
    let Some(parent) = parent else {
        return mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
            .map_err(mount_err);
    };
    let back = File::open(".")
        .map_err(|e| mount_err(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    chdir(parent).map_err(mount_err)?;
    let mounted = mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options.as_str()));
    fchdir(&back).map_err(mount_err)?;
    mounted.map_err(mount_err)
}
