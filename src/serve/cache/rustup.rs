//! rustup itself through the cache (`--upstream-rustup`), in the layout
//! `mirror rustup` writes under `rustup/`. rustup publishes no signatures:
//! as `mirror rustup download` does, binaries are checked against
//! upstream's `.sha256`.
//!
//! - `release-stable.toml` is metadata; a new one must parse
//!   (`version = 'X.Y.Z'`) and name no older version than the copy held
//!   (an older one is refused and the held one served).
//! - `archive/<X.Y.Z>/<triple>/rustup-init[.exe]` never changes: on a miss
//!   its `.sha256` is fetched, then the binary, which must hash to it; both
//!   are stored. A request for the `.sha256` fetches the pair.
//! - `dist/<triple>/rustup-init[.exe]` (the newest, what `rustup-init.sh`
//!   fetches) changes with each release: metadata, fetched with its
//!   `.sha256` and stored only when they agree.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use super::{check_body, grammar, sibling, Cache, CacheError, Meta, Ready};
use crate::eco::is_valid_target;
use crate::eco::rustup::{init_name, older_stable, parse_release_stable};
use crate::fetch::{self, FetchItem};
use crate::verify::digest::{format_sidecar, parse_sidecar, DigestMismatch, Sha256Digest};

/// The directory of the rustup tree below the root.
pub const RUSTUP_DIR: &str = "rustup";

/// Make the file of `segments` (`rustup/...`) present when upstream has
/// it.
pub async fn prepare(cache: &Arc<Cache>, segments: &[String]) -> Result<Ready, CacheError> {
    let Some(url) = cache.opts.rustup.clone() else {
        return Ok(Ready::Tree);
    };
    let rest: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    // The binary a request (for it or its `.sha256`) is about.
    let binary = |target: &str, file: &str| {
        let name = init_name(target);
        (is_valid_target(target) && (file == name || file.strip_suffix(".sha256") == Some(name)))
            .then_some(name)
    };
    match rest[..] {
        ["release-stable.toml"] => {
            let what = format!("{url}/release-stable.toml");
            let dest = cache.root.join(RUSTUP_DIR).join("release-stable.toml");
            let held = dest.clone();
            let meta = Meta {
                key: format!("{RUSTUP_DIR}/release-stable.toml"),
                dest,
                urls: vec![what.clone()],
                companions: Vec::new(),
                optional: Vec::new(),
                partial_dir: None,
                limit: crate::limit::SMALL_TEXT,
                verify: check_body(move |body| {
                    let upstream =
                        parse_release_stable(body, &what).map_err(|e| format!("{e:#}"))?;
                    // The version never goes back.
                    let published = std::fs::read(&held)
                        .ok()
                        .and_then(|b| parse_release_stable(&b, "").ok());
                    match published {
                        Some(p) if upstream < p => Err(older_stable(&what, upstream, p)),
                        _ => Ok(()),
                    }
                }),
            };
            cache.metadata(meta, false).await.map(|()| Ready::Tree)
        }
        ["archive", version, target, file] => {
            let (version, target) = (grammar::rustup_version(version)?, grammar::triple(target)?);
            let Some(name) = binary(target, file) else {
                return Ok(Ready::Tree);
            };
            let rel = format!("archive/{version}/{target}/{name}");
            let dest = cache.root.join(RUSTUP_DIR).join(&rel);
            let work = fetch_archived(cache, format!("{url}/{rel}"), &dest);
            cache.immutable(&dest, work)
        }
        ["dist", target, file] => {
            let target = grammar::triple(target)?;
            let Some(name) = binary(target, file) else {
                return Ok(Ready::Tree);
            };
            let rel = format!("dist/{target}/{name}");
            let what = format!("{url}/{rel}");
            let meta = Meta {
                key: format!("{RUSTUP_DIR}/{rel}"),
                dest: cache.root.join(RUSTUP_DIR).join(&rel),
                urls: vec![what.clone()],
                companions: vec![".sha256"],
                optional: Vec::new(),
                partial_dir: None,
                limit: crate::limit::RUSTUP_INIT,
                verify: std::sync::Arc::new(move |body, companions| {
                    let sum = companions.first().map(Vec::as_slice).unwrap_or_default();
                    check_sum(body, sum, &what).map(|_| Vec::new())
                }),
            };
            cache.metadata(meta, false).await.map(|()| Ready::Tree)
        }
        _ => Ok(Ready::Tree),
    }
}

/// `body` against the `.sha256` text `sum` of `url`.
fn check_sum(body: &[u8], sum: &[u8], url: &str) -> Result<Sha256Digest, String> {
    let expected = parse_sidecar(sum, &format!("{url}.sha256")).map_err(|e| e.to_string())?;
    let actual = Sha256Digest::of(body);
    if actual != expected {
        return Err(DigestMismatch::new(url, expected, actual).to_string());
    }
    Ok(actual)
}

/// The work of an archived binary's miss: its `.sha256`, then the binary
/// checked against it; both stored.
fn fetch_archived(
    cache: &Arc<Cache>,
    url: String,
    dest: &Path,
) -> impl Future<Output = Result<(), CacheError>> + Send + 'static {
    let cache = Arc::clone(cache);
    let dest = dest.to_path_buf();
    async move {
        let sum_url = format!("{url}.sha256");
        let sum = fetch::get_bytes(
            &cache.client,
            &cache.opts.http,
            &sum_url,
            crate::limit::COMPANION,
        )
        .await
        .map_err(CacheError::from_fetch)?;
        cache.count(|c| &c.upstream_bytes, sum.len() as u64);
        let digest = parse_sidecar(&sum, &sum_url)
            .map_err(|e| CacheError::Rejected(format!("refusing upstream bytes: {e}")))?;
        let name = dest
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let item = FetchItem::new(url, &dest)
            .sha256(digest)
            .limit(crate::limit::RUSTUP_INIT)
            .sidecar(sibling(&dest, ".sha256"), format_sidecar(&digest, &name));
        cache.download(item).await
    }
}
