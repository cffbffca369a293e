//! Builders of the tests' own container images, written as OCI image layouts on disk
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>) that skopeo can
//! push into a local [`Registry`](crate::registry::Registry).
//!
//! ```no_run
//! use rocker_test_support::oci_image::{Compression, Image, Layer};
//! let base = Layer::new().busybox();
//! let app = Layer::new().dir("app", 0o755).file("app/hello", "hi\n", 0o644).whiteout("tmp/gone");
//! let dir = rocker_test_support::TempDir::new("layout");
//! let written = Image::new()
//!     .layer(base, Compression::Gzip)
//!     .layer(app, Compression::Zstd)
//!     .cmd(&["/bin/sh", "-c", "cat /app/hello"])
//!     .write_layout(dir.path(), "v1");
//! println!("{}", written.manifest_digest);
//! ```
//!
//! Layers are streamed to their blob file while they are hashed (the diff_id over the tar,
//! the digest over the compressed bytes), so a 100+ MB layer never sits in memory. The output
//! is deterministic: the same builder always gives the same digests.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The annotation in index.json that names a tag of an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Every entry's mtime and the images' `created`: fixed, so builds are reproducible.
const MTIME: u64 = 1_704_067_200;
const CREATED: &str = "2024-01-01T00:00:00Z";

/// How a layer's tar is stored in its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>),
    Random { size: u64, seed: u64 },
    Dir,
    Symlink(String),
    Hardlink(String),
    CharDevice { major: u32, minor: u32 },
}

