//! Registry credentials in Docker's `config.json` format (`{"auths": {"host": {"auth":
//! base64("user:password")}}}`), so a file written by `docker login` works and the other way
//! round. Other keys in the file (credHelpers, proxies, ...) are kept as they are.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a Docker config file: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// The file: `REGISTRY_AUTH_FILE` (Podman's), `$DOCKER_CONFIG/config.json`, then
/// `~/.docker/config.json`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return p.into();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Path::new(&d).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker/config.json")
}

pub struct Credentials {
    path: PathBuf,
}

/// Docker Hub's credentials are stored under its historical key.
fn key(registry: &str) -> &str {
    if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

impl Credentials {
    pub fn new(path: PathBuf) -> Credentials {
        Credentials { path }
    }

    fn read(&self) -> Result<Map<String, Value>, CredentialsError> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => {
                return Err(CredentialsError::Io { what: "reading", path: self.path.clone(), source })
            }
        };
        match serde_json::from_slice(&text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(self.format("not a JSON object")),
            Err(e) => Err(self.format(&e.to_string())),
        }
    }

    fn format(&self, reason: &str) -> CredentialsError {
        CredentialsError::Format { path: self.path.clone(), reason: reason.into() }
    }

    /// The stored user and password for `registry`, if any.
    pub fn get(&self, registry: &str) -> Result<Option<(String, String)>, CredentialsError> {
        let config = self.read()?;
        let Some(auth) = config
            .get("auths")
            .and_then(|a| a.get(key(registry)))
            .and_then(|e| e.get("auth"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| self.format(&format!("the auth of {registry} is not base64 of user:password")))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| self.format(&format!("the auth of {registry} is not user:password")))?;
        Ok(Some((user.into(), password.into())))
    }

    pub fn store(&self, registry: &str, user: &str, password: &str) -> Result<(), CredentialsError> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.change(|config| {
            let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(auths) = auths {
                auths.insert(key(registry).into(), serde_json::json!({ "auth": auth }));
            }
            true
        })
    }

    /// Removes `registry`'s entry; false when there was none.
    pub fn remove(&self, registry: &str) -> Result<bool, CredentialsError> {
        let mut removed = false;
        self.change(|config| {
            removed = config
                .get_mut("auths")
                .and_then(Value::as_object_mut)
                .and_then(|a| a.remove(key(registry)))
                .is_some();
            removed
        })?;
        Ok(removed)
    }

    /// Rewrites the file through a 0600 temp file and a rename: never half-written, never
    /// readable by others.
    fn change(&self, edit: impl FnOnce(&mut Map<String, Value>) -> bool) -> Result<(), CredentialsError> {
        let mut config = self.read()?;
        if !edit(&mut config) {
            return Ok(());
        }
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialsError::Io { what, path, source }
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        let bytes = serde_json::to_vec_pretty(&Value::Object(config)).expect("JSON values serialize");
        let written =
            file.write_all(&bytes).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(io("writing", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_get_remove_keeps_other_keys_and_mode_0600() {
        let dir = std::env::temp_dir().join(format!("rocker-cred-test-{}", std::process::id()));
        let path = dir.join("config.json");
        fs::create_dir_all(&dir).unwrap();
        fs::write(&path, r#"{"credHelpers": {"x.io": "pass"}}"#).unwrap();
        let c = Credentials::new(path.clone());
        c.store("127.0.0.1:5000", "alice", "s:cret").unwrap();
        c.store("docker.io", "bob", "pw").unwrap();
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), Some(("alice".into(), "s:cret".into())));
        assert_eq!(c.get("docker.io").unwrap(), Some(("bob".into(), "pw".into())));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("credHelpers") && text.contains("https://index.docker.io/v1/"), "{text}");
        assert!(c.remove("127.0.0.1:5000").unwrap());
        assert!(!c.remove("127.0.0.1:5000").unwrap());
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
