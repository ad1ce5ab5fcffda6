//! crates.io: the git index and the `.crate` files it lists.
//!
//! ```text
//! git/crates.io-index/            bare git index (see [`index`]): HEAD -> master,
//!                                 branches origin_master, working, master, mark
//! git/crates.io-index/origin.bundle   the bundle last packed or unpacked
//! crates/<lowerprefix>/<name>/<name>-<version>.crate   (see [`layout`])
//! crates/config.toml              romt's marker: prefix = "lower"
//! ```
//!
//! Operations run in the order given and share every option (romt's
//! model). A RANGE is START..END: START defaults to `mark` (a missing
//! `mark` then means the start of history), `0` is the start of history,
//! END defaults to `working`.
//!
//! - `init` / `init-import`: a new index whose `origin` is `--index-url` /
//!   the `origin.bundle` an `unpack` leaves;
//! - `pull`: fetch `origin` into `origin_master`, merge into `working`;
//! - `download`: every crate the RANGE added, through the shared engine,
//!   each checked against its index `cksum`;
//! - `prune`: delete the crate files of versions the RANGE removed
//!   (whether selected or not: the index no longer lists them);
//! - `verify`: check every crate the RANGE added against the index;
//! - `pack`: `origin.bundle` (git bundle of START..END) plus the RANGE's
//!   crates, with `MIRROR-BUNDLE.json`, whose `removes` lists the crates
//!   the far side deletes. A partial tree also carries every crate it holds
//!   that no archive carried yet (a selection grown to versions whose
//!   index file did not change) and removes what the archives carried
//!   that it no longer holds; what the far side holds after each archive
//!   is recorded in `.mirror/crates-carried.json`. A RANGE with no
//!   commits and nothing to carry packs an archive holding only the
//!   manifest, which imports as a no-op;
//! - `unpack`: take archives in order ([`crate::eco::continuity`]: a
//!   replay is a no-op, a gap is refused), say what the archive removes,
//!   stage it, fetch its bundle, refuse an index that does not continue
//!   the one imported before (unless `--allow-rewrite`) or changes the
//!   `cksum` of a version `master` publishes, check every crate it carries
//!   against the index it brings (against the index held when it carries
//!   no bundle), only then publish the crates (romt's archives included),
//!   then delete what it removes;
//! - `mark`: move `mark` and `master` (what is served) to END (a commit on
//!   top of END when END's tree is not all index layout or lacks this
//!   mirror's own `config.json`);
//! - `config`: commit a `config.json` pointing at `--server-url`, record it
//!   as this mirror's own, then mark.
//!
//! With a git upstream, `--filter` patterns are remembered in
//! `.mirror/crates-filter.json` by the first `download` of a run: they
//! only grow (`--remove NAME`, `--replace-selection` drop, and delete the
//! crates dropped), and a run without `--filter` mirrors them, never the
//! whole upstream.
//!
//! The far side (an index made by `init-import`) always has its own
//! `config.json`: the one `config` wrote, else the one it makes for
//! `--server-url`; what a bundle carries never replaces it. The online
//! side publishes upstream's until `config` runs there.
//!
//! `master` and `mark` only move in `mark`, and the chain stops at the
//! first failed operation, so they never pass a crate that failed —
//! unless `--keep-going`: then the chain goes on and the run ends with the
//! list of failures and a non-zero exit.

pub mod filter;
pub mod index;
pub mod layout;
pub mod sparse;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::bundle;
use crate::eco::continuity;
use crate::fetch::{Engine, FetchFailed, FetchItem, FetchOptions};
use crate::report::Reporter;
use crate::verify::digest::hash_file;
use filter::CrateFilter;
use index::{Entry, Index, MARK, MASTER};

/// The ecosystem name in bundles.
pub const ECOSYSTEM: &str = "crates";

/// The default upstream index.
pub const DEFAULT_INDEX_URL: &str = "https://github.com/rust-lang/crates.io-index";

/// The default crate download template.
pub const DEFAULT_CRATES_URL: &str =
    "https://static.crates.io/crates/{crate}/{crate}-{version}.crate";

/// The default archive.
pub const DEFAULT_ARCHIVE: &str = "crates.tar.gz";

/// The default `--server-url`.
pub const DEFAULT_SERVER_URL: &str = "http://localhost:8000";

/// The archive member holding the index bundle (romt's name).
pub const BUNDLE_MEMBER: &str = "git/crates.io-index/origin.bundle";

/// The marker of a partial mirror, in the crates directory (so archives
/// carry it): its `master` lists only the versions whose `.crate` is held.
pub const PARTIAL_MARKER: &str = "PARTIAL";

const PARTIAL_TEXT: &[u8] =
    b"# mirror: a partial crates mirror. The published index (branch master)\n\
# lists only the versions whose .crate file is held here.\n";

/// One operation of a `mirror crate` chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create the index for downloading.
    Init,
    /// Create the index for importing.
    InitImport,
    /// Write `config.json` for `--server-url`, then mark.
    Config,
    /// Fetch upstream and merge it into `working`.
    Pull,
    /// Delete crate files of removed versions.
    Prune,
    /// Download the RANGE's crates.
    Download,
    /// Move `mark` and `master` to END.
    Mark,
    /// Pack the RANGE into the archive.
    Pack,
    /// Unpack an archive.
    Unpack,
    /// Verify the RANGE's crates.
    Verify,
    /// Print the RANGE's crates.
    List,
    /// pull prune download mark
    Update,
    /// pull prune download pack mark
    Export,
    /// unpack pull prune verify mark
    Import,
}

impl Op {
    /// The operations an alias stands for (itself otherwise).
    pub fn expand(self) -> Vec<Op> {
        use Op::*;
        match self {
            Update => vec![Pull, Prune, Download, Mark],
            Export => vec![Pull, Prune, Download, Pack, Mark],
            Import => vec![Unpack, Pull, Prune, Verify, Mark],
            op => vec![op],
        }
    }
}

/// Everything a chain needs, resolved (paths absolute).
#[derive(Debug, Clone)]
pub struct CrateOptions {
    /// The mirror root.
    pub root: PathBuf,
    /// The index repository.
    pub index: PathBuf,
    /// The crate file directory.
    pub crates: PathBuf,
    /// Upstream index (git URL, file:// or path) for `init`.
    pub index_url: String,
    /// Download template (`{crate}`, `{version}`, `{prefix}`,
    /// `{lowerprefix}`, `{sha256-checksum}`).
    pub crates_url: String,
    /// START (`None`: `mark`, missing allowed); `0` is the start of history.
    pub start: Option<String>,
    /// END.
    pub end: String,
    /// A START that names nothing means the start of history.
    pub allow_missing_start: bool,
    /// `unpack` takes an index whose history does not continue the one
    /// imported before.
    pub allow_rewrite: bool,
    /// Archive for pack and unpack.
    pub archive: PathBuf,
    /// Where the bundle is written (pack) or the origin reads it (init-import).
    pub bundle_path: PathBuf,
    /// Base URL `config` writes into `config.json`.
    pub server_url: String,
    /// Which crates.
    pub filter: CrateFilter,
    /// Record crates that downloaded or verified.
    pub good_crates: Option<PathBuf>,
    /// Record crates that failed.
    pub bad_crates: Option<PathBuf>,
    /// What to mirror from a sparse upstream (`None`: the one remembered).
    pub selection: Option<sparse::Selection>,
    /// `--remove NAME`: names dropped from the remembered selection (or
    /// `--filter`).
    pub remove: Vec<String>,
    /// `--replace-selection`: the selection (or `--filter`) given replaces
    /// the remembered one.
    pub replace_selection: bool,
    /// `list` prints what the mirror holds as JSON.
    pub json: bool,
}

/// The crates part of a mirror tree.
pub struct Crates {
    opts: CrateOptions,
    index: Index,
    fetch: FetchOptions,
    engine: Option<Engine>,
    /// The commit the archive unpacked in this run brought: the pull
    /// after it must reach it.
    unpacked: std::sync::Mutex<Option<gix::ObjectId>>,
}

