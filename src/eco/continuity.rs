//! The order of archives on the far side: one rule for every ecosystem.
//!
//! Each archive we pack carries the range it covers in its
//! `MIRROR-BUNDLE.json` (`range.start`, `range.end`: commits for crates,
//! time marks for the others). The far side records the END of the last
//! archive it imported per ecosystem (`imported` in `.mirror/state.json`).
//! Before anything of a new archive is written:
//!
//! - no END recorded yet (a fresh tree): the archive imports;
//! - its END at or before the recorded one: a replay of the same or an
//!   older archive, a no-op with a message (exit 0);
//! - its START absent (a full archive, `pack --start 0`), the recorded END
//!   itself, or before it: it carries everything since, and imports;
//! - any other START: a gap, refused, naming the range that is missing
//!   and the command that packs it on the online side;
//! - no range (romt's archives, older ones): unpacked as before, with a
//!   warning that their order cannot be checked; the recorded END stays.
//!
//! After the archive is published, its END is recorded.

use std::path::Path;

use anyhow::{bail, Result};

use crate::bundle::{self, Range};
use crate::report::Reporter;
use crate::store::State;

/// The state mark holding the END of the last archive imported.
pub const IMPORTED: &str = "imported";

/// The state mark naming the last archive imported: its `created` time
/// and the SHA-256 of its manifest. Archives that end where the last one
/// ended but carry files (crates: a selection that grew while the index
/// did not change) are ordered by it.
pub const IMPORTED_ARCHIVE: &str = "imported_archive";

/// How an ecosystem orders the marks of its ranges.
pub trait Order {
    /// Whether mark `a` is at or before mark `b` (`b` is one this tree
    /// recorded; `a` comes from an archive).
    fn at_or_before(&self, a: &str, b: &str) -> Result<bool>;

    /// A mark as messages show it.
    fn show(&self, mark: &str) -> String {
        mark.to_string()
    }
}

/// Time marks (Hex, Arch, toolchain, rustup): nanoseconds since the epoch.
pub struct TimeOrder;

impl TimeOrder {
    fn parse(mark: &str) -> Result<u128> {
        match mark.parse() {
            Ok(n) => Ok(n),
            Err(_) => bail!("range mark {mark:?} is not a time mark (nanoseconds since the epoch)"),
        }
    }
}

impl Order for TimeOrder {
    fn at_or_before(&self, a: &str, b: &str) -> Result<bool> {
        Ok(Self::parse(a)? <= Self::parse(b)?)
    }

    fn show(&self, mark: &str) -> String {
        match mark.parse::<u128>() {
            Ok(n) => {
                let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
                format!("{mark} ({})", bundle::manifest::rfc3339(secs))
            }
            Err(_) => mark.to_string(),
        }
    }
}

/// The END of the last archive of `ecosystem` imported into `root`.
pub fn last_imported(root: &Path, ecosystem: &str) -> Result<Option<String>> {
    Ok(State::load(root)?
        .mark(ecosystem, IMPORTED)
        .map(str::to_string))
}

/// An archive the rule lets through: unpack it with
/// [`Accepted::expect_range`], then [`Accepted::record`].
#[derive(Debug, Clone)]
pub struct Accepted {
    ecosystem: String,
    range: Option<Range>,
    /// `created` and manifest digest (see [`IMPORTED_ARCHIVE`]).
    id: Option<String>,
}

impl Accepted {
    /// For [`bundle::UnpackOptions::expect_range`]: what is unpacked is
    /// what was checked.
    pub fn expect_range(&self) -> Option<Option<Range>> {
        Some(self.range.clone())
    }

    /// The range checked (`None`: the archive carries none).
    pub fn range(&self) -> Option<&Range> {
        self.range.as_ref()
    }

    /// Record the archive's END as the last imported (once it is
    /// published); an archive without a range changes nothing.
    pub fn record(&self, root: &Path) -> Result<()> {
        if let Some(r) = &self.range {
            let mut state = State::load(root)?;
            state.set_mark(&self.ecosystem, IMPORTED, &r.end);
            if let Some(id) = &self.id {
                state.set_mark(&self.ecosystem, IMPORTED_ARCHIVE, id);
            }
            state.save(root)?;
        }
        Ok(())
    }
}

