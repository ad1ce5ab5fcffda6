//! The pull-through cache of `mirror serve --upstream-…`: when the machine
//! is online, a request for a file the tree lacks is fetched from the
//! ecosystem's upstream, verified like a download, stored in the tree's
//! own layout and then served from disk, as flexo (pacman) and caching
//! registry proxies do.
//!
//! # Two kinds of files
//!
//! - **Immutable files** (`.crate` files, Arch packages, Hex tarballs,
//!   toolchain component files, archived `rustup-init`s): a file present
//!   on disk is a *hit* and is served without any upstream request. A
//!   missing one is a *miss*: its expected SHA-256 is taken from the
//!   ecosystem's metadata (refreshed first when needed), then the download
//!   engine's `fetch::fetch_one` streams it into `<dest>.partial` (never
//!   served), checks size and digest, and renames it into place. Only then
//!   is it served.
//! - **Metadata** (sparse index files, Arch databases, Hex `names`,
//!   `versions` and `packages/<name>`, channel manifests, rustup's
//!   `release-stable.toml` and `dist/<triple>/rustup-init`): a copy checked
//!   less than [`UpstreamOptions::ttl`] ago is a hit. An older one is
//!   revalidated with a conditional GET (`If-None-Match` /
//!   `If-Modified-Since` from the validators stored with it): `304` keeps
//!   it, a new body is verified (each ecosystem says how, possibly with
//!   companion files such as a manifest's `.asc`) and written with
//!   [`store::write_atomic`]. When upstream is down, answers an error, or
//!   sends bytes that do not verify, the last good copy is served (and not
//!   retried before the TTL passes again); without one the answer is `502`
//!   naming the URL and what went wrong.
//!
//! When a copy was last checked is kept in memory, its validators on disk:
//! after a restart each metadata file is revalidated once (a cheap `304`
//! when unchanged), or served from the last good copy if upstream is down.
//!
//! A metadata file upstream answers `404` for (with no copy held) is
//! answered `404` without asking again until the TTL passes, and a lookup
//! in a copy checked less than [`RECHECK_FLOOR`] ago is not retried
//! upstream, so requests for things that do not exist cost at most one
//! upstream request per TTL or floor. That memory is bounded
//! ([`limits::NotFound`]: entries, message size, age), and each client
//! address has a budget of upstream requests ([`limits::MissBudget`]: a
//! token bucket; past it, `429` with `Retry-After`), so no client can
//! make the cache grow or spend upstream's patience for the others.
//!
//! # Paths
//!
//! Every request segment that becomes a directory, a file name or a part
//! of an upstream URL is held to its ecosystem's grammar ([`grammar`]:
//! Arch repositories, architectures and file names, crate names and
//! versions, Hex names and versions, dist dates, channels and file names,
//! rustup versions and triples) before any upstream request or write; a
//! segment outside it is `400` naming what was expected.
//!
//! # Trees shared with offline commands
//!
//! Metadata that `mirror arch --package` or `mirror hex --package`
//! published for a partial mirror (marked [`store::PARTIAL_MARK`]: an Arch
//! repository's regenerated database, a Hex selection's `names` and
//! `versions`) is served as it is and never fetched or replaced. Files
//! are written through temporaries unique to each write, and the engine's
//! `<dest>.partial` is locked by the one transfer writing it, so the
//! cache and an `update` on one tree never write over each other.
//!
//! Bytes that do not verify are never stored and never served: the client
//! gets `502 Bad Gateway` with the checksum mismatch (URL, expected, actual)
//! in the body. An upstream `404` is a `404`.
//!
//! # Single flight
//!
//! Concurrent requests for one file share one upstream transfer: the first
//! starts it as a task of its own (so it finishes and is stored even if
//! that client goes away); later ones join the same task. A client whose
//! miss is done within [`UpstreamOptions::follow_after`] (default 5 s) is
//! served the published file from disk, so a corrupt upstream answer is a
//! clean `502` with the reason. One still waiting then, if it asked with
//! a plain GET, *follows* the download ([`stream`]): it gets the bytes
//! already received and the rest as they arrive, as flexo does, so a large
//! miss does not run into the client's idle timeout; the end of the body
//! is held back until the file verified, and a transfer that fails to
//! verify is cut short instead. `HEAD` and `Range` requests wait. Every
//! client of a flight gets the same verified bytes.
//!
//! # On disk
//!
//! ```text
//! crates/<prefix>/<name>/<name>-<version>.crate   as `mirror crate` lays them out
//! archlinux/<repo>/os/<arch>/<file>                as `mirror arch` lays them out
//! hex/{names,versions,packages/<n>,tarballs/<n>-<v>.tar}   as `mirror hex` does
//! dist/[<date>/]channel-rust-*.toml(.asc,.sha256), dist/<date>/<file>(.sha256)
//! rustup/release-stable.toml, rustup/{archive/<ver>,dist}/<triple>/rustup-init(.sha256)
//! .mirror/cache/crates-index/<prefix>/<name>       sparse index files, byte-for-byte
//! .mirror/cache/validators/<key>.json              ETag / Last-Modified of each metadata file
//! ```
//!
//! The sparse index files are kept apart from the git index that
//! `mirror crate` maintains (a commit per miss would be costly); the
//! `/index/` route prefers the cached upstream copy and falls back to the
//! git `master` tree.
//!
//! # Counters
//!
//! [`CacheStats`] (in `/stats`): hits, misses, requests that joined a
//! transfer in flight, metadata revalidated with `304`, stale copies served,
//! upstream answers rejected, upstream errors, and bytes received.

pub mod arch;
pub mod crates;
pub mod dist;
pub mod grammar;
pub mod hex;
pub mod limits;
pub mod rustup;
pub mod stream;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clru::CLruCache;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::Serialize;
use tokio::sync::watch;

