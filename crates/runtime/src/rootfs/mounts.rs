//! The spec's `mounts`: option strings to mount flags, and each mount made inside the rootfs.

use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::{resolve, RootfsError};

/// Mount flags, propagation flags and the leftover options passed to the filesystem.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
}

pub fn parse_options(options: &[String]) -> Options {
    let mut o = Options { flags: MsFlags::empty(), propagation: MsFlags::empty(), data: Vec::new() };
    for opt in options {
        let (set, clear, prop) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty(), MsFlags::empty()),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
        o.propagation |= prop;
    }
    o
}

/// Mounts one spec entry at its destination inside the rootfs (before pivot_root).
pub fn mount_in_root(root: BorrowedFd, m: &Mount) -> Result<(), RootfsError> {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
    let source = m.source().as_deref().map(Path::to_path_buf);
    let target_fd = if bind && source.as_deref().is_some_and(|s| !s.is_dir()) {
        resolve::touch(root, dest)?
    } else {
        resolve::mkdir_all(root, dest)?
    };
    let target = resolve::fd_path(&target_fd);
    let fail = |op: &'static str| move |e| RootfsError::sys(op, dest, e);
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let remount_flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if bind {
        let src = source.ok_or_else(|| {
            RootfsError::Unsupported(format!("bind mount at {} has no source", dest.display()))
        })?;
        mount(
            Some(&src),
            &target,
            None::<&str>,
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("bind mount from", &src, e))?;
    } else {
        let src = source.unwrap_or_else(|| typ.into());
        mount(Some(&src), &target, Some(typ), opts.flags, data).map_err(fail("mount"))?;
    }
    if (bind && !remount_flags.is_empty()) || !opts.propagation.is_empty() {
        // The descriptor opened before the mount still names the directory underneath it:
        // open the destination again to reach the new mount itself.
        let mounted_fd = resolve::open(root, dest)?;
        let mounted = resolve::fd_path(&mounted_fd);
        if bind && !remount_flags.is_empty() {
            // A bind mount ignores other flags; they take effect on a remount of the new mount.
            let flags = remount_flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            mount(None::<&str>, &mounted, None::<&str>, flags, None::<&str>).map_err(fail("remount"))?;
        }
        if !opts.propagation.is_empty() {
            mount(None::<&str>, &mounted, None::<&str>, opts.propagation, None::<&str>)
                .map_err(fail("set propagation of"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_propagation_and_data_are_separated() {
        let o = parse_options(&["nosuid".into(), "ro".into(), "rslave".into(), "mode=755".into()]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(o.data, vec!["mode=755"]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(parse_options(&["ro".into(), "rw".into()]).flags, MsFlags::empty());
    }
}
