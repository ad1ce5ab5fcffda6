//! pacman repository databases (`<repo>.db`, `<repo>.files`).
//!
//! A database is a tar, compressed with gzip, zstd or xz (or not at all;
//! the compression is told by the magic bytes, never by the name), holding
//! one directory per package, `<name>-<version>/`, with a `desc` file (the
//! `.files` database adds a `files` file, older databases a `depends` file).
//! A `desc` is a run of blocks: a `%KEY%` line, value lines, a blank line:
//!
//! ```text
//! %FILENAME%
//! zlib-1:1.3.1-2-x86_64.pkg.tar.zst
//!
//! %NAME%
//! zlib
//! ...
//! ```
//!
//! [`parse`] reads the wire format ([`RawDesc`]: every key kept, unknown
//! ones too); [`RawDesc::validate`] turns one into a [`Package`], refusing
//! what the mirror cannot use safely: a `%FILENAME%` that is not a plain
//! file name (`/`, `..`, NUL), a missing or malformed `%SHA256SUM%` or
//! `%CSIZE%`. [`write_db`] writes a database back (gzip), for partial
//! mirrors and tests.

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::{bail, Context, Result};

use crate::limit::{self, Capped, Found};
use crate::verify::Sha256Digest;

/// The largest `desc`/`depends` file read (real ones are a few KiB).
const MAX_DESC: u64 = 1 << 20;

/// The most value lines all entries of one database may hold: `extra`
/// has about 600,000 for 14,000 packages. Each costs a small allocation,
/// so this (with [`limit::ARCH_DB_DESCS`]) bounds a database's memory.
const MAX_LINES: usize = 2_000_000;

/// How a database is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`repo-add`'s default).
    Gzip,
    /// zstd.
    Zstd,
    /// xz.
    Xz,
}

impl Compression {
    /// Detect by magic; `None` when the bytes are no known compression and
    /// no tar either.
    pub fn detect(data: &[u8]) -> Option<Compression> {
        if data.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if data.len() >= 512
            && (data.get(257..262) == Some(b"ustar") || data[..512].iter().all(|b| *b == 0))
        {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// Run `read` over the tar bytes of a database, inflated as they are read
/// (never whole in memory) and at most [`limit::ARCH_DB_INFLATED`] of
/// them: past it, reading fails with [`limit::TooLarge`]. `what` names
/// the database in errors.
pub fn with_tar<T>(
    data: &[u8],
    what: &str,
    read: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let cap = limit::ARCH_DB_INFLATED.limit(data.len() as u64);
    match Compression::detect(data) {
        Some(Compression::None) => read(&mut Capped::new(data, cap)),
        Some(Compression::Gzip) => read(&mut Capped::new(
            flate2::read::MultiGzDecoder::new(data),
            cap,
        )),
        Some(Compression::Zstd) => read(&mut Capped::new(ZstdFrames::new(data), cap)),
        Some(Compression::Xz) => {
            // lzma-rs writes what it inflates; a pipe turns that into a
            // reader, so the tar is read as it inflates here too. Its
            // window grows with what it produced, so it is bounded by the
            // cap. A reader that stops early closes the pipe, which ends
            // the writer.
            let (reader, mut writer) =
                std::io::pipe().with_context(|| format!("{what}: cannot create a pipe"))?;
            std::thread::scope(|scope| {
                let inflate = scope.spawn(move || {
                    let mut input = io::BufReader::new(data);
                    lzma_rs::xz_decompress(&mut input, &mut writer)
                });
                let out = read(&mut Capped::new(reader, cap));
                let inflated = inflate
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                match (out, inflated) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(anyhow::anyhow!("{what}: corrupt xz data: {e}")),
                }
            })
        }
        None => {
            let head: String = data.iter().take(16).map(|b| format!("{b:02x}")).collect();
            bail!(
                "{what}: not a pacman database\n  expected: a tar, plain or compressed with gzip, zstd or xz\n  found:    bytes starting {head}"
            );
        }
    }
}

/// Decompress a database into its tar bytes (bounded as [`with_tar`]).
pub fn decompress(data: &[u8], what: &str) -> Result<Vec<u8>> {
    with_tar(data, what, |r| {
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| inflate_error(e, what))?;
        Ok(out)
    })
}

/// An error met while inflating: a size limit as it is, anything else as
/// corrupt data.
fn inflate_error(e: io::Error, what: &str) -> anyhow::Error {
    match limit::too_large(&e) {
        Some(t) => anyhow::Error::new(t.clone()).context(format!("{what}: refusing the database")),
        None => anyhow::Error::new(e).context(format!("{what}: corrupt compressed data")),
    }
}

/// The frames of a zstd stream, one after the other, as one reader.
struct ZstdFrames<'a> {
    rest: &'a [u8],
    frame: Option<ruzstd::decoding::StreamingDecoder<&'a [u8], ruzstd::decoding::FrameDecoder>>,
}

