//! sha256 digests of what streams through: blobs are checked as they arrive, never re-read.

use std::io::{self, Read, Write};
use std::str::FromStr;

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

/// The `sha256:hex` digest of some bytes.
pub fn of(bytes: &[u8]) -> Digest {
    from_hasher(Sha256::new_with_prefix(bytes))
}

fn from_hasher(hasher: Sha256) -> Digest {
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Digest::from_str(&format!("sha256:{hex}")).expect("a sha256 hex digest is a valid digest")
}

/// A reader that hashes and counts everything read through it, and copies it to `tee` if set.
pub struct Hashing<R, W = io::Sink> {
    inner: R,
    tee: W,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing::with_tee(inner, io::sink())
    }
}

impl<R: Read, W: Write> Hashing<R, W> {
    pub fn with_tee(inner: R, tee: W) -> Self {
        Hashing { inner, tee, hasher: Sha256::new(), size: 0 }
    }

    /// Reads what is left (a tar's trailing padding, say) so the digest covers everything.
    pub fn finish(mut self) -> io::Result<(Digest, u64, W)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((from_hasher(self.hasher), self.size, self.tee))
    }
}

impl<R: Read, W: Write> Read for Hashing<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.tee.write_all(&buf[..n])?;
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_reader_matches_the_one_shot_digest_and_tees() {
        let data = b"hello layer".repeat(1000);
        let mut r = Hashing::with_tee(&data[..], Vec::new());
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let (digest, size, copy) = r.finish().unwrap();
        assert_eq!(digest, of(&data));
        assert_eq!(size, data.len() as u64);
        assert_eq!(copy, data);
        assert_eq!(
            of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
