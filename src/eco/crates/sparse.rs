//! A sparse upstream (`--index-url sparse+URL`, `sparse` = crates.io's
//! <https://index.crates.io/>): a sparse index cannot be listed, so what is
//! mirrored is a *selection*, resolved against the index files it fetches.
//!
//! # Selection
//!
//! - `--lockfile Cargo.lock`: exactly the crates.io packages locked there
//!   (`source` `registry+https://github.com/rust-lang/crates.io-index`,
//!   `sparse+https://index.crates.io/` or this upstream); a locked
//!   `checksum` must equal the index `cksum`.
//! - `--crate NAME[@REQ]` / `--crate-file`: the versions of NAME matching
//!   the semver requirement REQ (default `*`), newest first, not yanked,
//!   bounded by `--versions latest|all|N`; with `--with-deps
//!   normal,build[,dev]`, the closure: for every dependency of an included
//!   version (optional and target-specific ones too; renamed ones by their
//!   `package`; other registries skipped), the versions its requirement
//!   selects, bounded the same way.
//!
//! # State (`.mirror/crates-sparse.json`)
//!
//! The selection as last given (a run with no selection arguments reuses
//! it, so `update` refreshes it), the validators (`ETag`, `Last-Modified`)
//! of every index file held, and the versions selected. A refresh sends
//! them back; a `304` keeps the copy in `origin_master`.
//!
//! # Into git
//!
//! The fetched files are committed byte-for-byte as the tree of a new
//! `origin_master` commit (with upstream's `config.json`); `working` then
//! merges it like a git upstream, so `download`, `pack`, `import` and
//! `serve` work unchanged. An unchanged selection makes no commit.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::index::{self, Entry, Index, ORIGIN_MASTER};
use super::layout;
use crate::fetch::{Conditional, Engine, FetchError, Validators};
use crate::report::Reporter;

/// crates.io's sparse index (`--index-url sparse`).
pub const OFFICIAL_SPARSE: &str = "https://index.crates.io/";

/// The sources under which a lockfile names crates.io.
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// The state file's name under `.mirror/`.
pub const STATE_FILE: &str = "crates-sparse.json";

/// The base URL (ending in `/`) of a sparse `--index-url`, or `None` when
/// it names a git upstream.
pub fn sparse_base(index_url: &str) -> Option<String> {
    let url = if index_url == "sparse" {
        OFFICIAL_SPARSE
    } else {
        index_url.strip_prefix("sparse+")?
    };
    Some(format!("{}/", url.trim_end_matches('/')))
}

/// How many versions a requirement selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Versions {
    /// Every matching version.
    All,
    /// The newest N.
    Newest(usize),
}

impl std::str::FromStr for Versions {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Versions, String> {
        match s {
            "latest" => Ok(Versions::Newest(1)),
            "all" => Ok(Versions::All),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Versions::Newest(n)),
                _ => Err(format!(
                    "--versions {s:?}: expected latest, all or a number > 0"
                )),
            },
        }
    }
}

/// One package locked in a Cargo.lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Locked {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The locked checksum, when the lockfile has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The lockfile it came from (for messages).
    pub from: String,
}

/// What to mirror from a sparse upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Packages locked in the lockfiles given.
    pub locked: Vec<Locked>,
    /// `NAME[@REQ]`.
    pub crates: Vec<String>,
    /// The bound on each requirement.
    pub versions: Versions,
    /// Dependency kinds followed (`normal`, `build`, `dev`).
    pub with_deps: Vec<String>,
}

impl Selection {
    /// A selection from arguments; `None` when none was given.
    pub fn from_args(
        lockfiles: &[PathBuf],
        crates: &[String],
        crate_files: &[PathBuf],
        versions: Versions,
        with_deps: &[String],
        upstream: Option<&str>,
    ) -> Result<Option<Selection>> {
        let mut names: Vec<String> = crates.to_vec();
        for f in crate_files {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read crate file {}", f.display()))?;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("");
                names.extend(line.split_whitespace().map(str::to_string));
            }
        }
        for n in &names {
            let (name, req) = n.split_once('@').unwrap_or((n, "*"));
            if !layout::is_valid_crate_name(name) {
                bail!("--crate {n:?}: {name:?} is not a crate name");
            }
            semver::VersionReq::parse(req)
                .with_context(|| format!("--crate {n:?}: {req:?} is not a version requirement"))?;
        }
        for k in with_deps {
            if !matches!(k.as_str(), "normal" | "build" | "dev") {
                bail!("--with-deps {k:?}: expected normal, build or dev");
            }
        }
        let mut locked = Vec::new();
        for l in lockfiles {
            locked.extend(read_lockfile(l, upstream)?);
        }
        if locked.is_empty() && names.is_empty() && lockfiles.is_empty() {
            return Ok(None);
        }
        locked.sort();
        locked.dedup_by(|a, b| a.name == b.name && a.version == b.version);
        Ok(Some(Selection {
            locked,
            crates: names,
            versions,
            with_deps: with_deps.to_vec(),
        }))
    }
}

