//! Where crates live: the index path of a crate and the path of its files,
//! shared by the mirror (`mirror crate`) and the server (`mirror serve`).
//!
//! ```text
//! index (git tree, and the sparse index):  <prefix>/<lower-cased name>
//! crate files:      crates/<lowerprefix>/<name>/<name>-<version>.crate
//! prefix:           1 char -> 1/, 2 chars -> 2/, 3 chars -> 3/<c0>/,
//!                   longer -> <c0c1>/<c2c3>/ (crate files: lower-cased,
//!                   the name's case kept, as romt 0.10 lays them out)
//! ```

/// The default index directory, relative to the mirror root.
pub const INDEX_DIR: &str = "git/crates.io-index";

/// The default crate file directory, relative to the mirror root.
pub const CRATES_DIR: &str = "crates";

/// Whether `name` is a plausible crate name: 1–64 ASCII letters, digits,
/// `-` or `_`, starting with a letter or digit. Anything else (a `/`, `..`,
/// a NUL) is refused before it can become a path.
pub fn is_valid_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `version` is plausible as a path component: semver characters
/// only (`0-9A-Za-z.-+`), not starting with `.`.
pub fn is_valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 100
        && !version.starts_with('.')
        && !version.contains("..")
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+')
}

/// The directory prefix for a name, case kept: `1`, `2`, `3/s`, `se/rd`.
pub fn prefix(name: &str) -> String {
    match name.len() {
        0 => String::new(),
        1 => "1".to_string(),
        2 => "2".to_string(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The lower-cased prefix (`{lowerprefix}`).
pub fn lower_prefix(name: &str) -> String {
    prefix(&name.to_ascii_lowercase())
}

/// The path of a crate's file in the index (always lower-case).
pub fn index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    format!("{}/{lower}", prefix(&lower))
}

/// The path of a `.crate` below the crate directory:
/// `<lowerprefix>/<name>/<name>-<version>.crate`.
pub fn crate_rel_path(name: &str, version: &str) -> String {
    format!("{}/{name}/{name}-{version}.crate", lower_prefix(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_the_index_scheme() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
        assert_eq!(
            crate_rel_path("Inflector", "0.11.4"),
            "in/fl/Inflector/Inflector-0.11.4.crate"
        );
        assert_eq!(crate_rel_path("a", "1.0.0"), "1/a/a-1.0.0.crate");
    }

    #[test]
    fn hostile_names_and_versions_are_refused() {
        for bad in [
            "",
            "a/b",
            "..",
            "../x",
            "a\0b",
            ".hidden",
            "-x",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_crate_name(bad), "{bad:?}");
        }
        assert!(is_valid_crate_name("serde_json-2"));
        for bad in ["", "../1", "1/0", ".1", "1..2", "1 0"] {
            assert!(!is_valid_version(bad), "{bad:?}");
        }
        assert!(is_valid_version("1.0.0-alpha.1+build.5"));
    }
}
