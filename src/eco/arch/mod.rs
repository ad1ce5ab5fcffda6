//! Arch Linux: pacman repositories, mirrored verified.
//!
//! Upstream mirrors and this mirror share one layout (`--url` is a mirror
//! base such as `https://geo.mirror.pkgbuild.com/$repo/os/$arch`):
//!
//! ```text
//! archlinux/
//!   lastsync                         unix time of the last completed download
//!   <repo>/os/<arch>/
//!     <repo>.db  <repo>.db.tar.gz    the package database (same bytes, two
//!                                    regular files: no symlinks to follow)
//!     <repo>.db.sig  <repo>.db.tar.gz.sig        when upstream signs it
//!     <repo>.files  <repo>.files.tar.gz (+ .sig) the file lists
//!     <name>-<ver>-<rel>-<arch>.pkg.tar.zst      every package
//!     <name>-<ver>-<rel>-<arch>.pkg.tar.zst.sig  its detached signature
//! ```
//!
//! Download plans, the engine executes, per repository:
//! 1. `<repo>.db` into memory from the first mirror that answers, then its
//!    `.sig`, `<repo>.files` and its `.sig` from the same mirror (a 404 for
//!    a signature or for `.files` is fine: official databases are unsigned).
//!    A database signature that is present must verify. See [`db`].
//! 2. Every package through [`Engine::fetch_all`] with `%SHA256SUM%`,
//!    `%CSIZE%` and its detached `.sig` checked against the keyring;
//!    present, correct files are skipped without a request. When a mirror
//!    fails, whatever is still missing is planned again on the next one.
//! 3. Only then the databases are published (signature first, `.files`
//!    before `.db`), so pacman never sees a package it cannot download.
//!
//! `clean` keeps the newest N versions of each package (never one the
//! current database lists); `mark` records a time in `.mirror/state.json`
//! (see [`crate::eco::set_time_mark`]); `pack` carries the files written
//! since plus the current databases; `unpack` takes archives in order
//! ([`crate::eco::continuity`]) and checks the staged packages against the
//! staged databases (size, SHA-256, signature) before anything is
//! published, databases last.
//!
//! Databases only move forward, judged by what they carry: the newest
//! `%BUILDDATE%` of a `<repo>.db` (and `.files`) and `lastsync`. A
//! download from a mirror behind the published database keeps the
//! published one (said once); an archive carrying an older database or
//! `lastsync` is refused before anything is published.

pub mod db;
pub mod retain;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;

use crate::bundle;
use crate::fetch::{Engine, FetchError, FetchItem, SignatureSource, SignatureSpec};
use crate::limit;
use crate::report::Reporter;
use crate::store;
use crate::verify::digest::hash_file;
use crate::verify::openpgp::{verify_detached, verify_file, Keyring, SigningKey};
use db::Package;

/// The default mirror.
pub const DEFAULT_URL: &str = "https://geo.mirror.pkgbuild.com/$repo/os/$arch";

/// The default repositories.
pub const DEFAULT_REPOS: &[&str] = &["core", "extra"];

/// The default architecture.
pub const DEFAULT_ARCH: &str = "x86_64";

/// Arch Linux's repositories, for the hint when a database is not found.
const KNOWN_REPOS: &[&str] = &[
    "core",
    "extra",
    "multilib",
    "core-testing",
    "extra-testing",
    "multilib-testing",
    "core-staging",
    "extra-staging",
    "multilib-staging",
    "gnome-unstable",
    "kde-unstable",
];

/// Architectures of Arch Linux and its ports, for the same hint.
const KNOWN_ARCHES: &[&str] = &[
    "x86_64",
    "x86_64_v3",
    "i686",
    "pentium4",
    "aarch64",
    "armv7h",
    "riscv64",
];

/// Why a repository's database is not found: a repository or an
/// architecture upstream does not have, with the nearest known names.
fn unknown_repo(repo: &str, arch: &str, db_url: &str) -> String {
    let what = if !KNOWN_REPOS.contains(&repo) {
        crate::suggest::unknown("repository", repo, KNOWN_REPOS.iter().copied())
    } else if !KNOWN_ARCHES.contains(&arch) {
        crate::suggest::unknown("architecture", arch, KNOWN_ARCHES.iter().copied())
    } else {
        format!("repository {repo} ({arch}) is not on this mirror")
    };
    format!("{what}: {db_url} is not found upstream; nothing was written")
}

/// The system's Arch Linux keyring (Debian's `archlinux-keyring`).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/archlinux.gpg";

/// The default archive for `pack`/`unpack`.
pub const DEFAULT_ARCHIVE: &str = "arch.tar.gz";

/// The default number of versions `clean` keeps per package.
pub const DEFAULT_RETAIN: usize = 3;

/// The ecosystem name in bundles and state.
pub const ECOSYSTEM: &str = "arch";

/// Whether `path` (relative to the root) is a versioned file, one whose
/// bytes never change once published: a package,
/// `archlinux/<repo>/os/<arch>/<name>-<ver>-<rel>-<arch>.pkg.tar[.<ext>]`.
pub fn is_versioned(path: &str) -> bool {
    matches!(
        path.split('/').collect::<Vec<_>>()[..],
        [TOP, _, "os", _, name]
            if name.contains(".pkg.tar") && !name.ends_with(".sig")
    )
}

/// The top directory in the tree.
pub const TOP: &str = "archlinux";

/// A repository and the mirrors (URL templates with `$repo`/`$arch`) it
/// is fetched from, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSource {
    /// The repository name (`core`, `extra`, a custom one).
    pub name: String,
    /// Mirror URL templates.
    pub urls: Vec<String>,
}