impl<'a> ZstdFrames<'a> {
    fn new(data: &'a [u8]) -> Self {
        ZstdFrames {
            rest: data,
            frame: None,
        }
    }
}

impl Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let frame = match &mut self.frame {
                Some(f) => f,
                None if self.rest.is_empty() => return Ok(0),
                None => {
                    let rest = std::mem::take(&mut self.rest);
                    let f = ruzstd::decoding::StreamingDecoder::new(rest)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    self.frame.insert(f)
                }
            };
            let n = frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if let Some(done) = self.frame.take() {
                self.rest = done.into_inner();
            }
        }
    }
}

/// One package entry as written in the database: its directory and every
/// `%KEY%` block of its `desc` (and `depends`), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawDesc {
    /// The entry's directory, `<name>-<version>`.
    pub dir: String,
    /// Key (without `%`) to value lines.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl RawDesc {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of `key` (empty when absent).
    pub fn list(&self, key: &str) -> &[String] {
        self.fields.get(key).map_or(&[], Vec::as_slice)
    }

    /// Parse the text of a `desc` (or `depends`) file into `self`.
    fn add_text(&mut self, text: &str, what: &str) -> Result<()> {
        let mut key: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                key = None;
            } else if line.len() > 2
                && line.starts_with('%')
                && line.ends_with('%')
                && key.is_none()
            {
                let k = line[1..line.len() - 1].to_string();
                self.fields.entry(k.clone()).or_default();
                key = Some(k);
            } else if let Some(k) = &key {
                self.fields
                    .get_mut(k)
                    .expect("key inserted")
                    .push(line.to_string());
            } else {
                bail!(
                    "{what}: line {}: expected a %KEY% line, found {:?}",
                    n + 1,
                    line.chars().take(80).collect::<String>()
                );
            }
        }
        Ok(())
    }

    /// Check the fields the mirror relies on and build a [`Package`].
    /// `what` names the database in errors.
    pub fn validate(&self, what: &str) -> Result<Package> {
        let at = format!("{what}: entry {:?}", self.dir);
        let one = |key: &str| -> Result<&str> {
            match self.list(key) {
                [v] if !v.is_empty() => Ok(v.as_str()),
                [] => bail!("{at}: missing %{key}%"),
                v => bail!("{at}: expected one value for %{key}%, found {}", v.len()),
            }
        };
        let filename = one("FILENAME")?;
        check_file_name(filename).with_context(|| format!("{at}: refusing %FILENAME%"))?;
        let name = one("NAME")?;
        if !is_valid_pkgname(name) {
            bail!("{at}: invalid %NAME% {name:?}: expected letters, digits and @._+-");
        }
        let version = one("VERSION")?;
        if !is_valid_version(version) {
            bail!("{at}: invalid %VERSION% {version:?}: expected [epoch:]pkgver-pkgrel");
        }
        let csize = one("CSIZE")?;
        let csize: u64 = csize.parse().map_err(|_| {
            anyhow::anyhow!("{at}: invalid %CSIZE% {csize:?}: expected a size in bytes")
        })?;
        let sha256: Sha256Digest = match self.list("SHA256SUM") {
            [] => bail!("{at}: missing %SHA256SUM% (the mirror checks every package by SHA-256)"),
            _ => {
                let s = one("SHA256SUM")?;
                s.parse().map_err(|_| {
                    anyhow::anyhow!("{at}: invalid %SHA256SUM% {s:?}: expected 64 hex digits")
                })?
            }
        };
        Ok(Package {
            filename: filename.to_string(),
            name: name.to_string(),
            version: version.to_string(),
            arch: self.get("ARCH").unwrap_or("").to_string(),
            csize,
            sha256,
            pgpsig: self.get("PGPSIG").map(str::to_string),
            depends: self.list("DEPENDS").to_vec(),
            provides: self.list("PROVIDES").to_vec(),
        })
    }
}

