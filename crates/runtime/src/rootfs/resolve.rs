//! Paths from a spec or an image resolved inside the rootfs, never by string joining.
//!
//! `openat2(RESOLVE_IN_ROOT)` makes the kernel treat the rootfs as `/` while it walks the
//! path, so a symlink in the rootfs (say `/proc -> /`, or `../../etc`) cannot send a mount
//! or a new device node to the host.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};

use super::RootfsError;

fn openat2_in_root(root: BorrowedFd, path: &Path, flags: libc::c_int) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel.as_path() };
    let c = CString::new(rel.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers, for which all-zero is valid (and the kernel's default).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: `how` is a valid open_how of the size passed, `c` a NUL-terminated path;
        // the returned descriptor is new and owned by no one else.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `path` without its leading `/`, with `.` components dropped: relative to the rootfs.
fn relative(path: &Path) -> PathBuf {
    path.components().filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir)).collect()
}

/// Opens an existing path inside the rootfs as an `O_PATH` descriptor.
pub fn open(root: BorrowedFd, path: &Path) -> Result<OwnedFd, RootfsError> {
    openat2_in_root(root, path, libc::O_PATH).map_err(|source| RootfsError::sys("open", path, source))
}

/// Opens directory `path` inside the rootfs, creating it and its parents (mode 0755) if missing.
pub fn mkdir_all(root: BorrowedFd, path: &Path) -> Result<OwnedFd, RootfsError> {
    match openat2_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(|e| RootfsError::sys("open directory", path, e)),
    }
    let (parent, name) = split(path)?;
    let parent_fd = mkdir_all(root, parent)?;
    match mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(RootfsError::sys("mkdir", path, e)),
    }
    openat2_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| RootfsError::sys("open directory", path, e))
}

/// Opens file `path` inside the rootfs, creating an empty one (and its parents) if missing:
/// the mount point for a file bind mount or a masked file.
pub fn touch(root: BorrowedFd, path: &Path) -> Result<OwnedFd, RootfsError> {
    match openat2_in_root(root, path, libc::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(|e| RootfsError::sys("open", path, e)),
    }
    let (parent, name) = split(path)?;
    let parent_fd = mkdir_all(root, parent)?;
    match mknodat(&parent_fd, name, SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(RootfsError::sys("create", path, e)),
    }
    open(root, path)
}

/// Reads a small regular file of a root filesystem as the container would see it (an image's
/// /etc/passwd, say): a symlink in the image cannot make the host's file be read instead, a
/// FIFO cannot block the caller (O_NONBLOCK, then a regular-file check) nor a device node be
/// read on the host, and at most `limit` bytes are read.
pub fn read_in_root(root: &Path, path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let root = std::fs::File::open(root)?;
    let file = std::fs::File::from(openat2_in_root(root.as_fd(), path, libc::O_RDONLY | libc::O_NONBLOCK)?);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), RootfsError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(RootfsError::sys("resolve", path, Errno::EINVAL)),
    }
}

/// The `/proc/self/fd/N` name of a descriptor, which mount(2) accepts as a target: the mount
/// lands exactly where the safe walk ended, not where a re-walk of a string might.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_drops_root_and_dots() {
        assert_eq!(relative(Path::new("/dev/./pts")), PathBuf::from("dev/pts"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }
}