impl RepoSource {
    /// The mirror bases for `arch`, `$repo`/`$arch` expanded.
    pub fn bases(&self, arch: &str) -> Vec<String> {
        self.urls
            .iter()
            .map(|u| {
                u.replace("$repo", &self.name)
                    .replace("$arch", arch)
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect()
    }
}

/// The size limit of a database file by its name: a `.files` holds file
/// lists and is far larger than a `.db`.
pub fn db_limit(name: &str) -> limit::Limit {
    if name.ends_with(".files") || name.ends_with(".files.tar.gz") {
        limit::ARCH_FILES
    } else {
        limit::ARCH_DB
    }
}

/// Make a `--url` value a template: a base without `$repo` gets
/// `/$repo/os/$arch` appended.
pub fn url_template(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.contains("$repo") {
        url.to_string()
    } else {
        format!("{url}/$repo/os/$arch")
    }
}

/// A repository name: letters, digits, `._-`, never a path.
pub fn is_valid_repo_name(name: &str) -> bool {
    db::check_file_name(name).is_ok()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What a download did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Repositories whose databases were published.
    pub repos: usize,
    /// Packages downloaded.
    pub fetched: usize,
    /// Packages already present.
    pub skipped: usize,
    /// Bytes received for packages.
    pub bytes: u64,
}

/// A repository's databases as fetched, not yet published.
struct FetchedDbs {
    base: String,
    db: Vec<u8>,
    db_sig: Option<Vec<u8>>,
    files: Option<Vec<u8>>,
    files_sig: Option<Vec<u8>>,
}

/// One entry of a remembered Arch selection: a package (its dependencies
/// always come).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectionEntry {
    /// The package name.
    pub name: String,
}

impl crate::eco::selection::Entry for SelectionEntry {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The Arch part of a mirror tree.
pub struct Arch {
    root: PathBuf,
    arch: String,
    repos: Vec<RepoSource>,
    keyring: Option<Arc<Keyring>>,
    retain: usize,
    packages: Vec<String>,
    signing_key: Option<Arc<SigningKey>>,
}

impl Arch {
    /// `root` holds `archlinux/`; `repos` the repositories to download;
    /// `keyring` the certificates packages must be signed with (needed by
    /// download, verify and unpack); `retain` the versions `clean` keeps.
    pub fn new(
        root: &Path,
        arch: &str,
        repos: Vec<RepoSource>,
        keyring: Option<Keyring>,
        retain: usize,
    ) -> Arch {
        Arch {
            root: root.to_path_buf(),
            arch: arch.to_string(),
            repos,
            keyring: keyring.map(Arc::new),
            retain,
            packages: Vec::new(),
            signing_key: None,
        }
    }

    /// Mirror only these packages and, transitively, what they depend on
    /// (`%DEPENDS%`, resolved by name or `%PROVIDES%` over the
    /// repositories in order); the databases published then list only the
    /// packages held and are unsigned. Empty: every package.
    /// Sign the databases a partial mirror regenerates with this key
    /// (`--signing-key`); without one they are published unsigned.
    pub fn with_signing_key(mut self, key: Option<Arc<SigningKey>>) -> Arch {
        self.signing_key = key;
        self
    }

    pub fn with_packages(mut self, packages: Vec<String>) -> Arch {
        self.packages = packages;
        self
    }

    fn keyring(&self) -> Result<&Arc<Keyring>> {
        self.keyring.as_ref().with_context(|| {
            format!("no keyring: {DEFAULT_KEYRING} does not exist; pass --keyring FILE with the OpenPGP certificates of the packagers")
        })
    }

    /// `archlinux/<repo>/os/<arch>/`.
    pub fn repo_dir(&self, repo: &str, arch: &str) -> PathBuf {
        self.root.join(TOP).join(repo).join("os").join(arch)
    }

    /// Download every repository (see the module docs).
    pub fn download(&self, engine: &Engine, reporter: &dyn Reporter) -> Result<DownloadSummary> {
        let keyring = self.keyring()?.clone();
        let failed_repo = |name: &str| {
            format!(
                "repository {name} ({}): its database was not updated (only verified packages were published)",
                self.arch
            )
        };
        let mut fetched = Vec::new();
        for repo in &self.repos {
            let got = self
                .fetch_dbs(engine, repo, &keyring, reporter)
                .with_context(|| failed_repo(&repo.name))?;
            fetched.push(got);
        }
        // A database only moves forward: a mirror behind the published
        // one is not followed back (said once per repository).
        let behind: Vec<bool> = self
            .repos
            .iter()
            .zip(&fetched)
            .map(|(repo, (dbs, entries))| {
                let published = published_newest_build(
                    &self
                        .repo_dir(&repo.name, &self.arch)
                        .join(format!("{}.db", repo.name)),
                );
                let offered = db::newest_build(entries.iter().map(|(r, _)| r));
                let what = format!("{}/{}.db", dbs.base, repo.name);
                match check_db_forward(&what, offered, published) {
                    Ok(()) => false,
                    Err(e) => {
                        reporter.warn(&format!("arch: {e}; nothing downloaded for {}", repo.name));
                        true
                    }
                }
            })
            .collect();
        let selected: Option<Vec<HashSet<String>>> = if self.packages.is_empty() {
            None
        } else {
            let tables: Vec<&[(db::RawDesc, Package)]> =
                fetched.iter().map(|(_, e)| e.as_slice()).collect();
            Some(self.closure(&tables, reporter)?)
        };
        let mut summary = DownloadSummary::default();
        for (i, (repo, (dbs, entries))) in self.repos.iter().zip(fetched).enumerate() {
            if behind[i] {
                continue;
            }
            let entries = match &selected {
                Some(sel) => entries
                    .into_iter()
                    .filter(|(_, p)| sel[i].contains(&p.name))
                    .collect(),
                None => entries,
            };
            let s = self
                .download_repo(
                    engine,
                    repo,
                    dbs,
                    entries,
                    selected.is_some(),
                    &keyring,
                    reporter,
                )
                .with_context(|| failed_repo(&repo.name))?;
            summary.repos += 1;
            summary.fetched += s.fetched;
            summary.skipped += s.skipped;
            summary.bytes += s.bytes;
        }
        let lastsync = self.root.join(TOP).join("lastsync");
        // Never back, even when the clock is.
        let published = fs::read(&lastsync).ok().and_then(|b| parse_lastsync(&b));
        let now = now_secs().max(published.unwrap_or(0));
        store::write_atomic(&lastsync, format!("{now}\n").as_bytes())
            .with_context(|| format!("cannot write {}", lastsync.display()))?;
        reporter.info(&format!(
            "arch: {} repositories; {} packages downloaded ({} bytes), {} already present",
            summary.repos, summary.fetched, summary.bytes, summary.skipped
        ));
        Ok(summary)
    }

