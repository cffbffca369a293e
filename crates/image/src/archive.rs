//! `rocker save` and `rocker load`: images as one tar, in the two formats other tools read
//! and write.
//!
//! ```text
//! docker-archive (docker save, podman load)     oci-archive (podman save --format oci-archive)
//!   manifest.json      configs, tags, layers      oci-layout
//!   repositories       the legacy tag list        index.json         a descriptor per tag
//!   HEX.json           a config                   blobs/sha256/HEX   manifests, configs, layers
//!   DIFFID/layer.tar   a layer, uncompressed                         byte for byte as stored
//! ```
//!
//! A docker-archive has no manifest, and its layers are plain tars (or, written by other
//! tools, compressed ones), so loading one builds an OCI manifest over the layers as given.
//!
//! The entries of an archive come in no fixed order, so `load` first extracts it into a
//! store temp dir. The archive is untrusted: only regular files and directories under
//! relative names without `..` are made, symlinks are only remembered (as names of files
//! inside the archive), and the names manifest.json and index.json give are checked the
//! same way, so nothing can reach outside that directory. Every image is then verified
//! (digests, sizes, diff_ids) and unpacked into temp dirs before anything becomes visible
//! in the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use serde::{Deserialize, Serialize};

use crate::digest::{self, Hashing};
use crate::ingest::{
    check, diff_ids, layer_records, own_manifest, sniff, stage_layer, LayerError, Mismatch, Unpacked,
};
use crate::layer::Compression;
use crate::platform::Platform;
use crate::pull::{choose, is_index};
use crate::reference::Reference;
use crate::registry::JSON_LIMIT;
use crate::store::{io_err, ImageRecord, Index, LayerRecord, Store, StoreError};

/// The annotation that names a manifest of an OCI layout (a tag, or a full reference).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name containerd (and rocker) put beside a `REF_NAME` that is only a tag.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// What `docker save` writes.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
}

/// An image `load` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub image: ImageRecord,
    pub tags: Vec<Reference>,
    /// An OCI `org.opencontainers.image.ref.name` that names no repository (a bare tag such
    /// as `latest`, with no `io.containerd.image.name` beside it) or is no valid reference:
    /// it could not be made a tag, so the image may have been left untagged.
    pub unused_ref_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing {name} into the archive: {source}")]
    Write {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("archive entry {}: {reason}; nothing was loaded", name.display())]
    Entry { name: PathBuf, reason: String },
    #[error("{name} in the archive: {what}: {source}")]
    Io {
        name: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{what} in the archive is not valid JSON of its kind: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("layer {layer} in the archive: {source}")]
    Layer {
        layer: String,
        #[source]
        source: LayerError,
    },
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    #[error("{0}")]
    Unsupported(String),
    #[error("layer {diff_id} in the store is damaged (its content has digest {actual}): pull or load the image again")]
    Damaged { diff_id: String, actual: String },
}

/// Writes `images` (each with the name the user gave it: a tag, which the archive then
/// carries, or an id) into one archive on `out`. Content several images share goes in once.
pub fn save(
    store: &Store,
    images: &[(String, ImageRecord)],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let _lock = store.lock(false)?;
    let index = store.index()?;
    let named: Vec<(Option<Reference>, &ImageRecord)> =
        images.iter().map(|(name, image)| (tag_of(&index, name, image), image)).collect();
    let mut tar = Writer { tar: tar::Builder::new(out), written: HashSet::new() };
    match format {
        ArchiveFormat::DockerArchive => save_docker(store, &named, &mut tar)?,
        ArchiveFormat::OciArchive => save_oci(store, &named, &mut tar)?,
    }
    let write_end = |source| ArchiveError::Write { name: "the end of the archive".into(), source };
    // Flushed here, so that an error writing the last bytes is not lost in a drop.
    tar.tar.into_inner().and_then(|mut out| out.flush()).map_err(write_end)
}

/// The tag `name` stands for, if it is one of `image`'s (not its id, nor a digest).
fn tag_of(index: &Index, name: &str, image: &ImageRecord) -> Option<Reference> {
    let reference = Reference::from_str(name).ok().filter(|r| r.digest.is_none())?;
    (index.tags.get(&reference.to_string()) == Some(&image.id.to_string())).then_some(reference)
}

