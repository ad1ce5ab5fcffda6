//! Rust toolchains from a dist server (`static.rust-lang.org/dist`).
//!
//! Upstream (`--url`, default `https://static.rust-lang.org/dist`) and the
//! mirror tree share one layout (romt's):
//!
//! ```text
//! dist/
//!   channel-rust-<channel>.toml(.sha256,.asc)   newest per channel (fixup)
//!   channel-rust-X.Y.Z.toml(.sha256,.asc)       stable by version (fixup)
//!   channel-rust-X.Y.toml(.sha256,.asc)         newest X.Y.* (fixup)
//!   <date>/channel-rust-<channel>.toml(.sha256,.asc)
//!   <date>/channel-rust-X.Y.Z.toml, channel-rust-X.Y.toml (stable, fixup)
//!   <date>/<pkg>-<version>[-<triple>].tar.xz(.sha256,.asc)
//! ```
//!
//! Clients: `RUSTUP_DIST_SERVER=http://host:port` makes rustup read
//! `dist/channel-rust-stable.toml.sha256`, the manifest, then the files;
//! `1.99.1` reads `dist/channel-rust-1.99.1.toml`, `stable-2026-10-15`
//! reads `dist/2026-10-15/channel-rust-stable.toml`.
//!
//! Checks: a manifest must match its upstream `.sha256` and its `.asc`
//! (OpenPGP, the Rust release key unless `--keyring`); every file must hash
//! to the manifest's hash and verify against its `.asc`, in the engine,
//! before it is renamed into place.
//!
//! Publication order: files (with `.sha256`, `.asc`) first; then each dated
//! manifest (`.asc`, `.sha256`, then the `.toml`); then fixup's dateless
//! copies. A client never sees a manifest whose files are missing.
//!
//! Increments, as Hex and Arch have them: `mark` records a time in
//! `.mirror/state.json` ([`crate::eco::set_time_mark`]); `pack` carries
//! the dated manifests of SPEC whose files were written since (each with
//! those files), `--start 0` all of them; `export` is `download pack
//! mark`. `unpack` takes archives in order ([`crate::eco::continuity`]).

pub mod manifest;
pub mod retain;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

pub use manifest::{Channel, Format, Manifest, PlannedFile, Selection};

use crate::bundle;
use crate::eco::{expand_target_alias, is_valid_target, Version};
use crate::fetch::{Engine, FetchError, FetchItem, SignatureSource, SignatureSpec};
use crate::report::Reporter;
use crate::store;
use crate::verify::digest::{
    format_sidecar, hash_file, parse_sidecar, DigestMismatch, Sha256Digest,
};
use crate::verify::openpgp::{verify_detached, verify_file, Keyring};

/// The official upstream.
pub const DEFAULT_URL: &str = "https://static.rust-lang.org/dist";

/// The default archive name for `pack`/`unpack`.
pub const DEFAULT_ARCHIVE: &str = "toolchain.tar.gz";

/// The ecosystem name in bundles and state.
pub const ECOSYSTEM: &str = "toolchain";

/// Whether `path` (relative to the root) is a versioned file, one whose
/// bytes never change once published: a tarball of a dated release,
/// `dist/<date>/<file>.tar.{gz,xz}`.
pub fn is_versioned(path: &str) -> bool {
    matches!(
        path.split('/').collect::<Vec<_>>()[..],
        ["dist", date, name]
            if manifest::is_date(date) && (name.ends_with(".tar.gz") || name.ends_with(".tar.xz"))
    )
}

/// What `-s/--select` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// The newest manifest of a channel.
    Channel(Channel),
    /// A stable release by version.
    Version(Version),
    /// A channel's manifest of one date (`YYYY-MM-DD` alone means nightly).
    Dated(Channel, String),
    /// The newest local manifest of each channel.
    Latest,
    /// Every local manifest.
    All,
}

impl Spec {
    /// Parse a SPEC.
    pub fn parse(s: &str) -> Result<Spec> {
        if let Some(c) = Channel::parse(s) {
            return Ok(Spec::Channel(c));
        }
        match s {
            "latest" => return Ok(Spec::Latest),
            "*" => return Ok(Spec::All),
            _ => {}
        }
        if let Some(v) = Version::parse(s) {
            return Ok(Spec::Version(v));
        }
        if manifest::is_date(s) {
            return Ok(Spec::Dated(Channel::Nightly, s.to_string()));
        }
        if let Some((c, d)) = s.split_once('-') {
            if let (Some(c), true) = (Channel::parse(c), manifest::is_date(d)) {
                return Ok(Spec::Dated(c, d.to_string()));
            }
        }
        bail!(
            "invalid SPEC {s:?}: expected stable, beta, nightly, X.Y.Z, <channel>-YYYY-MM-DD, \
             YYYY-MM-DD, latest or *"
        )
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Channel(c) => write!(f, "{c}"),
            Spec::Version(v) => write!(f, "{v}"),
            Spec::Dated(c, d) => write!(f, "{c}-{d}"),
            Spec::Latest => f.write_str("latest"),
            Spec::All => f.write_str("*"),
        }
    }
}

/// How signatures are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMode {
    /// Every manifest and file needs a good `.asc` (the default).
    Require,
    /// A missing `.asc` is a warning; a bad one is still an error.
    Warn,
    /// No signature checks (`--no-signature`).
    Off,
}

/// One manifest with where it lives.
#[derive(Debug, Clone)]
pub struct Located {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Its channel.
    pub channel: Channel,
    /// Its raw bytes (what the signature covers).
    pub bytes: Vec<u8>,
}

