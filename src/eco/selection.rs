//! A selection remembered across runs (Hex's and Arch's; crates keep
//! theirs in their own state files): `.mirror/<ecosystem>-selection.json`.
//!
//! Selection arguments *add* to what is remembered (an entry given again
//! takes its new options); `--remove NAME` drops an entry (a name the
//! selection does not hold is refused), `--replace-selection` replaces
//! the whole. A run without selection arguments uses what is remembered,
//! so a partial tree is never widened to the whole upstream.
//!
//! What a drop deletes is recorded as `pending_removes` until the next
//! `pack`, whose archive lists them (`MIRROR-BUNDLE.json` `removes`) so
//! the far side deletes them too.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::report::Reporter;

/// One entry of a selection: named, with whatever options it was given.
pub trait Entry: Clone + Serialize + DeserializeOwned {
    /// The name `--remove` matches.
    fn name(&self) -> &str;

    /// Whether `other` is this entry given again (it then takes the new
    /// options): by default, the same name.
    fn same(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// The remembered selection of an ecosystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub struct Remembered<E> {
    /// The entries, in the order first given.
    #[serde(default = "Vec::new")]
    pub entries: Vec<E>,
    /// Files deleted by a drop that no archive has told the far side of
    /// yet (paths relative to the root).
    #[serde(default)]
    pub pending_removes: Vec<String>,
}

impl<E> Default for Remembered<E> {
    fn default() -> Self {
        Remembered {
            entries: Vec::new(),
            pending_removes: Vec::new(),
        }
    }
}

fn file_name(ecosystem: &str) -> String {
    format!("{ecosystem}-selection.json")
}

impl<E: Entry> Remembered<E> {
    /// Load (missing: empty).
    pub fn load(root: &Path, ecosystem: &str) -> Result<Self> {
        crate::store::load_meta_json(root, &file_name(ecosystem))
    }

    /// Save atomically.
    pub fn save(&self, root: &Path, ecosystem: &str) -> Result<()> {
        crate::store::save_meta_json(root, &file_name(ecosystem), self)
    }

    /// The entries' names.
    pub fn names(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.name().to_string()).collect()
    }
}

/// Refuse a run that drops (`--remove`, `--replace-selection`) without
/// `op`, the operation that applies the selection.
pub fn require_op(drops: bool, has_op: bool, op: &str) -> Result<()> {
    if drops && !has_op {
        bail!(
            "--remove and --replace-selection change the remembered selection, which {op} applies: add `{op}` (or `update`, `export`) to the operations"
        );
    }
    Ok(())
}

/// How a run changes the remembered selection.
#[derive(Debug, Clone)]
pub struct Change<E> {
    /// The entries given (empty: no selection argument).
    pub add: Vec<E>,
    /// `--remove NAME`.
    pub remove: Vec<String>,
    /// `--replace-selection`.
    pub replace: bool,
}

impl<E: Entry> Change<E> {
    /// Whether the run drops anything.
    pub fn drops(&self) -> bool {
        self.replace || !self.remove.is_empty()
    }

    /// Apply to `old`: returns the new entries and the names dropped. A
    /// name to remove the selection does not hold, and a replacement with
    /// nothing, are refused.
    pub fn apply(&self, old: &[E], what: &str) -> Result<(Vec<E>, BTreeSet<String>)> {
        let before: BTreeSet<String> = old.iter().map(|e| e.name().to_string()).collect();
        let mut entries: Vec<E> = if self.replace {
            if self.add.is_empty() {
                bail!("--replace-selection: no new selection given (name the {what}s to mirror with it)");
            }
            Vec::new()
        } else {
            crate::eco::crates::sparse::check_removals(&self.remove, &before, what)?;
            old.iter()
                .filter(|e| !self.remove.iter().any(|r| r == e.name()))
                .cloned()
                .collect()
        };
        for e in &self.add {
            match entries.iter_mut().find(|x| x.same(e)) {
                Some(x) => *x = e.clone(),
                None => entries.push(e.clone()),
            }
        }
        let after: BTreeSet<String> = entries.iter().map(|e| e.name().to_string()).collect();
        let dropped = before.difference(&after).cloned().collect();
        Ok((entries, dropped))
    }
}