/// One entry of a docker-archive's manifest.json.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    /// Docker writes `null` for an image saved by its id.
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn save_docker<W: Write>(
    store: &Store,
    named: &[(Option<Reference>, &ImageRecord)],
    tar: &mut Writer<W>,
) -> Result<(), ArchiveError> {
    // One manifest.json entry per image, with every tag it was named by.
    let mut images: Vec<(&ImageRecord, Vec<&Reference>)> = Vec::new();
    for (tag, image) in named {
        let at = images.iter().position(|(i, _)| i.id == image.id).unwrap_or_else(|| {
            images.push((*image, Vec::new()));
            images.len() - 1
        });
        if let Some(tag) = tag.as_ref().filter(|t| !images[at].1.contains(t)) {
            images[at].1.push(tag);
        }
    }
    let mut manifest = Vec::new();
    // repository -> tag -> the top layer's id: what Docker before 1.10 read.
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, tags) in images {
        let config = format!("{}.json", image.id.digest());
        tar.bytes(&config, &store.read_blob(&image.id)?)?;
        let mut layers = Vec::new();
        for layer in &image.layers {
            let dir = layer.diff_id.digest();
            let name = format!("{dir}/layer.tar");
            if !tar.has(&name) {
                tar.dir(dir)?;
                save_uncompressed(store, layer, &name, tar)?;
            }
            layers.push(name);
        }
        for tag in &tags {
            if let (Some(t), Some(top)) = (&tag.tag, image.layers.last()) {
                repositories
                    .entry(tag.name())
                    .or_default()
                    .insert(t.clone(), top.diff_id.digest().to_string());
            }
        }
        let repo_tags = Some(tags.iter().map(|t| t.to_string()).collect());
        manifest.push(DockerManifest { config, repo_tags, layers });
    }
    tar.bytes("manifest.json", &serde_json::to_vec(&manifest).expect("manifest.json serializes"))?;
    if !repositories.is_empty() {
        tar.bytes("repositories", &serde_json::to_vec(&repositories).expect("repositories serializes"))?;
    }
    Ok(())
}

/// Writes a layer as the plain tar a docker-archive holds. A tar entry's size comes before its
/// content, and a compressed blob does not say how big it is uncompressed: so one pass counts,
/// a second writes and checks the diff_id (no temp copy of the layer is needed).
fn save_uncompressed<W: Write>(
    store: &Store,
    layer: &LayerRecord,
    name: &str,
    tar: &mut Writer<W>,
) -> Result<(), ArchiveError> {
    let path = store.blob_path(&layer.blob);
    let compression = Compression::of_media_type(&layer.media_type).map_err(ArchiveError::Unsupported)?;
    let open = || -> Result<Box<dyn Read>, ArchiveError> {
        let file = File::open(&path).map_err(io_err("opening", &path))?;
        Ok(compression
            .decoder(BufReader::with_capacity(1 << 20, file))
            .map_err(io_err("decompressing", &path))?)
    };
    // A plain layer's size is its blob's: only a compressed one needs the counting pass.
    let size = match compression {
        Compression::None => layer.size,
        _ => io::copy(&mut open()?, &mut io::sink()).map_err(io_err("decompressing", &path))?,
    };
    let mut content = Hashing::new(open()?);
    tar.file(name, size, (&mut content).take(size))?;
    let (diff_id, written, _) = content.finish().map_err(io_err("decompressing", &path))?;
    if diff_id != layer.diff_id || written != size {
        return Err(ArchiveError::Damaged {
            diff_id: layer.diff_id.to_string(),
            actual: diff_id.to_string(),
        });
    }
    Ok(())
}

