//! `save`, `load` and `import` with real files in temp stores, and against the tools people
//! move images with: skopeo reads rocker's archives and writes archives rocker loads; podman
//! (in a private root, vfs) loads rocker's saves. Hostile and inconsistent archives change
//! nothing. Run as root (layers hold whiteouts: character devices).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use oci_spec::image::{Digest, ImageConfiguration, ImageManifest};
use rocker_image::archive::{load, save, ArchiveError, ArchiveFormat, Loaded};
use rocker_image::import::{import, ImportConfig, ImportError};
use rocker_image::layer::Compression;
use rocker_image::store::LayerRecord;
use rocker_image::unpack::unpack;
use rocker_image::{digest, ImageRecord, Reference, Store};
use rocker_test_support::oci_image::{self, Image, Index, Layer, Platform};
use rocker_test_support::{output, unique, TempDir};
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn reference(s: &str) -> Reference {
    Reference::from_str(s).unwrap()
}

fn base_layer() -> Layer {
    Layer::new()
        .dir("bin", 0o755)
        .file("bin/busybox", "#!not really busybox\n", 0o755)
        .symlink("bin/sh", "busybox")
        .hardlink("bin/ash", "bin/busybox")
        .dir("etc", 0o755)
        .file("etc/hostname", "base\n", 0o644)
        .file("etc/gone", "deleted above\n", 0o644)
}

fn top_layer() -> Layer {
    Layer::new()
        .dir("etc", 0o755)
        .whiteout("etc/gone")
        .file("etc/motd", "hello\n", 0o600)
        .dir("app", 0o750)
        .random_file("app/data", 300_000, 7)
}

fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