/// A package of a repository, as the mirror uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package file, a plain file name.
    pub filename: String,
    /// `%NAME%`.
    pub name: String,
    /// `%VERSION%`: `[epoch:]pkgver-pkgrel`.
    pub version: String,
    /// `%ARCH%` (`x86_64`, `any` …).
    pub arch: String,
    /// `%CSIZE%`: the package file's size.
    pub csize: u64,
    /// `%SHA256SUM%`: the package file's digest.
    pub sha256: Sha256Digest,
    /// `%PGPSIG%`: base64 of the detached signature, when embedded.
    pub pgpsig: Option<String>,
    /// `%DEPENDS%`: `name`, `name>=ver` …
    pub depends: Vec<String>,
    /// `%PROVIDES%`.
    pub provides: Vec<String>,
}

/// Refuse anything but a plain file name: no `/`, `\`, NUL or control
/// characters, not `.`/`..`, not hidden.
pub fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("empty file name");
    }
    if name == "." || name == ".." || name.contains("..") {
        bail!("{name:?} contains '..'");
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == '\\') {
        bail!("{name:?} contains {c:?}: expected a plain file name");
    }
    if name.chars().any(char::is_control) {
        bail!("{:?} contains a NUL or control character", name);
    }
    if name.starts_with('.') {
        bail!("{name:?} is a hidden file name");
    }
    if name.len() > 255 {
        bail!("file name of {} bytes is too long", name.len());
    }
    Ok(())
}

/// A pacman package name: letters, digits, `@._+-`, not starting with `-`
/// or `.`.
pub fn is_valid_pkgname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._+-".contains(&b))
}

/// `[epoch:]pkgver-pkgrel` with printable, slash-free characters.
pub fn is_valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 255
        && v.contains('-')
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

/// Parse a database (any supported compression) into its entries, sorted
/// by directory. Entries without a `desc` are refused; links and devices
/// are refused; other files (`files`, unknown ones) are ignored.
pub fn parse(data: &[u8], what: &str) -> Result<Vec<RawDesc>> {
    with_tar(data, what, |tar| parse_tar(tar, what))
}

/// [`parse`] over the tar bytes as they are read. What is kept is
/// bounded: each `desc` by [`MAX_DESC`], all of them by
/// [`limit::ARCH_DB_DESCS`] and [`MAX_LINES`]; file lists are skipped.
fn parse_tar(tar: &mut dyn Read, what: &str) -> Result<Vec<RawDesc>> {
    let mut entries: BTreeMap<String, RawDesc> = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    let (mut kept, mut lines) = (0u64, 0usize);
    for entry in archive
        .entries()
        .with_context(|| format!("{what}: not a tar archive"))?
    {
        let mut entry = entry.map_err(|e| tar_error(e, what))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            bail!("{what}: unexpected tar entry {path:?} of type {kind:?}: expected regular files and directories");
        }
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let [dir, file] = parts[..] else {
            continue;
        };
        if file != "desc" && file != "depends" {
            continue;
        }
        if check_file_name(dir).is_err() {
            bail!("{what}: unexpected tar entry {path:?}: expected <name>-<version>/desc");
        }
        if entry.size() > MAX_DESC {
            bail!(
                "{what}: {path} is {} bytes, more than {MAX_DESC}",
                entry.size()
            );
        }
        kept += entry.size();
        if kept > limit::ARCH_DB_DESCS.bytes {
            let e = limit::ARCH_DB_DESCS.exceeded(Found::MoreThan(limit::ARCH_DB_DESCS.bytes));
            return Err(anyhow::Error::new(e).context(format!("{what}: refusing the database")));
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| {
            if limit::too_large(&e).is_some() {
                inflate_error(e, what)
            } else {
                anyhow::Error::new(e).context(format!("{what}: {path} is not UTF-8 text"))
            }
        })?;
        lines += text.lines().count();
        if lines > MAX_LINES {
            bail!("{what}: refusing the database: more than {MAX_LINES} lines in its entries");
        }
        let raw = entries.entry(dir.to_string()).or_insert_with(|| RawDesc {
            dir: dir.to_string(),
            ..RawDesc::default()
        });
        raw.add_text(&text, &format!("{what}: {path}"))?;
        if file == "desc" {
            raw.fields.entry("\0desc".to_string()).or_default();
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for (dir, mut raw) in entries {
        if raw.fields.remove("\0desc").is_none() {
            bail!("{what}: entry {dir:?} has no desc file");
        }
        out.push(raw);
    }
    Ok(out)
}

/// An error of the tar reader: the size limit or corrupt data underneath
/// named as such, anything else as a corrupt archive.
fn tar_error(e: io::Error, what: &str) -> anyhow::Error {
    if limit::too_large(&e).is_some() {
        inflate_error(e, what)
    } else {
        anyhow::Error::new(e).context(format!("{what}: corrupt tar archive"))
    }
}

/// Parse and validate a database: its packages. Two entries naming the
/// same file, or the same package twice, are refused.
pub fn packages(data: &[u8], what: &str) -> Result<Vec<Package>> {
    Ok(entries(data, what)?.into_iter().map(|(_, p)| p).collect())
}

/// [`packages`], each with its entry as written (to write a database of
/// some of them again).
pub fn entries(data: &[u8], what: &str) -> Result<Vec<(RawDesc, Package)>> {
    let mut out = Vec::new();
    let mut files = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::new();
    for raw in parse(data, what)? {
        let p = raw.validate(what)?;
        if !files.insert(p.filename.clone()) {
            bail!("{what}: %FILENAME% {:?} listed twice", p.filename);
        }
        if !names.insert(p.name.clone()) {
            bail!("{what}: package {:?} listed twice", p.name);
        }
        out.push((raw, p));
    }
    Ok(out)
}

/// The newest `%BUILDDATE%` (unix seconds) of the entries: how recent a
/// database is, by what it carries. `None` when no entry has one.
pub fn newest_build<'a>(entries: impl IntoIterator<Item = &'a RawDesc>) -> Option<u64> {
    entries
        .into_iter()
        .filter_map(|r| r.get("BUILDDATE")?.trim().parse::<u64>().ok())
        .max()
}