#[derive(Clone, Debug)]
struct Entry {
    path: String,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// One layer: tar entries written exactly in the order they are added. Parent directories are
/// not implied; add `dir` entries where the test wants them. Paths may start with `/`: it is
/// stripped, as image layers hold relative names.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    entries: Vec<Entry>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    fn push(mut self, path: &str, kind: Kind, mode: u32) -> Layer {
        let path = path.trim_start_matches('/').to_string();
        assert!(!path.is_empty(), "a layer entry needs a path");
        self.entries.push(Entry { path, kind, mode, uid: 0, gid: 0 });
        self
    }

    /// A regular file.
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>, mode: u32) -> Layer {
        self.push(path, Kind::File(contents.as_ref().to_vec()), mode)
    }

    /// A regular file of `size` incompressible bytes from a xorshift PRNG seeded with `seed`
    /// (the same seed gives the same bytes). Generated while the layer is written.
    pub fn random_file(self, path: &str, size: u64, seed: u64) -> Layer {
        self.push(path, Kind::Random { size, seed }, 0o644)
    }

    pub fn dir(self, path: &str, mode: u32) -> Layer {
        self.push(path, Kind::Dir, mode)
    }

    /// A symbolic link; `target` is stored as given (relative or absolute).
    pub fn symlink(self, path: &str, target: &str) -> Layer {
        self.push(path, Kind::Symlink(target.to_string()), 0o777)
    }

    /// A hard link to `target`, a path in the image (a leading `/` is stripped).
    pub fn hardlink(self, path: &str, target: &str) -> Layer {
        self.push(path, Kind::Hardlink(target.trim_start_matches('/').to_string()), 0o644)
    }

    /// A character device node (what an unpacker must refuse or handle with care).
    pub fn char_device(self, path: &str, major: u32, minor: u32, mode: u32) -> Layer {
        self.push(path, Kind::CharDevice { major, minor }, mode)
    }

    /// Deletes `path` from the layers below: the empty entry `dir/.wh.name`.
    pub fn whiteout(self, path: &str) -> Layer {
        let path = path.trim_start_matches('/').trim_end_matches('/');
        let wh = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.push(&wh, Kind::File(Vec::new()), 0o644)
    }

    /// Hides everything the layers below have in `dir`: the entry `dir/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> Layer {
        let dir = dir.trim_start_matches('/').trim_end_matches('/');
        self.push(&format!("{dir}/.wh..wh..opq"), Kind::File(Vec::new()), 0o644)
    }

    /// Sets the owner of the entry added last.
    pub fn owner(mut self, uid: u64, gid: u64) -> Layer {
        let last = self.entries.last_mut().expect("owner() applies to the entry added last; add one first");
        last.uid = uid;
        last.gid = gid;
        self
    }

    /// A base layer: the directories bin, etc, tmp (1777), proc, sys, dev and root,
    /// `/bin/busybox` from [`BUSYBOX`](crate::BUSYBOX) (Debian's busybox-static) and a relative
    /// symlink `bin/APPLET -> busybox` per applet, like the [`Rootfs`](crate::Rootfs) fixture.
    pub fn busybox(self) -> Layer {
        let binary = std::fs::read(crate::BUSYBOX)
            .unwrap_or_else(|e| panic!("reading {}: {e} (install busybox-static)", crate::BUSYBOX));
        let list = Command::new(crate::BUSYBOX).arg("--list").output().expect("busybox --list");
        let mut layer = self.dir("bin", 0o755).file("bin/busybox", binary, 0o755);
        for applet in String::from_utf8(list.stdout).unwrap().lines().filter(|a| *a != "busybox") {
            layer = layer.symlink(&format!("bin/{applet}"), "busybox");
        }
        for d in ["etc", "proc", "sys", "dev", "root"] {
            layer = layer.dir(d, 0o755);
        }
        layer.dir("tmp", 0o1777)
    }

    /// The layer's uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        self.write_tar(Vec::new()).expect("writing a tar to memory")
    }

    fn write_tar<W: Write>(&self, out: W) -> io::Result<W> {
        let mut tar = tar::Builder::new(out);
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(MTIME);
            h.set_uid(e.uid);
            h.set_gid(e.gid);
            h.set_mode(e.mode);
            h.set_size(0);
            match &e.kind {
                Kind::File(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    tar.append_data(&mut h, &e.path, data.as_slice())?;
                }
                Kind::Random { size, seed } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(*size);
                    tar.append_data(&mut h, &e.path, XorShift::new(*seed).take(*size))?;
                }
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut h, &e.path, io::empty())?;
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut h, &e.path, target)?;
                }
                Kind::Hardlink(target) => {
                    h.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut h, &e.path, target)?;
                }
                Kind::CharDevice { major, minor } => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_device_major(*major)?;
                    h.set_device_minor(*minor)?;
                    tar.append_data(&mut h, &e.path, io::empty())?;
                }
            }
        }
        tar.into_inner()
    }

    /// Streams the layer into `blobs/sha256/<digest>` and describes it.
    fn write_blob(&self, compression: Compression, blobs: &Path) -> io::Result<WrittenLayer> {
        let tmp = blobs.join(format!(".tmp-{}", crate::unique("layer")));
        let mut file = Hashing::new(BufWriter::new(File::create(&tmp)?));
        // An uncompressed blob is the tar itself: hash it once (sha2 is slow in debug builds).
        file.enabled = compression != Compression::None;
        let encoder = match compression {
            Compression::None => Encoder::None(file),
            Compression::Gzip => {
                Encoder::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::default()))
            }
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(file, 3)?),
        };
        let tar = self.write_tar(Hashing::new(encoder))?;
        let diff_id = tar.digest();
        let file = tar.inner.finish()?;
        let digest = if file.enabled { file.digest() } else { diff_id.clone() };
        let size = file.len;
        file.inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, blob_path(blobs, &digest))?;
        Ok(WrittenLayer { digest, diff_id, size, media_type: compression.media_type() })
    }
}

/// An OS, architecture and optional variant, with Go's (GOOS/GOARCH) names as OCI uses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform: linux and the host architecture's GOARCH name.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: variant.map(Into::into) }
    }

    /// Parses `os/arch[/variant]`, e.g. `linux/arm/v7`.
    pub fn parse(s: &str) -> Platform {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Platform { os: os.into(), architecture: arch.into(), variant: variant.map(Into::into) }
            }
            _ => panic!("platform {s:?} is not os/arch[/variant]"),
        }
    }

    fn to_json(&self) -> Value {
        let mut p = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// What was written for one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenLayer {
    /// `sha256:...` of the blob (the compressed bytes).
    pub digest: String,
    /// `sha256:...` of the uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// The blob's size in bytes.
    pub size: u64,
    pub media_type: &'static str,
}

