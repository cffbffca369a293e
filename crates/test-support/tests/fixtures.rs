//! Tests of the image and registry fixtures themselves, against the real `docker-registry`
//! and `skopeo`: what the tests of rocker's image code will stand on.

use std::io::Read;
use std::path::Path;

use rocker_test_support::oci_image::{
    sha256_digest, Compression, Image, Index, Layer, Platform, WrittenImage, MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
};
use rocker_test_support::registry::{http_get, Registry, SlowProxy, TOKEN_SERVICE};
use rocker_test_support::TempDir;
use serde_json::Value;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The registry process is gone, not a zombie: it was killed by pid and waited for.
fn assert_reaped(pid: u32) {
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "registry process {pid} was left behind");
}

/// (path, entry type, link name) of every entry in a tar.
fn tar_entries(tar: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
            (e.path().unwrap().to_string_lossy().into_owned(), e.header().entry_type(), link)
        })
        .collect()
}

fn app_layer() -> Layer {
    Layer::new()
        .dir("app", 0o755)
        .file("/app/hello", "hello from layer 2\n", 0o644)
        .symlink("app/link", "hello")
        .hardlink("app/hard", "/app/hello")
        .whiteout("/etc/gone")
        .opaque("tmp/")
}

fn two_layer_image(compression: Compression) -> Image {
    Image::new()
        .layer(Layer::new().busybox(), compression)
        .layer(app_layer(), compression)
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["cat /app/hello"])
        .env("PATH=/bin")
        .env("GREETING=hi")
        .working_dir("/app")
        .user("1000:1000")
        .stop_signal("SIGINT")
}

/// The manifest the registry serves is ours byte for byte, and so is every blob it names.
fn assert_served_as_written(registry: &Registry, repo: &str, written: &WrittenImage) {
    let raw = registry.inspect_raw(&format!("{repo}@{}", written.manifest_digest));
    assert_eq!(raw, written.manifest, "the registry serves a different manifest");
    let manifest = json(&raw);
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
    assert_eq!(manifest["config"]["digest"], written.config_digest.as_str());
    for (served, ours) in manifest["layers"].as_array().unwrap().iter().zip(&written.layers) {
        assert_eq!(served["digest"], ours.digest.as_str());
        assert_eq!(served["mediaType"], ours.media_type);
        assert_eq!(served["size"], ours.size);
        let blob = registry.get(&format!("/v2/{repo}/blobs/{}", ours.digest), &[]);
        assert_eq!(blob.status, 200);
        assert_eq!(sha256_digest(&blob.body), ours.digest);
    }
    let config = registry.get(&format!("/v2/{repo}/blobs/{}", written.config_digest), &[]);
    assert_eq!(config.body, written.config);
}

#[test]
fn layer_tar_holds_the_entries_in_order() {
    let entries = tar_entries(&app_layer().tar());
    let names: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(names, ["app", "app/hello", "app/link", "app/hard", "etc/.wh.gone", "tmp/.wh..wh..opq"]);
    assert_eq!(entries[1].1, tar::EntryType::Regular);
    assert_eq!(entries[2], ("app/link".into(), tar::EntryType::Symlink, Some("hello".into())));
    assert_eq!(entries[3], ("app/hard".into(), tar::EntryType::Link, Some("app/hello".into())));

    let busybox = tar_entries(&Layer::new().busybox().tar());
    assert!(busybox.contains(&("bin/busybox".into(), tar::EntryType::Regular, None)));
    assert!(busybox.contains(&("bin/sh".into(), tar::EntryType::Symlink, Some("busybox".into()))));
    for dir in ["etc", "tmp", "proc", "sys", "dev"] {
        assert!(busybox.iter().any(|(p, t, _)| p.trim_end_matches('/') == dir && t.is_dir()), "no {dir}");
    }
}

