//! The git crates index: branches, upstream merges, range diffs, bundles.
//!
//! # On disk
//!
//! `git/crates.io-index/` (`--index`) is a *bare* git repository that plain
//! git reads and serves; its `HEAD` names `master`, the branch the server
//! publishes (cargo fetches `HEAD`). Branches:
//!
//! | branch | what it is |
//! |---|---|
//! | `origin_master` | upstream's `master` as last fetched (`refs/remotes/origin/master` too) |
//! | `working` | upstream merged, cut to the index layout, with this mirror's own `config.json` if it has one |
//! | `master` | what is published; moved by `mark` only |
//! | `mark` | the END of the last range marked (exported, imported or updated) |
//!
//! `refs/mirror/config` (not a branch: never bundled or served) names the
//! blob of this mirror's own `config.json`, written by `config`.
//!
//! Remote `origin` is the upstream URL (`init`), or the `origin.bundle`
//! beside the index (`init-import`), with romt's refspecs, so trees made by
//! romt keep working and romt reads ours. Bundles carry `bundle/master`.
//!
//! # The index layout
//!
//! Upstream's tree and a bundle's are untrusted. Only the paths of the
//! layout ([`layout::parse_index_path`]: `config.json`, `1/<n>`, `2/<n>`,
//! `3/<c>/<n>`, `<ab>/<cd>/<n>`, `<n>` a lower-case crate name fitting its
//! directory; regular files, not links or submodules) ever reach `working`
//! or `master`; every other entry (`README.md`, a name holding a newline,
//! `..`, a `/`, a control character, a non-ASCII letter, a crate file in the
//! wrong directory) is left out, and listed, by [`Index::merge_origin`],
//! `mark` and [`Index::write_subset`]. Names are checked one tree entry at
//! a time, so a `/` inside a name never passes for a directory. Paths
//! written to `git fast-import` are checked again and C-quoted
//! ([`fast_import_path`]): no name is ever read as a command.
//!
//! # Merging upstream
//!
//! A pull never needs a work tree: the new `working` tree is upstream's
//! tree cut to the index layout, with `config.json` replaced by this
//! mirror's own when it has one — upstream's never replaces it, whatever
//! its bytes were before. `working` fast-forwards when it can (the tree is
//! upstream's as it is); otherwise a merge commit with parents
//! (`working`, `origin_master`) is written. Because old `working` stays an
//! ancestor, `mark` stays an ancestor of `working` even when upstream
//! squashes its history, and a bundle `mark..working` stays small. Only
//! the subtrees that differ from `working`'s are read.
//!
//! # Ranges
//!
//! The crates of START..END are found by diffing the two trees and
//! comparing the old and new file of each changed index path line by line,
//! keyed by version: *added* (a new version or a new `cksum`) and *removed*.
//! It works whether or not START is an ancestor of END, as long as START's
//! objects are present. Every line read is validated: a name that is not a
//! crate name, a version that is not a plain version, a `cksum` that is not
//! 64 hex digits, or a line in the wrong file is an error naming the file.
//!
//! # Tools
//!
//! Reading (refs, trees, diffs, blobs) uses gix. Writing objects and refs,
//! fetching (gix here has no HTTP transport, on purpose) and bundles (gix
//! cannot read or write them) use the `git` program; a missing `git` is an
//! error that says which operation needs it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use gix::ObjectId;
use rayon::prelude::*;

use super::filter::CrateFilter;
use super::layout;
use crate::limit;
use crate::verify::digest::Sha256Digest;

/// Branch names.
pub const ORIGIN_MASTER: &str = "origin_master";
/// See the module docs.
pub const WORKING: &str = "working";
/// See the module docs.
pub const MASTER: &str = "master";
/// See the module docs.
pub const MARK: &str = "mark";
/// The ref a bundle carries (romt's name; its importers map it to
/// `origin/master`).
pub const BUNDLE_REF: &str = "refs/heads/bundle/master";
/// Where a bundle is fetched before its files are checked.
const INCOMING: &str = "refs/mirror/incoming";
/// The bundle's file name inside the index directory.
pub const BUNDLE_NAME: &str = "origin.bundle";

/// The message of the commits `config` writes.
const CONFIG_MESSAGE: &str = "Apply config.json adjustments";

/// The message of the commits that merge upstream into `working`.
const MERGE_MESSAGE: &str = "Merge origin_master";

/// Who writes the index's merge and config commits.
const COMMITTER: (&str, &str) = ("mirror", "mirror@localhost");

/// One crate version as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The crate name, case kept.
    pub name: String,
    /// The version.
    pub vers: String,
    /// SHA-256 of the `.crate`.
    pub cksum: Sha256Digest,
}

impl Entry {
    /// `crates/`-relative path of the `.crate`.
    pub fn rel_path(&self) -> String {
        layout::crate_rel_path(&self.name, &self.vers)
    }

    /// `name@version`.
    pub fn ident(&self) -> String {
        format!("{}@{}", self.name, self.vers)
    }
}

/// What a range changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New versions and versions with a new `cksum`, by (name, version).
    pub added: Vec<Entry>,
    /// Versions no longer listed.
    pub removed: Vec<Entry>,
}

/// The index repository.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    /// The repository opened once and reused (opening reads the config
    /// files: ~0.3 ms, which `mark` alone paid seven times); dropped after
    /// every `git` process we run, which may change config or refs.
    opened: std::sync::Mutex<Option<gix::ThreadSafeRepository>>,
}

impl Clone for Index {
    fn clone(&self) -> Self {
        Index::new(&self.dir)
    }
}

/// Index files of a range diff read on the calling thread before the rest
/// goes to the thread pool: enough versions to start every job of a usual
/// run at once.
const SERIAL_HEAD_FILES: usize = 64;

