//! The grammar of every path segment the pull-through cache turns into a
//! file path or a part of an upstream URL, one checker per kind of
//! segment, shared by the ecosystems.
//!
//! A request path reaches the cache as segments decoded once by
//! [`crate::serve::path`], which already refuses `/`, `\`, NUL, control
//! characters and dot segments *after* that decoding. That is not enough
//! for a segment that goes into a URL: `%252F` decodes to the text `%2F`,
//! which upstream decodes again into a `/`, `%252e%252e` to a dot segment
//! there, and a `?` or `#` would start a query or fragment. So each kind of
//! segment is held to what the ecosystem itself allows (ASCII letters,
//! digits and a few punctuation characters, never `%`, `?`, `#`, a leading
//! `.` or `-`, or `..`), before any upstream request or any write; a
//! segment that does not match is a `400 Bad Request` naming what was
//! expected and what was found.

use super::CacheError;

/// Longest segment of any kind (a file name on most file systems).
const MAX_NAME: usize = 255;

/// `found`, quoted and cut short for a message.
fn shown(found: &str) -> String {
    let cut: String = found.chars().take(80).collect();
    if cut.len() < found.len() {
        format!("{:?}…", cut)
    } else {
        format!("{found:?}")
    }
}

/// The refusal of a segment.
fn refuse(what: &str, expected: &str, found: &str) -> CacheError {
    CacheError::BadRequest(format!(
        "bad {what} in the request path: expected {expected}, found {}",
        shown(found)
    ))
}

/// `s` when `ok`, else its refusal.
fn held<'a>(s: &'a str, ok: bool, what: &str, expected: &str) -> Result<&'a str, CacheError> {
    if ok {
        Ok(s)
    } else {
        Err(refuse(what, expected, s))
    }
}

/// A plain name: 1..=`max` bytes of ASCII letters, digits and `extra`,
/// not starting with `.` or `-`, without `..`.
fn plain(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with(['.', '-'])
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// An Arch repository name (`core`, `extra`, `my-repo`): letters, digits,
/// `.`, `_`, `-`.
pub fn arch_repo(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, MAX_NAME, b"._-") && crate::eco::arch::is_valid_repo_name(s),
        "Arch repository name",
        "letters, digits, '.', '_' and '-'",
    )
}

/// An Arch architecture (`x86_64`, `aarch64`, `any`): letters, digits and
/// `_`, at most 32.
pub fn arch_arch(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, 32, b"_"),
        "Arch architecture",
        "letters, digits and '_' (such as x86_64)",
    )
}

/// A file of an Arch repository directory: a package file
/// (`<name>-[<epoch>:]<ver>-<rel>-<arch>.pkg.tar.zst`), its `.sig`, a
/// database: letters, digits and `@._+:~-`.
pub fn arch_file(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, MAX_NAME, b"@._+:~-"),
        "Arch file name",
        "letters, digits and '@._+:~-'",
    )
}

/// A crate name as crates.io allows it.
pub fn crate_name(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        crate::eco::crates::layout::is_valid_crate_name(s),
        "crate name",
        "up to 64 ASCII letters, digits, '-' and '_'",
    )
}

/// A crate version (semver characters).
pub fn crate_version(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, 100, b".-+") && crate::eco::crates::layout::is_valid_version(s),
        "crate version",
        "a version such as 1.0.0 (letters, digits, '.', '-', '+')",
    )
}

/// A Hex package name.
pub fn hex_name(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        crate::eco::hex::registry::is_valid_name(s),
        "Hex package name",
        "a letter, then letters, digits and '_'",
    )
}

/// A Hex release version.
pub fn hex_version(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, 128, b".-+") && crate::eco::hex::registry::is_valid_version(s),
        "Hex version",
        "a version such as 1.0.0 (a digit, then letters, digits, '.', '-', '+')",
    )
}

/// A dist date directory (`2024-05-02`).
pub fn dist_date(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        crate::eco::toolchain::manifest::is_date(s),
        "dist date",
        "YYYY-MM-DD",
    )
}

/// A file of the dist server (`channel-rust-1.78.toml`,
/// `rustc-1.78.0-x86_64-unknown-linux-gnu.tar.xz`): letters, digits and
/// `._+-`.
pub fn dist_file(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, MAX_NAME, b"._+-"),
        "dist file name",
        "letters, digits and '._+-'",
    )
}

/// A toolchain channel (`stable`, `nightly`, `1.78`, `1.78.0`,
/// `1.79.0-beta.1`), as in `channel-rust-<channel>.toml`: letters, digits,
/// `.`, `_`, `-`.
pub fn dist_channel(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, 64, b"._-"),
        "toolchain channel",
        "a channel such as stable, nightly or 1.78.0",
    )
}

/// A rustup version (`1.27.1`).
pub fn rustup_version(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        crate::eco::Version::parse(s).is_some(),
        "rustup version",
        "X.Y.Z",
    )
}

/// A target triple (`x86_64-unknown-linux-gnu`).
pub fn triple(s: &str) -> Result<&str, CacheError> {
    held(
        s,
        plain(s, 100, b"._-") && crate::eco::is_valid_target(s),
        "target triple",
        "letters, digits, '.', '_' and '-'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&str) -> Result<&str, CacheError>;

    /// What a once-decoded segment may still hold that upstream would
    /// decode or read as structure.
    const HOSTILE: &[&str] = &[
        "%2F", "a%2Fb", "%5C", "%2E%2E", "%2e%2e", "%00", "%25", "..", ".", "a..b", "a?b", "a#b",
        "a b", "a/b", "a\\b", ".hidden", "-x", "", "é", "a\u{0}b", "a;b", "a&b", "a=b",
    ];

    fn all() -> Vec<(&'static str, Check, &'static str)> {
        vec![
            ("arch_repo", arch_repo as Check, "core"),
            ("arch_arch", arch_arch, "x86_64"),
            (
                "arch_file",
                arch_file,
                "glibc-2:2.39+r5+g1a2b-1-x86_64.pkg.tar.zst",
            ),
            ("crate_name", crate_name, "serde_json"),
            ("crate_version", crate_version, "1.0.0-rc.1+build.5"),
            ("hex_name", hex_name, "phoenix_html"),
            ("hex_version", hex_version, "1.0.0-rc.1"),
            ("dist_date", dist_date, "2024-05-02"),
            (
                "dist_file",
                dist_file,
                "rustc-1.78.0-x86_64-unknown-linux-gnu.tar.xz",
            ),
            ("dist_channel", dist_channel, "1.79.0-beta.1"),
            ("rustup_version", rustup_version, "1.27.1"),
            ("triple", triple, "x86_64-unknown-linux-gnu"),
        ]
    }

    #[test]
    fn every_kind_takes_its_real_names_and_refuses_encoded_structure() {
        for (kind, check, good) in all() {
            assert_eq!(check(good).unwrap(), good, "{kind}");
            for bad in HOSTILE {
                let e = check(bad).expect_err(&format!("{kind} took {bad:?}"));
                assert!(
                    matches!(&e, CacheError::BadRequest(m) if m.contains("expected")),
                    "{kind}: {e:?}"
                );
            }
            let long = "a".repeat(300);
            assert!(check(&long).is_err(), "{kind}: 300 bytes");
        }
    }

    #[test]
    fn refusals_are_400_and_quote_what_was_found() {
        let e = arch_arch("%2F..%2Fcore").unwrap_err();
        assert_eq!(e.response().status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("\"%2F..%2Fcore\""), "{e}");
    }
}
