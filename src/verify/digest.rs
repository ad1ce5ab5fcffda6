//! Digests: SHA-256 (the type, streaming hashing, `.sha256` sidecars) and
//! SHA-512 (for the few upstreams that publish only that, such as Hex's
//! `installs/` CSV).
//!
//! A `.sha256` sidecar upstream is either a bare 64-hex digest or
//! `<hex>  <name>` (`<hex> *<name>` in binary mode). Both are accepted; we
//! always write `<hex>  <name>\n`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

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
    // One buffer per thread: zeroing 256 KiB for every small file (a
    // bundle of 200,000) cost more than hashing them.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 256 * 1024]);
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => hash_with(&mut reader, &mut buf),
        Err(_) => hash_with(&mut reader, &mut vec![0u8; 256 * 1024]),
    })
}

fn hash_with(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Hasher::new();
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
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

/// A SHA-512 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha512Digest(pub [u8; 64]);

impl Sha512Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha512::digest(data).into())
    }

    /// The lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha512Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha512Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha512Digest({})", self.to_hex())
    }
}

impl FromStr for Sha512Digest {
    type Err = ParseDigestError;

    /// 128 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 64];
        if s.len() != 128 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(ParseDigestError {
                found: s.chars().take(140).collect(),
            });
        }
        Ok(Self(out))
    }
}

/// An incremental SHA-512 hasher.
#[derive(Clone, Default)]
pub struct Hasher512(Sha512);

impl Hasher512 {
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Sha512Digest {
        Sha512Digest(self.0.finalize().into())
    }
}

/// The SHA-512 of a file.
pub fn hash_file_sha512(path: &Path) -> io::Result<Sha512Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher512::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A digest of either kind, as an expectation or a result (the larger one
/// boxed, so errors that carry two stay small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyDigest {
    /// SHA-256.
    Sha256(Sha256Digest),
    /// SHA-512.
    Sha512(Box<Sha512Digest>),
}

impl AnyDigest {
    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            AnyDigest::Sha256(_) => "sha256",
            AnyDigest::Sha512(_) => "sha512",
        }
    }

    /// The lower-case hex form.
    pub fn to_hex(&self) -> String {
        match self {
            AnyDigest::Sha256(d) => d.to_hex(),
            AnyDigest::Sha512(d) => d.to_hex(),
        }
    }
}

impl From<Sha256Digest> for AnyDigest {
    fn from(d: Sha256Digest) -> Self {
        AnyDigest::Sha256(d)
    }
}

impl From<Sha512Digest> for AnyDigest {
    fn from(d: Sha512Digest) -> Self {
        AnyDigest::Sha512(Box::new(d))
    }
}

impl PartialEq<Sha256Digest> for AnyDigest {
    fn eq(&self, other: &Sha256Digest) -> bool {
        *self == AnyDigest::Sha256(*other)
    }
}

/// Bytes that did not hash to what was expected.
#[derive(Debug, thiserror::Error)]
#[error(
    "checksum mismatch for {what}\n  expected {alg}: {}\n  actual {alg}:   {}",
    expected.to_hex(),
    actual.to_hex(),
    alg = expected.algorithm()
)]
pub struct DigestMismatch {
    /// The URL or path whose bytes were checked.
    pub what: String,
    /// The digest that was required.
    pub expected: AnyDigest,
    /// The digest of the bytes found (same algorithm).
    pub actual: AnyDigest,
}

impl DigestMismatch {
    /// A mismatch of two digests of one kind.
    pub fn new(
        what: impl Into<String>,
        expected: impl Into<AnyDigest>,
        actual: impl Into<AnyDigest>,
    ) -> Self {
        DigestMismatch {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }
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
    fn sha512_parses_hashes_and_names_itself_in_mismatches() {
        let empty = Sha512Digest::of(b"");
        assert!(empty.to_hex().starts_with("cf83e1357eefb8bd"));
        assert_eq!(empty.to_hex().parse::<Sha512Digest>().unwrap(), empty);
        assert_eq!(
            empty
                .to_hex()
                .to_uppercase()
                .parse::<Sha512Digest>()
                .unwrap(),
            empty
        );
        assert!(
            EMPTY.parse::<Sha512Digest>().is_err(),
            "a SHA-256 is not a SHA-512"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"").unwrap();
        assert_eq!(hash_file_sha512(&f).unwrap(), empty);
        let m = DigestMismatch::new("u", empty, Sha512Digest::of(b"x")).to_string();
        assert!(
            m.contains("expected sha512: cf83") && m.contains("actual sha512:"),
            "{m}"
        );
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
