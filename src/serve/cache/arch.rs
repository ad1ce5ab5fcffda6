//! Arch Linux through the cache (`--upstream-arch`, repeatable: mirrors
//! tried in order), in the layout `mirror arch` writes:
//! `archlinux/<repo>/os/<arch>/<file>`.
//!
//! - `<repo>.db`, `<repo>.db.tar.gz`, `<repo>.files`, `<repo>.files.tar.gz`
//!   are metadata: revalidated after the TTL, from the first mirror that
//!   answers; a new body must parse as a database ([`db::packages`]) and
//!   its newest `%BUILDDATE%` must not be older than the copy held's (an
//!   older database is refused and the held one served).
//! - A package (a `%FILENAME%` of the repository's `<repo>.db`, which is
//!   made current first and refreshed at once when it does not list the
//!   file) is downloaded from the first mirror whose bytes match the
//!   database's `%SHA256SUM%` and `%CSIZE%`. When the database embeds the
//!   signature (`%PGPSIG%`), it is written beside the package as
//!   `<file>.sig`.
//! - `<package>.sig` not embedded in the database is fetched from the
//!   mirrors as it is: the cache holds no Arch keyring, pacman checks it.
//!
//! A database's `.sig` (third-party repositories sign theirs; official
//! databases are unsigned) is fetched with the database and passed on as
//! it is, for pacman to check; a `404` for it removes the copy held, so a
//! new database is never served with an old signature. Other files
//! (`lastsync`) are served only when the tree has them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;

use super::{check_body, grammar, Cache, CacheError, Keep, Meta, Ready};
use crate::eco::arch::db::{self, Package};
use crate::fetch::FetchItem;

/// The directory of the Arch tree below the root.
pub const ARCH_DIR: &str = "archlinux";

/// The upstream bases of one repository directory, `$repo`/`$arch`
/// expanded.
fn bases(cache: &Cache, repo: &str, arch: &str) -> Vec<String> {
    crate::eco::arch::RepoSource {
        name: repo.to_string(),
        urls: cache.opts.arch.clone(),
    }
    .bases(arch)
}

/// Make the file of `segments` (`archlinux/<repo>/os/<arch>/<file>`)
/// present when the mirrors have it.
pub async fn prepare(cache: &Arc<Cache>, segments: &[String]) -> Result<Ready, CacheError> {
    let [_, repo, os, arch, file] = segments else {
        return Ok(Ready::Tree);
    };
    if os != "os" {
        return Ok(Ready::Tree);
    }
    // Each of these is a directory or file name here and a part of the
    // mirrors' URLs: held to its grammar before anything else.
    let (repo, arch, file) = (
        grammar::arch_repo(repo)?,
        grammar::arch_arch(arch)?,
        grammar::arch_file(file)?,
    );
    let dir = cache.root.join(ARCH_DIR).join(repo).join("os").join(arch);
    let is_db = |f: &str| {
        [".db", ".db.tar.gz", ".files", ".files.tar.gz"]
            .iter()
            .any(|ext| f.strip_prefix(repo) == Some(*ext))
    };
    if is_db(file) {
        return cache
            .metadata(db_meta(cache, repo, arch, file), false)
            .await
            .map(|()| Ready::Tree);
    }
    // A database's signature comes with the database.
    if let Some(db_file) = file.strip_suffix(".sig").filter(|f| is_db(f)) {
        return cache
            .metadata(db_meta(cache, repo, arch, db_file), false)
            .await
            .map(|()| Ready::Tree);
    }
    if let Some(package) = file.strip_suffix(".sig") {
        if package.contains(".pkg.tar") && !package.ends_with(".sig") {
            let dest = dir.join(file);
            let work = fetch(cache, repo, arch, package, Part::Signature, &dest);
            return cache.immutable(&dest, work);
        }
        return Ok(Ready::Tree);
    }
    if file.contains(".pkg.tar") {
        let dest = dir.join(file);
        let work = fetch(cache, repo, arch, file, Part::Package, &dest);
        return cache.immutable(&dest, work);
    }
    Ok(Ready::Tree)
}