/// The registry packages a Cargo.lock locks (see the module docs).
pub fn read_lockfile(path: &Path, upstream: Option<&str>) -> Result<Vec<Locked>> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read lockfile {}", path.display()))?;
    let lock: Lock = toml::from_str(&text).with_context(|| {
        format!(
            "{}: not a Cargo.lock (expected [[package]] tables)",
            path.display()
        )
    })?;
    let ours = upstream.map(|u| format!("sparse+{u}"));
    let mut out = Vec::new();
    for p in lock.package {
        let Some(source) = p.source else { continue };
        let is_ours = CRATES_IO_SOURCES.contains(&source.as_str())
            || ours
                .as_deref()
                .is_some_and(|o| source.trim_end_matches('/') == o.trim_end_matches('/'));
        if !is_ours {
            continue;
        }
        if !layout::is_valid_crate_name(&p.name) || !layout::is_valid_version(&p.version) {
            bail!(
                "{}: refusing package {:?} {:?}",
                path.display(),
                p.name,
                p.version
            );
        }
        out.push(Locked {
            name: p.name,
            version: p.version,
            checksum: p.checksum,
            from: path.display().to_string(),
        });
    }
    Ok(out)
}

/// The tree's sparse state (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SparseState {
    /// The selection last given.
    pub selection: Option<Selection>,
    /// Validators of the index files held, by index path.
    #[serde(default)]
    pub validators: BTreeMap<String, Validators>,
    /// `name@version` of every version selected by the last pull.
    #[serde(default)]
    pub selected: Vec<String>,
}

