//! SHA-256 digests: the type, streaming hashing, and `.sha256` sidecars.
//!
//! A `.sha256` sidecar upstream is either a bare 64-hex digest or
//! `<hex>  <name>` (`<hex> *<name>` in binary mode). Both are accepted; we
//! always write `<hex>  <name>\n`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

/// Text that is not a SHA-256 digest.
#[derive(Debug, thiserror::Error)]
#[error("expected a SHA-256 digest (64 hex digits), found {found:?}")]
pub struct ParseDigestError {
    /// What was found (truncated).
    pub found: String,
}

impl FromStr for Sha256Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDigestError {
            found: s.chars().take(80).collect(),
        };
        if s.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Self(out))
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental SHA-256 hasher.
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(self.0.finalize().into())
    }
}

/// Hash everything `reader` yields; returns the digest and the byte count.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finish(), total))
}

/// Hash a file; returns the digest and its size.
pub fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    hash_reader(File::open(path)?)
}

/// A `.sha256` sidecar that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: expected `<sha256 hex>` or `<sha256 hex>  <name>`, found {found:?}")]
pub struct SidecarError {
    /// The file or URL the text came from.
    pub origin: String,
    /// The first line found (truncated).
    pub found: String,
}

/// Parse the text of a `.sha256` sidecar: a bare digest, or `<hex>  <name>`
/// or `<hex> *<name>`. `origin` names the file or URL for the error.
pub fn parse_sidecar(text: &[u8], origin: &str) -> Result<Sha256Digest, SidecarError> {
    let text = String::from_utf8_lossy(text);
    let first = text.lines().next().unwrap_or("").trim();
    let hex = first.split_whitespace().next().unwrap_or("");
    hex.to_ascii_lowercase().parse().map_err(|_| SidecarError {
        origin: origin.to_string(),
        found: first.chars().take(100).collect(),
    })
}

/// The text we write for a sidecar: `<hex>  <name>\n`.
pub fn format_sidecar(digest: &Sha256Digest, name: &str) -> String {
    format!("{}  {}\n", digest.to_hex(), name)
}

/// Bytes that did not hash to what was expected.
#[derive(Debug, thiserror::Error)]
#[error("checksum mismatch for {what}\n  expected sha256: {expected}\n  actual sha256:   {actual}")]
pub struct DigestMismatch {
    /// The URL or path whose bytes were checked.
    pub what: String,
    /// The digest that was required.
    pub expected: Sha256Digest,
    /// The digest of the bytes found.
    pub actual: Sha256Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(Sha256Digest::of(b"").to_hex(), EMPTY);
        assert_eq!(hash_reader(&b""[..]).unwrap().0.to_hex(), EMPTY);
    }

    #[test]
    fn sidecar_forms_are_accepted() {
        let d: Sha256Digest = EMPTY.parse().unwrap();
        for text in [
            format!("{EMPTY}\n"),
            EMPTY.to_string(),
            format!("{EMPTY}  rustup-init\n"),
            format!("{EMPTY} *rustup-init\n"),
            EMPTY.to_uppercase(),
        ] {
            assert_eq!(parse_sidecar(text.as_bytes(), "x").unwrap(), d, "{text:?}");
        }
        assert_eq!(
            format_sidecar(&d, "a.tar.xz"),
            format!("{EMPTY}  a.tar.xz\n")
        );
    }

    #[test]
    fn bad_sidecar_names_origin_and_text() {
        let e = parse_sidecar(b"<html>nope</html>", "http://h/x.sha256").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("http://h/x.sha256") && msg.contains("<html>"),
            "{msg}"
        );
    }
}
