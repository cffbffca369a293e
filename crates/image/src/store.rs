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
use std::sync::{Mutex, OnceLock};

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
    #[error("conflict: unable to remove {name}: a running container uses image {id} (-f untags it; the image stays until no container uses it)")]
    InUse { name: String, id: String },
}

pub(crate) fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
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

    /// The image a user means, in Docker's order: a full id (`sha256:hex` or 64 hex digits),
    /// a tag (normalised as Docker does) or `name@digest`, then a unique id prefix. A name
    /// that is also an id prefix (`cafe`) is thus the tag first.
    pub fn find(&self, wanted: &str) -> Option<&ImageRecord> {
        let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
        let is_hex = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
        if is_hex && (hex.len() == 64 || wanted.starts_with("sha256:")) {
            if let Some(image) = self.images.get(&format!("sha256:{hex}")) {
                return Some(image);
            }
        }
        if let Ok(reference) = Reference::from_str(wanted) {
            let found = match &reference.digest {
                Some(d) => {
                    let repo_digest = format!("{}@{d}", reference.name());
                    self.images.values().find(|i| i.repo_digests.contains(&repo_digest))
                }
                None => self.tags.get(&reference.to_string()).and_then(|id| self.images.get(id)),
            };
            if found.is_some() {
                return found;
            }
        }
        if !is_hex {
            return None;
        }
        let mut hits = self.images.values().filter(|i| i.id.digest().starts_with(hex));
        match (hits.next(), hits.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }
}

/// A flock held until dropped.
pub struct Lock {
    _file: File,
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Takes a flock, retrying when a signal interrupts the wait; `op` may include LOCK_NB.
pub fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor the caller owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

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
    /// This process's temp-name prefix and its held lock (see `owner`).
    owner: OnceLock<(String, File)>,
    /// Held while the owner lock is made: a pull's layer threads may all ask at once, and
    /// each would otherwise make a lock file of its own, left behind by the losers.
    making_owner: Mutex<()>,
}

/// `PID-NONCE` of a `tmp/` entry: `PID-NONCE-N-what`, `PID-NONCE.lock`, `.PID-NONCE.lock-new`.
fn owner_of(name: &str) -> Option<&str> {
    let name = name.trim_start_matches('.');
    let name = name.strip_suffix(".lock-new").or_else(|| name.strip_suffix(".lock")).unwrap_or(name);
    let second_dash = name.match_indices('-').nth(1).map_or(name.len(), |(i, _)| i);
    name.get(..second_dash).filter(|o| o.contains('-'))
}

impl Drop for Store {
    /// A process that ends normally takes its lock file along (its temp entries went with
    /// their `Temp`s); one that is killed leaves it for `clean_abandoned`.
    fn drop(&mut self) {
        if let Some((owner, _)) = self.owner.get() {
            let _ = fs::remove_file(self.root.join("tmp").join(format!("{owner}.lock")));
        }
    }
}

fn older_than(path: &Path, secs: u64) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > secs)
}

