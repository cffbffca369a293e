//! A client of the OCI distribution API: manifests and blobs, with the Bearer-token challenge
//! flow (Docker Hub, GHCR, Quay, distribution's token auth) and Basic auth.
//!
//! ureq is synchronous: no async runtime whose threads would have to be shut down before
//! `rocker run` clones its container (the clone must happen single-threaded). Only the
//! connect and per-read timeouts are set, because a resolve timeout makes ureq resolve on a
//! thread of its own.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use oci_spec::image::Digest;
use ureq::http::{Response, StatusCode};
use ureq::{Body, ResponseExt};

use crate::digest;
use crate::reference::Reference;

/// Every manifest type rocker understands, for the `Accept` header.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests, configs and token answers are small; refuse anything that is not (a registry
/// or an archive cannot make rocker eat memory).
pub const JSON_LIMIT: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url}: the registry answered {status}{detail}")]
    Status { url: String, status: u16, detail: String },
    #[error("{registry}: authentication required{hint}")]
    Unauthorized { registry: String, hint: &'static str },
    #[error("{reference}: not found in the registry (check the name and tag)")]
    NotFound { reference: String },
    #[error("{url}: {what}")]
    Protocol { url: String, what: String },
    #[error(
        "{what}: the registry sent content with digest {actual}, expected {expected}; nothing was stored"
    )]
    DigestMismatch { what: String, expected: String, actual: String },
}

/// Where a client may connect, and as whom.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Registries (host or host:port) reached over plain HTTP, beyond localhost.
    pub insecure_registries: Vec<String>,
    /// user, password for Basic auth or to obtain a token.
    pub credentials: Option<(String, String)>,
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    registry: String,
    /// `host[:port]` requests go to: the only origin whose challenges are answered.
    endpoint: String,
    repository: String,
    credentials: Option<(String, String)>,
    insecure: Vec<String>,
    /// The `Authorization` header value once a challenge has been answered; shared by the
    /// threads that fetch layers.
    authorization: Mutex<Option<String>>,
}

/// A manifest as served: bytes (whose digest is checked), media type and digest.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

pub fn uses_plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            registry
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") || insecure.iter().any(|i| i == registry || i == host)
}

/// A token realm may be another host (Docker Hub's auth.docker.io), and it gets the
/// credentials: so only over HTTPS, or plain HTTP to a host the registry rules allow it for.
fn realm_allowed(realm: &str, insecure: &[String]) -> bool {
    match realm.strip_prefix("http://") {
        Some(rest) => uses_plain_http(rest.split(['/', '?']).next().unwrap_or_default(), insecure),
        None => realm.starts_with("https://"),
    }
}

impl Client {
    pub fn new(reference: &Reference, options: &Options) -> Client {
        Client::connect(&reference.registry, reference.endpoint(), &reference.repository, options)
    }

    /// A client of the registry as a whole (`rocker login`), not of one repository.
    pub fn for_registry(registry: &str, options: &Options) -> Client {
        Client::connect(registry, crate::reference::endpoint_of(registry), "", options)
    }

    fn connect(registry: &str, endpoint: &str, repository: &str, options: &Options) -> Client {
        let scheme = if uses_plain_http(registry, &options.insecure_registries) { "http" } else { "https" };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("rocker/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            base: format!("{scheme}://{endpoint}/v2/{repository}"),
            registry: registry.to_string(),
            endpoint: endpoint.to_string(),
            repository: repository.to_string(),
            credentials: options.credentials.clone(),
            insecure: options.insecure_registries.clone(),
            authorization: Mutex::new(None),
        }
    }

