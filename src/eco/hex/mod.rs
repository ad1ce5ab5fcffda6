//! The Hex repository (Erlang and Elixir packages), mirrored verified.
//!
//! Upstream (`--url`, default `https://repo.hex.pm`) and the mirror share
//! one layout:
//!
//! ```text
//! hex/
//!   names                        gzip(Signed(Names))     every package + updated_at
//!   versions                     gzip(Signed(Versions))  every package's versions
//!   packages/<name>              gzip(Signed(Package))   releases, deps, outer checksum
//!   tarballs/<name>-<ver>.tar    SHA-256 of the file = the release's outer checksum
//!   public_key                   the PEM key the signed files verify with
//!   installs/                    Hex itself for `mix local.hex` (see [`installs`])
//! ```
//!
//! See [`registry`] for the signed resources. The signed files are kept
//! byte-for-byte; a partial selection (some packages, some versions) still
//! stores the official `names` and `versions`, so clients keep trusting the
//! repository's own key; a package outside the selection is simply absent
//! (404), which clients report as a missing package, but a release outside
//! it is listed and fails only on its tarball (said once per run).
//!
//! With the site's key ([`Hex::with_signing_key`], `--signing-key`), a
//! partial mirror instead publishes its own `packages/<name>` (the held
//! releases, each as upstream signed it), `versions` and `names` (the
//! held packages, with upstream's `updated_at`), signed with that key
//! under the same repository name, and its public key as `public_key`.
//! Signing happens here, online, after upstream's signatures and every
//! tarball are checked: the far side needs only the public key
//! (`--public-key`) and checks every file of an archive with it, as it
//! checks upstream's. Every file of such a tree verifies with the site's
//! key; a full mirror refuses one.
//!
//! Download plans, the engine executes:
//! 1. `names` and `versions` into memory, verified (signature, repository).
//! 2. `packages/<name>` for every selected package whose `updated_at` in
//!    `names` differs from the local `names` (or that is missing locally),
//!    fetched into memory and verified; unchanged ones are read from disk.
//! 3. Every selected release's tarball through [`Engine::fetch_all`] with
//!    the outer checksum as its SHA-256. Tarballs of unchanged packages
//!    that are present are not even hashed (they were verified before their
//!    package file was published; `verify` re-hashes everything); those of
//!    changed packages go through the engine's skip check.
//! 4. `installs/`: both install lists (signed with Elixir's key) into
//!    memory, the selected archives through the engine (SHA-512), the lists
//!    after their archives.
//! 5. Publish: `packages/<name>` after its tarballs, then `public_key`,
//!    `versions` and `names` last.
//!
//! `mark` records a time in `.mirror/state.json` (see
//! [`crate::eco::set_time_mark`]); `pack` carries the package files and
//! tarballs written since, plus the current `names` and `versions`;
//! `unpack` takes archives in order ([`crate::eco::continuity`]) and checks
//! every signature and checksum of the staged files before anything is
//! published (`public_key` first, `names`/`versions` last).
//!
//! Metadata only moves forward, judged by `names`' per-package
//! `updated_at` (`versions` and `packages/<name>` carry no time of their
//! own: they are judged by the `names` that comes with them). A download
//! from an upstream whose `names` is older keeps the published `names`,
//! `versions` and the package files it is older for (said once); an
//! archive with an older `names` is refused before anything is published.

pub mod installs;
pub mod lock;
pub mod registry;
pub mod requirement;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use prost::Message;
use rayon::prelude::*;

use crate::bundle;
use crate::fetch::{Engine, FetchError, FetchItem};
use crate::report::Reporter;
use crate::store::{self, epoch_nanos};
use crate::verify::digest::{hash_file, hash_file_sha512, Sha512Digest};
use installs::{Csv, InstallsPolicy};
use registry::{Package, PublicKey, Release, SigningKey, Timestamp};
use requirement::{newest_match, Requirement, SemVer};

/// The official repository.
pub const DEFAULT_URL: &str = "https://repo.hex.pm";

/// The default repository name (inside every signed payload).
pub const DEFAULT_REPO_NAME: &str = "hexpm";

/// The default archive for `pack`/`unpack`.
pub const DEFAULT_ARCHIVE: &str = "hex.tar.gz";

/// The ecosystem name in bundles and state.
pub const ECOSYSTEM: &str = "hex";

/// Whether `path` (relative to the root) is a versioned file, one whose
/// bytes never change once published: a package tarball,
/// `hex/tarballs/<name>-<version>.tar`, or a build of Hex itself,
/// `hex/installs/<elixir>/hex-<version>[-otp-<otp>].ez`.
pub fn is_versioned(path: &str) -> bool {
    match path.split('/').collect::<Vec<_>>()[..] {
        ["hex", "tarballs", name] => name.ends_with(".tar"),
        ["hex", "installs", _, name] => name.ends_with(".ez"),
        _ => false,
    }
}

/// Which versions of a selected package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionPolicy {
    /// Every release.
    All,
    /// The newest N releases (pre-releases only when nothing else).
    Newest(usize),
}

impl VersionPolicy {
    /// Parse `latest`, `all` or a count.
    pub fn parse(s: &str) -> Result<VersionPolicy> {
        match s {
            "all" => Ok(VersionPolicy::All),
            "latest" => Ok(VersionPolicy::Newest(1)),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(VersionPolicy::Newest(n)),
                _ => bail!("invalid --versions {s:?}: expected latest, all or a count N >= 1"),
            },
        }
    }
}

/// What to mirror.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Package names; empty means every package in `names`.
    pub packages: Vec<String>,
    /// Versions of each selected package.
    pub versions: VersionPolicy,
    /// Also the dependencies (same repository), closed transitively: for
    /// each requirement the newest matching release (every matching one
    /// with `--versions all`).
    pub with_deps: bool,
    /// Exact versions pinned by lock files (`--rebar-lock`, `--mix-lock`).
    pub locked: Vec<(String, String)>,
    /// Packages given with their own bound and `--with-deps` (remembered
    /// entries); the others take `versions` and `with_deps`.
    pub own: BTreeMap<String, (VersionPolicy, bool)>,
}

/// One entry of a remembered Hex selection: a package with its bound and
/// whether its dependencies come, or a version a lock file pinned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectionEntry {
    /// The package.
    pub name: String,
    /// The version a lock file pinned (`None`: a `--package`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<String>,
    /// The bound (`--versions`).
    pub versions: VersionPolicy,
    /// `--with-deps`.
    #[serde(default)]
    pub with_deps: bool,
}