/// What to tell the user about packing the missing range.
pub struct Hint<'a> {
    /// The command name, e.g. `hex`, `crate`.
    pub command: &'a str,
    /// What the pack command needs besides `--start`, e.g. the selection.
    pub extra: &'a str,
}

/// Apply the rule to `archive`, an archive of `ecosystem`, against `last`
/// (the END last imported into `root`, see [`last_imported`]).
/// `Ok(None)`: a replay, already said; nothing is to be done.
pub fn check(
    root: &Path,
    ecosystem: &str,
    archive: &Path,
    last: Option<&str>,
    order: &dyn Order,
    hint: &Hint,
    reporter: &dyn Reporter,
) -> Result<Option<Accepted>> {
    let shown = archive.display();
    let manifest = bundle::read_manifest_of(archive)?;
    let id = manifest.as_ref().map(|m| {
        let json = serde_json::to_vec(m).unwrap_or_default();
        format!("{} {}", m.created, crate::verify::Sha256Digest::of(&json))
    });
    let carries = manifest
        .as_ref()
        .is_some_and(|m| !m.members.is_empty() || !m.removes.is_empty());
    let accepted = |range: Option<Range>| {
        Ok(Some(Accepted {
            ecosystem: ecosystem.to_string(),
            range,
            id: id.clone(),
        }))
    };
    let Some(manifest) = manifest else {
        reporter.warn(&format!(
            "{shown} has no {} (made by romt?): the order of {ecosystem} archives cannot be checked; unpacking it as it is",
            bundle::MANIFEST_NAME
        ));
        return accepted(None);
    };
    if manifest.ecosystem != ecosystem {
        // The unpack refuses it, naming both.
        return accepted(manifest.range);
    }
    let Some(range) = manifest.range else {
        reporter.warn(&format!(
            "{shown} carries no range (made by an older mirror): the order of {ecosystem} archives cannot be checked; unpacking it as it is"
        ));
        return accepted(None);
    };
    // Marks this ecosystem cannot order are refused before one is
    // recorded.
    for mark in range.start.iter().chain([&range.end]) {
        order.at_or_before(mark, mark)?;
    }
    let Some(last) = last else {
        return accepted(Some(range));
    };
    let cmd = |start: &str| {
        format!(
            "mirror {} pack --start {start}{}",
            hint.command,
            if hint.extra.is_empty() {
                String::new()
            } else {
                format!(" {}", hint.extra)
            }
        )
    };
    if range.end == last && range.start.as_deref() == Some(last) && carries {
        // Files packed at an unchanged END: ordered by when they were
        // packed (the same archive twice is a no-op).
        let seen = State::load(root)?
            .mark(ecosystem, IMPORTED_ARCHIVE)
            .map(str::to_string);
        let this = id.clone().unwrap_or_default();
        let newer = match &seen {
            None => true,
            Some(seen) if *seen == this => false,
            Some(seen) => {
                seen.split(' ').next().unwrap_or("") <= this.split(' ').next().unwrap_or("")
            }
        };
        if newer {
            return accepted(Some(range));
        }
    }
    if order.at_or_before(&range.end, last)? {
        if range.end == last {
            reporter.info(&format!(
                "{ecosystem}: {shown} was imported already (it ends at {}, where the last archive imported here ended); nothing to do",
                order.show(&range.end)
            ));
        } else {
            reporter.info(&format!(
                "{ecosystem}: {shown} is older than what is imported here: it ends at {}, before {}, the end of the last archive imported; nothing to do, nothing was published. \
                 What is newer comes in an archive packed later on the online side (`mirror {} export`, or `{}`)",
                order.show(&range.end),
                order.show(last),
                hint.command,
                cmd(last)
            ));
        }
        return Ok(None);
    }
    match &range.start {
        None => accepted(Some(range)),
        Some(s) if s == last => accepted(Some(range)),
        Some(s) if order.at_or_before(s, last)? => accepted(Some(range)),
        Some(s) => bail!(
            "{shown}: a gap: the archive starts at {}, but the last {ecosystem} archive imported here ended at {}; \
             what changed between them is missing, so nothing was published. \
             On the online side run `{}` (it carries everything since the last import), import that archive here, then the newer ones \
             (or `{}` for everything held)",
            order.show(s),
            order.show(last),
            cmd(last),
            cmd("0")
        ),
    }
}

