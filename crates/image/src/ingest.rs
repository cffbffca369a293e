//! What `pull`, `load` and `import` share: a layer streamed into the store's temp space
//! (kept as it came, decompressed, unpacked and hashed on the way), the layers a config and
//! a manifest describe, and the OCI manifest rocker writes for images it puts together itself.

use std::io::{self, BufWriter, Read};
use std::str::FromStr;

use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
};

use crate::digest::{self, Hashing};
use crate::layer::Compression;
use crate::store::{ImageRecord, LayerRecord, Store, StoreError, Temp};
use crate::unpack::{unpack, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What was read is not what the image says it is.
#[derive(Debug, thiserror::Error)]
#[error("{what}: expected {expected}, got {actual}; nothing was stored")]
pub struct Mismatch {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// Checks what was read against what the image says: a blob's size (when given) and digest,
/// or a layer's diff_id.
pub(crate) fn check(
    what: &str,
    expected: &Digest,
    expected_size: Option<u64>,
    actual: &Digest,
    actual_size: u64,
) -> Result<(), Mismatch> {
    let mismatch = |kind: &str, expected: String, actual: String| Mismatch {
        what: format!("{what} {kind}"),
        expected,
        actual,
    };
    match expected_size {
        Some(size) if size != actual_size => Err(mismatch("size", size.to_string(), actual_size.to_string())),
        _ if actual != expected => Err(mismatch("digest", expected.to_string(), actual.to_string())),
        _ => Ok(()),
    }
}

/// A layer read into the store's temp space: its blob kept exactly as it came and hashed. How
/// unpacking went is held back until the caller has checked the blob's digest (see
/// `unpacked`), so that a corrupt blob is reported as what it is, not as the broken tar or
/// gzip stream it caused.
pub(crate) struct Staged {
    blob: Temp,
    pub digest: Digest,
    pub size: u64,
    unpacked: Result<(Temp, Digest, u64), LayerError>,
}

impl Staged {
    pub fn unpacked(self) -> Result<Unpacked, LayerError> {
        let (dir, diff_id, content) = self.unpacked?;
        Ok(Unpacked { blob: self.blob, dir, digest: self.digest, size: self.size, diff_id, content })
    }
}

/// A staged layer that unpacked, still invisible to everyone else.
pub(crate) struct Unpacked {
    blob: Temp,
    dir: Temp,
    pub digest: Digest,
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of file contents unpacked: the layer's size as `images` shows it.
    content: u64,
}

impl Unpacked {
    /// Moves the layer and its blob into place under the digests computed while staging;
    /// the caller has compared them with what the image claims.
    pub fn commit(self, store: &Store) -> Result<(), StoreError> {
        store.commit_layer(self.dir, &self.diff_id, self.content)?;
        store.commit_blob(self.blob, &self.digest)
    }
}

/// Streams `body` (compressed as `compression` says) to a temp blob and, decompressed, into a
/// temp layer directory, hashing both sides in the one pass.
pub(crate) fn stage_layer(
    store: &Store,
    body: impl Read,
    compression: Compression,
) -> Result<Staged, LayerError> {
    let io = |what| move |source| LayerError::Io { what, source };
    let (blob, blob_file) = store.temp_file("blob")?;
    let dir = store.temp_dir("layer")?;
    let mut compressed = Hashing::with_tee(body, BufWriter::with_capacity(1 << 20, blob_file));
    let unpacked = compression.decoder(&mut compressed).map_err(io("decompressing")).and_then(|decoder| {
        let mut tar = Hashing::new(decoder);
        let stats = unpack(&mut tar, dir.path())?;
        Ok((tar.finish().map_err(io("decompressing"))?.0, stats.bytes))
    });
    // Reads to the end even when unpacking stopped early, so that the digest covers the blob.
    let (digest, size, tee) = compressed.finish().map_err(io("reading"))?;
    // Flushed, not synced, like the unpacked files: safe from a killed process (the page
    // cache keeps it), and a disk flush per layer would buy no guarantee the layer has.
    tee.into_inner().map_err(|e| io("writing the blob")(e.into_error()))?;
    Ok(Staged { blob, digest, size, unpacked: unpacked.map(|(diff_id, content)| (dir, diff_id, content)) })
}

/// Reads what compression the first bytes show, for tarballs that carry no media type, and
/// gives back a reader of the whole stream, those bytes included (it may be a pipe).
pub(crate) fn sniff<R: Read>(mut r: R) -> io::Result<(Compression, impl Read)> {
    let mut head = Vec::with_capacity(4);
    // `take` + `read_to_end` loops: a pipe may hand over fewer bytes than asked for.
    r.by_ref().take(4).read_to_end(&mut head)?;
    Ok((Compression::sniff(&head), io::Cursor::new(head).chain(r)))
}

/// The config's diff_ids, one per layer of a manifest that lists `layers`.
pub(crate) fn diff_ids(config: &ImageConfiguration, layers: usize) -> Result<Vec<Digest>, String> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != layers {
        return Err(format!("the image config lists {} layers, its manifest {layers}", diff_ids.len()));
    }
    diff_ids.iter().map(|d| Digest::from_str(d).map_err(|_| format!("bad diff_id {d:?}"))).collect()
}

/// The layers of `manifest`, paired with `config`'s diff_ids; foreign layer types are refused.
pub(crate) fn layer_records(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Vec<LayerRecord>, String> {
    let diff_ids = diff_ids(config, manifest.layers().len())?;
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(desc, diff_id)| {
            let media_type = desc.media_type().to_string();
            Compression::of_media_type(&media_type)?;
            require_sha256(desc.digest())?;
            require_sha256(&diff_id)?;
            Ok(LayerRecord { blob: desc.digest().clone(), diff_id, media_type, size: desc.size() })
        })
        .collect()
}

/// The store is addressed by sha256, and only sha256 is verified: a blob named by another
/// algorithm is refused before anything looks for it.
pub(crate) fn require_sha256(d: &Digest) -> Result<(), String> {
    match d.algorithm() {
        oci_spec::image::DigestAlgorithm::Sha256 => Ok(()),
        other => Err(format!("{d} is a {other} digest; rocker stores and verifies sha256 digests only")),
    }
}

/// An image put together here (imported, or loaded from a docker-archive, which has no
/// manifest): an OCI manifest over `config` and the layers as stored. Returns the record and
/// the manifest's bytes; storing them is the caller's.
pub(crate) fn own_manifest(
    config: &[u8],
    created: Option<String>,
    layers: Vec<LayerRecord>,
) -> (ImageRecord, Vec<u8>) {
    let id = digest::of(config);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(MediaType::ImageConfig, config.len() as u64, id.clone()))
        .layers(
            layers
                .iter()
                .map(|l| Descriptor::new(l.media_type.as_str().into(), l.size, l.blob.clone()))
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("every required field of the manifest is set");
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let record = ImageRecord {
        id,
        manifest: digest::of(&bytes),
        manifest_media_type: MediaType::ImageManifest.to_string(),
        layers,
        created,
        repo_digests: Vec::new(),
    };
    (record, bytes)
}
