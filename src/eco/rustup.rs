//! rustup itself: `rustup-init` binaries for chosen versions and targets.
//!
//! Upstream (`--url`, default `https://static.rust-lang.org/rustup`) and
//! the mirror tree share one layout (romt's):
//!
//! ```text
//! rustup/
//!   release-stable.toml                       schema-version = '1', version = 'X.Y.Z'
//!   archive/<X.Y.Z>/<triple>/rustup-init[.exe]
//!   archive/<X.Y.Z>/<triple>/rustup-init[.exe].sha256
//!   dist/<triple>/rustup-init[.exe](.sha256)  copy of archive/<newest>/ (fixup)
//! ```
//!
//! Clients: `RUSTUP_UPDATE_ROOT=http://host:port/rustup` makes
//! `rustup self update` read `release-stable.toml`, then
//! `archive/<ver>/<triple>/rustup-init`; `rustup-init.sh` fetches
//! `dist/<triple>/rustup-init`.
//!
//! Publication order: binaries and their `.sha256` first (each verified
//! before it is renamed into place), then `dist/`, and `release-stable.toml`
//! last, so a client never sees a version whose files are missing.
//!
//! Increments, as Hex and Arch have them: `mark` records a time in
//! `.mirror/state.json` ([`crate::eco::set_time_mark`]); `pack` carries
//! each `rustup-init` of SPEC and TARGET written since (with its
//! `.sha256`), `--start 0` all of them; `export` is `download pack mark`.
//! `unpack` takes archives in order ([`crate::eco::continuity`]).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::bundle;
use crate::eco::toolchain::retain::RetainEntry;
use crate::eco::{expand_target_alias, is_valid_target, sort_versions_desc, Version};
use crate::fetch::{Engine, FetchError, FetchItem};
use crate::report::Reporter;
use crate::store;
use crate::verify::digest::{format_sidecar, hash_file, parse_sidecar, Sha256Digest};

/// The official upstream.
pub const DEFAULT_URL: &str = "https://static.rust-lang.org/rustup";

/// The default archive name for `pack`/`unpack`.
pub const DEFAULT_ARCHIVE: &str = "rustup.tar.gz";

/// The ecosystem name in bundles and state.
pub const ECOSYSTEM: &str = "rustup";

/// Whether `path` (relative to the root) is a versioned file, one whose
/// bytes never change once published: the `rustup-init` of a release,
/// `rustup/archive/<version>/<triple>/rustup-init[.exe]`.
pub fn is_versioned(path: &str) -> bool {
    matches!(
        path.split('/').collect::<Vec<_>>()[..],
        ["rustup", "archive", _, _, "rustup-init" | "rustup-init.exe"]
    )
}

/// Targets rustup-init is published for (others are allowed with a warning).
pub const ALL_KNOWN_TARGETS: &[&str] = &[
    "aarch64-apple-darwin",
    "aarch64-linux-android",
    "aarch64-pc-windows-msvc",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "arm-linux-androideabi",
    "arm-unknown-linux-gnueabi",
    "arm-unknown-linux-gnueabihf",
    "armv7-linux-androideabi",
    "armv7-unknown-linux-gnueabihf",
    "i686-apple-darwin",
    "i686-linux-android",
    "i686-pc-windows-gnu",
    "i686-pc-windows-msvc",
    "i686-unknown-linux-gnu",
    "loongarch64-unknown-linux-gnu",
    "mips-unknown-linux-gnu",
    "mips64-unknown-linux-gnuabi64",
    "mips64el-unknown-linux-gnuabi64",
    "mipsel-unknown-linux-gnu",
    "powerpc-unknown-linux-gnu",
    "powerpc64-unknown-linux-gnu",
    "powerpc64le-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-linux-android",
    "x86_64-pc-windows-gnu",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-freebsd",
    "x86_64-unknown-illumos",
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "x86_64-unknown-netbsd",
];

/// What `-s/--select` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// The version named by upstream's (or, locally, our)
    /// `release-stable.toml`.
    Stable,
    /// The newest version present locally.
    Latest,
    /// Every version present locally.
    All,
    /// One version.
    Version(Version),
}