use crate::fetch::{self, Conditional, FetchError, FetchItem, Validators};
use crate::http::HttpOptions;
use crate::limit;
use crate::report::NullReporter;
use crate::store;

/// The default `--cache-ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The default [`UpstreamOptions::follow_after`].
pub const DEFAULT_FOLLOW_AFTER: Duration = Duration::from_secs(5);

/// A lookup that misses in a metadata copy checked less than this long
/// ago does not revalidate it again (see the module docs).
pub const RECHECK_FLOOR: Duration = Duration::from_secs(10);

/// Where the cache keeps its own files, below the root.
pub const CACHE_DIR: &str = ".mirror/cache";

/// The upstreams `mirror serve` pulls from (`--upstream-…`); all `None`:
/// nothing is pulled.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// crates.io-like registry (`--upstream-crates`, `--upstream-crates-dl`).
    pub crates: Option<CratesUpstream>,
    /// Arch Linux mirrors, tried in order (`--upstream-arch`): URL
    /// templates with `$repo` and `$arch`.
    pub arch: Vec<String>,
    /// A Hex repository (`--upstream-hex`).
    pub hex: Option<HexUpstream>,
    /// A Rust dist server (`--upstream-dist`).
    pub dist: Option<DistUpstream>,
    /// rustup's own server, without a trailing `/`
    /// (`--upstream-rustup`, `https://static.rust-lang.org/rustup`).
    pub rustup: Option<String>,
    /// How long a metadata copy is served without asking upstream.
    pub ttl: Duration,
    /// How long a client of a miss waits for the verified file before it
    /// is sent the bytes as they arrive instead ([`stream`]).
    pub follow_after: Duration,
    /// Client and retry settings.
    pub http: HttpOptions,
    /// Bounds on the "not found" memory and on each client's upstream
    /// requests ([`limits`]).
    pub limits: limits::Limits,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            crates: None,
            arch: Vec::new(),
            hex: None,
            dist: None,
            rustup: None,
            ttl: DEFAULT_TTL,
            follow_after: DEFAULT_FOLLOW_AFTER,
            http: HttpOptions::default(),
            limits: limits::Limits::default(),
        }
    }
}

impl UpstreamOptions {
    /// The tree directories an upstream fills (`crates`, `archlinux` …).
    pub fn trees(&self) -> Vec<&'static str> {
        [
            (self.dist.is_some(), dist::DIST_DIR),
            (self.rustup.is_some(), rustup::RUSTUP_DIR),
            (
                self.crates.is_some(),
                crate::eco::crates::layout::CRATES_DIR,
            ),
            (self.hex.is_some(), hex::HEX_DIR),
            (!self.arch.is_empty(), arch::ARCH_DIR),
        ]
        .into_iter()
        .filter_map(|(on, dir)| on.then_some(dir))
        .collect()
    }

    /// Whether any upstream is configured.
    pub fn any(&self) -> bool {
        self.crates.is_some()
            || !self.arch.is_empty()
            || self.hex.is_some()
            || self.dist.is_some()
            || self.rustup.is_some()
    }
}

/// A sparse registry upstream.
#[derive(Debug, Clone)]
pub struct CratesUpstream {
    /// Base URL of the sparse index, ending in `/`
    /// (`https://index.crates.io/`).
    pub index: String,
    /// Download template with `{crate}`, `{version}`, `{prefix}`,
    /// `{lowerprefix}`, `{sha256-checksum}`.
    pub dl: String,
}

/// A Hex repository upstream.
#[derive(Debug, Clone)]
pub struct HexUpstream {
    /// Its URL, without a trailing `/` (`https://repo.hex.pm`).
    pub url: String,
    /// The key its resources are signed with.
    pub key: crate::eco::hex::registry::PublicKey,
    /// The repository name every payload must carry (`hexpm`).
    pub repo: String,
}

/// A Rust dist server upstream.
#[derive(Debug, Clone)]
pub struct DistUpstream {
    /// Its dist root, without a trailing `/`
    /// (`https://static.rust-lang.org/dist`).
    pub url: String,
    /// The keys manifests must be signed with.
    pub keyring: Arc<crate::verify::openpgp::Keyring>,
}

/// Why the cache could not provide a file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// Upstream has no such file: `404`.
    #[error("{0}")]
    NotFound(String),
    /// Upstream could not be reached or answered an error: `502`.
    #[error("{0}")]
    Upstream(String),
    /// Upstream sent bytes that did not verify: `502`.
    #[error("{0}")]
    Rejected(String),
    /// A local file could not be read or written: `500`.
    #[error("{0}")]
    Local(String),
    /// A path segment outside its ecosystem's grammar ([`grammar`]):
    /// `400`, before any upstream request or write.
    #[error("{0}")]
    BadRequest(String),
    /// The client used up its share of upstream requests ([`limits`]):
    /// `429` with `Retry-After`.
    #[error("{message}")]
    Limited {
        /// Why, in words.
        message: String,
        /// When a token is there again.
        retry_after: Duration,
    },
}

impl CacheError {
    /// The answer to the client: the status and the message.
    pub fn response(&self) -> Response {
        let status = match self {
            CacheError::NotFound(_) => StatusCode::NOT_FOUND,
            CacheError::Upstream(_) | CacheError::Rejected(_) => StatusCode::BAD_GATEWAY,
            CacheError::Local(_) => StatusCode::INTERNAL_SERVER_ERROR,
            CacheError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CacheError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
        };
        // What clients cause (and may repeat at will) is not logged.
        if matches!(
            self,
            CacheError::Upstream(_) | CacheError::Rejected(_) | CacheError::Local(_)
        ) {
            crate::output::log(format_args!("mirror serve: {self}"));
        }
        let text = format!(
            "{} {}\n{self}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let mut res = (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            text,
        )
            .into_response();
        if let CacheError::Limited { retry_after, .. } = self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        res
    }