fn save_oci<W: Write>(
    store: &Store,
    named: &[(Option<Reference>, &ImageRecord)],
    tar: &mut Writer<W>,
) -> Result<(), ArchiveError> {
    tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    // A lone image is named by its tag alone, as podman and containerd do and as
    // `skopeo ... oci-archive:FILE:TAG` expects; several need their full names to differ.
    let lone = named.iter().filter(|(tag, _)| tag.is_some()).count() == 1;
    let mut manifests: Vec<Descriptor> = Vec::new();
    for (tag, image) in named {
        let path = store.blob_path(&image.manifest);
        let size = fs::metadata(&path).map_err(io_err("reading", &path))?.len();
        let mut desc =
            Descriptor::new(image.manifest_media_type.as_str().into(), size, image.manifest.clone());
        if let Some(tag) = tag {
            let ref_name = match (&tag.tag, lone) {
                (Some(t), true) => t.clone(),
                _ => tag.to_string(),
            };
            desc.set_annotations(Some(HashMap::from([
                (REF_NAME.to_string(), ref_name),
                (CONTAINERD_NAME.to_string(), tag.to_string()),
            ])));
        }
        if !manifests.contains(&desc) {
            manifests.push(desc);
        }
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .expect("every required field of the index is set");
    tar.bytes("index.json", &serde_json::to_vec(&index).expect("an index serializes"))?;
    tar.dir("blobs")?;
    tar.dir("blobs/sha256")?;
    for (_, image) in named {
        let blobs = [&image.manifest, &image.id].into_iter().chain(image.layers.iter().map(|l| &l.blob));
        for blob in blobs {
            let name = format!("blobs/sha256/{}", blob.digest());
            if !tar.has(&name) {
                let path = store.blob_path(blob);
                let file = File::open(&path).map_err(io_err("opening", &path))?;
                let size = file.metadata().map_err(io_err("reading", &path))?.len();
                tar.file(&name, size, BufReader::with_capacity(1 << 20, file))?;
            }
        }
    }
    Ok(())
}

/// The archive being written: a tar whose entries are each written once.
struct Writer<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> Writer<W> {
    fn has(&self, name: &str) -> bool {
        self.written.contains(name)
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        self.entry(name, tar::EntryType::Directory, 0o755, 0, io::empty())
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.file(name, bytes.len() as u64, bytes)
    }

    /// `content` must hold exactly `size` bytes: a tar entry's header gives its size first.
    fn file(&mut self, name: &str, size: u64, content: impl Read) -> Result<(), ArchiveError> {
        self.entry(name, tar::EntryType::Regular, 0o644, size, content)
    }

    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        size: u64,
        content: impl Read,
    ) -> Result<(), ArchiveError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        // A fixed time: the same images always make the same archive.
        header.set_mtime(0);
        self.tar
            .append_data(&mut header, name, content)
            .map_err(|source| ArchiveError::Write { name: name.to_string(), source })?;
        self.written.insert(name.to_string());
        Ok(())
    }
}

/// Loads every image of a docker-archive or an oci-archive (plain, gzip or zstd) into
/// `store` and tags them as the archive says. Every image is verified before any is stored:
/// an archive with anything wrong in it leaves the store's images and tags as they were.
pub fn load(store: &Store, archive: impl Read) -> Result<Vec<Loaded>, ArchiveError> {
    let _lock = store.lock(false)?;
    store.clean_abandoned();
    let dir = store.temp_dir("load")?;
    let (compression, raw) = sniff(archive).map_err(ArchiveError::Read)?;
    let archive = Extracted::new(compression.decoder(raw).map_err(ArchiveError::Read)?, dir.path())?;
    let mut loading = Loading::default();
    if archive.has("manifest.json") {
        load_docker(store, &archive, &mut loading)?;
    } else if archive.has("oci-layout") && archive.has("index.json") {
        load_oci(store, &archive, &mut loading)?;
    } else {
        return Err(ArchiveError::Unsupported(
            "the archive is neither a docker-archive (it has no manifest.json) nor an oci-archive \
             (it has no oci-layout and index.json)"
                .into(),
        ));
    }
    loading.commit(store)
}

/// Symlinks followed from one name, at most: enough for any tool's archive, and no loops.
const MAX_LINKS: usize = 8;

/// An archive extracted into a temp dir of ours, `root`.
struct Extracted<'a> {
    root: &'a Path,
    /// The archive's symlinks, as names relative to `root` (see `new`).
    links: HashMap<PathBuf, PathBuf>,
}

