//! The container's root filesystem, built inside its new mount namespace by the init.
//!
//! Order matters and each step says why it is where it is:
//! 1. every mount private, so nothing we do propagates to the host (and pivot_root accepts it);
//! 2. the rootfs bind-mounted onto itself, so it is a mount point even when it is a plain
//!    directory (the course's "pivot_root: invalid argument");
//! 3. the spec's mounts, /dev's nodes and symlinks, resolved inside the rootfs;
//! 4. pivot_root(".", "."), then the old root detached: no `.pivot_root` left in the rootfs;
//! 5. sysctls, masked and read-only paths, a read-only root, the requested propagation.
//!
//! Steps 1-2 are [`bind_root`], 3 [`mount_all`], 4-5 [`switch_root`]: between 3 and 4, where the spec puts them,
//! the init runs the createContainer hooks (process/init.rs), which may still write to the
//! root even when it is to be read-only (as runc allows; NVIDIA's hooks rely on it).
//!
//! In a mount namespace joined by path, shared with others, the init changes nothing but its
//! own mount: step 1 leaves `/` alone and makes the rootfs's bind private instead (the
//! container's mounts then stay below it, and one unmount of it removes them all:
//! [`release_joined`], which checks the mount's id first), and step 4 is a chroot, as crun's,
//! not a pivot_root, which would move the root of every process in that namespace. A chroot
//! is all that stands between the container and the rest of that namespace: a process with
//! CAP_SYS_CHROOT can leave it (the runtime warns).

mod cgroupfs;
mod dev;
mod mounts;
mod paths;
mod resolve;

pub use resolve::read_in_root;

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, pivot_root};
use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("joining the network namespace: {0}")]
    Network(String),
    #[error("sysctl {key}: {source}")]
    Sysctl {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl RootfsError {
    fn sys(op: &'static str, path: &Path, source: nix::Error) -> RootfsError {
        RootfsError::Sys { op, path: path.to_path_buf(), source }
    }
}

/// The container's mount namespace: made for it, or joined by path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MountNamespace {
    New,
    Joined,
}

/// Steps 1 and 2: makes `rootfs` a mount point of its own, private, in the init's mount
/// namespace. In a joined one, returns that mount's id (see [`release_joined`]).
pub fn bind_root(rootfs: &Path, ns: MountNamespace) -> Result<Option<u64>, RootfsError> {
    let make_private = |path: &Path| {
        mount(None::<&str>, path, None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| RootfsError::sys("make private", path, e))
    };
    let bind = || {
        mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| RootfsError::sys("bind mount", rootfs, e))
    };
    match ns {
        // All private first, so that nothing propagates to the host.
        MountNamespace::New => make_private(Path::new("/")).and_then(|()| bind()).map(|()| None),
        // Only the container's own bind, after the fact: the rest is not ours to change.
        MountNamespace::Joined => {
            bind()?;
            make_private(rootfs)?;
            mount_id(rootfs).map(Some).map_err(|e| RootfsError::sys("read the mount id of", rootfs, e))
        }
    }
}

/// Builds the container's root at `rootfs`, once [`bind_root`] made it a mount: its mounts,
/// /dev, the working directory. Runs in the init, in its mount namespace, before any user
/// code; `/` is still the host's (or the joined namespace's). `cgroups`: the container's
/// cgroup directories on the host, for a `cgroup` mount. `join_network` is called once,
/// before the first sysfs mount (which shows the network devices of the namespace it is made
/// in), or at the end without one.
pub fn mount_all(
    spec: &Spec,
    rootfs: &Path,
    cgroups: &[(String, PathBuf)],
    join_network: impl FnOnce() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    let mut join_network = Some(join_network);
    let mut enter_network = || join_network.take().map_or(Ok(()), |join| join());

    let root = open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| RootfsError::sys("open", rootfs, e))?;
    let root = root.as_fd();
    let mut dev_is_ours = false;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        match m.typ().as_deref() {
            Some("cgroup") | Some("cgroup2") => cgroupfs::mount_cgroups(root, m, cgroups)?,
            Some("sysfs") => {
                enter_network()?;
                mounts::mount_in_root(root, m)?
            }
            _ => mounts::mount_in_root(root, m)?,
        }
        dev_is_ours |= m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs");
    }
    let linux = spec.linux().as_ref();
    if dev_is_ours {
        dev::populate(root, linux.and_then(|l| l.devices().as_deref()).unwrap_or_default())?;
    }
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()).filter(|c| *c != Path::new("/")) {
        // Docker creates a missing working directory rather than failing.
        resolve::mkdir_all(root, cwd)?;
    }
    enter_network()
}

