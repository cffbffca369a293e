//! Container ids: 64 random hex digits, shown as the first 12 (as Docker does).

use crate::error::EngineError;

pub fn new_id() -> Result<String, EngineError> {
    let mut bytes = [0u8; 32];
    // SAFETY: getrandom writes at most bytes.len() bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(EngineError::Sys { what: "getrandom for a container id", source: nix::Error::last() });
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}
