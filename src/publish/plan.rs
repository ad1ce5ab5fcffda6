//! What a publish does, decided before any request: the class of every key
//! (its phase, headers and how it is deleted), the publish manifest stored
//! beside the tree, and the ordered steps from the last published state to
//! the tree's.
//!
//! Pure: no I/O here, so the order is unit-tested on its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The key of the publish manifest, relative to the prefix. A dot-name, so
/// no tree path collides with it.
pub const MANIFEST_KEY: &str = ".mirror-publish.json";

/// The manifest's format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// How long clients may cache metadata (`Cache-Control: max-age`), in
/// seconds. An immutable file that left the tree is deleted no sooner than
/// this after the publish that saw it go, so an index cached before that
/// publish never points at a deleted file.
pub const METADATA_MAX_AGE: u64 = 60;

/// `Cache-Control` of immutable files: versioned names whose bytes never
/// change.
pub const IMMUTABLE_CACHE: &str = "public, max-age=31536000, immutable";

/// What a key is, for ordering, headers and deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A file that never changes under its name (`.crate`, toolchain
    /// tarballs under a dated directory, Arch packages and their `.sig`,
    /// Hex tarballs, archived `rustup-init`): uploaded first, cached for
    /// a year, deleted one publish after it left the tree.
    Immutable,
    /// A file metadata points at whose bytes may change under its name
    /// (the current `rustup-init` of `rustup/dist/<triple>/`, dateless
    /// toolchain copies): uploaded with the immutable files, cached
    /// briefly, deleted like them.
    Data,
    /// Metadata: what clients read first and what names the files above
    /// (index files, channel manifests and their `.sha256`/`.asc`, Arch
    /// databases, Hex `names`/`versions`/`packages/*`,
    /// `release-stable.toml`): uploaded after every file, its `rank`
    /// orders it among metadata, deleted at once when it leaves.
    Metadata {
        /// Lower first.
        rank: u8,
    },
}

impl Class {
    /// Whether the key is deleted in the publish after the one that saw it
    /// leave (files), rather than at the end of that publish (metadata).
    pub fn deferred_delete(self) -> bool {
        !matches!(self, Class::Metadata { .. })
    }

    /// The `Cache-Control` header.
    pub fn cache_control(self) -> String {
        match self {
            Class::Immutable => IMMUTABLE_CACHE.to_owned(),
            _ => format!("public, max-age={METADATA_MAX_AGE}"),
        }
    }
}

/// Which top-level directories of the tree are published; everything else
/// (`git/`, `.mirror/`, files beside them) stays local. The crates index
/// goes as `index/`, made from `git/crates.io-index`'s `master`.
pub const PUBLISHED_DIRS: [&str; 5] = ["dist", "rustup", "crates", "hex", "archlinux"];

/// The key prefix of the static sparse index.
pub const INDEX_PREFIX: &str = "index";

/// The class of a key, from its path alone.
pub fn classify(key: &str) -> Class {
    let name = key.rsplit('/').next().unwrap_or(key);
    let parts: Vec<&str> = key.split('/').collect();
    match parts.first().copied().unwrap_or_default() {
        INDEX_PREFIX => Class::Metadata {
            // Every index file before config.json: on the first publish the
            // index appears whole, the moment cargo can read its config.
            rank: if key == "index/config.json" { 9 } else { 1 },
        },
        "crates" => Class::Immutable,
        "dist" => dist_class(&parts, name),
        "rustup" => {
            if name.starts_with("release-") && name.ends_with(".toml") {
                Class::Metadata { rank: 5 }
            } else if parts.get(1) == Some(&"archive") {
                Class::Immutable
            } else {
                Class::Data
            }
        }
        "hex" => match parts.get(1).copied() {
            Some("tarballs") => Class::Immutable,
            Some("packages") => Class::Metadata { rank: 1 },
            // `versions` before `names`: a client walking names then
            // versions finds every package already there.
            Some("versions") => Class::Metadata { rank: 2 },
            Some("names") => Class::Metadata { rank: 3 },
            _ => Class::Metadata { rank: 4 },
        },
        "archlinux" => {
            let db = [".db", ".files", ".db.tar.gz", ".files.tar.gz"];
            let base = name.strip_suffix(".sig").unwrap_or(name);
            if db.iter().any(|s| base.ends_with(s)) && !base.contains(".pkg.tar") {
                Class::Metadata {
                    rank: arch_db_rank(name),
                }
            } else {
                Class::Immutable
            }
        }
        _ => Class::Metadata { rank: 4 },
    }
}

