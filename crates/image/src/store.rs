//! The content-addressed image store under the engine's root:
//!
//! ```text
//! blobs/sha256/HEX     manifests, configs and layers as the registry sent them
//! layers/HEX/          a layer unpacked (overlayfs format), named by its diff_id
//! tmp/PID-N-what       work in progress; renamed into place only once verified
//! index.json           image records and tags, replaced atomically
//! lock, index.lock     flocks: see `Store::lock`
//! ```
//!
//! Everything becomes visible by a rename after it is complete and verified, so a process
//! killed at any point leaves at most a `tmp/` entry, which no reader ever uses and which the
//! next writer removes once its process is gone.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the image index {path} is corrupt: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image {id} is tagged as {tags}: name one tag, or use -f to remove them all")]
    MultipleTags { id: String, tags: String },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { what, path: path.to_path_buf(), source }
}

/// One layer of an image: the blob as stored and the unpacked directory's diff_id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub blob: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A stored image. Its id is its config's digest, as with Docker and Podman.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Digest,
    pub manifest_media_type: String,
    pub layers: Vec<LayerRecord>,
    /// The config's `created`, if it has one.
    #[serde(default)]
    pub created: Option<String>,
    /// `name@digest` for each repository this manifest was pulled from.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    /// Image id -> record.
    pub images: BTreeMap<String, ImageRecord>,
    /// `registry/repo:tag` -> image id.
    pub tags: BTreeMap<String, String>,
}

impl Index {
    pub fn tags_of(&self, id: &str) -> Vec<&str> {
        self.tags.iter().filter(|(_, v)| v.as_str() == id).map(|(k, _)| k.as_str()).collect()
    }

    /// The image a user means: a tag (normalised as Docker does), a full or short id (hex
    /// with or without `sha256:`), or `name@digest`.
    pub fn find(&self, wanted: &str) -> Option<&ImageRecord> {
        let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut hits = self.images.values().filter(|i| i.id.digest().starts_with(hex));
            if let (Some(one), None) = (hits.next(), hits.next()) {
                return Some(one);
            }
        }
        let reference = Reference::from_str(wanted).ok()?;
        if let Some(d) = &reference.digest {
            let repo_digest = format!("{}@{d}", reference.name());
            return self.images.values().find(|i| i.repo_digests.contains(&repo_digest));
        }
        self.tags.get(&reference.to_string()).and_then(|id| self.images.get(id))
    }
}

