//! Hex through the cache (`--upstream-hex`), in the layout `mirror hex`
//! writes under `hex/`.
//!
//! - `names`, `versions`, `packages/<name>` are metadata: a new body must
//!   be signed by the repository key and name the repository (and, for
//!   `packages/<name>`, the package) — [`registry`]'s checks, as a download
//!   makes them. They only move forward: a `names` saying any package was
//!   updated before the `names` held says is refused (the held one is
//!   served); `versions` and `packages/<name>` carry no time, so before a
//!   held one is refreshed `names` is made current, and while upstream's
//!   `names` is behind for a package its `packages/<name>` (for any,
//!   `versions`) is not taken from upstream.
//! - `tarballs/<name>-<version>.tar`: `packages/<name>` is made current
//!   (refreshed at once when it lacks the release), and the tarball must
//!   hash to the release's outer checksum.
//! - `public_key`: written from the configured key, no request.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{check_body, grammar, Cache, CacheError, HexUpstream, Keep, Meta, Ready};
use crate::eco::hex::registry::{self, Release};
use crate::fetch::FetchItem;

/// The directory of the Hex tree below the root.
pub const HEX_DIR: &str = "hex";

/// Make the file of `segments` (`hex/...`) present when upstream has it.
pub async fn prepare(cache: &Arc<Cache>, segments: &[String]) -> Result<Ready, CacheError> {
    let Some(up) = cache.opts.hex.clone() else {
        return Ok(Ready::Tree);
    };
    let rest: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    match rest[..] {
        ["names"] => cache
            .metadata(meta(cache, &up, Resource::Index("names")), false)
            .await
            .map(|()| Ready::Tree),
        ["versions"] => {
            names_first(cache, &up, "versions").await;
            cache
                .metadata(meta(cache, &up, Resource::Index("versions")), false)
                .await
                .map(|()| Ready::Tree)
        }
        ["packages", name] => {
            let name = grammar::hex_name(name)?;
            names_first(cache, &up, &format!("packages/{name}")).await;
            cache
                .metadata(meta(cache, &up, Resource::Package(name)), false)
                .await
                .map(|()| Ready::Tree)
        }
        ["tarballs", file] => {
            let Some((name, version)) = file
                .strip_suffix(".tar")
                .and_then(|stem| stem.split_once('-'))
            else {
                return Err(CacheError::BadRequest(format!(
                    "bad Hex tarball name in the request path: expected <name>-<version>.tar, found {file:?}"
                )));
            };
            let (name, version) = (grammar::hex_name(name)?, grammar::hex_version(version)?);
            let dest = cache
                .root
                .join(HEX_DIR)
                .join("tarballs")
                .join(format!("{name}-{version}.tar"));
            let work = fetch_tarball(cache, &up, name, version, &dest);
            cache.immutable(&dest, work)
        }
        ["public_key"] => {
            let dest = cache.root.join(segments.join("/"));
            let pem = up.key.pem().to_string();
            let write = dest.clone();
            let work = async move {
                crate::store::write_atomic(&write, pem.as_bytes()).map_err(|e| {
                    CacheError::Local(format!("cannot write {}: {e}", write.display()))
                })
            };
            cache.immutable(&dest, work)
        }
        _ => Ok(Ready::Tree),
    }
}

/// A refusal in words for `mirror serve` (whose flag for the repository
/// name is `--upstream-hex-repo-name`).
fn describe(e: registry::RegistryError) -> String {
    match e {
        registry::RegistryError::WrongRepository {
            what,
            expected,
            found,
        } => format!(
            "{what}: payload is for repository {found:?}, expected {expected:?} \
             (set --upstream-hex-repo-name if this is intended)"
        ),
        other => other.to_string(),
    }
}