impl Crates {
    /// Prepare a chain; nothing is read yet.
    pub fn new(opts: CrateOptions, fetch: FetchOptions) -> Crates {
        let index = Index::new(&opts.index);
        Crates {
            opts,
            index,
            fetch,
            engine: None,
            unpacked: std::sync::Mutex::new(None),
        }
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Run `ops` in order (aliases expanded). Without `--keep-going` the
    /// first failure stops the chain; with it, failures of `download`,
    /// `verify` and `pack` are collected and reported at the end.
    pub fn run(&mut self, ops: &[Op], reporter: &dyn Reporter) -> Result<()> {
        let keep_going = self.fetch.keep_going;
        if ops.iter().any(|o| !matches!(o, Op::List | Op::Verify)) {
            // A run that writes holds the tree lock: lock files in the
            // index are a killed run's.
            for f in self.index.remove_stale_locks()? {
                reporter.info(&format!(
                    "crate: removed {}, left by a run that was killed",
                    f.display()
                ));
            }
        }
        let expanded: Vec<Op> = ops.iter().flat_map(|o| o.expand()).collect();
        if !self.opts.remove.is_empty() || self.opts.replace_selection {
            let sparse = self.sparse_base()?.is_some()
                || (!self.opts.index.exists()
                    && sparse::sparse_base(&self.opts.index_url).is_some());
            let (needed, what) = if sparse {
                (Op::Pull, "pull")
            } else {
                (Op::Download, "download")
            };
            crate::eco::selection::require_op(true, expanded.contains(&needed), what)?;
        }
        let mut failures: Vec<String> = Vec::new();
        let mut marked_partial = false;
        let mut filter_remembered = false;
        for op in expanded {
            if op == Op::Download && !filter_remembered {
                filter_remembered = true;
                self.remember_filter(reporter)?;
            }
            // A filter makes the tree partial from its first write on
            // (init creates the crates directory; list and verify write
            // nothing).
            if !marked_partial
                && !self.opts.filter.is_empty()
                && !matches!(op, Op::List | Op::Verify | Op::InitImport)
                && (op == Op::Init || self.opts.crates.is_dir())
            {
                marked_partial = true;
                if op != Op::Init {
                    self.set_partial()?;
                }
            }
            reporter.verbose(&format!("crate: {op:?}"));
            let r = match op {
                Op::Init => self.init(reporter),
                Op::InitImport => self.init_import(reporter),
                Op::Config => self
                    .config(reporter)
                    .and_then(|_| self.publish(reporter, false)),
                Op::Pull => self.pull(reporter),
                Op::Prune => self.prune(reporter),
                Op::Download => self.download(reporter),
                Op::Mark => self.mark(reporter),
                Op::Pack => self.pack(reporter),
                Op::Unpack => self.unpack(reporter),
                Op::Verify => self.verify(reporter),
                Op::List => self.list(),
                Op::Update | Op::Export | Op::Import => unreachable!("expanded"),
            };
            match r {
                Ok(()) => {}
                // Only failures of single crates go on; anything else (a
                // broken index, an archive not written) stops the chain, so
                // `mark` never moves past commits that were not carried.
                Err(e) if keep_going && (e.is::<FetchFailed>() || e.is::<CrateFailures>()) => {
                    reporter.info(&format!("error: {e:#}"));
                    failures.push(format!("{op:?}: {e:#}").to_lowercase_first());
                }
                Err(e) => return Err(e),
            }
        }
        if !failures.is_empty() {
            bail!(
                "{} operation(s) failed (--keep-going went on):\n  - {}",
                failures.len(),
                failures.join("\n  - ").replace('\n', "\n    ")
            );
        }
        Ok(())
    }

    fn init(&self, reporter: &dyn Reporter) -> Result<()> {
        if let Some(base) = sparse::sparse_base(&self.opts.index_url) {
            // The origin URL records the upstream; git never fetches it.
            Index::init(
                &self.opts.index,
                &format!("sparse+{base}"),
                &["+refs/heads/master:refs/remotes/origin/master"],
            )?;
            self.init_crates_dir()?;
            self.set_partial()?;
            reporter.info(&format!(
                "crate: index {} created (sparse upstream {base}; a partial mirror of the selection)",
                self.opts.index.display()
            ));
            return Ok(());
        }
        let url = absolute_url(&self.opts.index_url)?;
        Index::init(
            &self.opts.index,
            &url,
            &["+refs/heads/master:refs/remotes/origin/master"],
        )?;
        self.init_crates_dir()?;
        reporter.info(&format!(
            "crate: index {} created (origin {url})",
            self.opts.index.display()
        ));
        Ok(())
    }

    /// The origin URL of a far side: the bundle's absolute path as this
    /// run finds it from the root (romt writes an unpacked bundle to the
    /// origin URL as it stands, so it must be absolute). Each pull on the
    /// far side rewrites a URL that differs (a tree moved or copied), so a
    /// stale path is never fetched.
    fn bundle_origin_url(&self) -> Result<String> {
        self.opts
            .bundle_path
            .to_str()
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "bundle path {} is not UTF-8",
                    self.opts.bundle_path.display()
                )
            })
    }

    fn init_import(&self, reporter: &dyn Reporter) -> Result<()> {
        let bundle = self.bundle_origin_url()?;
        Index::init(
            &self.opts.index,
            &bundle,
            &[
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/heads/bundle/*:refs/remotes/origin/*",
            ],
        )?;
        self.init_crates_dir()?;
        reporter.info(&format!(
            "crate: index {} created for import (origin {bundle})",
            self.opts.index.display()
        ));
        Ok(())
    }

    /// Whether this tree is a partial mirror (see [`PARTIAL_MARKER`]).
    pub fn is_partial(&self) -> bool {
        self.opts.crates.join(PARTIAL_MARKER).is_file()
    }

    fn set_partial(&self) -> Result<()> {
        let marker = self.opts.crates.join(PARTIAL_MARKER);
        if !marker.is_file() {
            crate::store::write_atomic(&marker, PARTIAL_TEXT)
                .with_context(|| format!("cannot write {}", marker.display()))?;
        }
        Ok(())
    }

    fn init_crates_dir(&self) -> Result<()> {
        if !self.opts.filter.is_empty() {
            self.set_partial()?;
        }
        let config = self.opts.crates.join("config.toml");
        if !config.exists() {
            crate::store::write_atomic(
                &config,
                b"prefix = \"lower\"\narchive_prefix = \"lower\"\n",
            )
            .with_context(|| format!("cannot write {}", config.display()))?;
        }
        Ok(())
    }

    /// The `config.json` `config` writes for `--server-url`.
    fn config_text(&self) -> String {
        let server = self.opts.server_url.trim_end_matches('/');
        format!(
            "{{\n    \"dl\": \"{server}/crates/{{crate}}/{{crate}}-{{version}}.crate\",\n    \"api\": \"{server}/\"\n}}\n"
        )
    }

    fn config(&self, reporter: &dyn Reporter) -> Result<()> {
        let server = self.opts.server_url.trim_end_matches('/');
        let commit = self.index.write_config(self.config_text().as_bytes())?;
        reporter.info(&format!("crate: config.json points at {server} ({commit})"));
        Ok(())
    }

    /// Make sure a mirror that must have its own `config.json` records it
    /// (see [`Index::own_config`]) before upstream's can reach `working`
    /// or `master`. The far side (an index whose origin is a bundle) always
    /// has its own: the one `config` wrote, or for an index made before
    /// such a record existed, the `config.json` its `working` has now, or
    /// else the one `config` makes for `--server-url`; a bundle's is never
    /// published. The online side has its own once `config` ran (an older
    /// index: when `working` still holds what a `config` commit wrote);
    /// until then it publishes upstream's.
    fn ensure_own_config(&self, reporter: &dyn Reporter) -> Result<()> {
        if !self.opts.index.exists() || self.index.own_config()?.is_some() {
            return Ok(());
        }
        let working = self.index.resolve(index::WORKING)?;
        let ours = match working {
            Some(w) => self.index.file_at(w, "config.json")?,
            None => None,
        };
        let config = if self.index.origin_is_bundle()? {
            match ours {
                Some(c) => c,
                None => {
                    self.index.set_own_config(self.config_text().as_bytes())?;
                    reporter.info(&format!(
                        "crate: config.json points at {} (this mirror's own: what an archive carries is never published; change it with `mirror crate config --server-url`)",
                        self.opts.server_url.trim_end_matches('/')
                    ));
                    return Ok(());
                }
            }
        } else {
            match (ours, working) {
                (Some(c), Some(w)) if self.index.config_written_here(w)? => c,
                _ => return Ok(()),
            }
        };
        self.index.set_own_config(&config)?;
        reporter.info(
            "crate: config.json of working recorded as this mirror's own: it is published whatever upstream or an archive carries (change it with `mirror crate config --server-url`)",
        );
        Ok(())
    }

    /// Say which entries of upstream's tree were left out.
    fn warn_dropped(&self, what: &str, dropped: &[String], reporter: &dyn Reporter) {
        const SHOWN: usize = 20;
        if dropped.is_empty() {
            return;
        }
        let mut list: Vec<String> = dropped.iter().take(SHOWN).cloned().collect();
        if dropped.len() > SHOWN {
            list.push(format!("and {} more", dropped.len() - SHOWN));
        }
        reporter.warn(&format!(
            "{what}: {} entries are not part of the index layout and are left out:\n  - {}",
            dropped.len(),
            list.join("\n  - ")
        ));
    }

    /// The sparse upstream's base URL, when the index has one.
    pub fn sparse_base(&self) -> Result<Option<String>> {
        if !self.opts.index.exists() {
            return Ok(None);
        }
        Ok(self
            .index
            .origin_url()
            .ok()
            .and_then(|u| sparse::sparse_base(&u)))
    }

    /// In a sparse tree, the versions selected by the last pull (the
    /// crates every operation covers); `--filter` otherwise.
    fn effective_filter(&self) -> Result<CrateFilter> {
        if self.sparse_base()?.is_none() {
            if !self.opts.filter.is_empty() || !self.remembers_filter()? {
                return Ok(self.opts.filter.clone());
            }
            let remembered: filter::RememberedFilter =
                crate::store::load_meta_json(&self.opts.root, filter::STATE_FILE)?;
            return Ok(remembered.filter());
        }
        let state = sparse::SparseState::load(&self.opts.root)?;
        let mut f = CrateFilter::default();
        for s in &state.selected {
            f.add(s);
        }
        if f.is_empty() {
            // Nothing selected yet: a pattern that matches no crate.
            f.add("-@-");
        }
        Ok(f)
    }

    /// Whether this tree remembers `--filter` patterns: one mirroring a git
    /// upstream (the far side takes what archives bring).
    fn remembers_filter(&self) -> Result<bool> {
        Ok(self.opts.index.exists()
            && self.sparse_base()?.is_none()
            && !self.index.origin_is_bundle()?)
    }

    /// Before a download from a git upstream: add the `--filter` patterns
    /// given to the remembered ones (`--remove`, `--replace-selection`
    /// drop; the crates of what is dropped are deleted here, and the next
    /// archive deletes them on the far side), and download what they
    /// select. A partial tree that remembers nothing is refused: without
    /// its patterns the run would mirror the whole upstream.
    fn remember_filter(&mut self, reporter: &dyn Reporter) -> Result<()> {
        if self.sparse_base()?.is_some() {
            // A sparse selection is remembered by pull.
            return Ok(());
        }
        if !self.remembers_filter()? {
            if !self.opts.remove.is_empty() || self.opts.replace_selection {
                bail!(
                    "--remove and --replace-selection: {} remembers no selection (it imports archives or mirrors a sparse index that has none yet)",
                    self.opts.index.display()
                );
            }
            return Ok(());
        }
        let root = &self.opts.root;
        let remembered: filter::RememberedFilter =
            crate::store::load_meta_json(root, filter::STATE_FILE)?;
        let before = remembered.filter();
        let given = &self.opts.filter;
        let after = if self.opts.replace_selection {
            if given.is_empty() {
                bail!("--replace-selection: no new selection given (name it with --filter or --filter-file)");
            }
            given.clone()
        } else {
            sparse::check_removals(&self.opts.remove, &before.names(), "--filter pattern for")?;
            before.without(&self.opts.remove).union(given)
        };
        if before.is_empty() && after.is_empty() {
            if self.is_partial() {
                bail!(
                    "{} is a partial mirror (crates/{PARTIAL_MARKER}) but remembers no --filter (it was made before filters were remembered);                      a download without one would mirror the whole upstream: give the --filter patterns that made it once, they are remembered from then on",
                    self.opts.root.display()
                );
            }
            return Ok(());
        }
        if after.is_empty() {
            bail!(
                "the selection would be empty, which means the whole upstream: keep at least one --filter pattern, or delete {} to mirror everything",
                crate::store::meta_path(root, filter::STATE_FILE).display()
            );
        }
        report_selection_change(before.names(), after.names(), reporter);
        if self.opts.remove.is_empty() && !self.opts.replace_selection && before.is_empty() {
            // A tree that mirrored everything and now gets patterns keeps
            // what it holds.
        } else if !self.opts.remove.is_empty() || self.opts.replace_selection {
            let mut dropped: Vec<(String, String)> = held_crates(&self.opts.crates)?
                .into_iter()
                .filter(|(n, v)| !after.matches(n, v))
                .collect();
            dropped.sort();
            for (n, v) in &dropped {
                let path = self.opts.crates.join(layout::crate_rel_path(n, v));
                match fs::remove_file(&path) {
                    Ok(()) => remove_empty_parents(&path, &self.opts.crates),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                    }
                }
            }
            if !dropped.is_empty() {
                reporter.info(&format!(
                    "crate: {} crates no longer selected deleted (the next archive deletes them on the far side): {}",
                    dropped.len(),
                    shown(dropped.iter().map(|(n, v)| format!("{n} {v}")))
                ));
            }
        }
        crate::store::save_meta_json(
            root,
            filter::STATE_FILE,
            &filter::RememberedFilter {
                patterns: after.patterns(),
            },
        )?;
        self.set_partial()?;
        self.opts.filter = after;
        Ok(())
    }

    fn pull_sparse(&mut self, base: &str, reporter: &dyn Reporter) -> Result<()> {
        let mut state = sparse::SparseState::load(&self.opts.root)?;
        let change = sparse::SelectionChange {
            add: self.opts.selection.clone(),
            remove: self.opts.remove.clone(),
            replace: self.opts.replace_selection,
        };
        if change.add.is_some() || change.drops() {
            let before = state.selection.clone();
            let after = before.clone().unwrap_or_default().changed(&change)?;
            report_selection_change(
                before.map(|b| b.names()).unwrap_or_default(),
                after.names(),
                reporter,
            );
            state.selection = Some(after);
        }
        let Some(selection) = state.selection.clone() else {
            bail!(
                "{} mirrors the sparse index {base}: say what to mirror with --lockfile, --crate or --crate-file (remembered for later runs)",
                self.opts.index.display()
            );
        };
        if self.engine.is_none() {
            self.engine = Some(Engine::new(self.fetch.clone())?);
        }
        let engine = self.engine.as_ref().expect("engine");
        // Before the pull: `origin_master` is still what `working` merged.
        self.ensure_own_config(reporter)?;
        let summary = sparse::pull(&self.index, engine, base, &selection, &mut state, reporter)?;
        let merged = self.index.merge_origin()?;
        self.warn_dropped("the upstream index", &merged.dropped, reporter);
        let working = merged.working;
        state.save(&self.opts.root)?;
        reporter.info(&format!(
            "crate: {} index files requested from {base} ({} not modified); {} versions selected; working is {working}",
            summary.requested, summary.not_modified, summary.selected
        ));
        Ok(())
    }

    fn pull(&mut self, reporter: &dyn Reporter) -> Result<()> {
        if let Some(base) = self.sparse_base()? {
            return self.pull_sparse(&base, reporter);
        }
        // Before the fetch: `origin_master` is still what `working` merged.
        self.ensure_own_config(reporter)?;
        if self.index.origin_is_bundle()? {
            // The origin names the bundle where the tree was when it was
            // last used: stale once the tree moved or was copied.
            let url = self.bundle_origin_url()?;
            if self.index.origin_url()? != url {
                self.index.set_origin_url(&url)?;
                reporter.info(&format!(
                    "crate: the index's origin is now {url} (the tree was moved or copied)"
                ));
            }
        }
        let (_, origin) = self.index.fetch_origin()?;
        let unpacked = *self.unpacked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(end) = unpacked {
            if end != origin && !self.index.is_ancestor(end, origin)? {
                bail!(
                    "the archive's index ({end}) did not reach origin_master ({origin}) after the pull from {}; nothing was published (run `mirror crate pull mark` once {} holds the archive's bundle)",
                    self.opts.bundle_path.display(),
                    self.opts.bundle_path.display()
                );
            }
        }
        let merged = self.index.merge_origin()?;
        self.warn_dropped("the upstream index", &merged.dropped, reporter);
        let working = merged.working;
        reporter.info(&format!(
            "crate: pulled origin_master {origin}; working is {working}"
        ));
        Ok(())
    }

    /// START and END as commits.
    pub fn range(&self) -> Result<(Option<gix::ObjectId>, gix::ObjectId)> {
        let (spec, allow_missing) = match &self.opts.start {
            Some(s) => (s.as_str(), self.opts.allow_missing_start),
            None => (MARK, true),
        };
        let start = if spec == "0" {
            None
        } else {
            match self.index.resolve(spec)? {
                Some(c) => Some(c),
                None if allow_missing => None,
                None => bail!(
                    "START {spec:?} names no commit in {} (use --start 0 for the start of history, or --allow-missing-start)",
                    self.opts.index.display()
                ),
            }
        };
        let end = self.index.resolve(&self.opts.end)?.with_context(|| {
            format!(
                "END {:?} names no commit in {} (run pull first?)",
                self.opts.end,
                self.opts.index.display()
            )
        })?;
        Ok((start, end))
    }

    /// The crate versions the RANGE added and removed.
    pub fn changes(&self) -> Result<index::Changes> {
        let (start, end) = self.range()?;
        if start == Some(end) {
            return Ok(index::Changes::default());
        }
        self.index.changes(start, end, &self.effective_filter()?)
    }

    fn crate_path(&self, e: &Entry) -> PathBuf {
        self.opts.crates.join(e.rel_path())
    }

    /// The download URL of a crate version.
    pub fn crate_url(&self, e: &Entry) -> String {
        expand_template(&self.opts.crates_url, e)
    }

    /// What `download` plans: the RANGE's added versions, or for a sparse
    /// selection (which may grow to versions older than START) every
    /// version selected (the engine skips those held); each added version
    /// is handed to `on_added` as soon as it is known, and kept in the
    /// result only with `keep_added`.
    fn planned_changes(
        &self,
        on_added: &(dyn Fn(&Entry) + Sync),
        keep_added: bool,
    ) -> Result<index::Changes> {
        let filter = self.effective_filter()?;
        // A selection may grow to versions older than START: a partial
        // tree plans every version it selects (the engine skips those held).
        if self.sparse_base()?.is_some() || (self.is_partial() && !filter.is_empty()) {
            let (_, end) = self.range()?;
            self.index
                .changes_each(None, end, &filter, on_added, keep_added)
        } else {
            let (start, end) = self.range()?;
            if start == Some(end) {
                return Ok(index::Changes::default());
            }
            self.index
                .changes_each(start, end, &filter, on_added, keep_added)
        }
    }

    fn download(&mut self, reporter: &dyn Reporter) -> Result<()> {
        // The range diff feeds the engine as it goes: the first requests
        // leave while the rest of the range is still diffed, and the
        // engine (runtime, client) is built meanwhile.
        // No step of a run downloads after this one (`mark`, `pack` and
        // `verify` follow): the connections close as the plan ends.
        let (sink, source) = crate::fetch::item_queue(self.fetch.assume_ok);
        let source = source.closing_connections();
        let engine = match self.engine.take() {
            Some(engine) => Ok(engine),
            None => Err(self.fetch.clone()),
        };
        // The versions are kept past their download only to list the
        // good and bad ones: a first mirror of a whole index plans
        // millions.
        let keep_added = self.opts.good_crates.is_some() || self.opts.bad_crates.is_some();
        let this = &*self;
        let (changes, engine, result) = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let changes = this.planned_changes(
                    &|e| {
                        sink.push(
                            FetchItem::new(this.crate_url(e), this.crate_path(e))
                                .sha256(e.cksum)
                                .limit(crate::limit::CRATE_FILE),
                        )
                    },
                    keep_added,
                );
                if changes.is_err() {
                    sink.abandon();
                }
                changes
            });
            let engine = engine.or_else(Engine::new);
            let result = engine.as_ref().ok().map(|e| e.fetch_from(source, reporter));
            let changes = producer
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (changes, engine, result)
        });
        let engine = engine?;
        let result = result.expect("an engine ran");
        self.engine = Some(engine);
        let changes = changes?;
        let failed: std::collections::HashSet<String> = match &result {
            Ok(_) => Default::default(),
            Err(f) => f.failures.iter().map(|(url, _)| url.clone()).collect(),
        };
        let (good, bad): (Vec<&Entry>, Vec<&Entry>) = changes
            .added
            .iter()
            .partition(|e| !failed.contains(&self.crate_url(e)));
        self.record(&good, &bad)?;
        let summary = result?;
        reporter.info(&format!(
            "crate: {} crates downloaded ({} bytes), {} already present",
            summary.fetched, summary.bytes, summary.skipped
        ));
        Ok(())
    }

    fn record(&self, good: &[&Entry], bad: &[&Entry]) -> Result<()> {
        for (path, list) in [(&self.opts.good_crates, good), (&self.opts.bad_crates, bad)] {
            if let Some(path) = path {
                let text: String = list.iter().map(|e| format!("{}\n", e.ident())).collect();
                fs::write(path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn verify(&self, reporter: &dyn Reporter) -> Result<()> {
        let changes = self.changes()?;
        // A partial mirror holds what it holds: a missing crate is left out
        // of what is published, a wrong one is still an error.
        let partial = self.is_partial();
        let held: Vec<&Entry> = changes
            .added
            .iter()
            .filter(|e| !partial || self.crate_path(e).exists())
            .collect();
        let not_held = changes.added.len() - held.len();
        let results: Vec<(&Entry, Option<String>)> = held
            .par_iter()
            .map(|e| (*e, check_crate(&self.crate_path(e), e).err()))
            .collect();
        let good: Vec<&Entry> = results
            .iter()
            .filter(|r| r.1.is_none())
            .map(|r| r.0)
            .collect();
        let bad: Vec<&Entry> = results
            .iter()
            .filter(|r| r.1.is_some())
            .map(|r| r.0)
            .collect();
        self.record(&good, &bad)?;
        let errors: Vec<String> = results.into_iter().filter_map(|r| r.1).collect();
        if !errors.is_empty() {
            return Err(CrateFailures(format!(
                "{} of {} crates failed verification:\n  - {}",
                errors.len(),
                changes.added.len(),
                errors.join("\n  - ")
            ))
            .into());
        }
        if partial {
            reporter.info(&format!(
                "crate: {} crates verified ({not_held} of the range not held: partial mirror)",
                held.len()
            ));
        } else {
            reporter.info(&format!("crate: {} crates verified", changes.added.len()));
        }
        Ok(())
    }

    fn prune(&self, reporter: &dyn Reporter) -> Result<()> {
        // Every version the index no longer lists, selected or not: what
        // the index drops is never published again (a crate dropped from
        // a sparse selection loses its index file).
        let (start, end) = self.range()?;
        let changes = if start == Some(end) {
            index::Changes::default()
        } else {
            self.index.changes(start, end, &CrateFilter::default())?
        };
        let mut n = 0;
        for e in &changes.removed {
            let path = self.crate_path(e);
            match fs::remove_file(&path) {
                Ok(()) => {
                    n += 1;
                    reporter.verbose(&format!("[prune] {}", e.ident()));
                    remove_empty_parents(&path, &self.opts.crates);
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot remove {}", path.display()))
                }
            }
        }
        reporter.info(&format!("crate: {n} removed crates pruned"));
        Ok(())
    }

    fn list(&self) -> Result<()> {
        if self.opts.json {
            return self.list_json();
        }
        let changes = self.changes()?;
        // One buffered writer: a line per version is millions of lines for
        // a whole index, not millions of writes.
        use crate::output::escape;
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for e in &changes.added {
            writeln!(out, "{}@{}", escape(&e.name), escape(&e.vers))?;
        }
        for e in &changes.removed {
            writeln!(out, "-{}@{}", escape(&e.name), escape(&e.vers))?;
        }
        out.flush()?;
        Ok(())
    }

    /// What the mirror holds: every version `master` lists whose `.crate`
    /// is present, as a JSON array of `{name, vers, cksum, path}`.
    fn list_json(&self) -> Result<()> {
        let master = self.index.require(MASTER)?;
        let held = held_crates(&self.opts.crates)?;
        let out: Vec<serde_json::Value> = self
            .held_listed(master, &held)?
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "vers": e.vers,
                    "cksum": e.cksum.to_hex(),
                    "path": format!("{}/{}", layout::CRATES_DIR, e.rel_path()),
                })
            })
            .collect();
        crate::output::json(&out)?;
        Ok(())
    }

    /// The versions `commit` lists whose `.crate` is in `held`, in index
    /// order.
    fn held_listed(
        &self,
        commit: gix::ObjectId,
        held: &std::collections::HashSet<(String, String)>,
    ) -> Result<Vec<Entry>> {
        let names: std::collections::HashSet<String> =
            held.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        let mut out = Vec::new();
        for (path, data) in self.index.crate_files(commit, |n| names.contains(n))? {
            for (_, e) in index::parse_lines(&data, &path, &commit.to_string())? {
                if held.contains(&(e.name.clone(), e.vers.clone())) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    fn mark(&self, reporter: &dyn Reporter) -> Result<()> {
        self.publish(reporter, true)
    }

    /// Move `master` to what END publishes, and `mark` to END when
    /// `move_mark`. `config` publishes without moving `mark`: `mark` is
    /// the START of the next archive, and a commit of `config` that no
    /// archive carried must not become a commit the far side is assumed
    /// to hold.
    fn publish(&self, reporter: &dyn Reporter, move_mark: bool) -> Result<()> {
        self.warn_unless_head_is_master(reporter)?;
        let (_, end) = self.range()?;
        self.ensure_own_config(reporter)?;
        if self.is_partial() {
            let master = self.publish_partial(end, reporter)?;
            if !move_mark {
                reporter.info(&format!("crate: master (served) is {master}"));
                return Ok(());
            }
            self.index.set_branch(MARK, end)?;
            reporter.info(&format!(
                "crate: mark moved to {end}; master (served) is {master}"
            ));
            return Ok(());
        }
        let before = self.index.resolve(MARK)?;
        let master = self.index.resolve(MASTER)?;
        // What is published: END's tree when it is all index layout and
        // holds this mirror's own config.json (as `working` does: END's
        // default); else a commit on top of END with that tree.
        let working = self.index.resolve(index::WORKING)?;
        let known = working.map(|w| self.index.tree_of(w)).transpose()?;
        let end_tree = self.index.tree_of(end)?;
        let (tree, dropped) = self.index.published_tree(end_tree, known)?;
        self.warn_dropped(&format!("END {end}"), &dropped, reporter);
        let publish = if tree == end_tree {
            end
        } else {
            match master {
                Some(m)
                    if self.index.tree_of(m)? == tree
                        && self.index.parents(m)?.as_slice() == [end] =>
                {
                    m
                }
                _ => self.index.commit_tree(
                    tree,
                    &[end],
                    &format!("Publish {end} with this mirror's config.json"),
                )?,
            }
        };
        if !move_mark {
            if master != Some(publish) {
                self.index.set_branch(MASTER, publish)?;
            }
            reporter.info(&format!("crate: master (served) is {publish}"));
            return Ok(());
        }
        if before == Some(end) && master == Some(publish) {
            reporter.info(&format!("crate: mark and master already at {end}"));
            return Ok(());
        }
        // master first: what is served never lags behind mark.
        self.index.set_branches(&[(MASTER, publish), (MARK, end)])?;
        if publish == end {
            reporter.info(&format!("crate: mark and master moved to {end}"));
        } else {
            reporter.info(&format!(
                "crate: mark moved to {end}; master (served) is {publish}"
            ));
        }
        Ok(())
    }

    /// cargo's git clients fetch `HEAD`, so `mirror serve` serves the
    /// index over git only while `HEAD` names `master` (a tree made by romt
    /// has it on `working`): say so when marking such a tree.
    fn warn_unless_head_is_master(&self, reporter: &dyn Reporter) -> Result<()> {
        let head = self.index.head_ref()?;
        if head.as_deref() != Some("refs/heads/master") {
            reporter.warn(&format!(
                "the index's HEAD names {}, not master: `mirror serve` serves it over git only \
                 when HEAD names master (`git -C {} symbolic-ref HEAD refs/heads/master`); \
                 the sparse index is served either way",
                head.as_deref()
                    .unwrap_or("a commit (detached)")
                    .escape_debug(),
                self.opts.index.display()
            ));
        }
        Ok(())
    }

    /// Move `master` to a commit of `end`'s tree cut down to the versions
    /// whose `.crate` is held (a new commit on top of the old `master`,
    /// or the old `master` when nothing changed); returns it.
    fn publish_partial(
        &self,
        end: gix::ObjectId,
        reporter: &dyn Reporter,
    ) -> Result<gix::ObjectId> {
        let held = held_crates(&self.opts.crates)?;
        let names: std::collections::HashSet<String> =
            held.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        let old = self.index.resolve(MASTER)?;
        let index::Subset {
            commit,
            kept,
            seen,
            dropped,
        } = self.index.write_subset(
            end,
            old,
            |name| names.contains(name),
            |e| held.contains(&(e.name.clone(), e.vers.clone())),
            &format!("Publish the crates held of {end}"),
        )?;
        self.warn_dropped(&format!("END {end}"), &dropped, reporter);
        if let Some(old) = old {
            if self.index.tree_of(old)? == self.index.tree_of(commit)? {
                reporter.info(&format!(
                    "crate: partial mirror: the published index is unchanged ({kept} versions)"
                ));
                return Ok(old);
            }
        }
        self.index.set_branch(MASTER, commit)?;
        reporter.info(&format!(
            "crate: partial mirror: published {kept} versions held (of {seen} listed for the crates held)"
        ));
        Ok(commit)
    }

    fn default_bundle_path(&self) -> PathBuf {
        self.opts.root.join(BUNDLE_MEMBER)
    }

    fn check_default_layout(&self, what: &str) -> Result<()> {
        if self.opts.crates != self.opts.root.join(layout::CRATES_DIR) {
            bail!(
                "{what} needs the crates directory at {} (archives keep the tree layout); got --crates {}",
                self.opts.root.join(layout::CRATES_DIR).display(),
                self.opts.crates.display()
            );
        }
        Ok(())
    }

    fn pack(&self, reporter: &dyn Reporter) -> Result<()> {
        self.check_default_layout("pack")?;
        let (start, end) = self.range()?;
        let range = bundle::Range {
            start: start.map(|s| s.to_string()),
            end: end.to_string(),
        };
        let opts = bundle::PackOptions {
            ecosystem: ECOSYSTEM.to_string(),
            range: Some(range),
        };
        let partial = self.is_partial();
        let bundle_path = self.default_bundle_path();
        if self.opts.bundle_path != bundle_path {
            bail!(
                "pack writes the bundle to {} (its place in the archive); got --bundle-path {}",
                bundle_path.display(),
                self.opts.bundle_path.display()
            );
        }
        // What the range adds and removes; a partial tree also carries
        // what it holds that no archive carried yet (a grown selection:
        // older versions whose index file did not change) and removes
        // what the archives carried that it no longer holds (a selection
        // that dropped a crate).
        let changes = if start == Some(end) {
            index::Changes::default()
        } else {
            self.index.changes(start, end, &self.effective_filter()?)?
        };
        let mut added: std::collections::BTreeSet<(String, String)> = changes
            .added
            .iter()
            .map(|e| (e.name.clone(), e.vers.clone()))
            .collect();
        let mut missing = Vec::new();
        let mut removes: std::collections::BTreeSet<(String, String)> = Default::default();
        let carried_now = if partial {
            let held = held_crates(&self.opts.crates)?;
            let now: std::collections::BTreeSet<(String, String)> = self
                .held_listed(end, &held)?
                .into_iter()
                .map(|e| (e.name, e.vers))
                .collect();
            let before = self.carried_before(start, &held)?;
            added.extend(now.difference(&before).cloned());
            added.retain(|nv| held.contains(nv));
            removes.extend(before.difference(&now).cloned());
            Some(now)
        } else {
            for e in &changes.added {
                if !self.crate_path(e).is_file() {
                    missing.push(format!(
                        "{}: {} is missing",
                        e.ident(),
                        self.crate_path(e).display()
                    ));
                }
            }
            added.retain(|(n, v)| {
                self.opts
                    .crates
                    .join(layout::crate_rel_path(n, v))
                    .is_file()
            });
            removes.extend(
                changes
                    .removed
                    .iter()
                    .map(|e| (e.name.clone(), e.vers.clone())),
            );
            None
        };
        let crate_member = |(n, v): &(String, String)| {
            format!("{}/{}", layout::CRATES_DIR, layout::crate_rel_path(n, v))
        };
        let remove_members: Vec<String> = removes
            .iter()
            .filter(|nv| !added.contains(nv))
            .map(crate_member)
            .collect();
        let packed = self.index.resolve(index::PACKED_REF)?;
        if start == Some(end) && added.is_empty() && remove_members.is_empty() {
            // No commits: no bundle can be made (git refuses an empty one).
            // An archive with only the manifest imports as a no-op, so the
            // far side never trips over a missing or stale archive.
            bundle::pack(&self.opts.root, &[], &self.opts.archive, &opts, reporter)
                .with_context(|| format!("cannot pack {}", self.opts.archive.display()))?;
            let archive = self.opts.archive.display();
            if packed == Some(end) {
                reporter.info(&format!(
                    "crate: nothing new since the last archive packed (its END was {end}); {archive} holds no commits and no crates (it imports as a no-op)"
                ));
            } else {
                let since = packed.map_or("0".to_string(), |p| p.to_string());
                let last = match packed {
                    Some(p) => format!("the END of the last archive packed, {p}"),
                    None => "no archive was packed here yet".to_string(),
                };
                reporter.warn(&format!(
                    "the range is empty: mark is already at END ({end}), moved by `update` or `mark`, so {archive} holds no commits and no crates (it imports as a no-op). \
                     To carry what changed since the last archive ({last}), run `mirror crate pack --start {since}`; \
                     next time run `mirror crate export` (pull, download, pack and mark in one), not `update` then `pack`"
                ));
            }
            self.set_packed(end)?;
            if let Some(now) = carried_now {
                self.save_carried(end, now)?;
            }
            return Ok(());
        }
        let mut members = Vec::new();
        if start != Some(end) {
            let bundle_start = match start {
                Some(s) if !self.index.is_ancestor(s, end)? => {
                    reporter.warn(&format!(
                        "START {s} is not an ancestor of END {end}; the bundle carries END's whole history"
                    ));
                    None
                }
                other => other,
            };
            reporter.begin("bundle", 0, None);
            let made = self.index.create_bundle(&bundle_path, bundle_start, end);
            reporter.end();
            made?;
            members.push(BUNDLE_MEMBER.to_string());
        }
        if partial {
            members.push(format!("{}/{PARTIAL_MARKER}", layout::CRATES_DIR));
        }
        let n_crates = added.len();
        members.extend(added.iter().map(crate_member));
        let missing_msg = |m: &[String]| {
            format!(
                "{} crates of the range are missing (run download):\n  - {}",
                m.len(),
                m.join("\n  - ")
            )
        };
        if !missing.is_empty() && !self.fetch.keep_going {
            bail!(
                "cannot pack {}: {}",
                self.opts.archive.display(),
                missing_msg(&missing)
            );
        }
        let summary = bundle::pack_removing(
            &self.opts.root,
            &members,
            &remove_members,
            &self.opts.archive,
            &opts,
            reporter,
        )
        .with_context(|| format!("cannot pack {}", self.opts.archive.display()))?;
        self.set_packed(end)?;
        if let Some(now) = carried_now {
            self.save_carried(end, now)?;
        }
        let what = if start == Some(end) {
            "no index commits (the index is unchanged)".to_string()
        } else {
            "the index bundle".to_string()
        };
        let removing = if remove_members.is_empty() {
            String::new()
        } else {
            format!(
                "; it removes {} crates on import: {}",
                remove_members.len(),
                shown(removes.iter().map(|(n, v)| format!("{n} {v}")))
            )
        };
        reporter.info(&format!(
            "crate: packed {what} and {n_crates} crates ({} bytes) into {}{removing}",
            summary.archive_bytes,
            self.opts.archive.display()
        ));
        if !missing.is_empty() {
            // --keep-going: the archive carries the commits and every crate
            // present; the far side's verify names the ones left out.
            return Err(CrateFailures(format!(
                "{} packed without them: {}",
                self.opts.archive.display(),
                missing_msg(&missing)
            ))
            .into());
        }
        Ok(())
    }

    /// What the far side of a partial tree holds before the archive that
    /// starts at `start`: what the archive that ended there left it
    /// (recorded by pack), else nothing for a first archive, else (a tree
    /// packed before the record existed, or another START) what `master`
    /// published: the versions held when it was last marked.
    fn carried_before(
        &self,
        start: Option<gix::ObjectId>,
        held: &std::collections::HashSet<(String, String)>,
    ) -> Result<std::collections::BTreeSet<(String, String)>> {
        let Some(start) = start else {
            return Ok(Default::default());
        };
        let record: Carried = crate::store::load_meta_json(&self.opts.root, CARRIED_FILE)?;
        if record.end.as_deref() == Some(start.to_string().as_str()) {
            return Ok(record
                .crates
                .iter()
                .filter_map(|c| c.split_once('@'))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect());
        }
        Ok(match self.index.resolve(MASTER)? {
            Some(m) => self
                .held_listed(m, held)?
                .into_iter()
                .map(|e| (e.name, e.vers))
                .collect(),
            None => Default::default(),
        })
    }

    fn save_carried(
        &self,
        end: gix::ObjectId,
        now: std::collections::BTreeSet<(String, String)>,
    ) -> Result<()> {
        crate::store::save_meta_json(
            &self.opts.root,
            CARRIED_FILE,
            &Carried {
                end: Some(end.to_string()),
                crates: now.into_iter().map(|(n, v)| format!("{n}@{v}")).collect(),
            },
        )
    }

    /// Record END of the archive just packed (see [`index::PACKED_REF`]).
    fn set_packed(&self, end: gix::ObjectId) -> Result<()> {
        self.index.git(
            "record the archive packed",
            &["update-ref", index::PACKED_REF, &end.to_string()],
        )?;
        Ok(())
    }

    fn unpack(&self, reporter: &dyn Reporter) -> Result<()> {
        self.check_default_layout("unpack")?;
        // What this index imported last: the END recorded, else (a tree
        // an older mirror imported into) the upstream it merged.
        let last = match continuity::last_imported(&self.opts.root, ECOSYSTEM)? {
            Some(l) => Some(l),
            None => self
                .index
                .resolve(index::ORIGIN_MASTER)?
                .map(|c| c.to_string()),
        };
        let hint = continuity::Hint {
            command: "crate",
            extra: "",
        };
        let order = CommitOrder(&self.index);
        let archive = &self.opts.archive;
        let Some(accepted) =
            continuity::check(ECOSYSTEM, archive, last.as_deref(), &order, &hint, reporter)?
        else {
            return Ok(());
        };
        let last = last
            .as_deref()
            .map(|l| gix::ObjectId::from_hex(l.as_bytes()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("the last END imported is not a commit: {e}"))?;
        self.unpack_checked(&accepted, last, reporter)?;
        accepted.record(&self.opts.root)
    }

    /// [`Crates::unpack`] once the archive's order was checked against
    /// `last`, the upstream commit imported before.
    fn unpack_checked(
        &self,
        accepted: &continuity::Accepted,
        last: Option<gix::ObjectId>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let work = WorkDir::create(&self.opts.root)?;
        let uopts = bundle::UnpackOptions {
            allowed_prefixes: vec![
                format!("{}/", layout::CRATES_DIR),
                BUNDLE_MEMBER.to_string(),
                "ARCHIVE_FORMAT".to_string(),
            ],
            expect_ecosystem: Some(ECOSYSTEM.to_string()),
            publish_last: Vec::new(),
            check_staged: None,
            // Unpacked into a work directory; the crates are checked
            // against the tree below.
            versioned: None,
            expect_range: accepted.expect_range(),
        };
        let archive = &self.opts.archive;
        let summary = bundle::unpack(archive, &work.0, &uopts, reporter)
            .with_context(|| format!("cannot unpack {}", archive.display()))?;
        let has_bundle = summary.files.iter().any(|f| f == BUNDLE_MEMBER);
        let crate_files: Vec<&String> = summary
            .files
            .iter()
            .filter(|f| {
                f.starts_with("crates/")
                    && f.as_str() != "crates/config.toml"
                    && f.as_str() != format!("crates/{PARTIAL_MARKER}")
            })
            .collect();
        let carries_partial = summary
            .files
            .iter()
            .any(|f| *f == format!("crates/{PARTIAL_MARKER}"));
        // What the archive removes: said before anything is done.
        let removes = self.archive_removes(summary.manifest.as_ref(), reporter)?;
        if !has_bundle && crate_files.is_empty() && removes.is_empty() {
            reporter.info(&format!(
                "crate: {} carries an empty range; nothing to import",
                archive.display()
            ));
            return Ok(());
        }
        // The bundle first: the crates are checked against the index it
        // brings. An archive of a selection that grew while the index did
        // not change carries no bundle: its crates are checked against the
        // index held.
        let staged_bundle = work.0.join(BUNDLE_MEMBER);
        // Before `origin/master` moves to the bundle's commit: it must
        // continue the history imported before, and keep every published
        // version's cksum.
        let accept = |end: gix::ObjectId| -> Result<()> {
            self.check_cksums_kept(end, archive)?;
            let Some(last) = last else { return Ok(()) };
            if self.index.continues(last, end)? {
                return Ok(());
            }
            if self.opts.allow_rewrite {
                reporter.warn(&format!(
                    "crate: {}: its index ({end}) does not continue the one imported before ({last}); taken as --allow-rewrite asks (the served history keeps the old one as an ancestor)",
                    archive.display()
                ));
                return Ok(());
            }
            bail!(
                "{}: a foreign history: its index ends at {end}, which does not descend from {last}, the index imported here before (it lacks commits of that one); nothing was published. \
                 The archive was made from another or a rewritten index (or altered): check where it comes from. \
                 If the new history is the one to serve, import it with `mirror crate import --allow-rewrite`",
                archive.display()
            )
        };
        let origin = if has_bundle {
            self.index
                .fetch_bundle_checked(&staged_bundle, &accept)
                .with_context(|| {
                    format!(
                        "cannot import {}: its {BUNDLE_MEMBER} was refused",
                        self.opts.archive.display()
                    )
                })?
        } else {
            match self.index.resolve(index::ORIGIN_MASTER)? {
                Some(o) => o,
                None => bail!(
                    "{}: carries crates but no {BUNDLE_MEMBER}, and {} holds no index yet to check them against: import the tree's earlier archives first (or pack a first archive with `mirror crate pack --start 0` on the online side)",
                    archive.display(),
                    self.opts.index.display()
                ),
            }
        };
        let mut planned = Vec::new();
        let mut errors = Vec::new();
        let mut named = Vec::new();
        for f in &crate_files {
            match crate_from_member(f) {
                Some(nv) => named.push((f, nv)),
                None => errors.push(format!(
                    "{f}: not a crate path (<prefix>/<name>/<name>-<version>.crate)"
                )),
            }
        }
        let wanted: Vec<(String, String)> = named.iter().map(|(_, nv)| nv.clone()).collect();
        for ((f, (name, vers)), found) in named.iter().zip(self.index.entries(origin, &wanted)?) {
            match found {
                Some(e) => planned.push((work.0.join(f), e)),
                None => errors.push(format!(
                    "{f}: {name} {vers} is not in {}",
                    if has_bundle {
                        "the index the archive carries".to_string()
                    } else {
                        format!(
                            "this tree's index ({origin}; the archive carries no index commits): import the archives before it first"
                        )
                    }
                )),
            }
        }
        let checks: Vec<String> = planned
            .par_iter()
            .filter_map(|(path, e)| check_crate(path, e).err())
            .collect();
        errors.extend(
            checks
                .into_iter()
                .map(|m| m.replace(&format!("{}/", work.0.display()), "")),
        );
        if !errors.is_empty() {
            bail!(
                "{}: {} crates failed the check against the index; nothing was published:\n  - {}",
                archive.display(),
                errors.len(),
                errors.join("\n  - ")
            );
        }
        // A published `.crate` never changes: the same bytes are left as
        // they are, other bytes refuse the archive before anything is
        // published.
        let published: Vec<Option<bundle::ChangedFile>> = planned
            .par_iter()
            .map(|(_, e)| {
                let dest = self.crate_path(e);
                let found = bundle::published_digest(&dest)
                    .with_context(|| format!("cannot read {}", dest.display()))?;
                Ok(found.map(|digest| bundle::ChangedFile {
                    path: dest
                        .strip_prefix(&self.opts.root)
                        .unwrap_or(&dest)
                        .display()
                        .to_string(),
                    published: digest,
                    archive: e.cksum,
                }))
            })
            .collect::<Result<_>>()?;
        let mut changed: Vec<bundle::ChangedFile> = published
            .iter()
            .flatten()
            .filter(|c| c.published != c.archive)
            .cloned()
            .collect();
        if !changed.is_empty() {
            changed.sort_by(|a, b| a.path.cmp(&b.path));
            return Err(bundle::BundleError::Changed {
                archive: archive.clone(),
                files: changed,
            }
            .into());
        }
        for ((staged, e), present) in planned.iter().zip(&published) {
            if present.is_some() {
                // Published already with these bytes.
                continue;
            }
            let dest = self.crate_path(e);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            fs::rename(staged, &dest)
                .with_context(|| format!("cannot publish {}", dest.display()))?;
            crate::store::trace("publish", &dest);
        }
        if carries_partial {
            // The far side published a subset: so does this one.
            self.set_partial()?;
        }
        if let Some(parent) = self.opts.bundle_path.parent() {
            fs::create_dir_all(parent)?;
        }
        // The crates first, then the index bundle naming them.
        crate::store::sync_tree(&self.opts.crates)
            .with_context(|| format!("cannot write {} to disk", self.opts.crates.display()))?;
        if has_bundle {
            crate::store::trace("write", &self.opts.bundle_path);
            fs::rename(&staged_bundle, &self.opts.bundle_path)
                .with_context(|| format!("cannot publish {}", self.opts.bundle_path.display()))?;
        }
        *self.unpacked.lock().unwrap_or_else(|e| e.into_inner()) = Some(origin);
        // Then what the archive removes; `mark` publishes what is held.
        let mut removed = 0;
        for (n, v) in &removes {
            let path = self.opts.crates.join(layout::crate_rel_path(n, v));
            match fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    remove_empty_parents(&path, &self.opts.crates);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
            }
        }
        let bundle = if has_bundle {
            format!("the index bundle ({origin})")
        } else {
            "no index commits".to_string()
        };
        reporter.info(&format!(
            "crate: unpacked {bundle} and {} crates; {removed} crates removed",
            planned.len()
        ));
        Ok(())
    }
}

/// The state file (under `.mirror/`) of a partial tree naming what the
/// archives packed so far leave the far side holding.
const CARRIED_FILE: &str = "crates-carried.json";

/// See [`CARRIED_FILE`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Carried {
    /// END of the last archive packed.
    #[serde(default)]
    end: Option<String>,
    /// `name@version` of every crate the far side holds after importing it.
    #[serde(default)]
    crates: Vec<String>,
}

/// The first items of a long list, and how many more.
fn shown(items: impl Iterator<Item = String>) -> String {
    const SHOWN: usize = 20;
    let all: Vec<String> = items.collect();
    let mut list: Vec<String> = all.iter().take(SHOWN).cloned().collect();
    if all.len() > SHOWN {
        list.push(format!("and {} more", all.len() - SHOWN));
    }
    list.join(", ")
}

/// Say which names a selection dropped and which it added.
fn report_selection_change(
    before: std::collections::BTreeSet<String>,
    after: std::collections::BTreeSet<String>,
    reporter: &dyn Reporter,
) {
    let dropped: Vec<String> = before.difference(&after).cloned().collect();
    let added: Vec<String> = after.difference(&before).cloned().collect();
    if !added.is_empty() {
        reporter.info(&format!(
            "crate: the selection now also names {}",
            shown(added.into_iter())
        ));
    }
    if !dropped.is_empty() {
        reporter.info(&format!(
            "crate: the selection no longer names {} (--remove / --replace-selection); their crates are deleted here and by the next archive on the far side",
            shown(dropped.into_iter())
        ));
    }
}

impl Crates {
    /// The crates an archive's manifest says it removes, each a crate path
    /// (anything else refuses the archive); said before anything is done.
    fn archive_removes(
        &self,
        manifest: Option<&bundle::Manifest>,
        reporter: &dyn Reporter,
    ) -> Result<Vec<(String, String)>> {
        let Some(m) = manifest else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for r in &m.removes {
            match crate_from_member(r) {
                Some(nv) => out.push(nv),
                None => bail!(
                    "{}: its manifest removes {r:?}, which is not a crate path (crates/<prefix>/<name>/<name>-<version>.crate); nothing was imported",
                    self.opts.archive.display()
                ),
            }
        }
        if !out.is_empty() {
            reporter.info(&format!(
                "crate: this archive removes {} crates: {}",
                out.len(),
                shown(out.iter().map(|(n, v)| format!("{n} {v}")))
            ));
        }
        Ok(out)
    }
}

impl Crates {
    /// Refuse an index at `end` that gives a version `master` publishes a
    /// `cksum` other than the published one.
    fn check_cksums_kept(&self, end: gix::ObjectId, archive: &Path) -> Result<()> {
        let Some(master) = self.index.resolve(MASTER)? else {
            return Ok(());
        };
        let changed = self
            .index
            .changes(Some(master), end, &CrateFilter::default())?
            .added;
        let wanted: Vec<(String, String)> = changed
            .iter()
            .map(|e| (e.name.clone(), e.vers.clone()))
            .collect();
        let mut differ = Vec::new();
        for (new, old) in changed.iter().zip(self.index.entries(master, &wanted)?) {
            if let Some(old) = old {
                if old.cksum != new.cksum {
                    differ.push(format!(
                        "{} {} ({}/{}): published cksum {}, the archive's {}",
                        new.name,
                        new.vers,
                        layout::CRATES_DIR,
                        new.rel_path(),
                        old.cksum,
                        new.cksum
                    ));
                }
            }
        }
        if differ.is_empty() {
            return Ok(());
        }
        bail!(
            "{}: its index changes the cksum of {} published version{}; nothing was published:\n  - {}\n\
             A published version never changes: the archive was altered, or built from an index that rewrote a published version. \
             Check where the archive comes from.",
            archive.display(),
            differ.len(),
            if differ.len() == 1 { "" } else { "s" },
            differ.join("\n  - ")
        )
    }
}

/// Commits, ordered by ancestry in the index.
struct CommitOrder<'a>(&'a Index);

impl continuity::Order for CommitOrder<'_> {
    fn at_or_before(&self, a: &str, b: &str) -> Result<bool> {
        let parse = |m: &str| {
            gix::ObjectId::from_hex(m.as_bytes())
                .map_err(|_| anyhow::anyhow!("range mark {m:?} is not a commit id"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        // A commit the index lacks is not before anything it has.
        Ok(a == b || self.0.is_ancestor(a, b)?)
    }
}

/// Some crates failed (verify, pack); everything else was done. With
/// `--keep-going` the chain goes on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CrateFailures(pub String);

/// A directory under `<root>/.mirror/` removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(root: &Path) -> Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Under `.mirror/staging/`, named `<pid>-…` like the bundle
        // module's staging directories. The bundle module clears the
        // staging directory of the root it unpacks into, which is this
        // one, not the tree's: a killed run's work directory is removed
        // here.
        let staging = crate::store::meta_path(root, "staging");
        crate::store::remove_abandoned(&staging, "");
        let dir = staging.join(format!("{}-crate-unpack-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Check a crate file against its index entry; the error names the file,
/// the expected and the actual digest.
fn check_crate(path: &Path, e: &Entry) -> std::result::Result<(), String> {
    match hash_file(path) {
        Ok((digest, _)) if digest == e.cksum => Ok(()),
        Ok((digest, _)) => Err(format!(
            "{} ({}): checksum mismatch\n    expected: {}\n    actual:   {}",
            path.display(),
            e.ident(),
            e.cksum,
            digest
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{} ({}): missing", path.display(), e.ident()))
        }
        Err(err) => Err(format!("{} ({}): {err}", path.display(), e.ident())),
    }
}

/// Every `(name, version)` whose `.crate` is in the crates directory
/// (`<prefix>/<name>/<name>-<version>.crate`).
pub fn held_crates(crates: &Path) -> Result<std::collections::HashSet<(String, String)>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() && depth < 4 {
                walk(&path, depth + 1, out)?;
            } else if ty.is_file() && path.extension().is_some_and(|x| x == "crate") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(crates, 0, &mut files)?;
    let mut out = std::collections::HashSet::new();
    for f in files {
        let Ok(rel) = f.strip_prefix(crates) else {
            continue;
        };
        let member = format!("crates/{}", rel.to_string_lossy());
        if let Some(nv) = crate_from_member(&member) {
            out.insert(nv);
        }
    }
    Ok(out)
}

/// `crates/<prefix>/<name>/<name>-<version>.crate` (any prefix case) ->
/// (name, version), validated.
fn crate_from_member(member: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = member.split('/').collect();
    let [.., name, file] = parts[..] else {
        return None;
    };
    let vers = file
        .strip_suffix(".crate")?
        .strip_prefix(name)?
        .strip_prefix('-')?;
    let ok = layout::is_valid_crate_name(name)
        && layout::is_valid_version(vers)
        && member.eq_ignore_ascii_case(&format!("crates/{}", layout::crate_rel_path(name, vers)));
    ok.then(|| (name.to_string(), vers.to_string()))
}

/// Substitute `{crate}`, `{version}`, `{prefix}`, `{lowerprefix}` and
/// `{sha256-checksum}`.
pub fn expand_template(template: &str, e: &Entry) -> String {
    template
        .replace("{crate}", &e.name)
        .replace("{version}", &e.vers)
        .replace("{prefix}", &layout::prefix(&e.name))
        .replace("{lowerprefix}", &layout::lower_prefix(&e.name))
        .replace("{sha256-checksum}", &e.cksum.to_hex())
}

/// A local path becomes absolute (git resolves relative remotes against
/// the repository); URLs pass through.
fn absolute_url(url: &str) -> Result<String> {
    if let Some((scheme, _)) = url.split_once("://") {
        // What git may speak (crate::gitenv::ALLOWED_PROTOCOLS).
        if !["http", "https", "file"].contains(&scheme.to_ascii_lowercase().as_str()) {
            bail!(
                "index URL {url:?}: expected an http://, https:// or file:// URL or a path \
                 (git runs with only those transports allowed)"
            );
        }
        return Ok(url.to_string());
    }
    let path = Path::new(url);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(abs.display().to_string())
}

fn remove_empty_parents(path: &Path, stop: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

trait LowerFirst {
    fn to_lowercase_first(self) -> String;
}

impl LowerFirst for String {
    fn to_lowercase_first(self) -> String {
        let mut c = self.chars();
        match c.next() {
            Some(f) => f.to_lowercase().chain(c).collect(),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Sha256Digest;

    #[test]
    fn templates_expand() {
        let e = Entry {
            name: "Serde".into(),
            vers: "1.0.0".into(),
            cksum: Sha256Digest::of(b"x"),
        };
        assert_eq!(
            expand_template(
                "http://h/{lowerprefix}/{prefix}/{crate}/{crate}-{version}.crate",
                &e
            ),
            "http://h/se/rd/Se/rd/Serde/Serde-1.0.0.crate"
        );
    }

    #[test]
    fn archive_members_name_crates() {
        assert_eq!(
            crate_from_member("crates/se/rd/serde/serde-1.0.0.crate"),
            Some(("serde".into(), "1.0.0".into()))
        );
        assert_eq!(
            crate_from_member("crates/Mi/xe/Mixed_Case/Mixed_Case-0.1.0.crate"),
            Some(("Mixed_Case".into(), "0.1.0".into()))
        );
        assert_eq!(
            crate_from_member("crates/se/rd/serde/other-1.0.0.crate"),
            None
        );
        assert_eq!(
            crate_from_member("crates/xx/yy/serde/serde-1.0.0.crate"),
            None
        );
    }
}