#[test]
fn layouts_are_reproducible_and_hash_the_uncompressed_tar() {
    let (a, b) = (TempDir::new("layout"), TempDir::new("layout"));
    let random = Layer::new().random_file("big", 3 << 20, 7);
    let image = || {
        Image::new()
            .layer(app_layer(), Compression::Gzip)
            .layer(random.clone(), Compression::Zstd)
            .layer(app_layer(), Compression::None)
    };
    let wa = image().write_layout(a.path(), "v1");
    let wb = image().write_layout(b.path(), "v1");
    assert_eq!(wa.manifest_digest, wb.manifest_digest);
    assert_eq!(wa.layers, wb.layers);

    let config = json(&wa.config);
    assert_eq!(config["architecture"], Platform::host().architecture.as_str());
    assert_eq!(config["os"], "linux");
    let diff_ids: Vec<&str> =
        config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(diff_ids, wa.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>());
    assert_eq!(wa.layers[0].diff_id, sha256_digest(&app_layer().tar()));
    assert_eq!(wa.layers[2].diff_id, wa.layers[2].digest, "an uncompressed layer's digest is its diff_id");
    assert_eq!(wa.layers[0].diff_id, wa.layers[2].diff_id);
    assert_ne!(wa.layers[0].digest, wa.layers[0].diff_id);

    // Every blob is stored under its digest with its size; the random file does not compress.
    for l in &wa.layers {
        let path = a.path().join("blobs/sha256").join(l.digest.trim_start_matches("sha256:"));
        let blob = std::fs::read(&path).unwrap();
        assert_eq!(sha256_digest(&blob), l.digest);
        assert_eq!(blob.len() as u64, l.size);
    }
    assert!(wa.layers[1].size > 3 << 20);
    let zstd_blob =
        std::fs::read(a.path().join("blobs/sha256").join(wa.layers[1].digest.trim_start_matches("sha256:")))
            .unwrap();
    let mut tar = Vec::new();
    zstd::stream::read::Decoder::new(&zstd_blob[..]).unwrap().read_to_end(&mut tar).unwrap();
    assert_eq!(sha256_digest(&tar), wa.layers[1].diff_id);
    assert_ne!(
        Layer::new().random_file("big", 4096, 8).tar(),
        Layer::new().random_file("big", 4096, 7).tar()
    );

    let index = json(&std::fs::read(a.path().join("index.json")).unwrap());
    assert_eq!(index["manifests"][0]["digest"], wa.manifest_digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1");
    // A second tag joins the first; re-writing a tag replaces it.
    Image::platform_marker(Platform::parse("linux/arm64")).write_layout(a.path(), "v2");
    image().write_layout(a.path(), "v1");
    let index = json(&std::fs::read(a.path().join("index.json")).unwrap());
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn gzip_image_is_served_with_our_digests() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let written = two_layer_image(Compression::Gzip).write_layout(layout.path(), "latest");
    let pushed = registry.push(layout.path(), "latest", "tests/gzip:v1");
    assert_eq!(pushed, written.manifest_digest);
    assert_served_as_written(&registry, "tests/gzip", &written);
    assert_eq!(registry.inspect_raw("tests/gzip:v1"), written.manifest);
    let manifest = json(&written.manifest);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let config = json(&written.config);
    assert_eq!(config["config"]["Env"], serde_json::json!(["PATH=/bin", "GREETING=hi"]));
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["config"]["StopSignal"], "SIGINT");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));

    let pid = registry.pid();
    drop(registry);
    assert_reaped(pid);
}

#[test]
fn zstd_and_uncompressed_layers_stay_as_built() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let written = Image::new()
        .layer(Layer::new().busybox(), Compression::Zstd)
        .layer(app_layer(), Compression::None)
        .write_layout(layout.path(), "v1");
    assert_eq!(registry.push(layout.path(), "v1", "tests/zstd:v1"), written.manifest_digest);
    assert_served_as_written(&registry, "tests/zstd", &written);
    assert_eq!(written.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_eq!(written.layers[1].media_type, "application/vnd.oci.image.layer.v1.tar");
}

