//! A generated crates.io upstream: a git crates index in a temporary
//! directory (built with the `git` binary) and the matching `.crate` files
//! on a fake [`Upstream`].
//!
//! ```text
//! let up = Upstream::start();
//! let mut fx = CratesFixture::new(&up);          // index with config.json, one commit
//! fx.publish("leaf", "1.0.0", &[]);              // .crate on the upstream + index line
//! fx.publish("app", "0.1.0", &[("leaf", "^1")]);  // depends on leaf
//! let c1 = fx.commit("Add leaf and app");         // returns the new HEAD
//! fx.yank("leaf", "1.0.0");                      // rewrites the line in place
//! fx.remove("app", "0.1.0");                     // drops the line (and the file if empty)
//! fx.set_config(r#"{"dl":"…"}"#);                // replaces config.json
//! fx.commit("…");
//! fx.squash();                                   // one parentless commit, same tree
//! fx.index_url();                                // file:///… of the index repository
//! fx.crates_url_template();                      // http://127.0.0.1:P/dl/{crate}/{crate}-{version}.crate
//! ```
//!
//! Every `.crate` is a real, minimal crate cargo can fetch and build: a
//! tar.gz of `<name>-<version>/Cargo.toml` and `<name>-<version>/src/lib.rs`
//! (deterministic bytes), and its index line carries the real `cksum`
//! (SHA-256 of the file), `deps`, `features`, `yanked` and `v`. The index
//! repository lives on branch `master`; its HEAD names `master`.
//!
//! The benchmark includes this file (with `upstream.rs`) through `#[path]`,
//! so it uses only `std`, `sha2`, `tar`, `flate2` and `tempfile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::upstream::Upstream;

/// The upstream path below which `.crate` files are served.
pub const DL_PREFIX: &str = "dl";

/// One crate version as the fixture published it.
#[derive(Clone, Debug)]
pub struct Published {
    pub name: String,
    pub version: String,
    /// The `.crate` bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lower-case hex.
    pub cksum: String,
}

/// A crates index repository plus the crate files on a fake upstream.
pub struct CratesFixture<'a> {
    upstream: &'a Upstream,
    dir: tempfile::TempDir,
    published: BTreeMap<(String, String), Published>,
}

impl<'a> CratesFixture<'a> {
    /// A new index with a `config.json` whose `dl` points at the upstream's
    /// crate files, committed once ("Initial commit").
    pub fn new(upstream: &'a Upstream) -> CratesFixture<'a> {
        let dir = tempfile::tempdir().expect("tempdir for the crates index");
        let fx = CratesFixture {
            upstream,
            dir,
            published: BTreeMap::new(),
        };
        std::fs::create_dir_all(fx.path()).unwrap();
        fx.git(&["init", "-q", "-b", "master", "."]);
        let config = format!(
            "{{\n  \"dl\": \"{}\",\n  \"api\": \"{}\"\n}}\n",
            fx.crates_url_template(),
            upstream.base_url()
        );
        fx.set_config(&config);
        fx.commit("Initial commit");
        fx
    }

    /// The index repository's directory (a normal git work tree).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("crates.io-index")
    }

    /// `file:///…` of the index repository.
    pub fn index_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// The `--crates-url` template that finds this fixture's crate files.
    pub fn crates_url_template(&self) -> String {
        format!(
            "{}/{{crate}}/{{crate}}-{{version}}.crate",
            self.upstream.url(DL_PREFIX)
        )
    }

    /// The upstream path of a crate file (for faults and request counts).
    pub fn crate_upstream_path(name: &str, version: &str) -> String {
        format!("{DL_PREFIX}/{name}/{name}-{version}.crate")
    }

    /// The full commit id of HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Everything published so far (including later yanked or removed).
    pub fn published(&self) -> impl Iterator<Item = &Published> {
        self.published.values()
    }

    /// One published crate version.
    pub fn get(&self, name: &str, version: &str) -> &Published {
        self.published
            .get(&(name.to_string(), version.to_string()))
            .unwrap_or_else(|| panic!("{name} {version} was never published"))
    }

    /// Build a crate, serve it on the upstream and append its index line
    /// (not committed). `deps` are `(name, req)` pairs of normal
    /// dependencies. Returns the cksum.
    pub fn publish(&mut self, name: &str, version: &str, deps: &[(&str, &str)]) -> String {
        let bytes = crate_file(name, version, deps);
        let cksum = hex(&Sha256::digest(&bytes));
        self.upstream
            .put(&Self::crate_upstream_path(name, version), bytes.clone());
        let line = index_line(name, version, deps, &cksum, false);
        let rel = index_path(name);
        let mut text = self.read(&rel).unwrap_or_default();
        text.push_str(&line);
        text.push('\n');
        self.write(&rel, &text);
        self.published.insert(
            (name.to_string(), version.to_string()),
            Published {
                name: name.to_string(),
                version: version.to_string(),
                bytes,
                cksum: cksum.clone(),
            },
        );
        cksum
    }

    /// Mark a version yanked by rewriting its line in place (not committed).
    pub fn yank(&mut self, name: &str, version: &str) {
        self.edit_line(name, version, |line| {
            Some(line.replace("\"yanked\":false", "\"yanked\":true"))
        });
    }

