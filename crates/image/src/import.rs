//! `rocker import TARBALL|- [REF]`: a root filesystem tarball (what `docker export` writes,
//! plain, gzip or zstd) made into a one-layer image, as `docker import` does.
//!
//! The layer is stored uncompressed: its blob's digest is then its diff_id, and nothing is
//! recompressed for the store's sake.

use std::io::{self, Read};

use oci_spec::image::{ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, MediaType, RootFsBuilder};

use crate::ingest::{own_manifest, sniff, stage_layer, LayerError};
use crate::layer::Compression;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, Store, StoreError};

/// What `docker import --change` would set (only the command, so far), and the image's
/// `created` time (RFC 3339), which the caller gives: the crate has no clock of its own.
#[derive(Debug, Clone, Default)]
pub struct ImportConfig {
    /// The image's default command.
    pub cmd: Option<Vec<String>>,
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the tarball: {0}")]
    Read(#[source] io::Error),
    #[error("the tarball: {0}")]
    Layer(#[from] LayerError),
}

/// Imports the tarball `tar` and tags the image `tag`, or leaves it dangling without one.
pub fn import(
    store: &Store,
    tar: impl Read,
    tag: Option<&Reference>,
    config: ImportConfig,
) -> Result<ImageRecord, ImportError> {
    let _lock = store.lock(false)?;
    store.clean_abandoned();
    let (compression, raw) = sniff(tar).map_err(ImportError::Read)?;
    let staged = stage_layer(store, compression.decoder(raw).map_err(ImportError::Read)?, Compression::None)?;
    let layer = staged.unpacked()?;
    let created = config.created;
    let mut runtime = ConfigBuilder::default().build().expect("a config has no required fields");
    runtime.set_cmd(config.cmd);
    let image_config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Platform::host().architecture.as_str())
        .os("linux")
        .config(runtime)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![layer.diff_id.to_string()])
                .build()
                .expect("every field of rootfs is set"),
        )
        .history(vec![HistoryBuilder::default()
            .created(created.clone())
            .created_by("rocker import")
            .build()
            .expect("a history entry has no required fields")])
        .build()
        .expect("every required field of the config is set");
    let config_bytes = serde_json::to_vec(&image_config).expect("a config serializes");
    let record = LayerRecord {
        blob: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        media_type: MediaType::ImageLayer.to_string(),
        size: layer.size,
    };
    let (image, manifest) = own_manifest(&config_bytes, Some(created), vec![record]);
    layer.commit(store)?;
    store.put_blob(&image.id, &config_bytes)?;
    store.put_blob(&image.manifest, &manifest)?;
    store.add_image(image.clone(), tag.map(std::slice::from_ref).unwrap_or_default())?;
    Ok(image)
}
