//! What the tree holds, as keys to publish: every regular file under
//! [`PUBLISHED_DIRS`] (dot-files — temporaries, markers — left out), and
//! the crates index as static sparse-index files read from the `master`
//! tree of `git/crates.io-index` (the same blobs `mirror serve` answers
//! `/index/...` with), with a `config.json` whose `dl` names the crate
//! files where the store holds them.
//!
//! A file whose size and modification time match the last publish's entry
//! is not hashed again; an index file whose blob id matches is not read.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use rayon::prelude::*;

use super::plan::{Entry, Manifest, INDEX_PREFIX, PUBLISHED_DIRS};
use crate::eco::crates::index::Index;
use crate::eco::crates::layout::{CRATES_DIR, INDEX_DIR};
use crate::verify::Sha256Digest;

/// Where the bytes of a key come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file of the tree.
    File(PathBuf),
    /// Bytes made here (`index/config.json`).
    Bytes(Bytes),
    /// A blob of the index repository.
    Blob(gix::ObjectId),
}

/// The tree as keys.
#[derive(Debug, Default)]
pub struct Local {
    /// Key → what its bytes are.
    pub entries: BTreeMap<String, Entry>,
    /// Key → where they come from.
    pub sources: HashMap<String, Source>,
    /// The index, when the tree has one with a `master`.
    pub index: Option<Index>,
    /// Paths left out (not UTF-8, not a regular file), for `-v`.
    pub skipped: Vec<String>,
}

/// The `dl` template of the published `config.json`: crate files where
/// the tree (and so the store) holds them, `crates/{lowerprefix}/{crate}/
/// {crate}-{version}.crate` (see [`crate::eco::crates::layout`]).
pub fn dl_template(public_url: &str) -> String {
    format!(
        "{}/{CRATES_DIR}/{{lowerprefix}}/{{crate}}/{{crate}}-{{version}}.crate",
        public_url.trim_end_matches('/')
    )
}

/// Read the tree at `root`. `old` is the last publish's manifest.
pub fn collect(root: &Path, old: &Manifest, public_url: &str) -> Result<Local> {
    let mut local = Local::default();
    let mut files = Vec::new();
    for dir in PUBLISHED_DIRS {
        walk(&root.join(dir), dir, &mut files, &mut local.skipped)?;
    }
    let hashed: Vec<(String, PathBuf, Entry)> = files
        .into_par_iter()
        .map(|(key, path, meta)| {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| u64::try_from(crate::store::epoch_nanos(t)).ok());
            if let Some(o) = old.holds(&key) {
                if o.size == meta.len() && o.mtime.is_some() && o.mtime == mtime {
                    return Ok((key, path, o.clone()));
                }
            }
            let (digest, size) = crate::verify::digest::hash_file(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let entry = Entry {
                size,
                sha256: digest.to_hex(),
                mtime,
                git: None,
            };
            Ok((key, path, entry))
        })
        .collect::<Result<_>>()?;
    for (key, path, entry) in hashed {
        local.sources.insert(key.clone(), Source::File(path));
        local.entries.insert(key, entry);
    }
    collect_index(root, old, public_url, &mut local)?;
    Ok(local)
}

/// Regular files below `dir` (key prefix `rel`), dot-names left out.
fn walk(
    dir: &Path,
    rel: &str,
    out: &mut Vec<(String, PathBuf, std::fs::Metadata)>,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            skipped.push(path.display().to_string());
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let key = format!("{rel}/{name}");
        // Not followed: a link may point anywhere.
        let ft = e
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if ft.is_dir() {
            walk(&path, &key, out, skipped)?;
        } else if ft.is_file() {
            let meta = e
                .metadata()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            out.push((key, path, meta));
        } else {
            skipped.push(path.display().to_string());
        }
    }
    Ok(())
}

/// The sparse index from `master`, when the tree has a crates index.
fn collect_index(root: &Path, old: &Manifest, public_url: &str, local: &mut Local) -> Result<()> {
    let dir = root.join(INDEX_DIR);
    if !dir.is_dir() {
        return Ok(());
    }
    let index = Index::new(&dir);
    let Some(master) = index.resolve("refs/heads/master")? else {
        return Ok(());
    };
    let (files, _) = index.index_files(master)?;
    let mut own_config = None;
    for (_, id, path) in files {
        if path == "config.json" {
            own_config = Some(index.blob(id, &path)?);
            continue;
        }
        let key = format!("{INDEX_PREFIX}/{path}");
        let git = id.to_string();
        let entry = match old.files.get(&key) {
            Some(o) if o.git.as_deref() == Some(git.as_str()) => o.clone(),
            _ => {
                let data = index.blob(id, &path)?;
                Entry {
                    size: data.len() as u64,
                    sha256: Sha256Digest::of(&data).to_hex(),
                    mtime: None,
                    git: Some(git),
                }
            }
        };
        local.sources.insert(key.clone(), Source::Blob(id));
        local.entries.insert(key, entry);
    }
    let config = crate::serve::crates::config_json_with(
        own_config.as_deref(),
        &dl_template(public_url),
        None,
        false,
    );
    let key = format!("{INDEX_PREFIX}/config.json");
    local.entries.insert(
        key.clone(),
        Entry {
            size: config.len() as u64,
            sha256: Sha256Digest::of(&config).to_hex(),
            mtime: None,
            git: None,
        },
    );
    local
        .sources
        .insert(key, Source::Bytes(Bytes::from(config)));
    local.index = Some(index);
    Ok(())
}