/// The selection of a run (see the module docs): the entries to mirror
/// and the names dropped; [`save`] remembers them once the download
/// succeeded (a refused name is never remembered). `partial`: whether the tree
/// holds a partial mirror already (then remembering nothing is refused:
/// a run without its selection would widen it to the whole upstream).
pub fn remember<E: Entry>(
    root: &Path,
    ecosystem: &str,
    change: &Change<E>,
    partial: bool,
    what: &str,
    reporter: &dyn Reporter,
) -> Result<(Vec<E>, BTreeSet<String>)> {
    let state: Remembered<E> = Remembered::load(root, ecosystem)?;
    if state.entries.is_empty() && change.add.is_empty() {
        if change.drops() {
            bail!(
                "--remove and --replace-selection: {} remembers no selection of {what}s (it mirrors every one)",
                root.display()
            );
        }
        if partial {
            bail!(
                "{} holds a partial {ecosystem} mirror but remembers no selection (it was made before selections were remembered); \
                 a download without one would mirror the whole upstream: give the selection that made it once (--package …), it is remembered from then on",
                root.display()
            );
        }
        return Ok((Vec::new(), BTreeSet::new()));
    }
    let (entries, dropped) = change.apply(&state.entries, what)?;
    if !dropped.is_empty() {
        reporter.info(&format!(
            "{ecosystem}: the selection no longer names {} (--remove / --replace-selection); their files are deleted after the download, and by the next archive on the far side",
            dropped.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if entries.is_empty() {
        bail!(
            "the selection would be empty, which means the whole upstream: keep at least one {what}, or delete {} to mirror everything",
            crate::store::meta_path(root, &file_name(ecosystem)).display()
        );
    }
    Ok((entries, dropped))
}

/// Remember `entries` (after a download that succeeded).
pub fn save<E: Entry>(root: &Path, ecosystem: &str, entries: &[E]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut state: Remembered<E> = Remembered::load(root, ecosystem)?;
    state.entries = entries.to_vec();
    state.save(root, ecosystem)
}

/// Delete `paths` (relative to `root`) and record them for the next
/// archive to delete on the far side.
pub fn drop_files<E: Entry>(
    root: &Path,
    ecosystem: &str,
    paths: &[String],
    reporter: &dyn Reporter,
) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    remove_recorded::<E>(root, ecosystem, paths)?;
    reporter.info(&format!(
        "{ecosystem}: {} files of what the selection dropped deleted (the next archive deletes them on the far side)",
        paths.len()
    ));
    Ok(())
}

/// Record `paths` (relative to `root`) as pending removals, then delete
/// them: recorded first, so a run killed between the two still tells the
/// far side.
pub fn remove_recorded<E: Entry>(root: &Path, ecosystem: &str, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut state: Remembered<E> = Remembered::load(root, ecosystem)?;
    for p in paths {
        if !state.pending_removes.contains(p) {
            state.pending_removes.push(p.clone());
        }
    }
    state.save(root, ecosystem)?;
    for p in paths {
        let path = root.join(p);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::from(e).context(format!("cannot remove {}", path.display()))
                )
            }
        }
    }
    Ok(())
}

/// The files dropped since the last archive, minus `members` (carried
/// again): what the next archive removes.
pub fn pending_removes<E: Entry>(
    root: &Path,
    ecosystem: &str,
    members: &[String],
) -> Result<Vec<String>> {
    let state: Remembered<E> = Remembered::load(root, ecosystem)?;
    Ok(state
        .pending_removes
        .into_iter()
        .filter(|p| !members.contains(p))
        .collect())
}

/// After a pack that listed the pending removals: forget them.
pub fn clear_pending<E: Entry>(root: &Path, ecosystem: &str) -> Result<()> {
    let mut state: Remembered<E> = Remembered::load(root, ecosystem)?;
    if state.pending_removes.is_empty() {
        return Ok(());
    }
    state.pending_removes.clear();
    state.save(root, ecosystem)
}

/// [`crate::eco::time_pack`] of `members` with the removals recorded
/// since the last pack (those not packed again), which the pack then
/// forgets: the one way a time-marked ecosystem packs.
#[allow(clippy::too_many_arguments)]
pub fn time_pack_pending<E: Entry>(
    root: &Path,
    ecosystem: &str,
    mark: Option<String>,
    members: &[String],
    package_files: usize,
    archive: &Path,
    reporter: &dyn crate::report::Reporter,
) -> Result<crate::bundle::PackSummary> {
    let removes = pending_removes::<E>(root, ecosystem, members)?;
    let summary = crate::eco::time_pack(
        root,
        ecosystem,
        mark,
        members,
        &removes,
        package_files,
        archive,
        reporter,
    )?;
    clear_pending::<E>(root, ecosystem)?;
    Ok(summary)
}

/// On import: the files an archive's manifest says it removes, each
/// accepted by `is_removable` (anything else refuses the archive), said
/// and then deleted. Returns how many were deleted.
pub fn apply_archive_removes(
    root: &Path,
    ecosystem: &str,
    archive: &Path,
    manifest: Option<&crate::bundle::Manifest>,
    is_removable: impl Fn(&str) -> bool,
    reporter: &dyn Reporter,
) -> Result<usize> {
    let Some(m) = manifest else { return Ok(0) };
    if m.removes.is_empty() {
        return Ok(0);
    }
    if let Some(bad) = m.removes.iter().find(|r| !is_removable(r)) {
        bail!(
            "{}: its manifest removes {bad:?}, which is not a package file of this {ecosystem} mirror; nothing was removed",
            archive.display()
        );
    }
    const SHOWN: usize = 20;
    let mut list: Vec<String> = m.removes.iter().take(SHOWN).cloned().collect();
    if m.removes.len() > SHOWN {
        list.push(format!("and {} more", m.removes.len() - SHOWN));
    }
    reporter.info(&format!(
        "{ecosystem}: this archive removes {} files: {}",
        m.removes.len(),
        list.join(", ")
    ));
    let mut n = 0;
    for r in &m.removes {
        let path = root.join(r);
        match std::fs::remove_file(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::from(e).context(format!("cannot remove {}", path.display()))
                )
            }
        }
    }
    Ok(n)
}
