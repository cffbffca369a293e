//! Steps after pivot_root: masked paths, read-only paths, a read-only root, propagation.
//! Here `/` is already the container's root, so paths resolve inside it.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::RootfsError;

/// Hides each path: a read-only empty tmpfs over a directory, /dev/null over anything else.
pub fn mask(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let path = Path::new(p);
        let res = if path.is_dir() {
            mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k"))
        } else {
            mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        };
        match res {
            // A path the kernel or image doesn't have needs no hiding.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(RootfsError::sys("mask", path, e)),
        }
    }
    Ok(())
}

/// Makes each path read-only with a bind mount of itself.
pub fn make_readonly(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let path = Path::new(p);
        match mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(RootfsError::sys("bind mount", path, e)),
        }
        remount_readonly(path, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
    }
    Ok(())
}

pub fn remount_readonly(path: &Path, extra: MsFlags) -> Result<(), RootfsError> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("remount read-only", path, e))
}