impl<'a> Extracted<'a> {
    /// Extracts the tar `archive` into `root`, an empty directory, refusing anything that
    /// could reach outside it: absolute names, `..`, hardlinks and devices. Symlinks are
    /// written by skopeo and podman (`ID/layer.tar -> ../DIFFID.tar`) and by Docker (a layer
    /// that appears twice), so they are accepted, but never made on disk: each is kept as
    /// another name of a file inside the archive, and one that points outside is refused.
    fn new(archive: impl Read, root: &'a Path) -> Result<Extracted<'a>, ArchiveError> {
        let mut links = HashMap::new();
        let mut tar = tar::Archive::new(archive);
        for entry in tar.entries().map_err(ArchiveError::Read)? {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let name = entry.path().map_err(ArchiveError::Read)?.into_owned();
            let relative = relative(&name)?;
            let path = root.join(&relative);
            let what = |what| {
                let name = name.display().to_string();
                move |source| ArchiveError::Io { name, what, source }
            };
            match entry.header().entry_type() {
                tar::EntryType::Directory => fs::create_dir_all(&path).map_err(what("creating"))?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    // A later entry of the same name replaces an earlier one, as tar has it.
                    links.remove(&relative);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(what("creating its directory"))?;
                    }
                    let mut file = File::create(&path).map_err(what("creating"))?;
                    io::copy(&mut entry, &mut file).map_err(what("extracting"))?;
                }
                tar::EntryType::Symlink => {
                    let target = entry.link_name().map_err(ArchiveError::Read)?.unwrap_or_default();
                    let outside = || ArchiveError::Entry {
                        name: name.clone(),
                        reason: "the link points outside the archive".into(),
                    };
                    let target =
                        resolve(relative.parent().unwrap_or(Path::new("")), &target).ok_or_else(outside)?;
                    links.insert(relative, target);
                }
                // Metadata for the entries that follow (their names are read through it).
                tar::EntryType::XGlobalHeader => {}
                other => {
                    return Err(ArchiveError::Entry {
                        name,
                        reason: format!("entries of type {other:?} have no place in an image archive"),
                    })
                }
            }
        }
        Ok(Extracted { root, links })
    }

    fn has(&self, name: &str) -> bool {
        self.root.join(name).is_file()
    }

    /// Opens the file `name` (that manifest.json or a descriptor gives) names in the archive,
    /// through its symlinks.
    fn open(&self, name: &str) -> Result<File, ArchiveError> {
        let mut path = relative(Path::new(name))?;
        for _ in 0..MAX_LINKS {
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => {
                    return File::open(self.root.join(path)).map_err(|source| ArchiveError::Io {
                        name: name.into(),
                        what: "opening",
                        source,
                    })
                }
            }
        }
        Err(ArchiveError::Entry {
            name: name.into(),
            reason: format!("more than {MAX_LINKS} symlinks in a row"),
        })
    }

    /// The file `name`, read whole (manifest.json, index.json, a config: small).
    fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.open(name)?.take(JSON_LIMIT + 1).read_to_end(&mut bytes).map_err(|source| ArchiveError::Io {
            name: name.into(),
            what: "reading",
            source,
        })?;
        too_big(name, bytes.len() as u64)?;
        Ok(bytes)
    }

    /// A blob of an OCI layout, read whole and checked against its descriptor (small ones only).
    fn read_blob(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>, ArchiveError> {
        let name = blob_name(desc.digest());
        too_big(&name, desc.size())?;
        let mut bytes = Vec::new();
        // One byte more than expected is enough to tell that a blob is too big.
        self.open(&name)?
            .take(desc.size().saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| ArchiveError::Io { name, what: "reading", source })?;
        check(what, desc.digest(), Some(desc.size()), &digest::of(&bytes), bytes.len() as u64)?;
        Ok(bytes)
    }
}

/// A name from the archive made relative to its root, if it is relative and has no `..`:
/// then it cannot leave the root, which holds no symlinks (see `Extracted::new`).
fn relative(name: &Path) -> Result<PathBuf, ArchiveError> {
    let mut path = PathBuf::new();
    for part in name.components() {
        match part {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(ArchiveError::Entry {
                    name: name.to_path_buf(),
                    reason: "the name is absolute or holds '..'".into(),
                })
            }
        }
    }
    Ok(path)
}