impl Store {
    /// Opens (and on first use makes) the store under `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        // Layers hold setuid files and device nodes of the images: no host user but root may
        // reach them.
        fs::create_dir_all(root).map_err(io_err("creating", root))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io_err("restricting", root))?;
        for dir in ["blobs/sha256", "layers", "sizes", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_err("creating", &path))?;
        }
        Ok(Store { root: root.to_path_buf(), owner: OnceLock::new(), making_owner: Mutex::new(()) })
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
        flock(&file, if exclusive { libc::LOCK_EX } else { libc::LOCK_SH })
            .map_err(io_err("locking", &path))?;
        Ok(Lock { _file: file })
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

    /// Moves an unpacked layer into place, its content size recorded first in `sizes/` (a
    /// size without its layer is garbage-collected; a layer never lacks its size).
    pub fn commit_layer(&self, tmp: Temp, diff_id: &Digest, content: u64) -> Result<(), StoreError> {
        let (size_tmp, mut file) = self.temp_file("size")?;
        file.write_all(content.to_string().as_bytes()).map_err(io_err("writing", size_tmp.path()))?;
        drop(file);
        size_tmp.commit(&self.root.join("sizes").join(diff_id.digest()))?;
        tmp.commit(&self.layer_dir(diff_id))
    }

    /// The bytes of file contents in a stored layer (None for a layer stored before sizes were).
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        fs::read_to_string(self.root.join("sizes").join(diff_id.digest())).ok()?.trim().parse().ok()
    }

    /// An image's size as `images` shows it, Docker's way: its layers' contents unpacked (the
    /// compressed size for a layer whose content size is not known).
    pub fn image_size(&self, image: &ImageRecord) -> u64 {
        image.layers.iter().map(|l| self.layer_size(&l.diff_id).unwrap_or(l.size)).sum()
    }

    /// This process's name in `tmp/`: `PID-NONCE`, with `tmp/PID-NONCE.lock` flocked for as
    /// long as the process lives. The lock, not the pid, tells others the owner is alive: a pid
    /// can be reused, or belong to another pid namespace sharing the store. The lock file is
    /// locked under a temporary name and then renamed, so it never exists unlocked.
    fn owner(&self) -> Result<&str, StoreError> {
        if let Some((prefix, _)) = self.owner.get() {
            return Ok(prefix);
        }
        let _making = self.making_owner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((prefix, _)) = self.owner.get() {
            return Ok(prefix);
        }
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let prefix = format!("{}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff);
        let tmp = self.root.join("tmp");
        let new = tmp.join(format!(".{prefix}.lock-new"));
        let file = File::create_new(&new).map_err(io_err("creating", &new))?;
        flock(&file, libc::LOCK_EX).map_err(io_err("locking", &new))?;
        let lock = tmp.join(format!("{prefix}.lock"));
        fs::rename(&new, &lock).map_err(io_err("renaming to", &lock))?;
        Ok(&self.owner.get_or_init(|| (prefix, file)).0)
    }

    fn temp_path(&self, what: &str) -> Result<Temp, StoreError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        Ok(Temp { path: self.root.join("tmp").join(format!("{}-{n}-{what}", self.owner()?)) })
    }

    pub fn temp_dir(&self, what: &str) -> Result<Temp, StoreError> {
        let tmp = self.temp_path(what)?;
        fs::create_dir(tmp.path()).map_err(io_err("creating", tmp.path()))?;
        Ok(tmp)
    }

    pub fn temp_file(&self, what: &str) -> Result<(Temp, File), StoreError> {
        let tmp = self.temp_path(what)?;
        let file = File::create_new(tmp.path()).map_err(io_err("creating", tmp.path()))?;
        Ok((tmp, file))
    }

    /// Removes work left in `tmp/` by processes that ended without cleaning up (killed
    /// mid-pull): everything of an owner whose lock nobody holds. Best effort: what cannot be
    /// removed now is tried again next time, and never fails the caller's command.
    pub fn clean_abandoned(&self) {
        let dir = self.root.join("tmp");
        let Ok(entries) = fs::read_dir(&dir) else { return };
        let names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
        let mut live = Vec::new();
        // Locks of gone owners, held until their entries are removed.
        let mut taken = Vec::new();
        for owner in names.iter().filter_map(|n| n.strip_suffix(".lock")) {
            let Ok(lock) = File::open(dir.join(format!("{owner}.lock"))) else { continue };
            match flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
                Err(_) => live.push(owner),
                Ok(()) => taken.push(lock),
            }
        }
        for name in &names {
            if owner_of(name).is_some_and(|o| live.contains(&o)) {
                continue;
            }
            // A `.PID-NONCE.lock-new` is unlocked only while its creator is between create and
            // flock: leave young ones alone.
            if name.starts_with('.') && !older_than(&dir.join(name), 60) {
                continue;
            }
            let _ = remove_any(&dir.join(name));
        }
        drop(taken);
    }

    /// Writes out everything written to the store's filesystem, so that the index (synced
    /// itself) never names blobs and layers a power cut could leave empty: one syncfs per
    /// index update that adds images, rather than an fsync per file.
    fn sync(&self) -> Result<(), StoreError> {
        let dir = File::open(&self.root).map_err(io_err("opening", &self.root))?;
        // SAFETY: syncfs on a descriptor we own; no memory is passed.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(io_err("syncing", &self.root)(io::Error::last_os_error()));
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

    /// Points `tag` at the image `wanted` names. Lookup and change are one index update, so a
    /// racing rmi either finds the new tag or makes this fail: never a tag of a deleted image.
    pub fn tag(&self, wanted: &str, tag: &Reference) -> Result<(), StoreError> {
        self.update_index(|index| {
            let id = index.find(wanted).ok_or_else(|| StoreError::NotFound(wanted.into()))?.id.to_string();
            index.tags.insert(tag.to_string(), id);
            Ok(())
        })
    }

    /// Records an image whose blobs and layers the caller has just stored, and points `tags`
    /// at it (moving them from any image they named).
    pub fn add_image(&self, image: ImageRecord, tags: &[Reference]) -> Result<(), StoreError> {
        self.add_images([(image, tags)])
    }

    /// [`Store::add_image`] for several images (an archive's): one syncfs, one index update.
    pub fn add_images<'a>(
        &self,
        images: impl IntoIterator<Item = (ImageRecord, &'a [Reference])>,
    ) -> Result<(), StoreError> {
        self.sync()?;
        self.update_index(|index| {
            for (image, tags) in images {
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
            }
            Ok(())
        })
    }

    /// Untags `wanted`; deletes the image once no tag names it, unless a container runs on it
    /// (`in_use` gives their image ids; it is asked under the exclusive lock, so no container
    /// can start on an image meanwhile): then, as Docker, removing its last tag needs `force`.
    /// Returns what was untagged and deleted, as Docker prints them.
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
            if !force && in_use.contains(&id) && untag.len() == tags.len() {
                return Err(StoreError::InUse { name: wanted.into(), id: short_id(&image.id) });
            }
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
        self.clean_abandoned();
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
        for (dir, keep) in [("blobs/sha256", &blobs), ("layers", &layers), ("sizes", &layers)] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_entries_name_their_owner() {
        assert_eq!(owner_of("123-abc-0-blob"), Some("123-abc"));
        assert_eq!(owner_of("123-abc-7-layer-x"), Some("123-abc"));
        assert_eq!(owner_of("123-abc.lock"), Some("123-abc"));
        assert_eq!(owner_of(".123-abc.lock-new"), Some("123-abc"));
        assert_eq!(owner_of("stray"), None);
    }

    fn record(id_hex: &str) -> ImageRecord {
        let d = Digest::from_str(&format!("sha256:{id_hex}")).unwrap();
        ImageRecord {
            id: d.clone(),
            manifest: d,
            manifest_media_type: String::new(),
            layers: vec![],
            created: None,
            repo_digests: vec![],
        }
    }

    #[test]
    fn a_tag_wins_over_an_id_prefix_that_spells_the_same() {
        let (a, b) = ("a".repeat(64), format!("cafe{}", "0".repeat(60)));
        let mut index = Index::default();
        index.images.insert(format!("sha256:{a}"), record(&a));
        index.images.insert(format!("sha256:{b}"), record(&b));
        index.tags.insert("docker.io/library/cafe:latest".into(), format!("sha256:{a}"));
        assert_eq!(index.find("cafe").unwrap().id.digest(), a);
        assert_eq!(index.find("cafe0").unwrap().id.digest(), b);
        assert_eq!(index.find(&b).unwrap().id.digest(), b);
        assert_eq!(index.find(&format!("sha256:{a}")).unwrap().id.digest(), a);
        assert!(index.find("beef").is_none());
    }

    #[test]
    fn threads_of_one_process_share_one_owner_lock() {
        // A pull's layer threads ask for their first temp file at once.
        let dir = std::env::temp_dir().join(format!("rocker-store-owner-test-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let start = std::sync::Barrier::new(16);
        let owners: HashSet<String> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let (temp, _file) = store.temp_file("blob").unwrap();
                        owner_of(temp.path().file_name().unwrap().to_str().unwrap()).unwrap().to_string()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(owners.len(), 1, "{owners:?}");
        drop(store);
        let left: Vec<_> =
            std::fs::read_dir(dir.join("tmp")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "left in tmp/: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_owners_live_temp_work_is_kept_and_a_dead_ones_removed() {
        let dir = std::env::temp_dir().join(format!("rocker-store-test-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let (mine, _file) = store.temp_file("blob").unwrap();
        // A dead owner: its lock file exists, nobody holds it (and its pid may even be ours).
        let tmp = dir.join("tmp");
        std::fs::write(tmp.join(format!("{}-dead.lock", std::process::id())), "").unwrap();
        std::fs::write(tmp.join(format!("{}-dead-0-blob", std::process::id())), "x").unwrap();
        std::fs::write(tmp.join("1-orphan-0-layer"), "x").unwrap();
        let other = Store::open(&dir).unwrap();
        other.clean_abandoned();
        let mut left: Vec<String> =
            std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let owner = owner_of(mine.path().file_name().unwrap().to_str().unwrap()).unwrap().to_string();
        assert_eq!(
            left,
            [mine.path().file_name().unwrap().to_str().unwrap().to_string(), format!("{owner}.lock")]
        );
        drop(mine);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