/// A signed resource.
#[derive(Debug, Clone, Copy)]
enum Resource<'a> {
    /// `names` or `versions`.
    Index(&'a str),
    /// `packages/<name>`.
    Package(&'a str),
}

/// Per tree (its `hex/names`), the packages upstream's `names` was last
/// seen to be older for than the `names` held, with why: `versions` and
/// `packages/<name>` carry no time of their own, so while upstream is
/// behind for a package its `packages/<name>` (and, behind for any,
/// `versions`) is not refreshed from it. Set and cleared each time a new
/// upstream `names` is checked.
static BEHIND: Mutex<BTreeMap<PathBuf, (BTreeSet<String>, String)>> = Mutex::new(BTreeMap::new());

/// Before a held `rel` (`versions`, `packages/<name>`) is refreshed: make
/// a held `names` current, so what [`BEHIND`] says is current too (with
/// no `names` held there is nothing to judge by).
async fn names_first(cache: &Arc<Cache>, up: &HexUpstream, rel: &str) {
    let dir = cache.root.join(HEX_DIR);
    if dir.join(rel).is_file() && dir.join("names").is_file() {
        // Its own failure is the `names` request's to report.
        let _ = cache
            .metadata(meta(cache, up, Resource::Index("names")), false)
            .await;
    }
}

/// Whether upstream is behind for `package` (`None`: for any), and why.
fn behind(names: &Path, package: Option<&str>) -> Option<String> {
    let map = BEHIND.lock().unwrap_or_else(|e| e.into_inner());
    let (set, why) = map.get(names)?;
    package
        .map_or(!set.is_empty(), |p| set.contains(p))
        .then(|| why.clone())
}

fn meta(cache: &Cache, up: &HexUpstream, resource: Resource<'_>) -> Meta {
    let rel = match resource {
        Resource::Index(file) => file.to_string(),
        Resource::Package(name) => format!("packages/{name}"),
    };
    let url = format!("{}/{rel}", up.url);
    let (key, repo, what) = (up.key.clone(), up.repo.clone(), url.clone());
    let held_names = cache.root.join(HEX_DIR).join("names");
    let verify: super::Verify = match resource {
        Resource::Index("names") => check_body(move |b| {
            let names = registry::parse_names(b, &key, &repo, &what).map_err(describe)?;
            // Never older than the names held, for any package.
            let published = std::fs::read(&held_names)
                .ok()
                .and_then(|h| registry::parse_names(&h, &key, &repo, "").ok());
            let late = published
                .map(|p| registry::names_behind(&names, &p))
                .unwrap_or_default();
            let why = registry::describe_behind(&what, &late);
            let mut map = BEHIND.lock().unwrap_or_else(|e| e.into_inner());
            match why {
                Some(why) => {
                    let set = late.into_iter().map(|(n, _, _)| n).collect();
                    map.insert(held_names.clone(), (set, why.clone()));
                    Err(why)
                }
                None => {
                    map.remove(&held_names);
                    Ok(())
                }
            }
        }),
        Resource::Index(_) => check_body(move |b| {
            registry::parse_versions(b, &key, &repo, &what).map_err(describe)?;
            match behind(&held_names, None) {
                Some(why) => Err(format!("{why}: {what} is not taken from it")),
                None => Ok(()),
            }
        }),
        Resource::Package(name) => {
            let name = name.to_string();
            check_body(move |b| {
                registry::parse_package(b, &key, &repo, &name, &what).map_err(describe)?;
                match behind(&held_names, Some(&name)) {
                    Some(why) => Err(format!("{why}: {what} is not taken from it")),
                    None => Ok(()),
                }
            })
        }
    };
    Meta {
        key: format!("{HEX_DIR}/{rel}"),
        dest: cache.root.join(HEX_DIR).join(&rel),
        urls: vec![url],
        companions: Vec::new(),
        optional: Vec::new(),
        limit: match resource {
            Resource::Package(_) => crate::limit::HEX_PACKAGE,
            Resource::Index(_) => crate::limit::HEX_RESOURCE,
        },
        verify,
        // `names` and `versions` of a partial selection are what `mirror
        // hex` compares the next download with: kept as it published them;
        // so is every `packages/<name>` of a tree re-signed with the site's
        // key (`--signing-key`), which upstream's would contradict.
        partial_dir: (matches!(resource, Resource::Index(_)) || resigned(&cache.root, up))
            .then(|| cache.root.join(HEX_DIR)),
    }
}

/// Whether the tree's Hex files are signed with another key than the
/// upstream's: its `public_key` (written first by `mirror hex`) differs.
fn resigned(root: &Path, up: &HexUpstream) -> bool {
    crate::limit::read_file(
        &root.join(HEX_DIR).join("public_key"),
        crate::limit::COMPANION,
    )
    .is_ok_and(|pem| String::from_utf8_lossy(&pem).trim() != up.key.pem().trim())
}

/// The release `version` of `name`, refreshing `packages/<name>` first (at
/// once when the copy held lacks it).
async fn release(
    cache: &Arc<Cache>,
    up: &HexUpstream,
    name: &str,
    version: &str,
) -> Result<Release, CacheError> {
    let (key, repo, owned) = (up.key.clone(), up.repo.clone(), name.to_string());
    let found = cache
        .find_in(
            || meta(cache, up, Resource::Package(name)),
            Keep::Nothing,
            move |bytes, url| {
                registry::parse_package(bytes, &key, &repo, &owned, url).map_err(describe)
            },
            |package| {
                package
                    .releases
                    .iter()
                    .find(|r| r.version == version)
                    .cloned()
            },
        )
        .await?;
    found.ok_or_else(|| {
        CacheError::NotFound(format!(
            "{name} {version} is not a release in {}/packages/{name}",
            up.url
        ))
    })
}

/// The work of a tarball miss: the outer checksum from the package, then
/// the download, checked against it.
fn fetch_tarball(
    cache: &Arc<Cache>,
    up: &HexUpstream,
    name: &str,
    version: &str,
    dest: &Path,
) -> impl Future<Output = Result<(), CacheError>> + Send + 'static {
    let (cache, up, name, version) = (
        Arc::clone(cache),
        up.clone(),
        name.to_string(),
        version.to_string(),
    );
    let dest = dest.to_path_buf();
    async move {
        let r = release(&cache, &up, &name, &version).await?;
        let digest = r.outer_digest().ok_or_else(|| {
            CacheError::Rejected(format!(
                "{}/packages/{name}: release {version} has no 32-byte outer checksum",
                up.url
            ))
        })?;
        let url = format!("{}/tarballs/{name}-{version}.tar", up.url);
        cache
            .download(
                FetchItem::new(url, dest)
                    .sha256(digest)
                    .limit(crate::limit::HEX_TARBALL),
            )
            .await
    }
}
