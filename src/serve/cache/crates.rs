//! Crates through the cache: sparse index files (metadata) and `.crate`
//! files (immutable).
//!
//! - `/index/<prefix>/<name>` → `<upstream index>/<prefix>/<name>`, kept in
//!   `.mirror/cache/crates-index/<prefix>/<name>`; a new body must parse as
//!   an index file for that path (every line an entry of that crate, with a
//!   `cksum`) or it is refused.
//! - `crates/<prefix>/<name>/<name>-<version>.crate`: the index file of
//!   `<name>` is made current (within the TTL; refreshed at once when it
//!   does not list the version yet), the version's line gives the `cksum`,
//!   and the `.crate` is downloaded from the `dl` template and must hash to
//!   it. A version upstream does not list is a `404`, and so is a name in
//!   another case than the index's (the tree keeps one copy, in the
//!   crate's own case, as offline).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check_body, grammar, Cache, CacheError, CratesUpstream, Keep, Meta, Ready};
use crate::eco::crates::expand_template;
use crate::eco::crates::index::{parse_file, Entry};
use crate::eco::crates::layout::{self, CRATES_DIR};
use crate::fetch::FetchItem;

/// Where the cached sparse index files live, below `.mirror/cache/`.
pub const INDEX_CACHE: &str = "crates-index";

/// `(name, version)` of on-disk segments
/// `crates/<prefix…>/<name>/<name>-<version>.crate` laid out as
/// [`layout::crate_rel_path`] does.
pub fn crate_file_of(segments: &[String]) -> Option<(String, String)> {
    let [first, .., name, file] = segments else {
        return None;
    };
    if first != CRATES_DIR {
        return None;
    }
    let version = layout::version_in_file_name(name, file)?;
    let ok = layout::is_valid_crate_name(name)
        && layout::is_valid_version(version)
        && segments[1..].join("/") == layout::crate_rel_path(name, version);
    ok.then(|| (name.clone(), version.to_string()))
}

/// Make the `.crate` of `segments` present when upstream has it.
pub async fn prepare(cache: &Arc<Cache>, segments: &[String]) -> Result<Ready, CacheError> {
    let (Some(up), Some((name, version))) = (&cache.opts.crates, crate_file_of(segments)) else {
        return Ok(Ready::Tree);
    };
    let dest = cache.root.join(segments.join("/"));
    let work = fetch_crate(cache, up, name, version, &dest);
    cache.immutable(&dest, work)
}

/// The metadata description of `name`'s index file.
fn index_meta(cache: &Cache, up: &CratesUpstream, name: &str) -> Meta {
    let path = layout::index_path(name);
    let url = format!("{}{path}", up.index);
    let what = url.clone();
    let check_path = path.clone();
    Meta {
        key: format!("{INDEX_CACHE}/{path}"),
        dest: cache.cache_path(&format!("{INDEX_CACHE}/{path}")),
        urls: vec![url],
        companions: Vec::new(),
        optional: Vec::new(),
        partial_dir: None,
        limit: crate::limit::CRATE_INDEX_FILE,
        verify: check_body(move |bytes| {
            parse_file(bytes, &check_path, &what)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        }),
    }
}

/// Make the cached index file of `name` current; its path.
pub async fn index_file(cache: &Arc<Cache>, name: &str) -> Result<PathBuf, CacheError> {
    let up = cache
        .opts
        .crates
        .clone()
        .ok_or_else(|| CacheError::NotFound("no crates upstream".into()))?;
    let meta = index_meta(cache, &up, grammar::crate_name(name)?);
    let dest = meta.dest.clone();
    cache.metadata(meta, false).await?;
    Ok(dest)
}

/// The index entry of `name` `version`, refreshing the index file first
/// (at once when the copy held does not list the version).
async fn entry(
    cache: &Arc<Cache>,
    up: &CratesUpstream,
    name: &str,
    version: &str,
) -> Result<Entry, CacheError> {
    let path = layout::index_path(name);
    let parsed_path = path.clone();
    let found = cache
        .find_in(
            || index_meta(cache, up, name),
            Keep::Nothing,
            move |bytes, url| parse_file(bytes, &parsed_path, url).map_err(|e| format!("{e:#}")),
            |entries| entries.get(version).filter(|e| e.name == name).cloned(),
        )
        .await?;
    found.ok_or_else(|| {
        CacheError::NotFound(format!(
            "{name} {version} is not in the upstream index {}{path}",
            up.index
        ))
    })
}

/// The work of a `.crate` miss: the cksum from the index, then the
/// download, checked against it and published at `dest`.
pub fn fetch_crate(
    cache: &Arc<Cache>,
    up: &CratesUpstream,
    name: String,
    version: String,
    dest: &Path,
) -> impl Future<Output = Result<(), CacheError>> + Send + 'static {
    let cache = Arc::clone(cache);
    let up = up.clone();
    let dest = dest.to_path_buf();
    async move {
        let e = entry(&cache, &up, &name, &version).await?;
        let url = expand_template(&up.dl, &e);
        cache
            .download(
                FetchItem::new(url, dest)
                    .sha256(e.cksum)
                    .limit(crate::limit::CRATE_FILE),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn crate_files_are_recognised_only_in_their_layout() {
        assert_eq!(
            crate_file_of(&segs("crates/se/rd/serde/serde-1.0.0.crate")),
            Some(("serde".into(), "1.0.0".into()))
        );
        assert_eq!(
            crate_file_of(&segs("crates/in/fl/Inflector/Inflector-0.11.4.crate")),
            Some(("Inflector".into(), "0.11.4".into()))
        );
        for bad in [
            "crates/serde/serde-1.0.0.crate",
            "crates/xx/yy/serde/serde-1.0.0.crate",
            "dist/se/rd/serde/serde-1.0.0.crate",
            "crates/se/rd/serde/other-1.0.0.crate",
        ] {
            assert_eq!(crate_file_of(&segs(bad)), None, "{bad}");
        }
    }
}
