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
//!   selects, bounded the same way. Each `--crate` keeps the `--versions`
//!   and `--with-deps` it was given with.
//!
//! The selection only grows: what a run gives is added to what is
//! remembered (a `--crate` given again takes its new bound); `--remove
//! NAME` drops the entries of NAME and `--replace-selection` replaces the
//! whole. A crate no entry selects any more loses its index file, so the
//! range removes its versions on both sides.
//!
//! # State (`.mirror/crates-sparse.json`)
//!
//! The selection (a run with no selection arguments reuses it, so
//! `update` refreshes it; the form with one `versions` and `with_deps` for
//! every entry is read as each entry's), the validators (`ETag`,
//! `Last-Modified`) of every index file held, and the versions selected.
//! A refresh sends them back; a `304` keeps the copy in `origin_master`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// One `--crate NAME[@REQ]` of a selection with its own bound and
/// dependency kinds (as given with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    /// `NAME[@REQ]`.
    pub spec: String,
    /// The bound on the requirement (and on the dependencies it pulls in).
    pub versions: Versions,
    /// Dependency kinds followed (`normal`, `build`, `dev`).
    #[serde(default)]
    pub with_deps: Vec<String>,
}

impl Wanted {
    /// The crate name of the spec.
    pub fn name(&self) -> &str {
        self.spec
            .split_once('@')
            .map_or(self.spec.as_str(), |x| x.0)
    }
}

/// What to mirror from a sparse upstream: every entry given so far (a
/// selection only grows; `--remove` and `--replace-selection` drop).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawSelection")]
pub struct Selection {
    /// Packages locked in the lockfiles given.
    pub locked: Vec<Locked>,
    /// `NAME[@REQ]`, each with its own bound and dependency kinds.
    pub crates: Vec<Wanted>,
}

/// A selection as state files hold it: the per-entry form, or the form
/// with one `versions` and `with_deps` for every entry that earlier
/// releases wrote.
#[derive(Deserialize)]
struct RawSelection {
    #[serde(default)]
    locked: Vec<Locked>,
    #[serde(default)]
    crates: Vec<RawWanted>,
    #[serde(default)]
    versions: Option<Versions>,
    #[serde(default)]
    with_deps: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawWanted {
    Spec(String),
    Entry(Wanted),
}

impl From<RawSelection> for Selection {
    fn from(raw: RawSelection) -> Selection {
        let versions = raw.versions.unwrap_or(Versions::Newest(1));
        let with_deps = raw.with_deps.unwrap_or_default();
        Selection {
            locked: raw.locked,
            crates: raw
                .crates
                .into_iter()
                .map(|w| match w {
                    RawWanted::Spec(spec) => Wanted {
                        spec,
                        versions,
                        with_deps: with_deps.clone(),
                    },
                    RawWanted::Entry(w) => w,
                })
                .collect(),
        }
    }
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
            crates: names
                .into_iter()
                .map(|spec| Wanted {
                    spec,
                    versions,
                    with_deps: with_deps.to_vec(),
                })
                .collect(),
        }))
    }

    /// The crate names the selection names (its roots).
    pub fn names(&self) -> BTreeSet<String> {
        self.crates
            .iter()
            .map(|w| w.name().to_string())
            .chain(self.locked.iter().map(|l| l.name.clone()))
            .collect()
    }

    /// `self` with `change` applied: `--remove` names dropped (each must
    /// be in the selection), then the entries given added (an entry given
    /// again takes its new bound and dependency kinds); with
    /// `--replace-selection`, the entries given only.
    pub fn changed(self, change: &SelectionChange<Selection>) -> Result<Selection> {
        let mut sel = if change.replace {
            let Some(add) = &change.add else {
                bail!("--replace-selection: no new selection given (name it with --crate, --crate-file or --lockfile)");
            };
            return Ok(add.clone());
        } else {
            self
        };
        let held = sel.names();
        check_removals(&change.remove, &held, "crate")?;
        let gone = |n: &str| change.remove.iter().any(|r| r.eq_ignore_ascii_case(n));
        sel.crates.retain(|w| !gone(w.name()));
        sel.locked.retain(|l| !gone(&l.name));
        if let Some(add) = &change.add {
            for w in &add.crates {
                match sel.crates.iter_mut().find(|x| x.spec == w.spec) {
                    Some(x) => *x = w.clone(),
                    None => sel.crates.push(w.clone()),
                }
            }
            sel.locked.extend(add.locked.iter().cloned());
            sel.locked.sort();
            sel.locked
                .dedup_by(|a, b| a.name == b.name && a.version == b.version);
        }
        Ok(sel)
    }
}