impl Located {
    /// `<channel>-<date>`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.channel, self.manifest.date)
    }

    /// `dist/<date>/channel-rust-<channel>.toml`, relative to the root.
    pub fn rel(&self) -> String {
        format!(
            "dist/{}/{}",
            self.manifest.date,
            self.channel.manifest_name()
        )
    }

    /// `1.99.1`, `1.100.0-beta.3`, … (the first word of `pkg.rust`'s version).
    pub fn version_label(&self) -> String {
        self.manifest
            .rust_version_string()
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string()
    }
}

/// What a selection found locally, for `list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    /// `stable-2026-10-15`.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// Date.
    pub date: String,
    /// `pkg.rust`'s version label.
    pub version: String,
    /// Targets with at least one file present.
    pub targets: Vec<String>,
    /// Targets in the manifest.
    pub targets_total: usize,
    /// Packages (pkg, target) with a file present.
    pub packages: usize,
    /// Available packages in the manifest.
    pub packages_total: usize,
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}({}) targets[{}/{}] packages[{}/{}]",
            self.name,
            self.version,
            self.targets.len(),
            self.targets_total,
            self.packages,
            self.packages_total
        )
    }
}

/// The toolchain part of a mirror tree.
pub struct Toolchain {
    root: PathBuf,
    url: String,
    keyring: Arc<Keyring>,
    mode: SignatureMode,
}

impl Toolchain {
    /// `root` holds `dist/`; `url` is the upstream dist base.
    pub fn new(root: &Path, url: &str, keyring: Keyring, mode: SignatureMode) -> Toolchain {
        Toolchain {
            root: root.to_path_buf(),
            url: url.trim_end_matches('/').to_string(),
            keyring: Arc::new(keyring),
            mode,
        }
    }

    fn dist(&self) -> PathBuf {
        self.root.join("dist")
    }

    /// Every dated manifest present locally, oldest first.
    pub fn local_manifests(&self) -> Result<Vec<Located>> {
        self.local_entries()?
            .iter()
            .map(|(date, channel)| self.load(date, *channel))
            .collect()
    }

