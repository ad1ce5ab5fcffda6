//! Ecosystems. Each one *plans* — which files exist upstream, what each must
//! hash to, which index files to write — and hands the fetching to
//! [`crate::fetch::Engine`], the packing to [`crate::bundle`]. None of them
//! loops over downloads itself.

pub mod arch;
pub mod crates;
pub mod hex;
pub mod rustup;
pub mod selection;
pub mod toolchain;

use std::cmp::Ordering;

/// A release version `X.Y.Z`, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// Parse `X.Y.Z` (digits only).
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.');
        let mut next = || -> Option<u64> {
            let p = parts.next()?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return None;
            }
            p.parse().ok()
        };
        let v = Version(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Sort version strings newest first; non-versions go last, by name.
pub fn sort_versions_desc(versions: &mut [String]) {
    versions.sort_by(|a, b| match (Version::parse(a), Version::parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    });
}

/// Expand the target aliases shared by toolchain and rustup: `linux`,
/// `windows`, `darwin`. Other names pass through.
pub fn expand_target_alias(target: &str) -> &str {
    match target {
        "linux" => "x86_64-unknown-linux-gnu",
        "windows" => "x86_64-pc-windows-msvc",
        "darwin" => "x86_64-apple-darwin",
        other => other,
    }
}

/// Whether a target triple is plausible (letters, digits, `_`, `-`, `.`;
/// never a path).
pub fn is_valid_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 100
        && !target.starts_with(['.', '-'])
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Where a `pack` of an ecosystem with time marks (Hex, Arch) starts:
/// `--start` (`0`: every file held; else a mark value, nanoseconds since
/// the epoch, as messages name them) or else the ecosystem's mark.
/// Returns the mark value (`None`: the start of time) and its nanoseconds.
pub fn time_pack_start(
    root: &std::path::Path,
    ecosystem: &str,
    start: Option<&str>,
) -> anyhow::Result<(Option<String>, u128)> {
    match start {
        None => crate::store::State::load(root)?.time_mark(ecosystem),
        Some("0") => Ok((None, 0)),
        Some(s) => {
            let nanos = s.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--start {s:?}: expected 0 (every file held) or a mark value (nanoseconds since the epoch)"
                )
            })?;
            Ok((Some(s.to_string()), nanos))
        }
    }
}

/// Pack `members` of `root` (the first `package_files` of them package
/// files) as the range from `mark` to now of a time-marked ecosystem
/// (Hex, Arch), the manifest listing `removes` (files the far side
/// deletes), then [`after_time_pack`].
#[allow(clippy::too_many_arguments)]
pub fn time_pack(
    root: &std::path::Path,
    ecosystem: &str,
    mark: Option<String>,
    members: &[String],
    removes: &[String],
    package_files: usize,
    archive: &std::path::Path,
    reporter: &dyn crate::report::Reporter,
) -> anyhow::Result<crate::bundle::PackSummary> {
    use anyhow::Context;
    let end = crate::store::epoch_nanos(std::time::SystemTime::now()).to_string();
    let opts = crate::bundle::PackOptions {
        ecosystem: ecosystem.to_string(),
        range: Some(crate::bundle::Range {
            start: mark.clone(),
            end: end.clone(),
        }),
    };
    let summary = crate::bundle::pack_removing(root, members, removes, archive, &opts, reporter)
        .with_context(|| format!("cannot pack {}", archive.display()))?;
    after_time_pack(
        root,
        ecosystem,
        mark.as_deref(),
        &end,
        package_files,
        reporter,
    )?;
    let removing = if removes.is_empty() {
        String::new()
    } else {
        format!("; it removes {} files on import", removes.len())
    };
    reporter.info(&format!(
        "{ecosystem}: packed {} files ({} bytes) into {}{removing}",
        members.len(),
        summary.bytes,
        archive.display()
    ));
    Ok(summary)
}

/// After a `pack` of a time range (Hex, Arch) that ended at `end`: record
/// `end` as the `packed` mark when it carried package files; when it
/// carries none although a mark bounded it, say why and what to run.
pub fn after_time_pack(
    root: &std::path::Path,
    ecosystem: &str,
    start: Option<&str>,
    end: &str,
    package_files: usize,
    reporter: &dyn crate::report::Reporter,
) -> anyhow::Result<()> {
    let mut state = crate::store::State::load(root)?;
    let packed = state.mark(ecosystem, "packed").map(str::to_string);
    if package_files > 0 {
        state.set_mark(ecosystem, "packed", end);
        state.save(root)?;
        return Ok(());
    }
    let Some(start) = start else {
        return Ok(());
    };
    let since = match &packed {
        Some(p) if p.as_str() != start => p.clone(),
        Some(_) => {
            reporter.info(&format!(
                "{ecosystem}: no package file changed since the last archive packed; the archive carries only the metadata"
            ));
            return Ok(());
        }
        None => "0".to_string(),
    };
    let last = match &packed {
        Some(p) => format!("the END of the last archive packed, {p}"),
        None => "no archive was packed here yet: 0 carries every file held".to_string(),
    };
    reporter.warn(&format!(
        "{ecosystem}: no package file changed since the mark ({start}), which `update` or `mark` moved after the last download, so the archive carries only the metadata. \
         To carry what changed since the last archive ({last}), run `mirror {ecosystem} pack --start {since}`; \
         next time run `mirror {ecosystem} export` (download, pack and mark in one), not `update` then `pack`"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_sort_numerically() {
        assert_eq!(Version::parse("1.28.2"), Some(Version(1, 28, 2)));
        for bad in ["1.2", "1.2.3.4", "1.02.3", "a.b.c", "", "1..2"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        let mut v: Vec<String> = ["1.9.0", "1.10.0", "x", "1.28.2"]
            .map(String::from)
            .to_vec();
        sort_versions_desc(&mut v);
        assert_eq!(v, ["1.28.2", "1.10.0", "1.9.0", "x"]);
    }

    #[test]
    fn target_names() {
        assert_eq!(expand_target_alias("linux"), "x86_64-unknown-linux-gnu");
        assert!(is_valid_target("x86_64-unknown-linux-gnu"));
        assert!(!is_valid_target("../etc"));
        assert!(!is_valid_target("a/b"));
    }
}
