//! Bounded reading of untrusted bytes: the one place that decides how much
//! of a body, a file, a git blob or an inflated stream `mirror` takes in.
//!
//! Everything read from an upstream, a bundle or a client is read through
//! a [`Limit`] (bytes) — and, when it is compressed, an [`Inflation`]
//! (a ratio to the compressed size, within a floor and a ceiling) — so a
//! body that never ends, a `Content-Length` of a terabyte or a gzip bomb
//! is refused with [`TooLarge`] (what, the limit, what was found) after at
//! most `limit + 1` bytes, before anything is published.
//!
//! Buffers are allocated from a declared size only up to the limit, and
//! grow by doubling only below it: reading a body of `n` bytes costs about
//! `n` bytes, never `2n` plus the Vec's slack (see [`Collector`]).
//!
//! The ceilings below are fitted to the largest real instance of each kind
//! of file, with room to grow; each says why. Files streamed to disk whose
//! size the plan does not know (crates, Hex tarballs, toolchain files) can
//! be raised with `--max-file-size`; metadata read into memory cannot,
//! since it is what keeps one hostile input from taking a process past a
//! few hundred MiB.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// How much of one kind of input is accepted, and its name in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the input is ("crate index file", "Arch database" …).
    pub what: &'static str,
    /// The most bytes accepted.
    pub bytes: u64,
}

impl Limit {
    /// A limit of `bytes` for `what`.
    pub const fn new(what: &'static str, bytes: u64) -> Limit {
        Limit { what, bytes }
    }

    /// The same kind of input with another ceiling (a user's
    /// `--max-file-size`).
    pub const fn at(self, bytes: u64) -> Limit {
        Limit {
            what: self.what,
            bytes,
        }
    }

    /// `found` bytes are more than this limit allows.
    pub fn exceeded(&self, found: Found) -> TooLarge {
        TooLarge {
            what: self.what,
            limit: self.bytes,
            found,
        }
    }

    /// Refuse a declared size (a `Content-Length`, a file's length, a git
    /// object's header) above the limit, before reading anything.
    pub fn check(&self, size: u64) -> Result<(), TooLarge> {
        if size > self.bytes {
            Err(self.exceeded(Found::Exactly(size)))
        } else {
            Ok(())
        }
    }
}

/// How far compressed input may inflate: `ratio` times its compressed
/// size, never below `floor` (tiny inputs compress badly) nor above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflation {
    /// What the inflated data is.
    pub what: &'static str,
    /// Inflated bytes per compressed byte.
    pub ratio: u64,
    /// Always allowed, whatever the ratio.
    pub floor: u64,
    /// Never allowed beyond.
    pub max: u64,
}

impl Inflation {
    /// The limit for the inflated form of `compressed` bytes.
    pub fn limit(&self, compressed: u64) -> Limit {
        let bytes = compressed
            .saturating_mul(self.ratio)
            .clamp(self.floor, self.max);
        Limit::new(self.what, bytes)
    }
}

/// How much was found when a limit was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A declared size, or a whole input that was measured.
    Exactly(u64),
    /// Reading stopped once the limit was passed.
    MoreThan(u64),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Exactly(n) => write!(f, "{} bytes", n),
            Found::MoreThan(n) => write!(f, "more than {} bytes", n),
        }
    }
}

/// An input larger than its [`Limit`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} too large\n  limit: {limit} bytes\n  found: {found}")]
pub struct TooLarge {
    /// What the input was.
    pub what: &'static str,
    /// The limit.
    pub limit: u64,
    /// What was found.
    pub found: Found,
}

impl From<TooLarge> for io::Error {
    fn from(e: TooLarge) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The [`TooLarge`] inside an I/O error, if that is what it is.
pub fn too_large(err: &io::Error) -> Option<&TooLarge> {
    err.get_ref().and_then(|e| e.downcast_ref::<TooLarge>())
}

/// Collects a body in memory up to a limit: the buffer is sized from the
/// declared length (never beyond the limit), so a body of `n` bytes costs
/// `n` bytes, not the doubling of a growing Vec.
#[derive(Debug)]
pub struct Collector {
    limit: Limit,
    buf: Vec<u8>,
}

impl Collector {
    /// A collector for at most `limit` bytes; `declared` is the size the
    /// sender announced, if any (refused at once when above the limit).
    pub fn new(limit: Limit, declared: Option<u64>) -> Result<Collector, TooLarge> {
        if let Some(n) = declared {
            limit.check(n)?;
        }
        // An announced size is a hint, not a promise: a small first
        // allocation when none is given.
        let first = declared.unwrap_or(64 * KIB).min(limit.bytes);
        Ok(Collector {
            limit,
            buf: Vec::with_capacity(usize::try_from(first).unwrap_or(0)),
        })
    }

