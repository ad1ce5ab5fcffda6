//! Channel manifests (`channel-rust-<channel>.toml`, manifest version 2).
//!
//! The wire format ([`wire`]) is what upstream writes; [`Manifest::parse`]
//! validates it into the domain types below. Unknown tables and keys
//! (`[artifacts]`, `zst_url` …) are tolerated and ignored: the manifest file
//! itself is always kept byte for byte, since its signature covers the
//! bytes.
//!
//! ```toml
//! manifest-version = "2"
//! date = "2026-10-15"
//! [pkg.rustc]
//! version = "1.99.1 (abcdef012 2026-10-12)"
//! [pkg.rustc.target.x86_64-unknown-linux-gnu]
//! available = true
//! url = "https://static.rust-lang.org/dist/2026-10-15/rustc-1.99.1-x86_64-unknown-linux-gnu.tar.gz"
//! hash = "<sha256>"
//! xz_url = "…tar.xz"
//! xz_hash = "<sha256>"
//! [pkg.rust.target.x86_64-unknown-linux-gnu]
//! components = [{ pkg = "rustc", target = "x86_64-unknown-linux-gnu" }]
//! extensions = [{ pkg = "rust-src", target = "*" }]
//! [renames.clippy]
//! to = "clippy-preview"
//! [profiles]
//! minimal = ["rustc", "cargo", "rust-std", "rust-mingw"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};

use crate::eco::{is_valid_target, Version};
use crate::verify::digest::Sha256Digest;

/// The upstream wire format, as deserialized.
pub mod wire {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    /// A whole manifest.
    #[derive(Debug, Deserialize)]
    pub struct Manifest {
        /// Must be `"2"`.
        #[serde(rename = "manifest-version")]
        pub manifest_version: String,
        /// `YYYY-MM-DD`.
        pub date: String,
        /// Packages by name.
        #[serde(default)]
        pub pkg: BTreeMap<String, Package>,
        /// Old name → new name.
        #[serde(default)]
        pub renames: BTreeMap<String, Rename>,
        /// Profile name → package names.
        #[serde(default)]
        pub profiles: BTreeMap<String, Vec<String>>,
    }

    /// `[pkg.<name>]`.
    #[derive(Debug, Deserialize)]
    pub struct Package {
        /// `1.99.1 (hash date)`.
        pub version: String,
        /// Per target triple (or `*`).
        #[serde(default)]
        pub target: BTreeMap<String, Target>,
    }

    /// `[pkg.<name>.target.<triple>]`.
    #[derive(Debug, Deserialize)]
    pub struct Target {
        /// Whether the files exist.
        pub available: bool,
        /// `.tar.gz` URL.
        pub url: Option<String>,
        /// Its SHA-256.
        pub hash: Option<String>,
        /// `.tar.xz` URL.
        pub xz_url: Option<String>,
        /// Its SHA-256.
        pub xz_hash: Option<String>,
        /// Required components (only in `pkg.rust`).
        #[serde(default)]
        pub components: Vec<Component>,
        /// Optional components (only in `pkg.rust`).
        #[serde(default)]
        pub extensions: Vec<Component>,
    }

    /// `{ pkg = "rustc", target = "x86_64-unknown-linux-gnu" }`.
    #[derive(Debug, Deserialize)]
    pub struct Component {
        /// Package name.
        pub pkg: String,
        /// Target triple or `*`.
        pub target: String,
    }

    /// `[renames.<old>]`.
    #[derive(Debug, Deserialize)]
    pub struct Rename {
        /// The new name.
        pub to: String,
    }
}

