//! The image commands: pull, images, rmi, tag, inspect, prune, and finding a `run`'s image.

use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Read};
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{Digest, ImageConfiguration};
use rocker_image::archive::{self, ArchiveFormat, Loaded};
use rocker_image::import::{self, ImportConfig};
use rocker_image::store::{short_id, Index};
use rocker_image::{registry, ImageRecord, Progress, Reference, Store};
use serde_json::{json, Value};

use crate::container_root;
use crate::engine::{parse_reference, Engine};
use crate::error::EngineError;

/// `--pull`: when `run` fetches its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<PullPolicy, String> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => Err(format!("invalid --pull {s:?}: use missing, always or never")),
        }
    }
}

/// Pulls `name`; also says whether the name now means another image than before (Docker's
/// "Downloaded newer image" against "Image is up to date").
pub fn pull(
    engine: &Engine,
    name: &str,
    platform: Option<String>,
    progress: Progress,
) -> Result<(ImageRecord, bool), EngineError> {
    let store = engine.store()?;
    let before = store.index()?.find(name).map(|i| i.id.clone());
    pull_into(engine, &store, name, before, platform, progress)
}

/// `before`: the image `name` meant until now, as the caller found it in the index.
fn pull_into(
    engine: &Engine,
    store: &Store,
    name: &str,
    before: Option<Digest>,
    platform: Option<String>,
    progress: Progress,
) -> Result<(ImageRecord, bool), EngineError> {
    let reference = parse_reference(name)?;
    let options = engine.pull_options(&reference, platform, progress)?;
    let image = rocker_image::pull(store, &reference, &options)?;
    let newer = before.as_ref() != Some(&image.id);
    Ok((image, newer))
}

/// The image `run` uses, pulled first if the policy says so.
pub fn for_run(
    engine: &Engine,
    store: &Store,
    name: &str,
    policy: PullPolicy,
    progress: Progress,
) -> Result<ImageRecord, EngineError> {
    let found = store.index()?.find(name).cloned();
    match (policy, found) {
        (PullPolicy::Never, None) => Err(EngineError::NotFound(format!(
            "no such image: {name} is not in the local store, and --pull never forbids pulling it"
        ))),
        (PullPolicy::Missing | PullPolicy::Never, Some(image)) => Ok(image),
        (policy, found) => {
            if policy == PullPolicy::Missing && progress != Progress::Quiet {
                eprintln!("Unable to find image '{name}' locally");
            }
            Ok(pull_into(engine, store, name, found.map(|i| i.id), None, progress)?.0)
        }
    }
}

/// The image's config (Entrypoint, Cmd, Env, ...), as stored.
pub fn config(store: &Store, image: &ImageRecord) -> Result<ImageConfiguration, EngineError> {
    let bytes = store.read_blob(&image.id)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        EngineError::InvalidArgument(format!("the stored config of image {} is not valid: {e}", image.id))
    })
}

/// One row of `rocker images`.
pub struct Listed {
    pub repository: String,
    pub tag: String,
    pub id: String,
    pub digest: String,
    pub created: String,
    pub size: u64,
}

/// The digest part of the image's first repository digest (`name@sha256:...`), as
/// `docker images --digests` and `docker pull` show it; empty if it has none.
pub fn repo_digest(image: &ImageRecord) -> &str {
    image.repo_digests.first().and_then(|d| d.split_once('@')).map_or("", |(_, d)| d)
}

pub fn list(engine: &Engine) -> Result<Vec<Listed>, EngineError> {
    let store = engine.store()?;
    let index = store.index()?;
    let mut rows = Vec::new();
    for image in index.images.values() {
        let digest = repo_digest(image).to_string();
        // Once per image, not per tag: it reads each layer's size.
        let size = store.image_size(image);
        let row = |repository: String, tag: String| Listed {
            repository,
            tag,
            id: short_id(&image.id),
            digest: digest.clone(),
            created: image.created.clone().unwrap_or_default(),
            size,
        };
        let tags = index.tags_of(image.id.as_ref());
        if tags.is_empty() {
            rows.push(row("<none>".into(), "<none>".into()));
        }
        for t in tags {
            let r = Reference::from_str(t)?;
            rows.push(row(r.name(), r.tag.unwrap_or_default()));
        }
    }
    rows.sort_by(|a, b| b.created.cmp(&a.created).then(a.repository.cmp(&b.repository)));
    Ok(rows)
}

pub fn remove(engine: &Engine, name: &str, force: bool) -> Result<Vec<String>, EngineError> {
    let store = engine.store()?;
    Ok(store.remove(name, force, || container_root::in_use(engine))?)
}

pub fn prune(engine: &Engine) -> Result<Vec<String>, EngineError> {
    let store = engine.store()?;
    Ok(store.prune(|| container_root::in_use(engine))?)
}

pub fn tag(engine: &Engine, source: &str, target: &str) -> Result<(), EngineError> {
    let store = engine.store()?;
    let target = parse_reference(target)?;
    if target.digest.is_some() {
        return Err(EngineError::InvalidArgument(format!("{target}: a tag cannot name a digest")));
    }
    Ok(store.tag(source, &target)?)
}