/// Channel manifests: the `.toml`, then its `.asc`, then its `.sha256`
/// (what rustup compares to decide there is an update: last), dated
/// directories' first (ranks 2–4), then the dateless ones (6–8). Other
/// files of a dated directory are immutable; dateless copies are data.
fn dist_class(parts: &[&str], name: &str) -> Class {
    let dated = parts.len() > 2;
    if name.starts_with("channel-rust-") {
        let pair = if name.ends_with(".toml") {
            0
        } else if name.ends_with(".asc") {
            1
        } else {
            2
        };
        let base = if dated { 2 } else { 6 };
        return Class::Metadata { rank: base + pair };
    }
    if dated {
        Class::Immutable
    } else {
        Class::Data
    }
}

/// Arch databases: `<repo>.files` (and its `.tar.gz`) before `<repo>.db`,
/// each archive before its link-name copy, each signature right after its
/// database.
fn arch_db_rank(name: &str) -> u8 {
    let files = name.contains(".files");
    let sig = name.ends_with(".sig");
    match (files, sig) {
        (true, false) => 2,
        (true, true) => 3,
        (false, false) => 6,
        (false, true) => 7,
    }
}

/// The order of uploads: files before metadata; metadata by rank, then by
/// key; a database or manifest's `.sig`/`.asc`/`.sha256` after it (their
/// ranks say so).
pub fn upload_order(key: &str) -> (u8, String) {
    let phase = match classify(key) {
        Class::Immutable | Class::Data => 0,
        Class::Metadata { rank } => 1 + rank,
    };
    (phase, key.to_owned())
}

/// One key as published: its size and SHA-256, and what lets a later
/// publish trust it without reading the source again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The source file's modification time (ns since the epoch) when it
    /// was hashed: with the size, a file unchanged since skips hashing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<u64>,
    /// The git blob the index file was made from: an unchanged blob is not
    /// read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
}

impl Entry {
    /// Same bytes as `other`.
    pub fn same_bytes(&self, other: &Entry) -> bool {
        self.size == other.size && self.sha256 == other.sha256
    }
}

/// A file that left the tree but stays in the store until a later publish
/// (see [`Class::deferred_delete`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// What the store holds under the key.
    #[serde(flatten)]
    pub entry: Entry,
    /// When the publish that saw it leave ended (seconds since the epoch).
    pub since: u64,
}

/// The publish manifest: what the store holds under the prefix, as far as
/// publishes know. Written after each phase and every few seconds while
/// uploading, always describing bytes already in the store, so a publish
/// killed at any point resumes from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Keys in the tree as last published.
    #[serde(default)]
    pub files: BTreeMap<String, Entry>,
    /// Files that left the tree, still in the store.
    #[serde(default)]
    pub retired: BTreeMap<String, Retired>,
    /// Keys being deleted when the manifest was written: a publish that
    /// starts with some left deletes them (unless they are back in the
    /// tree).
    #[serde(default)]
    pub deleting: BTreeSet<String>,
}

impl Manifest {
    /// What the store holds under `key`: a published or a retired file.
    pub fn holds(&self, key: &str) -> Option<&Entry> {
        self.files
            .get(key)
            .or_else(|| self.retired.get(key).map(|r| &r.entry))
    }
}

/// The steps from `old` (what the store holds) to `local` (the tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Keys to upload, in order ([`upload_order`]).
    pub uploads: Vec<String>,
    /// Metadata keys no longer in the tree: deleted after every upload.
    pub delete_metadata: Vec<String>,
    /// Files retired long enough (or left by an interrupted deletion):
    /// deleted after the metadata ones.
    pub delete_files: Vec<String>,
    /// The manifest once everything is done.
    pub done: Manifest,
}

impl Plan {
    /// Whether the store already holds the tree as it is.
    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty() && self.delete_metadata.is_empty() && self.delete_files.is_empty()
    }
}