/// For a time-marked ecosystem: [`check`] `archive` against what `root`
/// imported last, run `unpack` (given what to set as
/// [`bundle::UnpackOptions::expect_range`]), then record the archive's
/// END. `Ok(None)`: a replay, nothing was done.
/// `pack_extra` is what its `pack` needs besides `--start` (see [`Hint`]).
pub fn unpack_in_time_order<T>(
    root: &Path,
    ecosystem: &str,
    pack_extra: &str,
    archive: &Path,
    reporter: &dyn Reporter,
    unpack: impl FnOnce(Option<Option<Range>>) -> Result<T>,
) -> Result<Option<T>> {
    let hint = Hint {
        command: ecosystem,
        extra: pack_extra,
    };
    let last = last_imported(root, ecosystem)?;
    let Some(accepted) = check(
        root,
        ecosystem,
        archive,
        last.as_deref(),
        &TimeOrder,
        &hint,
        reporter,
    )?
    else {
        return Ok(None);
    };
    let out = unpack(accepted.expect_range())?;
    accepted.record(root)?;
    Ok(Some(out))
}

/// Whether an unpacked archive that holds nothing of its ecosystem is
/// an increment in which nothing changed (said so), not an error.
pub fn empty_increment(
    summary: &bundle::UnpackSummary,
    ecosystem: &str,
    archive: &Path,
    reporter: &dyn Reporter,
) -> bool {
    let increment = summary.manifest.as_ref().is_some_and(|m| m.range.is_some());
    if increment {
        reporter.info(&format!(
            "{ecosystem}: {} carries nothing new; nothing to publish",
            archive.display()
        ));
    }
    increment
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NullReporter;

    fn archive(dir: &Path, eco: &str, range: Option<Range>) -> std::path::PathBuf {
        let path = dir.join("a.tar.gz");
        let opts = bundle::PackOptions {
            ecosystem: eco.to_string(),
            range,
        };
        bundle::pack(dir, &[], &path, &opts, &NullReporter).unwrap();
        path
    }

    fn range(start: Option<&str>, end: &str) -> Option<Range> {
        Some(Range {
            start: start.map(str::to_string),
            end: end.to_string(),
        })
    }

    #[test]
    fn time_ranges_follow_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let hint = Hint {
            command: "hex",
            extra: "",
        };
        let run = |r: Option<Range>, last: Option<&str>| {
            let a = archive(dir.path(), "hex", r);
            check(
                dir.path(),
                "hex",
                &a,
                last,
                &TimeOrder,
                &hint,
                &NullReporter,
            )
        };
        // Fresh tree, next increment, full archive, overlap: imported.
        assert!(run(range(None, "10"), None).unwrap().is_some());
        assert!(run(range(Some("10"), "20"), Some("10")).unwrap().is_some());
        assert!(run(range(None, "30"), Some("20")).unwrap().is_some());
        assert!(run(range(Some("5"), "30"), Some("20")).unwrap().is_some());
        // Same and older: a no-op.
        assert!(run(range(Some("10"), "20"), Some("20")).unwrap().is_none());
        assert!(run(range(None, "15"), Some("20")).unwrap().is_none());
        // A gap names both ends and the command.
        let e = run(range(Some("25"), "30"), Some("20"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mirror hex pack --start 20"), "{e}");
        assert!(e.contains("starts at 25"), "{e}");
        // No range: imported, nothing to record.
        let a = run(None, Some("20")).unwrap().unwrap();
        assert!(a.range().is_none());
        // Not a time mark, even into a fresh tree.
        assert!(run(range(None, "yesterday"), Some("20")).is_err());
        assert!(run(range(Some("x"), "30"), None).is_err());
    }

    #[test]
    fn unpack_refuses_an_archive_whose_range_changed_since_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let a = archive(dir.path(), "hex", range(Some("10"), "20"));
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let mut opts = bundle::UnpackOptions {
            expect_range: Some(range(Some("10"), "30")),
            ..Default::default()
        };
        let e = bundle::unpack(&a, &root, &opts, &NullReporter)
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed while it was read"), "{e}");
        assert!(e.contains("10..20") && e.contains("10..30"), "{e}");
        opts.expect_range = Some(None);
        assert!(bundle::unpack(&a, &root, &opts, &NullReporter).is_err());
        opts.expect_range = Some(range(Some("10"), "20"));
        bundle::unpack(&a, &root, &opts, &NullReporter).unwrap();
    }
}
