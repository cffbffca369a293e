//! Images end to end: the tests build their own images, push them with skopeo into a private
//! docker-registry on 127.0.0.1, and pull and run them with rocker, each in a store of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use rocker_test_support::oci_image::{Compression, Image, Index, Layer, Platform};
use rocker_test_support::registry::{Registry, SlowProxy};

/// A rocker store of the test's own (`--root`), checked at the end: no mount under it, no
/// container directory and no temp file left.
struct Store {
    dir: TempDir,
    cg: TestCgroup,
}

impl Store {
    fn new() -> Store {
        Store { dir: TempDir::new("store"), cg: TestCgroup::new() }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn rocker(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ROCKER);
        c.arg("--root").arg(self.root()).args(args).stdin(Stdio::null());
        c.env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"));
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = output(self.rocker(args));
        assert_eq!(r.code, 0, "rocker {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    /// `rocker run` with the test's cgroup parent.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["run", "--cgroup-parent", &self.cg.name];
        all.extend(args);
        output(self.rocker(&all))
    }

    fn layers(&self) -> Vec<String> {
        names(&self.root().join("image/layers"))
    }

    fn temp_entries(&self) -> Vec<String> {
        names(&self.root().join("image/tmp"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        assert!(mounts_under(self.dir.path()).is_empty(), "mounts left: {:?}", mounts_under(self.dir.path()));
        assert!(names(&self.root().join("containers")).is_empty(), "container dirs left");
        assert!(self.temp_entries().is_empty(), "temp entries left: {:?}", self.temp_entries());
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// busybox as a gzip base layer.
fn base() -> Image {
    Image::new().layer(Layer::new().busybox(), Compression::Gzip)
}

fn publish(registry: &Registry, image: &Image, name: &str) -> String {
    let layout = TempDir::new("layout");
    image.write_layout(layout.path(), "t");
    registry.push(layout.path(), "t", name);
    registry.reference(name)
}

#[test]
fn a_multi_layer_image_runs_on_the_merged_view_of_its_layers() {
    let registry = Registry::start();
    let image = base()
        .layer(
            Layer::new()
                .dir("data", 0o755)
                .file("data/keep", "v1\n", 0o644)
                .file("data/change", "old\n", 0o644)
                .file("data/gone", "x\n", 0o644)
                .dir("data/opaque", 0o755)
                .file("data/opaque/old", "x\n", 0o644),
            Compression::Zstd,
        )
        .layer(
            Layer::new()
                .file("data/change", "new\n", 0o644)
                .whiteout("data/gone")
                .opaque("data/opaque")
                .file("data/opaque/fresh", "y\n", 0o644)
                .file("data/suid", "#!/bin/sh\n", 0o4755),
            Compression::None,
        )
        .env("GREETING=hello")
        .working_dir("/data")
        .cmd(&[
            "/bin/sh",
            "-c",
            "echo $GREETING from $(pwd); find /data | sort; cat /data/change; stat -c %a /data/suid",
        ]);
    let reference = publish(&registry, &image, "app:v1");
    let store = Store::new();

    let pulled = store.ok(&["pull", &reference]);
    assert!(pulled.ends_with(&format!("Downloaded newer image for {reference}\n{reference}\n")), "{pulled}");
    assert_eq!(store.layers().len(), 3);
    let again = store.ok(&["pull", &reference]);
    assert!(again.contains("Image is up to date"), "{again}");

    let r = store.run(&[&reference]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "hello from /data\n/data\n/data/change\n/data/keep\n/data/opaque\n/data/opaque/fresh\n/data/suid\nnew\n4755\n"
    );

    // The container's writes go to its own upper directory, never to the image.
    let r = store.run(&[
        &reference,
        "/bin/sh",
        "-c",
        "echo changed > /data/keep; rm /data/change; cat /data/keep",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "changed\n"), "{}", r.stderr);
    let r = store.run(&[&reference, "cat", "/data/keep", "/data/change"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "v1\nnew\n"), "{}", r.stderr);

    // Layers and containers' upper directories hold setuid files and device nodes: no host
    // user but root may reach them.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.root()), 0o711);
    assert_eq!(mode(store.root().join("image")), 0o700);
    assert_eq!(mode(store.root().join("containers")), 0o700);

    // Docker's size: the layers' file contents unpacked (busybox, then 11 and 16 bytes).
    let inspect: serde_json::Value =
        serde_json::from_str(&store.ok(&["image", "inspect", &reference])).unwrap();
    let busybox = std::fs::metadata(BUSYBOX).unwrap().len();
    assert_eq!(inspect[0]["Size"], busybox + 11 + 16);

    let listed = store.ok(&["images"]);
    assert!(
        listed.contains(&reference.rsplit_once(':').unwrap().0.to_string()) && listed.contains("v1"),
        "{listed}"
    );
}

#[test]
fn entrypoint_cmd_user_and_workdir_follow_dockers_rules() {
    let registry = Registry::start();
    let image = base()
        .layer(
            Layer::new().file(
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/home/app:/bin/sh\n",
                0o644,
            ),
            Compression::Gzip,
        )
        .entrypoint(&["/bin/echo", "entry"])
        .cmd(&["cmd"])
        .user("app")
        .working_dir("/tmp");
    let reference = publish(&registry, &image, "rules:1");
    let store = Store::new();
    store.ok(&["pull", "-q", &reference]);
    let out = |args: &[&str]| {
        let r = store.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout
    };
    assert_eq!(out(&[&reference]), "entry cmd\n");
    assert_eq!(out(&[&reference, "a", "b"]), "entry a b\n");
    // --entrypoint replaces the Entrypoint and drops the image's Cmd.
    assert_eq!(out(&["--entrypoint", "/bin/echo", &reference]), "\n");
    assert_eq!(
        out(&["--entrypoint", "/bin/sh", &reference, "-c", "id -u; id -g; pwd; echo $HOME"]),
        "1234\n4321\n/tmp\n/home/app\n"
    );
    assert_eq!(
        out(&["--entrypoint", "", "-u", "0", "-w", "/", &reference, "/bin/sh", "-c", "id -u; pwd"]),
        "0\n/\n"
    );

    let r = store.run(&["-u", "nobody-here", &reference]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("unable to find user nobody-here"), "{}", r.stderr);
}

#[test]
fn docker_schema2_manifests_and_platform_indexes() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    base().cmd(&["/bin/sh", "-c", "echo schema2"]).write_layout(layout.path(), "t");
    registry.push_docker_schema2(layout.path(), "t", "docker:2");
    let store = Store::new();
    let r = store.run(&[&registry.reference("docker:2")]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "schema2\n"), "{}", r.stderr);
    assert!(r.stderr.contains("Unable to find image"), "{}", r.stderr);

    let host = Platform::host();
    let other = Platform::parse(if host.architecture == "arm64" { "linux/amd64" } else { "linux/arm64" });
    let index = Index::new()
        .image(Image::platform_marker(other.clone()))
        .image(base().layer(Layer::new().file("platform", "host\n", 0o644), Compression::Gzip));
    let layout = TempDir::new("layout");
    index.write_layout(layout.path(), "t");
    registry.push(layout.path(), "t", "multi:1");
    let reference = registry.reference("multi:1");
    let r = store.run(&[&reference, "cat", "/platform"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "host\n"), "{}", r.stderr);

    let other_name = format!("{}/{}", other.os, other.architecture);
    store.ok(&["pull", "-q", "--platform", &other_name, &reference]);
    let inspect: serde_json::Value =
        serde_json::from_str(&store.ok(&["image", "inspect", &reference])).unwrap();
    assert_eq!(inspect[0]["Architecture"], other.architecture.as_str());
    let r = output(store.rocker(&["pull", "--platform", "linux/s390x", &reference]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no image for linux/s390x"), "{}", r.stderr);
}

/// A registry whose blob does not match its digest: the pull fails naming it, and nothing
/// of the image is stored or tagged.
#[test]
fn a_blob_with_the_wrong_digest_is_refused() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let written = base()
        .layer(Layer::new().file("f", "good\n", 0o644), Compression::Gzip)
        .write_layout(layout.path(), "t");
    registry.push(layout.path(), "t", "bad:1");
    let hex = written.layers[1].digest.strip_prefix("sha256:").unwrap();
    let data = registry.storage().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let store = Store::new();
    let r = output(store.rocker(&["pull", &registry.reference("bad:1")]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains(&written.layers[1].digest) && r.stderr.contains("nothing was stored"),
        "{}",
        r.stderr
    );
    assert!(!store
        .layers()
        .contains(&written.layers[1].diff_id.strip_prefix("sha256:").unwrap().to_string()));
    assert!(!store.ok(&["images"]).contains("bad"), "the image was tagged");
}

/// The registry connection dies in the middle of a big layer: no half layer is kept, nothing
/// is tagged, and the next pull fetches only what was not complete.
#[test]
fn an_interrupted_pull_leaves_no_half_layer_and_resumes() {
    let registry = Registry::start();
    let image = base()
        .layer(Layer::new().file("small", "s\n", 0o644), Compression::Gzip)
        .layer(Layer::new().random_file("big", 8 << 20, 7), Compression::Gzip);
    let reference = publish(&registry, &image, "big:1");
    let proxy = SlowProxy::start(&registry.addr(), Some(4 << 20));
    let through_proxy = proxy.reference("big:1");
    let store = Store::new();

    let r = output(store.rocker(&["pull", "-q", &through_proxy]));
    assert_eq!(r.code, 1, "the truncated pull succeeded: {}", r.stderr);
    assert!(proxy.truncated() > 0);
    assert!(!store.ok(&["images"]).contains("big"), "a failed pull tagged the image");
    let complete = store.layers();
    assert!(complete.len() < 3, "{complete:?}");

    proxy.set_die_after(None);
    let before = proxy.blob_gets();
    store.ok(&["pull", "-q", &through_proxy]);
    assert_eq!(store.layers().len(), 3);
    // The config is kept; each layer complete before is not fetched again.
    assert_eq!(proxy.blob_gets() - before, 3 - complete.len(), "complete layers were fetched again");
    let r = store.run(&[&through_proxy, "sh", "-c", "wc -c < /big"]);
    assert_eq!(r.stdout.trim(), (8 << 20).to_string(), "{}", r.stderr);
    drop(reference);
}

#[test]
fn token_auth_login_and_logout() {
    let registry = Registry::start_with_token_auth("alice", "s3cret");
    let reference = publish(&registry, &base().cmd(&["echo", "authed"]), "private/app:1");
    let store = Store::new();

    // Anonymous pulls go through the Bearer challenge and the token server.
    let before = registry.token_requests();
    let r = store.run(&[&reference]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "authed\n"), "{}", r.stderr);
    assert!(registry.token_requests() > before);

    let auth_file = store.dir.path().join("auth.json");
    let r = output(store.rocker(&["login", "-u", "alice", "-p", "wrong", &registry.addr()]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
    assert!(!auth_file.exists(), "refused credentials were stored");

    let mut login = store.rocker(&["login", "-u", "alice", "--password-stdin", &registry.addr()]);
    login.stdin(Stdio::piped());
    let mut child = login.stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(stored["auths"][registry.addr()]["auth"], "YWxpY2U6czNjcmV0"); // alice:s3cret

    // With credentials stored, pulls send them to the token server (and still work).
    store.ok(&["pull", "-q", &reference]);
    assert!(store.ok(&["logout", &registry.addr()]).contains("Removing login credentials"));
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert!(stored["auths"].get(registry.addr()).is_none());
}

#[test]
fn tag_rmi_and_prune_remove_only_what_nothing_uses() {
    let registry = Registry::start();
    let shared = Layer::new().busybox();
    let a = publish(&registry, &Image::new().layer(shared.clone(), Compression::Gzip).cmd(&["true"]), "a:1");
    let b = publish(
        &registry,
        &Image::new()
            .layer(shared, Compression::Gzip)
            .layer(Layer::new().file("b", "b", 0o644), Compression::Gzip),
        "b:1",
    );
    let store = Store::new();
    store.ok(&["pull", "-q", &a]);
    store.ok(&["pull", "-q", &b]);
    assert_eq!(store.layers().len(), 2, "the shared layer is stored once");

    store.ok(&["tag", &a, "local/a:again"]);
    let removed = store.ok(&["rmi", &a]);
    assert!(removed.contains("Untagged") && !removed.contains("Deleted"), "{removed}");
    let r = store.run(&["local/a:again", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(store.ok(&["rmi", "local/a:again"]).contains("Deleted"));
    assert_eq!(store.layers().len(), 2, "b still uses both layers");

    // An image a running container uses is not deleted, even with -f.
    let mut waiting = store.rocker(&[
        "run",
        "--cgroup-parent",
        &store.cg.name,
        "-i",
        &b,
        "sh",
        "-c",
        "echo up; read x; exit 0",
    ]);
    waiting.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = waiting.spawn().unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    let r = output(store.rocker(&["rmi", &b]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("container"), "{}", r.stderr);
    store.ok(&["rmi", "-f", &b]);
    assert_eq!(store.layers().len(), 2, "layers of a running container were deleted");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    // Now nothing names or uses it: prune removes it and its layers.
    assert!(store.ok(&["image", "prune", "-f"]).contains("Total reclaimed: 1"));
    assert!(store.layers().is_empty());
    assert!(names(&store.root().join("image/blobs/sha256")).is_empty());
    assert!(names(&store.root().join("image/sizes")).is_empty());
}

#[test]
fn missing_images_and_pull_policies() {
    let registry = Registry::start();
    let store = Store::new();
    let r = store.run(&["--pull", "never", &registry.reference("nothing:1")]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--pull never"), "{}", r.stderr);
    let r = store.run(&[&registry.reference("nothing:1")]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    let r = output(store.rocker(&["pull", "Not_A/Ref"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid image reference"), "{}", r.stderr);

    // --pull always fetches the new image behind the same tag.
    let reference = publish(&registry, &base().cmd(&["echo", "one"]), "moving:1");
    assert_eq!(store.run(&[&reference]).stdout, "one\n");
    publish(&registry, &base().cmd(&["echo", "two"]), "moving:1");
    assert_eq!(store.run(&[&reference]).stdout, "one\n");
    assert_eq!(store.run(&["--pull", "always", &reference]).stdout, "two\n");
}

#[test]
fn two_pulls_of_one_image_at_once_both_succeed() {
    let registry = Registry::start();
    let image = base().layer(Layer::new().random_file("r", 4 << 20, 3), Compression::Gzip);
    let reference = publish(&registry, &image, "race:1");
    let store = Store::new();
    let children: Vec<_> = (0..2)
        .map(|_| store.rocker(&["pull", "-q", &reference]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(store.layers().len(), 2);
    let r = store.run(&[&reference, "sh", "-c", "wc -c < /r"]);
    assert_eq!(r.stdout.trim(), (4 << 20).to_string(), "{}", r.stderr);
}

#[test]
fn import_save_and_load_carry_an_image_between_stores() {
    let rootfs = Rootfs::new();
    let tarball = TempDir::new("tarball");
    let tar = tarball.path().join("rootfs.tar.gz");
    let made =
        Command::new("tar").arg("-C").arg(rootfs.path()).arg("-czf").arg(&tar).arg(".").status().unwrap();
    assert!(made.success());

    let store = Store::new();
    let mut import = store.rocker(&["import", "--cmd", "/bin/echo imported", "-", "local/bb:1"]);
    import.stdin(std::fs::File::open(&tar).unwrap());
    let r = output(import);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("sha256:"), "{}", r.stdout);
    let r = store.run(&["local/bb:1"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "imported\n"), "{}", r.stderr);

    for format in ["docker-archive", "oci-archive"] {
        let archive = tarball.path().join(format!("{format}.tar"));
        store.ok(&["save", "--format", format, "-o", archive.to_str().unwrap(), "local/bb:1"]);
        let inspected = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("{format}:{}", archive.display()))
            .output()
            .unwrap();
        assert!(
            inspected.status.success(),
            "skopeo refused rocker's {format}: {}",
            String::from_utf8_lossy(&inspected.stderr)
        );

        let other = Store::new();
        let loaded = other.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(loaded.contains("local/bb:1"), "{format}: {loaded}");
        let r = other.run(&["local/bb:1"]);
        assert_eq!((r.code, r.stdout.as_str()), (0, "imported\n"), "{format}: {}", r.stderr);
    }

    // A failed save leaves no file behind under the name asked for.
    let missing = tarball.path().join("missing.tar");
    let r = output(store.rocker(&["save", "-o", missing.to_str().unwrap(), "local/bb:1", "no/such:image"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no such image"), "{}", r.stderr);
    assert_eq!(names(tarball.path()), ["docker-archive.tar", "oci-archive.tar", "rootfs.tar.gz"]);
}

/// `rmi` of an image whose layer a running pull of another image counts on: the store lock
/// makes the rmi wait, so the pulled image never refers to a deleted layer.
#[test]
fn rmi_racing_a_pull_keeps_the_layers_the_pull_needs() {
    let registry = Registry::start();
    let shared = Layer::new().busybox();
    let a = publish(&registry, &Image::new().layer(shared.clone(), Compression::Gzip), "a:1");
    publish(
        &registry,
        &Image::new()
            .layer(shared, Compression::Gzip)
            .layer(Layer::new().random_file("slow", 2 << 20, 5), Compression::Gzip)
            .cmd(&["sh", "-c", "wc -c < /slow"]),
        "b:1",
    );
    let proxy = SlowProxy::start_throttled(&registry.addr(), None, 2 << 20);
    let b = proxy.reference("b:1");
    let store = Store::new();
    store.ok(&["pull", "-q", &a]);

    let mut pull = store.rocker(&["pull", "-q", &b]).stdout(Stdio::null()).spawn().unwrap();
    while proxy.blob_gets() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The shared layer is "already there" for the pull; rmi must not take it away meanwhile.
    let removed = store.ok(&["rmi", &a]);
    assert!(removed.contains("Deleted"), "{removed}");
    assert!(pull.wait().unwrap().success());
    let r = store.run(&[&b]);
    assert_eq!((r.code, r.stdout.trim()), (0, (2 << 20).to_string().as_str()), "{}", r.stderr);
}

/// A pull killed at a random point leaves only temp files of a dead process, which no run
/// uses and the next pull removes; the image is then complete.
#[test]
fn a_killed_pull_leaves_nothing_a_run_would_use() {
    let registry = Registry::start();
    let image = base().layer(Layer::new().random_file("big", 6 << 20, 9), Compression::Gzip).cmd(&[
        "sh",
        "-c",
        "wc -c < /big",
    ]);
    publish(&registry, &image, "killed:1");
    let proxy = SlowProxy::start_throttled(&registry.addr(), None, 2 << 20);
    let reference = proxy.reference("killed:1");
    let store = Store::new();

    let mut pull = store
        .rocker(&["pull", "-q", &reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while proxy.blob_gets() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The child this test started, by its pid.
    assert_eq!(unsafe { libc::kill(pull.id() as i32, libc::SIGKILL) }, 0);
    pull.wait().unwrap();
    assert!(!store.temp_entries().is_empty(), "the pull was not midway");
    let r = store.run(&["--pull", "never", &reference]);
    assert_eq!(r.code, 125, "a run used a half-pulled image: {}", r.stdout);

    proxy.set_rate(None);
    let r = store.run(&[&reference]);
    assert_eq!((r.code, r.stdout.trim()), (0, (6 << 20).to_string().as_str()), "{}", r.stderr);
    assert!(store.temp_entries().is_empty(), "the dead pull's temp files stayed: {:?}", store.temp_entries());
}

/// A registry behind Basic auth: refused without credentials, pulled with stored ones.
#[test]
fn basic_auth_uses_the_stored_credentials() {
    let registry = Registry::start();
    publish(&registry, &base().cmd(&["echo", "basic"]), "basic:1");
    let proxy = SlowProxy::start(&registry.addr(), None);
    proxy.require_basic("bob", "pw");
    let reference = proxy.reference("basic:1");
    let store = Store::new();

    let r = output(store.rocker(&["pull", &reference]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("authentication required: log in first"), "{}", r.stderr);
    let r = output(store.rocker(&["login", "-u", "bob", "-p", "nope", &proxy.addr()]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(store.ok(&["login", "-u", "bob", "-p", "pw", &proxy.addr()]).contains("Login Succeeded"));
    let refused = proxy.refused();
    let r = store.run(&[&reference]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "basic\n"), "{}", r.stderr);
    // One challenge, answered once: the layers then go with the credentials.
    assert_eq!(proxy.refused() - refused, 1);
}

/// Overlay options fit in one page: 50 layers, named relative to the store's layers/ (with
/// absolute paths the page ends at about 41).
#[test]
fn an_image_of_fifty_layers_runs() {
    let registry = Registry::start();
    let mut image = base();
    for i in 1..50 {
        image = image.layer(Layer::new().file(&format!("l{i}"), format!("{i}\n"), 0o644), Compression::None);
    }
    let reference =
        publish(&registry, &image.cmd(&["sh", "-c", "cat /l1 /l49; ls / | grep -c '^l'"]), "tall:1");
    let store = Store::new();
    let r = store.run(&[&reference]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "1\n49\n49\n"), "{}", r.stderr);
}