impl Spec {
    /// Parse a SPEC: `stable`, `latest`, `*` or `X.Y.Z`.
    pub fn parse(s: &str) -> Result<Spec> {
        Ok(match s {
            "stable" => Spec::Stable,
            "latest" => Spec::Latest,
            "*" => Spec::All,
            v => Spec::Version(Version::parse(v).with_context(|| {
                format!("invalid SPEC {v:?}: expected stable, latest, * or a version X.Y.Z")
            })?),
        })
    }
}

/// The rustup part of a mirror tree.
pub struct Rustup {
    root: PathBuf,
    url: String,
}

impl Rustup {
    /// `root` is the mirror root (holding `rustup/`); `url` the upstream.
    pub fn new(root: &Path, url: &str) -> Rustup {
        Rustup {
            root: root.to_path_buf(),
            url: url.trim_end_matches('/').to_string(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("rustup")
    }

    fn release_stable_path(&self) -> PathBuf {
        self.dir().join("release-stable.toml")
    }

    /// `archive/<version>/<target>/rustup-init[.exe]`, relative to `rustup/`.
    pub fn init_rel_path(version: Version, target: &str) -> String {
        format!("archive/{version}/{target}/{}", init_name(target))
    }

    /// The version in the local `release-stable.toml`, if any.
    pub fn local_stable(&self) -> Result<Option<Version>> {
        let path = self.release_stable_path();
        match fs::read(&path) {
            Ok(bytes) => parse_release_stable(&bytes, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Versions present under `archive/`, newest first.
    pub fn local_versions(&self) -> Result<Vec<Version>> {
        let mut names = list_dirs(&self.dir().join("archive"))?;
        sort_versions_desc(&mut names);
        Ok(names.iter().filter_map(|n| Version::parse(n)).collect())
    }

    /// Targets present for a version.
    pub fn local_targets(&self, version: Version) -> Result<Vec<String>> {
        let mut t = list_dirs(&self.dir().join("archive").join(version.to_string()))?;
        t.sort();
        Ok(t)
    }

    /// Resolve SPECs for a download: `stable` asks upstream; wildcards are
    /// refused (they only make sense for what is already here).
    /// An upstream `stable` older than the published one is not followed
    /// back: said once, and that SPEC selects nothing.
    pub fn resolve_download_specs(
        &self,
        engine: &Engine,
        specs: &[Spec],
        reporter: &dyn Reporter,
    ) -> Result<Vec<Version>> {
        if specs.is_empty() {
            bail!("no SPEC given; use -s stable or -s X.Y.Z");
        }
        let mut out = BTreeSet::new();
        for spec in specs {
            match spec {
                Spec::Stable => {
                    let url = format!("{}/release-stable.toml", self.url);
                    let bytes = engine.fetch_bytes(&url, crate::limit::SMALL_TEXT)?;
                    let upstream = parse_release_stable(&bytes, &url)?;
                    match self.local_stable() {
                        Ok(Some(published)) if upstream < published => {
                            reporter.warn(&format!(
                                "rustup: {}",
                                older_stable(&url, upstream, published)
                            ));
                        }
                        _ => {
                            out.insert(upstream);
                        }
                    }
                }
                Spec::Version(v) => {
                    out.insert(*v);
                }
                Spec::Latest | Spec::All => {
                    bail!("SPEC `latest` and `*` select local versions; download needs stable or X.Y.Z")
                }
            }
        }
        Ok(out.into_iter().rev().collect())
    }

    /// Resolve SPECs against the local tree (verify, list, pack, fixup).
    /// No SPEC means `*`.
    pub fn resolve_local_specs(&self, specs: &[Spec]) -> Result<Vec<Version>> {
        let all = [Spec::All];
        let specs = if specs.is_empty() { &all[..] } else { specs };
        let mut out = BTreeSet::new();
        for spec in specs {
            let found: Vec<Version> = match spec {
                Spec::Stable => self.local_stable()?.into_iter().collect(),
                Spec::Latest => self.local_versions()?.into_iter().take(1).collect(),
                Spec::All => self.local_versions()?,
                Spec::Version(v) => vec![*v],
            };
            if found.is_empty() {
                bail!(
                    "no local rustup versions match SPEC {} under {}",
                    spec_name(spec),
                    self.dir().display()
                );
            }
            out.extend(found);
        }
        Ok(out.into_iter().rev().collect())
    }

    /// Expand TARGETs for a version: aliases, `all` (every known target),
    /// `*` (every target present locally). Unknown triples are kept with a
    /// warning from `warn`.
    pub fn resolve_targets(
        &self,
        version: Version,
        targets: &[String],
        warn: &dyn Fn(&str),
    ) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for t in targets {
            match t.as_str() {
                "all" => out.extend(ALL_KNOWN_TARGETS.iter().map(|s| s.to_string())),
                "*" => out.extend(self.local_targets(version)?),
                t => {
                    let t = expand_target_alias(t);
                    if !is_valid_target(t) {
                        bail!("invalid TARGET {t:?}");
                    }
                    if !ALL_KNOWN_TARGETS.contains(&t) {
                        warn(&format!("unknown target {t:?}"));
                    }
                    out.insert(t.to_string());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Download `rustup-init` (and its `.sha256`) for each version and
    /// target, then run [`Rustup::fixup`]. A second run with everything in
    /// place sends no request for the binaries.
    pub fn download(
        &self,
        engine: &Engine,
        versions: &[Version],
        targets: &[String],
        reporter: &dyn Reporter,
    ) -> Result<()> {
        if targets.is_empty() {
            bail!("no TARGET given; use -t TRIPLE (or linux, windows, darwin, all)");
        }
        struct Want {
            target: String,
            rel: String,
            dest: PathBuf,
            sidecar: PathBuf,
            local: Option<Sha256Digest>,
        }
        let mut wants = Vec::new();
        for &version in versions {
            for target in self.resolve_targets(version, targets, &|w| reporter.warn(w))? {
                let rel = Self::init_rel_path(version, &target);
                let dest = self.dir().join(&rel);
                let sidecar = sidecar_path(&dest);
                // The archive of a version never changes upstream: a local
                // `.sha256` is the digest to meet, and saves a request.
                let local = fs::read(&sidecar)
                    .ok()
                    .and_then(|b| parse_sidecar(&b, &sidecar.display().to_string()).ok());
                wants.push(Want {
                    target: target.clone(),
                    rel,
                    dest,
                    sidecar,
                    local,
                });
            }
        }

        let sums_needed: Vec<String> = wants
            .iter()
            .filter(|w| w.local.is_none())
            .map(|w| format!("{}/{}.sha256", self.url, w.rel))
            .collect();
        let mut fetched = engine
            .fetch_bytes_many(&sums_needed, crate::limit::COMPANION)
            .into_iter()
            .zip(&sums_needed);

        let mut items = Vec::new();
        let mut sum_failures = Vec::new();
        for w in wants {
            let url = format!("{}/{}", self.url, w.rel);
            let name = w
                .dest
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let digest = match w.local {
                Some(digest) => digest,
                None => {
                    let Some((bytes, sum_url)) = fetched.next() else {
                        bail!("internal error: missing checksum result for {url}");
                    };
                    if let Err(FetchError::Status { status, .. }) = &bytes {
                        if status.as_u16() == 404 && !ALL_KNOWN_TARGETS.contains(&w.target.as_str())
                        {
                            // A typo, not a failed download: refused
                            // before anything is written.
                            bail!(
                                "{}: upstream has no rustup-init for it ({sum_url} is not found); nothing was written",
                                crate::suggest::unknown(
                                    "target",
                                    &w.target,
                                    ALL_KNOWN_TARGETS.iter().copied()
                                )
                            );
                        }
                    }
                    match bytes
                        .map_err(anyhow::Error::from)
                        .and_then(|b| Ok(parse_sidecar(&b, sum_url)?))
                    {
                        Ok(digest) => {
                            items.push(
                                FetchItem::new(url, &w.dest)
                                    .sha256(digest)
                                    .limit(crate::limit::RUSTUP_INIT)
                                    .sidecar(&w.sidecar, format_sidecar(&digest, &name)),
                            );
                        }
                        Err(e) => sum_failures.push(format!("{e:#}")),
                    }
                    continue;
                }
            };
            items.push(
                FetchItem::new(url, &w.dest)
                    .sha256(digest)
                    .limit(crate::limit::RUSTUP_INIT),
            );
        }
        if !sum_failures.is_empty() && !engine.options().keep_going {
            bail!(
                "cannot fetch checksums:\n  - {}",
                sum_failures.join("\n  - ")
            );
        }
        let summary = engine.fetch_all(items, reporter)?;
        if !sum_failures.is_empty() {
            bail!(
                "{} checksum downloads failed (the rest was downloaded):\n  - {}",
                sum_failures.len(),
                sum_failures.join("\n  - ")
            );
        }
        reporter.info(&format!(
            "rustup: {} downloaded ({}), {} already present",
            summary.fetched,
            crate::output::human_bytes(summary.bytes),
            summary.skipped
        ));
        self.fixup(versions, reporter)?;
        Ok(())
    }

    /// Check every selected `rustup-init` against its `.sha256`.
    pub fn verify(
        &self,
        versions: &[Version],
        targets: &[String],
        reporter: &dyn Reporter,
    ) -> Result<usize> {
        let mut files = Vec::new();
        for &version in versions {
            for target in self.resolve_targets(version, targets, &|_| {})? {
                files.push(self.dir().join(Self::init_rel_path(version, &target)));
            }
        }
        let failures: Vec<String> = files
            .par_iter()
            .filter_map(|f| verify_with_sidecar(f).err().map(|e| format!("{e:#}")))
            .collect();
        for f in &files {
            reporter.verbose(&format!("[verified] {}", f.display()));
        }
        if !failures.is_empty() {
            bail!(
                "{} of {} rustup files failed verification:\n  - {}",
                failures.len(),
                files.len(),
                failures.join("\n  - ")
            );
        }
        reporter.info(&format!("rustup: {} files verified", files.len()));
        Ok(files.len())
    }

    /// Publish the newest of `versions` (and of the current
    /// `release-stable.toml`): copy its `archive/<ver>/` to `dist/`, then
    /// write `release-stable.toml`.
    pub fn fixup(&self, versions: &[Version], reporter: &dyn Reporter) -> Result<Version> {
        let mut newest = None;
        for &v in versions {
            let dir = self.dir().join("archive").join(v.to_string());
            if list_dirs(&dir)?.is_empty() {
                bail!("rustup version {v} is not present under {}", dir.display());
            }
            newest = newest.max(Some(v));
        }
        let current = self.local_stable()?;
        let stable = newest
            .max(current)
            .context("no rustup version to publish")?;
        let archive = self.dir().join("archive").join(stable.to_string());
        if !archive.is_dir() {
            bail!(
                "release-stable.toml names {stable}, but {} is missing",
                archive.display()
            );
        }
        replace_dir_with_copy(&archive, &self.dir().join("dist"))?;
        if current != Some(stable) {
            let path = self.release_stable_path();
            store::write_atomic(&path, release_stable_toml(stable).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        reporter.info(&format!("rustup: stable is {stable}"));
        Ok(stable)
    }

    /// The archive members for versions and targets (relative to the root).
    pub fn members(&self, versions: &[Version], targets: &[String]) -> Result<Vec<String>> {
        Ok(self
            .member_pairs(versions, targets)?
            .into_iter()
            .flatten()
            .collect())
    }

    /// [`Rustup::members`] in pairs: each `rustup-init` with its `.sha256`.
    fn member_pairs(&self, versions: &[Version], targets: &[String]) -> Result<Vec<Vec<String>>> {
        let mut pairs = Vec::new();
        for &version in versions {
            for target in self.resolve_targets(version, targets, &|_| {})? {
                let rel = Self::init_rel_path(version, &target);
                let mut pair = Vec::new();
                for rel in [rel.clone(), format!("{rel}.sha256")] {
                    let path = self.dir().join(&rel);
                    if !path.is_file() {
                        bail!("cannot pack {}: file is missing", path.display());
                    }
                    pair.push(format!("rustup/{rel}"));
                }
                pairs.push(pair);
            }
        }
        Ok(pairs)
    }

    /// Pack versions and targets into `archive` as the range from `start`
    /// (`--start`: `0` or a mark value; `None`: the mark) to now: each
    /// `rustup-init` written since, with its `.sha256`.
    pub fn pack(
        &self,
        versions: &[Version],
        targets: &[String],
        archive: &Path,
        start: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<usize> {
        let (mark, since) = crate::eco::time_pack_start(&self.root, ECOSYSTEM, start)?;
        let members: Vec<String> = self
            .member_pairs(versions, targets)?
            .into_iter()
            .filter(|pair| crate::eco::written_since(&self.root, pair, since))
            .flatten()
            .collect();
        crate::eco::selection::time_pack_pending::<RetainEntry>(
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

    /// What `clean` keeping the `keep` newest versions and the `pins`
    /// removes: every file of the other versions under `archive/`
    /// (relative to the root, sorted).
    pub fn clean_plan(&self, keep: usize, pins: &[Version]) -> Result<Vec<String>> {
        if keep == 0 {
            bail!(
                "rustup clean --keep N: N must be at least 1 (the newest is what clients install)"
            );
        }
        let mut plan = Vec::new();
        for v in self.local_versions()?.into_iter().skip(keep) {
            if pins.contains(&v) {
                continue;
            }
            for t in self.local_targets(v)? {
                let dir = format!("rustup/archive/{v}/{t}");
                let path = self.root.join(&dir);
                let entries = fs::read_dir(&path)
                    .with_context(|| format!("cannot list {}", path.display()))?;
                for e in entries {
                    let e = e.with_context(|| format!("cannot list {}", path.display()))?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with('.') && e.file_type()?.is_file() {
                        plan.push(format!("{dir}/{name}"));
                    }
                }
            }
        }
        plan.sort();
        Ok(plan)
    }

    /// Remove what [`Rustup::clean_plan`] lists (`dry_run`: only print
    /// it), record it for the next archive and drop the emptied
    /// directories. Returns what was (or would be) removed.
    pub fn clean(
        &self,
        keep: usize,
        pins: &[Version],
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<Vec<String>> {
        let plan = self.clean_plan(keep, pins)?;
        if dry_run {
            for p in &plan {
                crate::output::data(format_args!("would remove {p}"));
            }
            reporter.info(&format!("rustup: clean would remove {} files", plan.len()));
            return Ok(plan);
        }
        crate::eco::selection::remove_recorded::<RetainEntry>(&self.root, ECOSYSTEM, &plan)?;
        self.remove_empty_dirs(&plan);
        reporter.info(&format!(
            "rustup: clean removed {} files (the next archive removes them on the far side)",
            plan.len()
        ));
        Ok(plan)
    }

    /// Drop the `archive/<version>/<target>/` and `archive/<version>/`
    /// directories `removed` emptied (anything else stays).
    fn remove_empty_dirs(&self, removed: &[String]) {
        let mut dirs = BTreeSet::new();
        for r in removed {
            let parts: Vec<&str> = r.split('/').collect();
            if let [_, _, v, t, _] = parts[..] {
                dirs.insert((v.to_string(), t.to_string()));
            }
        }
        for (v, t) in &dirs {
            let _ = fs::remove_dir(self.dir().join("archive").join(v).join(t));
            let _ = fs::remove_dir(self.dir().join("archive").join(v));
        }
    }

    /// Record the mark: see [`crate::eco::set_time_mark`].
    pub fn mark(&self, reporter: &dyn Reporter) -> Result<()> {
        crate::eco::set_time_mark(&self.root, ECOSYSTEM, reporter)
    }

    /// Unpack `archive` (ours or romt's) into the tree and run
    /// [`Rustup::fixup`] for what it held, before the archive is recorded
    /// as imported (a run killed in between redoes both); returns the
    /// versions and targets it held, for the verify that follows.
    pub fn unpack(
        &self,
        archive: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Version>, Vec<String>)> {
        let unpacked = crate::eco::continuity::unpack_in_time_order(
            &self.root,
            ECOSYSTEM,
            "-s SPEC -t TARGET (as packed before)",
            archive,
            reporter,
            |expect_range| {
                let (versions, targets) = self.unpack_checked(archive, expect_range, reporter)?;
                if !versions.is_empty() {
                    self.fixup(&versions, reporter)?;
                }
                Ok((versions, targets))
            },
        )?;
        Ok(unpacked.unwrap_or_default())
    }

    /// [`Rustup::unpack`] once the archive's order was checked.
    fn unpack_checked(
        &self,
        archive: &Path,
        expect_range: Option<Option<bundle::Range>>,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Version>, Vec<String>)> {
        let opts = bundle::UnpackOptions {
            allowed_prefixes: vec!["rustup/archive/".to_string()],
            expect_ecosystem: Some(ECOSYSTEM.to_string()),
            publish_last: Vec::new(),
            versioned: Some(is_versioned),
            check_staged: Some(std::sync::Arc::new(check_staged)),
            expect_range,
        };
        let summary = bundle::unpack(archive, &self.root, &opts, reporter)
            .with_context(|| format!("cannot unpack {}", archive.display()))?;
        let removed = crate::eco::selection::apply_archive_removes(
            &self.root,
            ECOSYSTEM,
            archive,
            summary.manifest.as_ref(),
            is_removable,
            reporter,
        )?;
        if let Some(m) = &summary.manifest {
            self.remove_empty_dirs(&m.removes);
        }
        let mut versions = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for f in &summary.files {
            let parts: Vec<&str> = f.split('/').collect();
            // rustup/archive/<version>/<target>/<file>
            if let [_, _, v, t, _] = parts[..] {
                if let Some(v) = Version::parse(v) {
                    versions.insert(v);
                    targets.insert(t.to_string());
                }
            }
        }
        if versions.is_empty() {
            if removed > 0 && summary.files.is_empty() {
                reporter.info(&format!("rustup: {removed} files removed"));
                return Ok((Vec::new(), Vec::new()));
            }
            if crate::eco::continuity::empty_increment(&summary, ECOSYSTEM, archive, reporter) {
                return Ok((Vec::new(), Vec::new()));
            }
            bail!("{} holds no rustup-init files", archive.display());
        }
        reporter.info(&format!(
            "rustup: unpacked {} files ({} versions, {} targets)",
            summary.files.len(),
            versions.len(),
            targets.len()
        ));
        Ok((
            versions.into_iter().rev().collect(),
            targets.into_iter().collect(),
        ))
    }
}

/// Whether an archive may remove `rel` from a rustup mirror: a plain
/// relative path under `rustup/archive/`.
pub fn is_removable(rel: &str) -> bool {
    crate::eco::toolchain::retain::is_plain_under(rel, "rustup/archive/")
}

/// Before an unpack publishes: every `rustup-init` must come with its
/// `.sha256` and match it (romt's archives carry no manifest, so this is
/// their only check; ours get it on top of the manifest's digests).
fn check_staged(dir: &Path, files: &[String]) -> std::result::Result<(), String> {
    let names: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let failures: Vec<String> = files
        .par_iter()
        .filter_map(|f| {
            if let Some(bin) = f.strip_suffix(".sha256") {
                return (!names.contains(bin)).then(|| format!("{f}: no {bin} beside it"));
            }
            if !names.contains(format!("{f}.sha256").as_str()) {
                return Some(format!("{f}: no {f}.sha256 beside it"));
            }
            verify_with_sidecar(&dir.join(f))
                .err()
                .map(|e| format!("{f}: {:#}", e).replace(&format!("{}/", dir.display()), ""))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn spec_name(spec: &Spec) -> String {
    match spec {
        Spec::Stable => "stable".into(),
        Spec::Latest => "latest".into(),
        Spec::All => "*".into(),
        Spec::Version(v) => v.to_string(),
    }
}

/// `rustup-init`, or `rustup-init.exe` for Windows targets.
pub fn init_name(target: &str) -> &'static str {
    if target.contains("windows") {
        "rustup-init.exe"
    } else {
        "rustup-init"
    }
}

fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    file.with_file_name(name)
}

/// Check a file against the `.sha256` beside it.
pub fn verify_with_sidecar(file: &Path) -> Result<Sha256Digest> {
    let sidecar = sidecar_path(file);
    let text = crate::limit::read_file(&sidecar, crate::limit::COMPANION)
        .with_context(|| format!("{}: missing", sidecar.display()))?;
    let expected = parse_sidecar(&text, &sidecar.display().to_string())?;
    let (actual, _) =
        hash_file(file).with_context(|| format!("{}: cannot read", file.display()))?;
    if actual != expected {
        return Err(crate::verify::digest::DigestMismatch::new(
            file.display().to_string(),
            expected,
            actual,
        )
        .into());
    }
    Ok(actual)
}

/// Parse `release-stable.toml`; `origin` names it in errors.
pub fn parse_release_stable(bytes: &[u8], origin: &str) -> Result<Version> {
    #[derive(serde::Deserialize)]
    struct ReleaseStable {
        version: String,
    }
    let text = std::str::from_utf8(bytes).with_context(|| format!("{origin}: not UTF-8"))?;
    let parsed: ReleaseStable = toml::from_str(text)
        .with_context(|| format!("{origin}: expected TOML with `version = 'X.Y.Z'`"))?;
    Version::parse(&parsed.version).with_context(|| {
        format!(
            "{origin}: expected version X.Y.Z, found {:?}",
            parsed.version
        )
    })
}

/// What is said of an upstream `release-stable.toml` (at `url`) naming
/// `upstream` when `published` is newer: the published one is kept.
pub fn older_stable(url: &str, upstream: Version, published: Version) -> String {
    format!(
        "{url} names {upstream}, older than the published release-stable.toml \
         ({published}); keeping {published}"
    )
}

/// The text of `release-stable.toml`, as upstream writes it.
pub fn release_stable_toml(version: Version) -> String {
    format!("schema-version = '1'\nversion = '{version}'\n")
}

fn list_dirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !name.starts_with('.') {
            out.push(name);
        }
    }
    Ok(out)
}

/// Replace the directory `dest` by a copy of `src`: the copy is made
/// beside it, then swapped in with one `renameat2(RENAME_EXCHANGE)`, so a
/// reader (or a run killed at any point) finds the old tree or the new,
/// never none. Where the exchange is not available, two renames.
fn replace_dir_with_copy(src: &Path, dest: &Path) -> Result<()> {
    let parent = dest.parent().context("dist has no parent")?;
    let pid = std::process::id();
    // Copies of killed runs are not needed.
    store::remove_abandoned(parent, ".dist.new.");
    store::remove_abandoned(parent, ".dist.old.");
    let fresh = parent.join(format!(".dist.new.{pid}"));
    let old = parent.join(format!(".dist.old.{pid}"));
    let _ = fs::remove_dir_all(&fresh);
    copy_tree(src, &fresh)
        .with_context(|| format!("cannot copy {} to {}", src.display(), fresh.display()))?;
    // The copy is durable before it is published, and the swap once done.
    store::sync_tree(&fresh)
        .with_context(|| format!("cannot write {} to disk", fresh.display()))?;
    let published = |r: Result<()>| {
        r?;
        store::sync_dir(parent)
            .with_context(|| format!("cannot write {} to disk", parent.display()))
    };
    if !dest.exists() {
        return published(
            fs::rename(&fresh, dest).with_context(|| format!("cannot publish {}", dest.display())),
        );
    }
    match exchange(&fresh, dest) {
        Ok(()) => {
            // `fresh` now holds the old tree.
            published(Ok(()))?;
            let _ = fs::remove_dir_all(&fresh);
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
        Err(e) => return Err(e).with_context(|| format!("cannot publish {}", dest.display())),
    }
    fs::rename(dest, &old).with_context(|| format!("cannot move {} aside", dest.display()))?;
    published(
        fs::rename(&fresh, dest).with_context(|| format!("cannot publish {}", dest.display())),
    )?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Swap two directories atomically; `Unsupported` where the system or the
/// file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name.to_string_lossy().ends_with(".partial") {
            continue;
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_tree(&entry.path(), &dest.join(&name))?;
        } else if ty.is_file() {
            fs::copy(entry.path(), dest.join(&name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(Spec::parse("stable").unwrap(), Spec::Stable);
        assert_eq!(Spec::parse("*").unwrap(), Spec::All);
        assert_eq!(
            Spec::parse("1.28.2").unwrap(),
            Spec::Version(Version(1, 28, 2))
        );
        let e = Spec::parse("nightly").unwrap_err().to_string();
        assert!(e.contains("nightly") && e.contains("X.Y.Z"), "{e}");
    }

    #[test]
    fn release_stable_round_trips() {
        let text = release_stable_toml(Version(1, 28, 2));
        assert_eq!(
            parse_release_stable(text.as_bytes(), "x").unwrap(),
            Version(1, 28, 2)
        );
        let e =
            parse_release_stable(b"version = 'one'", "http://u/release-stable.toml").unwrap_err();
        assert!(format!("{e:#}").contains("http://u/release-stable.toml"));
    }

    #[test]
    fn windows_targets_get_exe() {
        assert_eq!(
            Rustup::init_rel_path(Version(1, 2, 3), "x86_64-pc-windows-msvc"),
            "archive/1.2.3/x86_64-pc-windows-msvc/rustup-init.exe"
        );
        assert_eq!(init_name("x86_64-unknown-linux-gnu"), "rustup-init");
    }
}