impl crate::eco::selection::Entry for SelectionEntry {
    fn name(&self) -> &str {
        &self.name
    }
    fn same(&self, other: &Self) -> bool {
        self.name == other.name && self.locked.is_some() == other.locked.is_some()
    }
}

impl Selection {
    /// The selection the remembered `entries` make (no entries: every
    /// package, by `versions` and `with_deps`).
    pub fn from_entries(
        entries: &[SelectionEntry],
        versions: VersionPolicy,
        with_deps: bool,
    ) -> Selection {
        let mut sel = Selection {
            versions,
            with_deps,
            ..Selection::default()
        };
        for e in entries {
            match &e.locked {
                Some(v) => sel.locked.push((e.name.clone(), v.clone())),
                None => {
                    if !sel.packages.contains(&e.name) {
                        sel.packages.push(e.name.clone());
                    }
                    sel.own.insert(e.name.clone(), (e.versions, e.with_deps));
                }
            }
        }
        sel
    }

    /// The bound and `--with-deps` of a package given.
    fn policy_of(&self, name: &str) -> (VersionPolicy, bool) {
        self.own
            .get(name)
            .copied()
            .unwrap_or((self.versions, self.with_deps))
    }
}

/// The wider of two bounds and dependency choices (a package two entries
/// reach takes both).
fn wider(a: (VersionPolicy, bool), b: (VersionPolicy, bool)) -> (VersionPolicy, bool) {
    let v = match (a.0, b.0) {
        (VersionPolicy::All, _) | (_, VersionPolicy::All) => VersionPolicy::All,
        (VersionPolicy::Newest(x), VersionPolicy::Newest(y)) => VersionPolicy::Newest(x.max(y)),
    };
    (v, a.1 || b.1)
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            packages: Vec::new(),
            versions: VersionPolicy::All,
            with_deps: false,
            locked: Vec::new(),
            own: BTreeMap::new(),
        }
    }
}

/// What a download did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DownloadSummary {
    /// `packages/<name>` files fetched (changed or new).
    pub packages_fetched: usize,
    /// `packages/<name>` files unchanged.
    pub packages_unchanged: usize,
    /// Tarballs downloaded.
    pub tarballs_fetched: usize,
    /// Tarballs already present.
    pub tarballs_skipped: usize,
    /// Every package the selection reached (its closure).
    pub packages: BTreeSet<String>,
}

/// A verified package resource: its exact bytes and what they say.
struct Loaded {
    bytes: Vec<u8>,
    package: Package,
    fetched: bool,
}

/// The Hex part of a mirror tree.
pub struct Hex {
    root: PathBuf,
    url: String,
    repo: String,
    key: PublicKey,
    installs: InstallsPolicy,
    installs_key: PublicKey,
    signing: Option<SigningKey>,
    /// Whether this run said that an unsigned partial mirror lists
    /// releases it does not hold (said once per run).
    warned_unsigned: std::sync::atomic::AtomicBool,
}

