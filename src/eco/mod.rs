//! Ecosystems. Each one *plans* — which files exist upstream, what each must
//! hash to, which index files to write — and hands the fetching to
//! [`crate::fetch::Engine`], the packing to [`crate::bundle`]. None of them
//! loops over downloads itself.

pub mod arch;
pub mod crates;
pub mod hex;
pub mod rustup;
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
