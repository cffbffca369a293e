//! Steps after pivot_root: masked paths, read-only paths, a read-only root.
//! Here `/` is already the container's root, so paths resolve inside it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::RootfsError;

/// Hides each path: /dev/null bound over a file, a read-only empty tmpfs over a directory.
pub fn mask(paths: &[String]) -> Result<(), RootfsError> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = open_null_device()?;
    let null_path = PathBuf::from(format!("/proc/self/fd/{}", null.as_raw_fd()));
    for p in paths {
        let path = Path::new(p);
        // Binding a file onto a directory fails with ENOTDIR: then it is a directory.
        let res = match mount(Some(&null_path), path, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
            Err(Errno::ENOTDIR) => {
                mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k"))
            }
            r => r,
        };
        match res {
            // A path the kernel or image doesn't have needs no hiding.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(RootfsError::sys("mask", path, e)),
        }
    }
    Ok(())
}

/// The container's /dev/null, checked to be the null device itself: a symlink or another
/// node there would turn every masked path into an alias of it (CVE-2025-31133).
fn open_null_device() -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| RootfsError::sys("open", path, e))?;
    let st = fstat(&fd).map_err(|e| RootfsError::sys("stat", path, e))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || st.st_rdev != makedev(1, 3) {
        return Err(RootfsError::Unsupported(
            "/dev/null in the container is not the null device (1:3); refusing to mask paths with it".into(),
        ));
    }
    Ok(fd)
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

/// Remounts the mount at `path` read-only, keeping the flags it already has (a remount
/// replaces them all: dropping nosuid or nodev would re-enable setuid binaries or devices).
pub fn remount_readonly(path: &Path, extra: MsFlags) -> Result<(), RootfsError> {
    let current = statvfs(path).map_err(|e| RootfsError::sys("statvfs", path, e))?.flags();
    let kept = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| current.contains(*st))
    .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms);
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept | extra,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("remount read-only", path, e))
}
