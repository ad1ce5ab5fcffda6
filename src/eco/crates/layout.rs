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

/// The longest crate name crates.io accepts.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a crate name as crates.io defines one: 1–64 ASCII
/// letters, digits, `-` or `_`, starting with a letter (crates.io refused
/// a first digit as early as 2014, so the index holds none). Anything else
/// (a `/`, `..`, a NUL, a newline, a non-ASCII letter) is refused before it
/// can become a path, a URL or part of a git command.
pub fn is_valid_crate_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && name.bytes().all(is_name_byte)
}

/// A byte a crate name may hold.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
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
/// Meant for valid names ([`is_valid_crate_name`]); any other string gets
/// some prefix, never a panic (the slicing is checked: a name cut inside a
/// multi-byte character has no prefix but `3/` or `/`, which no valid name
/// has).
pub fn prefix(name: &str) -> String {
    match name.len() {
        0 => String::new(),
        1 => "1".to_string(),
        2 => "2".to_string(),
        3 => format!("3/{}", name.get(..1).unwrap_or_default()),
        _ => format!(
            "{}/{}",
            name.get(..2).unwrap_or_default(),
            name.get(2..4).unwrap_or_default()
        ),
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

/// What a path of the index tree is, when it is one (see
/// [`parse_index_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPath<'a> {
    /// `config.json`.
    Config,
    /// The file of a crate: its lower-cased name.
    Crate(&'a str),
}

/// The index path `path` stands for: `config.json`, or `1/<name>`,
/// `2/<name>`, `3/<c>/<name>`, `<ab>/<cd>/<name>` with `<name>` a valid,
/// lower-case crate name whose prefix is the directory it is in. `None`
/// for anything else (`.github/x`, `README.md`, `se/rd/Serde`, `3/b/abc`,
/// a name with a newline, `..`, a non-ASCII letter): such a path is no part
/// of an index and is never written, read as one or passed on.
pub fn parse_index_path(path: &str) -> Option<IndexPath<'_>> {
    if path == "config.json" {
        return Some(IndexPath::Config);
    }
    let (dir, name) = path.rsplit_once('/')?;
    let ok = is_valid_crate_name(name)
        && !name.bytes().any(|b| b.is_ascii_uppercase())
        && dir == prefix(name);
    ok.then_some(IndexPath::Crate(name))
}

/// Whether `dir` is a directory of the index layout: `1`, `2`, `3`,
/// `3/<c>`, `<ab>`, `<ab>/<cd>` (lower-case name characters, a letter
/// first, as the prefix of some valid name).
pub fn is_index_dir(dir: &str) -> bool {
    let lower_name_byte = |b: u8| is_name_byte(b) && !b.is_ascii_uppercase();
    let letter = |b: &u8| b.is_ascii_lowercase();
    match dir.split('/').collect::<Vec<_>>()[..] {
        ["1" | "2" | "3"] => true,
        ["3", c] => c.len() == 1 && c.as_bytes().first().is_some_and(letter),
        [ab] | [ab, _] if ab.len() != 2 => false,
        [ab] => ab.as_bytes().first().is_some_and(letter) && ab.bytes().all(lower_name_byte),
        [ab, cd] => is_index_dir(ab) && cd.len() == 2 && cd.bytes().all(lower_name_byte),
        _ => false,
    }
}

/// The path of a `.crate` below the crate directory:
/// `<lowerprefix>/<name>/<name>-<version>.crate`.
pub fn crate_rel_path(name: &str, version: &str) -> String {
    format!("{}/{name}/{name}-{version}.crate", lower_prefix(name))
}

/// `serde-1.0.0.crate` with name `serde` → `1.0.0` (unchecked: the
/// caller validates the version).
pub fn version_in_file_name<'a>(name: &str, file: &'a str) -> Option<&'a str> {
    file.strip_prefix(name)?
        .strip_prefix('-')?
        .strip_suffix(".crate")
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
            "_x",
            "1password",
            "\u{e9}a",
            "a\nb",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_crate_name(bad), "{bad:?}");
        }
        assert!(is_valid_crate_name("serde_json-2"));
        assert!(is_valid_crate_name(&"x".repeat(64)));
        for bad in ["", "../1", "1/0", ".1", "1..2", "1 0"] {
            assert!(!is_valid_version(bad), "{bad:?}");
        }
        assert!(is_valid_version("1.0.0-alpha.1+build.5"));
    }

    #[test]
    fn prefixes_of_any_string_never_panic() {
        for s in [
            "\u{e9}a",
            "a\u{e9}",
            "\u{e9}\u{e9}",
            "a\u{e9}b",
            "ab\u{e9}",
            "\u{1f600}",
        ] {
            let _ = prefix(s);
            let _ = lower_prefix(s);
            let _ = index_path(s);
            let _ = crate_rel_path(s, "1.0.0");
            assert_eq!(parse_index_path(&format!("{}/{s}", prefix(s))), None);
        }
    }

    #[test]
    fn index_paths_follow_the_grammar() {
        use IndexPath::*;
        assert_eq!(parse_index_path("config.json"), Some(Config));
        assert_eq!(parse_index_path("1/a"), Some(Crate("a")));
        assert_eq!(parse_index_path("2/ab"), Some(Crate("ab")));
        assert_eq!(parse_index_path("3/a/abc"), Some(Crate("abc")));
        assert_eq!(parse_index_path("se/rd/serde"), Some(Crate("serde")));
        assert_eq!(parse_index_path("a-/b_/a-b_c"), Some(Crate("a-b_c")));
        for bad in [
            "",
            "README.md",
            ".github/x",
            "1/ab",
            "2/a",
            "3/b/abc",
            "se/rx/serde",
            "se/rd/Serde",
            "Se/rd/serde",
            "a/b/c/d",
            "1/a\n",
            "1/\u{e9}",
            "se/rd/serde\nM 100644 inline config.json",
            "../1/a",
            "./1/a",
            "1//a",
            "/1/a",
            "config.json/x",
            "x/config.json",
        ] {
            assert_eq!(parse_index_path(bad), None, "{bad:?}");
        }
        for dir in ["1", "2", "3", "3/a", "se", "se/rd", "a-/b_", "a0/00"] {
            assert!(is_index_dir(dir), "{dir:?}");
        }
        for bad in [
            "", "4", "1/a", "2/ab", "3/ab", "3/1", "Se", "s", "ser", "0a", "se/r", "se/rd/x", "..",
            "se/..", "\u{e9}", ".g",
        ] {
            assert!(!is_index_dir(bad), "{bad:?}");
        }
    }
}