impl Index {
    /// The index at `dir` (not opened yet).
    pub fn new(dir: &Path) -> Index {
        Index {
            dir: dir.to_path_buf(),
            opened: std::sync::Mutex::new(None),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create a bare repository with `HEAD` naming `master` and remote
    /// `origin` at `url` fetching `refspecs`. Refuses an existing directory.
    pub fn init(dir: &Path, url: &str, refspecs: &[&str]) -> Result<Index> {
        if dir.exists() {
            bail!("index directory {} already exists", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let index = Index::new(dir);
        let made = (|| -> Result<()> {
            index.git("create the index", &["init", "-q", "--bare", "."])?;
            index.git(
                "create the index",
                &["symbolic-ref", "HEAD", "refs/heads/master"],
            )?;
            index.git("create the index", &["remote", "add", "origin", url])?;
            index.git(
                "create the index",
                &["config", "--unset-all", "remote.origin.fetch"],
            )?;
            for spec in refspecs {
                index.git(
                    "create the index",
                    &["config", "--add", "remote.origin.fetch", spec],
                )?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            // A half-made index would make the next `init` refuse to run.
            let _ = std::fs::remove_dir_all(dir);
            return Err(e);
        }
        Ok(index)
    }

    /// Run `git` in the index; `what` names the operation for errors.
    pub fn git(&self, what: &str, args: &[&str]) -> Result<String> {
        self.run_git(what, args, None)
    }

    /// `git ARGS` in the index, with `stdin`; forgets the opened repository.
    fn run_git(&self, what: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        self.forget();
        let out = run_git(&self.dir, what, args, stdin);
        self.forget();
        out
    }

    fn forget(&self) {
        *self.opened.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn repo(&self) -> Result<gix::Repository> {
        let mut slot = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(repo) = slot.as_ref() {
            return Ok(repo.to_thread_local());
        }
        // Like every git child (crate::gitenv): the repository's own
        // configuration only, no user or system one, no GIT_* variables.
        let repo =
            gix::open_opts(&self.dir, gix::open::Options::isolated()).with_context(|| {
                format!(
                    "{} is not a git crates index (run `mirror crate init` or `init-import`)",
                    self.dir.display()
                )
            })?;
        *slot = Some(repo.clone().into_sync());
        Ok(repo)
    }

    /// The commit `spec` names (a branch, `HEAD`, a commit id…), or `None`
    /// when it names nothing.
    pub fn resolve(&self, spec: &str) -> Result<Option<ObjectId>> {
        let repo = self.repo()?;
        let Ok(id) = repo.rev_parse_single(spec) else {
            return Ok(None);
        };
        let commit = id
            .object()
            .and_then(|o| o.peel_to_commit())
            .with_context(|| {
                format!("{spec:?} does not name a commit in {}", self.dir.display())
            })?;
        Ok(Some(commit.id))
    }

    /// The ref `HEAD` names (`refs/heads/master` as `init` leaves it),
    /// or `None` when it is detached. `mirror serve` serves the index
    /// over git only while it is `master`.
    pub fn head_ref(&self) -> Result<Option<String>> {
        let name = self
            .repo()?
            .head_name()
            .with_context(|| format!("cannot read HEAD of {}", self.dir.display()))?;
        Ok(name.map(|n| n.as_bstr().to_string()))
    }

    /// Like [`Index::resolve`], but a missing ref is an error.
    pub fn require(&self, spec: &str) -> Result<ObjectId> {
        self.resolve(spec)?.ok_or_else(|| {
            anyhow!(
                "{spec:?} names no commit in the index {}",
                self.dir.display()
            )
        })
    }

    /// Remove the lock files (`<file>.lock`: refs, `packed-refs`, `HEAD`,
    /// `config`, `shallow`) a killed run or its git left behind; git and
    /// gix refuse to update a file whose lock exists, so every later run
    /// would fail. Only for a run holding the tree lock: no other process
    /// writes the index then. Returns the files removed.
    pub fn remove_stale_locks(&self) -> Result<Vec<PathBuf>> {
        fn walk(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let path = e.path();
                if e.file_type()?.is_dir() {
                    if deep || e.file_name() == "refs" {
                        walk(&path, true, out)?;
                    }
                } else if path.extension().is_some_and(|x| x == "lock") {
                    fs::remove_file(&path)?;
                    out.push(path);
                }
            }
            Ok(())
        }
        let mut removed = Vec::new();
        walk(&self.dir, false, &mut removed)
            .with_context(|| format!("cannot remove stale lock files in {}", self.dir.display()))?;
        Ok(removed)
    }

    /// Point branch `name` at `commit` (with gix: a `git update-ref`
    /// process costs ~10 ms, which `mark` paid twice per run).
    pub fn set_branch(&self, name: &str, commit: ObjectId) -> Result<()> {
        self.set_branches(&[(name, commit)])
    }

    /// Point each branch at its commit in one ref transaction (all are
    /// locked, then written in order).
    pub fn set_branches(&self, branches: &[(&str, ObjectId)]) -> Result<()> {
        use gix::refs::transaction::{PreviousValue, RefEdit};
        // The objects (and crate files) the branches name are durable
        // before the branches move.
        crate::store::sync_tree(&self.dir)
            .with_context(|| format!("cannot write {} to disk", self.dir.display()))?;
        let repo = self.repo()?;
        let mut edits = Vec::new();
        for (name, commit) in branches {
            let full: gix::refs::FullName = format!("refs/heads/{name}")
                .try_into()
                .with_context(|| format!("{name:?} is not a branch name"))?;
            edits.push(RefEdit::update(
                full,
                *commit,
                PreviousValue::Any,
                format!("mirror: set {name}"),
            ));
        }
        // Our own committer for the reflog, at UTC: gix would otherwise
        // look up the local time zone, which can mean reading all of
        // /usr/share/zoneinfo (~1 ms) to name it.
        let committer = gix::actor::Signature {
            name: COMMITTER.0.into(),
            email: COMMITTER.1.into(),
            time: gix::date::Time::now_utc(),
        };
        let mut time = gix::date::parse::TimeBuf::default();
        for (name, _) in branches {
            crate::store::trace("write", &self.dir.join("refs/heads").join(name));
        }
        repo.edit_references_as(edits, Some(committer.to_ref(&mut time)))
            .with_context(|| {
                let names: Vec<&str> = branches.iter().map(|(n, _)| *n).collect();
                format!(
                    "cannot set branches {} in {}",
                    names.join(", "),
                    self.dir.display()
                )
            })?;
        Ok(())
    }

    /// The URL of remote `origin`, as written in the repository's config
    /// (read with gix: a `git config` process costs ~10 ms, and every
    /// operation asks whether the origin is a sparse upstream).
    pub fn origin_url(&self) -> Result<String> {
        let repo = self.repo()?;
        let url = repo
            .config_snapshot()
            .string("remote.origin.url")
            .with_context(|| {
                format!(
                    "{} has no remote origin (run `mirror crate init`)",
                    self.dir.display()
                )
            })?;
        Ok(url.to_string().trim().to_string())
    }

    /// Set the URL of remote `origin`.
    pub fn set_origin_url(&self, url: &str) -> Result<()> {
        self.git(
            "set the origin",
            &["config", "--replace-all", "remote.origin.url", url],
        )?;
        Ok(())
    }

    /// Whether remote `origin` is a bundle file (an index made by
    /// `init-import`: the far side of an air gap).
    pub fn origin_is_bundle(&self) -> Result<bool> {
        let url = self.origin_url()?;
        Ok(url.ends_with(".bundle") && !url.contains("://"))
    }

    /// Whether `config` wrote a `config.json` that is still in `from`'s
    /// tree: a commit of its ("Apply config.json adjustments") is met
    /// walking first parents from `from` through commits of this mirror
    /// only (merges and config commits; upstream's are someone else's).
    pub fn config_written_here(&self, from: ObjectId) -> Result<bool> {
        let repo = self.repo()?;
        let mut id = from;
        loop {
            let c = repo.find_commit(id)?;
            if c.committer()?.name != COMMITTER.0 {
                return Ok(false);
            }
            if c.message_raw_sloppy()
                .starts_with(CONFIG_MESSAGE.as_bytes())
            {
                return Ok(true);
            }
            let parent = c.parent_ids().next().map(|p| p.detach());
            match parent {
                Some(p) => id = p,
                None => return Ok(false),
            }
        }
    }

    /// The parents of `commit`.
    pub fn parents(&self, commit: ObjectId) -> Result<Vec<ObjectId>> {
        let repo = self.repo()?;
        let c = repo.find_commit(commit)?;
        Ok(c.parent_ids().map(|p| p.detach()).collect())
    }

    /// Fetch `origin` with its refspecs, then set `origin_master` to
    /// `refs/remotes/origin/master`. Returns (previous, new) origin_master.
    /// An origin that is a local bundle file which does not exist (an
    /// import whose archive carried no commits) fetches nothing.
    pub fn fetch_origin(&self) -> Result<(Option<ObjectId>, ObjectId)> {
        let before = self.resolve(ORIGIN_MASTER)?;
        let url = self.origin_url()?;
        let is_local_bundle = url.ends_with(".bundle") && !url.contains("://");
        // git resolves a relative path against the index (its working
        // directory here).
        if is_local_bundle && !self.dir.join(&url).exists() {
            if let Some(before) = before {
                return Ok((Some(before), before));
            }
            bail!(
                "nothing to pull: the origin bundle {url} does not exist (unpack an archive first)"
            );
        }
        self.git(
            "fetch the upstream index",
            &[
                "-c",
                "core.bigFileThreshold=16m",
                "fetch",
                "-q",
                "--force",
                "origin",
            ],
        )?;
        let new = self
            .resolve("refs/remotes/origin/master")?
            .with_context(|| format!("the upstream index {url} has no branch master"))?;
        // `origin_master` (what is merged and published) moves only to a
        // tree whose files an index can hold.
        self.check_file_sizes(before, new)
            .with_context(|| format!("refusing the upstream index {url}"))?;
        self.set_branch(ORIGIN_MASTER, new)?;
        Ok((before, new))
    }

    /// The prerequisite commits a git bundle names (`-<oid> <comment>`
    /// lines of its header) that this repository does not have, each as
    /// `<oid> <comment>`.
    fn missing_prerequisites(&self, bundle: &Path) -> Result<Vec<String>> {
        use std::io::BufRead;
        let file = std::fs::File::open(bundle)
            .with_context(|| format!("cannot open {}", bundle.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", bundle.display()))?;
        if !matches!(&line[..], b"# v2 git bundle\n" | b"# v3 git bundle\n") {
            bail!(
                "{}: not a git bundle (expected \"# v2 git bundle\", found {:?})",
                bundle.display(),
                String::from_utf8_lossy(&line[..line.len().min(40)])
            );
        }
        let repo = self.repo()?;
        let mut missing = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {}", bundle.display()))?;
            if n == 0 || line == b"\n" {
                break;
            }
            let Some(rest) = line.strip_prefix(b"-") else {
                continue;
            };
            let text = String::from_utf8_lossy(rest).trim_end().to_string();
            let oid = text.split_whitespace().next().unwrap_or("");
            let have = ObjectId::from_hex(oid.as_bytes())
                .map(|id| repo.has_object(id))
                .unwrap_or(false);
            if !have {
                missing.push(text);
            }
        }
        Ok(missing)
    }

    /// Fetch the bundle at `bundle` (after `git bundle verify`) into
    /// `refs/remotes/origin/master`; returns its commit. Accepts bundles
    /// carrying `bundle/master` (ours and romt's) or `master` (romt's when
    /// END was `master`).
    pub fn fetch_bundle(&self, bundle: &Path) -> Result<ObjectId> {
        self.fetch_bundle_checked(bundle, &|_| Ok(()))
    }

    /// [`Index::fetch_bundle`], with `accept` run on the bundle's commit
    /// (its objects fetched, no branch moved yet): an error leaves every
    /// ref as it was.
    pub fn fetch_bundle_checked(
        &self,
        bundle: &Path,
        accept: &dyn Fn(ObjectId) -> Result<()>,
    ) -> Result<ObjectId> {
        let path = bundle
            .to_str()
            .with_context(|| format!("bundle path {} is not UTF-8", bundle.display()))?;
        let missing = self.missing_prerequisites(bundle)?;
        if !missing.is_empty() {
            // What this index has of upstream, and the commit the bundle
            // starts from: the range an earlier archive must cover.
            let have = match self.resolve(ORIGIN_MASTER)? {
                Some(c) => c.to_string(),
                None => "0".to_string(),
            };
            let first = missing[0]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            bail!(
                "{}: the bundle builds on commits this index lacks:\n  {}\n\
                 an earlier archive covering {have}..{first} must be imported first: \
                 on the online side run `mirror crate pack --start {have} --end {first} --archive EARLIER.tar.gz` \
                 (or `mirror crate pack --start {have}` for one archive covering both), import it here, then this one",
                bundle.display(),
                missing.join("\n  ")
            );
        }
        self.git("verify a bundle", &["bundle", "verify", "-q", path])
            .with_context(|| format!("{}: not a bundle this index can take", bundle.display()))?;
        let heads = self.git("read a bundle", &["bundle", "list-heads", path])?;
        let refs: Vec<&str> = heads
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        let Some(head) = [BUNDLE_REF, "refs/heads/master"]
            .into_iter()
            .find(|r| refs.contains(r))
        else {
            bail!(
                "{}: bundle carries neither {BUNDLE_REF} nor refs/heads/master (found: {})",
                bundle.display(),
                refs.join(", ")
            );
        };
        // Into a ref of its own first: `origin/master` moves only once no
        // file of the new tree is larger than an index file can be. Blobs
        // above 16 MiB are streamed by git as it unpacks, not held whole.
        self.git(
            "fetch a bundle",
            &[
                "-c",
                "core.bigFileThreshold=16m",
                "fetch",
                "-q",
                "--force",
                path,
                &format!("+{head}:{INCOMING}"),
            ],
        )?;
        let incoming = self.require(INCOMING)?;
        if let Err(e) = accept(incoming) {
            let _ = self.git("drop a fetched bundle", &["update-ref", "-d", INCOMING]);
            return Err(e);
        }
        let before = self.resolve("refs/remotes/origin/master")?;
        let checked = self.check_file_sizes(before, incoming);
        let moved = checked.and_then(|()| {
            self.git(
                "take a bundle",
                &[
                    "update-ref",
                    "refs/remotes/origin/master",
                    &incoming.to_string(),
                ],
            )
        });
        let _ = self.git("drop a fetched bundle", &["update-ref", "-d", INCOMING]);
        moved.with_context(|| format!("{}: refusing the bundle", bundle.display()))?;
        Ok(incoming)
    }

    /// Refuse a tree at `new` holding a file that `old` (or an empty tree)
    /// does not and that is larger than any index file can be
    /// ([`limit::CRATE_INDEX_FILE`]), by the object headers, before
    /// anything reads it.
    fn check_file_sizes(&self, old: Option<ObjectId>, new: ObjectId) -> Result<()> {
        const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let old = old.map_or(EMPTY_TREE.to_string(), |o| o.to_string());
        let out = self.git(
            "list the files a bundle changes",
            &[
                "diff-tree",
                "-r",
                "-z",
                "--no-renames",
                "--diff-filter=AMT",
                &old,
                &new.to_string(),
            ],
        )?;
        let repo = self.repo()?;
        let mut fields = out.split('\0');
        while let Some(meta) = fields.next() {
            let Some(path) = fields.next() else { break };
            // ":100644 100644 <old> <new> M"
            let parts: Vec<&str> = meta.split(' ').collect();
            let (Some(mode), Some(id)) = (parts.get(1), parts.get(3)) else {
                continue;
            };
            if !mode.starts_with("100") && *mode != "120000" {
                continue;
            }
            let id = parse_oid(id)?;
            let size = repo.find_header(id)?.size();
            limit::CRATE_INDEX_FILE.check(size).with_context(|| {
                format!(
                    "file {:?} ({id}) of commit {new}",
                    path.chars().take(200).collect::<String>()
                )
            })?;
        }
        Ok(())
    }

    /// Merge `origin_master` into `working` (see the module docs):
    /// `working`'s tree becomes upstream's with every entry that is not
    /// part of the index layout left out (see [`layout::parse_index_path`])
    /// and, when this mirror has its own `config.json` ([`Index::own_config`]),
    /// that one in place of upstream's. Returns the new `working` and the
    /// entries left out.
    pub fn merge_origin(&self) -> Result<Merged> {
        let origin = self.require(ORIGIN_MASTER)?;
        let working = self.resolve(WORKING)?;
        if let Some(w) = working {
            if w == origin || self.is_ancestor(origin, w)? {
                return Ok(Merged {
                    working: w,
                    dropped: Vec::new(),
                });
            }
        }
        // Subtrees `working` already holds were checked when they came.
        let known = working.map(|w| self.tree_id(w)).transpose()?;
        let origin_tree = self.tree_id(origin)?;
        let (tree, dropped) = self.published_tree(origin_tree, known)?;
        let fast_forward = match working {
            Some(w) => self.is_ancestor(w, origin)?,
            None => true,
        };
        let merged = if tree == origin_tree && fast_forward {
            origin
        } else {
            let parents: Vec<ObjectId> = working.into_iter().chain([origin]).collect();
            self.commit_tree(tree, &parents, MERGE_MESSAGE)?
        };
        self.set_branch(WORKING, merged)?;
        Ok(Merged {
            working: merged,
            dropped,
        })
    }

    /// The tree to publish for `tree`: the entries of the index layout
    /// only, with this mirror's own `config.json` when it has one; `known`
    /// is a tree already checked (its subtrees are not read again). Also
    /// the entries left out.
    pub fn published_tree(
        &self,
        tree: ObjectId,
        known: Option<ObjectId>,
    ) -> Result<(ObjectId, Vec<String>)> {
        let repo = self.repo()?;
        let mut dropped = Vec::new();
        let clean = clean_tree(&repo, tree, known, "", &mut dropped)?;
        let clean = match clean {
            Some(t) => t,
            None => repo.write_object(gix::objs::Tree::empty())?.detach(),
        };
        let out = match self.own_config()? {
            Some(blob) => with_config(&repo, clean, blob)?,
            None => clean,
        };
        Ok((out, dropped))
    }

    /// The blob of this mirror's own `config.json` (written by `config`),
    /// if it has one: what `master` publishes, whatever upstream or a
    /// bundle carries.
    pub fn own_config(&self) -> Result<Option<ObjectId>> {
        let repo = self.repo()?;
        let Some(mut r) = repo.try_find_reference(OWN_CONFIG_REF)? else {
            return Ok(None);
        };
        let id = r
            .peel_to_id()
            .with_context(|| format!("{OWN_CONFIG_REF} in {} is broken", self.dir.display()))?
            .detach();
        let blob = repo
            .find_object(id)
            .ok()
            .filter(|o| o.kind == gix::object::Kind::Blob);
        if blob.is_none() {
            bail!(
                "{OWN_CONFIG_REF} in {} does not name a config.json blob (run `mirror crate config`)",
                self.dir.display()
            );
        }
        Ok(Some(id))
    }

    /// Record `config` as this mirror's own `config.json` (see
    /// [`Index::own_config`]); returns its blob.
    pub fn set_own_config(&self, config: &[u8]) -> Result<ObjectId> {
        let blob = self.write_blob(config)?;
        self.git(
            "record config.json",
            &["update-ref", OWN_CONFIG_REF, &blob.to_string()],
        )?;
        Ok(blob)
    }

    /// Commit `config` as `config.json` on top of `working` (creating
    /// `working` when the index is empty) and record it as this mirror's
    /// own; returns the new `working`.
    pub fn write_config(&self, config: &[u8]) -> Result<ObjectId> {
        let working = self.resolve(WORKING)?;
        let blob = self.set_own_config(config)?;
        if let Some(w) = working {
            if self.blob_id(w, "config.json")? == Some(blob) {
                return Ok(w);
            }
        }
        let repo = self.repo()?;
        let base = match working {
            Some(w) => self.tree_id(w)?,
            None => repo.write_object(gix::objs::Tree::empty())?.detach(),
        };
        let tree = with_config(&repo, base, blob)?;
        let parents: Vec<ObjectId> = working.into_iter().collect();
        let commit = self.commit_tree(tree, &parents, CONFIG_MESSAGE)?;
        self.set_branch(WORKING, commit)?;
        Ok(commit)
    }

    /// Whether the history at `end` continues the one at `last`: every
    /// commit `last` holds that `end` lacks is one this mirror wrote (its
    /// merges of upstream and `config` commits, which every side writes
    /// for itself), so no upstream commit imported before is dropped.
    pub fn continues(&self, last: ObjectId, end: ObjectId) -> Result<bool> {
        const MOST: usize = 1000;
        if last == end || self.is_ancestor(last, end)? {
            return Ok(true);
        }
        let out = self.git(
            "compare index histories",
            &[
                "log",
                "--format=%cn%x00%ce%x00%s",
                "-n",
                &(MOST + 1).to_string(),
                &format!("{end}..{last}"),
            ],
        )?;
        let lines: Vec<&str> = out.lines().collect();
        let ours = |line: &str| {
            let mut f = line.splitn(3, '\0');
            let (name, email, subject) = (f.next(), f.next(), f.next());
            name == Some(COMMITTER.0)
                && email == Some(COMMITTER.1)
                && matches!(subject, Some(s) if s == CONFIG_MESSAGE || s == MERGE_MESSAGE)
        };
        Ok(lines.len() <= MOST && lines.iter().all(|l| ours(l)))
    }

    /// Whether `a` is an ancestor of (or equal to) `b`.
    pub fn is_ancestor(&self, a: ObjectId, b: ObjectId) -> Result<bool> {
        let status = git_command(&self.dir)
            .args([
                "merge-base",
                "--is-ancestor",
                &a.to_string(),
                &b.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| missing_git(e, "compare commits"))?;
        Ok(status.success())
    }

    /// Write a git bundle v2 of `start..end` (all of `end`'s history when
    /// `start` is `None`) carrying [`BUNDLE_REF`] to `path`, atomically.
    pub fn create_bundle(&self, path: &Path, start: Option<ObjectId>, end: ObjectId) -> Result<()> {
        self.git(
            "create a bundle",
            &["update-ref", BUNDLE_REF, &end.to_string()],
        )?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = crate::store::temp_sibling(path);
        // The temporaries of killed runs, each as large as a bundle.
        if let (Some(dir), Some(name)) = (tmp.parent(), path.file_name()) {
            crate::store::remove_abandoned(dir, &format!(".{}.tmp.", name.to_string_lossy()));
        }
        let tmp_str = tmp
            .to_str()
            .with_context(|| format!("bundle path {} is not UTF-8", path.display()))?;
        let mut args = vec!["bundle", "create", "-q", tmp_str, BUNDLE_REF];
        let not_start = start.map(|s| format!("^{s}"));
        if let Some(s) = &not_start {
            args.push(s);
        }
        let r = self.git("create a bundle", &args);
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        crate::store::sync_tree(&tmp)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write {}", path.display()))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
        Ok(())
    }

    /// The crate versions START..END added (or re-checksummed) and removed,
    /// for crates `filter` selects. `start: None` is the empty tree.
    pub fn changes(
        &self,
        start: Option<ObjectId>,
        end: ObjectId,
        filter: &CrateFilter,
    ) -> Result<Changes> {
        self.changes_each(start, end, filter, &|_| {}, true)
    }

    /// [`Index::changes`], handing each added version to `on_added` as soon
    /// as its index file is parsed (from several threads, in no particular
    /// order), so downloads can start while the rest is still diffed. With
    /// `keep_added` false the added versions go to `on_added` only and the
    /// result lists just the removed ones: a plan of the whole index then
    /// holds no second copy of every version.
    pub fn changes_each(
        &self,
        start: Option<ObjectId>,
        end: ObjectId,
        filter: &CrateFilter,
        on_added: &(dyn Fn(&Entry) + Sync),
        keep_added: bool,
    ) -> Result<Changes> {
        let repo = self.repo()?;
        let end_tree = repo.find_commit(end)?.tree()?;
        let start_tree = match start {
            Some(s) => Some(repo.find_commit(s)?.tree()?),
            None => None,
        };
        let opts = gix::diff::Options::default().with_rewrites(None);
        let diff = repo
            .diff_tree_to_tree(start_tree.as_ref(), Some(&end_tree), Some(opts))
            .with_context(|| format!("cannot diff the index trees of {start:?} and {end}"))?;
        // The tree diff names the changed files; reading and parsing both
        // sides of each (the bulk of the work: inflating blobs, JSON lines)
        // runs on every core, each thread with its own repository handle.
        let mut files: Vec<(String, Option<ObjectId>, Option<ObjectId>)> = Vec::new();
        for change in diff {
            use gix::object::tree::diff::ChangeDetached as C;
            let (path, old, new) = match change {
                C::Addition {
                    location,
                    entry_mode,
                    id,
                    ..
                } if entry_mode.is_blob() => (location, None, Some(id)),
                C::Deletion {
                    location,
                    entry_mode,
                    id,
                    ..
                } if entry_mode.is_blob() => (location, Some(id), None),
                C::Modification {
                    location,
                    previous_id,
                    id,
                    entry_mode,
                    previous_entry_mode,
                } => (
                    location,
                    previous_entry_mode.is_blob().then_some(previous_id),
                    entry_mode.is_blob().then_some(id),
                ),
                _ => continue,
            };
            let path = path.to_string();
            let Some(file_name) = crate_file_name(&path) else {
                continue;
            };
            if filter.name_matches(file_name) {
                files.push((path, old, new));
            }
        }
        drop((start_tree, end_tree));
        let start_at = start.map(|s| s.to_string()).unwrap_or_default();
        let end_at = end.to_string();
        let file_changes = |repo: &gix::Repository,
                            (path, old, new): &(String, Option<ObjectId>, Option<ObjectId>)|
         -> Result<Changes> {
            let read = |id: &Option<ObjectId>, at: &str| -> Result<BTreeMap<String, Entry>> {
                match id {
                    Some(id) => parse_file(&index_blob(repo, *id, path)?, path, at),
                    None => Ok(BTreeMap::new()),
                }
            };
            let old = read(old, &start_at)?;
            let new = read(new, &end_at)?;
            let mut changes = Changes::default();
            for (vers, e) in &old {
                if !new.contains_key(vers) && filter.matches(&e.name, vers) {
                    changes.removed.push(e.clone());
                }
            }
            // The bulk (every version of a new file) moves, not copied.
            for (vers, e) in new {
                if filter.matches(&e.name, &vers)
                    && old.get(&vers).is_none_or(|o| o.cksum != e.cksum)
                {
                    on_added(&e);
                    if keep_added {
                        changes.added.push(e);
                    }
                }
            }
            Ok(changes)
        };
        // The first files are read on this thread as soon as the tree diff
        // names them, so their versions reach `on_added` (and downloads
        // start) without waiting for a thread pool; the rest in parallel,
        // each thread with its own repository handle.
        let (head, tail) = files.split_at(files.len().min(SERIAL_HEAD_FILES));
        let mut changes = Changes::default();
        let mut repo = repo;
        repo.object_cache_size_if_unset(4 << 20);
        for file in head {
            let c = file_changes(&repo, file)?;
            changes.added.extend(c.added);
            changes.removed.extend(c.removed);
        }
        if !tail.is_empty() {
            let shared = repo.into_sync();
            let rest = tail
                .par_iter()
                .map_init(
                    || {
                        let mut repo = shared.to_thread_local();
                        repo.object_cache_size_if_unset(4 << 20);
                        repo
                    },
                    |repo, file| file_changes(repo, file),
                )
                .try_reduce(Changes::default, |mut a, b| {
                    a.added.extend(b.added);
                    a.removed.extend(b.removed);
                    Ok(a)
                })?;
            changes.added.extend(rest.added);
            changes.removed.extend(rest.removed);
        }
        let by_key = |a: &Entry, b: &Entry| (&a.name, &a.vers).cmp(&(&b.name, &b.vers));
        if tail.is_empty() {
            changes.added.sort_unstable_by(by_key);
            changes.removed.sort_unstable_by(by_key);
        } else {
            changes.added.par_sort_unstable_by(by_key);
            changes.removed.par_sort_unstable_by(by_key);
        }
        Ok(changes)
    }

    /// The index line of `name` at `vers` in `commit`'s tree.
    pub fn entry(&self, commit: ObjectId, name: &str, vers: &str) -> Result<Option<Entry>> {
        let wanted = [(name.to_string(), vers.to_string())];
        Ok(self.entries(commit, &wanted)?.pop().flatten())
    }

    /// [`Index::entry`] for many (name, version) pairs at once: one
    /// repository and tree, each index file read and parsed once.
    pub fn entries(
        &self,
        commit: ObjectId,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<Entry>>> {
        let repo = self.repo()?;
        let tree = repo.find_commit(commit)?.tree()?;
        let at = commit.to_string();
        let mut files: std::collections::HashMap<String, BTreeMap<String, Entry>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(wanted.len());
        for (name, vers) in wanted {
            let path = layout::index_path(name);
            if !files.contains_key(&path) {
                let parsed = match tree.lookup_entry_by_path(&path)? {
                    Some(entry) => {
                        parse_file(&index_blob(&repo, entry.object_id(), &path)?, &path, &at)?
                    }
                    None => BTreeMap::new(),
                };
                files.insert(path.clone(), parsed);
            }
            out.push(files[&path].get(vers).filter(|e| &e.name == name).cloned());
        }
        Ok(out)
    }

    /// Every index file of `commit`'s tree with its blob bytes, for paths
    /// that are crate files (see [`layout::parse_index_path`]) and `want`
    /// accepts (given the lower-cased name).
    pub fn crate_files(
        &self,
        commit: ObjectId,
        want: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let repo = self.repo()?;
        let mut out = Vec::new();
        let (files, _) = self.index_files(commit)?;
        for (_, id, path) in files {
            if crate_file_name(&path).is_some_and(&want) {
                let data = index_blob(&repo, id, &path)?;
                out.push((path, data));
            }
        }
        Ok(out)
    }

    /// The files of `commit`'s tree that are part of the index layout:
    /// (`100644` or `100755`, blob id, path), and the entries left out
    /// (as [`Index::merge_origin`] lists them).
    pub fn index_files(&self, commit: ObjectId) -> Result<(Vec<IndexFile>, Vec<String>)> {
        let repo = self.repo()?;
        let tree = self.tree_id(commit)?;
        let mut files = Vec::new();
        let mut dropped = Vec::new();
        walk_index_tree(&repo, tree, "", &mut files, &mut dropped)?;
        Ok((files, dropped))
    }

    /// Write a commit (parent: `parent`) whose tree is `end`'s with the
    /// crate files cut down to the lines `keep` accepts: lines are kept
    /// byte-for-byte, a file left with no line is dropped, `config.json`
    /// is this mirror's own ([`Index::own_config`]) or else `end`'s, and
    /// nothing else of `end`'s tree is kept (paths outside the index
    /// layout are left out, and listed). `keep_name` (the lower-cased file
    /// name) lets whole files go without being read. Returns the commit,
    /// (lines kept, lines in `end`'s files read) and the entries left out.
    /// Nothing moves a branch.
    pub fn write_subset(
        &self,
        end: ObjectId,
        parent: Option<ObjectId>,
        keep_name: impl Fn(&str) -> bool,
        keep: impl Fn(&Entry) -> bool,
        message: &str,
    ) -> Result<Subset> {
        use std::io::Write as _;
        let repo = self.repo()?;
        let mut stream: Vec<u8> = Vec::new();
        let (mut kept, mut seen) = (0, 0);
        let own_config = self.own_config()?;
        let (files, dropped) = self.index_files(end)?;
        let mut wrote_config = false;
        for (mode, id, path) in files {
            let Some(name) = crate_file_name(&path) else {
                // config.json, the one other path of the layout.
                let id = own_config.unwrap_or(id);
                writeln!(stream, "M 100644 {id} {}", fast_import_path(&path)?)?;
                wrote_config = true;
                continue;
            };
            if !keep_name(name) {
                continue;
            }
            let blob = index_blob(&repo, id, &path)?;
            let lines = parse_lines(&blob, &path, &end.to_string())?;
            seen += lines.len();
            let chosen: Vec<&[u8]> = lines
                .iter()
                .filter(|(_, e)| keep(e))
                .map(|(raw, _)| *raw)
                .collect();
            kept += chosen.len();
            if chosen.is_empty() {
                continue;
            }
            let quoted = fast_import_path(&path)?;
            if chosen.len() == lines.len() {
                writeln!(stream, "M {mode} {id} {quoted}")?;
            } else {
                let data: Vec<u8> = chosen.concat();
                write!(stream, "M {mode} inline {quoted}\ndata {}\n", data.len())?;
                stream.extend_from_slice(&data);
                writeln!(stream)?;
            }
        }
        if let (Some(id), false) = (own_config, wrote_config) {
            writeln!(stream, "M 100644 {id} {}", fast_import_path("config.json")?)?;
        }
        let commit = self.fast_import(parent, message, &stream)?;
        Ok(Subset {
            commit,
            kept,
            seen,
            dropped,
        })
    }

    /// The bytes of the index blob `id` (found at `path`, for messages),
    /// size-checked like every index file read.
    pub fn blob(&self, id: ObjectId, path: &str) -> Result<Vec<u8>> {
        index_blob(&self.repo()?, id, path)
    }

    /// The bytes of the file at `path` in `commit`'s tree, if any.
    pub fn file_at(&self, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
        let repo = self.repo()?;
        let tree = repo.find_commit(commit)?.tree()?;
        match tree.lookup_entry_by_path(path)? {
            Some(e) if e.mode().is_blob() => Ok(Some(index_blob(&repo, e.object_id(), path)?)),
            _ => Ok(None),
        }
    }

    /// A commit (parent: `parent`) whose tree holds exactly `files`
    /// (path -> bytes, stored as given); `parent` itself when its tree is
    /// the same. Nothing moves a branch.
    pub fn commit_files(
        &self,
        parent: Option<ObjectId>,
        files: &BTreeMap<String, Vec<u8>>,
        message: &str,
    ) -> Result<ObjectId> {
        use std::io::Write as _;
        let mut body = Vec::new();
        for (path, data) in files {
            let path = fast_import_path(path)?;
            write!(body, "M 100644 inline {path}\ndata {}\n", data.len())?;
            body.extend_from_slice(data);
            writeln!(body)?;
        }
        let commit = self.fast_import(parent, message, &body)?;
        if let Some(p) = parent {
            if self.tree_id(p)? == self.tree_id(commit)? {
                return Ok(p);
            }
        }
        Ok(commit)
    }

    /// Run `git fast-import` for one commit on top of `parent` whose tree
    /// is empty but for the `M` commands of `body`; returns it.
    fn fast_import(
        &self,
        parent: Option<ObjectId>,
        message: &str,
        body: &[u8],
    ) -> Result<ObjectId> {
        use std::io::Write as _;
        let when = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let tmp_ref = "refs/mirror/fast-import";
        let mut stream: Vec<u8> = Vec::new();
        write!(
            stream,
            "commit {tmp_ref}\ncommitter {} <{}> {when} +0000\ndata {}\n{message}\n",
            COMMITTER.0,
            COMMITTER.1,
            message.len()
        )?;
        if let Some(p) = parent {
            writeln!(stream, "from {p}")?;
        }
        writeln!(stream, "deleteall")?;
        stream.extend_from_slice(body);
        writeln!(stream, "done")?;
        self.run_git(
            "write the index",
            &["fast-import", "--quiet", "--done", "--force"],
            Some(&stream),
        )?;
        let commit = self.require(tmp_ref)?;
        self.git("write the index", &["update-ref", "-d", tmp_ref])?;
        Ok(commit)
    }

    /// The tree id of `commit`.
    pub fn tree_of(&self, commit: ObjectId) -> Result<ObjectId> {
        self.tree_id(commit)
    }

    fn blob_id(&self, commit: ObjectId, path: &str) -> Result<Option<ObjectId>> {
        let repo = self.repo()?;
        let tree = repo.find_commit(commit)?.tree()?;
        Ok(tree.lookup_entry_by_path(path)?.map(|e| e.object_id()))
    }

    fn tree_id(&self, commit: ObjectId) -> Result<ObjectId> {
        let repo = self.repo()?;
        let id = repo.find_commit(commit)?.tree_id()?.detach();
        Ok(id)
    }

    fn write_blob(&self, data: &[u8]) -> Result<ObjectId> {
        let out = self.run_git(
            "write config.json",
            &["hash-object", "-w", "--stdin"],
            Some(data),
        )?;
        parse_oid(&out)
    }

    /// Write a commit of `tree` with `parents`; nothing moves a branch.
    pub fn commit_tree(
        &self,
        tree: ObjectId,
        parents: &[ObjectId],
        message: &str,
    ) -> Result<ObjectId> {
        let tree = tree.to_string();
        let parents: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        for p in &parents {
            args.push("-p");
            args.push(p);
        }
        parse_oid(&self.git("write a commit", &args)?)
    }
}

/// The lower-cased crate name an index path stands for, if it is the path
/// of a crate file (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`, see
/// [`layout::parse_index_path`]); other paths (`config.json`, `.github/…`,
/// a name that does not fit its directory) are not crate files.
pub fn crate_file_name(path: &str) -> Option<&str> {
    match layout::parse_index_path(path)? {
        layout::IndexPath::Crate(name) => Some(name),
        layout::IndexPath::Config => None,
    }
}

/// `path` as a `git fast-import` path: refused unless it is a path of the
/// index layout ([`layout::parse_index_path`]), and C-quoted all the same,
/// so no byte of it is ever read as a command.
pub fn fast_import_path(path: &str) -> Result<String> {
    if layout::parse_index_path(path).is_none() {
        bail!("refusing to write {path:?} into the index: not a path of the index layout");
    }
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// What [`Index::merge_origin`] did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The new `working`.
    pub working: ObjectId,
    /// The upstream entries left out (paths outside the index layout).
    pub dropped: Vec<String>,
}

/// What [`Index::write_subset`] wrote.
#[derive(Debug, Clone)]
pub struct Subset {
    /// The commit.
    pub commit: ObjectId,
    /// Lines kept.
    pub kept: usize,
    /// Lines read.
    pub seen: usize,
    /// Entries of `end`'s tree left out (paths outside the index layout).
    pub dropped: Vec<String>,
}

/// A file of the index layout in a tree: its mode (`100644` or `100755`),
/// blob id and path.
pub type IndexFile = (&'static str, ObjectId, String);

/// The ref recording this mirror's own `config.json` (a blob): see
/// [`Index::own_config`]. Not a branch: bundles and the served
/// repository never carry it.
pub const OWN_CONFIG_REF: &str = "refs/mirror/config";

/// The END of the last archive `pack` wrote (not a branch: never bundled
/// or served): what a `pack` after `update` must start from.
pub const PACKED_REF: &str = "refs/mirror/packed";

/// How an entry of a tree at `dir` fits the index layout.
enum Fit {
    /// A directory of the layout.
    Dir,
    /// A file of the layout (`config.json` or a crate file).
    File,
    /// Anything else: why.
    Not(&'static str),
}

/// Where the entry `name` (raw bytes of a tree) with `mode` below `dir`
/// fits, and its path.
fn fit(dir: &str, name: &[u8], mode: gix::objs::tree::EntryMode) -> (String, Fit) {
    use gix::objs::tree::EntryKind;
    let shown = |name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        }
    };
    let Ok(text) = std::str::from_utf8(name) else {
        return (shown(name), Fit::Not("not UTF-8"));
    };
    let path = shown(text.as_bytes());
    if text.is_empty() || text.contains('/') || text.contains('\0') {
        return (path, Fit::Not("not a file name"));
    }
    let fit = match mode.kind() {
        EntryKind::Tree if layout::is_index_dir(&path) => Fit::Dir,
        EntryKind::Blob | EntryKind::BlobExecutable
            if layout::parse_index_path(&path).is_some() =>
        {
            Fit::File
        }
        EntryKind::Tree | EntryKind::Blob | EntryKind::BlobExecutable => {
            Fit::Not("not a path of the index layout")
        }
        EntryKind::Link => Fit::Not("a symbolic link"),
        EntryKind::Commit => Fit::Not("a submodule"),
    };
    (path, fit)
}

/// `tree` (below `dir`) with every entry that is not part of the index
/// layout left out, each listed in `dropped` (path, quoted, and why);
/// `None` when nothing is left. Subtrees that `known` (a tree checked
/// before, at the same place) holds with the same id are kept unread, and
/// a tree with nothing to leave out keeps its id.
fn clean_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    known: Option<ObjectId>,
    dir: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<ObjectId>> {
    if Some(tree) == known {
        return Ok(Some(tree));
    }
    let known_entries: BTreeMap<Vec<u8>, ObjectId> = match known {
        Some(k) => read_tree(repo, k)?
            .into_iter()
            .map(|e| (e.filename.to_vec(), e.oid))
            .collect(),
        None => BTreeMap::new(),
    };
    let entries = read_tree(repo, tree)?;
    let mut kept: Vec<gix::objs::tree::Entry> = Vec::with_capacity(entries.len());
    let mut changed = false;
    let mut names = std::collections::HashSet::new();
    for e in entries {
        let (path, fit) = fit(dir, &e.filename, e.mode);
        if !names.insert(e.filename.clone()) {
            dropped.push(format!("{path:?}: a second entry of that name"));
            changed = true;
            continue;
        }
        match fit {
            Fit::File => kept.push(e),
            Fit::Dir => {
                let before = known_entries.get(e.filename.as_slice()).copied();
                match clean_tree(repo, e.oid, before, &path, dropped)? {
                    Some(id) => {
                        changed |= id != e.oid;
                        kept.push(gix::objs::tree::Entry { oid: id, ..e });
                    }
                    None => changed = true,
                }
            }
            Fit::Not(why) => {
                dropped.push(format!("{path:?}: {why}"));
                changed = true;
            }
        }
    }
    let sorted = kept.windows(2).all(|w| w[0] < w[1]);
    if !changed && sorted {
        return Ok(Some(tree));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    kept.sort();
    let id = repo
        .write_object(gix::objs::Tree { entries: kept })
        .with_context(|| format!("cannot write a tree of the index ({dir:?})"))?;
    Ok(Some(id.detach()))
}

/// Every file of the index layout in `tree` (below `dir`), in tree order,
/// and the entries left out (as [`clean_tree`] lists them).
fn walk_index_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    dir: &str,
    files: &mut Vec<IndexFile>,
    dropped: &mut Vec<String>,
) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    let mut entries = read_tree(repo, tree)?;
    entries.sort();
    for e in entries {
        let (path, fit) = fit(dir, &e.filename, e.mode);
        if !names.insert(e.filename.clone()) {
            dropped.push(format!("{path:?}: a second entry of that name"));
            continue;
        }
        match fit {
            Fit::File => {
                let mode = match e.mode.kind() {
                    gix::objs::tree::EntryKind::BlobExecutable => "100755",
                    _ => "100644",
                };
                files.push((mode, e.oid, path));
            }
            Fit::Dir => walk_index_tree(repo, e.oid, &path, files, dropped)?,
            Fit::Not(why) => dropped.push(format!("{path:?}: {why}")),
        }
    }
    Ok(())
}

/// The entries of the tree `id`.
fn read_tree(repo: &gix::Repository, id: ObjectId) -> Result<Vec<gix::objs::tree::Entry>> {
    let tree = repo
        .find_tree(id)
        .with_context(|| format!("cannot read the index tree {id}"))?;
    let decoded = tree
        .decode()
        .with_context(|| format!("cannot read the index tree {id}"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| gix::objs::tree::Entry {
            mode: e.mode,
            filename: e.filename.to_owned(),
            oid: e.oid.to_owned(),
        })
        .collect())
}

/// The tree `tree` with `config.json` (at the top) replaced by `blob`
/// (`tree` itself when it holds that already).
fn with_config(repo: &gix::Repository, tree: ObjectId, blob: ObjectId) -> Result<ObjectId> {
    let entries = read_tree(repo, tree)?;
    let same = |e: &gix::objs::tree::Entry| {
        e.filename == "config.json"
            && e.oid == blob
            && e.mode.kind() == gix::objs::tree::EntryKind::Blob
    };
    if entries
        .iter()
        .filter(|e| e.filename == "config.json")
        .count()
        == 1
        && entries.iter().any(same)
    {
        return Ok(tree);
    }
    let mut entries: Vec<gix::objs::tree::Entry> = entries
        .into_iter()
        .filter(|e| e.filename != "config.json")
        .collect();
    entries.push(gix::objs::tree::Entry {
        mode: gix::objs::tree::EntryKind::Blob.into(),
        filename: "config.json".into(),
        oid: blob,
    });
    entries.sort();
    let id = repo
        .write_object(gix::objs::Tree { entries })
        .context("cannot write the index tree with config.json")?;
    Ok(id.detach())
}

/// Parse one index file: every line must be a valid entry for this file.
/// Later lines for a version override earlier ones (as cargo reads them).
pub fn parse_file(data: &[u8], path: &str, at: &str) -> Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    for (_, e) in parse_lines(data, path, at)? {
        out.insert(e.vers.clone(), e);
    }
    Ok(out)
}

/// Parse one index file line by line: each non-blank line as it is stored
/// (with its `\n`, byte-for-byte) and the entry it holds; every line must
/// be a valid entry for this file.
pub fn parse_lines<'a>(data: &'a [u8], path: &str, at: &str) -> Result<Vec<(&'a [u8], Entry)>> {
    #[derive(serde::Deserialize)]
    struct Line {
        name: String,
        vers: String,
        cksum: String,
    }
    let where_ = |n: usize| {
        if at.is_empty() {
            format!("index file {path}, line {n}")
        } else {
            format!("index file {path} at {at}, line {n}")
        }
    };
    let expected_name = crate_file_name(path);
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        let (raw, tail) = rest.split_at(end);
        rest = tail;
        i += 1;
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = i;
        let l: Line = serde_json::from_slice(line).with_context(|| {
            format!(
                "{}: not an index entry (expected JSON with name, vers, cksum)",
                where_(n)
            )
        })?;
        if !layout::is_valid_crate_name(&l.name) {
            bail!(
                "{}: refusing crate name {:?}: expected letters, digits, '-' or '_'",
                where_(n),
                l.name
            );
        }
        if Some(l.name.to_ascii_lowercase().as_str()) != expected_name {
            bail!(
                "{}: crate {:?} does not belong in this file (expected {})",
                where_(n),
                l.name,
                layout::index_path(&l.name)
            );
        }
        if !layout::is_valid_version(&l.vers) {
            bail!(
                "{}: refusing version {:?} of {}: expected a plain version",
                where_(n),
                l.vers,
                l.name
            );
        }
        let cksum: Sha256Digest = l.cksum.parse().map_err(|_| {
            anyhow!(
                "{}: refusing cksum {:?} of {} {}: expected 64 hex digits",
                where_(n),
                l.cksum,
                l.name,
                l.vers
            )
        })?;
        out.push((
            raw,
            Entry {
                name: l.name,
                vers: l.vers,
                cksum,
            },
        ));
    }
    Ok(out)
}

/// The bytes of blob `id` (at `path`) of the index, refused before it is
/// read when its header says it is larger than any index file can be
/// ([`limit::CRATE_INDEX_FILE`]): a bundle or an upstream may carry a
/// blob of gigabytes that compresses to kilobytes.
fn index_blob(repo: &gix::Repository, id: ObjectId, path: &str) -> Result<Vec<u8>> {
    let size = repo.find_header(id)?.size();
    limit::CRATE_INDEX_FILE
        .check(size)
        .with_context(|| format!("refusing index file {path} ({id})"))?;
    Ok(repo.find_blob(id)?.take_data())
}

fn parse_oid(text: &str) -> Result<ObjectId> {
    ObjectId::from_hex(text.trim().as_bytes())
        .with_context(|| format!("git printed {:?}, expected an object id", text.trim()))
}

/// `git` in the index, in the environment [`crate::gitenv`] gives every
/// git child, committing as [`COMMITTER`].
fn git_command(dir: &Path) -> Command {
    let mut cmd = crate::gitenv::command_in(dir);
    cmd.args(["-c", "core.logAllRefUpdates=false"])
        .env("GIT_AUTHOR_NAME", COMMITTER.0)
        .env("GIT_AUTHOR_EMAIL", COMMITTER.1)
        .env("GIT_COMMITTER_NAME", COMMITTER.0)
        .env("GIT_COMMITTER_EMAIL", COMMITTER.1);
    die_with_parent(&mut cmd);
    cmd
}

/// Have git die with us. A `git fetch` that outlives a killed run keeps
/// writing refs and objects while the rerun, which took the tree lock
/// the dead run left, runs its own: one of the two fails ("cannot lock
/// ref … is at X but expected Y") or they interleave.
///
/// The signal comes when the *thread* that spawned git ends, not only the
/// process: spawn git only from threads that outlive it (the main thread
/// or a pool's), never from a short-lived one.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: `pre_exec` is unsafe because its closure runs between fork
    // and exec; this one makes only raw system calls (prctl, getppid,
    // _exit), which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // We died between fork and prctl: no signal will come.
            if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Elsewhere a killed run's git child may outlive it.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

fn missing_git(e: std::io::Error, what: &str) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow!("the `git` program is needed to {what} (mirror crate uses it for fetching, writing the index and bundles); install git and make sure it is on PATH")
    } else {
        anyhow!("cannot run git to {what}: {e}")
    }
}

/// Run git in `dir`; a failure names the operation and carries git's
/// stderr.
fn run_git(dir: &Path, what: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    use std::io::Write;
    let mut cmd = git_command(dir);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| missing_git(e, what))?;
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(data)
            .with_context(|| format!("cannot write to git {}", args.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "cannot {what}: git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_are_recognised() {
        assert_eq!(crate_file_name("1/a"), Some("a"));
        assert_eq!(crate_file_name("2/ab"), Some("ab"));
        assert_eq!(crate_file_name("3/a/abc"), Some("abc"));
        assert_eq!(crate_file_name("se/rd/serde"), Some("serde"));
        for not in [
            "config.json",
            ".github/x",
            "3/b/abc",
            "se/rx/serde",
            "1/ab",
            "a/b/c/d",
        ] {
            assert_eq!(crate_file_name(not), None, "{not}");
        }
    }

    #[test]
    fn fast_import_paths_are_quoted_and_only_index_paths() {
        assert_eq!(fast_import_path("config.json").unwrap(), "\"config.json\"");
        assert_eq!(fast_import_path("se/rd/serde").unwrap(), "\"se/rd/serde\"");
        for bad in [
            "x\nM 100644 inline config.json",
            "README.md",
            "\"1/a\"",
            "1/a\\",
            "../1/a",
            "se/rd/Serde",
            "3/\u{e9}/\u{e9}a",
        ] {
            let err = fast_import_path(bad).unwrap_err().to_string();
            assert!(err.contains("not a path of the index layout"), "{err}");
        }
    }

    #[test]
    fn clean_trees_keep_only_the_index_layout() {
        use gix::objs::tree::{Entry as E, EntryKind};
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::init(&tmp.path().join("i"), "file:///nowhere", &[]).unwrap();
        let repo = index.repo().unwrap();
        let blob = repo.write_blob(b"x\n").unwrap().detach();
        let tree = |entries: Vec<(EntryKind, &[u8], ObjectId)>| -> ObjectId {
            let mut entries: Vec<E> = entries
                .into_iter()
                .map(|(k, n, oid)| E {
                    mode: k.into(),
                    filename: n.into(),
                    oid,
                })
                .collect();
            entries.sort();
            repo.write_object(gix::objs::Tree { entries })
                .unwrap()
                .detach()
        };
        use EntryKind::{Blob, Link, Tree};
        let rd = tree(vec![
            (Blob, b"Serde", blob),
            (Blob, b"serde", blob),
            (Blob, b"sexx", blob),
            (Link, b"serdf", blob),
        ]);
        let se = tree(vec![(Tree, b"rd", rd), (Blob, b"x\ny", blob)]);
        let empty_dir = tree(vec![(Blob, b"..", blob)]);
        let top = tree(vec![
            (Blob, b"..", blob),
            (Blob, b"README.md", blob),
            (Blob, b"config.json", blob),
            (Tree, b"se", se),
            (Tree, b"zz", empty_dir),
            (Blob, b"zz\nM 100644 inline stray", blob),
            (Blob, "\u{e9}".as_bytes(), blob),
            (Blob, b"\xff", blob),
        ]);
        let mut dropped = Vec::new();
        let clean = clean_tree(&repo, top, None, "", &mut dropped)
            .unwrap()
            .unwrap();
        let mut files = Vec::new();
        let mut again = Vec::new();
        walk_index_tree(&repo, clean, "", &mut files, &mut again).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.2.as_str()).collect();
        assert_eq!(paths, ["config.json", "se/rd/serde"]);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(dropped.len(), 10, "{dropped:#?}");
        assert!(dropped.iter().any(|d| d.contains("symbolic link")));
        // A clean tree is kept as it is; so are subtrees a known tree has.
        let mut none = Vec::new();
        assert_eq!(
            clean_tree(&repo, clean, None, "", &mut none).unwrap(),
            Some(clean)
        );
        assert_eq!(
            clean_tree(&repo, top, Some(top), "", &mut none).unwrap(),
            Some(top)
        );
        assert!(none.is_empty());
    }

    #[test]
    fn hostile_lines_are_refused() {
        let sum = "a".repeat(64);
        let ok = format!("{{\"name\":\"abc\",\"vers\":\"1.0.0\",\"cksum\":\"{sum}\"}}\n");
        assert_eq!(parse_file(ok.as_bytes(), "3/a/abc", "").unwrap().len(), 1);
        for (line, needle) in [
            (
                format!("{{\"name\":\"../abc\",\"vers\":\"1.0.0\",\"cksum\":\"{sum}\"}}"),
                "crate name",
            ),
            (
                format!("{{\"name\":\"abc\",\"vers\":\"../1\",\"cksum\":\"{sum}\"}}"),
                "version",
            ),
            (
                "{\"name\":\"abc\",\"vers\":\"1.0.0\",\"cksum\":\"abc\"}".to_string(),
                "64 hex",
            ),
            (
                format!("{{\"name\":\"abd\",\"vers\":\"1.0.0\",\"cksum\":\"{sum}\"}}"),
                "belong",
            ),
            ("not json".to_string(), "not an index entry"),
        ] {
            let err = parse_file(line.as_bytes(), "3/a/abc", "c0ffee").unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(needle) && msg.contains("3/a/abc"), "{msg}");
        }
    }
}
