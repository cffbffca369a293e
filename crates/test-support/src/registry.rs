//! A private registry on 127.0.0.1 for image tests: Debian's `docker-registry` (the CNCF
//! distribution registry 2.8) as a child process, images pushed into it with `skopeo`, an
//! optional token server for Docker's token auth, and a proxy that slows down or cuts blob
//! downloads.
//!
//! ```no_run
//! use rocker_test_support::oci_image::{Compression, Image, Layer};
//! use rocker_test_support::registry::Registry;
//! let registry = Registry::start();
//! let layout = rocker_test_support::TempDir::new("layout");
//! Image::new().layer(Layer::new().busybox(), Compression::Gzip).write_layout(layout.path(), "v1");
//! registry.push(layout.path(), "v1", "tests/busybox:v1");
//! // rocker pull 127.0.0.1:PORT/tests/busybox:v1 ...
//! let image = registry.reference("tests/busybox:v1");
//! ```
//!
//! Everything is torn down on drop: the registry process is killed by its pid and reaped, the
//! token server's and proxy's threads are stopped and joined, the temp dir is removed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::oci_image::{MEDIA_TYPE_INDEX, REF_NAME};
use crate::TempDir;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// The `service` of the token-auth registry: the `aud` of its tokens.
pub const TOKEN_SERVICE: &str = "rocker-test-registry";
/// The `iss` of the token server's tokens and the CN of its certificate.
pub const TOKEN_ISSUER: &str = "rocker-test-issuer";

const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// A response header whose value is unique to each registry we start, so that the readiness
/// check cannot be answered by another process that happens to hold the port.
const ID_HEADER: &str = "X-Rocker-Test-Registry";

/// A running `docker-registry serve`, on 127.0.0.1, without TLS.
pub struct Registry {
    port: u16,
    pid: u32,
    /// None once killed and reaped.
    child: Mutex<Option<Child>>,
    auth: Option<TokenServer>,
    dir: TempDir,
}

impl Registry {
    /// A registry without auth, ready to serve.
    pub fn start() -> Registry {
        Registry::launch(TempDir::new("registry"), None)
    }