impl Hex {
    /// `root` holds `hex/`; `url` is the upstream repository; `repo` the
    /// name payloads must carry; `key` the key they must be signed with.
    pub fn new(root: &Path, url: &str, repo: &str, key: PublicKey) -> Hex {
        Hex {
            root: root.to_path_buf(),
            url: url.trim_end_matches('/').to_string(),
            repo: repo.to_string(),
            key,
            installs: InstallsPolicy::None,
            installs_key: installs::elixir_key(),
            signing: None,
            warned_unsigned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Re-sign a partial mirror with the site's `key`: `names`, `versions`
    /// and `packages/<name>` list only what the tree holds, and every file
    /// of the tree is then checked with the key's public half.
    pub fn with_signing_key(mut self, key: SigningKey) -> Hex {
        self.signing = Some(key);
        self
    }

    /// The key the tree's own signed files verify with: the site's when
    /// re-signing, else the repository's.
    fn local_key(&self) -> &PublicKey {
        self.signing.as_ref().map_or(&self.key, SigningKey::public)
    }

    /// Also mirror `installs/` under `policy`, its lists verified with
    /// `key` (Elixir's, by default).
    pub fn with_installs(mut self, policy: InstallsPolicy, key: PublicKey) -> Hex {
        self.installs = policy;
        self.installs_key = key;
        self
    }

    fn dir(&self) -> PathBuf {
        self.root.join("hex")
    }

    /// `hex/packages/<name>`.
    pub fn package_path(&self, name: &str) -> PathBuf {
        self.dir().join("packages").join(name)
    }

    /// `hex/tarballs/<name>-<version>.tar`.
    pub fn tarball_path(&self, name: &str, version: &str) -> PathBuf {
        self.dir()
            .join("tarballs")
            .join(format!("{name}-{version}.tar"))
    }

    /// The local `names`, verified; `None` when absent.
    pub fn local_names(&self) -> Result<Option<registry::Names>> {
        let path = self.dir().join("names");
        match crate::limit::read_file(&path, crate::limit::HEX_RESOURCE) {
            Ok(b) => Ok(Some(registry::parse_names(
                &b,
                self.local_key(),
                &self.repo,
                &path.display().to_string(),
            )?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn read_local_package(&self, name: &str) -> Result<Option<Loaded>> {
        let path = self.package_path(name);
        match crate::limit::read_file(&path, crate::limit::HEX_RESOURCE) {
            Ok(bytes) => {
                let package = registry::parse_package(
                    &bytes,
                    self.local_key(),
                    &self.repo,
                    name,
                    &path.display().to_string(),
                )?;
                Ok(Some(Loaded {
                    bytes,
                    package,
                    fetched: false,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Download the selection (see the module docs for the order).
    pub fn download(
        &self,
        engine: &Engine,
        selection: &Selection,
        reporter: &dyn Reporter,
    ) -> Result<DownloadSummary> {
        let names_url = format!("{}/names", self.url);
        let versions_url = format!("{}/versions", self.url);
        let mut got = engine
            .fetch_bytes_many(
                &[names_url.clone(), versions_url.clone()],
                crate::limit::HEX_RESOURCE,
            )
            .into_iter();
        let names_bytes = got.next().expect("two results")?;
        let versions_bytes = got.next().expect("two results")?;
        let names = registry::parse_names(&names_bytes, &self.key, &self.repo, &names_url)?;
        let upstream_versions =
            registry::parse_versions(&versions_bytes, &self.key, &self.repo, &versions_url)?;
        let partial = !(selection.packages.is_empty()
            && selection.locked.is_empty()
            && selection.versions == VersionPolicy::All);
        match (&self.signing, partial) {
            (Some(_), false) => bail!(
                "--signing-key re-signs a partial mirror (--package, --package-file, lock \
                 files or --versions); a full mirror keeps the repository's signed files \
                 unchanged: drop --signing-key or select packages"
            ),
            (None, true)
                if !self
                    .warned_unsigned
                    .swap(true, std::sync::atomic::Ordering::Relaxed) =>
            {
                reporter.warn(
                    "hex: a partial mirror keeps the repository's signed names, versions and \
                 packages/<name>, which list releases this mirror does not hold: clients may \
                 resolve one and then fail on its missing tarball; --signing-key FILE publishes \
                 them listing only what is held, signed with the site's key",
                )
            }
            _ => {}
        }

        let remote: HashMap<&str, Option<&Timestamp>> = names
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.updated_at.as_ref()))
            .collect();
        let local_names = match self.local_names() {
            Ok(n) => n,
            Err(e) => {
                reporter.warn(&format!(
                    "local names ignored, every package is checked: {e:#}"
                ));
                None
            }
        };
        // Metadata only moves forward: when upstream's names is older than
        // the published one, the published names and versions are kept,
        // and so is each package file it is older for (said once).
        let behind = local_names.as_ref().and_then(|l| {
            registry::describe_behind(&names_url, &registry::names_behind(&names, l))
        });
        if let Some(why) = &behind {
            reporter.warn(&format!(
                "hex: {why}; keeping the published names, versions and package files"
            ));
        }
        let local: HashMap<String, Option<Timestamp>> = local_names
            .map(|n| {
                n.packages
                    .into_iter()
                    .map(|p| (p.name, p.updated_at))
                    .collect()
            })
            .unwrap_or_default();

        // The packages asked for, with the versions wanted of each
        // (`None`: by the policy).
        let mut wanted: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
        // The bound and `--with-deps` each package is taken with: its
        // entry's, or for a dependency, that of what needs it.
        let mut policy: BTreeMap<String, (VersionPolicy, bool)> = BTreeMap::new();
        if selection.packages.is_empty() && selection.locked.is_empty() {
            for p in &names.packages {
                if registry::is_valid_name(&p.name) {
                    wanted.insert(p.name.clone(), None);
                } else {
                    reporter.warn(&format!(
                        "{names_url}: skipping invalid package name {:?}",
                        p.name
                    ));
                }
            }
        } else {
            for name in &selection.packages {
                if !registry::is_valid_name(name) {
                    bail!("invalid package name {name:?}: expected letters, digits and _");
                }
                if !remote.contains_key(name.as_str()) {
                    bail!(
                        "{}: {names_url} does not list it; nothing was written",
                        crate::suggest::unknown("package", name, remote.keys().copied())
                    );
                }
                wanted.insert(name.clone(), None);
                policy.insert(name.clone(), selection.policy_of(name));
            }
            for (name, version) in &selection.locked {
                if !registry::is_valid_name(name) || !remote.contains_key(name.as_str()) {
                    bail!(
                        "locked {}: {names_url} does not list it; nothing was written",
                        crate::suggest::unknown("package", name, remote.keys().copied())
                    );
                }
                if let Some(reqs) = wanted
                    .entry(name.clone())
                    .or_insert_with(|| Some(BTreeSet::new()))
                {
                    reqs.insert(format!("== {version}"));
                }
                policy
                    .entry(name.clone())
                    .or_insert((selection.versions, selection.with_deps));
            }
        }

        // Load package resources in waves (a wave of dependencies per
        // round when closing over them).
        let mut loaded: BTreeMap<String, Loaded> = BTreeMap::new();
        let mut failures = Vec::new();
        let mut held = 0u64;
        let mut todo: Vec<String> = wanted.keys().cloned().collect();
        let mut releases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        while !todo.is_empty() {
            // Refetched when upstream's is newer (never when older). A
            // re-signed package file lists only what is held, so it is
            // always refetched to choose from (unless upstream's is older).
            let signing = self.signing.is_some();
            let changed = |name: &str| match (local.get(name), remote.get(name)) {
                (Some(Some(l)), Some(Some(r))) if signing => r.key() >= l.key(),
                (Some(Some(l)), Some(Some(r))) => r.key() > l.key(),
                (l, r) => l.map(Option::as_ref) != r.copied(),
            };
            // Unchanged package files are read and checked in parallel.
            let reads: Vec<(&String, Result<Option<Loaded>>)> = todo
                .par_iter()
                .filter(|n| !loaded.contains_key(*n) && !changed(n))
                .map(|n| (n, self.read_local_package(n)))
                .collect();
            for (name, r) in reads {
                match r {
                    Ok(Some(l)) => {
                        loaded.insert(name.clone(), l);
                    }
                    Ok(None) => {}
                    Err(e) => reporter.warn(&format!("refetching: {e:#}")),
                }
            }
            let fetch: Vec<String> = todo
                .iter()
                .filter(|n| !loaded.contains_key(*n))
                .cloned()
                .collect();
            let urls: Vec<String> = fetch
                .iter()
                .map(|n| format!("{}/packages/{n}", self.url))
                .collect();
            for ((name, url), r) in fetch
                .iter()
                .zip(&urls)
                .zip(engine.fetch_bytes_many(&urls, crate::limit::HEX_PACKAGE))
            {
                let r = r.map_err(anyhow::Error::from).and_then(|bytes| {
                    // Held until published: bounded in all, not only each.
                    held += bytes.len() as u64;
                    crate::limit::HEX_PACKAGES
                        .check(held)
                        .with_context(|| format!("refusing {url}"))?;
                    let package =
                        registry::parse_package(&bytes, &self.key, &self.repo, name, url)?;
                    Ok(Loaded {
                        bytes,
                        package,
                        fetched: true,
                    })
                });
                match r {
                    Ok(l) => {
                        loaded.insert(name.clone(), l);
                    }
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
            if !failures.is_empty() && !engine.options().keep_going {
                bail!(
                    "cannot fetch package resources; nothing was published:\n  - {}",
                    failures.join("\n  - ")
                );
            }

            // Decide releases of this wave; queue dependencies.
            let mut next = BTreeSet::new();
            for name in &todo {
                let Some(l) = loaded.get(name) else { continue };
                let (versions, with_deps) = policy
                    .get(name)
                    .copied()
                    .unwrap_or((selection.versions, selection.with_deps));
                let chosen =
                    choose_releases(&l.package, wanted.get(name).cloned().flatten(), versions);
                let entry = releases.entry(name.clone()).or_default();
                for r in &l.package.releases {
                    if !chosen.contains(&r.version) {
                        continue;
                    }
                    entry.insert(r.version.clone());
                    if !with_deps {
                        continue;
                    }
                    for d in &r.dependencies {
                        if d.repository.as_deref().is_some_and(|x| x != self.repo)
                            || !registry::is_valid_name(&d.package)
                        {
                            continue;
                        }
                        if !remote.contains_key(d.package.as_str()) {
                            reporter.warn(&format!(
                                "{name} {} depends on {}, which {names_url} does not list",
                                r.version, d.package
                            ));
                            continue;
                        }
                        let want = wanted
                            .entry(d.package.clone())
                            .or_insert_with(|| Some(BTreeSet::new()));
                        let mine = (versions, with_deps);
                        let theirs = policy.get(&d.package).copied();
                        let widened = theirs.map_or(mine, |t| wider(t, mine));
                        policy.insert(d.package.clone(), widened);
                        if let Some(set) = want {
                            if set.insert(d.requirement.clone()) || theirs != Some(widened) {
                                next.insert(d.package.clone());
                            }
                        }
                    }
                }
            }
            // A package comes back only with a requirement not seen before,
            // so cycles end.
            todo = next.into_iter().collect();
        }

        // Tarballs of every chosen release.
        let mut items = Vec::new();
        let mut trusted = 0;
        let mut tarball_of: HashMap<String, String> = HashMap::new();
        for (name, versions) in &releases {
            let l = &loaded[name];
            for r in &l.package.releases {
                if !versions.contains(&r.version) {
                    continue;
                }
                if !registry::is_valid_version(&r.version) {
                    reporter.warn(&format!("{name}: skipping invalid version {:?}", r.version));
                    continue;
                }
                let Some(digest) = r.outer_digest() else {
                    reporter.warn(&format!(
                        "{name} {}: no outer checksum in packages/{name}; tarball skipped",
                        r.version
                    ));
                    continue;
                };
                let dest = self.tarball_path(name, &r.version);
                // A package file is published only after its tarballs, so
                // the tarballs of an unchanged package were verified when
                // they were written: present is enough (`verify` re-hashes).
                if !l.fetched && dest.is_file() {
                    trusted += 1;
                    continue;
                }
                let url = format!("{}/tarballs/{name}-{}.tar", self.url, r.version);
                tarball_of.insert(url.clone(), name.clone());
                items.push(
                    FetchItem::new(url, dest)
                        .sha256(digest)
                        .limit(crate::limit::HEX_TARBALL),
                );
            }
        }
        let fetched = engine.fetch_all(items, reporter);
        let failed_packages: BTreeSet<String> = match &fetched {
            Ok(_) => BTreeSet::new(),
            Err(f) => f
                .failures
                .iter()
                .filter_map(|(url, _)| tarball_of.get(url).cloned())
                .collect(),
        };

        // Package files after their tarballs.
        let mut summary = DownloadSummary::default();
        for (name, l) in &loaded {
            if !l.fetched {
                summary.packages_unchanged += 1;
                continue;
            }
            if failed_packages.contains(name) {
                continue;
            }
            let path = self.package_path(name);
            let bytes = match &self.signing {
                None => l.bytes.clone(),
                Some(k) => {
                    // Held: the tarball is in the tree (every chosen one
                    // arrived, or the package is not written).
                    let held = registry::held_only(&l.package, |v| {
                        registry::is_valid_version(v) && self.tarball_path(name, v).is_file()
                    });
                    k.sign_resource(&held.encode_to_vec())?
                }
            };
            // Unchanged bytes (re-signing is deterministic) are left alone,
            // so `pack` does not carry them again.
            if self.signing.is_some() && fs::read(&path).ok().as_deref() == Some(&bytes[..]) {
                summary.packages_unchanged += 1;
                continue;
            }
            // Synced with the rest before `names` and `versions`.
            store::write_replace(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            summary.packages_fetched += 1;
        }
        let s = match fetched {
            Ok(s) => s,
            Err(f) => {
                return Err(anyhow::Error::from(f)
                    .context("some tarballs failed; names and versions were not updated"))
            }
        };
        summary.tarballs_fetched = s.fetched;
        summary.packages = releases.keys().cloned().collect();
        summary.tarballs_skipped = s.skipped + trusted;
        if !failures.is_empty() {
            bail!(
                "{} package resources failed (the rest was published; names and versions were not updated):\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }

        self.download_installs(engine, reporter)?;

        // Metadata last. A partial selection's `names` and `versions` are
        // marked first, so `mirror serve`'s cache never replaces them.
        let (versions_bytes, names_bytes) = match &self.signing {
            Some(k) if behind.is_none() => {
                self.resign_index(k, &names, &upstream_versions, &loaded, &local)?
            }
            _ => (versions_bytes, names_bytes),
        };
        store::mark_partial(&self.dir(), partial)
            .with_context(|| format!("cannot mark {} partial", self.dir().display()))?;
        self.write_public_key()?;
        // What they name first.
        store::sync_tree(&self.dir())
            .with_context(|| format!("cannot write {} to disk", self.dir().display()))?;
        for (file, bytes) in [("versions", &versions_bytes), ("names", &names_bytes)] {
            if behind.is_some() {
                break;
            }
            let path = self.dir().join(file);
            store::write_atomic(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        reporter.info(&format!(
            "hex: {} package files fetched, {} unchanged; {} tarballs downloaded ({} bytes), {} already present",
            summary.packages_fetched,
            summary.packages_unchanged,
            s.fetched,
            s.bytes,
            summary.tarballs_skipped
        ));
        Ok(summary)
    }

    /// `installs/`: each list and its signature into memory, checked with
    /// the Elixir key; the selected archives through the engine (SHA-512);
    /// then the lists, only when every archive arrived. A list the
    /// upstream does not have (404) is skipped with a warning.
    fn download_installs(&self, engine: &Engine, reporter: &dyn Reporter) -> Result<()> {
        if self.installs == InstallsPolicy::None {
            return Ok(());
        }
        let list_url = |csv: Csv| format!("{}/installs/{}", self.url, csv.file_name());
        let urls: Vec<String> = Csv::ALL
            .iter()
            .flat_map(|&c| [list_url(c), format!("{}.signed", list_url(c))])
            .collect();
        let each: Vec<(&str, crate::limit::Limit)> = urls
            .iter()
            .map(|u| {
                let limit = if u.ends_with(".signed") {
                    crate::limit::COMPANION
                } else {
                    crate::limit::HEX_RESOURCE
                };
                (u.as_str(), limit)
            })
            .collect();
        let mut got = engine.fetch_bytes_each(&each).into_iter();
        let mut lists = Vec::new();
        let mut items = Vec::new();
        for csv in Csv::ALL {
            let url = list_url(csv);
            let (text, signed) = (
                got.next().expect("two per list"),
                got.next().expect("two per list"),
            );
            let text = match text {
                Err(FetchError::Status { status, .. })
                    if status == reqwest::StatusCode::NOT_FOUND =>
                {
                    reporter.warn(&format!("{url}: not found upstream; skipped"));
                    continue;
                }
                r => r?,
            };
            let signed = signed.context("an install list must come with its signature")?;
            let archives = installs::open(csv, &text, &signed, &self.installs_key, &url)?;
            for a in installs::select(archives, self.installs) {
                items.push(
                    FetchItem::new(
                        format!("{}/installs/{}", self.url, a.path),
                        self.dir().join("installs").join(&a.path),
                    )
                    .sha512(a.sha512)
                    .limit(crate::limit::HEX_TARBALL),
                );
            }
            lists.push((csv, text, signed));
        }
        let s = engine.fetch_all(items, reporter).map_err(|f| {
            anyhow::Error::from(f)
                .context("some Hex archives failed; the install lists were not updated")
        })?;
        for (csv, text, signed) in &lists {
            let path = self.dir().join("installs").join(csv.file_name());
            let sig = path.with_file_name(format!("{}.signed", csv.file_name()));
            for (p, bytes) in [(&sig, signed), (&path, text)] {
                store::write_atomic(p, bytes)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
        }
        if !lists.is_empty() {
            reporter.info(&format!(
                "hex: installs: {} archives downloaded ({} bytes), {} already present",
                s.fetched, s.bytes, s.skipped
            ));
        }
        Ok(())
    }

    /// Every file under `installs/` (relative to the root, `hex/...`),
    /// sorted: archives in their version directories, then the lists.
    fn local_installs(&self) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.dir().join("installs");
        let mut out = Vec::new();
        let mut lists = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".partial") {
                continue;
            }
            if e.file_type()?.is_dir() {
                for f in fs::read_dir(e.path())? {
                    let f = f?;
                    let file = f.file_name().to_string_lossy().into_owned();
                    if f.file_type()?.is_file()
                        && !file.starts_with('.')
                        && !file.ends_with(".partial")
                    {
                        out.push((format!("hex/installs/{name}/{file}"), f.path()));
                    }
                }
            } else if e.file_type()?.is_file() {
                lists.push((format!("hex/installs/{name}"), e.path()));
            }
        }
        out.sort();
        lists.sort();
        out.extend(lists);
        Ok(out)
    }

    fn write_public_key(&self) -> Result<()> {
        write_key(&self.dir().join("public_key"), self.local_key().pem())
    }

    /// After files of packages were deleted here (a selection that
    /// dropped them): a re-signed tree's `versions` and `names` made again
    /// from the package files left, each with the `updated_at` it had.
    /// Nothing for a tree that is not re-signed (upstream's files list
    /// every package anyway).
    pub fn resign_held(&self) -> Result<()> {
        let Some(key) = &self.signing else {
            return Ok(());
        };
        let Some(names) = self.local_names()? else {
            return Ok(());
        };
        let path = self.dir().join("versions");
        let versions = registry::parse_versions(
            &crate::limit::read_file(&path, crate::limit::HEX_RESOURCE)
                .with_context(|| format!("cannot read {}", path.display()))?,
            self.local_key(),
            &self.repo,
            &path.display().to_string(),
        )?;
        let local: HashMap<String, Option<Timestamp>> = (names.packages.iter())
            .map(|p| (p.name.clone(), p.updated_at.clone()))
            .collect();
        let (versions_bytes, names_bytes) =
            self.resign_index(key, &names, &versions, &BTreeMap::new(), &local)?;
        for (file, bytes) in [("versions", &versions_bytes), ("names", &names_bytes)] {
            let path = self.dir().join(file);
            store::write_atomic(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// `versions` and `names` listing the package files the tree holds
    /// (after this download wrote its own), signed with `key`. Each
    /// package keeps upstream's `updated_at` for the file it holds: the
    /// upstream one when this download took upstream's file, else the
    /// published one, so "metadata only moves forward" judges re-signed
    /// files as it judges upstream's.
    fn resign_index(
        &self,
        key: &SigningKey,
        names: &registry::Names,
        versions: &registry::Versions,
        loaded: &BTreeMap<String, Loaded>,
        local: &HashMap<String, Option<Timestamp>>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let remote: HashMap<&str, &registry::NamesPackage> = names
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        let upstream_versions: HashMap<&str, &registry::VersionsPackage> = versions
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        let mut out_names = registry::Names {
            packages: Vec::new(),
            repository: self.repo.clone(),
        };
        let mut out_versions = registry::Versions {
            packages: Vec::new(),
            repository: self.repo.clone(),
        };
        for name in self.local_packages()? {
            let package = self
                .read_local_package(&name)?
                .with_context(|| format!("{} vanished", self.package_path(&name).display()))?
                .package;
            let updated_at = match (loaded.get(&name), local.get(&name)) {
                (Some(l), _) if l.fetched => {
                    remote.get(name.as_str()).and_then(|p| p.updated_at.clone())
                }
                (_, Some(t)) => t.clone(),
                (_, None) => remote.get(name.as_str()).and_then(|p| p.updated_at.clone()),
            };
            out_versions.packages.push(registry::versions_entry(
                &package,
                upstream_versions.get(name.as_str()).copied(),
            ));
            out_names
                .packages
                .push(registry::NamesPackage { name, updated_at });
        }
        Ok((
            key.sign_resource(&out_versions.encode_to_vec())?,
            key.sign_resource(&out_names.encode_to_vec())?,
        ))
    }

    /// Local package names (files under `hex/packages/`), sorted.
    pub fn local_packages(&self) -> Result<Vec<String>> {
        let dir = self.dir().join("packages");
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        for e in entries {
            let name = e?.file_name().to_string_lossy().into_owned();
            if registry::is_valid_name(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Check `names`, `versions`, every `packages/<name>` and every tarball
    /// present; returns how many tarballs were checked.
    pub fn verify(&self, reporter: &dyn Reporter) -> Result<usize> {
        let mut failures = Vec::new();
        for file in ["names", "versions"] {
            let path = self.dir().join(file);
            let what = path.display().to_string();
            let r = crate::limit::read_file(&path, crate::limit::HEX_RESOURCE)
                .with_context(|| format!("cannot read {what}"))
                .and_then(|b| {
                    if file == "names" {
                        registry::parse_names(&b, self.local_key(), &self.repo, &what)
                            .map(|_| ())?
                    } else {
                        registry::parse_versions(&b, self.local_key(), &self.repo, &what)
                            .map(|_| ())?
                    }
                    Ok(())
                });
            if let Err(e) = r {
                failures.push(format!("{e:#}"));
            }
        }
        let mut tarballs = Vec::new();
        for name in self.local_packages()? {
            match self.read_local_package(&name) {
                Ok(Some(l)) => {
                    for r in l.package.releases {
                        if !registry::is_valid_version(&r.version) {
                            continue;
                        }
                        let path = self.tarball_path(&name, &r.version);
                        if path.is_file() {
                            tarballs.push((path, r));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        let bad: Vec<String> = tarballs
            .par_iter()
            .filter_map(|(path, r)| check_tarball(path, r).err())
            .collect();
        failures.extend(bad);
        let installs_dir = self.dir().join("installs");
        let archives: Vec<(String, PathBuf)> = self
            .local_installs()?
            .into_iter()
            .filter(|(rel, _)| rel.matches('/').count() == 3)
            .collect();
        let lists = load_install_lists(|name| {
            let path = installs_dir.join(name);
            crate::limit::read_file(&path, crate::limit::HEX_RESOURCE)
                .ok()
                .map(|b| (path.display().to_string(), b))
        });
        failures.extend(check_installs(lists, &archives, &self.installs_key));
        for (path, _) in &tarballs {
            reporter.verbose(&format!("[verified] {}", path.display()));
        }
        if !failures.is_empty() {
            bail!(
                "{} hex files failed verification:\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }
        reporter.info(&format!(
            "hex: names, versions, {} package files, {} tarballs and {} Hex archives verified",
            self.local_packages()?.len(),
            tarballs.len(),
            archives.len()
        ));
        Ok(tarballs.len())
    }

    /// The mirrored packages from the signed `names`, with `updated_at`
    /// (seconds since the epoch).
    pub fn list(&self) -> Result<Vec<(String, Option<i64>)>> {
        let names = self.local_names()?.with_context(|| {
            format!(
                "{} is missing; run download first",
                self.dir().join("names").display()
            )
        })?;
        let local: BTreeSet<String> = self.local_packages()?.into_iter().collect();
        Ok(names
            .packages
            .into_iter()
            .filter(|p| local.contains(&p.name))
            .map(|p| (p.name, p.updated_at.map(|t| t.seconds)))
            .collect())
    }

    /// Record the mark: see [`crate::eco::set_time_mark`].
    pub fn mark(&self, reporter: &dyn Reporter) -> Result<()> {
        crate::eco::set_time_mark(&self.root, ECOSYSTEM, reporter)
    }

    /// Pack what changed since the mark (every package file and tarball
    /// when there is none), plus `names` and `versions`.
    pub fn pack(
        &self,
        archive: &Path,
        start: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<bundle::PackSummary> {
        let (mark, since) = crate::eco::time_pack_start(&self.root, ECOSYSTEM, start)?;
        let mut members = Vec::new();
        for sub in ["tarballs", "packages"] {
            let dir = self.dir().join(sub);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut found = Vec::new();
            for e in entries {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.ends_with(".partial") || !e.file_type()?.is_file()
                {
                    continue;
                }
                let mtime = e.metadata()?.modified()?;
                if epoch_nanos(mtime) > since {
                    found.push(format!("hex/{sub}/{name}"));
                }
            }
            found.sort();
            members.extend(found);
        }
        let package_files = members.len();
        for (rel, path) in self.local_installs()? {
            // The lists travel every time, as names and versions do.
            let is_list = rel.matches('/').count() == 2;
            if is_list || epoch_nanos(fs::metadata(&path)?.modified()?) > since {
                members.push(rel);
            }
        }
        for f in ["versions", "names"] {
            if !self.dir().join(f).is_file() {
                bail!(
                    "{} is missing; run download first",
                    self.dir().join(f).display()
                );
            }
            members.push(format!("hex/{f}"));
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

    /// The files of `names` held (`packages/<name>` and its tarballs),
    /// relative to the root.
    pub fn files_of(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for name in names {
            if self.package_path(name).is_file() {
                out.push(format!("hex/packages/{name}"));
            }
        }
        let dir = self.dir().join("tarballs");
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries {
                let file = e?.file_name().to_string_lossy().into_owned();
                // Names hold no `-`: the first one ends the name.
                if let Some((name, _)) = file.split_once('-') {
                    if names.contains(name) && file.ends_with(".tar") {
                        out.push(format!("hex/tarballs/{file}"));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether the tree mirrors some packages only: marked partial and
    /// holding fewer than half the packages its `names` lists (a mirror of
    /// every package with `--versions latest` is marked partial too).
    pub fn holds_a_subset(&self) -> Result<bool> {
        if !store::is_marked_partial(&self.dir()) {
            return Ok(false);
        }
        let Ok(Some(names)) = self.local_names() else {
            return Ok(false);
        };
        Ok(self.local_packages()?.len() * 2 < names.packages.len())
    }

    /// Every release held: its package file lists it and its tarball is
    /// present; (name, version), sorted.
    pub fn held_releases(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for name in self.local_packages()? {
            if let Some(l) = self.read_local_package(&name)? {
                for r in &l.package.releases {
                    if registry::is_valid_version(&r.version)
                        && self.tarball_path(&name, &r.version).is_file()
                    {
                        out.push((name.clone(), r.version.clone()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether `path` is a file an archive may remove here: a package
    /// file or a package tarball.
    pub fn is_removable(path: &str) -> bool {
        match path.split('/').collect::<Vec<_>>()[..] {
            ["hex", "packages", name] => registry::is_valid_name(name),
            ["hex", "tarballs", _] => is_versioned(path),
            _ => false,
        }
    }

    /// Unpack a bundle: every signed file and tarball is checked in the
    /// staging area before anything is published; `names`/`versions` last.
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
        // The tree's key: the repository's, or the site's for a re-signed
        // mirror (`--signing-key`, or its public half as `--public-key`).
        let key = self.local_key().clone();
        let installs_key = self.installs_key.clone();
        let repo = self.repo.clone();
        let root = self.root.clone();
        // The key is published once the archive passed every check, just
        // before its files, as download does: a client that fetches it to
        // check `names` must find it once `names` is there. A refused
        // archive leaves the tree as it was.
        let key_path = self.dir().join("public_key");
        let pem = self.local_key().pem().to_string();
        let check: bundle::StagedCheck = Arc::new(move |dir: &Path, files: &[String]| {
            check_staged(&root, &key, &installs_key, &repo, dir, files)?;
            write_key(&key_path, &pem).map_err(|e| format!("{e:#}"))
        });
        let opts = bundle::UnpackOptions {
            allowed_prefixes: vec![
                "hex/names".to_string(),
                "hex/versions".to_string(),
                "hex/packages/".to_string(),
                "hex/tarballs/".to_string(),
                "hex/installs/".to_string(),
            ],
            expect_ecosystem: Some(ECOSYSTEM.to_string()),
            publish_last: vec![
                "hex/installs/hex-1.x.csv.signed".to_string(),
                "hex/installs/hex-1.x.csv".to_string(),
                "hex/installs/hex.csv.signed".to_string(),
                "hex/installs/hex.csv".to_string(),
                "hex/packages/".to_string(),
                "hex/versions".to_string(),
                "hex/names".to_string(),
            ],
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
            Hex::is_removable,
            reporter,
        )?;
        reporter.info(&format!(
            "hex: unpacked {} files ({} bytes); {removed} files removed",
            summary.files.len(),
            summary.bytes
        ));
        Ok(summary)
    }
}

/// Write `pem` to `path` unless it holds it already.
fn write_key(path: &Path, pem: &str) -> Result<()> {
    if fs::read(path).ok().as_deref() != Some(pem.as_bytes()) {
        store::write_atomic(path, pem.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Which versions of `package` to take: those matching `requirements`
/// (a dependency; `Some`) or the policy (a package asked for; `None`).
fn choose_releases(
    package: &Package,
    requirements: Option<BTreeSet<String>>,
    policy: VersionPolicy,
) -> BTreeSet<String> {
    let versions: Vec<String> = package.releases.iter().map(|r| r.version.clone()).collect();
    let mut out = BTreeSet::new();
    match requirements {
        None => {
            let mut sorted: Vec<(bool, SemVer, &String)> = versions
                .iter()
                .filter_map(|v| SemVer::parse(v).map(|s| (!s.is_pre(), s, v)))
                .collect();
            sorted.sort();
            let n = match policy {
                VersionPolicy::All => usize::MAX,
                VersionPolicy::Newest(n) => n,
            };
            out.extend(sorted.iter().rev().take(n).map(|(_, _, v)| (*v).clone()));
            if policy == VersionPolicy::All {
                out.extend(versions.iter().cloned());
            }
        }
        Some(reqs) => {
            for req in reqs {
                match Requirement::parse(&req) {
                    Some(r) if policy == VersionPolicy::All => out.extend(
                        versions
                            .iter()
                            .filter(|v| SemVer::parse(v).is_some_and(|s| r.matches(&s)))
                            .cloned(),
                    ),
                    Some(r) => out.extend(newest_match(&r, &versions).map(str::to_string)),
                    // Not understood: take the newest, the client decides.
                    None => out.extend(choose_releases(package, None, VersionPolicy::Newest(1))),
                }
            }
        }
    }
    out
}

/// A tarball's SHA-256 against its release's outer checksum.
fn check_tarball(path: &Path, release: &Release) -> std::result::Result<(), String> {
    let Some(expected) = release.outer_digest() else {
        return Err(format!("{}: release has no outer checksum", path.display()));
    };
    let (actual, _) = hash_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if actual != expected {
        return Err(format!(
            "checksum mismatch for {}\n    expected sha256: {expected}\n    actual sha256:   {actual}",
            path.display()
        ));
    }
    Ok(())
}

/// The check run on a staged bundle: signatures and repository of every
/// signed file, and every tarball against the outer checksum of its
/// release (from the staged `packages/<name>`, else the tree's).
fn check_staged(
    root: &Path,
    key: &PublicKey,
    installs_key: &PublicKey,
    repo: &str,
    dir: &Path,
    files: &[String],
) -> std::result::Result<(), String> {
    enum Staged {
        Checked,
        Names(registry::Names),
        Versions,
        Package(String, Package),
        Tarball(String, String),
    }
    let results: Vec<std::result::Result<Staged, String>> = files
        .par_iter()
        .map(|f| {
            let path = dir.join(f);
            let read = || {
                crate::limit::read_file(&path, crate::limit::HEX_RESOURCE)
                    .map_err(|e| format!("{f}: {e}"))
            };
            match f.split('/').collect::<Vec<_>>()[..] {
                ["hex", "names"] => read().and_then(|b| {
                    registry::parse_names(&b, key, repo, f)
                        .map(Staged::Names)
                        .map_err(|e| e.to_string())
                }),
                ["hex", "versions"] => read().and_then(|b| {
                    registry::parse_versions(&b, key, repo, f)
                        .map(|_| Staged::Versions)
                        .map_err(|e| e.to_string())
                }),
                ["hex", "packages", name] if registry::is_valid_name(name) => {
                    read().and_then(|b| {
                        registry::parse_package(&b, key, repo, name, f)
                            .map(|p| Staged::Package(name.to_string(), p))
                            .map_err(|e| e.to_string())
                    })
                }
                ["hex", "tarballs", file] if file.ends_with(".tar") => Ok(Staged::Tarball(
                    f.clone(),
                    file.trim_end_matches(".tar").to_string(),
                )),
                // Checked below, as a whole.
                ["hex", "installs", ..] => Ok(Staged::Checked),
                _ => Err(format!("{f}: not a file of a Hex repository")),
            }
        })
        .collect();
    let mut failures = Vec::new();
    let mut packages: HashMap<String, Package> = HashMap::new();
    let mut tarballs = Vec::new();
    let (mut names, mut versions) = (None, false);
    for r in results {
        match r {
            Ok(Staged::Checked) => {}
            Ok(Staged::Names(n)) => names = Some(n),
            Ok(Staged::Versions) => versions = true,
            Ok(Staged::Package(name, p)) => {
                packages.insert(name, p);
            }
            Ok(Staged::Tarball(f, stem)) => tarballs.push((f, stem)),
            Err(e) => failures.push(e),
        }
    }
    failures.extend(check_staged_forward(
        root,
        key,
        repo,
        names.as_ref(),
        versions,
        packages.keys(),
    ));
    let mut to_hash = Vec::new();
    for (f, stem) in tarballs {
        let Some((name, version)) = stem.split_once('-') else {
            failures.push(format!("{f}: expected tarballs/<name>-<version>.tar"));
            continue;
        };
        if !packages.contains_key(name) {
            let path = root.join("hex/packages").join(name);
            match fs::read(&path) {
                Ok(b) => {
                    match registry::parse_package(&b, key, repo, name, &path.display().to_string())
                    {
                        Ok(p) => {
                            packages.insert(name.to_string(), p);
                        }
                        Err(e) => {
                            failures.push(format!("{f}: {e}"));
                            continue;
                        }
                    }
                }
                Err(_) => {
                    failures.push(format!(
                        "{f}: no packages/{name} in the bundle or the tree to check it against"
                    ));
                    continue;
                }
            }
        }
        let Some(release) = packages[name]
            .releases
            .iter()
            .find(|r| r.version == version)
        else {
            failures.push(format!("{f}: packages/{name} has no release {version}"));
            continue;
        };
        to_hash.push((f, release.clone()));
    }
    let bad: Vec<String> = to_hash
        .par_iter()
        .filter_map(|(f, release)| check_tarball(&dir.join(f), release).err())
        .map(|e| e.replace(&format!("{}/", dir.display()), ""))
        .collect();
    failures.extend(bad);

    // installs/: staged lists (else the tree's) checked, staged archives
    // against them.
    let staged_installs: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("hex/installs/"))
        .collect();
    if !staged_installs.is_empty() {
        let archives: Vec<(String, PathBuf)> = staged_installs
            .iter()
            .filter(|f| f.matches('/').count() == 3)
            .map(|f| ((*f).clone(), dir.join(f)))
            .collect();
        let lists = load_install_lists(|name| {
            let rel = format!("hex/installs/{name}");
            let path = if files.contains(&rel) {
                dir.join(&rel)
            } else {
                root.join(&rel)
            };
            fs::read(&path).ok().map(|b| (rel, b))
        });
        failures.extend(check_installs(lists, &archives, installs_key));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Metadata only moves forward: the staged `names` must not be older than
/// the published one for any package ([`registry::names_behind`]);
/// `versions` and `packages/<name>` carry no time of their own, so they
/// are judged by the staged `names` (which must come with them and list
/// each package the published one lists).
fn check_staged_forward<'a>(
    root: &Path,
    key: &PublicKey,
    repo: &str,
    names: Option<&registry::Names>,
    versions: bool,
    packages: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    let path = root.join("hex/names");
    let Some(published) = crate::limit::read_file(&path, crate::limit::HEX_RESOURCE)
        .ok()
        .and_then(|b| registry::parse_names(&b, key, repo, &path.display().to_string()).ok())
    else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    let Some(names) = names else {
        let mut undated: Vec<String> = packages.map(|p| format!("hex/packages/{p}")).collect();
        undated.sort();
        if versions {
            undated.insert(0, "hex/versions".to_string());
        }
        if !undated.is_empty() {
            failures.push(format!(
                "{} in the archive without hex/names: their age cannot be judged against the \
                 published names, which is kept",
                undated.join(", ")
            ));
        }
        return failures;
    };
    if let Some(why) = registry::describe_behind(
        "hex/names in the archive",
        &registry::names_behind(names, &published),
    ) {
        failures.push(format!("{why}; the published files are kept"));
    }
    let listed: BTreeSet<&str> = names.packages.iter().map(|p| p.name.as_str()).collect();
    let mut unlisted: Vec<&String> = packages
        .filter(|p| {
            !listed.contains(p.as_str()) && published.packages.iter().any(|q| &q.name == *p)
        })
        .collect();
    unlisted.sort();
    for p in unlisted {
        failures.push(format!(
            "hex/packages/{p}: the archive's names does not list {p} (the published names \
             does): its age cannot be judged"
        ));
    }
    failures
}

/// The install lists found through `read` (a file name under `installs/`
/// → where it was found and its bytes): each with its signature, if found.
type InstallList = (Csv, String, Vec<u8>, Option<Vec<u8>>);

fn load_install_lists(read: impl Fn(&str) -> Option<(String, Vec<u8>)>) -> Vec<InstallList> {
    Csv::ALL
        .into_iter()
        .filter_map(|csv| {
            let (what, text) = read(csv.file_name())?;
            let signed = read(&format!("{}.signed", csv.file_name())).map(|(_, b)| b);
            Some((csv, what, text, signed))
        })
        .collect()
}

/// Check each install list against its signature (with `key`), then each
/// of `archives` (`hex/installs/<version>/<file>`, its path) against the
/// SHA-512 a verified list gives it. Returns the failures.
fn check_installs(
    lists: Vec<InstallList>,
    archives: &[(String, PathBuf)],
    key: &PublicKey,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut want: HashMap<String, Sha512Digest> = HashMap::new();
    for (csv, what, text, signed) in lists {
        let Some(signed) = signed else {
            failures.push(format!("{what}: no {}.signed beside it", csv.file_name()));
            continue;
        };
        match installs::open(csv, &text, &signed, key, &what) {
            Ok(list) => want.extend(list.into_iter().map(|a| (a.path, a.sha512))),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let bad: Vec<String> = archives
        .par_iter()
        .filter_map(|(rel, path)| {
            let sub = rel.strip_prefix("hex/installs/").unwrap_or(rel);
            let Some(expected) = want.get(sub) else {
                return Some(format!("{rel}: not named by a verified install list"));
            };
            match hash_file_sha512(path) {
                Ok(actual) if actual == *expected => None,
                Ok(actual) => Some(
                    crate::verify::digest::DigestMismatch::new(rel.as_str(), *expected, actual)
                        .to_string(),
                ),
                Err(e) => Some(format!("{rel}: {e}")),
            }
        })
        .collect();
    failures.extend(bad);
    failures
}