/// The metadata description of a database file.
fn db_meta(cache: &Cache, repo: &str, arch: &str, file: &str) -> Meta {
    let rel = format!("{ARCH_DIR}/{repo}/os/{arch}/{file}");
    let urls: Vec<String> = bases(cache, repo, arch)
        .iter()
        .map(|b| format!("{b}/{file}"))
        .collect();
    let what = urls.first().cloned().unwrap_or_default();
    let dest = cache.root.join(&rel);
    let held = dest.clone();
    Meta {
        key: rel.clone(),
        dest,
        urls,
        companions: Vec::new(),
        optional: vec![".sig"],
        // A partial mirror's regenerated database (`mirror arch
        // --packages`) lists what it holds: never replaced by upstream's.
        partial_dir: Some(cache.root.join(format!("{ARCH_DIR}/{repo}/os/{arch}"))),
        limit: crate::eco::arch::db_limit(file),
        verify: check_body(move |bytes| {
            let entries = db::entries(bytes, &what).map_err(|e| format!("{e:#}"))?;
            // Never older than the copy held.
            crate::eco::arch::check_db_forward(
                &what,
                db::newest_build(entries.iter().map(|(r, _)| r)),
                crate::eco::arch::published_newest_build(&held),
            )
        }),
    }
}

/// The database entry of package file `file`, refreshing `<repo>.db`
/// first (at once when it does not list the file).
async fn package(
    cache: &Arc<Cache>,
    repo: &str,
    arch: &str,
    file: &str,
) -> Result<Package, CacheError> {
    let db_file = format!("{repo}.db");
    let found = cache
        .find_in(
            || db_meta(cache, repo, arch, &db_file),
            Keep::Parsed,
            |bytes, url| {
                let packages = db::packages(bytes, url).map_err(|e| format!("{e:#}"))?;
                Ok(packages
                    .into_iter()
                    .map(|p| (p.filename.clone(), p))
                    .collect::<HashMap<_, _>>())
            },
            |packages| packages.get(file).cloned(),
        )
        .await?;
    found.ok_or_else(|| {
        CacheError::NotFound(format!(
            "{file} is not listed in the {repo} database ({arch})"
        ))
    })
}

/// Which file of a package a miss is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The package file.
    Package,
    /// Its detached signature, `<file>.sig`.
    Signature,
}

/// The work of a package miss: its entry, then the first mirror whose
/// bytes verify, the embedded signature (if any) written beside it. For
/// a signature miss: the embedded one, else the mirrors' `.sig`.
fn fetch(
    cache: &Arc<Cache>,
    repo: &str,
    arch: &str,
    package_file: &str,
    part: Part,
    dest: &Path,
) -> impl std::future::Future<Output = Result<(), CacheError>> + Send + 'static {
    let (cache, repo, arch, file) = (
        Arc::clone(cache),
        repo.to_string(),
        arch.to_string(),
        package_file.to_string(),
    );
    let dest = dest.to_path_buf();
    async move {
        let p = package(&cache, &repo, &arch, &file).await?;
        let sig = embedded_sig(&p)?;
        let bases = bases(&cache, &repo, &arch).into_iter();
        match (part, sig) {
            (Part::Package, sig) => {
                let items = bases.map(|base| {
                    let mut item = FetchItem::new(format!("{base}/{file}"), &dest)
                        .sha256(p.sha256)
                        .size(p.csize);
                    if let Some(sig) = &sig {
                        item =
                            item.sidecar(dest.with_file_name(format!("{file}.sig")), sig.clone());
                    }
                    item
                });
                cache.download_first(items).await
            }
            (Part::Signature, Some(sig)) => crate::store::write_atomic(&dest, &sig)
                .map_err(|e| CacheError::Local(format!("cannot write {}: {e}", dest.display()))),
            (Part::Signature, None) => {
                let items = bases.map(|base| {
                    FetchItem::new(format!("{base}/{file}.sig"), &dest)
                        .limit(crate::limit::COMPANION)
                });
                cache.download_first(items).await
            }
        }
    }
}

/// `%PGPSIG%` decoded, when the entry has one.
fn embedded_sig(p: &Package) -> Result<Option<Vec<u8>>, CacheError> {
    p.pgpsig
        .as_deref()
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    CacheError::Rejected(format!(
                        "the database entry of {} has a %PGPSIG% that is not base64: {e}",
                        p.filename
                    ))
                })
        })
        .transpose()
}