impl SparseState {
    /// Load (missing: empty).
    pub fn load(root: &Path) -> Result<SparseState> {
        let path = crate::store::meta_path(root, STATE_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}: not a sparse state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SparseState::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Save atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = crate::store::meta_path(root, STATE_FILE);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        crate::store::write_atomic(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default)]
pub struct PullSummary {
    /// Index files requested (config.json included).
    pub requested: usize,
    /// Of those, answered `304`.
    pub not_modified: usize,
    /// Versions selected.
    pub selected: usize,
    /// The new `origin_master`.
    pub origin: Option<gix::ObjectId>,
}

/// One index line as the resolver reads it.
#[derive(Debug, Clone, Deserialize)]
struct Line {
    vers: String,
    #[serde(default)]
    deps: Vec<Dep>,
    #[serde(default)]
    yanked: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Dep {
    name: String,
    req: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    registry: Option<String>,
}

/// A fetched index file: its entries and lines.
struct File {
    entries: Vec<(Entry, Line)>,
}

/// Fetch the selection's index files from `base`, resolve it, commit the
/// files as a new `origin_master` (when anything changed) and update
/// `state`. Returns what it did; `working` is not touched.
pub fn pull(
    index: &Index,
    engine: &Engine,
    base: &str,
    selection: &Selection,
    state: &mut SparseState,
    reporter: &dyn Reporter,
) -> Result<PullSummary> {
    // The selection may come from the state file: its names are checked
    // again before any becomes a path or a URL.
    for c in &selection.crates {
        let name = c.split_once('@').map_or(c.as_str(), |x| x.0);
        if !layout::is_valid_crate_name(name) {
            bail!("the selection names {name:?}, which is not a crate name");
        }
    }
    for l in &selection.locked {
        if !layout::is_valid_crate_name(&l.name) || !layout::is_valid_version(&l.version) {
            bail!(
                "the selection locks {:?} {:?}, which is not a crate name and version",
                l.name,
                l.version
            );
        }
    }
    let previous = index.resolve(ORIGIN_MASTER)?;
    let held = |path: &str| -> Result<Option<Vec<u8>>> {
        match previous {
            Some(p) => index.file_at(p, path),
            None => Ok(None),
        }
    };
    let mut summary = PullSummary::default();
    let mut new_validators: BTreeMap<String, Validators> = BTreeMap::new();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();

    // Fetch a batch of index paths; a 404 is `None`.
    let mut fetch = |paths: Vec<String>,
                     files: &mut BTreeMap<String, Vec<u8>>,
                     summary: &mut PullSummary|
     -> Result<Vec<(String, bool)>> {
        let mut requests = Vec::new();
        for p in &paths {
            // Validators only for a copy still held.
            let v = match (state.validators.get(p), held(p)?) {
                (Some(v), Some(_)) => v.clone(),
                _ => Validators::default(),
            };
            requests.push((format!("{base}{p}"), v));
        }
        let results =
            engine.fetch_bytes_conditional_many(&requests, crate::limit::CRATE_INDEX_FILE);
        summary.requested += paths.len();
        let mut out = Vec::new();
        for ((p, (url, sent)), r) in paths.into_iter().zip(requests).zip(results) {
            match r {
                Ok(Conditional::NotModified) => {
                    summary.not_modified += 1;
                    let bytes = held(&p)?
                        .with_context(|| format!("{url}: 304 Not Modified, but no copy is held"))?;
                    files.insert(p.clone(), bytes);
                    new_validators.insert(p.clone(), sent);
                    out.push((p, true));
                }
                Ok(Conditional::Fetched { bytes, validators }) => {
                    reporter.verbose(&format!("[index] {url}"));
                    files.insert(p.clone(), bytes);
                    new_validators.insert(p.clone(), validators);
                    out.push((p, true));
                }
                Err(FetchError::Status { status, .. }) if status.as_u16() == 404 => {
                    out.push((p, false));
                }
                Err(e) => return Err(e).context("cannot fetch the sparse index"),
            }
        }
        Ok(out)
    };

    let config = fetch(vec!["config.json".to_string()], &mut files, &mut summary)?;
    if !config[0].1 {
        bail!("{base}config.json: 404 Not Found (is {base} a sparse index?)");
    }

    // Breadth-first over crate names; each file fetched once.
    let mut parsed: BTreeMap<String, File> = BTreeMap::new();
    let mut selected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut queue: VecDeque<(String, String, String)> = VecDeque::new(); // (name, req, needed by)
    let mut seen_reqs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut missing: Vec<String> = Vec::new();
    let kinds = &selection.with_deps;

    // The lockfile's packages, exactly.
    let mut lock_names: Vec<String> = selection.locked.iter().map(|l| l.name.clone()).collect();
    lock_names.sort();
    lock_names.dedup();
    let want: Vec<String> = selection
        .crates
        .iter()
        .map(|c| c.split_once('@').map_or(c.as_str(), |x| x.0).to_string())
        .chain(lock_names)
        .collect();
    let mut pending: Vec<String> = want.clone();
    for c in &selection.crates {
        let (name, req) = c.split_once('@').unwrap_or((c, "*"));
        queue.push_back((name.to_string(), req.to_string(), format!("--crate {c}")));
    }
    let mut lock_checked = false;
    loop {
        // Fetch every name not yet fetched, in one parallel batch.
        let mut batch: Vec<String> = pending
            .drain(..)
            .map(|n| layout::index_path(&n))
            .filter(|p| !parsed.contains_key(p))
            .collect();
        batch.sort();
        batch.dedup();
        if !batch.is_empty() {
            for (path, found) in fetch(batch, &mut files, &mut summary)? {
                let entries = if found {
                    let data = &files[&path];
                    let lines = index::parse_lines(data, &path, base)?;
                    let mut entries = Vec::new();
                    for (raw, e) in lines {
                        let line: Line = serde_json::from_slice(raw).with_context(|| {
                            format!("{base}{path}: cannot read the deps of {}", e.ident())
                        })?;
                        entries.push((e, line));
                    }
                    entries
                } else {
                    Vec::new()
                };
                parsed.insert(path, File { entries });
            }
        }
        if !lock_checked {
            lock_checked = true;
            for l in &selection.locked {
                let path = layout::index_path(&l.name);
                let file = &parsed[&path];
                let Some((e, _)) = file
                    .entries
                    .iter()
                    .find(|(e, _)| e.name == l.name && e.vers == l.version)
                else {
                    bail!(
                        "{}: {} {} is locked but {base}{path} does not list it",
                        l.from,
                        l.name,
                        l.version
                    );
                };
                if let Some(sum) = &l.checksum {
                    if !sum.eq_ignore_ascii_case(&e.cksum.to_hex()) {
                        bail!(
                            "{}: checksum of {} {} differs from the index {base}{path}\n    locked: {sum}\n    index:  {}",
                            l.from,
                            l.name,
                            l.version,
                            e.cksum
                        );
                    }
                }
                selected.insert((e.name.clone(), e.vers.clone()));
            }
        }
        // Resolve every queued requirement whose file is parsed.
        let mut progressed = false;
        let mut waiting = VecDeque::new();
        while let Some((name, req, by)) = queue.pop_front() {
            let path = layout::index_path(&name);
            let Some(file) = parsed.get(&path) else {
                pending.push(name.clone());
                waiting.push_back((name, req, by));
                continue;
            };
            progressed = true;
            if !seen_reqs.insert((name.to_ascii_lowercase(), req.clone())) {
                continue;
            }
            if file.entries.is_empty() {
                missing.push(format!("{name} ({base}{path}: 404; needed by {by})"));
                continue;
            }
            let chosen = choose(file, &name, &req, selection.versions, &by)?;
            if chosen.is_empty() && by.starts_with("--crate") {
                bail!("--crate {name}@{req}: no version of {name} in {base}{path} matches {req} (yanked versions are not selected)");
            }
            for (e, line) in chosen {
                if !selected.insert((e.name.clone(), e.vers.clone())) {
                    continue;
                }
                for d in &line.deps {
                    let kind = d.kind.as_deref().unwrap_or("normal");
                    if d.registry.is_some() || !kinds.iter().any(|k| k == kind) {
                        continue;
                    }
                    let dep = d.package.clone().unwrap_or_else(|| d.name.clone());
                    // Upstream's data: a name that is not a crate name
                    // never becomes an index path or a URL.
                    if !layout::is_valid_crate_name(&dep) {
                        reporter.warn(&format!(
                            "{base}{}: {} depends on {dep:?}, which is not a crate name (ASCII letters, digits, '-' or '_', a letter first, at most 64); the dependency is skipped",
                            layout::index_path(&e.name),
                            e.ident()
                        ));
                        continue;
                    }
                    waiting.push_back((dep.clone(), d.req.clone(), e.ident()));
                    if !parsed.contains_key(&layout::index_path(&dep)) {
                        pending.push(dep);
                    }
                }
            }
        }
        queue = waiting;
        if queue.is_empty() {
            break;
        }
        if pending.is_empty() && !progressed {
            bail!("internal error: the sparse resolution made no progress");
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} crates are not in the sparse index:\n  - {}",
            missing.len(),
            missing.join("\n  - ")
        );
    }
    // Keep the files of crates with a version selected, and config.json.
    let names: BTreeSet<String> = selected
        .iter()
        .map(|(n, _)| layout::index_path(n))
        .collect();
    files.retain(|p, _| p == "config.json" || names.contains(p));
    new_validators.retain(|p, _| files.contains_key(p));
    let commit = index.commit_files(previous, &files, "Update from the sparse index")?;
    index.set_branch(ORIGIN_MASTER, commit)?;
    index.git(
        "set a branch",
        &[
            "update-ref",
            "refs/remotes/origin/master",
            &commit.to_string(),
        ],
    )?;
    summary.origin = Some(commit);
    summary.selected = selected.len();
    state.validators = new_validators;
    state.selected = selected
        .into_iter()
        .map(|(n, v)| format!("{n}@{v}"))
        .collect();
    Ok(summary)
}

/// The versions of `file` that `req` selects, newest first, not yanked,
/// bounded by `versions`.
fn choose<'a>(
    file: &'a File,
    name: &str,
    req: &str,
    versions: Versions,
    by: &str,
) -> Result<Vec<&'a (Entry, Line)>> {
    let r = match semver::VersionReq::parse(req) {
        Ok(r) => r,
        // An old index line may carry a requirement semver no longer
        // reads; it selects nothing rather than stopping the pull.
        Err(_) if !by.starts_with("--crate") => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{name}: bad requirement {req:?}")),
    };
    let mut matching: Vec<(semver::Version, &(Entry, Line))> = file
        .entries
        .iter()
        .filter(|(_, l)| !l.yanked)
        .filter_map(|x| semver::Version::parse(&x.1.vers).ok().map(|v| (v, x)))
        .filter(|(v, _)| r.matches(v))
        .collect();
    matching.sort_by(|a, b| b.0.cmp(&a.0));
    let n = match versions {
        Versions::All => matching.len(),
        Versions::Newest(n) => n,
    };
    Ok(matching.into_iter().take(n).map(|(_, x)| x).collect())
}
