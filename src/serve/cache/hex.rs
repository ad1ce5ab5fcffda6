//! Hex through the cache (`--upstream-hex`), in the layout `mirror hex`
//! writes under `hex/`.
//!
//! - `names`, `versions`, `packages/<name>` are metadata: a new body must
//!   be signed by the repository key and name the repository (and, for
//!   `packages/<name>`, the package) — [`registry`]'s checks, as a download
//!   makes them.
//! - `tarballs/<name>-<version>.tar`: `packages/<name>` is made current
//!   (refreshed at once when it lacks the release), and the tarball must
//!   hash to the release's outer checksum.
//! - `public_key`: written from the configured key, no request.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

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
        ["names"] | ["versions"] => cache
            .metadata(meta(cache, &up, Resource::Index(rest[0])), false)
            .await
            .map(|()| Ready::Tree),
        ["packages", name] => {
            let name = grammar::hex_name(name)?;
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

fn meta(cache: &Cache, up: &HexUpstream, resource: Resource<'_>) -> Meta {
    let rel = match resource {
        Resource::Index(file) => file.to_string(),
        Resource::Package(name) => format!("packages/{name}"),
    };
    let url = format!("{}/{rel}", up.url);
    let (key, repo, what) = (up.key.clone(), up.repo.clone(), url.clone());
    let verify: super::Verify = match resource {
        Resource::Index("names") => check_body(move |b| {
            registry::parse_names(b, &key, &repo, &what)
                .map(|_| ())
                .map_err(describe)
        }),
        Resource::Index(_) => check_body(move |b| {
            registry::parse_versions(b, &key, &repo, &what)
                .map(|_| ())
                .map_err(describe)
        }),
        Resource::Package(name) => {
            let name = name.to_string();
            check_body(move |b| {
                registry::parse_package(b, &key, &repo, &name, &what)
                    .map(|_| ())
                    .map_err(describe)
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
        // hex` compares the next download with: kept as it published them.
        partial_dir: matches!(resource, Resource::Index(_)).then(|| cache.root.join(HEX_DIR)),
    }
}

/// The release `version` of `name`, refreshing `packages/<name>` first (at
/// once when the copy held lacks it).
async fn release(
    cache: &Arc<Cache>,
    up: &HexUpstream,
    name: &str,
    version: &str,
) -> Result<Release, CacheError> {
    let found = cache
        .find_in(
            || meta(cache, up, Resource::Package(name)),
            Keep::Nothing,
            |bytes, url| {
                registry::parse_package(bytes, &up.key, &up.repo, name, url).map_err(describe)
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