    /// The packages asked for and their dependencies, closed transitively:
    /// per repository (in the order of `tables`), the names selected. A
    /// name is found by `%NAME%` in the first repository that has it, else
    /// by `%PROVIDES%`. A package asked for that no repository has is an
    /// error; an unresolved dependency a warning.
    fn closure(
        &self,
        tables: &[&[(db::RawDesc, Package)]],
        reporter: &dyn Reporter,
    ) -> Result<Vec<HashSet<String>>> {
        let mut by_name: HashMap<&str, (usize, &Package)> = HashMap::new();
        let mut by_provides: HashMap<&str, (usize, &Package)> = HashMap::new();
        for (i, table) in tables.iter().enumerate() {
            for (_, p) in table.iter() {
                by_name.entry(p.name.as_str()).or_insert((i, p));
                for prov in &p.provides {
                    by_provides
                        .entry(db::dependency_name(prov))
                        .or_insert((i, p));
                }
            }
        }
        let mut out = vec![HashSet::new(); tables.len()];
        let mut queue: Vec<(String, Option<String>)> =
            self.packages.iter().map(|n| (n.clone(), None)).collect();
        while let Some((want, needed_by)) = queue.pop() {
            let name = db::dependency_name(&want);
            let Some((i, p)) = by_name.get(name).or_else(|| by_provides.get(name)) else {
                match needed_by {
                    None => bail!(
                        "{}: it is in none of the repositories {}; nothing was written",
                        crate::suggest::unknown("package", name, by_name.keys().copied()),
                        self.repos
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some(by) => {
                        reporter.warn(&format!(
                            "{by} depends on {want}, which no mirrored repository provides"
                        ));
                        continue;
                    }
                }
            };
            if out[*i].insert(p.name.clone()) {
                queue.extend(p.depends.iter().map(|d| (d.clone(), Some(p.name.clone()))));
            }
        }
        Ok(out)
    }

    /// The databases of `repo` from the first mirror whose databases
    /// arrive, parse and verify; each failure is warned about and the next
    /// mirror tried.
    fn fetch_dbs(
        &self,
        engine: &Engine,
        repo: &RepoSource,
        keyring: &Keyring,
        reporter: &dyn Reporter,
    ) -> Result<(FetchedDbs, Vec<(db::RawDesc, Package)>)> {
        let bases = repo.bases(&self.arch);
        let mut errors = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            match self.fetch_dbs_from(engine, &repo.name, base, keyring, reporter) {
                Ok(got) => return Ok(got),
                Err(e) if bases.len() == 1 => return Err(e),
                Err(e) => {
                    if i + 1 < bases.len() {
                        reporter.warn(&format!("{e:#}; trying the next mirror"));
                    }
                    errors.push(format!("{e:#}"));
                }
            }
        }
        bail!(
            "no mirror served good databases for {}:\n  - {}",
            repo.name,
            errors.join("\n  - ")
        )
    }

    fn fetch_dbs_from(
        &self,
        engine: &Engine,
        name: &str,
        base: &str,
        keyring: &Keyring,
        reporter: &dyn Reporter,
    ) -> Result<(FetchedDbs, Vec<(db::RawDesc, Package)>)> {
        let db_url = format!("{base}/{name}.db");
        let db = match engine.fetch_bytes(&db_url, crate::limit::ARCH_DB) {
            Err(FetchError::Status { status, .. }) if status.as_u16() == 404 => {
                bail!("{}", unknown_repo(name, &self.arch, &db_url))
            }
            r => r?,
        };
        let entries = db::entries(&db, &db_url)?;
        let urls = [
            format!("{base}/{name}.db.sig"),
            format!("{base}/{name}.files"),
            format!("{base}/{name}.files.sig"),
        ];
        let mut got = engine
            .fetch_bytes_each(&[
                (&urls[0], crate::limit::COMPANION),
                (&urls[1], crate::limit::ARCH_FILES),
                (&urls[2], crate::limit::COMPANION),
            ])
            .into_iter();
        let mut optional = |url: &str| -> Result<Option<Vec<u8>>> {
            match got.next().expect("three results") {
                Ok(b) => Ok(Some(b)),
                Err(FetchError::Status { status, .. }) if status.as_u16() == 404 => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot fetch {url}")),
            }
        };
        let db_sig = optional(&urls[0])?;
        let files = optional(&urls[1])?;
        let files_sig = optional(&urls[2])?;
        if let Some(sig) = &db_sig {
            verify_detached(keyring, db.as_slice(), sig, &db_url)?;
        }
        if let (Some(files), Some(sig)) = (&files, &files_sig) {
            verify_detached(keyring, files.as_slice(), sig, &urls[1])?;
        }
        if files.is_none() {
            reporter.verbose(&format!("{}: not found; no file lists", urls[1]));
        }
        let dbs = FetchedDbs {
            base: base.to_string(),
            db,
            db_sig,
            files,
            files_sig,
        };
        Ok((dbs, entries))
    }