/// How a run changes a remembered selection: what it adds, the names it
/// drops (`--remove`) and whether it replaces it (`--replace-selection`).
#[derive(Debug, Clone)]
pub struct SelectionChange<T> {
    /// The entries given (`None`: no selection argument).
    pub add: Option<T>,
    /// `--remove NAME`.
    pub remove: Vec<String>,
    /// `--replace-selection`.
    pub replace: bool,
}

impl<T> Default for SelectionChange<T> {
    fn default() -> Self {
        SelectionChange {
            add: None,
            remove: Vec::new(),
            replace: false,
        }
    }
}

impl<T> SelectionChange<T> {
    /// Whether the run names anything to drop.
    pub fn drops(&self) -> bool {
        self.replace || !self.remove.is_empty()
    }
}

/// Every `--remove NAME` must name an entry of the selection: a typo
/// would otherwise drop nothing and say nothing.
pub fn check_removals(remove: &[String], held: &BTreeSet<String>, what: &str) -> Result<()> {
    for r in remove {
        if !held.iter().any(|h| h.eq_ignore_ascii_case(r)) {
            let list: Vec<&str> = held.iter().map(String::as_str).collect();
            bail!(
                "--remove {r}: the remembered selection names no {what} {r:?}, so nothing was removed (it names: {}); check the spelling",
                if list.is_empty() {
                    "nothing".to_string()
                } else {
                    list.join(", ")
                }
            );
        }
    }
    Ok(())
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
    /// Load (missing: empty; a selection in the form with one
    /// `versions` and `with_deps` for all entries reads into the
    /// per-entry form).
    pub fn load(root: &Path) -> Result<SparseState> {
        crate::store::load_meta_json(root, STATE_FILE)
    }

    /// Save atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        crate::store::save_meta_json(root, STATE_FILE, self)
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

/// A requirement waiting for its index file.
struct Want {
    name: String,
    req: String,
    /// What needs it (for messages).
    by: String,
    /// The bound of the entry it came from.
    versions: Versions,
    /// The dependency kinds of the entry it came from.
    kinds: Vec<String>,
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
        let name = c.name();
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
        let results = engine.fetch_bytes_conditional_reporting(
            &requests,
            crate::limit::CRATE_INDEX_FILE,
            reporter,
        );
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
    // (name, req, needed by, the bound and kinds of the entry it came from)
    let mut queue: VecDeque<Want> = VecDeque::new();
    let mut seen_reqs: BTreeSet<(String, String, Versions, Vec<String>)> = BTreeSet::new();
    let mut missing: Vec<String> = Vec::new();

    // The lockfile's packages, exactly.
    let mut lock_names: Vec<String> = selection.locked.iter().map(|l| l.name.clone()).collect();
    lock_names.sort();
    lock_names.dedup();
    let want: Vec<String> = selection
        .crates
        .iter()
        .map(|c| c.name().to_string())
        .chain(lock_names)
        .collect();
    let mut pending: Vec<String> = want.clone();
    for c in &selection.crates {
        let (name, req) = c.spec.split_once('@').unwrap_or((&c.spec, "*"));
        queue.push_back(Want {
            name: name.to_string(),
            req: req.to_string(),
            by: format!("--crate {}", c.spec),
            versions: c.versions,
            kinds: c.with_deps.clone(),
        });
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
        while let Some(w) = queue.pop_front() {
            let path = layout::index_path(&w.name);
            let Some(file) = parsed.get(&path) else {
                pending.push(w.name.clone());
                waiting.push_back(w);
                continue;
            };
            progressed = true;
            let Want {
                name,
                req,
                by,
                versions,
                kinds,
            } = w;
            if !seen_reqs.insert((
                name.to_ascii_lowercase(),
                req.clone(),
                versions,
                kinds.clone(),
            )) {
                continue;
            }
            if file.entries.is_empty() {
                missing.push(format!("{name} ({base}{path}: 404; needed by {by})"));
                continue;
            }
            let chosen = choose(file, &name, &req, versions, &by)?;
            if chosen.is_empty() && by.starts_with("--crate") {
                bail!("--crate {name}@{req}: no version of {name} in {base}{path} matches {req} (yanked versions are not selected)");
            }
            for (e, line) in chosen {
                // A version already selected still passes on this entry's
                // kinds: another entry may follow fewer.
                if !selected.insert((e.name.clone(), e.vers.clone())) && kinds.is_empty() {
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
                    waiting.push_back(Want {
                        name: dep.clone(),
                        req: d.req.clone(),
                        by: e.ident(),
                        versions,
                        kinds: kinds.clone(),
                    });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(spec: &str, versions: Versions) -> Wanted {
        Wanted {
            spec: spec.into(),
            versions,
            with_deps: Vec::new(),
        }
    }

    #[test]
    fn the_one_policy_form_reads_per_entry() {
        let old =
            r#"{"locked":[],"crates":["a","b@1"],"versions":{"newest":2},"with_deps":["normal"]}"#;
        let sel: Selection = serde_json::from_str(old).unwrap();
        assert_eq!(sel.crates.len(), 2);
        for w in &sel.crates {
            assert_eq!(w.versions, Versions::Newest(2));
            assert_eq!(w.with_deps, ["normal"]);
        }
        let again: Selection = serde_json::from_slice(&serde_json::to_vec(&sel).unwrap()).unwrap();
        assert_eq!(again, sel);
    }

    #[test]
    fn selections_grow_and_drop_only_what_is_named() {
        let sel = Selection {
            locked: Vec::new(),
            crates: vec![wanted("a", Versions::All), wanted("b", Versions::All)],
        };
        let add = |crates: Vec<Wanted>| SelectionChange {
            add: Some(Selection {
                locked: Vec::new(),
                crates,
            }),
            ..SelectionChange::default()
        };
        // Added, and an entry given again takes its new bound.
        let grown = sel
            .clone()
            .changed(&add(vec![
                wanted("c", Versions::All),
                wanted("a", Versions::Newest(1)),
            ]))
            .unwrap();
        let specs: Vec<(&str, Versions)> = grown
            .crates
            .iter()
            .map(|w| (w.spec.as_str(), w.versions))
            .collect();
        assert_eq!(
            specs,
            [
                ("a", Versions::Newest(1)),
                ("b", Versions::All),
                ("c", Versions::All)
            ]
        );
        let mut drop = SelectionChange {
            remove: vec!["b".into()],
            ..SelectionChange::default()
        };
        assert_eq!(grown.clone().changed(&drop).unwrap().names().len(), 2);
        drop.remove = vec!["nosuch".into()];
        let e = grown.clone().changed(&drop).unwrap_err().to_string();
        assert!(
            e.contains("--remove nosuch") && e.contains("a, b, c"),
            "{e}"
        );
        let mut replace = add(vec![wanted("z", Versions::All)]);
        replace.replace = true;
        assert_eq!(
            grown.changed(&replace).unwrap().names(),
            BTreeSet::from(["z".to_string()])
        );
    }
}