/// The release channel of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// `stable` (version `X.Y.Z`).
    Stable,
    /// `beta` (version `X.Y.Z-beta.N`).
    Beta,
    /// `nightly` (version `X.Y.Z-nightly`).
    Nightly,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Stable, Channel::Beta, Channel::Nightly];

    /// `stable`, `beta` or `nightly`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
            Channel::Nightly => "nightly",
        }
    }

    /// Parse a channel name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == s)
    }

    /// `channel-rust-<channel>.toml`.
    pub fn manifest_name(self) -> String {
        format!("channel-rust-{}.toml", self.name())
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A downloadable file of a package target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The URL in the manifest.
    pub url: String,
    /// Path below the dist root: `<date>/<file>`.
    pub rel: String,
    /// Its SHA-256.
    pub hash: Sha256Digest,
}

impl Artifact {
    /// The file name.
    pub fn file_name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or(&self.rel)
    }
}

/// Compression formats of package files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `.tar.gz` (`url`/`hash`).
    Gz,
    /// `.tar.xz` (`xz_url`/`xz_hash`).
    Xz,
}

impl Format {
    /// Parse `gz` or `xz`.
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "gz" => Ok(Format::Gz),
            "xz" => Ok(Format::Xz),
            other => bail!("invalid format {other:?}: expected gz or xz"),
        }
    }
}

/// `pkg.<name>.target.<triple>`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Whether upstream has the files.
    pub available: bool,
    /// The `.tar.gz`.
    pub gz: Option<Artifact>,
    /// The `.tar.xz`.
    pub xz: Option<Artifact>,
    /// Required components `(pkg, target)` (only in `pkg.rust`).
    pub components: Vec<(String, String)>,
    /// Optional components (only in `pkg.rust`).
    pub extensions: Vec<(String, String)>,
}

impl Target {
    /// The artifact of a format.
    pub fn artifact(&self, format: Format) -> Option<&Artifact> {
        match format {
            Format::Gz => self.gz.as_ref(),
            Format::Xz => self.xz.as_ref(),
        }
    }
}

/// `pkg.<name>`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The full version string.
    pub version: String,
    /// By target triple (or `*`).
    pub targets: BTreeMap<String, Target>,
}

/// A validated channel manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `YYYY-MM-DD`: the dated directory holding the files.
    pub date: String,
    /// Packages by name.
    pub pkgs: BTreeMap<String, Package>,
    /// Old name → new name.
    pub renames: BTreeMap<String, String>,
    /// Profile → package names.
    pub profiles: BTreeMap<String, Vec<String>>,
}

/// Whether `s` is a date `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// One file a selection wants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedFile {
    /// Package.
    pub pkg: String,
    /// Target (or `*`).
    pub target: String,
    /// `<date>/<file>` below the dist root.
    pub rel: String,
    /// Manifest URL of the file.
    pub url: String,
    /// Its SHA-256.
    pub hash: Sha256Digest,
}

/// What to select from a manifest.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Host targets (already expanded; `*` = every target).
    pub targets: Vec<String>,
    /// Extra targets for which only `rust-std` is wanted.
    pub cross: Vec<String>,
    /// `rust-src`, `!rust-docs`: added and removed names.
    pub components: Vec<String>,
    /// A profile name.
    pub profile: Option<String>,
    /// Formats (default: xz only).
    pub formats: Vec<Format>,
}

