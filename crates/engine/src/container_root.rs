//! A container's root filesystem made from an image: `containers/ID/` holds the overlay's
//! upper and work directories and its mount point, and a lock that the owning `rocker`
//! process holds for the container's life.
//!
//! The overlay is mounted in a mount namespace private to that `rocker` process (and so to its
//! container), never in the host's: when the process ends, killed or not, the kernel removes
//! the mount. A directory whose lock nobody holds is left from such a death, and is removed by
//! the next command that looks (`in_use`).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use rocker_image::overlay::mount_overlay;
use rocker_image::store::flock;
use rocker_image::{ImageRecord, Store};

use crate::engine::Engine;
use crate::error::EngineError;

pub struct ContainerRoot {
    dir: PathBuf,
    rootfs: PathBuf,
    mounted: bool,
    _lock: File,
}

/// Moves this process into a mount namespace of its own, in which nothing propagates back to
/// the host: the container's overlay lives and dies with it.
fn private_mount_namespace() -> Result<(), EngineError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(EngineError::sys("unsharing the mount namespace"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(EngineError::sys("making / private"))
}

impl ContainerRoot {
    /// Makes `containers/ID` and mounts `image`'s layers there. The caller holds the store's
    /// shared lock from the image's lookup until this returns, so `rmi` cannot delete a layer
    /// in between (it checks the containers' locks, taken here, under its exclusive one).
    pub fn create(
        engine: &Engine,
        store: &Store,
        image: &ImageRecord,
        id: &str,
    ) -> Result<ContainerRoot, EngineError> {
        let dir = engine.containers_dir()?.join(id);
        fs::create_dir_all(&dir).map_err(EngineError::io("creating", &dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(EngineError::io("creating", &lock_path))?;
        flock(&lock, libc::LOCK_EX).map_err(EngineError::io("locking", &lock_path))?;
        let mut root = ContainerRoot { rootfs: dir.join("rootfs"), dir, mounted: false, _lock: lock };
        let image_file = root.dir.join("image");
        fs::write(&image_file, image.id.to_string()).map_err(EngineError::io("writing", &image_file))?;
        let mut lowers: Vec<PathBuf> =
            image.layers.iter().rev().map(|l| store.layer_dir(&l.diff_id)).collect();
        // overlayfs needs a lower directory: an image without layers gets an empty one.
        let empty = lowers.is_empty().then(|| root.dir.join("empty"));
        for p in ["rootfs", "upper", "work"].map(|sub| root.dir.join(sub)).iter().chain(&empty) {
            fs::create_dir(p).map_err(EngineError::io("creating", p))?;
        }
        lowers.extend(empty);
        for l in &lowers {
            if !l.is_dir() {
                return Err(EngineError::InvalidArgument(format!(
                    "the store lacks layer {} of image {}: pull the image again",
                    l.display(),
                    image.id
                )));
            }
        }
        private_mount_namespace()?;
        mount_overlay(&lowers, &root.dir.join("upper"), &root.dir.join("work"), &root.rootfs)?;
        root.mounted = true;
        Ok(root)
    }

    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Unmounts and removes everything; what fails is returned for the caller to report.
    pub fn remove(mut self) -> Result<(), EngineError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), EngineError> {
        // Never removed while mounted: that would delete through the overlay.
        if self.mounted {
            umount2(&self.rootfs, MntFlags::MNT_DETACH)
                .map_err(EngineError::sys("unmounting the container's root"))?;
            self.mounted = false;
        }
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(EngineError::io("removing", &self.dir)(e)),
            _ => Ok(()),
        }
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The ids of images that running containers use; directories of containers whose `rocker`
/// process died are removed on the way (one that cannot be is tried again next time). Called
/// under the store's exclusive lock, which `run` holds shared until `create` has taken its lock.
pub fn in_use(engine: &Engine) -> HashSet<String> {
    let mut used = HashSet::new();
    let Ok(entries) = fs::read_dir(engine.root.join("containers")) else { return used };
    for entry in entries.flatten() {
        let path = entry.path();
        let alive = match File::open(path.join("lock")) {
            Ok(lock) => flock(&lock, libc::LOCK_EX | libc::LOCK_NB).is_err(),
            Err(_) => false,
        };
        if alive {
            if let Ok(id) = fs::read_to_string(path.join("image")) {
                used.insert(id);
            }
        } else {
            let _ = fs::remove_dir_all(&path);
        }
    }
    used
}
