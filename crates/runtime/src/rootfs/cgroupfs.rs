//! A `cgroup` mount in the spec: the container's own cgroup, shown at the destination.
//!
//! Without a cgroup namespace, mounting the cgroup filesystem would show the host's whole
//! tree; so, as runc does, the container's own directories are bind-mounted instead: on v1
//! a tmpfs with one directory per hierarchy (and a symlink per co-mounted controller), on
//! v2 the container's single directory.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::unistd::symlinkat;
use oci_spec::runtime::Mount;

use super::mounts::parse_options;
use super::{resolve, RootfsError};

/// `sources`: (hierarchy name, the container's cgroup directory on the host); one entry with
/// an empty name for the v2 unified hierarchy.
pub fn mount_cgroups(root: BorrowedFd, m: &Mount, sources: &[(String, PathBuf)]) -> Result<(), RootfsError> {
    let dest = m.destination();
    let flags = parse_options(m.options().as_deref().unwrap_or_default()).flags;
    let target_fd = resolve::mkdir_all(root, dest)?;
    let target = resolve::fd_path(&target_fd);
    if let [(name, dir)] = sources {
        if name.is_empty() {
            return bind(root, dir, dest, flags);
        }
    }
    mount(Some("tmpfs"), &target, Some("tmpfs"), flags - MsFlags::MS_RDONLY, Some("mode=755"))
        .map_err(|e| RootfsError::sys("mount tmpfs at", dest, e))?;
    let tmpfs_fd = resolve::open(root, dest)?;
    for (name, dir) in sources {
        let sub = dest.join(name);
        let sub_fd = resolve::mkdir_all(root, &sub)?;
        drop(sub_fd);
        bind(root, dir, &sub, flags)?;
        // cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
        if name.contains(',') {
            for single in name.split(',') {
                match symlinkat(name.as_str(), &tmpfs_fd, single) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(RootfsError::sys("symlink", &dest.join(single), e)),
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let tmpfs = resolve::fd_path(&tmpfs_fd);
        mount(None::<&str>, &tmpfs, None::<&str>, flags | MsFlags::MS_REMOUNT, None::<&str>)
            .map_err(|e| RootfsError::sys("remount read-only", dest, e))?;
    }
    Ok(())
}

/// Bind-mounts host directory `dir` at `dest` in the rootfs, then applies `flags` (ro,
/// nosuid...) with a remount of the new mount (reached by resolving `dest` again: the
/// descriptor from before the mount names the directory underneath).
fn bind(root: BorrowedFd, dir: &Path, dest: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    let fail = |op| move |e| RootfsError::sys(op, dest, e);
    let target = resolve::mkdir_all(root, dest)?;
    mount(Some(dir), &resolve::fd_path(&target), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(fail("bind the container's cgroup onto"))?;
    let extra = flags - MsFlags::MS_BIND - MsFlags::MS_REC;
    if extra.is_empty() {
        return Ok(());
    }
    let mounted = resolve::open(root, dest)?;
    mount(
        None::<&str>,
        &resolve::fd_path(&mounted),
        None::<&str>,
        extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .map_err(fail("remount"))
}
