//! `MIRROR-BUNDLE.json`: what a bundle claims to carry.
//!
//! ```json
//! {
//!   "format": 1,
//!   "ecosystem": "rustup",
//!   "tool": "mirror 0.1.0",
//!   "created": "2026-10-15T12:00:00Z",
//!   "range": {"start": "abc123", "end": "def456"},
//!   "members": [
//!     {"path": "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init",
//!      "size": 12345, "sha256": "<64 hex>"}
//!   ]
//! }
//! ```
//!
//! `range` is optional (absent for bundles that are not increments);
//! `range.start` is absent for a first export. Unknown fields are ignored,
//! so a later minor addition does not break older readers; a larger
//! `format` is refused. `members` lists every file of the bundle except the
//! manifest itself, in archive order, each path in the form checked by
//! [`check_member_path`](super::check_member_path).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::verify::Sha256Digest;

/// The manifest format this code writes and the newest it reads.
pub const FORMAT: u32 = 1;

/// The name of the manifest member: always the first member of our bundles.
pub const MANIFEST_NAME: &str = "MIRROR-BUNDLE.json";

/// The manifest of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version; see [`FORMAT`].
    pub format: u32,
    /// Which ecosystem packed it (`rustup`, `toolchain`, `crates`, `hex`, `arch`).
    pub ecosystem: String,
    /// The program that packed it, e.g. `mirror 0.1.0`.
    pub tool: String,
    /// When it was packed (RFC 3339, UTC).
    pub created: String,
    /// The increment it carries, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// Every file carried, in archive order.
    pub members: Vec<Member>,
    /// Files held before this archive that it removes (paths relative to
    /// the mirror root, like `members`): what import deletes. Its length
    /// is how many files the archive removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<String>,
}

/// The increment a bundle carries: marks, dates or commits, as the
/// ecosystem defines them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Where the increment starts; absent for a first export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Where it ends.
    pub end: String,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Path relative to the mirror root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Sha256Digest,
}

/// Why a manifest is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the shape above.
    #[error("not a valid {MANIFEST_NAME}: {0}")]
    Parse(String),
    /// Written by a newer program.
    #[error("{MANIFEST_NAME} format {0} is newer than this mirror understands ({FORMAT}); upgrade mirror")]
    NewerFormat(u32),
    /// Format 0 does not exist.
    #[error("{MANIFEST_NAME} has invalid format 0")]
    ZeroFormat,
    /// The ecosystem is empty.
    #[error("{MANIFEST_NAME} names no ecosystem")]
    NoEcosystem,
    /// A member path is not a plain relative path.
    #[error("{MANIFEST_NAME} lists member {path:?}: {problem}")]
    BadPath {
        /// The path as listed.
        path: String,
        /// What is wrong with it.
        problem: super::PathProblem,
    },
    /// A member is listed twice.
    #[error("{MANIFEST_NAME} lists member {0:?} twice")]
    Duplicate(String),
}

impl Manifest {
    /// A manifest for `members`, stamped with this program and the current
    /// time.
    pub fn new(ecosystem: &str, range: Option<Range>, members: Vec<Member>) -> Self {
        Manifest {
            format: FORMAT,
            ecosystem: ecosystem.to_string(),
            tool: format!("mirror {}", env!("CARGO_PKG_VERSION")),
            created: rfc3339_now(),
            range,
            members,
            removes: Vec::new(),
        }
    }

    /// Parse and [`validate`](Self::validate) the bytes of a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The bytes written into a bundle (pretty JSON, trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        out.push(b'\n');
        out
    }

    /// Check the format, the ecosystem, and that every member path is a
    /// plain relative path listed once.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format == 0 {
            return Err(ManifestError::ZeroFormat);
        }
        if self.format > FORMAT {
            return Err(ManifestError::NewerFormat(self.format));
        }
        if self.ecosystem.trim().is_empty() {
            return Err(ManifestError::NoEcosystem);
        }
        let mut seen = HashSet::with_capacity(self.members.len());
        for m in &self.members {
            super::check_member_path(m.path.as_bytes()).map_err(|problem| {
                ManifestError::BadPath {
                    path: m.path.clone(),
                    problem,
                }
            })?;
            if !seen.insert(m.path.as_str()) {
                return Err(ManifestError::Duplicate(m.path.clone()));
            }
        }
        for r in &self.removes {
            super::check_member_path(r.as_bytes()).map_err(|problem| ManifestError::BadPath {
                path: r.clone(),
                problem,
            })?;
            if seen.contains(r.as_str()) {
                return Err(ManifestError::Duplicate(r.clone()));
            }
        }
        Ok(())
    }
}

/// The current time as RFC 3339 UTC with whole seconds.
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Count in 400-year eras starting on 0000-03-01, so that leap days fall
    // at the end of each year of the era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(path: &str) -> Member {
        Member {
            path: path.to_string(),
            size: 0,
            sha256: Sha256Digest::of(b""),
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn manifest_round_trips_and_keeps_range_optional() {
        let m = Manifest::new(
            "crates",
            Some(Range {
                start: None,
                end: "abc".into(),
            }),
            vec![member("crates/1/a/a-1.0.0.crate")],
        );
        let json = m.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(!text.contains("start"), "{text}");
        assert_eq!(Manifest::from_json(&json).unwrap(), m);

        let bare = br#"{"format":1,"ecosystem":"rustup","tool":"t","created":"0","members":[],"later":true}"#;
        assert_eq!(Manifest::from_json(bare).unwrap().range, None);
    }

    #[test]
    fn removes_are_optional_plain_paths_never_members() {
        let mut m = Manifest::new("crates", None, vec![member("crates/a")]);
        assert!(!String::from_utf8(m.to_json()).unwrap().contains("removes"));
        m.removes = vec!["crates/b".into()];
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        m.removes = vec!["crates/../../etc/passwd".into()];
        assert!(matches!(m.validate(), Err(ManifestError::BadPath { .. })));
        m.removes = vec!["crates/a".into()];
        assert!(matches!(m.validate(), Err(ManifestError::Duplicate(_))));
    }

    #[test]
    fn manifest_validation_refuses_bad_input() {
        let mut m = Manifest::new("rustup", None, vec![member("a/b"), member("a/b")]);
        assert!(matches!(m.validate(), Err(ManifestError::Duplicate(_))));
        m.members = vec![member("a/../b")];
        assert!(matches!(m.validate(), Err(ManifestError::BadPath { .. })));
        m.members = vec![member("/etc/passwd")];
        assert!(matches!(m.validate(), Err(ManifestError::BadPath { .. })));
        m.members.clear();
        m.format = 2;
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
        m.format = 1;
        m.ecosystem = " ".into();
        assert_eq!(m.validate(), Err(ManifestError::NoEcosystem));
        assert!(matches!(
            Manifest::from_json(b"{\"format\":1}"),
            Err(ManifestError::Parse(_))
        ));
        let bad_digest = br#"{"format":1,"ecosystem":"x","tool":"t","created":"0","members":[{"path":"a","size":1,"sha256":"zz"}]}"#;
        assert!(matches!(
            Manifest::from_json(bad_digest),
            Err(ManifestError::Parse(_))
        ));
    }
}
