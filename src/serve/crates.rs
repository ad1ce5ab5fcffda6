//! Serving crates to cargo: crate files, the sparse index and (in [`super::git`])
//! the git index over smart HTTP.
//!
//! # Routes
//!
//! | request | answer |
//! |---|---|
//! | `/crates/{name}/{name}-{version}.crate` (romt) | `crates/<lowerprefix>/<name>/<name>-<version>.crate` |
//! | `/crates/{name}/{version}/download` (crates.io API) | the same file |
//! | `/crates/<prefix>/<name>/<name>-<version>.crate` (on disk) | the same file |
//! | `/index/config.json`, `/crates-index/config.json` | the index's `config.json` with `dl` and `api` pointing at this server |
//! | `/index/<prefix>/<name>`, `/crates-index/...` | the blob at that path in the `master` tree of `git/crates.io-index` |
//! | `/git/crates.io-index/info/refs`, `.../git-upload-pack` | git smart HTTP, see [`super::git`] |
//! | anything else below `/git/crates.io-index` | 404: the repository's files (every branch, its config) are not served |
//!
//! Crate paths are mapped by [`crate_file_rewrite`] (a [`Rewrite`]): name
//! and version are checked with [`layout`], so hostile input never becomes
//! a path; any other path below `/crates/` is 404. Files are then served
//! like every static file (Range, ETag, HEAD).
//!
//! # The sparse index
//!
//! Index files are read from git objects with gix, never from a checkout,
//! and kept in memory (up to [`INDEX_CACHE_BYTES`], answers "no such file"
//! included) for as long as `master` stays where it was: every request
//! `stat`s the loose `refs/heads/master` and `packed-refs` (a `mirror
//! crate` run that moves `master` renames one of them), so a move is
//! visible at once and an unchanged index is served without a read. gix's
//! object database rescans its packs when an object is missing. Index paths
//! are lower-case, so requests are lower-cased before the lookup. The
//! `ETag` is the blob id; `If-None-Match` with it answers `304`. An unknown
//! crate is `404` (cargo then tries the `-`/`_` variants itself).
//!
//! With a crates upstream (`--upstream-crates`), index files come from the
//! pull-through cache ([`super::cache::crates`]) first, with an `ETag`
//! derived from the body; the git `master` tree answers only when upstream
//! fails and the cache holds no copy. Missing `.crate` files are fetched by
//! the cache too.
//!
//! `config.json` keeps every key of the index's own file but sets `dl` to
//! `<base>/crates/{crate}/{crate}-{version}.crate` and `api` to `<base>`,
//! where `<base>` is [`ServeOptions::base_url`], else `http://` + the
//! request's `Host`, else `http://<bind>:<port>`. Its `ETag` is derived
//! from the body.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::cache::{self, Cache, CacheError};
use super::files::none_match;
use super::path::parse_request_path;
use super::{status_response, Rewrite, ServeOptions};
use crate::eco::crates::layout::{self, CRATES_DIR, INDEX_DIR};

/// How many bytes of index files the server keeps in memory.
pub const INDEX_CACHE_BYTES: usize = 64 << 20;

/// Request prefixes answered with the sparse index.
pub const SPARSE_PREFIXES: [&str; 2] = ["index", "crates-index"];

/// The [`Rewrite`] for crate files: the three request forms onto
/// `crates/<lowerprefix>/<name>/<name>-<version>.crate`.
pub fn crate_file_rewrite() -> Arc<dyn Rewrite> {
    Arc::new(|segments: &[&str]| crate_file_segments(segments))
}

/// Map request segments below `crates/` onto the on-disk segments of a
/// crate file. `None` for paths outside `crates/`; `Some(empty)` (404) for
/// paths below it that are not a well-formed crate file request.
pub fn crate_file_segments(segments: &[&str]) -> Option<Vec<String>> {
    let (first, rest) = segments.split_first()?;
    if *first != CRATES_DIR {
        return None;
    }
    Some(
        parse_crate_request(rest).map_or_else(Vec::new, |(name, version)| {
            let rel = layout::crate_rel_path(name, version);
            std::iter::once(CRATES_DIR)
                .chain(rel.split('/'))
                .map(str::to_owned)
                .collect()
        }),
    )
}