/// Stores an image by hand, as a pull would leave it: blobs, unpacked layers, the record and
/// its tag. `docker` makes a Docker schema-2 manifest (gzip layers only), else an OCI one.
fn store_image(store: &Store, layers: &[(Layer, Compression)], docker: bool, tag: &str) -> ImageRecord {
    let mut records = Vec::new();
    for (layer, compression) in layers {
        let tar = layer.tar();
        let blob = compress(&tar, *compression);
        let media_type = match (docker, compression) {
            (true, Compression::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (true, _) => panic!("Docker's schema 2 has gzip layers"),
            (false, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (false, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (false, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let record = LayerRecord {
            blob: digest::of(&blob),
            diff_id: digest::of(&tar),
            media_type: media_type.into(),
            size: blob.len() as u64,
        };
        store.put_blob(&record.blob, &blob).unwrap();
        let dir = store.temp_dir("test-layer").unwrap();
        let stats = unpack(&tar[..], dir.path()).unwrap();
        store.commit_layer(dir, &record.diff_id, stats.bytes).unwrap();
        records.push(record);
    }
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": Platform::host().architecture,
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"], "Env": [format!("TAG={tag}")] },
        "rootfs": { "type": "layers", "diff_ids": records.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
    }))
    .unwrap();
    let (manifest_type, config_type) = if docker {
        (DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json")
    } else {
        (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json")
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": { "mediaType": config_type, "digest": digest::of(&config).to_string(), "size": config.len() },
        "layers": records.iter().map(|l| json!({ "mediaType": l.media_type, "digest": l.blob.to_string(), "size": l.size })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let image = ImageRecord {
        id: digest::of(&config),
        manifest: digest::of(&manifest),
        manifest_media_type: manifest_type.into(),
        layers: records,
        created: Some("2024-01-01T00:00:00Z".into()),
        repo_digests: Vec::new(),
    };
    store.put_blob(&image.id, &config).unwrap();
    store.put_blob(&image.manifest, &manifest).unwrap();
    store.add_image(image.clone(), &[reference(tag)]).unwrap();
    image
}

/// What a directory holds, entry by entry: type, mode, owner, content or target.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let m = fs::symlink_metadata(&path).unwrap();
            let t = m.file_type();
            let what = if t.is_dir() {
                todo.push(path.clone());
                "dir".to_string()
            } else if t.is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if t.is_char_device() {
                format!("char {}", m.rdev())
            } else {
                format!("file nlink={} {}", m.nlink(), digest::of(&fs::read(&path).unwrap()))
            };
            let mode = m.permissions().mode() & 0o7777;
            out.insert(
                path.strip_prefix(dir).unwrap().to_path_buf(),
                format!("{what} {mode:o} {}:{}", m.uid(), m.gid()),
            );
        }
    }
    out
}

/// The store holds `image`'s layers unpacked exactly as `original` does.
fn assert_same_layers(store: &Store, original: &Store, image: &ImageRecord) {
    for l in &image.layers {
        assert!(store.has_layer(&l.diff_id) && store.has_blob(&l.blob), "layer {} missing", l.diff_id);
        assert_eq!(
            tree(&store.layer_dir(&l.diff_id)),
            tree(&original.layer_dir(&l.diff_id)),
            "layer {}",
            l.diff_id
        );
    }
}

/// No temp work left; only the live store's own `PID-NONCE.lock`, which marks its owner as
/// alive and goes when the store is dropped.
/// Ends a docker-archive the test writes by hand with its manifest.json.
fn finish_with_manifest(mut tar: tar::Builder<File>, manifest: &Value) {
    raw_entry(&mut tar, "manifest.json", tar::EntryType::Regular, "", &serde_json::to_vec(manifest).unwrap());
    tar.finish().unwrap();
}

fn assert_no_temp_left(store: &Store) {
    let left: Vec<_> = fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

fn tags(store: &Store, id: &Digest) -> Vec<String> {
    store.index().unwrap().tags_of(id.as_ref()).into_iter().map(String::from).collect()
}

fn save_to(store: &Store, images: &[(&str, &ImageRecord)], format: ArchiveFormat, path: &Path) {
    let images: Vec<(String, ImageRecord)> =
        images.iter().map(|(n, i)| (n.to_string(), (*i).clone())).collect();
    save(store, &images, format, io::BufWriter::new(File::create(path).unwrap())).unwrap();
}

fn load_from(store: &Store, path: &Path) -> Result<Vec<Loaded>, ArchiveError> {
    load(store, File::open(path).unwrap())
}

/// The archive's entries: name -> content.
fn entries(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(File::open(archive).unwrap());
    let mut out = BTreeMap::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(e.path().unwrap().to_string_lossy().into_owned(), bytes);
    }
    out
}

/// An OCI image with a gzip and a zstd layer, and a Docker schema 2 image sharing its base
/// layer (stored once, decompressed from gzip when saved).
fn two_images(a: &Store) -> (ImageRecord, ImageRecord) {
    let one = store_image(
        a,
        &[(base_layer(), Compression::Gzip), (top_layer(), Compression::Zstd)],
        false,
        "localhost/rt/one:v1",
    );
    let two = store_image(a, &[(base_layer(), Compression::Gzip)], true, "localhost/rt/two:v2");
    (one, two)
}

#[test]
fn docker_archive_round_trip() {
    let (dir_a, dir_b) = (TempDir::new("save-docker-a"), TempDir::new("save-docker-b"));
    let (a, b) = (Store::open(dir_a.path()).unwrap(), Store::open(dir_b.path()).unwrap());
    let (one, two) = two_images(&a);
    a.add_image(one.clone(), &[reference("localhost/rt/one:latest")]).unwrap();
    let file = dir_a.path().join("saved.tar");
    save_to(
        &a,
        &[("localhost/rt/one:v1", &one), ("localhost/rt/one:latest", &one), ("localhost/rt/two:v2", &two)],
        ArchiveFormat::DockerArchive,
        &file,
    );

    let entries = entries(&file);
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2, "{manifest}");
    assert_eq!(manifest[0]["RepoTags"], json!(["localhost/rt/one:v1", "localhost/rt/one:latest"]));
    assert_eq!(manifest[0]["Config"], json!(format!("{}.json", one.id.digest())));
    for (layer, name) in one.layers.iter().zip(manifest[0]["Layers"].as_array().unwrap()) {
        // Uncompressed: the file's digest is the diff_id.
        assert_eq!(digest::of(&entries[name.as_str().unwrap()]), layer.diff_id);
    }
    let layer_tars = entries.keys().filter(|k| k.ends_with("/layer.tar")).count();
    assert_eq!(layer_tars, 2, "the shared layer is written once: {:?}", entries.keys());
    let repositories: Value = serde_json::from_slice(&entries["repositories"]).unwrap();
    assert_eq!(repositories["localhost/rt/two"]["v2"], json!(two.layers[0].diff_id.digest()));

    let loaded = load_from(&b, &file).unwrap();
    assert_eq!(loaded.len(), 2);
    for (image, l) in [&one, &two].into_iter().zip(&loaded) {
        assert_eq!(l.image.id, image.id);
        assert_eq!(l.image.manifest_media_type, OCI_MANIFEST);
        let diff_ids: Vec<_> = l.image.layers.iter().map(|l| &l.diff_id).collect();
        assert_eq!(diff_ids, image.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>());
        // Stored as the archive had them: plain tars.
        assert!(l
            .image
            .layers
            .iter()
            .all(|l| l.blob == l.diff_id && l.media_type == "application/vnd.oci.image.layer.v1.tar"));
        assert_same_layers(&b, &a, &l.image);
        let manifest: ImageManifest =
            serde_json::from_slice(&b.read_blob(&l.image.manifest).unwrap()).unwrap();
        assert_eq!(manifest.config().digest(), &image.id);
        assert_eq!(b.read_blob(&l.image.id).unwrap(), a.read_blob(&image.id).unwrap());
    }
    assert_eq!(loaded[0].tags, vec![reference("localhost/rt/one:v1"), reference("localhost/rt/one:latest")]);
    let mut one_tags = tags(&b, &one.id);
    one_tags.sort();
    assert_eq!(one_tags, ["localhost/rt/one:latest", "localhost/rt/one:v1"]);
    assert_eq!(tags(&b, &two.id), ["localhost/rt/two:v2"]);
    assert!(b.index().unwrap().find("localhost/rt/one:v1").is_some());

    // Loading again finds every layer in place; nothing changes.
    let index_before = fs::read(b.root().join("index.json")).unwrap();
    let again = load_from(&b, &file).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(fs::read(b.root().join("index.json")).unwrap(), index_before);
    assert_no_temp_left(&a);
    assert_no_temp_left(&b);
}

#[test]
fn oci_archive_round_trip_keeps_every_digest() {
    let (dir_a, dir_b) = (TempDir::new("save-oci-a"), TempDir::new("save-oci-b"));
    let (a, b) = (Store::open(dir_a.path()).unwrap(), Store::open(dir_b.path()).unwrap());
    let (one, two) = two_images(&a);

    for (image, tag) in [(&one, "localhost/rt/one:v1"), (&two, "localhost/rt/two:v2")] {
        let file = dir_a.path().join(format!("{}.tar", image.id.digest()));
        save_to(&a, &[(tag, image)], ArchiveFormat::OciArchive, &file);
        let entries = entries(&file);
        assert_eq!(entries["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: Value = serde_json::from_slice(&entries["index.json"]).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(desc["mediaType"], json!(image.manifest_media_type));
        assert_eq!(desc["digest"], json!(image.manifest.to_string()));
        assert_eq!(
            desc["annotations"]["org.opencontainers.image.ref.name"],
            json!(tag.rsplit_once(':').unwrap().1)
        );
        assert_eq!(desc["annotations"]["io.containerd.image.name"], json!(tag));
        for blob in [&image.manifest, &image.id].into_iter().chain(image.layers.iter().map(|l| &l.blob)) {
            assert_eq!(
                entries[&format!("blobs/sha256/{}", blob.digest())],
                a.read_blob(blob).unwrap(),
                "blob {blob}"
            );
        }

        let loaded = load_from(&b, &file).unwrap();
        assert_eq!(
            loaded,
            vec![Loaded { image: image.clone(), tags: vec![reference(tag)], unused_ref_name: None }]
        );
        assert_same_layers(&b, &a, image);
        assert_eq!(tags(&b, &image.id), [tag]);
    }
    // The whiteout arrived as overlayfs's: a 0:0 character device.
    let top = b.layer_dir(&one.layers[1].diff_id);
    let gone = fs::symlink_metadata(top.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    assert_eq!(fs::read(top.join("etc/motd")).unwrap(), b"hello\n");
    assert_no_temp_left(&b);
}

#[test]
fn saving_by_id_carries_no_tag() {
    let (dir_a, dir_b) = (TempDir::new("save-id-a"), TempDir::new("save-id-b"));
    let (a, b) = (Store::open(dir_a.path()).unwrap(), Store::open(dir_b.path()).unwrap());
    let one = store_image(&a, &[(base_layer(), Compression::None)], false, "localhost/rt/one:v1");
    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let file = dir_a.path().join("by-id.tar");
        save_to(&a, &[(&one.id.digest()[..12], &one)], format, &file);
        let loaded = load_from(&b, &file).unwrap();
        assert_eq!((loaded.len(), loaded[0].image.id.clone()), (1, one.id.clone()));
        assert!(loaded[0].tags.is_empty() && loaded[0].unused_ref_name.is_none());
    }
    assert!(tags(&b, &one.id).is_empty());
}

/// Reads one byte per call: a pipe at its slowest.
struct Trickle<R>(R);

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn import_makes_a_one_layer_image() {
    let dir = TempDir::new("import");
    let store = Store::open(dir.path()).unwrap();
    let tar = base_layer().tar();
    let diff_id = digest::of(&tar);
    let tag = reference("localhost/rt/imported:v1");
    let cmd = vec!["/bin/sh".to_string(), "-c".to_string(), "echo hi".to_string()];
    let gz = compress(&tar, Compression::Gzip);
    let image = import(
        &store,
        &gz[..],
        Some(&tag),
        ImportConfig { cmd: Some(cmd.clone()), created: "2024-01-02T03:04:05Z".into() },
    )
    .unwrap();

    assert_eq!(image.layers.len(), 1);
    let layer = &image.layers[0];
    assert_eq!((&layer.blob, &layer.diff_id, layer.size), (&diff_id, &diff_id, tar.len() as u64));
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(store.read_blob(&layer.blob).unwrap(), tar, "the blob is the uncompressed tar");
    let unpacked = store.layer_dir(&diff_id);
    assert_eq!(fs::read(unpacked.join("etc/hostname")).unwrap(), b"base\n");
    assert_eq!(fs::read_link(unpacked.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert_eq!(
        fs::metadata(unpacked.join("bin/ash")).unwrap().ino(),
        fs::metadata(unpacked.join("bin/busybox")).unwrap().ino()
    );

    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&image.id).unwrap()).unwrap();
    assert_eq!(config.config().as_ref().unwrap().cmd().as_ref(), Some(&cmd));
    assert_eq!(config.architecture().to_string(), Platform::host().architecture);
    assert_eq!(config.os().to_string(), "linux");
    assert_eq!(config.rootfs().diff_ids(), &vec![diff_id.to_string()]);
    assert_eq!(config.created(), &image.created);
    assert!(config.created().as_ref().unwrap().ends_with('Z'));
    let manifest: ImageManifest = serde_json::from_slice(&store.read_blob(&image.manifest).unwrap()).unwrap();
    assert_eq!((manifest.config().digest(), manifest.layers()[0].digest()), (&image.id, &diff_id));
    assert_eq!(image.manifest_media_type, OCI_MANIFEST);
    assert_eq!(tags(&store, &image.id), [tag.to_string()]);

    // zstd from a trickling pipe, and no tag: a dangling image (another config: no Cmd) with
    // the same layer.
    let zst = compress(&tar, Compression::Zstd);
    let dangling = import(&store, Trickle(&zst[..]), None, ImportConfig::default()).unwrap();
    assert_eq!(dangling.layers, image.layers);
    assert!(store.index().unwrap().images.contains_key(&dangling.id.to_string()));
    assert!(tags(&store, &dangling.id).is_empty());

    // A broken stream stores nothing.
    let index_before = fs::read(store.root().join("index.json")).unwrap();
    let broken = &gz[..gz.len() / 2];
    let err = import(&store, broken, None, ImportConfig::default()).unwrap_err();
    assert!(matches!(err, ImportError::Layer(_)), "{err}");
    assert_eq!(fs::read(store.root().join("index.json")).unwrap(), index_before);
    assert_no_temp_left(&store);
}

fn skopeo_json(args: &[&str], tmp: &Path) -> Value {
    serde_json::from_str(&skopeo(args, tmp)).unwrap()
}

fn skopeo(args: &[&str], tmp: &Path) -> String {
    let mut c = Command::new("skopeo");
    // Its oci-archive work dirs go into the test's own temp dir.
    c.args(args).env("TMPDIR", tmp);
    let run = output(c);
    assert_eq!(run.code, 0, "skopeo {args:?} failed:\n{}", run.stderr);
    run.stdout
}

#[test]
fn skopeo_reads_rocker_archives() {
    let dir = TempDir::new("skopeo-reads");
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (one, two) = two_images(&store);
    for (image, tag) in [(&one, "localhost/rt/one:v1"), (&two, "localhost/rt/two:v2")] {
        let docker = dir.path().join("docker.tar");
        save_to(&store, &[(tag, image)], ArchiveFormat::DockerArchive, &docker);
        let inspect: Value =
            skopeo_json(&["inspect", &format!("docker-archive:{}", docker.display())], dir.path());
        let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
        assert_eq!(inspect["Layers"], json!(diff_ids), "{inspect}");
        let config: Value = skopeo_json(
            &["inspect", "--config", &format!("docker-archive:{}", docker.display())],
            dir.path(),
        );
        assert_eq!(config, serde_json::from_slice::<Value>(&store.read_blob(&image.id).unwrap()).unwrap());

        let oci = dir.path().join("oci.tar");
        save_to(&store, &[(tag, image)], ArchiveFormat::OciArchive, &oci);
        let inspect: Value = skopeo_json(&["inspect", &format!("oci-archive:{}", oci.display())], dir.path());
        let blobs: Vec<String> = image.layers.iter().map(|l| l.blob.to_string()).collect();
        assert_eq!(inspect["Layers"], json!(blobs), "{inspect}");
        assert_eq!(inspect["Digest"], json!(image.manifest.to_string()), "{inspect}");
        // And by the tag the index gives it. skopeo 1.9 looks tags up only among descriptors
        // of OCI manifests: a Docker schema-2 one is found only as the layout's sole image.
        if image.manifest_media_type != OCI_MANIFEST {
            continue;
        }
        let by_tag = format!("oci-archive:{}:{}", oci.display(), tag.rsplit_once(':').unwrap().1);
        let raw = skopeo(&["inspect", "--raw", &by_tag], dir.path());
        assert_eq!(digest::of(raw.as_bytes()), image.manifest);
    }
}

#[test]
fn rocker_loads_what_skopeo_writes() {
    let dir = TempDir::new("skopeo-writes");
    let tmp = dir.path();
    let store = Store::open(&tmp.join("store")).unwrap();
    let layout = tmp.join("layout");
    // No zstd: skopeo 1.9 cannot turn zstd layers into a docker-archive's.
    let written = Image::new()
        .layer(base_layer(), oci_image::Compression::Gzip)
        .layer(top_layer(), oci_image::Compression::None)
        .cmd(&["/bin/sh"])
        .write_layout(&layout, "v1");
    let source = format!("oci:{}:v1", layout.display());
    let diff_ids: Vec<String> = written.layers.iter().map(|l| l.diff_id.clone()).collect();
    let check = |loaded: &Loaded| {
        assert_eq!(loaded.image.id.to_string(), written.config_digest);
        let got: Vec<String> = loaded.image.layers.iter().map(|l| l.diff_id.to_string()).collect();
        assert_eq!(got, diff_ids);
        let top = store.layer_dir(&loaded.image.layers[1].diff_id);
        assert!(fs::symlink_metadata(top.join("etc/gone")).unwrap().file_type().is_char_device());
        assert_eq!(
            fs::read(store.layer_dir(&loaded.image.layers[0].diff_id).join("etc/hostname")).unwrap(),
            b"base\n"
        );
    };

    // docker-archive, with a name: a tag.
    let docker = tmp.join("skopeo-docker.tar");
    skopeo(
        &["copy", "-q", &source, &format!("docker-archive:{}:localhost/rt/skopeo:v1", docker.display())],
        tmp,
    );
    let loaded = load_from(&store, &docker).unwrap();
    check(&loaded[0]);
    assert_eq!(loaded[0].tags, vec![reference("localhost/rt/skopeo:v1")]);

    // oci-archive named by a bare tag: loaded, but untagged, and said so.
    let oci = tmp.join("skopeo-oci.tar");
    skopeo(&["copy", "-q", "--preserve-digests", &source, &format!("oci-archive:{}:v1", oci.display())], tmp);
    let loaded = load_from(&store, &oci).unwrap();
    check(&loaded[0]);
    assert_eq!(loaded[0].image.manifest.to_string(), written.manifest_digest);
    assert!(loaded[0].tags.is_empty());
    assert_eq!(loaded[0].unused_ref_name.as_deref(), Some("v1"));

    // oci-archive named by a full reference.
    let named = tmp.join("skopeo-oci-named.tar");
    skopeo(&["copy", "-q", &source, &format!("oci-archive:{}:localhost/rt/named:v3", named.display())], tmp);
    let loaded = load_from(&store, &named).unwrap();
    check(&loaded[0]);
    assert_eq!(loaded[0].tags, vec![reference("localhost/rt/named:v3")]);

    // rocker's oci-archive, turned into a docker-archive by skopeo, loads back as the same image.
    let other = Store::open(&tmp.join("other")).unwrap();
    let image = store_image(
        &other,
        &[(base_layer(), Compression::Gzip), (top_layer(), Compression::None)],
        false,
        "localhost/rt/one:v1",
    );
    let saved = tmp.join("rocker-oci.tar");
    save_to(&other, &[("localhost/rt/one:v1", &image)], ArchiveFormat::OciArchive, &saved);
    let copied = tmp.join("copied.tar");
    skopeo(
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}", saved.display()),
            &format!("docker-archive:{}:localhost/rt/copied:v2", copied.display()),
        ],
        tmp,
    );
    let loaded = load_from(&store, &copied).unwrap();
    assert_eq!(loaded[0].image.id, image.id);
    assert_eq!(loaded[0].tags, vec![reference("localhost/rt/copied:v2")]);
    assert_same_layers(&store, &other, &loaded[0].image);
    assert_no_temp_left(&store);
}

/// A tar of a directory's files (an OCI layout on disk made into an oci-archive).
fn tar_dir(dir: &Path, archive: &Path) {
    let mut tar = tar::Builder::new(File::create(archive).unwrap());
    for entry in fs::read_dir(dir).unwrap() {
        let (path, name) = entry.map(|e| (e.path(), e.file_name())).unwrap();
        if path.is_dir() {
            tar.append_dir_all(&name, &path).unwrap();
        } else {
            tar.append_path_with_name(&path, &name).unwrap();
        }
    }
    tar.finish().unwrap();
}

#[test]
fn a_multi_platform_index_loads_the_hosts_image() {
    let dir = TempDir::new("load-index");
    let store = Store::open(&dir.path().join("store")).unwrap();
    let other = if Platform::host().architecture == "arm64" { "linux/amd64" } else { "linux/arm64" };
    let written = Index::new()
        .image(Image::new().layer(base_layer(), oci_image::Compression::Gzip))
        .image(Image::platform_marker(Platform::parse(other)))
        .write_layout(&dir.path().join("layout"), "multi");
    let archive = dir.path().join("multi.tar");
    tar_dir(&dir.path().join("layout"), &archive);
    let loaded = load_from(&store, &archive).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.id.to_string(), written.images[0].config_digest);
    assert_eq!(loaded[0].image.manifest.to_string(), written.images[0].manifest_digest);
    assert_eq!(loaded[0].unused_ref_name.as_deref(), Some("multi"));
    assert_eq!(store.index().unwrap().images.len(), 1);
    assert!(!store.has_blob(&Digest::from_str(&written.images[1].config_digest).unwrap()));
}

/// A tar whose one entry has exactly `name` (which `tar::Builder` would refuse to write).
fn raw_entry(tar: &mut tar::Builder<File>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

#[test]
fn hostile_archives_touch_nothing_outside() {
    let dir = TempDir::new("hostile");
    // The store sits deep, so that `..` from its temp dir could still land inside the test's dir.
    let store = Store::open(&dir.path().join("a/b/c/store")).unwrap();
    let image = store_image(&store, &[(base_layer(), Compression::Gzip)], false, "localhost/rt/kept:v1");
    let index_before = fs::read(store.root().join("index.json")).unwrap();
    let escaped = unique("escaped");
    let absolute = format!("/tmp/{escaped}");
    let dots = format!("../../../../{escaped}");
    // What, then entries: name, type, link target.
    let cases = [
        (
            "dot-dot",
            vec![("oci-layout", tar::EntryType::Regular, ""), (dots.as_str(), tar::EntryType::Regular, "")],
        ),
        ("absolute", vec![(absolute.as_str(), tar::EntryType::Regular, "")]),
        ("symlink to an absolute path", vec![("blobs", tar::EntryType::Symlink, "/tmp")]),
        ("symlink up and out", vec![("blobs/sha256", tar::EntryType::Symlink, "../../etc")]),
        ("hardlink", vec![("index.json", tar::EntryType::Link, "/etc/passwd")]),
        ("device", vec![("manifest.json", tar::EntryType::Char, "")]),
    ];
    for (what, entries) in cases {
        let archive = dir.path().join(format!("{what}.tar"));
        let mut tar = tar::Builder::new(File::create(&archive).unwrap());
        for (name, kind, link) in entries {
            raw_entry(&mut tar, name, kind, link, b"{}");
        }
        tar.finish().unwrap();
        drop(tar);
        let err = load_from(&store, &archive).unwrap_err();
        assert!(matches!(err, ArchiveError::Entry { .. }), "{what}: {err}");
        assert_eq!(fs::read(store.root().join("index.json")).unwrap(), index_before, "{what}");
        assert_no_temp_left(&store);
    }
    assert!(!Path::new(&absolute).exists());
    let mut p = store.root().join("tmp/somewhere");
    while let Some(parent) = p.parent() {
        assert!(!parent.join(&escaped).exists(), "{} escaped", parent.join(&escaped).display());
        p = parent.to_path_buf();
    }
    // A name from manifest.json is checked like an entry's.
    let archive = dir.path().join("manifest-names.tar");
    let tar = tar::Builder::new(File::create(&archive).unwrap());
    let manifest = json!([{ "Config": "../../../../../etc/passwd", "RepoTags": ["localhost/rt/evil:v1"], "Layers": [] }]);
    finish_with_manifest(tar, &manifest);
    let err = load_from(&store, &archive).unwrap_err();
    assert!(matches!(err, ArchiveError::Entry { .. }), "{err}");
    assert_eq!(fs::read(store.root().join("index.json")).unwrap(), index_before);
    assert_eq!(tags(&store, &image.id), ["localhost/rt/kept:v1"]);
}

/// A docker-archive made by hand: `config` and the layer tars, tagged `tag`.
fn docker_archive(path: &Path, config: &Value, layers: &[Vec<u8>], tag: &str) {
    let mut tar = tar::Builder::new(File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, bytes).unwrap();
    };
    let config = serde_json::to_vec(config).unwrap();
    let config_name = format!("{}.json", digest::of(&config).digest());
    add(&config_name, &config);
    let names: Vec<String> = (0..layers.len()).map(|i| format!("l{i}/layer.tar")).collect();
    for (name, layer) in names.iter().zip(layers) {
        add(name, layer);
    }
    let manifest = json!([{ "Config": config_name, "RepoTags": [tag], "Layers": names }]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    tar.finish().unwrap();
}

#[test]
fn a_layer_that_is_not_what_the_config_says_changes_nothing() {
    let dir = TempDir::new("mismatch");
    let store = Store::open(&dir.path().join("store")).unwrap();
    store_image(&store, &[(base_layer(), Compression::Gzip)], false, "localhost/rt/kept:v1");
    let index_before = fs::read(store.root().join("index.json")).unwrap();
    let layers_before = fs::read_dir(store.root().join("layers")).unwrap().count();
    let blobs_before = fs::read_dir(store.root().join("blobs/sha256")).unwrap().count();
    let unchanged = |what: &str| {
        assert_eq!(fs::read(store.root().join("index.json")).unwrap(), index_before, "{what}");
        assert_eq!(fs::read_dir(store.root().join("layers")).unwrap().count(), layers_before, "{what}");
        assert_eq!(fs::read_dir(store.root().join("blobs/sha256")).unwrap().count(), blobs_before, "{what}");
        assert_no_temp_left(&store);
    };

    // docker-archive: the second layer is another tar than the config's diff_id says; the
    // first one is fine, and must not be stored either.
    let (good, claimed, actual) = (
        top_layer().tar(),
        Layer::new().file("a", "claimed", 0o644).tar(),
        Layer::new().file("a", "actual", 0o644).tar(),
    );
    let config = json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [digest::of(&good).to_string(), digest::of(&claimed).to_string()] },
    });
    let archive = dir.path().join("docker-mismatch.tar");
    docker_archive(&archive, &config, &[compress(&good, Compression::Gzip), actual], "localhost/rt/bad:v1");
    let err = load_from(&store, &archive).unwrap_err();
    assert!(matches!(err, ArchiveError::Mismatch(_)), "{err}");
    assert!(err.to_string().contains(&digest::of(&claimed).to_string()), "{err}");
    unchanged("docker-archive");

    // oci-archive: a layer blob replaced by another (valid) one.
    let layout = dir.path().join("layout");
    let written = Image::new()
        .layer(top_layer(), oci_image::Compression::Gzip)
        .layer(Layer::new().file("a", "claimed", 0o644), oci_image::Compression::Gzip)
        .write_layout(&layout, "v1");
    let blob = layout.join("blobs/sha256").join(written.layers[1].digest.strip_prefix("sha256:").unwrap());
    fs::write(&blob, compress(&Layer::new().file("a", "actual!", 0o644).tar(), Compression::Gzip)).unwrap();
    let archive = dir.path().join("oci-mismatch.tar");
    tar_dir(&layout, &archive);
    let err = load_from(&store, &archive).unwrap_err();
    assert!(matches!(err, ArchiveError::Mismatch(_)), "{err}");
    unchanged("oci-archive");
}

