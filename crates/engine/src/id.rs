//! Container ids: 64 random hex digits, shown as the first 12 (as Docker does).

use std::io::Read;

use crate::error::EngineError;

pub fn new_id() -> Result<String, EngineError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| EngineError::Io { what: "read", path: "/dev/urandom".into(), source })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}