/// `(name, version)` of a request below `/crates/`, when it is one of the
/// three forms and both parts are valid. The name is checked first: only
/// a valid name has a prefix to compare with.
fn parse_crate_request<'a>(rest: &[&'a str]) -> Option<(&'a str, &'a str)> {
    let (prefix, name, version) = match *rest {
        [name, version, "download"] => (None, name, version),
        [name, file] => (None, name, layout::version_in_file_name(name, file)?),
        [p1, name, file] => (
            Some(p1.to_string()),
            name,
            layout::version_in_file_name(name, file)?,
        ),
        [p1, p2, name, file] => (
            Some(format!("{p1}/{p2}")),
            name,
            layout::version_in_file_name(name, file)?,
        ),
        _ => return None,
    };
    if !layout::is_valid_crate_name(name) || !layout::is_valid_version(version) {
        return None;
    }
    if prefix.is_some_and(|p| !p.eq_ignore_ascii_case(&layout::lower_prefix(name))) {
        return None;
    }
    Some((name, version))
}

/// The crates index the sparse routes (and [`super::git`]) read, with the
/// pull-through cache when a crates upstream is configured.
pub(crate) fn index_state(opts: &ServeOptions, cache: Option<Arc<Cache>>) -> Arc<CratesState> {
    let mut state = CratesState::new(opts);
    state.cache = cache.filter(|c| c.options().crates.is_some());
    Arc::new(state)
}

/// The sparse index routes, to merge into the main router.
pub(crate) fn routes(state: Arc<CratesState>) -> Router {
    let mut router = Router::new();
    for prefix in SPARSE_PREFIXES {
        router = router
            .route(&format!("/{prefix}/{{*path}}"), get(sparse))
            .route(&format!("/{prefix}/"), get(sparse));
    }
    router.with_state(state)
}

/// Shared by the crate routes: where the index is and the open repository.
pub(crate) struct CratesState {
    /// The git index directory (`<root>/git/crates.io-index`).
    pub(crate) index_dir: PathBuf,
    /// This server's public address, for `config.json`.
    base: super::PublicBase,
    /// Opened on first use; dropped and reopened after an error.
    repo: Mutex<Option<gix::ThreadSafeRepository>>,
    /// Index files read from `master`, while it stays where it was.
    files: Mutex<IndexFiles>,
    /// The pull-through cache, when a crates upstream is configured.
    cache: Option<Arc<Cache>>,
    /// `config.json` says `"auth-required": true` (`--auth-file`).
    auth_required: bool,
}

/// What identifies where `master` is without reading it: the (inode,
/// size, mtime) of the loose ref and of `packed-refs`. Refs are written by
/// renaming a new file over the old, so a move changes one of them.
type RefStamp = [Option<(u64, u64, SystemTime)>; 2];