/// Makes the root built by [`mount_all`] the container's `/` and locks it down as the spec
/// asks.
pub fn switch_root(spec: &Spec, rootfs: &Path, ns: MountNamespace) -> Result<(), RootfsError> {
    match ns {
        MountNamespace::New => pivot(rootfs)?,
        MountNamespace::Joined => enter_chroot(rootfs)?,
    }
    let linux = spec.linux().as_ref();
    if let Some(l) = linux {
        // Before /proc/sys turns read-only below.
        for (key, value) in l.sysctl().iter().flatten() {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|e| RootfsError::Sysctl { key: key.clone(), source: e })?;
        }
        paths::mask(l.masked_paths().as_deref().unwrap_or_default())?;
        paths::make_readonly(l.readonly_paths().as_deref().unwrap_or_default())?;
    }
    if spec.root().as_ref().is_some_and(|r| r.readonly().unwrap_or(false)) {
        paths::remount_readonly(Path::new("/"), MsFlags::empty())?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        let o = mounts::parse_options(&[p.to_string()]);
        if o.propagation.is_empty() {
            return Err(RootfsError::Unsupported(format!(
                "linux.rootfsPropagation {p:?} is not one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable"
            )));
        }
        mount(None::<&str>, "/", None::<&str>, o.propagation | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| RootfsError::sys("set rootfs propagation of", Path::new("/"), e))?;
    }
    Ok(())
}

/// Swaps `/` for `rootfs`. With both arguments ".", the old root ends up stacked under the
/// new one at `/`, and a lazy unmount of "." removes it without a directory to put it in.
fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    pivot_root(".", ".").map_err(|e| RootfsError::sys("pivot_root", rootfs, e))?;
    // The old root is already private (step 1), so its unmount propagates nowhere.
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| RootfsError::sys("unmount old root", Path::new("/"), e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", Path::new("/"), e))
}

fn enter_chroot(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", Path::new("/"), e))
}

/// Removes a container's mounts from the mount namespace it joined by path, once it is gone:
/// its rootfs bind, with everything below it (see [`bind_root`]), if the mount on top at
/// `rootfs` is still that one, `mount_id`: anything else there (the bind gone already, or
/// another's mount) is left alone. Joins `ns`: for a process of its own (`process::in_child`).
pub fn release_joined(ns: BorrowedFd, rootfs: &Path, mount_id: u64) -> nix::Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)?;
    match self::mount_id(rootfs) {
        Ok(id) if id == mount_id => umount2(rootfs, MntFlags::MNT_DETACH),
        Ok(_) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The id of the mount `path` is on: the 64-bit one never reused (Linux 6.8), else the
/// older one, which a later mount may reuse.
fn mount_id(path: &Path) -> nix::Result<u64> {
    let path =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| nix::errno::Errno::EINVAL)?;
    for mask in [libc::STATX_MNT_ID_UNIQUE, libc::STATX_MNT_ID] {
        // SAFETY: statx fills `st`, a plain struct that outlives the call; `path` is a valid C string.
        let st = unsafe {
            let mut st: libc::statx = std::mem::zeroed();
            nix::errno::Errno::result(libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, mask, &mut st))?;
            st
        };
        if st.stx_mask & mask != 0 {
            return Ok(st.stx_mnt_id);
        }
    }
    Err(nix::errno::Errno::ENOSYS)
}
