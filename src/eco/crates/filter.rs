//! Which crates a run covers: `--filter NAME[@VERSION]` patterns (and
//! `--filter-file`, one pattern per line, `#` comments), as romt reads them.
//!
//! A pattern is `NAME_GLOB@VERSION_GLOB`; a missing or empty part means `*`.
//! Globs are shell-style (`*`, `?`, `[abc]`, `[!abc]`, `[a-z]`), matched
//! case-sensitively against the lower-cased crate name and the version. No
//! pattern at all selects everything.

use std::path::Path;

use anyhow::{Context, Result};

/// A set of `NAME@VERSION` glob patterns.
#[derive(Debug, Clone, Default)]
pub struct CrateFilter {
    patterns: Vec<(String, String)>,
}

impl CrateFilter {
    /// Add one pattern (`serde`, `serde@1.*`, `tokio-*`, `@0.1.0`).
    pub fn add(&mut self, pattern: &str) {
        let (name, version) = pattern.split_once('@').unwrap_or((pattern, ""));
        let name = if name.is_empty() { "*" } else { name };
        let version = if version.is_empty() { "*" } else { version };
        self.patterns
            .push((name.to_ascii_lowercase(), version.to_string()));
    }

    /// Add the patterns of a file: one per line, blank lines and `#`
    /// comments ignored, several per line allowed (whitespace-separated).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read filter file {}", path.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for pattern in line.split_whitespace() {
                self.add(pattern);
            }
        }
        Ok(())
    }

    /// The patterns, each as `NAME@VERSION` (name lower-cased).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|(n, v)| format!("{n}@{v}"))
            .collect()
    }

    /// The name globs of the patterns.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.patterns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// `self` with every pattern whose name glob is one of `names` dropped.
    pub fn without(&self, names: &[String]) -> CrateFilter {
        CrateFilter {
            patterns: self
                .patterns
                .iter()
                .filter(|(n, _)| !names.iter().any(|r| r.eq_ignore_ascii_case(n)))
                .cloned()
                .collect(),
        }
    }

    /// `self` and the patterns of `other` not in it yet.
    pub fn union(&self, other: &CrateFilter) -> CrateFilter {
        let mut patterns = self.patterns.clone();
        for p in &other.patterns {
            if !patterns.contains(p) {
                patterns.push(p.clone());
            }
        }
        CrateFilter { patterns }
    }

    /// Whether no pattern was given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any version of `name` may match (cheap pre-check per file).
    pub fn name_matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.is_empty() || self.patterns.iter().any(|(n, _)| glob_match(n, &name))
    }

    /// Whether `name` at `version` is selected.
    pub fn matches(&self, name: &str, version: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.is_empty()
            || self
                .patterns
                .iter()
                .any(|(n, v)| glob_match(n, &name) && glob_match(v, version))
    }
}

/// The state file (under `.mirror/`) remembering the `--filter` patterns
/// of a tree mirroring a git upstream: they only grow (`--remove NAME`
/// and `--replace-selection` drop), and a run without `--filter` mirrors
/// them, never the whole upstream.
pub const STATE_FILE: &str = "crates-filter.json";

/// The remembered `--filter` patterns (see [`STATE_FILE`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RememberedFilter {
    /// `NAME@VERSION` globs.
    #[serde(default)]
    pub patterns: Vec<String>,
}

impl RememberedFilter {
    /// The patterns as a filter.
    pub fn filter(&self) -> CrateFilter {
        let mut f = CrateFilter::default();
        for p in &self.patterns {
            f.add(p);
        }
        f
    }
}

/// Shell-style glob match of the whole of `text` (no path semantics).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        // An unclosed `[` is a literal.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `p[start] == '['`; returns
/// (matched, index after `]`), or `None` when the class is not closed.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match("*", ""));
        assert!(glob_match("se*", "serde"));
        assert!(glob_match("*de", "serde"));
        assert!(glob_match("s?rde", "serde"));
        assert!(glob_match("[rs]erde", "serde"));
        assert!(!glob_match("[!s]erde", "serde"));
        assert!(glob_match("1.[0-2].*", "1.2.3"));
        assert!(!glob_match("1.*", "0.1.0"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("[x", "[x"));
    }

    #[test]
    fn filters_select_name_and_version() {
        let mut f = CrateFilter::default();
        assert!(f.matches("anything", "1.0.0"));
        f.add("serde@1.*");
        f.add("Tokio");
        assert!(f.matches("serde", "1.0.0"));
        assert!(!f.matches("serde", "0.9.0"));
        assert!(f.matches("tokio", "0.1.0"));
        assert!(f.name_matches("TOKIO"));
        assert!(!f.name_matches("rand"));
    }
}