    /// Add `bytes`; an error once the total passes the limit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), TooLarge> {
        let total = self.buf.len() as u64 + bytes.len() as u64;
        if total > self.limit.bytes {
            return Err(self.limit.exceeded(Found::MoreThan(self.limit.bytes)));
        }
        if self.buf.capacity() - self.buf.len() < bytes.len() {
            // Grow by doubling, but never past the limit.
            let want = (self.buf.capacity() as u64 * 2)
                .max(total)
                .min(self.limit.bytes);
            self.buf
                .reserve_exact(usize::try_from(want).unwrap_or(usize::MAX) - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The bytes collected.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Read `reader` to its end into memory, refusing more than `limit`
/// bytes (reading at most `limit + 1`); `declared` as in
/// [`Collector::new`]. A [`TooLarge`] comes back inside the I/O error
/// (see [`too_large`]).
pub fn read_to_vec(reader: impl Read, limit: Limit, declared: Option<u64>) -> io::Result<Vec<u8>> {
    let mut out = Collector::new(limit, declared)?;
    let mut reader = reader;
    let mut chunk = vec![0u8; 64 * KIB as usize];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out.finish()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.push(&chunk[..n])?;
    }
}

/// Read a local file that came from elsewhere (a bundle, an upstream),
/// refusing one larger than `limit` before reading it.
pub fn read_file(path: &Path, limit: Limit) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    read_to_vec(file, limit, Some(len))
}

/// A reader that fails with [`TooLarge`] once more than its limit has
/// passed through it: wraps a decoder, so inflation stops at the limit
/// whatever reads from it (a tar parser, a protobuf decoder).
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    limit: Limit,
    read: u64,
}

impl<R: Read> Capped<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, limit: Limit) -> Capped<R> {
        Capped {
            inner,
            limit,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.read
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for at most one byte past the limit: enough to know it was
        // passed, without inflating further.
        let room = (self.limit.bytes + 1).saturating_sub(self.read);
        if room == 0 {
            return Err(self
                .limit
                .exceeded(Found::MoreThan(self.limit.bytes))
                .into());
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.limit.bytes {
            return Err(self
                .limit
                .exceeded(Found::MoreThan(self.limit.bytes))
                .into());
        }
        Ok(n)
    }
}

/// A size as typed: bytes, or a number with `K`, `M`, `G` or `T`
/// (binary: `16M` is 16 MiB; an `iB` or `B` after the letter is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: expected a size such as 512M or 2G")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 512M or 2G"))?;
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?}: expected a size between 1 byte and 16 EiB"))
}

// The ceilings. Each is fitted to the largest real file of its kind, with
// room to grow; the reasons are in the doc of each.

/// A crate archive. crates.io refuses uploads above 10 MiB unless a crate
/// was granted more; a few were. 128 MiB leaves room for those, and stops
/// an endless body after 128 MiB of disk per job. `--max-file-size`
/// raises it.
pub const CRATE_FILE: Limit = Limit::new("crate archive", 128 * MIB);

/// One file of the crates index (sparse, or a blob of the git index): the
/// largest on crates.io (crates with thousands of versions) are a few MiB.
pub const CRATE_INDEX_FILE: Limit = Limit::new("crate index file", 16 * MIB);

/// A Hex package tarball: Hex's own clients (hex_core's default
/// `tarball_max_size`) refuse tarballs above 16 MiB. `--max-file-size`
/// raises it.
pub const HEX_TARBALL: Limit = Limit::new("Hex package tarball", 16 * MIB);

/// A Hex registry resource as sent (`names`, `versions`,
/// `packages/<name>`: gzip-compressed, signed protobuf). hex.pm's
/// `versions`, the largest, is about 1 MiB compressed.
pub const HEX_RESOURCE: Limit = Limit::new("Hex registry resource", 16 * MIB);

/// One package's registry resource (`packages/<name>`): tens of KiB for
/// a package with a thousand releases.
pub const HEX_PACKAGE: Limit = Limit::new("Hex package resource", MIB);

/// All package resources one run holds until it publishes them: hex.pm's
/// whole repository is about 40 MiB of them.
pub const HEX_PACKAGES: Limit = Limit::new("Hex package resources in all", 128 * MIB);

/// A Hex registry resource once inflated: protobuf compresses 3–5 times;
/// `versions` inflates to about 5 MiB. Decoding costs a few times the
/// inflated size, so the ceiling stays well below the memory cap.
pub const HEX_RESOURCE_INFLATED: Inflation = Inflation {
    what: "Hex registry resource (inflated)",
    ratio: 20,
    floor: 16 * MIB,
    max: 32 * MIB,
};