    /// Download the packages of `entries`, then publish the databases
    /// (upstream's, or with `partial` one listing only `entries`).
    #[allow(clippy::too_many_arguments)]
    fn download_repo(
        &self,
        engine: &Engine,
        repo: &RepoSource,
        dbs: FetchedDbs,
        entries: Vec<(db::RawDesc, Package)>,
        partial: bool,
        keyring: &Arc<Keyring>,
        reporter: &dyn Reporter,
    ) -> Result<crate::fetch::FetchSummary> {
        let packages: Vec<&Package> = entries.iter().map(|(_, p)| p).collect();
        let dbs = if partial {
            let raws: Vec<db::RawDesc> = entries.iter().map(|(r, _)| r.clone()).collect();
            let db = db::write_db(&raws)?;
            let db_sig = match &self.signing_key {
                Some(key) => Some(
                    key.sign_detached(&db)
                        .context("cannot sign the regenerated database")?,
                ),
                None => None,
            };
            FetchedDbs {
                base: dbs.base,
                db,
                db_sig,
                files: None,
                files_sig: None,
            }
        } else {
            dbs
        };
        let dir = self.repo_dir(&repo.name, &self.arch);

        // The mirror that served the database first, then the others.
        let mut bases = vec![dbs.base.clone()];
        bases.extend(
            repo.bases(&self.arch)
                .into_iter()
                .filter(|b| *b != dbs.base),
        );

        // The diff against the local database: a package it lists with the
        // same digest and size, present with its signature, was verified
        // when it arrived (`verify` re-checks it); only the rest is planned,
        // and the engine skips those already present after checking them.
        let known: HashMap<String, (crate::verify::Sha256Digest, u64)> = self
            .local_packages(&repo.name, &self.arch)
            .map(|l| {
                l.into_iter()
                    .map(|p| (p.filename, (p.sha256, p.csize)))
                    .collect()
            })
            .unwrap_or_default();
        let todo: Vec<&Package> = packages
            .iter()
            .copied()
            .filter(|p| {
                let unchanged = known.get(&p.filename) == Some(&(p.sha256, p.csize))
                    && fs::metadata(dir.join(&p.filename)).is_ok_and(|m| m.len() == p.csize)
                    && dir.join(format!("{}.sig", p.filename)).is_file();
                !unchanged
            })
            .collect();
        reporter.verbose(&format!(
            "{}: {} of {} packages unchanged since the local database",
            repo.name,
            packages.len() - todo.len(),
            packages.len()
        ));
        let plan = |base: &str| -> Result<Vec<FetchItem>> {
            todo.iter()
                .map(|p| package_item(base, &dir, p, keyring))
                .collect()
        };
        let mut total = crate::fetch::FetchSummary::default();
        let mut last_error = None;
        for (i, base) in bases.iter().enumerate() {
            match engine.fetch_all(plan(base)?, reporter) {
                Ok(s) => {
                    total.fetched += s.fetched;
                    total.bytes += s.bytes;
                    last_error = None;
                    break;
                }
                Err(failed) => {
                    total.fetched += failed.summary.fetched;
                    total.bytes += failed.summary.bytes;
                    if i + 1 < bases.len() {
                        reporter.warn(&format!(
                            "{} of {} packages failed from {base}; trying {} for the rest",
                            failed.failures.len(),
                            failed.total,
                            bases[i + 1]
                        ));
                    }
                    last_error = Some(failed);
                }
            }
        }
        if let Some(failed) = last_error {
            return Err(failed.into());
        }
        total.skipped = packages.len().saturating_sub(total.fetched);

        // Databases last: signatures before what they sign, file lists
        // before the package database.
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // A regenerated database is marked before it is written, so
        // `mirror serve`'s cache never replaces it with upstream's.
        store::mark_partial(&dir, partial)
            .with_context(|| format!("cannot mark {} partial", dir.display()))?;
        let name = &repo.name;
        let mut writes: Vec<(String, Option<&[u8]>)> = Vec::new();
        // No file lists (upstream has none, or a partial mirror): remove
        // stale ones.
        let files = dbs.files.as_deref();
        let sig = dbs.files_sig.as_deref().filter(|_| files.is_some());
        writes.push((format!("{name}.files.sig"), sig));
        writes.push((format!("{name}.files.tar.gz.sig"), sig));
        writes.push((format!("{name}.files.tar.gz"), files));
        writes.push((format!("{name}.files"), files));
        let sig = dbs.db_sig.as_deref();
        writes.push((format!("{name}.db.sig"), sig));
        writes.push((format!("{name}.db.tar.gz.sig"), sig));
        writes.push((format!("{name}.db.tar.gz"), Some(&dbs.db)));
        writes.push((format!("{name}.db"), Some(&dbs.db)));
        for (file, data) in writes {
            let path = dir.join(&file);
            match data {
                Some(d) => {
                    if fs::read(&path).ok().as_deref() != Some(d) {
                        store::write_atomic(&path, d)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
                // Upstream stopped signing: a stale signature would fail.
                None => match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                    }
                },
            }
        }
        reporter.info(&format!(
            "arch: {name}: {} packages{}; {} downloaded, database published{}",
            packages.len(),
            if partial { " selected" } else { " listed" },
            total.fetched,
            match (partial, &self.signing_key) {
                (false, _) => "",
                (true, None) => " (regenerated, unsigned)",
                (true, Some(_)) => " (regenerated, signed with --signing-key)",
            }
        ));
        Ok(total)
    }