#[test]
fn multi_platform_index_is_served_with_every_manifest() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let host = two_layer_image(Compression::Gzip);
    let written = Index::new()
        .image(host)
        .image(Image::platform_marker(Platform::parse("linux/arm64")))
        .image(Image::platform_marker(Platform::parse("linux/arm/v7")))
        .write_layout(layout.path(), "multi");
    assert_eq!(registry.push(layout.path(), "multi", "tests/multi:v1"), written.index_digest);
    let raw = registry.inspect_raw("tests/multi:v1");
    assert_eq!(raw, written.index);
    let index = json(&raw);
    assert_eq!(index["mediaType"], MEDIA_TYPE_INDEX);
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let variant = p["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default();
            format!("{}/{}{variant}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, [Platform::host().to_string(), "linux/arm64".into(), "linux/arm/v7".into()]);
    for image in &written.images {
        assert_served_as_written(&registry, "tests/multi", image);
    }
    let arm = json(&written.images[2].config);
    assert_eq!((arm["architecture"].as_str(), arm["variant"].as_str()), (Some("arm"), Some("v7")));
}

#[test]
fn docker_schema2_push_converts_manifests_and_lists() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let written = two_layer_image(Compression::Gzip).write_layout(layout.path(), "v1");
    let digest = registry.push_docker_schema2(layout.path(), "v1", "tests/docker:v1");
    let raw = registry.inspect_raw("tests/docker:v1");
    assert_eq!(sha256_digest(&raw), digest);
    let manifest = json(&raw);
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    for (served, ours) in manifest["layers"].as_array().unwrap().iter().zip(&written.layers) {
        assert_eq!(served["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
        assert_eq!(served["digest"], ours.digest.as_str(), "gzip layers are not recompressed");
    }

    Index::new()
        .image(two_layer_image(Compression::Gzip))
        .image(Image::platform_marker(Platform::parse("linux/arm64")))
        .write_layout(layout.path(), "multi");
    let digest = registry.push_docker_schema2(layout.path(), "multi", "tests/docker:multi");
    let raw = registry.inspect_raw("tests/docker:multi");
    assert_eq!(sha256_digest(&raw), digest);
    let list = json(&raw);
    assert_eq!(list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(list["manifests"][1]["platform"]["architecture"], "arm64");
    let child = json(
        &registry.inspect_raw(&format!("tests/docker@{}", list["manifests"][1]["digest"].as_str().unwrap())),
    );
    assert_eq!(child["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
}

#[test]
fn token_auth_challenges_then_grants_pull_anonymously_and_push_with_credentials() {
    let registry = Registry::start_with_token_auth("tester", "s3cret");
    let layout = TempDir::new("layout");
    let written = two_layer_image(Compression::Gzip).write_layout(layout.path(), "v1");

    // Anonymous requests to the registry get the Bearer challenge.
    let challenge = registry.get("/v2/tests/private/manifests/v1", &[]);
    assert_eq!(challenge.status, 401);
    let www = challenge.header("WWW-Authenticate").expect("a challenge").to_string();
    let token_url = format!("http://{}/token", registry.token_server().unwrap());
    assert!(www.starts_with(&format!("Bearer realm=\"{token_url}\"")), "{www}");
    assert!(www.contains(&format!("service=\"{TOKEN_SERVICE}\"")), "{www}");
    assert!(www.contains("scope=\"repository:tests/private:pull\""), "{www}");

    // Anonymous and wrong credentials cannot push; the right ones can.
    let err = registry.try_push(layout.path(), "v1", "tests/private:v1", None).unwrap_err();
    assert!(err.contains("unauthorized") || err.contains("denied") || err.contains("401"), "{err}");
    let err =
        registry.try_push(layout.path(), "v1", "tests/private:v1", Some(("tester", "wrong"))).unwrap_err();
    assert!(err.contains("401") || err.contains("unauthorized"), "{err}");
    let before = registry.token_requests();
    assert_eq!(registry.push(layout.path(), "v1", "tests/private:v1"), written.manifest_digest);
    assert!(registry.token_requests() > before, "skopeo pushed without asking the token server");

    // An anonymous pull token lets skopeo read; the registry rejects a made-up token.
    let before = registry.token_requests();
    assert_eq!(registry.inspect_raw("tests/private:v1"), written.manifest);
    assert!(registry.token_requests() > before);
    let bogus = registry.get("/v2/tests/private/manifests/v1", &[("Authorization", "Bearer a.b.c")]);
    assert_eq!(bogus.status, 401);

    // By hand: the token server's answers and what the registry makes of them.
    let token_addr = registry.token_server().unwrap();
    let query = format!("/token?service={TOKEN_SERVICE}&scope=repository%3Atests%2Fprivate%3Apull%2Cpush");
    let anonymous = http_get(&token_addr, &query, &[]).unwrap();
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    let token = json(&anonymous.body)["token"].as_str().unwrap().to_string();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims = json(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap());
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "tests/private", "actions": ["pull"]}])
    );
    let bearer = format!("Bearer {token}");
    let manifest = registry.get(
        "/v2/tests/private/manifests/v1",
        &[("Authorization", &bearer), ("Accept", MEDIA_TYPE_MANIFEST)],
    );
    assert_eq!(manifest.status, 200, "{}\n{}", manifest.text(), registry.log());
    assert_eq!(manifest.body, written.manifest);

    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("tester:wrong"));
    let denied = http_get(&token_addr, &query, &[("Authorization", &basic)]).unwrap();
    assert_eq!(denied.status, 401);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("tester:s3cret"));
    let granted = http_get(&token_addr, &query, &[("Authorization", &basic)]).unwrap();
    let token = json(&granted.body)["access_token"].as_str().unwrap().to_string();
    let claims = json(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap(),
    );
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull", "push"]));
    assert_eq!(claims["sub"], "tester");

    let pid = registry.pid();
    drop(registry);
    assert_reaped(pid);
    assert!(http_get(&token_addr, &query, &[]).is_err(), "the token server outlived its registry");
}