fn ref_stamp(git_dir: &Path) -> RefStamp {
    use std::os::unix::fs::MetadataExt;
    let stamp = |p: PathBuf| {
        std::fs::metadata(p).ok().map(|m| {
            (
                m.ino(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        })
    };
    [
        stamp(git_dir.join("refs/heads/master")),
        stamp(git_dir.join("packed-refs")),
    ]
}

/// An index file as served: its blob id and bytes, or `None` (404).
type IndexFile = Option<(gix::ObjectId, Bytes)>;

/// Index files of one state of `master`.
#[derive(Default)]
struct IndexFiles {
    /// The repository's git directory (the index itself when bare, its
    /// `.git` otherwise), known once the repository was opened.
    git_dir: Option<PathBuf>,
    stamp: Option<RefStamp>,
    files: HashMap<String, IndexFile>,
    bytes: usize,
}

impl IndexFiles {
    fn get(&self, stamp: &RefStamp, path: &str) -> Option<IndexFile> {
        if self.stamp.as_ref() != Some(stamp) {
            return None;
        }
        self.files.get(path).cloned()
    }

    /// Remember `file` as read while `master` was at `stamp`; a new stamp
    /// forgets the old state, a full cache starts over.
    fn put(&mut self, stamp: RefStamp, path: String, file: IndexFile) {
        let size = file.as_ref().map_or(0, |(_, b)| b.len()) + path.len();
        if self.stamp != Some(stamp) || self.bytes + size > INDEX_CACHE_BYTES {
            *self = IndexFiles {
                git_dir: self.git_dir.take(),
                stamp: Some(stamp),
                ..IndexFiles::default()
            };
        }
        self.bytes += size;
        self.files.insert(path, file);
    }
}

/// Why the index could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexError {
    /// No index at all (nothing mirrored yet): 404.
    #[error("no crates index at {}", .0.display())]
    Missing(PathBuf),
    /// The index exists but has no `master` branch yet: 404.
    #[error("the crates index at {} has no master branch", .0.display())]
    NoMaster(PathBuf),
    /// Anything else: 500, logged.
    #[error("cannot read the crates index at {}: {message}", path.display())]
    Broken {
        /// The index directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl IndexError {
    pub(crate) fn response(&self) -> Response {
        match self {
            IndexError::Missing(_) | IndexError::NoMaster(_) => {
                status_response(StatusCode::NOT_FOUND)
            }
            IndexError::Broken { .. } => {
                crate::output::log(format_args!("mirror serve: {self}"));
                status_response(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl CratesState {
    fn new(opts: &ServeOptions) -> Self {
        CratesState {
            index_dir: opts.root.join(INDEX_DIR),
            base: super::PublicBase::new(opts),
            repo: Mutex::new(None),
            files: Mutex::new(IndexFiles::default()),
            cache: None,
            auth_required: opts.ops.auth_file.is_some(),
        }
    }

    fn broken(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError::Broken {
            path: self.index_dir.clone(),
            message: e.to_string(),
        }
    }

    /// The open repository (opening it if needed).
    fn repo(&self) -> Result<gix::Repository, IndexError> {
        let mut slot = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(repo) = slot.as_ref() {
            return Ok(repo.to_thread_local());
        }
        if !self.index_dir.is_dir() {
            return Err(IndexError::Missing(self.index_dir.clone()));
        }
        let repo =
            gix::ThreadSafeRepository::open_opts(&self.index_dir, gix::open::Options::isolated())
                .map_err(|e| self.broken(e))?;
        let local = repo.to_thread_local();
        self.files.lock().unwrap_or_else(|e| e.into_inner()).git_dir =
            Some(local.git_dir().to_path_buf());
        *slot = Some(repo);
        Ok(local)
    }

    /// Forget the open repository (after an error, in case it was replaced).
    fn forget(&self) {
        *self.repo.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Run `f` on the repository; on a [`IndexError::Broken`] error, reopen
    /// once and retry.
    pub(crate) fn with_repo<T>(
        &self,
        f: impl Fn(&gix::Repository) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        match self.repo().and_then(|r| f(&r)) {
            Err(IndexError::Broken { .. }) => {
                self.forget();
                self.repo().and_then(|r| f(&r))
            }
            other => other,
        }
    }

    /// The commit `master` points at.
    pub(crate) fn master(&self, repo: &gix::Repository) -> Result<gix::ObjectId, IndexError> {
        let mut reference = repo
            .try_find_reference("refs/heads/master")
            .map_err(|e| self.broken(e))?
            .ok_or_else(|| IndexError::NoMaster(self.index_dir.clone()))?;
        let id = reference.peel_to_id().map_err(|e| self.broken(e))?;
        Ok(id.detach())
    }

    /// The blob at `path` in the `master` tree: its id and bytes, or `None`
    /// when there is no such file.
    fn read_master_file(&self, path: &str) -> Result<Option<(gix::ObjectId, Vec<u8>)>, IndexError> {
        self.with_repo(|repo| {
            let commit = self.master(repo)?;
            let tree = repo
                .find_commit(commit)
                .and_then(|c| c.tree())
                .map_err(|e| self.broken(e))?;
            let Some(entry) = tree
                .lookup_entry_by_path(Path::new(path))
                .map_err(|e| self.broken(e))?
            else {
                return Ok(None);
            };
            if !entry.mode().is_blob() {
                return Ok(None);
            }
            // Sized before it is read: no index file is larger.
            let size = repo
                .find_header(entry.object_id())
                .map_err(|e| self.broken(e))?
                .size();
            crate::limit::CRATE_INDEX_FILE
                .check(size)
                .map_err(|e| self.broken(format!("{path}: {e}")))?;
            let blob = entry.object().map_err(|e| self.broken(e))?;
            Ok(Some((blob.id, blob.detach().data)))
        })
    }
}

/// The served `config.json`: the index's own keys (if it has a readable
/// one) with `dl` and `api` pointing at `base`, and `"auth-required":
/// true` when the server requires credentials (cargo then sends its token).
pub fn config_json(own: Option<&[u8]>, base: &str, auth_required: bool) -> Vec<u8> {
    config_json_with(
        own,
        &format!("{base}/crates/{{crate}}/{{crate}}-{{version}}.crate"),
        Some(base),
        auth_required,
    )
}

/// A `config.json`: the index's own keys (if it has a readable one) with
/// `dl` set to `dl`, `api` set to `api` or removed (a static index, as
/// `mirror publish` writes, has no API), and `"auth-required": true` when
/// `auth_required`.
pub fn config_json_with(
    own: Option<&[u8]>,
    dl: &str,
    api: Option<&str>,
    auth_required: bool,
) -> Vec<u8> {
    let mut map = own
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    map.insert("dl".into(), dl.into());
    match api {
        Some(api) => map.insert("api".into(), api.into()),
        None => map.remove("api"),
    };
    if auth_required {
        map.insert("auth-required".into(), true.into());
    }
    let mut body =
        serde_json::to_vec_pretty(&serde_json::Value::Object(map)).expect("a JSON map serializes");
    body.push(b'\n');
    body
}

/// GET/HEAD `/index/...` and `/crates-index/...`.
async fn sparse(State(state): State<Arc<CratesState>>, req: Request) -> Response {
    let segments = match parse_request_path(req.uri().path()) {
        Ok(s) => s,
        Err(refusal) => return status_response(refusal.status()),
    };
    let rest: Vec<String> = segments
        .get(1..)
        .unwrap_or_default()
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let headers = req.headers().clone();
    if rest == ["config.json"] {
        let st = Arc::clone(&state);
        let own = tokio::task::spawn_blocking(move || st.read_master_file("config.json")).await;
        let own = match own {
            Ok(Ok(own)) => own,
            // With an upstream, a tree without a git index is fine.
            Ok(Err(IndexError::Missing(_) | IndexError::NoMaster(_))) if state.cache.is_some() => {
                None
            }
            Ok(Err(e)) => return e.response(),
            Err(e) => return internal(e),
        };
        let body = config_json(
            own.as_ref().map(|(_, b)| b.as_slice()),
            &state.base.for_request(&headers),
            state.auth_required,
        );
        let etag = format!(
            "\"{}\"",
            &crate::verify::Sha256Digest::of(&body).to_string()[..32]
        );
        return answer(&headers, etag, "application/json", body);
    }
    let Some(name) = rest.last() else {
        return status_response(StatusCode::NOT_FOUND);
    };
    let path = rest.join("/");
    if !layout::is_valid_crate_name(name) || layout::index_path(name) != path {
        return status_response(StatusCode::NOT_FOUND);
    }
    let mut upstream_failed = None;
    if let Some(cache) = &state.cache {
        let client = super::peer_ip(&req);
        match cache::for_client(client, cache::crates::index_file(cache, name)).await {
            Ok(file) => {
                return match tokio::fs::read(&file).await {
                    Ok(body) => {
                        let etag = format!(
                            "\"{}\"",
                            &crate::verify::Sha256Digest::of(&body).to_string()[..32]
                        );
                        answer(&headers, etag, "text/plain; charset=utf-8", body)
                    }
                    Err(e) => internal(format!("cannot read {}: {e}", file.display())),
                };
            }
            Err(e @ CacheError::NotFound(_)) => return e.response(),
            // The git index may still have it.
            Err(e) => upstream_failed = Some(e),
        }
    }
    // A file already read from this `master` is answered from memory, on
    // the async worker (two `stat`s); anything else is read in the
    // blocking pool and remembered.
    let git_dir = state
        .files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .git_dir
        .clone();
    let stamp = git_dir.as_deref().map(ref_stamp);
    let cached = stamp.as_ref().and_then(|stamp| {
        state
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stamp, &path)
    });
    let file = match cached {
        Some(file) => file,
        None => {
            let st = Arc::clone(&state);
            let found = tokio::task::spawn_blocking(move || {
                let file = st
                    .read_master_file(&path)?
                    .map(|(id, body)| (id, Bytes::from(body)));
                // Remembered under the stamp taken before the read: if
                // master moved meanwhile, the next request sees a new one.
                if let Some(stamp) = stamp {
                    st.files.lock().unwrap_or_else(|e| e.into_inner()).put(
                        stamp,
                        path,
                        file.clone(),
                    );
                }
                Ok::<_, IndexError>(file)
            })
            .await;
            match found {
                Ok(Ok(file)) => file,
                Ok(Err(IndexError::Missing(_) | IndexError::NoMaster(_))) => None,
                Ok(Err(e)) => return e.response(),
                Err(e) => return internal(e),
            }
        }
    };
    match file {
        Some((id, body)) => answer(
            &headers,
            format!("\"{id}\""),
            "text/plain; charset=utf-8",
            body,
        ),
        None => {
            upstream_failed.map_or_else(|| status_response(StatusCode::NOT_FOUND), |e| e.response())
        }
    }
}

/// `200` with the body, or `304` when `If-None-Match` matches `etag`.
fn answer(
    headers: &HeaderMap,
    etag: String,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let body: Bytes = body.into();
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, &etag));
    let mut out = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(ETAG, v);
    }
    out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    (StatusCode::OK, out, Body::from(body)).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    crate::output::log(format_args!("mirror serve: crates index task failed: {e}"));
    status_response(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split('/').collect();
        crate_file_segments(&segs).map(|v| v.join("/"))
    }

    #[test]
    fn three_request_forms_map_to_the_on_disk_path() {
        let want = Some("crates/se/rd/serde/serde-1.0.0.crate".to_string());
        assert_eq!(map("crates/serde/serde-1.0.0.crate"), want);
        assert_eq!(map("crates/serde/1.0.0/download"), want);
        assert_eq!(map("crates/se/rd/serde/serde-1.0.0.crate"), want);
        assert_eq!(map("crates/SE/rd/serde/serde-1.0.0.crate"), want);
        assert_eq!(
            map("crates/Inflector/Inflector-0.11.4.crate").as_deref(),
            Some("crates/in/fl/Inflector/Inflector-0.11.4.crate")
        );
        assert_eq!(
            map("crates/1/a/a-1.0.0.crate").as_deref(),
            Some("crates/1/a/a-1.0.0.crate")
        );
        assert_eq!(
            map("crates/3/a/abc/abc-0.1.0.crate").as_deref(),
            Some("crates/3/a/abc/abc-0.1.0.crate")
        );
        assert_eq!(map("dist/serde/1.0.0/download"), None);
    }

    #[test]
    fn malformed_crate_requests_are_not_found() {
        for bad in [
            "crates/serde",
            "crates/serde/serde-1.0.0.tar",
            "crates/serde/other-1.0.0.crate",
            "crates/serde/serde-.crate",
            "crates/xx/yy/serde/serde-1.0.0.crate",
            "crates/serde/1..0/download",
            "crates/-x/-x-1.crate",
            "crates/a/b/c/d/e",
            "crates/3/\u{e9}a/\u{e9}a-1.0.0.crate",
            "crates/\u{e9}a/\u{e9}a-1.0.0.crate",
            "crates/\u{e9}a/1.0.0/download",
            "crates/a\u{e9}/b\u{e9}/a\u{e9}b\u{e9}/a\u{e9}b\u{e9}-1.0.0.crate",
            "crates/ab/\u{e9}/ab\u{e9}/ab\u{e9}-1.0.0.crate",
            "crates/1/a/a-1.0.0\u{e9}.crate",
            "crates/1password/1password-1.0.0.crate",
        ] {
            assert_eq!(map(bad).as_deref(), Some(""), "{bad}");
        }
    }

    #[test]
    fn config_json_keeps_other_keys_and_points_dl_and_api_here() {
        let body = config_json(
            Some(br#"{"dl":"https://static.crates.io/crates","api":"https://crates.io","auth-required":false}"#),
            "http://h:1",
            false,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["dl"], "http://h:1/crates/{crate}/{crate}-{version}.crate");
        assert_eq!(v["api"], "http://h:1");
        assert_eq!(v["auth-required"], false);
        let v: serde_json::Value =
            serde_json::from_slice(&config_json(Some(b"junk"), "b", false)).unwrap();
        assert_eq!(v["api"], "b");
        assert!(v.get("auth-required").is_none());
        let v: serde_json::Value =
            serde_json::from_slice(&config_json(Some(b"{}"), "b", true)).unwrap();
        assert_eq!(v["auth-required"], true);
    }

    #[test]
    fn host_header_is_checked_before_use() {
        assert!(crate::serve::is_plausible_host("127.0.0.1:8000"));
        assert!(crate::serve::is_plausible_host("[::1]:80"));
        assert!(!crate::serve::is_plausible_host("a\"b"));
        assert!(!crate::serve::is_plausible_host("a/b"));
        assert!(!crate::serve::is_plausible_host(""));
    }
}