#[test]
fn symlinked_and_compressed_layers_load() {
    // As Docker writes a layer that an image has twice: the second is a symlink to the first.
    // The layer is gzipped, as some tools write them, and so is the whole archive, as
    // `docker load` accepts it.
    let dir = TempDir::new("symlinked");
    let store = Store::open(&dir.path().join("store")).unwrap();
    let layer = top_layer().tar();
    let diff_id = digest::of(&layer).to_string();
    let config = serde_json::to_vec(&json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [diff_id, diff_id] },
    }))
    .unwrap();
    let manifest = json!([{ "Config": "c.json", "RepoTags": ["localhost/rt/twice:v1"], "Layers": ["l0/layer.tar", "l1/layer.tar"] }]);
    let archive = dir.path().join("twice.tar");
    let mut tar = tar::Builder::new(File::create(&archive).unwrap());
    raw_entry(&mut tar, "l1/layer.tar", tar::EntryType::Symlink, "../l0/./layer.tar", b"");
    let gzipped = compress(&layer, Compression::Gzip);
    raw_entry(&mut tar, "l0/layer.tar", tar::EntryType::Regular, "", &gzipped);
    raw_entry(&mut tar, "c.json", tar::EntryType::Regular, "", &config);
    finish_with_manifest(tar, &manifest);
    let archive_gz = dir.path().join("twice.tar.gz");
    fs::write(&archive_gz, compress(&fs::read(&archive).unwrap(), Compression::Gzip)).unwrap();
    let loaded = load_from(&store, &archive_gz).unwrap();
    assert_eq!(loaded[0].image.id, digest::of(&config));
    let gzip = ("application/vnd.oci.image.layer.v1.tar+gzip", digest::of(&gzipped));
    assert!(loaded[0].image.layers.iter().all(|l| (l.media_type.as_str(), l.blob.clone()) == gzip));
    assert_eq!(loaded[0].image.layers.len(), 2);
    assert!(loaded[0]
        .image
        .layers
        .iter()
        .all(|l| l.diff_id.to_string() == diff_id && store.has_layer(&l.diff_id)));
    assert_eq!(tags(&store, &loaded[0].image.id), ["localhost/rt/twice:v1"]);
    assert_no_temp_left(&store);
}