/// [`newest_build`] of a database's bytes.
pub fn newest_build_of(data: &[u8], what: &str) -> Result<Option<u64>> {
    Ok(newest_build(&parse(data, what)?))
}

/// The package name of a dependency (`glibc>=2.38`, `sh`, `libfoo.so=1-64`).
pub fn dependency_name(dep: &str) -> &str {
    dep.split(['<', '>', '=', ':']).next().unwrap_or(dep).trim()
}

/// Serialize one entry's `desc`.
pub fn format_desc(raw: &RawDesc) -> String {
    let mut s = String::new();
    for (k, values) in &raw.fields {
        s.push('%');
        s.push_str(k);
        s.push_str("%\n");
        for v in values {
            s.push_str(v);
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

/// Write a gzip-compressed database holding `entries` (one
/// `<dir>/desc` each).
pub fn write_db(entries: &[RawDesc]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for raw in entries {
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder.append_data(&mut dir, format!("{}/", raw.dir), io::empty())?;
        let desc = format_desc(raw);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(desc.len() as u64);
        builder.append_data(&mut h, format!("{}/desc", raw.dir), desc.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn desc(fields: &[(&str, &[&str])]) -> RawDesc {
        RawDesc {
            dir: "zlib-1:1.3.1-2".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    fn good() -> RawDesc {
        desc(&[
            ("FILENAME", &["zlib-1:1.3.1-2-x86_64.pkg.tar.zst"]),
            ("NAME", &["zlib"]),
            ("VERSION", &["1:1.3.1-2"]),
            ("CSIZE", &["0"]),
            ("SHA256SUM", &[SUM]),
            ("ARCH", &["x86_64"]),
            ("DEPENDS", &["glibc", "bash>=5"]),
            ("XDATA", &["pkgtype=pkg"]),
        ])
    }

    #[test]
    fn round_trip_through_gzip_tar() {
        let db = write_db(&[good()]).unwrap();
        let parsed = parse(&db, "core.db").unwrap();
        assert_eq!(parsed, vec![good()]);
        let p = parsed[0].validate("core.db").unwrap();
        assert_eq!(p.filename, "zlib-1:1.3.1-2-x86_64.pkg.tar.zst");
        assert_eq!(p.depends, ["glibc", "bash>=5"]);
        assert_eq!(p.sha256.to_hex(), SUM);
    }

    #[test]
    fn plain_tar_and_unknown_compression() {
        let db = write_db(&[good()]).unwrap();
        let tar = decompress(&db, "x").unwrap();
        assert_eq!(Compression::detect(&tar), Some(Compression::None));
        assert_eq!(parse(&tar, "x").unwrap().len(), 1);
        let err = parse(b"BZh91AY&SY-not-supported", "core.db").unwrap_err();
        assert!(
            format!("{err:#}").contains("core.db: not a pacman database"),
            "{err:#}"
        );
    }

    #[test]
    fn hostile_file_names_are_refused() {
        for bad in [
            "../etc/passwd",
            "a/b.pkg.tar.zst",
            "a\0b",
            "..",
            ".hidden",
            "",
        ] {
            let mut raw = good();
            raw.fields.insert("FILENAME".into(), vec![bad.into()]);
            let err = raw.validate("core.db").unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains("core.db") && msg.contains("FILENAME"),
                "{bad:?}: {msg}"
            );
        }
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let mut raw = good();
        raw.fields.remove("SHA256SUM");
        assert!(format!("{:#}", raw.validate("x").unwrap_err()).contains("%SHA256SUM%"));
        let mut raw = good();
        raw.fields.insert("CSIZE".into(), vec!["12k".into()]);
        assert!(format!("{:#}", raw.validate("x").unwrap_err()).contains("\"12k\""));
        let mut raw = good();
        raw.fields.insert("SHA256SUM".into(), vec!["abc".into()]);
        assert!(format!("{:#}", raw.validate("x").unwrap_err()).contains("64 hex"));
    }

    #[test]
    fn desc_text_tolerates_unknown_keys_and_rejects_stray_lines() {
        let mut raw = RawDesc::default();
        raw.add_text("%NEWKEY%\na\nb\n\n%NAME%\nx\n", "d").unwrap();
        assert_eq!(raw.list("NEWKEY"), ["a", "b"]);
        assert_eq!(raw.get("NAME"), Some("x"));
        let mut raw = RawDesc::default();
        assert!(raw.add_text("stray\n", "d").is_err());
    }

    #[test]
    fn dependency_names() {
        assert_eq!(dependency_name("glibc>=2.38"), "glibc");
        assert_eq!(dependency_name("sh"), "sh");
        assert_eq!(dependency_name("libfoo.so=1-64"), "libfoo.so");
        assert_eq!(dependency_name("a<2"), "a");
    }

    #[test]
    fn zstd_database() {
        let db = write_db(&[good()]).unwrap();
        let tar = decompress(&db, "x").unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            tar.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(Compression::detect(&zst), Some(Compression::Zstd));
        assert_eq!(parse(&zst, "x").unwrap(), vec![good()]);
    }

    #[test]
    fn xz_database() {
        let tar = decompress(&write_db(&[good()]).unwrap(), "x").unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut tar.as_slice(), &mut xz).unwrap();
        assert_eq!(Compression::detect(&xz), Some(Compression::Xz));
        assert_eq!(parse(&xz, "x").unwrap(), vec![good()]);
        let err = parse(&xz[..xz.len() / 2], "core.db").unwrap_err();
        assert!(
            format!("{err:#}").contains("core.db: corrupt xz data"),
            "{err:#}"
        );
    }

    /// A database whose one entry holds `size` bytes of zeros as its file
    /// list: kilobytes compressed, `size` inflated.
    fn bomb(size: u64) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut builder = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(size);
        builder
            .append_data(&mut h, "zlib-1:1.3.1-2/files", io::repeat(0).take(size))
            .unwrap();
        let desc = format_desc(&good());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(desc.len() as u64);
        builder
            .append_data(&mut h, "zlib-1:1.3.1-2/desc", desc.as_bytes())
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn an_inflation_bomb_is_refused_at_the_ratio() {
        let db = bomb(64 << 20);
        let cap = limit::ARCH_DB_INFLATED.limit(db.len() as u64).bytes;
        assert!(cap < 64 << 20, "{} compressed bytes allow {cap}", db.len());
        let err = parse(&db, "core.db").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("core.db: refusing the database")
                && text.contains("Arch database (inflated) too large")
                && text.contains(&format!("limit: {cap} bytes")),
            "{text}"
        );
        // A file list within the ratio is read (and skipped).
        assert_eq!(parse(&bomb(1 << 20), "x").unwrap(), vec![good()]);
    }

    #[test]
    fn links_in_the_database_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder
            .append_link(&mut h, "zlib-1-1/desc", "/etc/passwd")
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let err = parse(&tar, "core.db").unwrap_err();
        assert!(
            format!("{err:#}").contains("unexpected tar entry"),
            "{err:#}"
        );
    }
}