/// A symlink's `target`, seen from the directory `dir`, as a name relative to the archive's
/// root; `None` if it is absolute or leaves the root.
fn resolve(dir: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<_> = dir.components().collect();
    for part in target.components() {
        match part {
            Component::Normal(_) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Manifests, indexes and configs are read whole: only up to the same limit as from a registry.
fn too_big(name: &str, size: u64) -> Result<(), ArchiveError> {
    if size > JSON_LIMIT {
        return Err(ArchiveError::Unsupported(format!(
            "{name} is over {JSON_LIMIT} bytes, too big for JSON metadata"
        )));
    }
    Ok(())
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}

/// A layer's diff_id against the one its config gives.
fn same_diff_id(what: &str, config: &Digest, actual: &Digest) -> Result<(), Mismatch> {
    check(&format!("{what}: the uncompressed"), config, None, actual, 0)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json { what: what.into(), source })
}

/// What a load has verified so far, none of it visible in the store yet.
#[derive(Default)]
struct Loading {
    /// Layers unpacked into temp dirs, by blob digest.
    layers: HashMap<Digest, Unpacked>,
    /// Configs and manifests.
    blobs: HashMap<Digest, Vec<u8>>,
    images: Vec<Loaded>,
}

impl Loading {
    /// Keeps a layer whose uncompressed digest is what the config says.
    fn keep(&mut self, what: &str, layer: Unpacked, diff_id: &Digest) -> Result<(), ArchiveError> {
        same_diff_id(what, diff_id, &layer.diff_id)?;
        self.layers.insert(layer.digest.clone(), layer);
        Ok(())
    }

    /// An image named twice (two tags of one manifest) is stored once, with both tags.
    fn image(&mut self, config: Vec<u8>, manifest: Vec<u8>, loaded: Loaded) {
        self.blobs.insert(loaded.image.id.clone(), config);
        self.blobs.insert(loaded.image.manifest.clone(), manifest);
        match self.images.iter_mut().find(|l| l.image.id == loaded.image.id) {
            Some(known) => {
                for tag in loaded.tags {
                    if !known.tags.contains(&tag) {
                        known.tags.push(tag);
                    }
                }
                known.unused_ref_name = known.unused_ref_name.take().or(loaded.unused_ref_name);
            }
            None => self.images.push(loaded),
        }
    }

    /// Makes everything visible: layers and blobs first, then the images that use them.
    fn commit(self, store: &Store) -> Result<Vec<Loaded>, ArchiveError> {
        for layer in self.layers.into_values() {
            layer.commit(store)?;
        }
        for (digest, bytes) in &self.blobs {
            store.put_blob(digest, bytes)?;
        }
        store.add_images(self.images.iter().map(|l| (l.image.clone(), l.tags.as_slice())))?;
        Ok(self.images)
    }
}

fn load_docker(store: &Store, archive: &Extracted, loading: &mut Loading) -> Result<(), ArchiveError> {
    let manifest: Vec<DockerManifest> = parse(&archive.read("manifest.json")?, "manifest.json")?;
    // Images of one archive share layer files.
    let mut layers_by_name: HashMap<&str, LayerRecord> = HashMap::new();
    for image in &manifest {
        let config_bytes = archive.read(&image.config)?;
        let config: ImageConfiguration = parse(&config_bytes, &image.config)?;
        let diff_ids = diff_ids(&config, image.layers.len())
            .map_err(|e| ArchiveError::Unsupported(format!("{}: {e}", image.config)))?;
        let mut layers = Vec::new();
        for (name, diff_id) in image.layers.iter().zip(diff_ids) {
            let layer = match layers_by_name.get(name.as_str()) {
                Some(layer) => {
                    same_diff_id(&format!("layer {name}"), &diff_id, &layer.diff_id)?;
                    layer.clone()
                }
                None => load_docker_layer(store, archive, name, &diff_id, loading)?,
            };
            layers_by_name.insert(name, layer.clone());
            layers.push(layer);
        }
        let tags = image
            .repo_tags
            .iter()
            .flatten()
            .map(|t| {
                Reference::from_str(t).map_err(|e| ArchiveError::Unsupported(format!("manifest.json: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (record, manifest) = own_manifest(&config_bytes, config.created().clone(), layers);
        loading.image(config_bytes, manifest, Loaded { image: record, tags, unused_ref_name: None });
    }
    Ok(())
}

/// A docker-archive's layer, stored as given: its type is what its first bytes show.
fn load_docker_layer(
    store: &Store,
    archive: &Extracted,
    name: &str,
    diff_id: &Digest,
    loading: &mut Loading,
) -> Result<LayerRecord, ArchiveError> {
    let io = |what| move |source| ArchiveError::Io { name: name.into(), what, source };
    let mut file = archive.open(name)?;
    let compression = sniff(&mut file).map_err(io("reading"))?.0;
    file.rewind().map_err(io("reading"))?;
    let media_type = match compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    }
    .to_string();
    // Already stored (loaded or pulled before)? Then the file need not be unpacked, only
    // hashed: as given, for the blob's digest, and decompressed, to check the diff_id.
    if store.has_layer(diff_id) {
        let mut blob = Hashing::new(&mut file);
        let decompressed = compression.decoder(&mut blob).map_err(io("decompressing"))?;
        let (tar_digest, _, _) = Hashing::new(decompressed).finish().map_err(io("decompressing"))?;
        let (digest, size, _) = blob.finish().map_err(io("reading"))?;
        if tar_digest == *diff_id && store.has_blob(&digest) {
            return Ok(LayerRecord { blob: digest, diff_id: diff_id.clone(), media_type, size });
        }
        file.rewind().map_err(io("reading"))?;
    }
    let layer_error = |source| ArchiveError::Layer { layer: name.into(), source };
    let layer = stage_layer(store, BufReader::new(file), compression)
        .and_then(|s| s.unpacked())
        .map_err(layer_error)?;
    let record = LayerRecord {
        blob: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        media_type,
        size: layer.size,
    };
    loading.keep(&format!("layer {name}"), layer, diff_id)?;
    Ok(record)
}

fn load_oci(store: &Store, archive: &Extracted, loading: &mut Loading) -> Result<(), ArchiveError> {
    let index: ImageIndex = parse(&archive.read("index.json")?, "index.json")?;
    for desc in index.manifests() {
        let (tags, unused_ref_name) = oci_tags(desc);
        let manifest_desc = if is_index(desc.media_type().as_ref()) {
            // A multi-platform image: this host's.
            let nested: ImageIndex = parse(&archive.read_blob(desc, "an image index")?, "an image index")?;
            choose(&nested, &Platform::host()).cloned().ok_or_else(|| {
                ArchiveError::Unsupported(format!(
                    "the image index {} has no image for {}",
                    desc.digest(),
                    Platform::host()
                ))
            })?
        } else {
            desc.clone()
        };
        if is_index(manifest_desc.media_type().as_ref()) {
            return Err(ArchiveError::Unsupported(format!(
                "{} is an index within an index within index.json: only one level is supported",
                manifest_desc.digest()
            )));
        }
        let manifest_bytes = archive.read_blob(&manifest_desc, "an image manifest")?;
        let manifest: ImageManifest = parse(&manifest_bytes, "an image manifest")?;
        let config_bytes = archive.read_blob(manifest.config(), "an image config")?;
        let config: ImageConfiguration = parse(&config_bytes, "an image config")?;
        let layers = layer_records(&manifest, &config).map_err(ArchiveError::Unsupported)?;
        for layer in &layers {
            load_oci_layer(store, archive, layer, loading)?;
        }
        let image = ImageRecord {
            id: manifest.config().digest().clone(),
            manifest: manifest_desc.digest().clone(),
            manifest_media_type: manifest_desc.media_type().to_string(),
            layers,
            created: config.created().clone(),
            repo_digests: Vec::new(),
        };
        loading.image(config_bytes, manifest_bytes, Loaded { image, tags, unused_ref_name });
    }
    Ok(())
}

/// The tag an index.json descriptor gives: its ref.name if that is a full reference, else
/// containerd's full name; a bare ref.name (`latest`) alone names no repository.
fn oci_tags(desc: &Descriptor) -> (Vec<Reference>, Option<String>) {
    let annotation = |key| desc.annotations().as_ref().and_then(|a| a.get(key));
    let ref_name = annotation(REF_NAME).filter(|r| r.contains(['/', ':']));
    match ref_name.or(annotation(CONTAINERD_NAME)).map(|n| Reference::from_str(n)) {
        Some(Ok(tag)) => (vec![tag], None),
        _ => (Vec::new(), annotation(REF_NAME).cloned()),
    }
}

/// An OCI layout's layer, checked against its descriptor and the config's diff_id.
fn load_oci_layer(
    store: &Store,
    archive: &Extracted,
    layer: &LayerRecord,
    loading: &mut Loading,
) -> Result<(), ArchiveError> {
    let what = format!("layer {}", layer.blob);
    if let Some(staged) = loading.layers.get(&layer.blob) {
        // Another image of the archive had it: the same blob must give the same diff_id.
        return Ok(same_diff_id(&what, &layer.diff_id, &staged.diff_id)?);
    }
    if store.has_layer(&layer.diff_id) && store.has_blob(&layer.blob) {
        return Ok(());
    }
    let file = archive.open(&blob_name(&layer.blob))?;
    let compression = Compression::of_media_type(&layer.media_type).map_err(ArchiveError::Unsupported)?;
    let layer_error = |source| ArchiveError::Layer { layer: layer.blob.to_string(), source };
    let staged = stage_layer(store, BufReader::new(file), compression).map_err(layer_error)?;
    check(&what, &layer.blob, Some(layer.size), &staged.digest, staged.size)?;
    loading.keep(&what, staged.unpacked().map_err(layer_error)?, &layer.diff_id)
}