fn find<'a>(index: &'a Index, name: &str) -> Result<&'a ImageRecord, EngineError> {
    index.find(name).ok_or_else(|| EngineError::NotFound(format!("no such image: {name}")))
}

/// Docker's `image inspect` object: the config, with the store's facts around it.
pub fn inspect(engine: &Engine, name: &str) -> Result<Value, EngineError> {
    let store = engine.store()?;
    let index = store.index()?;
    let image = find(&index, name)?;
    let config = serde_json::to_value(config(&store, image)?).expect("a config serializes");
    let field = |k: &str| config.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": index.tags_of(image.id.as_ref()),
        "RepoDigests": image.repo_digests,
        "Created": field("created"),
        "Author": field("author"),
        "Architecture": field("architecture"),
        "Os": field("os"),
        "Variant": field("variant"),
        "Config": field("config"),
        "RootFS": field("rootfs"),
        "History": field("history"),
        "Size": store.image_size(image),
        "Manifest": { "Digest": image.manifest.to_string(), "MediaType": image.manifest_media_type },
    }))
}

/// Docker's spellings of a registry: `https://host/`, `index.docker.io` and none (Docker Hub).
pub fn registry_name(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    if s == "index.docker.io" || s == "registry-1.docker.io" {
        "docker.io".into()
    } else {
        s.into()
    }
}

/// `login`: the credentials are stored only once the registry has accepted them.
pub fn login(engine: &Engine, registry: &str, user: &str, password: &str) -> Result<(), EngineError> {
    let options = registry::Options {
        insecure_registries: engine.insecure_registries.clone(),
        credentials: Some((user.into(), password.into())),
    };
    registry::Client::for_registry(registry, &options).ping()?;
    Ok(engine.credentials().store(registry, user, password)?)
}

/// `logout`: false when no credentials were stored.
pub fn logout(engine: &Engine, registry: &str) -> Result<bool, EngineError> {
    Ok(engine.credentials().remove(registry)?)
}

/// `import FILE|- [REF]`: a root filesystem tarball as a one-layer image.
pub fn import(
    engine: &Engine,
    source: &str,
    reference: Option<&str>,
    cmd: Option<Vec<String>>,
) -> Result<ImageRecord, EngineError> {
    let store = engine.store()?;
    let reference = reference.map(parse_reference).transpose()?;
    let config = ImportConfig { cmd, created: rocker_runtime::state::now_rfc3339() };
    let input = input((source != "-").then(|| Path::new(source)))?;
    Ok(import::import(&store, input, reference.as_ref(), config)?)
}

/// `load [-i FILE]`: the images of a docker-archive or oci-archive (stdin without a file).
pub fn load(engine: &Engine, input: Option<&Path>) -> Result<Vec<Loaded>, EngineError> {
    let store = engine.store()?;
    Ok(archive::load(&store, self::input(input)?)?)
}

/// What `import` and `load` read: the file, or stdin without one.
fn input(path: Option<&Path>) -> Result<Box<dyn Read>, EngineError> {
    Ok(match path {
        None => Box::new(io::stdin().lock()),
        Some(path) => Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(path).map_err(EngineError::io("opening", path))?,
        )),
    })
}

/// `save [-o FILE] [--format F] IMAGE...`. A file is written beside its final name and
/// renamed once complete, so a failed save leaves no half archive under that name.
pub fn save(
    engine: &Engine,
    names: &[String],
    format: &str,
    output: Option<&Path>,
) -> Result<(), EngineError> {
    let format = match format {
        "docker-archive" | "docker" => ArchiveFormat::DockerArchive,
        "oci-archive" | "oci" => ArchiveFormat::OciArchive,
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid --format {other:?}: use docker-archive or oci-archive"
            )))
        }
    };
    let store = engine.store()?;
    let index = store.index()?;
    let images = names
        .iter()
        .map(|n| find(&index, n).map(|image| (n.clone(), image.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(path) = output else {
        if io::stdout().is_terminal() {
            return Err(EngineError::InvalidArgument(
                "refusing to write an archive to a terminal: use -o FILE or redirect stdout".into(),
            ));
        }
        let out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        return Ok(archive::save(&store, &images, format, out)?);
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = path.with_file_name(format!(".{name}.rocker-{}-{nanos:x}", std::process::id()));
    // create_new: never through a symlink or over a file someone planted at that name.
    let file = File::create_new(&tmp).map_err(EngineError::io("creating", &tmp))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let written = archive::save(&store, &images, format, &mut out)
        .map_err(EngineError::from)
        .and_then(|()| out.into_inner().map_err(|e| EngineError::io("writing", &tmp)(e.into_error())))
        .and_then(|file| file.sync_all().map_err(EngineError::io("writing", &tmp)))
        .and_then(|()| fs::rename(&tmp, path).map_err(EngineError::io("renaming to", path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}