/// What was written for one image.
#[derive(Clone, Debug)]
pub struct WrittenImage {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub config_size: u64,
    pub layers: Vec<WrittenLayer>,
    pub platform: Platform,
    /// The manifest's bytes, as stored.
    pub manifest: Vec<u8>,
    /// The config's bytes, as stored.
    pub config: Vec<u8>,
}

/// What was written for a multi-platform image.
#[derive(Clone, Debug)]
pub struct WrittenIndex {
    pub index_digest: String,
    pub index_size: u64,
    /// One per platform, in the order they were added.
    pub images: Vec<WrittenImage>,
    /// The image index's bytes, as stored.
    pub index: Vec<u8>,
}

/// A single-platform image: layers, a runtime config and a platform.
#[derive(Clone, Debug)]
pub struct Image {
    layers: Vec<(Layer, Compression)>,
    config: Map<String, Value>,
    platform: Platform,
}

impl Default for Image {
    fn default() -> Image {
        Image { layers: Vec::new(), config: Map::new(), platform: Platform::host() }
    }
}

impl Image {
    /// An image for the host's platform, with no layers and an empty config.
    pub fn new() -> Image {
        Image::default()
    }

    /// A one-layer image for `platform` whose only file, `/platform`, holds e.g. `linux/arm64\n`:
    /// the non-host members of a multi-platform index.
    pub fn platform_marker(platform: Platform) -> Image {
        let layer = Layer::new().file("platform", format!("{platform}\n"), 0o644);
        Image::new().platform(platform).layer(layer, Compression::Gzip)
    }

    /// Adds a layer on top of those added so far.
    pub fn layer(mut self, layer: Layer, compression: Compression) -> Image {
        self.layers.push((layer, compression));
        self
    }

    pub fn platform(mut self, platform: Platform) -> Image {
        self.platform = platform;
        self
    }

    /// Sets a field of the config's `config` object (e.g. `ExposedPorts`, `Healthcheck`).
    pub fn config_field(mut self, key: &str, value: Value) -> Image {
        self.config.insert(key.to_string(), value);
        self
    }

    pub fn entrypoint(self, args: &[&str]) -> Image {
        self.config_field("Entrypoint", json!(args))
    }

    pub fn cmd(self, args: &[&str]) -> Image {
        self.config_field("Cmd", json!(args))
    }

    /// Appends one `KEY=value` to `Env`.
    pub fn env(mut self, key_value: &str) -> Image {
        let env = self.config.entry("Env").or_insert_with(|| json!([]));
        env.as_array_mut().expect("Env is an array").push(json!(key_value));
        self
    }

    pub fn working_dir(self, dir: &str) -> Image {
        self.config_field("WorkingDir", json!(dir))
    }

    pub fn user(self, user: &str) -> Image {
        self.config_field("User", json!(user))
    }

    pub fn stop_signal(self, signal: &str) -> Image {
        self.config_field("StopSignal", json!(signal))
    }

    pub fn label(mut self, key: &str, value: &str) -> Image {
        let labels = self.config.entry("Labels").or_insert_with(|| json!({}));
        labels[key] = json!(value);
        self
    }