    fn from_fetch(e: FetchError) -> CacheError {
        match &e {
            FetchError::Status { status, .. } if *status == reqwest::StatusCode::NOT_FOUND => {
                CacheError::NotFound(e.to_string())
            }
            FetchError::Digest(_)
            | FetchError::Size { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Signature { .. } => {
                CacheError::Rejected(format!("refusing upstream bytes: {e}"))
            }
            FetchError::Io { .. } => CacheError::Local(e.to_string()),
            FetchError::Status { .. } | FetchError::Network { .. } => {
                CacheError::Upstream(format!("upstream failed: {e}"))
            }
        }
    }
}

/// The counters in `/stats`.
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    joined: AtomicU64,
    revalidated: AtomicU64,
    stale: AtomicU64,
    rejected: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_bytes: AtomicU64,
    limited: AtomicU64,
    parses: AtomicU64,
}

/// A snapshot of the cache counters (`/stats` → `cache`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Requests answered from the tree without asking upstream.
    pub hits: u64,
    /// Requests that started an upstream transfer or revalidation.
    pub misses: u64,
    /// Requests that waited for a transfer another request started.
    pub joined: u64,
    /// Metadata revalidations upstream answered with `304`.
    pub revalidated: u64,
    /// Metadata served from the last good copy because upstream failed.
    pub stale: u64,
    /// Upstream answers refused because they did not verify.
    pub rejected: u64,
    /// Upstream requests that failed (network, 5xx, …; not 404).
    pub upstream_errors: u64,
    /// Bytes received from upstream.
    pub upstream_bytes: u64,
    /// Requests refused with `429` because their client had used up its
    /// budget of upstream requests.
    pub limited: u64,
    /// Metadata files read and parsed (concurrent lookups of one file
    /// share one parse).
    pub parses: u64,
    /// Entries of the "not found" memory now.
    pub not_found_entries: u64,
}

type Flight = Shared<BoxFuture<'static, Result<(), CacheError>>>;

/// What a request for a file the cache covers found.
pub enum Ready {
    /// The tree has the file (or no upstream could provide it and the
    /// tree answers as usual).
    Tree,
    /// A download is in flight.
    Pending(stream::Following),
}

tokio::task_local! {
    /// The progress channel of the flight a task runs.
    static PROGRESS: Arc<stream::FlightProgress>;
    /// The address of the client a request handler serves: the flights
    /// it starts are charged to it ([`limits::MissBudget`]).
    static CLIENT: Option<std::net::IpAddr>;
}

/// Run `f` (a request handler's use of the cache) for the client at
/// `addr`: the upstream requests it starts are charged to that client.
pub async fn for_client<T>(addr: Option<std::net::IpAddr>, f: impl Future<Output = T>) -> T {
    CLIENT.scope(addr, f).await
}

/// One metadata file: where it lives, where it comes from and how its
/// bytes are checked.
pub(crate) struct Meta {
    /// Key for validators, freshness and single flight (a relative path).
    pub key: String,
    /// The file in the tree.
    pub dest: PathBuf,
    /// Upstream URLs, tried in order.
    pub urls: Vec<String>,
    /// Suffixes of files fetched with a new body from the same mirror
    /// (`.asc`: `<url>.asc`), handed to `verify` and stored beside `dest`.
    pub companions: Vec<&'static str>,
    /// Suffixes of files passed on as upstream has them, unchecked, when
    /// it has them (a `404` removes the copy held): an Arch database's
    /// `.sig`, which pacman checks with its own keyring.
    pub optional: Vec<&'static str>,
    /// The most bytes a body may have (see [`crate::limit`]).
    pub limit: crate::limit::Limit,
    /// Checks a new body.
    pub verify: Verify,
    /// The directory whose [`store::PARTIAL_MARK`] says the file (and its
    /// companions) belongs to a partial mirror: then it is served as it
    /// is, never fetched or replaced.
    pub partial_dir: Option<PathBuf>,
}

impl Meta {
    /// Whether an offline command made this file for a partial mirror.
    fn is_partials(&self) -> bool {
        self.partial_dir
            .as_deref()
            .is_some_and(store::is_marked_partial)
    }
}