/// A flock held until dropped.
pub struct Lock {
    _file: File,
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A path under `tmp/`, removed on drop unless `commit`ted into place.
pub struct Temp {
    path: PathBuf,
}

impl Temp {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames into place. Another process may have put the same content there first: then
    /// that copy stays and this one goes (content addressing makes them equal).
    fn commit(self, dest: &Path) -> Result<(), StoreError> {
        match fs::rename(&self.path, dest) {
            Ok(()) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(e) if dest.exists() => {
                drop(e);
                Ok(())
            }
            Err(e) => Err(StoreError::Io { what: "moving into place", path: dest.to_path_buf(), source: e }),
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = remove_any(&self.path);
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (and on first use makes) the store under `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        // Layers hold setuid files and device nodes of the images: no host user but root may
        // reach them.
        fs::create_dir_all(root).map_err(io_err("creating", root))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io_err("restricting", root))?;
        for dir in ["blobs/sha256", "layers", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_err("creating", &path))?;
        }
        Ok(Store { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Readers of layers (pull, run) hold it shared, removers (rmi, prune) exclusive, so
    /// nothing in use is ever deleted.
    pub fn lock(&self, exclusive: bool) -> Result<Lock, StoreError> {
        self.flock("lock", exclusive)
    }

    fn flock(&self, name: &str, exclusive: bool) -> Result<Lock, StoreError> {
        let path = self.root.join(name);
        let file = File::options().create(true).append(true).open(&path).map_err(io_err("opening", &path))?;
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(Lock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(StoreError::Io { what: "locking", path, source: e });
            }
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.digest())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_err("reading", &path))
    }

    /// Stores bytes whose digest the caller has checked.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let (tmp, mut file) = self.temp_file("blob")?;
        file.write_all(bytes).map_err(io_err("writing", tmp.path()))?;
        drop(file);
        self.commit_blob(tmp, digest)
    }

    pub fn commit_blob(&self, tmp: Temp, digest: &Digest) -> Result<(), StoreError> {
        tmp.commit(&self.blob_path(digest))
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.digest())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    pub fn commit_layer(&self, tmp: Temp, diff_id: &Digest) -> Result<(), StoreError> {
        tmp.commit(&self.layer_dir(diff_id))
    }

    fn temp_path(&self, what: &str) -> Temp {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        Temp { path: self.root.join("tmp").join(format!("{}-{n}-{what}", std::process::id())) }
    }

    pub fn temp_dir(&self, what: &str) -> Result<Temp, StoreError> {
        let tmp = self.temp_path(what);
        fs::create_dir(tmp.path()).map_err(io_err("creating", tmp.path()))?;
        Ok(tmp)
    }

    pub fn temp_file(&self, what: &str) -> Result<(Temp, File), StoreError> {
        let tmp = self.temp_path(what);
        let file = File::create_new(tmp.path()).map_err(io_err("creating", tmp.path()))?;
        Ok((tmp, file))
    }

    /// Removes work left in `tmp/` by processes that no longer exist (killed mid-pull).
    pub fn clean_abandoned(&self) -> Result<(), StoreError> {
        let dir = self.root.join("tmp");
        for entry in fs::read_dir(&dir).map_err(io_err("reading", &dir))? {
            let entry = entry.map_err(io_err("reading", &dir))?;
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse::<i32>().ok());
            // SAFETY: kill with signal 0 only checks whether the process exists.
            let gone = pid.is_none_or(|pid| unsafe { libc::kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH));
            if gone {
                remove_any(&entry.path()).map_err(io_err("removing", &entry.path()))?;
            }
        }
        Ok(())
    }

    pub fn index(&self) -> Result<Index, StoreError> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Index { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(StoreError::Io { what: "reading", path, source: e }),
        }
    }

    /// Reads, changes and atomically replaces the index, serialized by `index.lock`.
    pub fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Index) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.flock("index.lock", true)?;
        let mut index = self.index()?;
        let out = change(&mut index)?;
        let (tmp, mut file) = self.temp_file("index")?;
        let bytes = serde_json::to_vec_pretty(&index).expect("the index serializes");
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(io_err("writing", tmp.path()))?;
        drop(file);
        tmp.commit(&self.root.join("index.json"))?;
        Ok(out)
    }

    /// Records an image and points `tags` at it (moving them from any image they named).
    pub fn add_image(&self, image: ImageRecord, tags: &[Reference]) -> Result<(), StoreError> {
        self.update_index(|index| {
            let id = image.id.to_string();
            match index.images.get_mut(&id) {
                Some(existing) => {
                    for d in image.repo_digests {
                        if !existing.repo_digests.contains(&d) {
                            existing.repo_digests.push(d);
                        }
                    }
                }
                None => {
                    index.images.insert(id.clone(), image);
                }
            }
            for tag in tags {
                index.tags.insert(tag.to_string(), id.clone());
            }
            Ok(())
        })
    }

    /// Untags `wanted`; deletes the image once no tag names it, unless a container runs on it
    /// (`in_use` gives their image ids; it is asked under the exclusive lock, so no container
    /// can start on an image meanwhile). Returns what was untagged and deleted, as Docker
    /// prints them.
    pub fn remove(
        &self,
        wanted: &str,
        force: bool,
        in_use: impl FnOnce() -> HashSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let _lock = self.lock(true)?;
        let in_use = in_use();
        let report = self.update_index(|index| {
            let image = index.find(wanted).ok_or_else(|| StoreError::NotFound(wanted.into()))?.clone();
            let id = image.id.to_string();
            let tags: Vec<String> = index.tags_of(&id).into_iter().map(String::from).collect();
            let by_tag = Reference::from_str(wanted).ok().map(|r| r.to_string()).filter(|t| tags.contains(t));
            let untag = match by_tag {
                Some(tag) => vec![tag],
                None if tags.len() > 1 && !force => {
                    return Err(StoreError::MultipleTags { id: short_id(&image.id), tags: tags.join(", ") })
                }
                None => tags.clone(),
            };
            let mut report: Vec<String> = untag.iter().map(|t| format!("Untagged: {t}")).collect();
            for t in &untag {
                index.tags.remove(t);
            }
            if index.tags_of(&id).is_empty() && !in_use.contains(&id) {
                index.images.remove(&id);
                report.push(format!("Deleted: {id}"));
            }
            Ok(report)
        })?;
        self.collect_garbage()?;
        Ok(report)
    }

    /// Removes images that no tag names and no container uses; returns their ids.
    pub fn prune(&self, in_use: impl FnOnce() -> HashSet<String>) -> Result<Vec<String>, StoreError> {
        let _lock = self.lock(true)?;
        let in_use = in_use();
        let removed = self.update_index(|index| {
            let dangling: Vec<String> = index
                .images
                .keys()
                .filter(|id| index.tags_of(id).is_empty() && !in_use.contains(*id))
                .cloned()
                .collect();
            for id in &dangling {
                index.images.remove(id);
            }
            Ok(dangling)
        })?;
        self.clean_abandoned()?;
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes blobs and layers no image refers to. Callers hold the exclusive lock.
    fn collect_garbage(&self) -> Result<(), StoreError> {
        let index = self.index()?;
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for image in index.images.values() {
            blobs.insert(image.id.digest().to_string());
            blobs.insert(image.manifest.digest().to_string());
            for l in &image.layers {
                blobs.insert(l.blob.digest().to_string());
                layers.insert(l.diff_id.digest().to_string());
            }
        }
        for (dir, keep) in [("blobs/sha256", &blobs), ("layers", &layers)] {
            let dir = self.root.join(dir);
            for entry in fs::read_dir(&dir).map_err(io_err("reading", &dir))? {
                let entry = entry.map_err(io_err("reading", &dir))?;
                if !entry.file_name().to_str().is_some_and(|n| keep.contains(n)) {
                    remove_any(&entry.path()).map_err(io_err("removing", &entry.path()))?;
                }
            }
        }
        Ok(())
    }
}

/// Docker's 12-hex-digit image id.
pub fn short_id(id: &Digest) -> String {
    short_hex(id).to_string()
}

/// The first 12 characters of a digest's value (all of a shorter one: an unverified digest of
/// another algorithm may be short).
pub fn short_hex(d: &Digest) -> &str {
    d.digest().get(..12).unwrap_or(d.digest())
}