struct Podman {
    root: PathBuf,
}

impl Podman {
    /// podman with its own root, run root, tmp and the vfs driver: the system's store is never
    /// touched, and vfs leaves no mounts behind.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        let dir = |d: &str| self.root.join(d).to_string_lossy().into_owned();
        fs::create_dir_all(self.root.join("tmp")).unwrap();
        c.args(["--root", &dir("root"), "--runroot", &dir("run"), "--tmpdir", &dir("libpod")])
            .args(["--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("TMPDIR", dir("tmp"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let run = output(self.cmd(args));
        assert_eq!(run.code, 0, "podman {args:?} failed:\n{}", run.stderr);
        run.stdout
    }
}

#[test]
fn podman_loads_rocker_saves_and_rocker_loads_podman_saves() {
    let dir = TempDir::new("podman");
    let store = Store::open(&dir.path().join("store")).unwrap();
    let podman = Podman { root: dir.path().join("podman") };
    let image = store_image(
        &store,
        &[(base_layer(), Compression::Gzip), (top_layer(), Compression::Zstd)],
        false,
        "localhost/rt/one:v1",
    );
    let docker = dir.path().join("rocker-docker.tar");
    save_to(&store, &[("localhost/rt/one:v1", &image)], ArchiveFormat::DockerArchive, &docker);
    let oci = dir.path().join("rocker-oci.tar");
    save_to(&store, &[("localhost/rt/one:v1", &image)], ArchiveFormat::OciArchive, &oci);

    podman.run(&["load", "-q", "-i", &oci.to_string_lossy()]);
    let images = podman.run(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        images.lines().any(|l| l.trim_start_matches("sha256:") == image.id.digest()),
        "podman images:\n{images}"
    );
    podman.run(&["rmi", "-a", "-f"]);
    // Loaded from the docker-archive, its layers are plain tars, which podman can save in
    // either format (it refuses to put zstd layers into a docker-archive).
    podman.run(&["load", "-q", "-i", &docker.to_string_lossy()]);
    let images = podman.run(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let want = format!("localhost/rt/one:v1 {}", image.id.digest());
    assert!(images.lines().any(|l| l.replace("sha256:", "") == want), "podman images:\n{images}");
    podman.run(&["tag", "localhost/rt/one:v1", "localhost/rt/from-podman:v9"]);

    // And back: podman's archives of the image load into a fresh store as the same image.
    for (format, name) in [("docker-archive", "podman-docker.tar"), ("oci-archive", "podman-oci.tar")] {
        let file = dir.path().join(name);
        podman.run(&[
            "save",
            "-q",
            "--format",
            format,
            "-o",
            &file.to_string_lossy(),
            "localhost/rt/from-podman:v9",
        ]);
        let fresh = Store::open(&dir.path().join(format)).unwrap();
        let loaded = load_from(&fresh, &file).unwrap();
        let diff_ids = |i: &ImageRecord| i.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>();
        assert_eq!(diff_ids(&loaded[0].image), diff_ids(&image), "{format}");
        assert_same_layers(&fresh, &store, &loaded[0].image);
        if format == "docker-archive" {
            assert_eq!(loaded[0].image.id, image.id);
            assert_eq!(loaded[0].tags, vec![reference("localhost/rt/from-podman:v9")]);
        }
        // (To write OCI, podman rewrites the Docker-typed config it got from the
        // docker-archive as an OCI one: another config, so another id.)
        println!(
            "{format}: id {}, tags {:?}, unused ref name {:?}",
            loaded[0].image.id, loaded[0].tags, loaded[0].unused_ref_name
        );
    }
    assert!(rocker_test_support::mounts_under(dir.path()).is_empty());
}