    /// GETs `url`, answering one authentication challenge if the registry asks.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<Response<Body>, RegistryError> {
        let send = |auth: Option<&str>| {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(|e| RegistryError::Http { url: url.to_string(), source: Box::new(e) })
        };
        let current = self.authorization.lock().expect("no thread panics holding it").clone();
        let resp = send(current.as_deref())?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        // Only the registry itself may ask for credentials, not a host it redirected to.
        if resp.get_uri().authority().map(|a| a.as_str()) != Some(self.endpoint.as_str()) {
            return Err(RegistryError::Protocol {
                url: resp.get_uri().to_string(),
                what: "a host the registry redirected to asks for authentication; not answered".into(),
            });
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Protocol {
                url: url.into(),
                what: "401 without a WWW-Authenticate challenge".into(),
            })?;
        let auth = self.answer(&challenge)?;
        *self.authorization.lock().expect("no thread panics holding it") = Some(auth.clone());
        let resp = send(Some(&auth))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized());
        }
        Ok(resp)
    }

    fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            hint: if self.credentials.is_some() {
                ": the stored credentials were refused (rocker login again)"
            } else {
                ": log in first with `rocker login`"
            },
        }
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        })
    }

    /// The `Authorization` value for a challenge: Basic from the stored credentials, or a
    /// Bearer token from the realm the challenge names.
    fn answer(&self, challenge: &str) -> Result<String, RegistryError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let params = parse_challenge(params);
        let param =
            |k: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic().ok_or_else(|| self.unauthorized());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(RegistryError::Protocol {
                url: self.base.clone(),
                what: format!("unknown authentication scheme {scheme:?}"),
            });
        }
        let realm = param("realm").ok_or_else(|| RegistryError::Protocol {
            url: self.base.clone(),
            what: "a Bearer challenge without a realm".into(),
        })?;
        if !realm_allowed(realm, &self.insecure) {
            return Err(RegistryError::Protocol {
                url: self.base.clone(),
                what: format!("the token realm {realm:?} is not HTTPS; not sending it anything (--insecure-registry names hosts that may use HTTP)"),
            });
        }
        let default_scope = format!("repository:{}:pull", self.repository);
        let scope = param("scope").or((!self.repository.is_empty()).then_some(default_scope.as_str()));
        let mut req = self.agent.get(realm);
        if let Some(scope) = scope {
            req = req.query("scope", scope);
        }
        if let Some(service) = param("service") {
            req = req.query("service", service);
        }
        if let Some(basic) = self.basic() {
            req = req.header("Authorization", &basic);
        }
        let mut resp =
            req.call().map_err(|e| RegistryError::Http { url: realm.into(), source: Box::new(e) })?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.unauthorized());
        }
        check_status(realm, &mut resp)?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(JSON_LIMIT)
            .read_to_vec()
            .map_err(|e| RegistryError::Http { url: realm.into(), source: Box::new(e) })?;
        let token: Token = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: realm.into(),
            what: format!("the token server's answer: {e}"),
        })?;
        let token = token.token.or(token.access_token).ok_or_else(|| RegistryError::Protocol {
            url: realm.into(),
            what: "the token server's answer holds no token".into(),
        })?;
        Ok(format!("Bearer {token}"))
    }

    /// Checks that the registry is reachable and accepts the credentials (`rocker login`):
    /// the API's base answers 200 once the challenge is met.
    pub fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/", self.base.trim_end_matches('/'));
        let mut resp = self.get(&url, None)?;
        check_status(&url, &mut resp)
    }

    /// Fetches a manifest by tag or digest and checks its digest.
    pub fn manifest(&self, reference: &str, expected: Option<&Digest>) -> Result<Manifest, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let mut resp = self.get(&url, Some(MANIFEST_TYPES))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                reference: format!("{}/{}:{reference}", self.registry, self.repository),
            });
        }
        check_status(&url, &mut resp)?;
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let media_type = header("content-type").unwrap_or_default();
        let served_digest = header("docker-content-digest");
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(JSON_LIMIT)
            .read_to_vec()
            .map_err(|e| RegistryError::Http { url: url.clone(), source: Box::new(e) })?;
        let digest = digest::of(&bytes);
        for wanted in expected.map(|d| d.to_string()).into_iter().chain(served_digest) {
            if wanted != digest.as_ref() {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {reference}"),
                    expected: wanted,
                    actual: digest.to_string(),
                });
            }
        }
        // Some registries serve a generic type; the manifest's own mediaType then decides.
        let media_type = match media_type.split(';').next().unwrap_or_default().trim() {
            "" | "application/json" | "text/plain" => embedded_media_type(&bytes).unwrap_or_default(),
            m => m.to_string(),
        };
        Ok(Manifest { bytes, media_type, digest })
    }

    /// Starts reading a blob; the caller checks digest and size as it streams.
    pub fn blob(&self, digest: &Digest) -> Result<impl Read + use<>, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let mut resp = self.get(&url, None)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                reference: format!("{}/{}@{digest}", self.registry, self.repository),
            });
        }
        check_status(&url, &mut resp)?;
        Ok(resp.into_body().into_reader())
    }
}

fn embedded_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

fn check_status(url: &str, resp: &mut Response<Body>) -> Result<(), RegistryError> {
    if resp.status().is_success() {
        return Ok(());
    }
    // The distribution API puts its reason in a small JSON body; show it, briefly.
    let body = resp.body_mut().with_config().limit(4096).read_to_string().unwrap_or_default();
    let detail = if body.trim().is_empty() { String::new() } else { format!(": {}", body.trim()) };
    Err(RegistryError::Status { url: url.into(), status: resp.status().as_u16(), detail })
}

/// `realm="https://auth.example/token",service="registry",scope="repository:a:pull,push"`:
/// key=value pairs, values quoted or not, commas inside quotes kept.
fn parse_challenge(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.push((key, value.to_string()));
        rest = remaining.trim_start_matches([',', ' ']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_with_quoted_commas() {
        let p = parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:a/b:pull,push".into())
            ]
        );
        assert_eq!(
            parse_challenge("realm=x, service=y"),
            vec![("realm".into(), "x".into()), ("service".into(), "y".into())]
        );
    }

    #[test]
    fn credentials_go_to_https_realms_or_allowed_plain_ones_only() {
        assert!(realm_allowed("https://auth.docker.io/token", &[]));
        assert!(realm_allowed("http://127.0.0.1:5001/token?x=1", &[]));
        assert!(!realm_allowed("http://127.0.0.2:5001/token", &[]));
        assert!(!realm_allowed("http://auth.example/token", &[]));
        assert!(realm_allowed("http://auth.example/token", &["auth.example".into()]));
        assert!(!realm_allowed("ftp://auth.example/token", &[]));
    }

    #[test]
    fn plain_http_only_for_loopback_and_named_registries() {
        assert!(uses_plain_http("127.0.0.1:5000", &[]));
        assert!(uses_plain_http("localhost", &[]));
        assert!(!uses_plain_http("docker.io", &[]));
        assert!(!uses_plain_http("10.0.0.1:5000", &[]));
        assert!(uses_plain_http("10.0.0.1:5000", &["10.0.0.1:5000".into()]));
    }
}