    /// A registry that requires Docker token auth from a token server of ours: anonymous clients
    /// get pull-only tokens, clients that send `user`/`password` (HTTP Basic) to the token
    /// server get pull and push, a wrong password gets 401.
    pub fn start_with_token_auth(user: &str, password: &str) -> Registry {
        let dir = TempDir::new("registry");
        let out = crate::output({
            let mut c = Command::new("openssl");
            c.current_dir(dir.path()).args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"]).args([
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "1",
                "-subj",
                &format!("/CN={TOKEN_ISSUER}"),
            ]);
            c
        });
        assert_eq!(out.code, 0, "openssl req failed: {}", out.stderr);
        let pem = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        // The base64 in a PEM file is the standard base64 of the DER, which is what x5c holds.
        let x5c: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(&x5c).expect("cert.pem holds base64 DER");
        let tokens = TokenServer::start(TokenIssuer {
            user: user.to_string(),
            password: password.to_string(),
            key: dir.path().join("key.pem"),
            x5c,
        });
        Registry::launch(dir, Some(tokens))
    }

    fn launch(dir: TempDir, auth: Option<TokenServer>) -> Registry {
        let log_path = dir.path().join("registry.log");
        for attempt in 1..=5 {
            let port = free_port();
            let id = crate::unique("id");
            let config = dir.path().join("config.yml");
            std::fs::write(&config, config_yml(dir.path(), port, &id, auth.as_ref())).unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {REGISTRY_BIN}: {e} (apt-get install docker-registry)"));
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // Another process took the port between our probe and the registry's bind.
                    if log.contains("address already in use") && attempt < 5 {
                        break;
                    }
                    panic!(
                        "docker-registry exited ({status}) before serving on 127.0.0.1:{port}; log:\n{log}"
                    );
                }
                let ours = http_get(&format!("127.0.0.1:{port}"), "/v2/", &[])
                    .map(|r| r.header(ID_HEADER) == Some(id.as_str()) && matches!(r.status, 200 | 401))
                    .unwrap_or(false);
                if ours {
                    let pid = child.id();
                    return Registry { port, pid, child: Mutex::new(Some(child)), auth, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!(
                        "docker-registry did not answer GET http://127.0.0.1:{port}/v2/ within {READY_TIMEOUT:?}; log:\n{log}"
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        unreachable!("the last attempt panics")
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The full image reference of `repo_and_tag` in this registry: `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr())
    }

    /// The registry process's pid (reaped once killed or dropped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The registry's storage root (`docker/registry/v2/...` below it), to inspect or corrupt.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// What the registry logged so far (its stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Kills the registry process (by its pid) and reaps it, e.g. to make a pull fail midway.
    /// Connections in progress are cut; new ones are refused. Idempotent.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the registry process is still running (false once killed).
    pub fn is_running(&self) -> bool {
        match self.child.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// The user and password the token server accepts, for a token-auth registry.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|a| (a.issuer.user.as_str(), a.issuer.password.as_str()))
    }

    /// The token server's address (`127.0.0.1:PORT`), for a token-auth registry.
    pub fn token_server(&self) -> Option<String> {
        self.auth.as_ref().map(|a| a.addr.to_string())
    }

    /// How many requests the token server has answered (0 without token auth), any outcome.
    pub fn token_requests(&self) -> usize {
        self.auth.as_ref().map_or(0, |a| a.requests.load(Ordering::SeqCst))
    }

    /// A plain HTTP/1.0 GET against the registry, e.g. `get("/v2/repo/manifests/tag", &[])`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_get(&self.addr(), path, headers).unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.url()))
    }

    /// Pushes tag `tag` of the OCI layout `layout` as `repo_and_tag` (`repo:tag`), byte for
    /// byte: manifests, configs and layers keep our digests, media types and compression
    /// (skopeo's `--preserve-digests`; an index is pushed with `--all`). Uses the registry's
    /// credentials when it has token auth. Returns the pushed manifest's (or index's) digest.
    pub fn push(&self, layout: &Path, tag: &str, repo_and_tag: &str) -> String {
        let creds = self.credentials();
        self.try_push(layout, tag, repo_and_tag, creds).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`push`](Self::push) with explicit credentials (None: anonymous); Err holds skopeo's stderr.
    pub fn try_push(
        &self,
        layout: &Path,
        tag: &str,
        repo_and_tag: &str,
        creds: Option<(&str, &str)>,
    ) -> Result<String, String> {
        self.skopeo_copy(layout, tag, repo_and_tag, creds, &["--preserve-digests"])
    }

    /// Pushes as Docker's schema 2: skopeo converts the manifest to
    /// `application/vnd.docker.distribution.manifest.v2+json` (an index to a Docker manifest
    /// list) with the Docker media types, so the manifest and config digests differ from the
    /// layout's. Only for gzip and uncompressed layers (skopeo gzips uncompressed ones; zstd
    /// has no Docker media type and fails). Returns the pushed manifest's (or list's) digest.
    pub fn push_docker_schema2(&self, layout: &Path, tag: &str, repo_and_tag: &str) -> String {
        self.skopeo_copy(layout, tag, repo_and_tag, self.credentials(), &["--format", "v2s2"])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn skopeo_copy(
        &self,
        layout: &Path,
        tag: &str,
        repo_and_tag: &str,
        creds: Option<(&str, &str)>,
        extra: &[&str],
    ) -> Result<String, String> {
        let digest_file = self.dir.path().join(crate::unique("digest"));
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"]).args(extra);
        if is_index(layout, tag) {
            c.arg("--all");
        }
        if let Some((user, password)) = creds {
            c.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        c.arg("--digestfile").arg(&digest_file);
        c.arg(format!("oci:{}:{tag}", layout.display()));
        c.arg(format!("docker://{}", self.reference(repo_and_tag)));
        let out = crate::output(c);
        let digest = std::fs::read_to_string(&digest_file).unwrap_or_default();
        let _ = std::fs::remove_file(&digest_file);
        if out.code != 0 {
            return Err(format!(
                "skopeo copy oci:{}:{tag} to {} failed ({}):\n{}",
                layout.display(),
                self.reference(repo_and_tag),
                out.code,
                out.stderr
            ));
        }
        Ok(digest.trim().to_string())
    }

    /// The manifest (or index) the registry serves for `repo_and_tag`, raw, fetched anonymously
    /// by `skopeo inspect --raw` (with token auth: through an anonymous pull token).
    pub fn inspect_raw(&self, repo_and_tag: &str) -> Vec<u8> {
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}", self.reference(repo_and_tag)));
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect --raw {} failed: {}",
            self.reference(repo_and_tag),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the layout's entry tagged `tag` is an image index (pushed with `--all`).
fn is_index(layout: &Path, tag: &str) -> bool {
    let path = layout.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entry =
        index["manifests"].as_array().and_then(|m| m.iter().find(|m| m["annotations"][REF_NAME] == tag));
    let entry = entry.unwrap_or_else(|| panic!("{} has no tag {tag:?}", path.display()));
    matches!(
        entry["mediaType"].as_str(),
        Some(MEDIA_TYPE_INDEX | "application/vnd.docker.distribution.manifest.list.v2+json")
    )
}

/// A port that was free a moment ago (the caller must cope with losing a race for it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_yml(dir: &Path, port: u16, id: &str, auth: Option<&TokenServer>) -> String {
    let mut yml = format!(
        "version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {id}
  headers:
    {ID_HEADER}: [{id}]
",
        storage = dir.join("storage").display(),
    );
    if let Some(auth) = auth {
        yml += &format!(
            "auth:
  token:
    realm: http://{addr}/token
    service: {TOKEN_SERVICE}
    issuer: {TOKEN_ISSUER}
    rootcertbundle: {cert}
",
            addr = auth.addr,
            cert = dir.join("cert.pem").display(),
        );
    }
    yml
}

/// A response to [`http_get`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Names as sent; look them up with [`header`](Self::header).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.0 GET (`addr` is `host:port`): the server closes the connection after the
/// response, so the body is everything up to EOF.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        req += &format!("{name}: {value}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let end = find(&raw, b"\r\n\r\n").ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse { status, headers, body: raw[end + 4..].to_vec() })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads an HTTP message head from `s`: (head including the blank line, bytes read past it).
fn read_head(s: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 1 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP head over 1 MiB"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Wakes a thread blocked in `accept` on `addr` (after its stop flag was set).
fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// Token server

/// Who may have what, and how to sign it.
struct TokenIssuer {
    user: String,
    password: String,
    key: PathBuf,
    /// The certificate's DER in standard base64: the JWT header's `x5c` chain of one.
    x5c: String,
}

/// Docker's token auth (<https://distribution.github.io/distribution/spec/auth/token/>) on
/// 127.0.0.1: `GET /token?service=...&scope=...`, optionally with HTTP Basic credentials,
/// answers `{"token": JWT, "access_token": JWT}`; the JWT is RS256-signed by the key whose
/// self-signed certificate is the registry's `rootcertbundle` and travels in `x5c`.
struct TokenServer {
    addr: SocketAddr,
    issuer: Arc<TokenIssuer>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    fn start(issuer: TokenIssuer) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = Arc::new(issuer);
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (issuer, requests, stop) = (issuer.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (issuer, requests) = (issuer.clone(), requests.clone());
                    std::thread::spawn(move || {
                        let _ = serve_token(conn, &issuer, &requests);
                    });
                }
            })
        };
        TokenServer { addr, issuer, requests, stop, thread: Some(thread) }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        wake(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `conn` (then closes it).
fn serve_token(mut conn: TcpStream, issuer: &TokenIssuer, requests: &AtomicUsize) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, _) = read_head(&mut conn)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = if method != "GET" || path != "/token" {
        (404, json!({ "error": format!("no {method} {path} here: GET /token") }))
    } else {
        match token_response(issuer, query, authorization.as_deref()) {
            Ok(body) => (200, body),
            Err((status, msg)) => (status, json!({ "error": msg })),
        }
    };
    let body = serde_json::to_vec(&body).unwrap();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        response += "WWW-Authenticate: Basic realm=\"rocker-test-token-server\"\r\n";
    }
    response += "\r\n";
    conn.write_all(response.as_bytes())?;
    conn.write_all(&body)?;
    conn.flush()
}

/// The token for a request's query string and Authorization header, or (status, error).
fn token_response(
    issuer: &TokenIssuer,
    query: &str,
    authorization: Option<&str>,
) -> Result<Value, (u16, String)> {
    let subject = match authorization {
        None => None,
        Some(auth) => {
            let basic = auth
                .strip_prefix("Basic ")
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or((401, "only HTTP Basic credentials are accepted".to_string()))?;
            match basic.split_once(':') {
                Some((u, p)) if u == issuer.user && p == issuer.password => Some(u.to_string()),
                _ => return Err((401, "wrong user name or password".to_string())),
            }
        }
    };
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str());
    if service != Some(TOKEN_SERVICE) {
        return Err((400, format!("service must be {TOKEN_SERVICE:?}, got {service:?}")));
    }
    let allowed: &[&str] = if subject.is_some() { &["pull", "push", "delete", "*"] } else { &["pull"] };
    let mut access = Vec::new();
    for scope in params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ')) {
        // type:name:actions; a name may hold ':' only in theory, so split at both ends.
        let (Some((kind, rest)), Some((_, actions))) = (scope.split_once(':'), scope.rsplit_once(':')) else {
            return Err((400, format!("malformed scope {scope:?}")));
        };
        let Some((name, _)) = rest.rsplit_once(':') else {
            return Err((400, format!("malformed scope {scope:?}")));
        };
        let granted: Vec<&str> = actions.split(',').filter(|a| allowed.contains(a)).collect();
        if kind == "repository" && !granted.is_empty() {
            access.push(json!({ "type": kind, "name": name, "actions": granted }));
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5c": [issuer.x5c] });
    let claims = json!({
        "iss": TOKEN_ISSUER,
        "sub": subject.unwrap_or_default(),
        "aud": TOKEN_SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": crate::unique("jti"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let signature = sign_rs256(&issuer.key, signing_input.as_bytes()).map_err(|e| (500, e))?;
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    Ok(json!({ "token": token, "access_token": token, "expires_in": 300 }))
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `data`, by `openssl dgst`.
fn sign_rs256(key: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running openssl: {e}"))?;
    child.stdin.take().unwrap().write_all(data).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("openssl dgst -sign failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out.stdout)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Slow proxy

/// A TCP proxy on 127.0.0.1 in front of a registry that can slow blob downloads and cut them
/// short: after `die_after_bytes` bytes of the body of any blob GET (`GET /v2/.../blobs/...`)
/// it closes the connection, so the client sees a truncated body. Other requests pass through
/// untouched. One request per connection: the proxy asks upstream for `Connection: close`.
pub struct SlowProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: String,
    /// Bytes of a blob body to pass before cutting; u64::MAX: never cut.
    die_after_bytes: AtomicU64,
    /// 0: as fast as possible.
    bytes_per_sec: AtomicU64,
    blob_gets: AtomicUsize,
    truncated: AtomicUsize,
    /// `Basic base64(user:password)` every request must carry, if set (a Basic-auth registry).
    basic: Mutex<Option<String>>,
    refused: AtomicUsize,
    /// The client connections in progress, by number, to cut them all on drop.
    conns: Mutex<HashMap<usize, TcpStream>>,
}

impl SlowProxy {
    /// A proxy to `upstream` (`host:port`) that cuts blob bodies after `die_after_bytes` bytes.
    pub fn start(upstream: &str, die_after_bytes: Option<u64>) -> SlowProxy {
        SlowProxy::launch(upstream, die_after_bytes, None)
    }

    /// Like [`start`](Self::start), and sends blob bodies at about `bytes_per_sec`, so a pull
    /// takes a while (to kill the registry or the client midway).
    pub fn start_throttled(upstream: &str, die_after_bytes: Option<u64>, bytes_per_sec: u64) -> SlowProxy {
        assert!(bytes_per_sec > 0, "a rate of 0 bytes per second never finishes");
        SlowProxy::launch(upstream, die_after_bytes, Some(bytes_per_sec))
    }

    fn launch(upstream: &str, die_after_bytes: Option<u64>, bytes_per_sec: Option<u64>) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            die_after_bytes: AtomicU64::new(die_after_bytes.unwrap_or(u64::MAX)),
            bytes_per_sec: AtomicU64::new(bytes_per_sec.unwrap_or(0)),
            blob_gets: AtomicUsize::new(0),
            truncated: AtomicUsize::new(0),
            basic: Mutex::new(None),
            refused: AtomicUsize::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for (n, conn) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if let Ok(c) = conn.try_clone() {
                        state.conns.lock().unwrap().insert(n, c);
                    }
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = proxy_one(conn, &state);
                        state.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&n);
                    });
                }
            })
        };
        SlowProxy { addr, stop, thread: Some(thread), state }
    }

    /// `127.0.0.1:PORT`: use it in image references instead of the registry's address.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The full image reference of `repo_and_tag` through the proxy.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// From now on, cut blob bodies after `die_after_bytes` bytes (None: pass them whole), e.g.
    /// to let a retried pull succeed after a cut one. Responses in progress keep their setting.
    pub fn set_die_after(&self, die_after_bytes: Option<u64>) {
        self.state.die_after_bytes.store(die_after_bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// From now on, send blob bodies at about `bytes_per_sec` (None: as fast as possible).
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        assert_ne!(bytes_per_sec, Some(0), "a rate of 0 bytes per second never finishes");
        self.state.bytes_per_sec.store(bytes_per_sec.unwrap_or(0), Ordering::SeqCst);
    }

    /// How many blob GETs went through the proxy.
    pub fn blob_gets(&self) -> usize {
        self.state.blob_gets.load(Ordering::SeqCst)
    }

    /// How many blob bodies the proxy cut short.
    pub fn truncated(&self) -> usize {
        self.state.truncated.load(Ordering::SeqCst)
    }

    /// From now on, answers every request without `Authorization: Basic base64(user:password)`
    /// with a 401 and a Basic challenge, as a registry behind Basic auth does.
    pub fn require_basic(&self, user: &str, password: &str) {
        let token = STANDARD.encode(format!("{user}:{password}"));
        *self.state.basic.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("Basic {token}"));
    }

    /// How many requests the Basic-auth gate refused.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        wake(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (_, c) in self.state.conns.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Proxies one request on `client` to upstream, and its response back.
fn proxy_one(mut client: TcpStream, state: &ProxyState) -> io::Result<()> {
    let (head, early_body) = read_head(&mut client)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let wanted = state.basic.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(wanted) = wanted {
        let given = head.split("\r\n").find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_string())
        });
        if given.as_deref() != Some(wanted.as_str()) {
            state.refused.fetch_add(1, Ordering::SeqCst);
            client.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"rocker-test\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
    }
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let blob_get = method == "GET"
        && path.starts_with("/v2/")
        && path.contains("/blobs/")
        && !path.contains("/blobs/uploads/");
    // One request per connection: whatever the client asked for, upstream closes after answering.
    let mut forward = format!("{request_line}\r\n");
    for l in lines {
        let name = l.split(':').next().unwrap_or_default().trim();
        if !["connection", "keep-alive", "proxy-connection"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            forward += l;
            forward += "\r\n";
        }
    }
    forward += "Connection: close\r\n\r\n";

    let mut upstream = TcpStream::connect(&state.upstream)?;
    upstream.write_all(forward.as_bytes())?;
    upstream.write_all(&early_body)?;
    // The rest of the request body (a push through the proxy), in its own thread.
    {
        let (mut from, mut to) = (client.try_clone()?, upstream.try_clone()?);
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    let result = if blob_get {
        state.blob_gets.fetch_add(1, Ordering::SeqCst);
        relay_blob(&mut upstream, &mut client, state)
    } else {
        io::copy(&mut upstream, &mut client).map(drop)
    };
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    result
}

/// Relays a blob response: the head as is, the body throttled and cut as configured.
fn relay_blob(upstream: &mut TcpStream, client: &mut TcpStream, state: &ProxyState) -> io::Result<()> {
    let (head, mut pending) = read_head(upstream)?;
    client.write_all(&head)?;
    let limit = state.die_after_bytes.load(Ordering::SeqCst);
    let rate = Some(state.bytes_per_sec.load(Ordering::SeqCst)).filter(|r| *r > 0);
    let chunk_size = match rate {
        Some(rate) => (rate / 20).clamp(1, 64 * 1024) as usize,
        None => 64 * 1024,
    };
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut buf = vec![0u8; chunk_size];
    loop {
        if pending.is_empty() {
            let n = upstream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        }
        let n = pending.len().min(chunk_size).min((limit - sent) as usize);
        if n == 0 {
            state.truncated.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64((sent + n as u64) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        client.write_all(&pending[..n])?;
        pending.drain(..n);
        sent += n as u64;
    }
}
