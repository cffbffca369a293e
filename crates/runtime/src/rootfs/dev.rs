//! The container's /dev: the device nodes every container gets, the spec's devices, and
//! the standard symlinks.

use std::ffi::OsStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::{resolve, RootfsError};

/// The devices the OCI spec requires in every container: (path, major, minor).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 6] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
    ("/proc/kcore", "/dev/core"),
];

/// Creates the default devices (unless the spec gives its own node at that path), then the
/// spec's devices, then the symlinks. Runs before pivot_root, with the umask cleared.
pub fn populate(root: BorrowedFd, devices: &[LinuxDevice]) -> Result<(), RootfsError> {
    let dev = resolve::mkdir_all(root, Path::new("/dev"))?;
    for (path, major, minor) in DEFAULT_DEVICES {
        if !devices.iter().any(|d| d.path() == Path::new(path)) {
            let name = Path::new(path).file_name().expect("constant has a file name");
            create_node(
                &dev,
                name,
                Path::new(path),
                SFlag::S_IFCHR,
                makedev(major, minor),
                0o666,
                (None, None),
            )?;
        }
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Unsupported(format!(
                    "device {} has type 'a', which only cgroup rules may use",
                    d.path().display()
                )))
            }
        };
        let path = d.path();
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => return Err(RootfsError::sys("mknod", path, Errno::EINVAL)),
        };
        let dir = resolve::mkdir_all(root, parent)?;
        let rdev = makedev(d.major() as u64, d.minor() as u64);
        create_node(&dir, name, path, kind, rdev, d.file_mode().unwrap_or(0o666), (d.uid(), d.gid()))?;
    }
    for (target, link) in SYMLINKS {
        let name = Path::new(link).file_name().expect("constant has a file name");
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootfsError::sys("symlink", Path::new(link), e)),
        }
    }
    Ok(())
}

/// Makes node `name` in `dir` (`path` is its name in the container, for errors).
fn bind_host_node(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), RootfsError> {
    match mknodat(dir, name, SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(RootfsError::sys("create", path, e)),
    }
    let target = nix::fcntl::openat(
        dir,
        name,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open", path, e))?;
    nix::mount::mount(
        Some(path),
        &resolve::fd_path(&target),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind the host's device", path, e))
}

fn create_node(
    dir: &OwnedFd,
    name: &OsStr,
    path: &Path,
    kind: SFlag,
    rdev: u64,
    mode: u32,
    (uid, gid): (Option<u32>, Option<u32>),
) -> Result<(), RootfsError> {
    match mknodat(dir, name, kind, Mode::from_bits_truncate(mode), rdev) {
        Ok(()) => {}
        // Already there, e.g. an image that ships /dev nodes: keep it.
        Err(Errno::EEXIST) => return Ok(()),
        // In a user namespace no device can be made: the host's node is bound in instead
        // (still before pivot_root, so `path` names the host's).
        Err(Errno::EPERM) => return bind_host_node(dir, name, path),
        Err(e) => return Err(RootfsError::sys("mknod", path, e)),
    }
    if uid.is_some() || gid.is_some() {
        fchownat(dir, name, uid.map(Uid::from_raw), gid.map(Gid::from_raw), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| RootfsError::sys("chown", path, e))?;
    }
    Ok(())
}