/// A pacman package database as sent (`<repo>.db`): `extra`'s, the
/// largest of Arch Linux, is about 10 MiB.
pub const ARCH_DB: Limit = Limit::new("Arch database", 64 * MIB);

/// A pacman file-list database as sent (`<repo>.files`): pacman itself
/// refuses a database above 128 MiB (raised from 25 MiB in 2020, for
/// these); `extra`'s is about 60 MiB.
pub const ARCH_FILES: Limit = Limit::new("Arch file-list database", 128 * MIB);

/// A pacman database once inflated. Database tars compress 5–10 times
/// (file lists the most); it is read as a stream, `files` lists skipped,
/// so the bound is on work, not memory.
pub const ARCH_DB_INFLATED: Inflation = Inflation {
    what: "Arch database (inflated)",
    ratio: 32,
    floor: 16 * MIB,
    max: 2 * GIB,
};

/// The `desc`/`depends` text a database's entries hold in all: `extra`'s
/// is about 20 MiB for 14,000 packages.
pub const ARCH_DB_DESCS: Limit = Limit::new("Arch database entries", 64 * MIB);

/// A Rust channel manifest (`channel-rust-*.toml`): nightly's is about
/// 1 MiB. TOML parsing costs several times the text, so 8 MiB.
pub const CHANNEL_MANIFEST: Limit = Limit::new("channel manifest", 8 * MIB);

/// rustup's `release-stable.toml` (under 100 bytes) and other small text
/// files of a few lines.
pub const SMALL_TEXT: Limit = Limit::new("small metadata file", MIB);

/// A detached signature (`.asc`, `.sig`) or checksum file (`.sha256`): a
/// few hundred bytes; 64 KiB allows a signature by many keys.
pub const COMPANION: Limit = Limit::new("signature or checksum file", 64 * KIB);

/// A `rustup-init` binary (held in memory by the server's cache while it
/// is checked): about 20 MiB for the largest targets.
pub const RUSTUP_INIT: Limit = Limit::new("rustup-init binary", 64 * MIB);

/// A file of a toolchain or rustup release whose size the manifest does
/// not give: the largest (rustc-dev, rust-docs) are a few hundred MiB.
/// `--max-file-size` raises it.
pub const TOOLCHAIN_FILE: Limit = Limit::new("toolchain file", 2 * GIB);

/// Any other download whose size the plan does not know.
pub const DOWNLOAD: Limit = Limit::new("download", 2 * GIB);

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Limit = Limit::new("test input", 10);

    #[test]
    fn reads_up_to_the_limit_and_refuses_past_it() {
        assert_eq!(
            read_to_vec(&b"0123456789"[..], TEN, None).unwrap().len(),
            10
        );
        let err = read_to_vec(&b"0123456789a"[..], TEN, None).unwrap_err();
        let e = too_large(&err).expect("a TooLarge");
        assert_eq!(e.found, Found::MoreThan(10));
        assert_eq!(
            e.to_string(),
            "test input too large\n  limit: 10 bytes\n  found: more than 10 bytes"
        );
    }

    #[test]
    fn a_declared_size_above_the_limit_is_refused_before_reading() {
        let err = read_to_vec(io::repeat(0), TEN, Some(11)).unwrap_err();
        assert_eq!(too_large(&err).unwrap().found, Found::Exactly(11));
        // An endless reader stops at the limit.
        let err = read_to_vec(io::repeat(0), TEN, None).unwrap_err();
        assert_eq!(too_large(&err).unwrap().found, Found::MoreThan(10));
    }

    #[test]
    fn the_buffer_never_grows_past_the_limit() {
        let limit = Limit::new("x", 100_000);
        let mut c = Collector::new(limit, Some(10)).unwrap();
        for _ in 0..10 {
            c.push(&[1u8; 9_000]).unwrap();
        }
        c.push(&[1u8; 10_000]).unwrap();
        let v = c.finish();
        assert_eq!(v.len(), 100_000);
        assert!(v.capacity() <= 100_000, "{}", v.capacity());
    }

    #[test]
    fn capped_stops_an_inflating_reader() {
        let mut r = Capped::new(io::repeat(7), TEN);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert!(too_large(&err).is_some());
        assert_eq!(r.count(), 11);
        let mut ok = Capped::new(&b"0123456789"[..], TEN);
        let mut out = Vec::new();
        ok.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3k"), Ok(3 << 10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn inflation_is_a_ratio_within_floor_and_max() {
        let i = Inflation {
            what: "x",
            ratio: 10,
            floor: 100,
            max: 1000,
        };
        assert_eq!(i.limit(1).bytes, 100);
        assert_eq!(i.limit(50).bytes, 500);
        assert_eq!(i.limit(u64::MAX).bytes, 1000);
    }
}