    /// The repositories present in the tree: (repo, arch) with a `.db`.
    pub fn local_repos(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let top = self.root.join(TOP);
        let Ok(repos) = fs::read_dir(&top) else {
            return Ok(out);
        };
        for r in repos {
            let r = r?;
            let repo = r.file_name().to_string_lossy().into_owned();
            if !is_valid_repo_name(&repo) || !r.file_type()?.is_dir() {
                continue;
            }
            let Ok(arches) = fs::read_dir(r.path().join("os")) else {
                continue;
            };
            for a in arches {
                let arch = a?.file_name().to_string_lossy().into_owned();
                if is_valid_repo_name(&arch)
                    && self
                        .repo_dir(&repo, &arch)
                        .join(format!("{repo}.db"))
                        .is_file()
                {
                    out.push((repo.clone(), arch));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The packages of a local database.
    pub fn local_packages(&self, repo: &str, arch: &str) -> Result<Vec<Package>> {
        let path = self.repo_dir(repo, arch).join(format!("{repo}.db"));
        let bytes = limit::read_file(&path, limit::ARCH_DB)
            .with_context(|| format!("cannot read {}", path.display()))?;
        db::packages(&bytes, &path.display().to_string())
    }

    /// Every local package: (repo, arch, package), by repository and name.
    pub fn list(&self) -> Result<Vec<(String, String, Package)>> {
        let mut out = Vec::new();
        for (repo, arch) in self.local_repos()? {
            let mut pkgs = self.local_packages(&repo, &arch)?;
            pkgs.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(pkgs.into_iter().map(|p| (repo.clone(), arch.clone(), p)));
        }
        Ok(out)
    }

    /// Check every local database (its signature when present) and every
    /// package it lists: present, size, SHA-256 and signature. Returns how
    /// many packages were checked.
    pub fn verify(&self, reporter: &dyn Reporter) -> Result<usize> {
        let keyring = self.keyring()?;
        let mut failures = Vec::new();
        let mut checked = 0;
        for (repo, arch) in self.local_repos()? {
            let dir = self.repo_dir(&repo, &arch);
            for base in [format!("{repo}.db"), format!("{repo}.files")] {
                let sig = dir.join(format!("{base}.sig"));
                if sig.is_file() {
                    let r = limit::read_file(&sig, limit::COMPANION)
                        .map_err(anyhow::Error::from)
                        .and_then(|s| Ok(verify_file(keyring, &dir.join(&base), &s)?));
                    if let Err(e) = r {
                        failures.push(format!("{e:#}"));
                    }
                }
            }
            let pkgs = match self.local_packages(&repo, &arch) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{e:#}"));
                    continue;
                }
            };
            checked += pkgs.len();
            let bad: Vec<String> = pkgs
                .par_iter()
                .filter_map(|p| check_package(&dir, p, keyring, None).err())
                .collect();
            failures.extend(bad);
        }
        if !failures.is_empty() {
            bail!(
                "{} arch files failed verification:\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }
        reporter.info(&format!("arch: {checked} packages verified"));
        Ok(checked)
    }

    /// Remove package files (and their `.sig`) beyond the newest `retain`
    /// versions of each package, never one a local database lists. Returns
    /// the files removed.
    pub fn clean(&self, reporter: &dyn Reporter) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for (repo, arch) in self.local_repos()? {
            let dir = self.repo_dir(&repo, &arch);
            let protect: HashSet<String> = self
                .local_packages(&repo, &arch)?
                .into_iter()
                .map(|p| p.filename)
                .collect();
            let mut files = Vec::new();
            for e in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let e = e?;
                if e.file_type()?.is_file() {
                    files.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            for f in retain::to_remove(&files, self.retain, &protect) {
                for path in [dir.join(f), dir.join(format!("{f}.sig"))] {
                    match fs::remove_file(&path) {
                        Ok(()) => {
                            reporter.verbose(&format!("[removed] {}", path.display()));
                            removed.push(path);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("cannot remove {}", path.display()))
                        }
                    }
                }
            }
        }
        reporter.info(&format!(
            "arch: clean removed {} files (keeping {} versions per package)",
            removed.len(),
            self.retain
        ));
        Ok(removed)
    }

    /// Record the mark: see [`crate::eco::set_time_mark`].
    pub fn mark(&self, reporter: &dyn Reporter) -> Result<()> {
        crate::eco::set_time_mark(&self.root, ECOSYSTEM, reporter)
    }

    /// Pack the package files written since the mark (all when there is
    /// none), plus every current database and `lastsync`.
    pub fn pack(
        &self,
        archive: &Path,
        start: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<bundle::PackSummary> {
        let (mark, since) = crate::eco::time_pack_start(&self.root, ECOSYSTEM, start)?;
        let repos = self.local_repos()?;
        if repos.is_empty() {
            bail!(
                "no repository under {}; run download first",
                self.root.join(TOP).display()
            );
        }
        let mut members = Vec::new();
        let mut dbs = Vec::new();
        for (repo, arch) in &repos {
            let dir = self.repo_dir(repo, arch);
            let rel = format!("{TOP}/{repo}/os/{arch}");
            let mut found = Vec::new();
            for e in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !e.file_type()?.is_file() || name.starts_with('.') || name.ends_with(".partial")
                {
                    continue;
                }
                if is_db_file(repo, &name) {
                    dbs.push(format!("{rel}/{name}"));
                } else if store::epoch_nanos(e.metadata()?.modified()?) > since {
                    found.push(format!("{rel}/{name}"));
                }
            }
            found.sort();
            members.extend(found);
        }
        let package_files = members.len();
        dbs.sort_by_key(|p| (db_rank(p), p.clone()));
        members.extend(dbs);
        if self.root.join(TOP).join("lastsync").is_file() {
            members.push(format!("{TOP}/lastsync"));
        }
        let summary = crate::eco::selection::time_pack_pending::<SelectionEntry>(
            &self.root,
            ECOSYSTEM,
            mark,
            &members,
            package_files,
            archive,
            reporter,
        )?;
        Ok(summary)
    }

    /// Whether any repository held is a partial mirror (a selection).
    pub fn holds_a_subset(&self) -> Result<bool> {
        Ok(self
            .local_repos()?
            .iter()
            .any(|(repo, arch)| store::is_marked_partial(&self.repo_dir(repo, arch))))
    }

    /// The package files (and signatures) of `names` that no local
    /// database lists any more, relative to the root.
    pub fn unlisted_files_of(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if names.is_empty() {
            return Ok(out);
        }
        for (repo, arch) in self.local_repos()? {
            let listed: HashSet<String> = self
                .local_packages(&repo, &arch)?
                .into_iter()
                .map(|p| p.filename)
                .collect();
            let dir = self.repo_dir(&repo, &arch);
            for e in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let file = e?.file_name().to_string_lossy().into_owned();
                let base = file.strip_suffix(".sig").unwrap_or(&file);
                let Some(p) = retain::parse_package_file(base) else {
                    continue;
                };
                if names.contains(p.name) && !listed.contains(base) {
                    out.push(format!("{TOP}/{repo}/os/{arch}/{file}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether `path` is a file an archive may remove here: a package or
    /// its signature.
    pub fn is_removable(path: &str) -> bool {
        is_versioned(path) || path.strip_suffix(".sig").is_some_and(is_versioned)
    }

    /// Unpack a bundle: every staged package is checked against the staged
    /// (else the tree's) database and the keyring before anything is
    /// published; databases are published last.
    pub fn unpack(
        &self,
        archive: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Option<bundle::UnpackSummary>> {
        crate::eco::continuity::unpack_in_time_order(
            &self.root,
            ECOSYSTEM,
            "",
            archive,
            reporter,
            |expect_range| self.unpack_checked(archive, expect_range, reporter),
        )
    }

    /// [`Self::unpack`] once the archive's order was checked.
    fn unpack_checked(
        &self,
        archive: &Path,
        expect_range: Option<Option<bundle::Range>>,
        reporter: &dyn Reporter,
    ) -> Result<bundle::UnpackSummary> {
        let keyring = self.keyring()?.clone();
        let root = self.root.clone();
        let check: bundle::StagedCheck =
            Arc::new(move |dir: &Path, files: &[String]| check_staged(&root, &keyring, dir, files));
        let opts = bundle::UnpackOptions {
            allowed_prefixes: vec![format!("{TOP}/")],
            expect_ecosystem: Some(ECOSYSTEM.to_string()),
            publish_last: [
                "*.files.sig",
                "*.files.tar.gz.sig",
                "*.files.tar.gz",
                "*.files",
                "*.db.sig",
                "*.db.tar.gz.sig",
                "*.db.tar.gz",
                "*.db",
                "lastsync",
            ]
            .map(String::from)
            .to_vec(),
            versioned: Some(is_versioned),
            check_staged: Some(check),
            expect_range,
        };
        let summary = bundle::unpack(archive, &self.root, &opts, reporter)
            .with_context(|| format!("cannot unpack {}", archive.display()))?;
        let removed = crate::eco::selection::apply_archive_removes(
            &self.root,
            ECOSYSTEM,
            archive,
            summary.manifest.as_ref(),
            Arch::is_removable,
            reporter,
        )?;
        reporter.info(&format!(
            "arch: unpacked {} files ({} bytes); {removed} files removed",
            summary.files.len(),
            summary.bytes
        ));
        Ok(summary)
    }
}

/// The engine item for one package from `base`. The signature is the
/// database's `%PGPSIG%` when it embeds one (official databases do: one
/// request per package saved), else the `.sig` beside the package; either
/// way it is stored as `<package>.sig`, which pacman asks for.
fn package_item(base: &str, dir: &Path, p: &Package, keyring: &Arc<Keyring>) -> Result<FetchItem> {
    let url = format!("{base}/{}", p.filename);
    let source = match &p.pgpsig {
        Some(b64) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| anyhow!("{}: %PGPSIG% is not base64: {e}", p.filename))?;
            SignatureSource::Inline(bytes)
        }
        None => SignatureSource::Url(format!("{url}.sig")),
    };
    Ok(FetchItem::new(url, dir.join(&p.filename))
        .size(p.csize)
        .sha256(p.sha256)
        .signature(SignatureSpec {
            source,
            dest: dir.join(format!("{}.sig", p.filename)),
            check: keyring.clone(),
        }))
}

/// Whether `file` is one of `repo`'s database files (or their signatures).
fn is_db_file(repo: &str, file: &str) -> bool {
    [
        "db",
        "db.tar.gz",
        "files",
        "files.tar.gz",
        "db.sig",
        "db.tar.gz.sig",
        "files.sig",
        "files.tar.gz.sig",
    ]
    .iter()
    .any(|ext| file == format!("{repo}.{ext}"))
}

/// Publication order of database files: file lists before the package
/// database, signatures before what they sign.
fn db_rank(path: &str) -> u8 {
    let f = path.rsplit('/').next().unwrap_or(path);
    let kind = if f.contains(".files") { 0 } else { 4 };
    kind + match () {
        _ if f.ends_with(".sig") => 0,
        _ if f.ends_with(".tar.gz") => 1,
        _ => 2,
    }
}

/// Check one package file in `dir` against its database entry: size,
/// SHA-256 and its `.sig` (read from `sig_dir` when given, else `dir`).
fn check_package(
    dir: &Path,
    p: &Package,
    keyring: &Keyring,
    sig_dir: Option<&Path>,
) -> std::result::Result<(), String> {
    let path = dir.join(&p.filename);
    let shown = path.display().to_string();
    let meta = fs::metadata(&path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() != p.csize {
        return Err(format!(
            "size mismatch for {shown}\n    expected size: {} (%CSIZE%)\n    actual size:   {}",
            p.csize,
            meta.len()
        ));
    }
    let (actual, _) = hash_file(&path).map_err(|e| format!("{shown}: {e}"))?;
    if actual != p.sha256 {
        return Err(format!(
            "checksum mismatch for {shown}\n    expected sha256: {} (%SHA256SUM%)\n    actual sha256:   {actual}",
            p.sha256
        ));
    }
    let sig_path = sig_dir.unwrap_or(dir).join(format!("{}.sig", p.filename));
    let sig = limit::read_file(&sig_path, limit::COMPANION).map_err(|e| {
        format!(
            "{shown}: no signature: cannot read {}: {e}",
            sig_path.display()
        )
    })?;
    verify_file(keyring, &path, &sig).map_err(|e| e.to_string())?;
    Ok(())
}

/// The check run on a staged bundle. Every member is a database, a
/// package, a signature or `lastsync`; every staged database must parse
/// (and verify, when signed) and every package it lists must be staged or
/// in the tree; every staged package must match its entry (staged
/// database, else the tree's) and carry a good signature.
fn check_staged(
    root: &Path,
    keyring: &Keyring,
    dir: &Path,
    files: &[String],
) -> std::result::Result<(), String> {
    let mut failures = Vec::new();
    let staged: HashSet<&str> = files.iter().map(String::as_str).collect();
    // (repo dir relative path) -> packages by file name
    let mut dbs: HashMap<String, BTreeMap<String, Package>> = HashMap::new();
    let mut packages: Vec<(String, String)> = Vec::new();
    for f in files {
        let parts: Vec<&str> = f.split('/').collect();
        match parts[..] {
            [TOP, "lastsync"] => {
                let offered = limit::read_file(&dir.join(f), limit::COMPANION)
                    .ok()
                    .and_then(|b| parse_lastsync(&b));
                let published = fs::read(root.join(f)).ok().and_then(|b| parse_lastsync(&b));
                match (offered, published) {
                    (None, _) => failures.push(format!(
                        "{f}: expected the unix time of the last sync (seconds)"
                    )),
                    (Some(o), Some(p)) if o < p => failures.push(format!(
                        "{f}: the archive's last sync was {}, before the published one ({}); \
                         it is an older archive: the published tree is kept",
                        when(o),
                        when(p)
                    )),
                    _ => {}
                }
            }
            [TOP, repo, "os", arch, file]
                if is_valid_repo_name(repo) && is_valid_repo_name(arch) =>
            {
                let rel = format!("{TOP}/{repo}/os/{arch}");
                if is_db_file(repo, file) {
                    if file.ends_with(".sig") {
                        let signed = &f[..f.len() - 4];
                        if !staged.contains(signed) {
                            failures.push(format!("{f}: a signature without {signed}"));
                            continue;
                        }
                        let r = limit::read_file(&dir.join(f), limit::COMPANION)
                            .map_err(|e| format!("{f}: {e}"))
                            .and_then(|s| {
                                verify_file(keyring, &dir.join(signed), &s)
                                    .map(|_| ())
                                    .map_err(|e| {
                                        e.to_string().replace(&format!("{}/", dir.display()), "")
                                    })
                            });
                        if let Err(e) = r {
                            failures.push(e);
                        }
                    } else if let Some(main) = file.strip_suffix(".tar.gz") {
                        // A copy under the other name: the same bytes.
                        let main = format!("{rel}/{main}");
                        let same = staged.contains(main.as_str())
                            && limit::read_file(&dir.join(&main), db_limit(&main)).ok()
                                == limit::read_file(&dir.join(f), db_limit(&main)).ok();
                        if !same {
                            failures.push(format!(
                                "{f}: expected the same bytes as {main} in the archive"
                            ));
                        }
                    } else if *file == format!("{repo}.files") {
                        let r = limit::read_file(&dir.join(f), limit::ARCH_FILES)
                            .map_err(anyhow::Error::from)
                            .and_then(|b| db::parse(&b, f));
                        match r {
                            Ok(raws) => {
                                let published = published_newest_build(&root.join(f));
                                if let Err(e) =
                                    check_db_forward(f, db::newest_build(&raws), published)
                                {
                                    failures.push(e);
                                }
                            }
                            Err(e) => failures.push(format!("{e:#}")),
                        }
                    } else {
                        let r = limit::read_file(&dir.join(f), limit::ARCH_DB)
                            .map_err(|e| format!("{f}: {e}"))
                            .and_then(|b| db::entries(&b, f).map_err(|e| format!("{e:#}")))
                            .and_then(|entries| {
                                let offered = db::newest_build(entries.iter().map(|(r, _)| r));
                                let published = published_newest_build(&root.join(f));
                                check_db_forward(f, offered, published)?;
                                Ok(entries.into_iter().map(|(_, p)| p).collect::<Vec<_>>())
                            });
                        match r {
                            Ok(pkgs) => {
                                dbs.insert(
                                    rel,
                                    pkgs.into_iter().map(|p| (p.filename.clone(), p)).collect(),
                                );
                            }
                            Err(e) => failures.push(e),
                        }
                    }
                } else if let Some(pkg) = file.strip_suffix(".sig") {
                    if !staged.contains(format!("{rel}/{pkg}").as_str())
                        && !root.join(&rel).join(pkg).is_file()
                    {
                        failures.push(format!("{f}: a signature without {rel}/{pkg}"));
                    }
                } else if retain::parse_package_file(file).is_some() {
                    packages.push((rel, file.to_string()));
                } else {
                    failures.push(format!("{f}: not a file of a pacman repository"));
                }
            }
            _ => failures.push(format!(
                "{f}: not a file of a pacman repository (expected {TOP}/<repo>/os/<arch>/<file>)"
            )),
        }
    }
    // Packages against the databases.
    let mut tree_dbs: HashMap<String, Option<BTreeMap<String, Package>>> = HashMap::new();
    let checks: Vec<(String, Option<Package>)> = packages
        .into_iter()
        .map(|(rel, file)| {
            let entry = match dbs.get(&rel) {
                Some(d) => d.get(&file).cloned(),
                None => tree_dbs
                    .entry(rel.clone())
                    .or_insert_with(|| {
                        let repo = rel.split('/').nth(1).unwrap_or_default();
                        let path = root.join(&rel).join(format!("{repo}.db"));
                        limit::read_file(&path, limit::ARCH_DB).ok().and_then(|b| {
                            db::packages(&b, &path.display().to_string())
                                .ok()
                                .map(|p| p.into_iter().map(|p| (p.filename.clone(), p)).collect())
                        })
                    })
                    .as_ref()
                    .and_then(|d| d.get(&file).cloned()),
            };
            (format!("{rel}/{file}"), entry)
        })
        .collect();
    let bad: Vec<String> = checks
        .par_iter()
        .filter_map(|(f, entry)| {
            let path = dir.join(f);
            let sig_staged = dir.join(format!("{f}.sig"));
            let sig_path = if sig_staged.is_file() {
                sig_staged
            } else {
                root.join(format!("{f}.sig"))
            };
            let r = match entry {
                Some(p) => {
                    let (d, sig_dir) = (path.parent()?, sig_path.parent()?);
                    check_package(d, p, keyring, Some(sig_dir))
                }
                // An older version no database lists any more: its
                // signature still covers its bytes.
                None => limit::read_file(&sig_path, limit::COMPANION)
                    .map_err(|e| format!("{f}: no signature: {e}"))
                    .and_then(|s| {
                        verify_file(keyring, &path, &s)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }),
            };
            r.err()
                .map(|e| e.replace(&format!("{}/", dir.display()), ""))
        })
        .collect();
    failures.extend(bad);
    // Every package a staged database lists must be there after publishing.
    for (rel, pkgs) in &dbs {
        for file in pkgs.keys() {
            let f = format!("{rel}/{file}");
            if !staged.contains(f.as_str()) && !root.join(&f).is_file() {
                failures.push(format!(
                    "{rel}: the database lists {file}, which is neither in the archive nor in the tree"
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Unix seconds in words: `2023-11-14T22:13:20Z (1700000000)`.
fn when(secs: u64) -> String {
    format!("{} ({secs})", crate::bundle::manifest::rfc3339(secs))
}

/// Refuse a database whose newest `%BUILDDATE%` is older than the
/// published one's: a database only moves forward. `what` names it.
pub fn check_db_forward(
    what: &str,
    offered: Option<u64>,
    published: Option<u64>,
) -> std::result::Result<(), String> {
    match (offered, published) {
        (Some(o), Some(p)) if o < p => Err(format!(
            "{what}: its newest package was built {}, before the newest of the published \
             database ({}); the published database is kept",
            when(o),
            when(p)
        )),
        _ => Ok(()),
    }
}

/// The newest `%BUILDDATE%` of the published database at `path`, when
/// there is one that parses.
pub fn published_newest_build(path: &Path) -> Option<u64> {
    let data = limit::read_file(path, db_limit(&path.display().to_string())).ok()?;
    db::newest_build_of(&data, &path.display().to_string())
        .ok()
        .flatten()
}

/// `lastsync`'s unix seconds.
fn parse_lastsync(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_only_move_forward() {
        check_db_forward("core.db", Some(2), Some(1)).unwrap();
        check_db_forward("core.db", Some(2), Some(2)).unwrap();
        check_db_forward("core.db", None, Some(2)).unwrap();
        check_db_forward("core.db", Some(1), None).unwrap();
        let e = check_db_forward("core.db", Some(1_700_000_000), Some(1_700_100_000)).unwrap_err();
        assert!(
            e.contains("core.db")
                && e.contains("2023-11-14T22:13:20Z")
                && e.contains("2023-11-16T02:00:00Z"),
            "{e}"
        );
        assert_eq!(parse_lastsync(b"1700000000\n"), Some(1_700_000_000));
        assert_eq!(parse_lastsync(b"soon"), None);
    }
}
