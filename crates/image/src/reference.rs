//! Image references as Docker reads them: `busybox` is `docker.io/library/busybox:latest`,
//! `localhost:5000/app@sha256:...` names a registry with a port and a digest.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;

const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    reference: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `ghcr.io`.
    pub registry: String,
    /// `library/busybox`, `org/app`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// The host to connect to for `registry`: Docker Hub's API lives on another name than its
/// images.
pub fn endpoint_of(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

impl Reference {
    /// The host to connect to: Docker Hub's API lives on another name than its images.
    pub fn endpoint(&self) -> &str {
        endpoint_of(&self.registry)
    }

    /// What to ask the registry's manifest endpoint for: the digest wins over the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.into()), digest: None, ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason| ReferenceError { reference: s.to_string(), reason };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                (rest, Some(Digest::from_str(d).map_err(|_| fail("the digest is not algorithm:hex"))?))
            }
            None => (s, None),
        };
        // A tag is a ':' after the last '/', so that a registry's port is not taken for one.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(fail(
                    "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (if first == "index.docker.io" { DOCKER_HUB } else { first }, rest.to_string())
            }
            Some(_) => (DOCKER_HUB, name.to_string()),
            None => (DOCKER_HUB, format!("library/{name}")),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(fail("the registry name is empty or malformed"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(fail(
                "a repository name is lowercase letters and digits, separated by '/', '.', '_', '__' or '-'",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry: registry.to_string(), repository, tag, digest })
    }
}

fn valid_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Docker's path component: `[a-z0-9]+` runs joined by one '.', one or two '_', or '-'s.
fn valid_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    if !c.starts_with(alnum) || !c.ends_with(alnum) {
        return false;
    }
    let mut sep = String::new();
    for ch in c.chars() {
        if alnum(ch) {
            if !(sep.is_empty() || sep == "." || sep == "_" || sep == "__" || sep.chars().all(|s| s == '-')) {
                return false;
            }
            sep.clear();
        } else if matches!(ch, '.' | '_' | '-') {
            sep.push(ch);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(parse("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(parse("org/app:1.0").to_string(), "docker.io/org/app:1.0");
        assert_eq!(parse("index.docker.io/library/busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(parse("busybox").endpoint(), "registry-1.docker.io");
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = parse("127.0.0.1:5000/a/b:v1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("v1"))
        );
        let r = parse("localhost:5000/app");
        assert_eq!(r.to_string(), "localhost:5000/app:latest");
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = parse(&format!("localhost/app@{d}"));
        assert_eq!((r.tag.clone(), r.manifest_ref()), (None, d.clone()));
        let r = parse(&format!("ghcr.io/o/app:v2@{d}"));
        assert_eq!((r.tag.as_deref(), r.manifest_ref()), (Some("v2"), d));
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["", "Busybox", "a//b", "app:", "app:-x", "app@sha256:zz", "-app", "a b", "app:v:1"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} was accepted");
        }
    }
}