/// Plan a publish at time `now` (seconds since the epoch); retired files
/// are deleted `retire_after` seconds (at least [`METADATA_MAX_AGE`] in
/// use) after they left.
pub fn plan(old: &Manifest, local: &BTreeMap<String, Entry>, now: u64, retire_after: u64) -> Plan {
    let mut uploads: Vec<String> = local
        .iter()
        .filter(|(k, e)| !old.holds(k).is_some_and(|o| o.same_bytes(e)))
        .map(|(k, _)| k.clone())
        .collect();
    uploads.sort_by_cached_key(|k| upload_order(k));

    let mut retired: BTreeMap<String, Retired> = BTreeMap::new();
    let mut delete_metadata = Vec::new();
    let mut delete_files = BTreeSet::new();
    for (key, entry) in &old.files {
        if local.contains_key(key) {
            continue;
        }
        if classify(key).deferred_delete() {
            retired.insert(
                key.clone(),
                Retired {
                    entry: entry.clone(),
                    since: now,
                },
            );
        } else {
            delete_metadata.push(key.clone());
        }
    }
    for (key, r) in &old.retired {
        if local.contains_key(key) {
            continue;
        }
        if now.saturating_sub(r.since) >= retire_after {
            delete_files.insert(key.clone());
        } else {
            retired.entry(key.clone()).or_insert_with(|| r.clone());
        }
    }
    for key in &old.deleting {
        if local.contains_key(key) || retired.contains_key(key) {
            continue;
        }
        if classify(key).deferred_delete() {
            delete_files.insert(key.clone());
        } else if !delete_metadata.contains(key) {
            delete_metadata.push(key.clone());
        }
    }
    delete_metadata.sort_by_cached_key(|k| upload_order(k));
    Plan {
        uploads,
        delete_metadata,
        delete_files: delete_files.into_iter().collect(),
        done: Manifest {
            format: MANIFEST_FORMAT,
            files: local.clone(),
            retired,
            deleting: BTreeSet::new(),
        },
    }
}

