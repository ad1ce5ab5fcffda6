//! Rust toolchains through the cache (`--upstream-dist`), in the layout
//! `mirror toolchain` writes under `dist/`.
//!
//! - Channel manifests, `dist/channel-rust-<name>.toml` and
//!   `dist/<date>/channel-rust-<name>.toml`, are metadata. A new one is
//!   fetched with its `.asc` and must parse, hold what its name says (the
//!   date of its directory, the channel or version of its name), be no
//!   older than the copy held (by its `date`: a replayed older manifest is
//!   refused and the held one served), and verify against the keyring
//!   (`--upstream-dist-keyring`, default the Rust release key); its `.asc`
//!   is stored and its `.sha256` written from its bytes, so the three
//!   always agree (rustup reads the `.sha256` first). A request for the
//!   `.sha256` or `.asc` makes the manifest current.
//! - Any other `dist/<date>/<file>` is a component file: the manifests of
//!   that date (stable, beta, nightly, in that order) are made current and
//!   the first that lists `<date>/<file>` gives its SHA-256; the download
//!   must match it, and a `.sha256` is written beside it.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use super::{grammar, Cache, CacheError, DistUpstream, Keep, Meta, Ready};
use crate::eco::toolchain::manifest::{
    check_forward, check_name, is_date, read_published, Manifest,
};
use crate::eco::toolchain::Channel;
use crate::fetch::FetchItem;
use crate::verify::digest::{format_sidecar, Sha256Digest};
use crate::verify::openpgp::verify_detached;

/// The directory of the toolchain tree below the root.
pub const DIST_DIR: &str = "dist";

/// Make the file of `segments` (`dist/...`) present when upstream has it.
pub async fn prepare(cache: &Arc<Cache>, segments: &[String]) -> Result<Ready, CacheError> {
    let Some(up) = cache.opts.dist.clone() else {
        return Ok(Ready::Tree);
    };
    let (date, file) = match &segments[1..] {
        [file] => (None, file.as_str()),
        [date, file] if is_date(date) => (Some(grammar::dist_date(date)?), file.as_str()),
        _ => return Ok(Ready::Tree),
    };
    // A name for the tree and for upstream's URL alike.
    let file = grammar::dist_file(file)?;
    let manifest = [".sha256", ".asc", ""]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
        .filter(|m| m.starts_with("channel-rust-") && m.ends_with(".toml"));
    if let Some(name) = manifest {
        let channel = name
            .strip_prefix("channel-rust-")
            .and_then(|n| n.strip_suffix(".toml"))
            .unwrap_or_default();
        grammar::dist_channel(channel)?;
        return cache
            .metadata(manifest_meta(cache, &up, date, name), false)
            .await
            .map(|()| Ready::Tree);
    }
    // A component's own `.sha256`/`.asc`: only when the tree has them.
    let (Some(date), false) = (date, file.ends_with(".sha256") || file.ends_with(".asc")) else {
        return Ok(Ready::Tree);
    };
    let dest = cache.root.join(DIST_DIR).join(date).join(file);
    let work = fetch_component(cache, &up, date, file, &dest);
    cache.immutable(&dest, work)
}

/// The metadata description of a manifest (`date`: in `dist/<date>/`).
fn manifest_meta(cache: &Cache, up: &DistUpstream, date: Option<&str>, name: &str) -> Meta {
    let rel = match date {
        Some(d) => format!("{d}/{name}"),
        None => name.to_string(),
    };
    let url = format!("{}/{rel}", up.url);
    let (what, keyring) = (url.clone(), Arc::clone(&up.keyring));
    let name = name.to_string();
    let dest = cache.root.join(DIST_DIR).join(&rel);
    let held = dest.clone();
    Meta {
        key: format!("{DIST_DIR}/{rel}"),
        dest,
        urls: vec![url],
        companions: vec![".asc"],
        optional: Vec::new(),
        partial_dir: None,
        limit: crate::limit::CHANNEL_MANIFEST,
        verify: std::sync::Arc::new(move |body, companions| {
            let m = Manifest::parse(body, &what).map_err(|e| format!("{e:#}"))?;
            // What its name says, and never older than the copy held.
            check_name(&rel, &m).map_err(|e| format!("{e:#}"))?;
            if let Some(published) = read_published(&held) {
                check_forward(&rel, &m, &published).map_err(|e| format!("{e:#}"))?;
            }
            let asc = companions.first().map(Vec::as_slice).unwrap_or_default();
            verify_detached(&keyring, body, asc, &what).map_err(|e| e.to_string())?;
            let sha = format_sidecar(&Sha256Digest::of(body), &name);
            Ok(vec![(".sha256", sha.into_bytes())])
        }),
    }
}

/// The SHA-256 of `<date>/<file>` from the first manifest of that date
/// that lists it.
async fn component_hash(
    cache: &Arc<Cache>,
    up: &DistUpstream,
    date: &str,
    file: &str,
) -> Result<Sha256Digest, CacheError> {
    let rel = format!("{date}/{file}");
    let mut failures = Vec::new();
    for channel in Channel::ALL {
        let name = channel.manifest_name();
        let found = cache
            .find_in(
                || manifest_meta(cache, up, Some(date), &name),
                Keep::Parsed,
                |bytes, url| {
                    let m = Manifest::parse(bytes, url).map_err(|e| format!("{e:#}"))?;
                    Ok(m.all_files()
                        .into_iter()
                        .map(|f| (f.rel, f.hash))
                        .collect::<HashMap<_, _>>())
                },
                |files| files.get(&rel).copied(),
            )
            .await;
        match found {
            Ok(Some(hash)) => return Ok(hash),
            Ok(None) | Err(CacheError::NotFound(_)) => {}
            Err(e) => failures.push(e),
        }
    }
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Err(CacheError::NotFound(format!(
            "{rel} is listed in no channel manifest of {}/{date}/",
            up.url
        ))),
    }
}

/// The work of a component miss: the hash from a manifest, then the
/// download checked against it, with its `.sha256`.
fn fetch_component(
    cache: &Arc<Cache>,
    up: &DistUpstream,
    date: &str,
    file: &str,
    dest: &Path,
) -> impl Future<Output = Result<(), CacheError>> + Send + 'static {
    let (cache, up, date, file) = (
        Arc::clone(cache),
        up.clone(),
        date.to_string(),
        file.to_string(),
    );
    let dest = dest.to_path_buf();
    async move {
        let hash = component_hash(&cache, &up, &date, &file).await?;
        let sidecar = super::sibling(&dest, ".sha256");
        let item = FetchItem::new(format!("{}/{date}/{file}", up.url), &dest)
            .sha256(hash)
            .limit(crate::limit::TOOLCHAIN_FILE)
            .sidecar(sidecar, format_sidecar(&hash, &file));
        cache.download(item).await
    }
}