impl Manifest {
    /// Parse and validate; `origin` names the file or URL in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Manifest> {
        let text = std::str::from_utf8(bytes)
            .with_context(|| format!("{origin}: expected a UTF-8 TOML channel manifest"))?;
        let wire: wire::Manifest = toml::from_str(text)
            .with_context(|| format!("{origin}: not a valid channel manifest"))?;
        Manifest::validate(wire, origin)
    }

    /// Validate the wire form.
    pub fn validate(wire: wire::Manifest, origin: &str) -> Result<Manifest> {
        if wire.manifest_version != "2" {
            bail!(
                "{origin}: expected manifest-version \"2\", found {:?}",
                wire.manifest_version
            );
        }
        if !is_date(&wire.date) {
            bail!("{origin}: expected date YYYY-MM-DD, found {:?}", wire.date);
        }
        let mut pkgs = BTreeMap::new();
        for (name, p) in wire.pkg {
            if !is_plain_name(&name) {
                bail!("{origin}: invalid package name {name:?}");
            }
            let mut targets = BTreeMap::new();
            for (triple, t) in p.target {
                if triple != "*" && !is_valid_target(&triple) {
                    bail!("{origin}: package {name}: invalid target {triple:?}");
                }
                let what = format!("{origin}: pkg.{name}.target.{triple}");
                let artifact = |url: Option<String>, hash: Option<String>, key: &str| {
                    artifact(url, hash, &wire.date, &format!("{what}.{key}"))
                };
                let gz = if t.available {
                    artifact(t.url, t.hash, "url")?
                } else {
                    None
                };
                let xz = if t.available {
                    artifact(t.xz_url, t.xz_hash, "xz_url")?
                } else {
                    None
                };
                let pairs = |v: Vec<wire::Component>| -> Vec<(String, String)> {
                    v.into_iter().map(|c| (c.pkg, c.target)).collect()
                };
                targets.insert(
                    triple,
                    Target {
                        available: t.available,
                        gz,
                        xz,
                        components: pairs(t.components),
                        extensions: pairs(t.extensions),
                    },
                );
            }
            pkgs.insert(
                name,
                Package {
                    version: p.version,
                    targets,
                },
            );
        }
        if !pkgs.contains_key("rust") {
            bail!("{origin}: no [pkg.rust] table: not a channel manifest");
        }
        Ok(Manifest {
            date: wire.date,
            pkgs,
            renames: wire.renames.into_iter().map(|(k, v)| (k, v.to)).collect(),
            profiles: wire.profiles,
        })
    }

    /// The version of `pkg.rust`: `1.99.1 (abc 2026-10-12)`.
    pub fn rust_version_string(&self) -> &str {
        self.pkgs
            .get("rust")
            .map(|p| p.version.as_str())
            .unwrap_or("")
    }

    /// The release `X.Y.Z` of `pkg.rust` (also for beta and nightly).
    pub fn release(&self) -> Option<Version> {
        let first = self.rust_version_string().split_whitespace().next()?;
        Version::parse(first.split('-').next()?)
    }

    /// The channel, from `pkg.rust`'s version: `-beta` and `-nightly`
    /// suffixes, stable otherwise.
    pub fn channel(&self) -> Channel {
        let first = self
            .rust_version_string()
            .split_whitespace()
            .next()
            .unwrap_or("");
        if first.contains("-beta") {
            Channel::Beta
        } else if first.contains("-nightly") || first.contains("-dev") {
            Channel::Nightly
        } else {
            Channel::Stable
        }
    }

    /// Every target triple named by any package (not `*`).
    pub fn all_targets(&self) -> BTreeSet<String> {
        self.pkgs
            .values()
            .flat_map(|p| p.targets.keys())
            .filter(|t| t.as_str() != "*")
            .cloned()
            .collect()
    }

    /// Every package name.
    pub fn all_components(&self) -> Vec<String> {
        self.pkgs.keys().cloned().collect()
    }

    /// Every available `(pkg, target)` pair.
    pub fn available(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, p) in &self.pkgs {
            for (t, target) in &p.targets {
                if target.available {
                    out.push((name.clone(), t.clone()));
                }
            }
        }
        out
    }

    /// Every file the manifest references, in every format.
    pub fn all_files(&self) -> Vec<PlannedFile> {
        let mut out = Vec::new();
        for (name, p) in &self.pkgs {
            for (t, target) in &p.targets {
                for a in [&target.gz, &target.xz].into_iter().flatten() {
                    out.push(PlannedFile {
                        pkg: name.clone(),
                        target: t.clone(),
                        rel: a.rel.clone(),
                        url: a.url.clone(),
                        hash: a.hash,
                    });
                }
            }
        }
        out.sort();
        out
    }

    /// The current name of a component (`clippy` → `clippy-preview`).
    pub fn canonical_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames.get(name).map(String::as_str).unwrap_or(name)
    }

    /// The files a selection wants. Without profile or components: every
    /// package of the targets except the combined `rust` installer (which
    /// rustup never uses). With a profile: the profile's packages that
    /// `pkg.rust` offers for each target. Components add (`name`) or remove
    /// (`!name`) packages; a positive name without profile starts from the
    /// required components. `cross` adds `rust-std` of more targets.
    pub fn select(&self, sel: &Selection) -> Result<Vec<PlannedFile>> {
        let formats: Vec<Format> = if sel.formats.is_empty() {
            vec![Format::Xz]
        } else {
            sel.formats.clone()
        };
        let mut add = BTreeSet::new();
        let mut remove = BTreeSet::new();
        for c in &sel.components {
            match c.strip_prefix('!') {
                Some(n) => remove.insert(self.canonical_name(n).to_string()),
                None => add.insert(self.canonical_name(c).to_string()),
            };
        }
        for name in add.iter().chain(&remove) {
            if !self.pkgs.contains_key(name) {
                let known = self
                    .pkgs
                    .keys()
                    .chain(self.renames.keys())
                    .map(String::as_str);
                bail!(
                    "{} in the {} manifest of {} (see all-components)",
                    crate::suggest::unknown("component", name, known),
                    self.channel(),
                    self.date
                );
            }
        }
        let profile: Option<BTreeSet<String>> = match &sel.profile {
            None => None,
            Some(p) => Some(
                self.profiles
                    .get(p)
                    .with_context(|| {
                        format!(
                            "the manifest of {} has no profile {p:?} (it has: {})",
                            self.date,
                            self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    })?
                    .iter()
                    .map(|n| self.canonical_name(n).to_string())
                    .collect(),
            ),
        };
        let all_targets = sel.targets.iter().any(|t| t == "*");
        let hosts: Vec<String> = if all_targets {
            self.all_targets().into_iter().collect()
        } else {
            sel.targets.clone()
        };

        let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
        for host in &hosts {
            let rust = self
                .pkgs
                .get("rust")
                .and_then(|p| p.targets.get(host.as_str()));
            let offered: Vec<(String, String)> = rust
                .map(|r| r.components.iter().chain(&r.extensions).cloned().collect())
                .unwrap_or_default();
            let base: Vec<(String, String)> = if let Some(profile) = &profile {
                offered
                    .iter()
                    .filter(|(p, t)| profile.contains(p) && (t == host || t == "*"))
                    .cloned()
                    .collect()
            } else if !add.is_empty() {
                rust.map(|r| r.components.clone()).unwrap_or_default()
            } else {
                self.pkgs
                    .iter()
                    .filter(|(name, _)| name.as_str() != "rust")
                    .flat_map(|(name, p)| {
                        p.targets
                            .keys()
                            .filter(|t| *t == host || t.as_str() == "*")
                            .map(move |t| (name.clone(), t.clone()))
                    })
                    .collect()
            };
            pairs.extend(base);
            for name in &add {
                let p = &self.pkgs[name];
                for t in [host.as_str(), "*"] {
                    if p.targets.contains_key(t) {
                        pairs.insert((name.clone(), t.to_string()));
                    }
                }
            }
        }
        let cross: Vec<String> = if sel.cross.iter().any(|t| t == "*") {
            self.all_targets().into_iter().collect()
        } else {
            sel.cross.clone()
        };
        for t in cross {
            pairs.insert(("rust-std".to_string(), t));
        }
        pairs.retain(|(p, _)| !remove.contains(p));

        let mut out = Vec::new();
        for (pkg, t) in pairs {
            let Some(target) = self.pkgs.get(&pkg).and_then(|p| p.targets.get(&t)) else {
                continue;
            };
            if !target.available {
                continue;
            }
            for &f in &formats {
                if let Some(a) = target.artifact(f) {
                    out.push(PlannedFile {
                        pkg: pkg.clone(),
                        target: t.clone(),
                        rel: a.rel.clone(),
                        url: a.url.clone(),
                        hash: a.hash,
                    });
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.rel == b.rel);
        Ok(out)
    }
}

/// Check that a manifest file holds what its name says. `rel` is its
/// path below `dist/`: `[<date>/]channel-rust-<name>.toml`. A dated
/// directory must be the manifest's `date`; `<name>` `stable`, `beta` or
/// `nightly` must be its channel; `X.Y.Z` and `X.Y` a stable release of
/// that version; `X.Y.Z-beta[.N]` a beta of that release.
pub fn check_name(rel: &str, m: &Manifest) -> Result<()> {
    let (dir, file) = match rel.rsplit_once('/') {
        Some((dir, file)) => (Some(dir), file),
        None => (None, rel),
    };
    if let Some(dir) = dir {
        if dir != m.date {
            bail!(
                "dist/{rel}: expected a manifest dated {dir} (its directory), found one dated {}",
                m.date
            );
        }
    }
    let label = m
        .rust_version_string()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let found = || format!("{} {label} of {}", m.channel(), m.date);
    let Some(name) = file
        .strip_prefix("channel-rust-")
        .and_then(|n| n.strip_suffix(".toml"))
    else {
        bail!("dist/{rel}: not a channel manifest name (expected channel-rust-<channel>.toml)");
    };
    let ok = if let Some(c) = Channel::parse(name) {
        m.channel() == c
    } else if let Some(v) = Version::parse(name) {
        m.channel() == Channel::Stable && m.release() == Some(v)
    } else if let Some(v) =
        Version::parse(&format!("{name}.0")).filter(|_| name.matches('.').count() == 1)
    {
        m.channel() == Channel::Stable && m.release().is_some_and(|r| (r.0, r.1) == (v.0, v.1))
    } else if let Some((v, n)) = name.split_once("-beta") {
        let v = Version::parse(v)
            .filter(|_| n.is_empty() || n.strip_prefix('.').is_some_and(|n| n.parse::<u64>().is_ok()))
            .with_context(|| {
                format!("dist/{rel}: not a channel manifest name (expected channel-rust-<stable|beta|nightly|X.Y.Z|X.Y|X.Y.Z-beta[.N]>.toml)")
            })?;
        m.channel() == Channel::Beta
            && m.release() == Some(v)
            && (n.is_empty() || label == format!("{v}-beta{n}"))
    } else {
        bail!(
            "dist/{rel}: not a channel manifest name (expected channel-rust-<stable|beta|nightly|X.Y.Z|X.Y|X.Y.Z-beta[.N]>.toml)"
        );
    };
    if !ok {
        bail!(
            "dist/{rel}: the name promises {name}, but the manifest is {}",
            found()
        );
    }
    Ok(())
}

/// Refuse a manifest older than the one published under the same name:
/// a channel manifest only moves forward (by its `date`).
pub fn check_forward(rel: &str, new: &Manifest, published: &Manifest) -> Result<()> {
    if new.date < published.date {
        bail!(
            "dist/{rel}: the manifest offered is dated {}, older than the published one dated {} \
             ({} stays published)",
            new.date,
            published.date,
            published.rust_version_string()
        );
    }
    Ok(())
}

/// The published manifest at `path` (below `dist/` as `rel`), when there
/// is one that parses.
pub fn read_published(path: &std::path::Path) -> Option<Manifest> {
    let bytes = crate::limit::read_file(path, crate::limit::CHANNEL_MANIFEST).ok()?;
    Manifest::parse(&bytes, &path.display().to_string()).ok()
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// An artifact from its URL and hash. The URL's path must end in
/// `/dist/<date>/<file>` (the layout every dist server uses); the relative
/// path `<date>/<file>` is where the file lives in the mirror.
fn artifact(
    url: Option<String>,
    hash: Option<String>,
    date: &str,
    what: &str,
) -> Result<Option<Artifact>> {
    let (url, hash) = match (url, hash) {
        (None, None) => return Ok(None),
        (Some(u), Some(h)) => (u, h),
        _ => bail!("{what}: a URL needs its hash and a hash its URL"),
    };
    let hash: Sha256Digest = hash.parse().map_err(|_| {
        anyhow::anyhow!("{what}: expected a SHA-256 hash (64 hex digits), found {hash:?}")
    })?;
    let rel = rel_path(&url).with_context(|| {
        format!("{what}: expected a URL ending in /dist/<date>/<file>, found {url:?}")
    })?;
    if !rel.starts_with(&format!("{date}/")) {
        // Upstream always keeps files in the manifest's own dated
        // directory; anything else would escape the layout.
        bail!("{what}: expected a file under dist/{date}/, found {url:?}");
    }
    Ok(Some(Artifact { url, rel, hash }))
}

/// `<date>/<file>` from `…/dist/<date>/<file>`.
pub fn rel_path(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let (_, rest) = path.rsplit_once("/dist/")?;
    let (date, file) = rest.split_once('/')?;
    if !is_date(date) || !is_plain_name(file) || file.contains('/') {
        return None;
    }
    Some(format!("{date}/{file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../fixtures/dist/channel-rust-stable-trimmed.toml");

    #[test]
    fn trimmed_real_manifest_parses() {
        let m = Manifest::parse(SAMPLE.as_bytes(), "sample").unwrap();
        assert_eq!(m.channel(), Channel::Stable);
        assert!(m.release().is_some());
        assert!(m.all_targets().contains("x86_64-unknown-linux-gnu"));
        assert_eq!(m.canonical_name("clippy"), "clippy-preview");
        assert!(m.profiles.contains_key("minimal"));
        let files = m
            .select(&Selection {
                targets: vec!["x86_64-unknown-linux-gnu".into()],
                profile: Some("minimal".into()),
                ..Selection::default()
            })
            .unwrap();
        let pkgs: BTreeSet<&str> = files.iter().map(|f| f.pkg.as_str()).collect();
        assert_eq!(
            pkgs,
            ["cargo", "rust-std", "rustc"]
                .into_iter()
                .collect::<BTreeSet<_>>()
        );
        assert!(files.iter().all(|f| f.rel.ends_with(".tar.xz")));
        assert!(files
            .iter()
            .all(|f| f.rel.starts_with(&format!("{}/", m.date))));
        // Tables clients ignore are tolerated.
        let more = format!(
            "{SAMPLE}\n[artifacts.source-code]\n[[artifacts.source-code.target.\"*\"]]\nurl = \"u\"\nhash-sha256 = \"h\"\n"
        );
        assert_eq!(Manifest::parse(more.as_bytes(), "more").unwrap(), m);
    }

    #[test]
    fn components_cross_and_formats() {
        let m = Manifest::parse(SAMPLE.as_bytes(), "sample").unwrap();
        let files = m
            .select(&Selection {
                targets: vec!["x86_64-unknown-linux-gnu".into()],
                cross: vec!["wasm32-unknown-unknown".into()],
                components: vec!["rust-src".into(), "!cargo".into()],
                profile: Some("minimal".into()),
                formats: vec![Format::Gz, Format::Xz],
            })
            .unwrap();
        let every_std = m
            .select(&Selection {
                targets: vec!["x86_64-unknown-linux-gnu".into()],
                cross: vec!["*".into()],
                profile: Some("minimal".into()),
                ..Selection::default()
            })
            .unwrap()
            .iter()
            .filter(|f| f.pkg == "rust-std")
            .count();
        assert_eq!(
            every_std,
            m.pkgs["rust-std"]
                .targets
                .values()
                .filter(|t| t.available)
                .count()
        );
        let names: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert!(names
            .iter()
            .any(|n| n.contains("rust-src-") && n.ends_with(".tar.gz")));
        assert!(names
            .iter()
            .any(|n| n.contains("rust-std-") && n.contains("wasm32")));
        assert!(!names.iter().any(|n| n.contains("/cargo-")));
        let e = m
            .select(&Selection {
                components: vec!["nonesuch".into()],
                ..Selection::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("nonesuch"), "{e}");
    }

    #[test]
    fn bad_manifests_are_named() {
        let e = Manifest::parse(
            b"manifest-version = \"1\"\ndate = \"2026-01-01\"",
            "u/x.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("u/x.toml"), "{e:#}");
        let bad_url = SAMPLE.replacen("/dist/", "/elsewhere/", 1);
        let e = Manifest::parse(bad_url.as_bytes(), "u/y.toml").unwrap_err();
        assert!(format!("{e:#}").contains("/dist/<date>/<file>"), "{e:#}");
    }

    #[test]
    fn names_are_checked_against_contents() {
        let m = Manifest::parse(SAMPLE.as_bytes(), "sample").unwrap();
        let v = m.release().unwrap();
        let d = m.date.clone();
        for good in [
            "channel-rust-stable.toml".to_string(),
            format!("{d}/channel-rust-stable.toml"),
            format!("channel-rust-{v}.toml"),
            format!("channel-rust-{}.{}.toml", v.0, v.1),
            format!("{d}/channel-rust-{v}.toml"),
        ] {
            check_name(&good, &m).unwrap_or_else(|e| panic!("{good}: {e:#}"));
        }
        for bad in [
            "channel-rust-beta.toml".to_string(),
            "channel-rust-nightly.toml".to_string(),
            "2000-01-01/channel-rust-stable.toml".to_string(),
            format!("channel-rust-{}.{}.{}.toml", v.0, v.1, v.2 + 1),
            format!("channel-rust-{}.{}.toml", v.0, v.1 + 1),
            format!("channel-rust-{v}-beta.toml"),
            "channel-rust-stabel.toml".to_string(),
            "channel-rust-1.2.3-betaX.toml".to_string(),
            format!("{d}/x/channel-rust-stable.toml"),
        ] {
            let e = check_name(&bad, &m).expect_err(&bad);
            assert!(format!("{e:#}").contains(&format!("dist/{bad}")), "{e:#}");
        }
        let beta = SAMPLE.replace(
            &format!("version = \"{v} "),
            &format!("version = \"{v}-beta.3 "),
        );
        let b = Manifest::parse(beta.as_bytes(), "beta").unwrap();
        assert_eq!(b.channel(), Channel::Beta);
        check_name("channel-rust-beta.toml", &b).unwrap();
        check_name(&format!("channel-rust-{v}-beta.toml"), &b).unwrap();
        check_name(&format!("channel-rust-{v}-beta.3.toml"), &b).unwrap();
        check_name(&format!("channel-rust-{v}-beta.2.toml"), &b).unwrap_err();
        check_name("channel-rust-stable.toml", &b).unwrap_err();
    }

    #[test]
    fn manifests_only_move_forward() {
        let m = Manifest::parse(SAMPLE.as_bytes(), "sample").unwrap();
        let mut older = m.clone();
        older.date = "2000-01-01".into();
        check_forward("channel-rust-stable.toml", &m, &older).unwrap();
        check_forward("channel-rust-stable.toml", &m, &m).unwrap();
        let e = check_forward("channel-rust-stable.toml", &older, &m).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("2000-01-01") && e.contains(&m.date), "{e}");
    }

    #[test]
    fn rel_paths_and_dates() {
        assert_eq!(
            rel_path("https://static.rust-lang.org/dist/2026-10-15/rustc-1.99.1-x.tar.xz")
                .as_deref(),
            Some("2026-10-15/rustc-1.99.1-x.tar.xz")
        );
        assert_eq!(rel_path("https://x/dist/2026-10-15/../a"), None);
        assert_eq!(rel_path("https://x/dist/latest/a"), None);
        assert!(is_date("2026-10-15"));
        assert!(!is_date("2026-1-15"));
    }
}