/// Files written beside a metadata file, as (suffix, bytes).
pub(crate) type Sidecars = Vec<(&'static str, Vec<u8>)>;

/// How a metadata body is checked, given its companions (in the order of
/// [`Meta::companions`]): the error says what is wrong with it; success
/// gives sidecars derived from it (a `.sha256`), written with it.
pub(crate) type Verify = Arc<dyn Fn(&[u8], &[Vec<u8>]) -> Result<Sidecars, String> + Send + Sync>;

/// A [`Verify`] for a body that needs no companions and makes no sidecars.
pub(crate) fn check_body(
    f: impl Fn(&[u8]) -> Result<(), String> + Send + Sync + 'static,
) -> Verify {
    Arc::new(move |body, _| f(body).map(|()| Vec::new()))
}

/// The cache: one per server.
pub struct Cache {
    root: PathBuf,
    opts: UpstreamOptions,
    client: reqwest::Client,
    flights: Mutex<HashMap<String, (Flight, watch::Receiver<stream::Progress>)>>,
    /// When each metadata key was last checked upstream (at most
    /// [`CHECKED_ENTRIES`]; one forgotten is revalidated once more).
    checked: Mutex<CLruCache<String, Instant>>,
    /// Metadata upstream answered 404 for (no copy held): when, and the
    /// message; answered without asking again until the TTL passes.
    missing: limits::NotFound,
    /// Each client's budget of upstream requests.
    budget: limits::MissBudget,
    /// Parsed metadata kept by [`Cache::find_in`], by file, with the
    /// file's size and mtime when parsed (at most [`KEPT_ENTRIES`]).
    kept: Mutex<CLruCache<PathBuf, (FileStamp, AnyParsed)>>,
    /// The parses running on the blocking pool, one per file (as it is
    /// now, and what it is parsed into): lookups of a file being parsed
    /// wait for that parse. An entry lives as long as its parse.
    parsing: Mutex<HashMap<ParseKey, ParseFlight>>,
    counters: Counters,
}

/// How many metadata keys [`Cache`] remembers the last check of.
const CHECKED_ENTRIES: usize = 65_536;

/// How many parsed metadata files (Arch databases, channel manifests, a
/// few MiB each) [`Cache::find_in`] keeps.
const KEPT_ENTRIES: usize = 16;

fn lru<K: Eq + std::hash::Hash, V>(n: usize) -> Mutex<CLruCache<K, V>> {
    Mutex::new(CLruCache::new(
        std::num::NonZeroUsize::new(n).unwrap_or(std::num::NonZeroUsize::MIN),
    ))
}

/// A file's size and mtime.
type FileStamp = (u64, Option<std::time::SystemTime>);

/// What some `parse` of [`Cache::find_in`] made.
type AnyParsed = Arc<dyn std::any::Any + Send + Sync>;

/// A file, its stamp and the type it is parsed into.
type ParseKey = (PathBuf, FileStamp, std::any::TypeId);

/// A parse running on the blocking pool.
type ParseFlight = Shared<BoxFuture<'static, Result<AnyParsed, CacheError>>>;

/// Whether [`Cache::find_in`] keeps what it parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Keep it while the file is unchanged: for large files read often
    /// (Arch databases, channel manifests).
    Parsed,
    /// Parse each time: for small files of which there are many (one
    /// index file per crate).
    Nothing,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("root", &self.root)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `root` pulling from `opts`.
    pub fn new(root: &Path, opts: UpstreamOptions) -> anyhow::Result<Cache> {
        Ok(Cache {
            root: root.to_path_buf(),
            client: crate::http::client(&opts.http)?,
            flights: Mutex::new(HashMap::new()),
            checked: lru(CHECKED_ENTRIES),
            missing: limits::NotFound::new(opts.limits.not_found_entries, opts.ttl),
            budget: limits::MissBudget::new(&opts.limits),
            kept: lru(KEPT_ENTRIES),
            parsing: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            opts,
        })
    }

    /// The options.
    pub fn options(&self) -> &UpstreamOptions {
        &self.opts
    }

    /// The counters now.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            joined: get(&c.joined),
            revalidated: get(&c.revalidated),
            stale: get(&c.stale),
            rejected: get(&c.rejected),
            upstream_errors: get(&c.upstream_errors),
            upstream_bytes: get(&c.upstream_bytes),
            limited: get(&c.limited),
            parses: get(&c.parses),
            not_found_entries: self.missing.len() as u64,
        }
    }

    fn count(&self, which: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        let counter = which(&self.counters);
        counter.fetch_add(n, Ordering::Relaxed);
        // The request's outcome, for the access log.
        let c = &self.counters;
        let outcome = if std::ptr::eq(counter, &c.hits) {
            super::access_log::CacheOutcome::Hit
        } else if std::ptr::eq(counter, &c.misses) {
            super::access_log::CacheOutcome::Miss
        } else if std::ptr::eq(counter, &c.joined) {
            super::access_log::CacheOutcome::Join
        } else {
            return;
        };
        super::access_log::note_outcome(outcome);
    }

    /// Make sure the file the request maps to (on-disk `segments`) is in
    /// the tree when an upstream can provide it. Paths no upstream covers
    /// are left alone (`Ok(None)`). With `may_follow` (a plain GET), a
    /// download still running after [`UpstreamOptions::follow_after`] is
    /// returned to be followed ([`stream`]); otherwise this waits for it.
    pub async fn prepare(
        self: &Arc<Self>,
        segments: &[String],
        may_follow: bool,
    ) -> Result<Option<stream::Following>, CacheError> {
        let ready = match segments.first().map(String::as_str) {
            Some(crate::eco::crates::layout::CRATES_DIR) if self.opts.crates.is_some() => {
                crates::prepare(self, segments).await?
            }
            Some(arch::ARCH_DIR) if !self.opts.arch.is_empty() => {
                arch::prepare(self, segments).await?
            }
            Some(hex::HEX_DIR) if self.opts.hex.is_some() => hex::prepare(self, segments).await?,
            Some(dist::DIST_DIR) if self.opts.dist.is_some() => {
                dist::prepare(self, segments).await?
            }
            Some(rustup::RUSTUP_DIR) if self.opts.rustup.is_some() => {
                rustup::prepare(self, segments).await?
            }
            _ => Ready::Tree,
        };
        let Ready::Pending(mut pending) = ready else {
            return Ok(None);
        };
        if !may_follow {
            return pending.flight.await.map(|()| None);
        }
        let deadline = tokio::time::sleep(self.opts.follow_after);
        tokio::pin!(deadline);
        let mut late = false;
        loop {
            if late && stream::Following::ready(&pending.progress.borrow()) {
                return Ok(Some(pending));
            }
            tokio::select! {
                r = pending.flight.clone() => return r.map(|()| None),
                _ = &mut deadline, if !late => late = true,
                changed = pending.progress.changed(), if late => {
                    if changed.is_err() {
                        return pending.flight.await.map(|()| None);
                    }
                }
            }
        }
    }

    /// Run `work` once for `key` however many requests ask at the same
    /// time: the first spawns it, the others join the same flight. `done`
    /// is checked under the lock, so a request arriving just after a
    /// flight ended sees its result instead of starting another (`None`).
    fn join_or_start<F>(
        self: &Arc<Self>,
        key: &str,
        done: impl Fn() -> bool,
        work: F,
    ) -> Result<Option<stream::Following>, CacheError>
    where
        F: Future<Output = Result<(), CacheError>> + Send + 'static,
    {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((flight, progress)) = flights.get(key) {
            self.count(|c| &c.joined, 1);
            return Ok(Some(stream::Following {
                flight: flight.clone(),
                progress: progress.clone(),
            }));
        }
        if done() {
            self.count(|c| &c.hits, 1);
            return Ok(None);
        }
        // A request handler's flight is charged to its client; the
        // lookups a flight makes on its own are not charged again.
        if let Ok(client) = CLIENT.try_with(|c| *c) {
            if let Err(retry_after) = self.budget.take(client, Instant::now()) {
                self.count(|c| &c.limited, 1);
                return Err(CacheError::Limited {
                    message: format!(
                        "too many upstream requests from {}: try again in {:.1} s",
                        client.map_or_else(|| "this client".to_string(), |ip| ip.to_string()),
                        retry_after.as_secs_f64()
                    ),
                    retry_after,
                });
            }
        }
        self.count(|c| &c.misses, 1);
        let this = Arc::clone(self);
        let owned = key.to_string();
        let (progress_tx, progress) = stream::FlightProgress::new();
        let task = tokio::spawn(PROGRESS.scope(Arc::new(progress_tx), async move {
            let r = work.await;
            this.flights
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&owned);
            r
        }));
        let flight = async move {
            task.await
                .unwrap_or_else(|e| Err(CacheError::Local(format!("the cache task failed: {e}"))))
        }
        .boxed()
        .shared();
        flights.insert(key.to_string(), (flight.clone(), progress.clone()));
        Ok(Some(stream::Following { flight, progress }))
    }

    /// [`Cache::join_or_start`], waiting for the flight.
    async fn single_flight<F>(
        self: &Arc<Self>,
        key: &str,
        done: impl Fn() -> bool,
        work: F,
    ) -> Result<(), CacheError>
    where
        F: Future<Output = Result<(), CacheError>> + Send + 'static,
    {
        match self.join_or_start(key, done, work)? {
            Some(following) => following.flight.await,
            None => Ok(()),
        }
    }

    /// An immutable file: a hit when `dest` exists, else `work` (which
    /// publishes it) in a single flight, left for the caller to wait for
    /// or follow.
    fn immutable<F>(self: &Arc<Self>, dest: &Path, work: F) -> Result<Ready, CacheError>
    where
        F: Future<Output = Result<(), CacheError>> + Send + 'static,
    {
        if dest.is_file() {
            self.count(|c| &c.hits, 1);
            return Ok(Ready::Tree);
        }
        let key = self.key_of(dest);
        let dest = dest.to_path_buf();
        Ok(match self.join_or_start(&key, || dest.is_file(), work)? {
            Some(following) => Ready::Pending(following),
            None => Ready::Tree,
        })
    }

    /// Download `item` (size and digest checked) with the engine and
    /// publish it; count the bytes.
    async fn download(&self, item: FetchItem) -> Result<(), CacheError> {
        // Inside a flight, announce the download so clients can follow it.
        let progress = PROGRESS.try_with(Arc::clone).ok();
        if let Some(p) = &progress {
            p.start(
                fetch::partial_path(&item.dest),
                item.dest.clone(),
                item.sha256,
                item.size,
            );
        }
        let reporter: &dyn crate::report::Reporter = match &progress {
            Some(p) => p.as_ref(),
            None => &NullReporter,
        };
        match fetch::fetch_one(&self.client, &self.opts.http, &item, reporter).await {
            Ok(bytes) => {
                self.count(|c| &c.upstream_bytes, bytes);
                Ok(())
            }
            Err(e) => {
                let e = CacheError::from_fetch(e);
                match &e {
                    CacheError::Rejected(_) => self.count(|c| &c.rejected, 1),
                    CacheError::Upstream(_) => self.count(|c| &c.upstream_errors, 1),
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// [`Cache::download`] from the first of `items` (the same file on
    /// several mirrors) that succeeds; when none does, every failure is
    /// in the error (a 404 only when all mirrors said so).
    async fn download_first(
        &self,
        items: impl IntoIterator<Item = FetchItem>,
    ) -> Result<(), CacheError> {
        let mut errors = Vec::new();
        for item in items {
            match self.download(item).await {
                Ok(()) => return Ok(()),
                Err(e @ CacheError::Local(_)) => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        Err(
            if errors.iter().all(|e| matches!(e, CacheError::NotFound(_))) {
                CacheError::NotFound(text)
            } else if errors.iter().any(|e| matches!(e, CacheError::Rejected(_))) {
                CacheError::Rejected(text)
            } else {
                CacheError::Upstream(text)
            },
        )
    }

    /// A metadata file, revalidated when older than the TTL (`force`:
    /// whatever its age). `Ok` means `meta.dest` holds the best copy there
    /// is (possibly stale, when upstream failed).
    pub(crate) async fn metadata(
        self: &Arc<Self>,
        meta: Meta,
        force: bool,
    ) -> Result<(), CacheError> {
        let key = meta.key.clone();
        let dest = meta.dest.clone();
        if let Some(message) = self.known_missing(&key) {
            self.count(|c| &c.hits, 1);
            return Err(CacheError::NotFound(message));
        }
        if meta.is_partials() {
            // What `mirror` published for a partial mirror stays as it is.
            self.count(|c| &c.hits, 1);
            return if dest.is_file() {
                Ok(())
            } else {
                Err(CacheError::NotFound(format!(
                    "{key}: not in this partial mirror (not fetched from upstream)"
                )))
            };
        }
        if !force && self.is_fresh(&key) && dest.is_file() {
            self.count(|c| &c.hits, 1);
            return Ok(());
        }
        let this = Arc::clone(self);
        let started = Instant::now();
        let done = {
            let this = Arc::clone(self);
            let key = key.clone();
            move || this.checked_since(&key, started) && dest.is_file()
        };
        self.single_flight(&key, done, async move { this.revalidate(meta).await })
            .await
    }

    /// Look something up in a metadata file: in the copy held (made
    /// current within the TTL) and, when it is not there, once more after a
    /// forced revalidation, since upstream may have published it since
    /// (not when the copy was checked less than [`RECHECK_FLOOR`] ago, so
    /// requests for things that do not exist cannot make every request an
    /// upstream one). `parse` reads the file (given the bytes and the URL,
    /// for messages); with [`Keep::Parsed`] its result is kept for the next
    /// lookup while the file is unchanged (an Arch database of 15k packages
    /// takes ~0.3 s to parse, for every package). `find` looks in it.
    ///
    /// Reading and parsing run on the blocking pool, not on the server's
    /// event loop, once however many lookups of the file run at a time.
    pub(crate) async fn find_in<I, T, P>(
        self: &Arc<Self>,
        meta: impl Fn() -> Meta,
        keep: Keep,
        parse: P,
        find: impl Fn(&I) -> Option<T>,
    ) -> Result<Option<T>, CacheError>
    where
        I: Send + Sync + 'static,
        P: Fn(&[u8], &str) -> Result<I, String> + Send + Sync + 'static,
    {
        let parse = Arc::new(parse);
        for force in [false, true] {
            let m = meta();
            if force && self.checked_within(&m.key, RECHECK_FLOOR) {
                // Just asked: another request would say the same.
                break;
            }
            let dest = m.dest.clone();
            let url = m.urls.first().cloned().unwrap_or_default();
            self.metadata(m, force).await?;
            let parsed = self.parsed(&dest, &url, keep, Arc::clone(&parse)).await?;
            if let Some(found) = find(&parsed) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `parse` of the file `dest`, or what it gave for the same file
    /// (size and mtime) before. The file is read and parsed on the
    /// blocking pool; a lookup of a file already being parsed waits for
    /// that parse instead of starting another.
    async fn parsed<I, P>(
        self: &Arc<Self>,
        dest: &Path,
        url: &str,
        keep: Keep,
        parse: Arc<P>,
    ) -> Result<Arc<I>, CacheError>
    where
        I: Send + Sync + 'static,
        P: Fn(&[u8], &str) -> Result<I, String> + Send + Sync + 'static,
    {
        let local =
            |e: std::io::Error| CacheError::Local(format!("cannot read {}: {e}", dest.display()));
        let stamp = std::fs::metadata(dest)
            .map(|m| (m.len(), m.modified().ok()))
            .map_err(local)?;
        if keep == Keep::Parsed {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, any)) = kept.get(dest) {
                if *at == stamp {
                    if let Ok(parsed) = Arc::clone(any).downcast::<I>() {
                        return Ok(parsed);
                    }
                }
            }
        }
        let key: ParseKey = (dest.to_path_buf(), stamp, std::any::TypeId::of::<I>());
        let flight = {
            let mut parsing = self.parsing.lock().unwrap_or_else(|e| e.into_inner());
            match parsing.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    // Counted here, on the request's task.
                    self.count(|c| &c.parses, 1);
                    let flight = self.start_parse(key.clone(), url, keep, parse);
                    parsing.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight
            .await?
            .downcast::<I>()
            .map_err(|_| CacheError::Local(format!("{}: parsed into another type", dest.display())))
    }

    /// The flight of [`Cache::parsed`]: a task (finishing even when no
    /// lookup waits for it any more) that reads and parses the file on the
    /// blocking pool, keeps the result when asked and then leaves
    /// [`Cache::parsing`]. Called with that map locked, so the entry is
    /// in it before the task removes it.
    fn start_parse<I, P>(
        self: &Arc<Self>,
        key: ParseKey,
        url: &str,
        keep: Keep,
        parse: Arc<P>,
    ) -> ParseFlight
    where
        I: Send + Sync + 'static,
        P: Fn(&[u8], &str) -> Result<I, String> + Send + Sync + 'static,
    {
        let this = Arc::clone(self);
        let url = url.to_string();
        let path = key.0.clone();
        let task = tokio::spawn(async move {
            let read = path.clone();
            let r = tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&read).map_err(|e| {
                    CacheError::Local(format!("cannot read {}: {e}", read.display()))
                })?;
                let parsed: AnyParsed = Arc::new(parse(&bytes, &url).map_err(CacheError::Local)?);
                Ok(parsed)
            })
            .await
            .unwrap_or_else(|e| Err(CacheError::Local(format!("the parse task failed: {e}"))));
            if let (Keep::Parsed, Ok(any)) = (keep, &r) {
                this.kept
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put(path, (key.1, Arc::clone(any)));
            }
            this.parsing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            r
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(CacheError::Local(format!("the parse task failed: {e}"))))
        }
        .boxed()
        .shared()
    }

    async fn revalidate(&self, meta: Meta) -> Result<(), CacheError> {
        let held = meta.dest.is_file();
        let validators_path = self.validators_path(&meta.key);
        let validators: Validators = if held {
            std::fs::read(&validators_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        } else {
            Validators::default()
        };
        let mut errors = Vec::new();
        let mut not_found = None;
        for url in &meta.urls {
            match fetch::get_conditional(
                &self.client,
                &self.opts.http,
                url,
                &validators,
                meta.limit,
            )
            .await
            {
                Ok(Conditional::NotModified) if held => {
                    self.count(|c| &c.revalidated, 1);
                    self.mark_checked(&meta.key);
                    return Ok(());
                }
                Ok(Conditional::NotModified) => {
                    errors.push(format!(
                        "{url}: 304 Not Modified to an unconditional request"
                    ));
                    self.count(|c| &c.upstream_errors, 1);
                }
                Ok(Conditional::Fetched { bytes, validators }) => {
                    self.count(|c| &c.upstream_bytes, bytes.len() as u64);
                    let companions = match self.companions(url, &meta.companions).await {
                        Ok(c) => c,
                        Err(e) => {
                            self.count(|c| &c.upstream_errors, 1);
                            errors.push(e.to_string());
                            continue;
                        }
                    };
                    // Parsing and checking signatures take long: not on
                    // the event loop.
                    let verify = Arc::clone(&meta.verify);
                    let (bytes, companions, verified) = tokio::task::spawn_blocking(move || {
                        let r = verify(&bytes, &companions);
                        (bytes, companions, r)
                    })
                    .await
                    .map_err(|e| CacheError::Local(format!("the check task failed: {e}")))?;
                    let sidecars = match verified {
                        Ok(s) => s,
                        Err(why) => {
                            self.count(|c| &c.rejected, 1);
                            errors.push(format!("refusing upstream bytes of {url}: {why}"));
                            continue;
                        }
                    };
                    let mut passed_on = Vec::new();
                    let mut gone = Vec::new();
                    for suffix in &meta.optional {
                        match self.companions(url, &[suffix]).await {
                            Ok(mut b) => passed_on.push((*suffix, b.remove(0))),
                            Err(CacheError::NotFound(_)) => gone.push(sibling(&meta.dest, suffix)),
                            Err(e) => {
                                self.count(|c| &c.upstream_errors, 1);
                                errors.push(e.to_string());
                            }
                        }
                    }
                    if passed_on.len() + gone.len() < meta.optional.len() {
                        continue;
                    }
                    if meta.is_partials() {
                        // Made partial while this request went upstream.
                        self.mark_checked(&meta.key);
                        return Ok(());
                    }
                    let files = meta
                        .companions
                        .iter()
                        .copied()
                        .zip(companions)
                        .chain(sidecars)
                        .chain(passed_on)
                        .map(|(suffix, data)| (sibling(&meta.dest, suffix), data))
                        .chain([
                            (meta.dest.clone(), bytes),
                            (
                                validators_path.clone(),
                                serde_json::to_vec(&validators).unwrap_or_default(),
                            ),
                        ])
                        .collect();
                    publish(gone, files).await?;
                    self.mark_checked(&meta.key);
                    return Ok(());
                }
                Err(e) => {
                    let e = CacheError::from_fetch(e);
                    match e {
                        CacheError::NotFound(m) => not_found = Some(m),
                        other => {
                            self.count(|c| &c.upstream_errors, 1);
                            errors.push(other.to_string());
                        }
                    }
                }
            }
        }
        if held {
            // The last good copy; not asked again before the TTL passes.
            self.count(|c| &c.stale, 1);
            crate::output::log(format_args!(
                "mirror serve: serving the cached {} ({})",
                meta.dest.display(),
                errors
                    .iter()
                    .chain(&not_found)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            self.mark_checked(&meta.key);
            return Ok(());
        }
        match (not_found, errors.is_empty()) {
            (Some(m), true) => {
                self.missing.insert(&meta.key, &m);
                Err(CacheError::NotFound(m))
            }
            _ if errors.iter().any(|e| e.starts_with("refusing")) => {
                Err(CacheError::Rejected(errors.join("\n")))
            }
            _ => Err(CacheError::Upstream(errors.join("\n"))),
        }
    }

    /// `<url><suffix>` for each suffix, into memory.
    async fn companions(&self, url: &str, suffixes: &[&str]) -> Result<Vec<Vec<u8>>, CacheError> {
        let mut out = Vec::new();
        for suffix in suffixes {
            let url = format!("{url}{suffix}");
            let bytes = fetch::get_bytes(&self.client, &self.opts.http, &url, limit::COMPANION)
                .await
                .map_err(CacheError::from_fetch)?;
            self.count(|c| &c.upstream_bytes, bytes.len() as u64);
            out.push(bytes);
        }
        Ok(out)
    }

    /// The 404 message of `key`, when upstream said so within the TTL.
    fn known_missing(&self, key: &str) -> Option<String> {
        self.missing.get(key)
    }

    /// Whether `key` was checked upstream less than `d` ago.
    fn checked_within(&self, key: &str, d: Duration) -> bool {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peek(key)
            .is_some_and(|at| at.elapsed() < d)
    }

    fn is_fresh(&self, key: &str) -> bool {
        self.checked_within(key, self.opts.ttl)
    }

    fn checked_since(&self, key: &str, since: Instant) -> bool {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peek(key)
            .is_some_and(|at| *at >= since)
    }

    fn mark_checked(&self, key: &str) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key.to_string(), Instant::now());
    }

    /// `<root>/.mirror/cache/<rel>`.
    pub(crate) fn cache_path(&self, rel: &str) -> PathBuf {
        self.root.join(CACHE_DIR).join(rel)
    }

    fn validators_path(&self, key: &str) -> PathBuf {
        self.cache_path(&format!("validators/{key}.json"))
    }

    /// A file's path relative to the root, as a key.
    fn key_of(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }
}

/// Remove the files in `gone` and write `files` (each durably, renamed
/// into place), on the blocking pool: fsyncs stall the event loop.
async fn publish(gone: Vec<PathBuf>, files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), CacheError> {
    tokio::task::spawn_blocking(move || {
        for path in gone {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(CacheError::Local(format!(
                        "cannot remove {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        for (path, data) in files {
            store::write_atomic(&path, &data)
                .map_err(|e| CacheError::Local(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| CacheError::Local(format!("the write task failed: {e}")))?
}

/// `<path><suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn parsed_files_are_kept_while_unchanged_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(dir.path(), UpstreamOptions::default()).unwrap());
        let file = dir.path().join("db");
        std::fs::write(&file, b"one").unwrap();
        let parses = Arc::new(AtomicUsize::new(0));
        let parse = {
            let parses = Arc::clone(&parses);
            Arc::new(move |b: &[u8], _: &str| {
                parses.fetch_add(1, Ordering::Relaxed);
                Ok(b.len())
            })
        };
        let p = || Arc::clone(&parse);
        for _ in 0..3 {
            let n = cache.parsed(&file, "u", Keep::Parsed, p()).await.unwrap();
            assert_eq!(*n, 3);
        }
        assert_eq!(parses.load(Ordering::Relaxed), 1);
        // Replaced (as write_atomic does): parsed again.
        crate::store::write_atomic(&file, b"three").unwrap();
        assert_eq!(
            *cache.parsed(&file, "u", Keep::Parsed, p()).await.unwrap(),
            5
        );
        assert_eq!(parses.load(Ordering::Relaxed), 2);
        for _ in 0..2 {
            cache.parsed(&file, "u", Keep::Nothing, p()).await.unwrap();
        }
        assert_eq!(parses.load(Ordering::Relaxed), 4);
        assert_eq!(cache.stats().parses, 4);
        // Nothing is left behind in the map of running parses.
        assert!(cache.parsing.lock().unwrap().is_empty());
    }

    /// A metadata file `mirror` published for a partial mirror: served as
    /// it is, without asking upstream.
    fn held(dir: &Path, bytes: &[u8]) -> impl Fn() -> Meta {
        std::fs::write(dir.join(store::PARTIAL_MARK), b"").unwrap();
        let dest = dir.join("core.db");
        std::fs::write(&dest, bytes).unwrap();
        let dir = dir.to_path_buf();
        move || Meta {
            key: "core.db".to_string(),
            dest: dest.clone(),
            urls: vec!["http://127.0.0.1:9/core.db".to_string()],
            companions: Vec::new(),
            optional: Vec::new(),
            limit: limit::COMPANION,
            verify: check_body(|_| Ok(())),
            partial_dir: Some(dir.clone()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_in_one_file_parse_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(dir.path(), UpstreamOptions::default()).unwrap());
        let meta = Arc::new(held(dir.path(), b"pkgs"));
        let parses = Arc::new(AtomicUsize::new(0));
        let parse = {
            let parses = Arc::clone(&parses);
            move |b: &[u8], _: &str| {
                parses.fetch_add(1, Ordering::SeqCst);
                // Lookups parsing in parallel end this at once; otherwise
                // it lasts a while, for the other lookups to come.
                let until = Instant::now() + Duration::from_secs(2);
                while parses.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(b.len())
            }
        };
        let lookups: Vec<_> = (0..4)
            .map(|_| {
                let (cache, meta, parse) = (Arc::clone(&cache), Arc::clone(&meta), parse.clone());
                tokio::spawn(async move {
                    cache
                        .find_in(|| meta(), Keep::Parsed, parse, |n| Some(*n))
                        .await
                })
            })
            .collect();
        for lookup in lookups {
            assert_eq!(lookup.await.unwrap().unwrap(), Some(4));
        }
        assert_eq!(parses.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_parse_leaves_the_event_loop_free() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(dir.path(), UpstreamOptions::default()).unwrap());
        let meta = held(dir.path(), b"pkgs");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        // The parse waits for another task of the same (single-threaded)
        // event loop, which runs meanwhile only when the parse is off it;
        // the timeout only bounds a failing run.
        let parse = move |_: &[u8], _: &str| {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            Ok(rx.recv_timeout(Duration::from_secs(10)).is_ok())
        };
        let slow = tokio::spawn(async move {
            cache
                .find_in(meta, Keep::Nothing, parse, |answered| Some(*answered))
                .await
        });
        let other = tokio::spawn(async move {
            let _ = tx.send(());
        });
        assert_eq!(
            slow.await.unwrap().unwrap(),
            Some(true),
            "another task ran while the parse did"
        );
        other.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_check_of_upstream_bytes_leaves_the_event_loop_free() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/core.db", axum::routing::get(|| async { "pkgs" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Cache::new(dir.path(), UpstreamOptions::default()).unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        // As in a_slow_parse_leaves_the_event_loop_free: the check waits
        // for another task of the same event loop.
        let verify: Verify = Arc::new(move |_, _| {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(()) => Ok(Vec::new()),
                Err(_) => Err("the event loop was held".to_string()),
            }
        });
        let meta = Meta {
            key: "core.db".to_string(),
            dest: dir.path().join("core.db"),
            urls: vec![format!("http://{addr}/core.db")],
            companions: Vec::new(),
            optional: Vec::new(),
            limit: limit::COMPANION,
            verify,
            partial_dir: None,
        };
        let dest = meta.dest.clone();
        let check = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.metadata(meta, true).await })
        };
        // Sent once the request went upstream (the check is next).
        let other = tokio::spawn(async move {
            while cache.stats().upstream_bytes == 0 {
                tokio::task::yield_now().await;
            }
            let _ = tx.send(());
        });
        check.await.unwrap().unwrap();
        other.await.unwrap();
        assert_eq!(std::fs::read(dest).unwrap(), b"pkgs");
    }

    #[test]
    fn errors_map_to_statuses() {
        let r = CacheError::NotFound("x".into()).response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = CacheError::Rejected("x".into()).response();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let e = CacheError::from_fetch(FetchError::Status {
            url: "http://h/x".into(),
            status: reqwest::StatusCode::NOT_FOUND,
            retry_after: None,
        });
        assert!(matches!(e, CacheError::NotFound(_)), "{e:?}");
        let e = CacheError::from_fetch(FetchError::Status {
            url: "http://h/x".into(),
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
        });
        assert!(matches!(e, CacheError::Upstream(m) if m.contains("http://h/x")));
    }
}