/// The `Content-Type` of a key, from its name.
pub fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let ext = |s: &str| name.ends_with(s);
    if key.starts_with("index/") {
        if name == "config.json" {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        }
    } else if ext(".json") {
        "application/json"
    } else if ext(".toml") {
        "application/toml"
    } else if ext(".sha256") || ext(".txt") {
        "text/plain; charset=utf-8"
    } else if ext(".asc") || ext(".sig") {
        "application/pgp-signature"
    } else if ext(".crate") || ext(".gz") || ext(".tgz") {
        "application/gzip"
    } else if ext(".xz") {
        "application/x-xz"
    } else if ext(".zst") {
        "application/zstd"
    } else if ext(".tar") {
        "application/x-tar"
    } else if ext(".html") {
        "text/html; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: &str) -> Entry {
        Entry {
            size: 1,
            sha256: sha.into(),
            mtime: None,
            git: None,
        }
    }

    #[test]
    fn files_go_before_metadata_and_pairs_in_order() {
        let keys = [
            "index/config.json",
            "dist/channel-rust-stable.toml.sha256",
            "dist/channel-rust-stable.toml",
            "dist/channel-rust-stable.toml.asc",
            "dist/2024-01-01/channel-rust-stable.toml",
            "dist/2024-01-01/rust-1.75.0-x86_64-unknown-linux-gnu.tar.xz",
            "index/le/af/leaf",
            "crates/le/af/leaf/leaf-1.0.0.crate",
            "archlinux/core/os/x86_64/core.db.sig",
            "archlinux/core/os/x86_64/core.db",
            "archlinux/core/os/x86_64/core.files",
            "archlinux/core/os/x86_64/libc++-1-1-x86_64.pkg.tar.zst.sig",
            "hex/names",
            "hex/versions",
            "hex/packages/jason",
            "hex/tarballs/jason-1.0.0.tar",
            "rustup/release-stable.toml",
            "rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
        ];
        let mut sorted: Vec<&str> = keys.to_vec();
        sorted.sort_by_cached_key(|k| upload_order(k));
        let pos = |k: &str| sorted.iter().position(|s| *s == k).unwrap();
        for file in [
            "crates/le/af/leaf/leaf-1.0.0.crate",
            "dist/2024-01-01/rust-1.75.0-x86_64-unknown-linux-gnu.tar.xz",
            "archlinux/core/os/x86_64/libc++-1-1-x86_64.pkg.tar.zst.sig",
            "hex/tarballs/jason-1.0.0.tar",
            "rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
        ] {
            for meta in ["index/le/af/leaf", "hex/packages/jason", "core.db"] {
                let meta = sorted.iter().find(|s| s.ends_with(meta)).unwrap();
                assert!(pos(file) < pos(meta), "{file} after {meta}: {sorted:?}");
            }
        }
        let order = |a: &str, b: &str| assert!(pos(a) < pos(b), "{a} !< {b}: {sorted:?}");
        order("index/le/af/leaf", "index/config.json");
        order(
            "dist/channel-rust-stable.toml",
            "dist/channel-rust-stable.toml.asc",
        );
        order(
            "dist/channel-rust-stable.toml.asc",
            "dist/channel-rust-stable.toml.sha256",
        );
        order(
            "dist/2024-01-01/channel-rust-stable.toml",
            "dist/channel-rust-stable.toml",
        );
        order(
            "archlinux/core/os/x86_64/core.db",
            "archlinux/core/os/x86_64/core.db.sig",
        );
        order("hex/packages/jason", "hex/versions");
        order("hex/versions", "hex/names");
    }

    #[test]
    fn unchanged_tree_plans_nothing_and_deletions_wait() {
        let mut local = BTreeMap::new();
        local.insert("crates/1/a/a-1.0.0.crate".to_owned(), entry("1"));
        local.insert("index/1/a".to_owned(), entry("2"));
        let first = plan(&Manifest::default(), &local, 1000, METADATA_MAX_AGE);
        assert_eq!(first.uploads, ["crates/1/a/a-1.0.0.crate", "index/1/a"]);
        let again = plan(&first.done, &local, 1001, METADATA_MAX_AGE);
        assert!(again.is_empty(), "{again:?}");

        // The crate leaves: its index file goes now, the file later.
        let gone = plan(&first.done, &BTreeMap::new(), 2000, METADATA_MAX_AGE);
        assert_eq!(gone.delete_metadata, ["index/1/a"]);
        assert!(gone.delete_files.is_empty());
        assert!(gone.done.retired.contains_key("crates/1/a/a-1.0.0.crate"));
        // Too soon: still retired.
        let soon = plan(&gone.done, &BTreeMap::new(), 2001, METADATA_MAX_AGE);
        assert!(soon.delete_files.is_empty());
        assert!(soon.done.retired.contains_key("crates/1/a/a-1.0.0.crate"));
        let later = plan(
            &gone.done,
            &BTreeMap::new(),
            2000 + METADATA_MAX_AGE,
            METADATA_MAX_AGE,
        );
        assert_eq!(later.delete_files, ["crates/1/a/a-1.0.0.crate"]);
        assert!(later.done.retired.is_empty());
        // Back in the tree before its deletion: kept, not uploaded again.
        let back = plan(&gone.done, &local, 2001, METADATA_MAX_AGE);
        assert_eq!(back.uploads, ["index/1/a"]);
        assert!(back.done.retired.is_empty() && back.delete_files.is_empty());
    }

    #[test]
    fn an_interrupted_deletion_is_finished() {
        let old = Manifest {
            format: MANIFEST_FORMAT,
            deleting: [
                "index/1/a".to_owned(),
                "crates/1/a/a-1.0.0.crate".to_owned(),
            ]
            .into(),
            ..Manifest::default()
        };
        let p = plan(&old, &BTreeMap::new(), 5, METADATA_MAX_AGE);
        assert_eq!(p.delete_metadata, ["index/1/a"]);
        assert_eq!(p.delete_files, ["crates/1/a/a-1.0.0.crate"]);
    }

    #[test]
    fn compressed_files_are_typed_not_encoded() {
        assert_eq!(content_type("crates/1/a/a-1.0.0.crate"), "application/gzip");
        assert_eq!(
            content_type("hex/tarballs/a-1.0.0.tar"),
            "application/x-tar"
        );
        assert_eq!(content_type("index/1/a"), "text/plain; charset=utf-8");
        assert_eq!(classify("hex/names").cache_control(), "public, max-age=60");
    }
}