    /// Every dated manifest present locally as `(date, channel)`, oldest
    /// first, from file names only (nothing is parsed).
    pub fn local_entries(&self) -> Result<Vec<(String, Channel)>> {
        let mut out = Vec::new();
        let dist = self.dist();
        let entries = match fs::read_dir(&dist) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dist.display())),
        };
        let mut dates: Vec<String> = Vec::new();
        for e in entries {
            let e = e.with_context(|| format!("cannot list {}", dist.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if manifest::is_date(&name) && e.file_type()?.is_dir() {
                dates.push(name);
            }
        }
        dates.sort();
        for date in dates {
            for channel in Channel::ALL {
                if dist.join(&date).join(channel.manifest_name()).is_file() {
                    out.push((date.clone(), channel));
                }
            }
        }
        Ok(out)
    }

    /// Read and parse `dist/<date>/channel-rust-<channel>.toml`, checking
    /// that it is what its place says.
    pub fn load(&self, date: &str, channel: Channel) -> Result<Located> {
        let path = self.dist().join(date).join(channel.manifest_name());
        let bytes = crate::limit::read_file(&path, crate::limit::CHANNEL_MANIFEST)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let m = Manifest::parse(&bytes, &path.display().to_string())?;
        if m.date != date || m.channel() != channel {
            bail!(
                "{}: expected a {channel} manifest of {date}, found {} of {}",
                path.display(),
                m.channel(),
                m.date
            );
        }
        Ok(Located {
            manifest: m,
            channel,
            bytes,
        })
    }

    /// Resolve SPECs against the local tree; no SPEC means `*`. Only the
    /// manifests selected (and, for `X.Y.Z`, the stable ones looked at)
    /// are parsed.
    pub fn resolve_local(&self, specs: &[Spec]) -> Result<Vec<Located>> {
        let all = self.local_entries()?;
        let every = [Spec::All];
        let specs = if specs.is_empty() { &every[..] } else { specs };
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        for spec in specs {
            let newest = |pred: &dyn Fn(&(String, Channel)) -> bool| -> Option<usize> {
                all.iter().rposition(pred)
            };
            let found: Vec<usize> = match spec {
                Spec::All => (0..all.len()).collect(),
                Spec::Latest => Channel::ALL
                    .iter()
                    .filter_map(|&c| newest(&|e| e.1 == c))
                    .collect(),
                Spec::Channel(c) => newest(&|e| e.1 == *c).into_iter().collect(),
                Spec::Version(v) => {
                    let mut hit = None;
                    for (i, (date, channel)) in all.iter().enumerate().rev() {
                        if *channel == Channel::Stable
                            && self.load(date, *channel)?.manifest.release() == Some(*v)
                        {
                            hit = Some(i);
                            break;
                        }
                    }
                    hit.into_iter().collect()
                }
                Spec::Dated(c, d) => newest(&|e| e.1 == *c && &e.0 == d).into_iter().collect(),
            };
            if found.is_empty() {
                bail!(
                    "no local toolchain manifest matches SPEC {spec} under {}",
                    self.dist().display()
                );
            }
            chosen.extend(found);
        }
        chosen
            .into_iter()
            .map(|i| self.load(&all[i].0, all[i].1))
            .collect()
    }

    /// The upstream URL of a SPEC's manifest.
    pub fn manifest_url(&self, spec: &Spec) -> Result<String> {
        Ok(match spec {
            Spec::Channel(c) => format!("{}/{}", self.url, c.manifest_name()),
            Spec::Version(v) => format!("{}/channel-rust-{v}.toml", self.url),
            Spec::Dated(c, d) => format!("{}/{d}/{}", self.url, c.manifest_name()),
            Spec::Latest | Spec::All => {
                bail!("SPEC `latest` and `*` select local manifests; download needs a channel, X.Y.Z or a date")
            }
        })
    }

    /// Fetch and check the manifests of SPECs (manifest, `.sha256`, `.asc`),
    /// in memory: nothing is written. Returns each with its `.asc`.
    pub fn fetch_manifests(
        &self,
        engine: &Engine,
        specs: &[Spec],
        reporter: &dyn Reporter,
    ) -> Result<Vec<(Located, Option<Vec<u8>>)>> {
        if specs.is_empty() {
            bail!("no SPEC given; use -s stable (or beta, nightly, X.Y.Z, <channel>-YYYY-MM-DD)");
        }
        let mut out: Vec<(Located, Option<Vec<u8>>)> = Vec::new();
        for spec in specs {
            let url = self.manifest_url(spec)?;
            let urls = [url.clone(), format!("{url}.sha256"), format!("{url}.asc")];
            let mut got = engine
                .fetch_bytes_each(&[
                    (&urls[0], crate::limit::CHANNEL_MANIFEST),
                    (&urls[1], crate::limit::COMPANION),
                    (&urls[2], crate::limit::COMPANION),
                ])
                .into_iter();
            let bytes = got
                .next()
                .context("missing result")?
                .with_context(|| format!("cannot fetch the manifest for SPEC {spec}"))?;
            let sum = got
                .next()
                .context("missing result")?
                .with_context(|| format!("cannot fetch the checksum of {url}"))?;
            let expected = parse_sidecar(&sum, &urls[1])?;
            let actual = Sha256Digest::of(&bytes);
            if actual != expected {
                return Err(DigestMismatch::new(url.clone(), expected, actual).into());
            }
            let asc = match got.next().context("missing result")? {
                Ok(asc) => Some(asc),
                Err(FetchError::Status { status, .. }) if status.as_u16() == 404 => None,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot fetch the signature of {url}"))
                }
            };
            self.check_signature(&bytes[..], asc.as_deref(), &url, reporter)?;
            let m = Manifest::parse(&bytes, &url)?;
            let channel = m.channel();
            match spec {
                Spec::Channel(c) if *c != channel => {
                    bail!(
                        "{url}: expected a {c} manifest, found {channel} ({})",
                        m.rust_version_string()
                    )
                }
                Spec::Version(v) if channel != Channel::Stable || m.release() != Some(*v) => {
                    bail!(
                        "{url}: expected stable {v}, found {}",
                        m.rust_version_string()
                    )
                }
                Spec::Dated(c, d) if *c != channel || &m.date != d => {
                    bail!(
                        "{url}: expected the {c} manifest of {d}, found {channel} of {}",
                        m.date
                    )
                }
                _ => {}
            }
            // A dateless name only moves forward: an upstream behind the
            // published copy is not followed back.
            let dateless = match spec {
                Spec::Channel(c) => Some(c.manifest_name()),
                Spec::Version(v) => Some(format!("channel-rust-{v}.toml")),
                _ => None,
            };
            if let Some(name) = dateless {
                if let Some(published) = manifest::read_published(&self.dist().join(&name)) {
                    if m.date < published.date {
                        reporter.warn(&format!(
                            "toolchain: {url} is dated {} ({}), older than the published \
                             dist/{name} dated {} ({}); keeping the published one, \
                             nothing downloaded for SPEC {spec}",
                            m.date,
                            m.rust_version_string(),
                            published.date,
                            published.rust_version_string()
                        ));
                        continue;
                    }
                }
            }
            reporter.info(&format!(
                "toolchain: {spec} is {channel}-{} ({})",
                m.date,
                m.rust_version_string()
            ));
            let located = Located {
                manifest: m,
                channel,
                bytes,
            };
            if !out.iter().any(|(l, _)| l.rel() == located.rel()) {
                out.push((located, asc));
            }
        }
        Ok(out)
    }

    /// Check a signature over in-memory bytes according to the mode.
    fn check_signature(
        &self,
        data: &[u8],
        asc: Option<&[u8]>,
        what: &str,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        match (self.mode, asc) {
            (SignatureMode::Off, _) => Ok(()),
            (SignatureMode::Warn, None) => {
                reporter.warn(&format!("{what}: no signature ({what}.asc is missing)"));
                Ok(())
            }
            (SignatureMode::Require, None) => bail!(
                "{what}: no signature: {what}.asc is missing (use --warn-signature to accept unsigned files)"
            ),
            (_, Some(sig)) => {
                verify_detached(&self.keyring, data, sig, what)?;
                Ok(())
            }
        }
    }

    /// Expand TARGETs for a manifest: aliases, `all` and `*` (every
    /// target of the manifest). Targets the manifest lacks are warned about.
    pub fn expand_targets(
        m: &Manifest,
        targets: &[String],
        warn: &dyn Fn(&str),
    ) -> Result<Vec<String>> {
        let known = m.all_targets();
        let mut out = BTreeSet::new();
        for t in targets {
            match t.as_str() {
                "all" | "*" => {
                    out.insert("*".to_string());
                }
                t => {
                    let t = expand_target_alias(t);
                    if !is_valid_target(t) {
                        bail!("invalid TARGET {t:?}");
                    }
                    if !known.contains(t) {
                        warn(&format!("target {t} is not in the manifest of {}", m.date));
                    }
                    out.insert(t.to_string());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Refuse a TARGET (aliases expanded) that none of `manifests` knows,
    /// naming the nearest known ones. A target some of them know is only
    /// warned about (by [`Toolchain::expand_targets`]) for the others.
    pub fn check_targets<'a>(
        manifests: &[&Manifest],
        targets: impl IntoIterator<Item = &'a String>,
    ) -> Result<()> {
        let known: BTreeSet<String> = manifests.iter().flat_map(|m| m.all_targets()).collect();
        for t in targets {
            if matches!(t.as_str(), "all" | "*") {
                continue;
            }
            let t = expand_target_alias(t);
            if !is_valid_target(t) {
                bail!("invalid TARGET {t:?}");
            }
            if !known.contains(t) {
                let dates: Vec<&str> = manifests.iter().map(|m| m.date.as_str()).collect();
                bail!(
                    "{} in the manifest of {}: nothing was written (see all-targets)",
                    crate::suggest::unknown("target", t, known.iter().map(String::as_str)),
                    dates.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Download the files of `manifests` chosen by `sel` (its targets are
    /// raw TARGET arguments), then publish each manifest, then fixup.
    pub fn download(
        &self,
        engine: &Engine,
        manifests: &[(Located, Option<Vec<u8>>)],
        sel: &Selection,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        if sel.targets.is_empty() {
            bail!("no TARGET given; use -t TRIPLE (or linux, windows, darwin, all)");
        }
        if manifests.is_empty() {
            // Every SPEC was behind what is published (said above).
            return self.fixup(reporter);
        }
        let warn = |w: &str| reporter.warn(w);
        // Before anything is written: a target no manifest knows is a typo.
        let all: Vec<&Manifest> = manifests.iter().map(|(l, _)| &l.manifest).collect();
        Self::check_targets(&all, sel.targets.iter().chain(&sel.cross))?;
        let mut planned: BTreeMap<String, PlannedFile> = BTreeMap::new();
        for (l, _) in manifests {
            let mut s = sel.clone();
            s.targets = Self::expand_targets(&l.manifest, &sel.targets, &warn)?;
            s.cross = Self::expand_targets(&l.manifest, &sel.cross, &warn)?;
            for f in l.manifest.select(&s)? {
                planned.insert(f.rel.clone(), f);
            }
        }

        // With --warn-signature, learn first which signatures exist.
        let mut has_asc: BTreeMap<String, bool> = BTreeMap::new();
        if self.mode == SignatureMode::Warn {
            let missing: Vec<&String> = planned
                .keys()
                .filter(|rel| !self.dist().join(format!("{rel}.asc")).is_file())
                .collect();
            let urls: Vec<String> = missing
                .iter()
                .map(|rel| format!("{}/{rel}.asc", self.url))
                .collect();
            for (rel, r) in missing
                .iter()
                .zip(engine.fetch_bytes_many(&urls, crate::limit::COMPANION))
            {
                let present = match r {
                    Ok(_) => true,
                    Err(FetchError::Status { status, .. }) if status.as_u16() == 404 => {
                        warn(&format!(
                            "{}/{rel}: no signature ({rel}.asc is missing)",
                            self.url
                        ));
                        false
                    }
                    Err(e) => return Err(e.into()),
                };
                has_asc.insert(rel.to_string(), present);
            }
        }

        let check: Arc<dyn crate::fetch::SignatureCheck> = self.keyring.clone();
        let items: Vec<FetchItem> = planned
            .values()
            .map(|f| {
                let dest = self.dist().join(&f.rel);
                let name = f.rel.rsplit('/').next().unwrap_or(&f.rel);
                let mut item = FetchItem::new(format!("{}/{}", self.url, f.rel), &dest)
                    .sha256(f.hash)
                    .limit(crate::limit::TOOLCHAIN_FILE)
                    .sidecar(sibling(&dest, ".sha256"), format_sidecar(&f.hash, name));
                let signed = match self.mode {
                    SignatureMode::Off => false,
                    SignatureMode::Require => true,
                    SignatureMode::Warn => has_asc.get(&f.rel).copied().unwrap_or(true),
                };
                if signed {
                    item = item.signature(SignatureSpec {
                        source: SignatureSource::Url(format!("{}/{}.asc", self.url, f.rel)),
                        dest: sibling(&dest, ".asc"),
                        check: check.clone(),
                    });
                }
                item
            })
            .collect();
        let summary = engine.fetch_all(items, reporter).map_err(|failed| {
            let unsigned = failed
                .failures
                .iter()
                .filter(|(_, e)| {
                    matches!(e, FetchError::Status { url, status, .. }
                        if status.as_u16() == 404 && url.ends_with(".asc"))
                })
                .count();
            let manifests: Vec<String> = manifests.iter().map(|(l, _)| l.name()).collect();
            let e = anyhow::Error::from(failed);
            if unsigned > 0 {
                e.context(format!(
                    "{unsigned} files have no signature upstream (their .asc is missing), so \
                     the manifests of {} were not published; use --warn-signature to accept \
                     unsigned files",
                    manifests.join(", ")
                ))
            } else {
                e.context(format!(
                    "the manifests of {} were not published",
                    manifests.join(", ")
                ))
            }
        })?;
        reporter.info(&format!(
            "toolchain: {} downloaded ({} bytes), {} already present",
            summary.fetched, summary.bytes, summary.skipped
        ));
        for (l, asc) in manifests {
            self.publish_manifest(l, asc.as_deref())?;
        }
        self.fixup(reporter)?;
        Ok(())
    }

    /// Write a dated manifest: `.asc`, `.sha256`, then the `.toml`.
    fn publish_manifest(&self, l: &Located, asc: Option<&[u8]>) -> Result<()> {
        let path = self.root.join(l.rel());
        write_copy(&path, &l.bytes, asc)
    }

    /// Publish the dateless manifests: the newest per channel into
    /// `dist/`; for stable also `channel-rust-X.Y.Z.toml` and
    /// `channel-rust-X.Y.toml` in `dist/` and in each dated directory.
    pub fn fixup(&self, reporter: &dyn Reporter) -> Result<()> {
        // What the manifests name (downloaded or unpacked) first.
        store::sync_tree(&self.root)
            .with_context(|| format!("cannot write {} to disk", self.root.display()))?;
        // Parse only what is needed: every stable (for its version) and
        // the newest of each other channel.
        let entries = self.local_entries()?;
        let mut wanted: BTreeSet<usize> = (0..entries.len())
            .filter(|&i| entries[i].1 == Channel::Stable)
            .collect();
        wanted.extend(
            Channel::ALL
                .iter()
                .filter_map(|&c| entries.iter().rposition(|e| e.1 == c)),
        );
        let all: Vec<Located> = wanted
            .into_iter()
            .map(|i| self.load(&entries[i].0, entries[i].1))
            .collect::<Result<_>>()?;
        let dist = self.dist();
        let mut newest: BTreeMap<Channel, &Located> = BTreeMap::new();
        let mut by_version: BTreeMap<Version, &Located> = BTreeMap::new();
        let mut by_minor: BTreeMap<(u64, u64), &Located> = BTreeMap::new();
        for l in &all {
            // `all` is oldest first: later entries win.
            newest.insert(l.channel, l);
            if l.channel != Channel::Stable {
                continue;
            }
            let Some(v) = l.manifest.release() else {
                continue;
            };
            let dated = dist.join(&l.manifest.date);
            let asc = read_optional(&sibling(&self.root.join(l.rel()), ".asc"))?;
            write_copy(
                &dated.join(format!("channel-rust-{v}.toml")),
                &l.bytes,
                asc.as_deref(),
            )?;
            write_copy(
                &dated.join(format!("channel-rust-{}.{}.toml", v.0, v.1)),
                &l.bytes,
                asc.as_deref(),
            )?;
            by_version.insert(v, l);
            let minor = by_minor.entry((v.0, v.1)).or_insert(l);
            if minor.manifest.release() <= Some(v) {
                *minor = l;
            }
        }
        let mut copies: Vec<(String, &Located)> = newest
            .iter()
            .map(|(c, l)| (c.manifest_name(), *l))
            .collect();
        copies.extend(
            by_version
                .iter()
                .map(|(v, l)| (format!("channel-rust-{v}.toml"), *l)),
        );
        copies.extend(
            by_minor
                .iter()
                .map(|((x, y), l)| (format!("channel-rust-{x}.{y}.toml"), *l)),
        );
        for (name, l) in &copies {
            let path = dist.join(name);
            if let Some(published) = manifest::read_published(&path) {
                // Published by another path (the cache) and newer: kept.
                if let Err(e) = manifest::check_forward(name, &l.manifest, &published) {
                    reporter.warn(&format!("{e:#}"));
                    continue;
                }
            }
            let asc = read_optional(&sibling(&self.root.join(l.rel()), ".asc"))?;
            write_copy(&path, &l.bytes, asc.as_deref())?;
        }
        for (c, l) in &newest {
            reporter.info(&format!(
                "toolchain: {c} is {} ({})",
                l.manifest.date,
                l.version_label()
            ));
        }
        Ok(())
    }

    /// Re-check what is on disk for the selected manifests: each manifest
    /// against its `.sha256` and `.asc`, each file it references that is
    /// present against the manifest hash, its `.sha256` and its `.asc`.
    /// Returns how many files were checked.
    pub fn verify(&self, manifests: &[Located], reporter: &dyn Reporter) -> Result<usize> {
        let mut failures = Vec::new();
        let mut files: BTreeMap<String, Sha256Digest> = BTreeMap::new();
        for l in manifests {
            let path = self.root.join(l.rel());
            if let Err(e) = verify_local(
                &path,
                Some(Sha256Digest::of(&l.bytes)),
                &self.keyring,
                self.mode,
                reporter,
            ) {
                failures.push(format!("{e:#}"));
            }
            for f in l.manifest.all_files() {
                if self.dist().join(&f.rel).is_file() {
                    files.insert(f.rel, f.hash);
                }
            }
        }
        let results: Vec<String> = files
            .par_iter()
            .filter_map(|(rel, hash)| {
                let path = self.dist().join(rel);
                verify_local(&path, Some(*hash), &self.keyring, self.mode, reporter)
                    .err()
                    .map(|e| format!("{e:#}"))
            })
            .collect();
        failures.extend(results);
        let total = files.len() + manifests.len();
        if !failures.is_empty() {
            bail!(
                "{} of {total} toolchain files failed verification:\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }
        reporter.info(&format!("toolchain: {total} files verified"));
        Ok(total)
    }

    /// What each selected manifest has locally.
    pub fn list(&self, manifests: &[Located]) -> Vec<Listing> {
        manifests
            .iter()
            .map(|l| {
                let mut targets = BTreeSet::new();
                let mut packages = 0;
                let available = l.manifest.available();
                for (pkg, t) in &available {
                    let target = &l.manifest.pkgs[pkg].targets[t];
                    let present = [Format::Xz, Format::Gz].iter().any(|&f| {
                        target
                            .artifact(f)
                            .is_some_and(|a| self.dist().join(&a.rel).is_file())
                    });
                    if present {
                        packages += 1;
                        if t != "*" {
                            targets.insert(t.clone());
                        }
                    }
                }
                Listing {
                    name: l.name(),
                    channel: l.channel.to_string(),
                    date: l.manifest.date.clone(),
                    version: l.version_label(),
                    targets: targets.into_iter().collect(),
                    targets_total: l.manifest.all_targets().len(),
                    packages,
                    packages_total: available.len(),
                }
            })
            .collect()
    }

    /// Archive members for the selected manifests: the dated manifest with
    /// its `.sha256`/`.asc`, and every referenced file present (of the
    /// TARGETs, when given) with its `.sha256`/`.asc`.
    pub fn members(&self, manifests: &[Located], targets: &[String]) -> Result<Vec<String>> {
        let mut members = BTreeSet::new();
        for (manifest, files) in self.member_groups(manifests, targets)? {
            members.extend(manifest);
            members.extend(files.into_iter().flatten());
        }
        Ok(members.into_iter().collect())
    }

    /// [`Toolchain::members`] grouped: per manifest, its own files and
    /// each referenced file with its sidecars.
    #[allow(clippy::type_complexity)]
    fn member_groups(
        &self,
        manifests: &[Located],
        targets: &[String],
    ) -> Result<Vec<(Vec<String>, Vec<Vec<String>>)>> {
        let mut groups = Vec::new();
        for l in manifests {
            let rel = l.rel();
            let wanted = Self::expand_targets(&l.manifest, targets, &|_| {})?;
            let any = wanted.is_empty() || wanted.iter().any(|t| t == "*");
            let unit = |rel: String| -> Result<Vec<String>> {
                let mut unit = Vec::new();
                for (rel, required) in [
                    (rel.clone(), true),
                    (format!("{rel}.sha256"), true),
                    (format!("{rel}.asc"), self.mode == SignatureMode::Require),
                ] {
                    let path = self.root.join(&rel);
                    if path.is_file() {
                        unit.push(rel);
                    } else if required {
                        bail!("cannot pack {}: file is missing", path.display());
                    }
                }
                Ok(unit)
            };
            let own = unit(rel.clone())?;
            let mut files = Vec::new();
            let mut seen = BTreeSet::new();
            for f in l.manifest.all_files() {
                if !(any || f.target == "*" || wanted.contains(&f.target)) {
                    continue;
                }
                let rel = format!("dist/{}", f.rel);
                if !self.root.join(&rel).is_file() || !seen.insert(rel.clone()) {
                    continue;
                }
                files.push(unit(rel)?);
            }
            groups.push((own, files));
        }
        Ok(groups)
    }

    /// Pack the selected manifests (see [`Toolchain::members`]) as the
    /// range from `start` (`--start`: `0` or a mark value; `None`: the
    /// mark) to now: a manifest with each of its files written since, the
    /// manifest itself whenever one of them is. Returns the members.
    pub fn pack(
        &self,
        manifests: &[Located],
        targets: &[String],
        archive: &Path,
        start: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<usize> {
        let (mark, since) = crate::eco::time_pack_start(&self.root, ECOSYSTEM, start)?;
        let mut members = BTreeSet::new();
        for (own, files) in self.member_groups(manifests, targets)? {
            let new: Vec<Vec<String>> = files
                .into_iter()
                .filter(|u| self.written_since(u, since))
                .collect();
            if !new.is_empty() || self.written_since(&own, since) {
                members.extend(own);
                members.extend(new.into_iter().flatten());
            }
        }
        let members: Vec<String> = members.into_iter().collect();
        crate::eco::selection::time_pack_pending::<retain::RetainEntry>(
            &self.root,
            ECOSYSTEM,
            mark,
            &members,
            members.len(),
            archive,
            reporter,
        )?;
        Ok(members.len())
    }

    /// Whether a file of `unit` was written after `since` (nanoseconds).
    fn written_since(&self, unit: &[String], since: u128) -> bool {
        crate::eco::written_since(&self.root, unit, since)
    }

    /// Record the mark: see [`crate::eco::set_time_mark`].
    pub fn mark(&self, reporter: &dyn Reporter) -> Result<()> {
        crate::eco::set_time_mark(&self.root, ECOSYSTEM, reporter)
    }

    /// Unpack `archive` (ours or romt's): every staged manifest and file is
    /// checked (hashes, `.sha256`, signatures) before anything is
    /// published; manifests are published last; then fixup. Returns the
    /// SPECs of the manifests it held.
    pub fn unpack(&self, archive: &Path, reporter: &dyn Reporter) -> Result<Vec<Spec>> {
        let unpacked = crate::eco::continuity::unpack_in_time_order(
            &self.root,
            ECOSYSTEM,
            "-s SPEC -t TARGET (as packed before)",
            archive,
            reporter,
            |expect_range| self.unpack_checked(archive, expect_range, reporter),
        )?;
        Ok(unpacked.unwrap_or_default())
    }

    /// [`Toolchain::unpack`] once the archive's order was checked.
    fn unpack_checked(
        &self,
        archive: &Path,
        expect_range: Option<Option<bundle::Range>>,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Spec>> {
        let keyring = self.keyring.clone();
        let mode = self.mode;
        let root = self.root.clone();
        let mut last = Vec::new();
        for ext in [".asc", ".sha256", ""] {
            for c in Channel::ALL {
                last.push(format!("{}{ext}", c.manifest_name()));
            }
        }
        let opts = bundle::UnpackOptions {
            allowed_prefixes: vec!["dist/".to_string()],
            expect_ecosystem: Some(ECOSYSTEM.to_string()),
            publish_last: last,
            versioned: Some(is_versioned),
            check_staged: Some(Arc::new(move |dir: &Path, files: &[String]| {
                check_staged(&root, dir, files, &keyring, mode)
            })),
            expect_range,
        };
        let summary = bundle::unpack(archive, &self.root, &opts, reporter)
            .with_context(|| format!("cannot unpack {}", archive.display()))?;
        let removed = crate::eco::selection::apply_archive_removes(
            &self.root,
            ECOSYSTEM,
            archive,
            summary.manifest.as_ref(),
            retain::is_removable,
            reporter,
        )?;
        if removed > 0 {
            for date in summary
                .manifest
                .iter()
                .flat_map(|m| m.removes.iter())
                .filter_map(|p| p.split('/').nth(1))
                .filter(|d| manifest::is_date(d))
                .collect::<BTreeSet<_>>()
            {
                // Only an emptied directory goes.
                let _ = fs::remove_dir(self.dist().join(date));
            }
        }
        let mut specs = BTreeSet::new();
        for f in &summary.files {
            if let [_, date, name] = f.split('/').collect::<Vec<_>>()[..] {
                if let Some(c) = Channel::ALL.iter().find(|c| c.manifest_name() == name) {
                    specs.insert((*c, date.to_string()));
                }
            }
        }
        if specs.is_empty() {
            if removed > 0 && summary.files.is_empty() {
                reporter.info(&format!("toolchain: {removed} files removed"));
                if !self.local_entries()?.is_empty() {
                    self.fixup(reporter)?;
                }
                return Ok(Vec::new());
            }
            if crate::eco::continuity::empty_increment(&summary, ECOSYSTEM, archive, reporter) {
                return Ok(Vec::new());
            }
            bail!("{} holds no dated channel manifest", archive.display());
        }
        reporter.info(&format!(
            "toolchain: unpacked {} files ({} manifests)",
            summary.files.len(),
            specs.len()
        ));
        self.fixup(reporter)?;
        Ok(specs.into_iter().map(|(c, d)| Spec::Dated(c, d)).collect())
    }
}

/// Before an unpack publishes: each manifest must match its `.sha256` and
/// `.asc`, hold what its name says ([`manifest::check_name`]) and be no
/// older than the one published under its name in `root`; at least one
/// must be dated; every other file must be referenced by a staged dated
/// manifest, hash to its hash, and match its `.sha256` and `.asc`.
fn check_staged(
    root: &Path,
    dir: &Path,
    files: &[String],
    keyring: &Keyring,
    mode: SignatureMode,
) -> std::result::Result<(), String> {
    let names: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut failures = Vec::new();
    let mut hashes: BTreeMap<String, Sha256Digest> = BTreeMap::new();
    let quiet = crate::report::NullReporter;
    let mut dated = 0;
    // Every manifest in the archive (dated, dateless, by version) must be
    // a signed upstream manifest; only dated ones vouch for files.
    let is_manifest = |f: &str| {
        let name = f.rsplit('/').next().unwrap_or(f);
        name.starts_with("channel-rust-") && name.ends_with(".toml")
    };
    for f in files.iter().filter(|f| is_manifest(f)) {
        let path = dir.join(f);
        let result = crate::limit::read_file(&path, crate::limit::CHANNEL_MANIFEST)
            .with_context(|| format!("{f}: cannot read"))
            .and_then(|bytes| {
                let m = Manifest::parse(&bytes, f)?;
                verify_local(&path, Some(Sha256Digest::of(&bytes)), keyring, mode, &quiet)?;
                let rel = f.strip_prefix("dist/").unwrap_or(f);
                manifest::check_name(rel, &m)?;
                if let Some(published) = manifest::read_published(&root.join(f)) {
                    manifest::check_forward(rel, &m, &published)?;
                }
                // A dateless copy comes with the manifest it copies, whose
                // files clients will ask for.
                let dated = format!("dist/{}/{}", m.date, m.channel().manifest_name());
                if !rel.contains('/')
                    && !names.contains(dated.as_str())
                    && !root.join(&dated).is_file()
                {
                    bail!(
                        "{f}: its dated manifest {dated} is neither in the archive nor in the tree"
                    );
                }
                Ok(m)
            });
        match result {
            Ok(m) => {
                if f.starts_with(&format!("dist/{}/", m.date)) {
                    dated += 1;
                    for pf in m.all_files() {
                        hashes.insert(format!("dist/{}", pf.rel), pf.hash);
                    }
                }
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    for f in files {
        for ext in [".sha256", ".asc"] {
            if let Some(main) = f.strip_suffix(ext) {
                if !names.contains(main) {
                    failures.push(format!("{f}: no {main} beside it"));
                }
            }
        }
    }
    let others: Vec<&String> = files
        .iter()
        .filter(|f| !f.ends_with(".sha256") && !f.ends_with(".asc") && !is_manifest(f))
        .collect();
    let results: Vec<String> = others
        .par_iter()
        .filter_map(|f| {
            let Some(hash) = hashes.get(f.as_str()) else {
                return Some(format!(
                    "{f}: not referenced by any channel manifest in the archive"
                ));
            };
            if !names.contains(format!("{f}.sha256").as_str()) {
                return Some(format!("{f}: no {f}.sha256 beside it"));
            }
            verify_local(&dir.join(f), Some(*hash), keyring, mode, &quiet)
                .err()
                .map(|e| format!("{e:#}"))
        })
        .collect();
    failures.extend(results);
    // An archive holding nothing (an increment, perhaps only removals) is
    // judged after the unpack.
    if dated == 0 && !files.is_empty() && failures.is_empty() {
        failures.push(
            "the archive holds no dated channel manifest (dist/<date>/channel-rust-<channel>.toml)"
                .to_string(),
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let prefix = format!("{}/", dir.display());
        Err(failures.join("\n").replace(&prefix, ""))
    }
}

/// Check a local file: its `.sha256`, the expected hash, its `.asc`.
fn verify_local(
    path: &Path,
    expected: Option<Sha256Digest>,
    keyring: &Keyring,
    mode: SignatureMode,
    reporter: &dyn Reporter,
) -> Result<()> {
    let sidecar = sibling(path, ".sha256");
    let text = crate::limit::read_file(&sidecar, crate::limit::COMPANION)
        .with_context(|| format!("{}: missing", sidecar.display()))?;
    let from_sidecar = parse_sidecar(&text, &sidecar.display().to_string())?;
    let (actual, _) =
        hash_file(path).with_context(|| format!("{}: cannot read", path.display()))?;
    for want in [Some(from_sidecar), expected].into_iter().flatten() {
        if want != actual {
            return Err(DigestMismatch::new(path.display().to_string(), want, actual).into());
        }
    }
    let asc_path = sibling(path, ".asc");
    match (mode, read_optional(&asc_path)?) {
        (SignatureMode::Off, _) => {}
        (SignatureMode::Warn, None) => reporter.warn(&format!(
            "{}: no signature ({} is missing)",
            path.display(),
            asc_path.display()
        )),
        (SignatureMode::Require, None) => bail!(
            "{}: no signature: {} is missing",
            path.display(),
            asc_path.display()
        ),
        (_, Some(sig)) => {
            verify_file(keyring, path, &sig)?;
        }
    }
    reporter.verbose(&format!("[verified] {}", path.display()));
    Ok(())
}

/// Write a manifest copy: its `.asc` (when given), the `.toml`, then its
/// `.sha256` (named after the copy). Unchanged files are left alone.
fn write_copy(path: &Path, bytes: &[u8], asc: Option<&[u8]>) -> Result<()> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let digest = Sha256Digest::of(bytes);
    let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    match asc {
        Some(asc) => writes.push((sibling(path, ".asc"), asc.to_vec())),
        None => {
            // A signature of an older manifest must not stay beside this one.
            let stale = sibling(path, ".asc");
            if stale.exists() {
                fs::remove_file(&stale)
                    .with_context(|| format!("cannot remove {}", stale.display()))?;
            }
        }
    }
    writes.push((path.to_path_buf(), bytes.to_vec()));
    writes.push((
        sibling(path, ".sha256"),
        format_sidecar(&digest, &name).into_bytes(),
    ));
    for (p, data) in writes {
        if read_optional(&p)?.as_deref() == Some(&data[..]) {
            continue;
        }
        store::write_atomic(&p, &data).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `file` + `suffix` (`x.tar.xz` → `x.tar.xz.sha256`).
fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_need_a_manifest_and_sidecars_need_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dist/2026-01-01");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("rustc-1.0.0-x.tar.xz"), b"x").unwrap();
        fs::write(d.join("rustc-1.0.0-x.tar.xz.sha256"), b"x").unwrap();
        fs::write(d.join("gone.tar.xz.asc"), b"x").unwrap();
        let files: Vec<String> = [
            "dist/2026-01-01/rustc-1.0.0-x.tar.xz",
            "dist/2026-01-01/rustc-1.0.0-x.tar.xz.sha256",
            "dist/2026-01-01/gone.tar.xz.asc",
        ]
        .map(String::from)
        .to_vec();
        let e = check_staged(
            dir.path(),
            dir.path(),
            &files,
            &Keyring::new(),
            SignatureMode::Off,
        )
        .unwrap_err();
        assert!(
            e.contains("rustc-1.0.0-x.tar.xz: not referenced by any channel manifest"),
            "{e}"
        );
        assert!(
            e.contains("gone.tar.xz.asc: no dist/2026-01-01/gone.tar.xz beside it"),
            "{e}"
        );
        assert!(!e.contains(&dir.path().display().to_string()), "{e}");
    }

    #[test]
    fn specs_parse() {
        assert_eq!(
            Spec::parse("stable").unwrap(),
            Spec::Channel(Channel::Stable)
        );
        assert_eq!(
            Spec::parse("1.99.1").unwrap(),
            Spec::Version(Version(1, 99, 1))
        );
        assert_eq!(
            Spec::parse("beta-2026-10-01").unwrap(),
            Spec::Dated(Channel::Beta, "2026-10-01".into())
        );
        assert_eq!(
            Spec::parse("2026-10-01").unwrap(),
            Spec::Dated(Channel::Nightly, "2026-10-01".into())
        );
        assert_eq!(Spec::parse("*").unwrap(), Spec::All);
        let e = Spec::parse("stabel").unwrap_err().to_string();
        assert!(e.contains("stabel") && e.contains("X.Y.Z"), "{e}");
    }
}