    /// Drop a version's line; the file goes when it is empty (not committed).
    pub fn remove(&mut self, name: &str, version: &str) {
        self.edit_line(name, version, |_| None);
    }

    /// Replace `config.json` (not committed).
    pub fn set_config(&self, text: &str) {
        self.write("config.json", text);
    }

    /// Write any file of the index (hostile content, odd lines); not
    /// committed.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Read a file of the index work tree.
    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path().join(rel)).ok()
    }

    /// Commit everything (`git add -A`); returns the new HEAD.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Replace the history by one parentless commit with the same tree, as
    /// crates.io does from time to time; old commits become unreachable.
    /// Returns the new HEAD.
    pub fn squash(&self) -> String {
        let tree = self.git(&["rev-parse", "HEAD^{tree}"]);
        let commit = self.git(&["commit-tree", tree.trim(), "-m", "Squashed history"]);
        self.git(&["update-ref", "refs/heads/master", commit.trim()]);
        self.git(&["reflog", "expire", "--expire=now", "--all"]);
        self.git(&["gc", "-q", "--prune=now"]);
        self.head()
    }

    /// Run git in the index repository; panics with its stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path(), args)
    }

    fn edit_line(&mut self, name: &str, version: &str, f: impl Fn(&str) -> Option<String>) {
        let rel = index_path(name);
        let text = self
            .read(&rel)
            .unwrap_or_else(|| panic!("no index file for {name}"));
        let needle = format!("\"name\":\"{name}\",\"vers\":\"{version}\",");
        let mut found = false;
        let mut out = String::new();
        for line in text.lines() {
            if line.contains(&needle) {
                found = true;
                if let Some(new) = f(line) {
                    out.push_str(&new);
                    out.push('\n');
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        assert!(found, "{name} {version} is not in the index");
        if out.is_empty() {
            std::fs::remove_file(self.path().join(&rel)).unwrap();
        } else {
            self.write(&rel, &out);
        }
    }
}

/// Run git in `dir` with a fixed identity and no signing; panics with its
/// stderr on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=master",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .expect("run git (is it installed?)");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The index path of a crate (lower-cased name): `1/a`, `2/ab`, `3/a/abc`,
/// `ab/cd/abcd…`.
pub fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
}

/// One index line, in crates.io's key order, without the newline.
pub fn index_line(
    name: &str,
    version: &str,
    deps: &[(&str, &str)],
    cksum: &str,
    yanked: bool,
) -> String {
    let deps: Vec<String> = deps
        .iter()
        .map(|(dep, req)| {
            format!(
                "{{\"name\":\"{dep}\",\"req\":\"{req}\",\"features\":[],\"optional\":false,\
                 \"default_features\":true,\"target\":null,\"kind\":\"normal\"}}"
            )
        })
        .collect();
    format!(
        "{{\"name\":\"{name}\",\"vers\":\"{version}\",\"deps\":[{}],\"cksum\":\"{cksum}\",\
         \"features\":{{}},\"yanked\":{yanked},\"v\":1}}",
        deps.join(",")
    )
}

/// The bytes of a minimal real crate: a gzip'd tar of
/// `<name>-<version>/Cargo.toml` and `<name>-<version>/src/lib.rs`.
pub fn crate_file(name: &str, version: &str, deps: &[(&str, &str)]) -> Vec<u8> {
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
         description = \"fixture crate\"\nlicense = \"MIT\"\n\n[dependencies]\n"
    );
    for (dep, req) in deps {
        manifest.push_str(&format!("{dep} = \"{req}\"\n"));
    }
    let ident = name.replace('-', "_");
    let lib = format!(
        "//! {name} {version}\npub fn {ident}_version() -> &'static str {{\n    \"{version}\"\n}}\n"
    );
    let root = format!("{name}-{version}");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, body) in [("Cargo.toml", manifest), ("src/lib.rs", lib)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_767_225_600);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{root}/{rel}"), body.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The standard scenario, one step per commit, for round-trip tests:
/// 1. `leaf 1.0.0`, `app 0.1.0` (depends on `leaf ^1`);
/// 2. `leaf 1.1.0`, `Mixed_Case 0.1.0`, `ab 0.1.0`, `abc 0.1.0`;
/// 3. yank `leaf 1.0.0`, remove `ab 0.1.0`;
/// 4. a `config.json` change (an extra key);
/// 5. `leaf 1.2.0`, then the history squashed.
///
/// Returns the HEAD after each step (after the squash for step 5).
pub fn standard_history(fx: &mut CratesFixture<'_>) -> Vec<String> {
    let mut heads = Vec::new();
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    heads.push(fx.commit("Add leaf 1.0.0 and app 0.1.0"));
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    fx.publish("ab", "0.1.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    heads.push(fx.commit("Add leaf 1.1.0, Mixed_Case, ab, abc"));
    fx.yank("leaf", "1.0.0");
    fx.remove("ab", "0.1.0");
    heads.push(fx.commit("Yank leaf 1.0.0, remove ab 0.1.0"));
    let config = fx.read("config.json").unwrap();
    fx.set_config(&config.replace("\n}", ",\n  \"auth-required\": false\n}"));
    heads.push(fx.commit("Change config.json"));
    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("Add leaf 1.2.0");
    heads.push(fx.squash());
    heads
}