    /// Writes the image into the OCI layout at `dir` (created if missing) and tags it `tag`
    /// in `index.json`. A layout may hold several tags: an entry with the same tag is replaced.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> WrittenImage {
        let blobs = init_layout(dir);
        let written = self.write_blobs(&blobs);
        add_to_index_json(dir, MEDIA_TYPE_MANIFEST, &written.manifest_digest, written.manifest_size, tag);
        written
    }

    /// Writes the layers, config and manifest blobs into `blobs` (the `blobs` directory of a layout).
    fn write_blobs(&self, blobs: &Path) -> WrittenImage {
        let layers: Vec<WrittenLayer> = self
            .layers
            .iter()
            .map(|(l, c)| l.write_blob(*c, blobs).unwrap_or_else(|e| panic!("writing a layer: {e}")))
            .collect();
        let history: Vec<Value> = (0..layers.len())
            .map(|i| json!({ "created": CREATED, "created_by": format!("rocker-test-support layer {i}") }))
            .collect();
        let mut config = json!({
            "created": CREATED,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": self.config,
            "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>() },
            "history": history,
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let (config_digest, config_size) = write_bytes_blob(blobs, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": { "mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config_size },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let (manifest_digest, manifest_size) = write_bytes_blob(blobs, &manifest);
        WrittenImage {
            manifest_digest,
            manifest_size,
            config_digest,
            config_size,
            layers,
            platform: self.platform.clone(),
            manifest,
            config,
        }
    }
}

/// A multi-platform image: one [`Image`] per platform under an OCI image index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    images: Vec<Image>,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn image(mut self, image: Image) -> Index {
        self.images.push(image);
        self
    }

    /// Writes every image and the index into the layout at `dir`, the index tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> WrittenIndex {
        let blobs = init_layout(dir);
        let images: Vec<WrittenImage> = self.images.iter().map(|i| i.write_blobs(&blobs)).collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": images.iter().map(|i| json!({
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": i.manifest_digest,
                "size": i.manifest_size,
                "platform": i.platform.to_json(),
            })).collect::<Vec<_>>(),
        });
        let index = serde_json::to_vec(&index).unwrap();
        let (index_digest, index_size) = write_bytes_blob(&blobs, &index);
        add_to_index_json(dir, MEDIA_TYPE_INDEX, &index_digest, index_size, tag);
        WrittenIndex { index_digest, index_size, images, index }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The file of blob `digest` (`sha256:...`) in a layout's `blobs` directory.
fn blob_path(blobs: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("a digest is alg:hex");
    blobs.join(alg).join(hex)
}

/// Creates the layout's skeleton if needed; returns its `blobs` directory.
fn init_layout(dir: &Path) -> PathBuf {
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(blobs.join("sha256"))
        .unwrap_or_else(|e| panic!("creating {}: {e}", blobs.display()));
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    blobs
}

fn write_bytes_blob(blobs: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256_digest(bytes);
    let path = blob_path(blobs, &digest);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    (digest, bytes.len() as u64)
}

fn add_to_index_json(dir: &Path, media_type: &str, digest: &str, size: u64, tag: &str) {
    let path = dir.join("index.json");
    let mut index = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        Err(_) => json!({ "schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [] }),
    };
    let manifests = index["manifests"].as_array_mut().expect("index.json has manifests");
    manifests.retain(|m| m["annotations"][REF_NAME] != json!(tag));
    manifests.push(json!({
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": { REF_NAME: tag },
    }));
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
    /// Whether to hash at all (it always counts).
    enabled: bool,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing { inner, sha: Sha256::new(), len: 0, enabled: true }
    }
    fn digest(&self) -> String {
        format!("sha256:{:x}", self.sha.clone().finalize())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.enabled {
            self.sha.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// xorshift64*: fast, incompressible bytes, the same stream for the same seed however it is read.
struct XorShift {
    state: u64,
    /// Bytes of the last output word not handed out yet: `word[used..]`.
    word: [u8; 8],
    used: usize,
}

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // The state must not be zero; mix the seed so nearby seeds differ everywhere.
        XorShift { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, word: [0; 8], used: 8 }
    }
    fn next(&mut self) -> [u8; 8] {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }
}

impl Read for XorShift {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.used == 8 {
                if buf.len() - filled >= 8 {
                    let w = self.next();
                    buf[filled..filled + 8].copy_from_slice(&w);
                    filled += 8;
                    continue;
                }
                self.word = self.next();
                self.used = 0;
            }
            let n = (8 - self.used).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.word[self.used..self.used + n]);
            self.used += n;
            filled += n;
        }
        Ok(buf.len())
    }
}
