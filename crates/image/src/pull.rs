//! `pull`: manifest (an index resolved to this host's platform), config, then the missing
//! layers in parallel, each decompressed and unpacked as it streams in, verified, and only
//! then renamed into the store.

use std::io::{self, IsTerminal, Read, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest;
use crate::ingest::{check, layer_records, require_sha256, stage_layer, LayerError, Mismatch};
use crate::layer::Compression;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{self, Client, RegistryError};
use crate::store::{short_hex, ImageRecord, LayerRecord, Store, StoreError};

/// Layers fetched at once: enough to fill a link, few enough not to thrash a 2-core machine.
const PARALLEL_LAYERS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer {layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: LayerError,
    },
    #[error("layer {layer}: {what}: {source}")]
    Io {
        layer: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{what} is not valid JSON of its kind: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference} has no image for {wanted} (it has: {available}); choose one with --platform")]
    NoPlatform { reference: String, wanted: String, available: String },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
}

/// How a pull reports its progress (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar per layer: for a terminal.
    Bars,
    /// A line when a layer starts and ends: for logs.
    Lines,
    Quiet,
}

impl Progress {
    pub fn for_stderr(quiet: bool) -> Progress {
        match (quiet, io::stderr().is_terminal()) {
            (true, _) => Progress::Quiet,
            (false, true) => Progress::Bars,
            (false, false) => Progress::Lines,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub registry: registry::Options,
    pub platform: Option<String>,
    pub progress: Progress,
}

/// Pulls `reference` into `store` and tags it; returns the stored image.
pub fn pull(store: &Store, reference: &Reference, options: &PullOptions) -> Result<ImageRecord, PullError> {
    let wanted = match &options.platform {
        Some(p) => Platform::from_str(p).map_err(PullError::Unsupported)?,
        None => Platform::host(),
    };
    let _lock = store.lock(false)?;
    store.clean_abandoned();
    let client = Client::new(reference, &options.registry);
    let top = client.manifest(&reference.manifest_ref(), reference.digest.as_ref())?;
    let top_digest = top.digest.clone();
    let manifest = if is_index(&top.media_type) {
        let index: ImageIndex = parse(&top.bytes, "the image index")?;
        let chosen = choose(&index, &wanted).ok_or_else(|| PullError::NoPlatform {
            reference: reference.to_string(),
            wanted: wanted.to_string(),
            available: index
                .manifests()
                .iter()
                .filter_map(|m| m.platform().as_ref().map(|p| Platform::of(p).to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        client.manifest(chosen.digest().as_ref(), Some(chosen.digest()))?
    } else {
        top
    };
    let image: ImageManifest = parse(&manifest.bytes, "the image manifest")?;
    require_sha256(image.config().digest()).map_err(PullError::Unsupported)?;
    let config = fetch_config(store, &client, image.config())?;
    // A single-platform image: an explicit --platform must match it, as Docker checks.
    let got = Platform::of_config(&config);
    if options.platform.is_some() && !wanted.matches(&got) {
        return Err(PullError::NoPlatform {
            reference: reference.to_string(),
            wanted: wanted.to_string(),
            available: got.to_string(),
        });
    }
    let layers = layer_records(&image, &config).map_err(PullError::Unsupported)?;
    fetch_layers(store, &client, &layers, options.progress)?;
    store.put_blob(&manifest.digest, &manifest.bytes)?;
    let record = ImageRecord {
        id: image.config().digest().clone(),
        manifest: manifest.digest,
        manifest_media_type: manifest.media_type,
        layers,
        created: config.created().clone(),
        repo_digests: vec![format!("{}@{top_digest}", reference.name())],
    };
    let tags: Vec<Reference> = reference.tag.iter().map(|t| reference.with_tag(t)).collect();
    store.add_image(record.clone(), &tags)?;
    Ok(record)
}

pub(crate) fn is_index(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, PullError> {
    serde_json::from_slice(bytes).map_err(|source| PullError::Json { what: what.into(), source })
}

pub(crate) fn choose<'a>(index: &'a ImageIndex, wanted: &Platform) -> Option<&'a Descriptor> {
    index.manifests().iter().find(|m| m.platform().as_ref().is_some_and(|p| wanted.matches(&Platform::of(p))))
}

fn fetch_config(store: &Store, client: &Client, desc: &Descriptor) -> Result<ImageConfiguration, PullError> {
    let bytes = if store.has_blob(desc.digest()) {
        store.read_blob(desc.digest())?
    } else {
        if desc.size() > registry::JSON_LIMIT {
            return Err(PullError::Unsupported(format!(
                "the image config is said to be {} bytes; configs over {} are refused",
                desc.size(),
                registry::JSON_LIMIT
            )));
        }
        let mut bytes = Vec::new();
        let what = |w| move |source| PullError::Io { layer: "config".into(), what: w, source };
        client
            .blob(desc.digest())?
            .take(desc.size().saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(what("reading"))?;
        check("the image config", desc.digest(), Some(desc.size()), &digest::of(&bytes), bytes.len() as u64)?;
        store.put_blob(desc.digest(), &bytes)?;
        bytes
    };
    parse(&bytes, "the image config")
}

/// Fetches the layers the store lacks, `PARALLEL_LAYERS` at a time; scoped threads, all
/// joined before this returns (a container may be cloned right after).
fn fetch_layers(
    store: &Store,
    client: &Client,
    layers: &[LayerRecord],
    progress: Progress,
) -> Result<(), PullError> {
    let bars = Bars::new(progress);
    let missing: Vec<&LayerRecord> = layers
        .iter()
        .filter(|l| {
            let have = store.has_layer(&l.diff_id) && store.has_blob(&l.blob);
            if have {
                bars.line(&l.blob, "Already exists");
            }
            !have
        })
        .collect();
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_LAYERS.min(missing.len()) {
            s.spawn(|| {
                while let Some(layer) = missing.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if first_error.lock().expect("not poisoned").is_some() {
                        return;
                    }
                    if let Err(e) = fetch_layer(store, client, layer, &bars) {
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("not poisoned") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn fetch_layer(store: &Store, client: &Client, layer: &LayerRecord, bars: &Bars) -> Result<(), PullError> {
    let name = layer.blob.to_string();
    let bar = bars.start(layer);
    // Never more than the manifest promised (one byte more shows the lie): a registry
    // cannot fill the disk through an endless body.
    let body = client.blob(&layer.blob)?.take(layer.size.saturating_add(1));
    let compression = Compression::of_media_type(&layer.media_type).map_err(PullError::Unsupported)?;
    let layer_error = |source| PullError::Layer { layer: name.clone(), source };
    let staged = stage_layer(store, bar.wrap_read(body), compression).map_err(layer_error)?;
    check(&format!("layer {name}"), &layer.blob, Some(layer.size), &staged.digest, staged.size)?;
    let unpacked = staged.unpacked().map_err(layer_error)?;
    check(&format!("layer {name} uncompressed"), &layer.diff_id, None, &unpacked.diff_id, 0)?;
    unpacked.commit(store)?;
    bar.finish("Pull complete");
    Ok(())
}

/// Progress on stderr: indicatif bars on a terminal, plain lines otherwise, or nothing.
struct Bars {
    mode: Progress,
    multi: MultiProgress,
}

struct Bar<'a> {
    owner: &'a Bars,
    bar: ProgressBar,
    blob: Digest,
}

impl Bars {
    fn new(mode: Progress) -> Bars {
        let target =
            if mode == Progress::Bars { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Bars { mode, multi: MultiProgress::with_draw_target(target) }
    }

    fn line(&self, blob: &Digest, what: &str) {
        match self.mode {
            Progress::Quiet => {}
            Progress::Lines => {
                let _ = writeln!(io::stderr(), "{}: {what}", short_hex(blob));
            }
            Progress::Bars => {
                let _ = self.multi.println(format!("{}: {what}", short_hex(blob)));
            }
        }
    }

    fn start(&self, layer: &LayerRecord) -> Bar<'_> {
        let bar = self.multi.add(ProgressBar::new(layer.size));
        bar.set_style(
            ProgressStyle::with_template("{prefix}: {bar:30} {bytes}/{total_bytes} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(short_hex(&layer.blob).to_string());
        if self.mode == Progress::Lines {
            self.line(&layer.blob, "Pulling");
        }
        Bar { owner: self, bar, blob: layer.blob.clone() }
    }
}

impl Bar<'_> {
    fn wrap_read<R: Read>(&self, r: R) -> impl Read {
        self.bar.wrap_read(r)
    }

    fn finish(self, what: &str) {
        self.bar.finish_and_clear();
        self.owner.line(&self.blob, what);
    }
}