#[test]
fn slow_proxy_cuts_blob_bodies_and_killed_registry_refuses() {
    let registry = Registry::start();
    let layout = TempDir::new("layout");
    let written = Image::new()
        .layer(Layer::new().random_file("blob", 256 << 10, 1), Compression::None)
        .write_layout(layout.path(), "v1");
    registry.push(layout.path(), "v1", "tests/slow:v1");
    let layer = &written.layers[0];
    let path = format!("/v2/tests/slow/blobs/{}", layer.digest);

    let cutting = SlowProxy::start(&registry.addr(), Some(1000));
    let cut = http_get(&cutting.addr(), &path, &[]).unwrap();
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("Content-Length"), Some(layer.size.to_string().as_str()));
    assert_eq!(cut.body.len(), 1000);
    assert_eq!((cutting.blob_gets(), cutting.truncated()), (1, 1));
    // Manifests pass whole.
    let manifest =
        http_get(&cutting.addr(), "/v2/tests/slow/manifests/v1", &[("Accept", MEDIA_TYPE_MANIFEST)]).unwrap();
    assert_eq!(manifest.body, written.manifest);
    assert_eq!(cutting.truncated(), 1);
    // A retry after the cut gets the whole blob once the proxy lets it through.
    cutting.set_die_after(None);
    let whole = http_get(&cutting.addr(), &path, &[]).unwrap();
    assert_eq!(sha256_digest(&whole.body), layer.digest);
    assert_eq!((cutting.blob_gets(), cutting.truncated()), (2, 1));

    let slow = SlowProxy::start_throttled(&registry.addr(), None, 2 << 20);
    let whole = http_get(&slow.addr(), &path, &[]).unwrap();
    assert_eq!(sha256_digest(&whole.body), layer.digest);
    assert_eq!((slow.blob_gets(), slow.truncated()), (1, 0));

    let pid = registry.pid();
    assert!(registry.is_running());
    registry.kill();
    assert!(!registry.is_running());
    assert_reaped(pid);
    assert!(http_get(&registry.addr(), "/v2/", &[]).is_err());
    assert!(http_get(&slow.addr(), &path, &[]).map(|r| r.body.is_empty()).unwrap_or(true));
}
