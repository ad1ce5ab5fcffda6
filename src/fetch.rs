//! The download engine: every ecosystem hands it a list of [`FetchItem`]s;
//! it alone fetches, verifies and publishes.
//!
//! For each item:
//! 1. **Skip check** (no request; on the producer's threads, while the
//!    items planned before are already downloading): if `dest` exists and
//!    is correct (its size, and its SHA-256 unless `--assume-ok`) and its
//!    signature file exists, the item is skipped. Items reach the engine
//!    as a list ([`Engine::fetch_all`]) or through an [`item_queue`] that a
//!    producer fills as its plan yields them ([`Engine::fetch_from`]).
//! 2. **Fetch** (up to `jobs` at once over one shared client): the body is
//!    streamed into `<dest>.partial` while being hashed, under an exclusive
//!    lock on that file (`flock`): another process fetching the
//!    same file (`mirror serve`'s cache and an `update` on one tree) waits,
//!    then finds it published or resumes. A `.partial` left by
//!    an interrupted attempt or run is resumed with `Range: bytes=N-`; if the
//!    server ignores the range (200) the file starts over. In
//!    [`Engine::fetch_from`], a fresh body of at most 1 MiB for an item
//!    without a signature is received into memory instead, and written to
//!    a temporary of its own only once verified, by a publisher thread, while its
//!    job slot already sends the next request.
//!    Every body has a ceiling ([`crate::limit`]): the item's planned
//!    size when known (a longer body is cut one byte past it), else its
//!    kind's limit, raised by `--max-file-size`; a `Content-Length` above
//!    it is refused before reading. Bodies read into memory
//!    ([`Engine::fetch_bytes`] and friends) take a limit too, and cost
//!    their size once (no doubling).
//! 3. **Retry** transient failures (see [`crate::http`]) with backoff, or
//!    as long as the server's `Retry-After` asks (capped); the
//!    retry resumes from the partial file. A 404 or a digest mismatch is not
//!    retried — except that a mismatch after a *resumed* transfer restarts
//!    once from zero, since the old partial may have come from other bytes.
//! 4. **Verify**: size, SHA-256 and SHA-512 when known (each hashed while
//!    streaming), then the detached signature
//!    (fetched into memory) when one is given.
//! 5. **Publish**: rename `<dest>.partial` to `dest` (nothing at `dest`
//!    is ever unverified), then write the
//!    signature file and any sidecars (e.g. `.sha256`) atomically.
//!
//! A failure is never silent: [`Engine::fetch_all`] returns
//! [`FetchFailed`] listing every failed item. Without `keep_going` no new
//! item starts after the first failure; with it, all items are attempted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use rayon::prelude::*;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use crate::http::{self, HttpOptions};
use crate::limit::{self, Collector, Found, Limit, TooLarge};
use crate::report::{Outcome, Reporter};
use crate::store;
use crate::verify::digest::{
    hash_file, hash_file_sha512, DigestMismatch, Hasher, Hasher512, Sha256Digest, Sha512Digest,
};

/// Checks a detached signature over a file (OpenPGP for toolchains and
/// Arch packages). Kept as a trait so the engine does not care which kind.
pub trait SignatureCheck: Send + Sync {
    /// Verify `signature` over the bytes of `file`; `what` names the
    /// resource (URL) for error messages.
    fn check(&self, file: &Path, signature: &[u8], what: &str) -> anyhow::Result<()>;
}

/// Where a detached signature comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    /// Fetched from this URL, with the item's retries.
    Url(String),
    /// Already known, e.g. Arch's `%PGPSIG%` in the database: no request.
    Inline(Vec<u8>),
}

/// A detached signature to check for an item (and store beside it).
#[derive(Clone)]
pub struct SignatureSpec {
    /// Where the signature comes from.
    pub source: SignatureSource,
    /// Where to store it once the item verified.
    pub dest: PathBuf,
    /// How to check it.
    pub check: Arc<dyn SignatureCheck>,
}

/// One file to download.
#[derive(Clone)]
pub struct FetchItem {
    /// Source URL.
    pub url: String,
    /// Final path.
    pub dest: PathBuf,
    /// Expected size, when the plan knows it: a body longer than this is
    /// cut at `size + 1` bytes and refused.
    pub size: Option<u64>,
    /// The ceiling for a body whose size the plan does not know (see
    /// [`crate::limit`]); [`limit::DOWNLOAD`] when not given. The user's
    /// `--max-file-size` raises it.
    pub limit: Option<Limit>,
    /// Expected SHA-256, when the plan knows it.
    pub sha256: Option<Sha256Digest>,
    /// Expected SHA-512, for upstreams that publish only that.
    pub sha512: Option<Sha512Digest>,
    /// A detached signature to check before publishing.
    pub signature: Option<SignatureSpec>,
    /// Small files written atomically after `dest` is published
    /// (e.g. the `.sha256` beside it).
    pub sidecars: Vec<(PathBuf, Vec<u8>)>,
}

impl FetchItem {
    /// An item with only a URL and a destination.
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        FetchItem {
            url: url.into(),
            dest: dest.into(),
            size: None,
            limit: None,
            sha256: None,
            sha512: None,
            signature: None,
            sidecars: Vec::new(),
        }
    }

    /// Require this SHA-256.
    pub fn sha256(mut self, digest: Sha256Digest) -> Self {
        self.sha256 = Some(digest);
        self
    }

    /// Require this SHA-512.
    pub fn sha512(mut self, digest: Sha512Digest) -> Self {
        self.sha512 = Some(digest);
        self
    }

    /// Require this size.
    pub fn size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Refuse a body larger than `limit` when the size is not planned.
    pub fn limit(mut self, limit: Limit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Write `data` to `path` once the item is published.
    pub fn sidecar(mut self, path: impl Into<PathBuf>, data: impl Into<Vec<u8>>) -> Self {
        self.sidecars.push((path.into(), data.into()));
        self
    }

    /// Check a detached signature before publishing.
    pub fn signature(mut self, spec: SignatureSpec) -> Self {
        self.signature = Some(spec);
        self
    }
}

/// Why one item failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status it answered.
        status: StatusCode,
        /// The wait its `Retry-After` asked for (429, 503), capped.
        retry_after: Option<std::time::Duration>,
    },
    /// The transfer failed (after retries, when retryable).
    #[error("{url}: {message}")]
    Network {
        /// The URL.
        url: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The bytes did not hash to what the plan required.
    #[error(transparent)]
    Digest(#[from] DigestMismatch),
    /// The transfer had another size than the plan required.
    #[error("size mismatch for {url}\n  expected size: {expected}\n  actual size:   {actual}")]
    Size {
        /// The URL.
        url: String,
        /// Required size.
        expected: u64,
        /// Size received.
        actual: u64,
    },
    /// The body was larger than its planned size or its kind's ceiling.
    #[error("{url}: {source}")]
    TooLarge {
        /// The URL.
        url: String,
        /// What, the limit, what was found.
        source: TooLarge,
    },
    /// The detached signature did not verify.
    #[error("{url}: signature check failed: {message}")]
    Signature {
        /// The URL of the signed file.
        url: String,
        /// Why.
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl FetchError {
    /// Whether another attempt could succeed (network trouble, 5xx, 429);
    /// a 404, a checksum or a signature failure would only repeat.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => http::status_is_retryable(*status),
            FetchError::Network { .. } => true,
            _ => false,
        }
    }

    /// The wait the server asked for before another attempt, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A [`FetchError::Status`] for `resp`, with its `Retry-After`.
    fn status(url: &str, resp: &reqwest::Response) -> Self {
        let status = resp.status();
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            resp.headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| http::parse_retry_after(v, std::time::SystemTime::now()))
        } else {
            None
        };
        FetchError::Status {
            url: url.to_string(),
            status,
            retry_after,
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        FetchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn too_large(url: &str, source: TooLarge) -> FetchError {
    FetchError::TooLarge {
        url: url.to_string(),
        source,
    }
}

/// Read a response's body into memory, refusing more than `limit` bytes
/// (a `Content-Length` above it before reading, an endless body at
/// `limit + 1`); the buffer is sized from `Content-Length` up to the
/// limit, so a body costs its size once.
async fn read_body(
    mut resp: reqwest::Response,
    url: &str,
    limit: Limit,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Collector::new(limit, resp.content_length()).map_err(|e| too_large(url, e))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| network(url, &e))? {
        out.push(&chunk).map_err(|e| too_large(url, e))?;
    }
    Ok(out.finish())
}

fn network(url: &str, err: &reqwest::Error) -> FetchError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    FetchError::Network {
        url: url.to_string(),
        message,
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Parallel jobs.
    pub jobs: usize,
    /// Attempt every item even after failures.
    pub keep_going: bool,
    /// Trust files already present (size only), without re-hashing.
    pub assume_ok: bool,
    /// Client and retry settings.
    pub http: HttpOptions,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            jobs: 8,
            keep_going: false,
            assume_ok: false,
            http: HttpOptions::default(),
        }
    }
}

/// What a successful [`Engine::fetch_all`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchSummary {
    /// Items downloaded and published.
    pub fetched: usize,
    /// Items already present and correct.
    pub skipped: usize,
    /// Bytes received.
    pub bytes: u64,
}

/// Some items failed; the others were published.
#[derive(Debug, thiserror::Error)]
#[error("{} of {} downloads failed:\n{}", failures.len(), total, list_failures(failures))]
pub struct FetchFailed {
    /// Each failed item's URL and error.
    pub failures: Vec<(String, FetchError)>,
    /// How many items were planned.
    pub total: usize,
    /// What did succeed.
    pub summary: FetchSummary,
}

fn list_failures(failures: &[(String, FetchError)]) -> String {
    failures
        .iter()
        .map(|(_, e)| format!("  - {}", e.to_string().replace('\n', "\n    ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A runtime that does not wait for its tasks when dropped: by then every
/// transfer has finished, and what is left (idle pooled connections) needs
/// no orderly close — waiting for it only delays the end of a run.
struct Runtime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Runtime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The engine: one runtime and one client for a whole run.
pub struct Engine {
    rt: Runtime,
    client: reqwest::Client,
    opts: FetchOptions,
}

impl Engine {
    /// Build an engine.
    pub fn new(opts: FetchOptions) -> anyhow::Result<Engine> {
        // One worker per core (at most 4, at most one per job): more
        // workers than cores only trade CPU for wake-ups and context
        // switches. Each worker looks for new I/O every 8 tasks instead of
        // tokio's 61: with many jobs, a burst of responses otherwise
        // leaves connections that became ready waiting behind a long run
        // of tasks.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.jobs.clamp(1, cores.clamp(1, 4)))
            .event_interval(8)
            .enable_all()
            .build()?;
        let client = {
            let _guard = rt.enter();
            http::client(&opts.http)?
        };
        Ok(Engine {
            rt: Runtime(Some(rt)),
            client,
            opts,
        })
    }

    /// The engine's settings.
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    /// Fetch a small resource into memory (manifests, `.sha256` files),
    /// with the same retries as file downloads; a body larger than
    /// `limit` is refused.
    pub fn fetch_bytes(&self, url: &str, limit: Limit) -> Result<Vec<u8>, FetchError> {
        self.rt
            .block_on(get_bytes(&self.client, &self.opts.http, url, limit))
    }

    /// Fetch many small resources into memory with `jobs` in parallel, each
    /// at most `limit` bytes; the results are in the order of `urls`.
    pub fn fetch_bytes_many(
        &self,
        urls: &[String],
        limit: Limit,
    ) -> Vec<Result<Vec<u8>, FetchError>> {
        let each: Vec<(&str, Limit)> = urls.iter().map(|u| (u.as_str(), limit)).collect();
        self.fetch_bytes_each(&each)
    }

    /// [`Engine::fetch_bytes_many`] with a limit of its own for each URL
    /// (a manifest and its signature).
    pub fn fetch_bytes_each(&self, urls: &[(&str, Limit)]) -> Vec<Result<Vec<u8>, FetchError>> {
        let client = &self.client;
        let http = &self.opts.http;
        self.rt.block_on(
            stream::iter(
                urls.iter()
                    .map(|(u, limit)| get_bytes(client, http, u, *limit)),
            )
            .buffered(self.opts.jobs.max(1))
            .collect(),
        )
    }

    /// Conditional GETs of small resources, `jobs` in parallel, results in
    /// the order of `requests`: each URL is sent with the validators of the
    /// copy the caller holds (`If-None-Match` for an ETag,
    /// `If-Modified-Since` for a Last-Modified date); a `304` answers
    /// [`Conditional::NotModified`], a success the body with its new
    /// validators. Same retries and limit as [`Engine::fetch_bytes`].
    /// The requests are a phase of `reporter` named `index`: its total
    /// known at once, one item as each answer arrives (skipped for a
    /// `304`), bytes as bodies complete.
    pub fn fetch_bytes_conditional_reporting(
        &self,
        requests: &[(String, Validators)],
        limit: Limit,
        reporter: &dyn Reporter,
    ) -> Vec<Result<Conditional, FetchError>> {
        let client = &self.client;
        let http = &self.opts.http;
        reporter.begin("index", requests.len() as u64, None);
        let out = self.rt.block_on(
            stream::iter(
                requests
                    .iter()
                    .map(|(u, v)| get_conditional(client, http, u, v, limit)),
            )
            .buffered(self.opts.jobs.max(1))
            .zip(stream::iter(requests))
            .map(|(r, (url, _))| {
                let outcome = match &r {
                    Ok(Conditional::Fetched { bytes, .. }) => {
                        reporter.bytes(bytes.len() as u64);
                        Outcome::Done
                    }
                    Ok(Conditional::NotModified) => Outcome::Skipped,
                    Err(_) => Outcome::Failed,
                };
                reporter.item(url, outcome);
                r
            })
            .collect(),
        );
        reporter.end();
        out
    }

    /// Download, verify and publish every item, in order. The skip
    /// checks run in parallel, a batch at a time, while the items of the
    /// batches before are already downloading.
    pub fn fetch_all(
        &self,
        items: Vec<FetchItem>,
        reporter: &dyn Reporter,
    ) -> Result<FetchSummary, FetchFailed> {
        let (sink, source) = item_queue(self.opts.assume_ok);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut items = items.into_iter().peekable();
                while items.peek().is_some() {
                    let batch: Vec<FetchItem> = items.by_ref().take(CHECK_BATCH).collect();
                    let present: Vec<bool> =
                        batch.par_iter().map(|item| sink.is_present(item)).collect();
                    for (item, present) in batch.into_iter().zip(present) {
                        sink.plan(item, present);
                    }
                }
            });
            self.fetch_from(source, reporter)
        })
    }

    /// Download, verify and publish every item pushed into the queue's
    /// [`ItemSink`], starting with the first while the producer is still
    /// planning the rest; returns once the sink is dropped (or abandoned)
    /// and every item taken has ended.
    pub fn fetch_from(
        &self,
        source: ItemSource,
        reporter: &dyn Reporter,
    ) -> Result<FetchSummary, FetchFailed> {
        reporter.begin("download", 0, None);

        // Each of `jobs` tasks on the runtime takes the next item from the
        // queue until it is closed and empty, so a response wakes the task
        // that sends the next request on the same worker thread. A small
        // body, once verified, goes to the publisher thread (write,
        // rename) and the task moves on at once: disk work stays off the
        // path from one response to the next request; when the publisher
        // lags, the task publishes itself. Tasks report through `events`,
        // forwarded here to `reporter`.
        let run = Arc::new(RunState {
            queue: Arc::clone(&source.queue),
            keep_going: self.opts.keep_going,
            bytes: AtomicU64::new(0),
            events: std::sync::Mutex::new(Vec::new()),
            written: std::sync::Mutex::new(Default::default()),
        });
        let (to_publish, publish_queue) =
            std::sync::mpsc::sync_channel::<(FetchItem, Vec<u8>)>(PUBLISH_QUEUE);
        let results: Vec<(String, Result<u64, FetchError>)> = std::thread::scope(|scope| {
            let publisher = {
                let run = Arc::clone(&run);
                scope.spawn(move || {
                    lower_priority();
                    let mut done = Vec::new();
                    for (item, bytes) in publish_queue {
                        let r = publish_verified(&item, &bytes);
                        run.finished(&item, &r, reporter);
                        done.push((item.url, r));
                    }
                    done
                })
            };
            // Spawned from a worker: from outside the runtime each spawn
            // would wake a worker of its own.
            let slots = self.opts.jobs.max(1);
            let tasks: Vec<_> = {
                let (client, http) = (self.client.clone(), self.opts.http.clone());
                let (run, to_publish) = (Arc::clone(&run), to_publish.clone());
                self.rt
                    .block_on(self.rt.spawn(async move {
                        (0..slots)
                            .map(|_| {
                                tokio::spawn(fetch_task(
                                    slots,
                                    client.clone(),
                                    http.clone(),
                                    Arc::clone(&run),
                                    to_publish.clone(),
                                ))
                            })
                            .collect::<Vec<_>>()
                    }))
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            };
            // The publisher ends when the last task drops its sender.
            drop(to_publish);
            // Reports reach `reporter` in batches, every REPORT_EVERY: a
            // wake-up of this thread per item would compete with the
            // tasks for the cores.
            let mut all = Box::pin(futures_util::future::join_all(tasks));
            let joined = loop {
                let tick = self
                    .rt
                    .block_on(async { tokio::time::timeout(REPORT_EVERY, &mut all).await });
                run.forward(reporter);
                if let Ok(joined) = tick {
                    break joined;
                }
            };
            let mut results = Vec::new();
            for task in joined {
                match task {
                    Ok(r) => results.extend(r),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => panic!("a download task was cancelled: {e}"),
                }
            }
            results.extend(
                publisher
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
            results
        });
        run.forward(reporter);
        reporter.end();

        let (total, skipped) = {
            let q = run.queue.state();
            (q.planned, q.skipped)
        };
        let mut summary = FetchSummary {
            skipped,
            ..FetchSummary::default()
        };
        // What was published is durable before the caller writes what
        // names it (failures included: with `--keep-going` the rest is
        // published).
        let mut failures = run.sync();
        for (url, r) in results {
            match r {
                Ok(bytes) => {
                    summary.fetched += 1;
                    summary.bytes += bytes;
                }
                Err(e) => failures.push((url, e)),
            }
        }
        if failures.is_empty() {
            Ok(summary)
        } else {
            failures.sort_by(|a, b| a.0.cmp(&b.0));
            Err(FetchFailed {
                failures,
                total,
                summary,
            })
        }
    }
}

/// A queue of items for [`Engine::fetch_from`]: the producer pushes into
/// the [`ItemSink`] as its plan yields items; the engine's job slots take
/// them as they arrive.
pub fn item_queue(assume_ok: bool) -> (ItemSink, ItemSource) {
    let queue = Arc::new(ItemQueue {
        assume_ok,
        state: std::sync::Mutex::new(QueueState::default()),
        ready: tokio::sync::Notify::new(),
        space: std::sync::Condvar::new(),
        stop: AtomicBool::new(false),
        close_at_end: AtomicBool::new(false),
    });
    (
        ItemSink {
            queue: Arc::clone(&queue),
        },
        ItemSource { queue },
    )
}

/// The producer's end of an [`item_queue`]; usable from many threads at
/// once. Dropping it closes the queue: the run ends once the items pushed
/// have ended. A producer [`QUEUE_AHEAD`] items ahead of the downloads
/// waits in [`ItemSink::push`] until they have taken half of those, so a
/// plan of millions (a first mirror of a whole index) is not held in
/// memory at once.
pub struct ItemSink {
    queue: Arc<ItemQueue>,
}

impl ItemSink {
    /// Plan `item`: skipped (reported, not queued) when its file is
    /// already in place and correct — a check run here, on the
    /// producer's thread — else queued for download.
    pub fn push(&self, item: FetchItem) {
        let present = self.is_present(&item);
        self.plan(item, present);
    }

    /// The skip check; after a failure the rest of the plan is only
    /// counted (its size is what a failure report names), not checked.
    fn is_present(&self, item: &FetchItem) -> bool {
        !self.queue.stop.load(Ordering::Relaxed) && is_present(item, self.queue.assume_ok)
    }

    /// Queue `item`, or count it skipped when `present`; only count it
    /// once the run has stopped.
    fn plan(&self, item: FetchItem, present: bool) {
        // Hashed before the queue is locked; only a file that differs.
        let changed = (!present && !self.queue.stop.load(Ordering::Relaxed))
            .then(|| changed_warning(&item))
            .flatten();
        {
            let mut q = self.queue.state();
            if let Some(line) = changed {
                q.events.push(Event::Warn(line));
            }
            q.planned += 1;
            if self.queue.stop.load(Ordering::Relaxed) {
                return;
            }
            if present {
                q.skipped += 1;
                q.events.push(Event::Item(item.url, Outcome::Skipped));
                return;
            }
            match q.events.last_mut() {
                Some(Event::Planned(n)) => *n += 1,
                _ => q.events.push(Event::Planned(1)),
            }
            while q.items.len() >= QUEUE_AHEAD && !self.queue.stop.load(Ordering::Relaxed) {
                q.producers_waiting += 1;
                q = self.queue.space.wait(q).unwrap_or_else(|e| e.into_inner());
                q.producers_waiting -= 1;
            }
            if self.queue.stop.load(Ordering::Relaxed) {
                return;
            }
            q.items.push_back(item);
        }
        self.queue.ready.notify_one();
    }

    /// The plan failed: drop what is queued and start nothing more; the
    /// transfers already under way end normally.
    pub fn abandon(&self) {
        self.queue.stop();
        self.queue.state().items.clear();
    }
}

impl Drop for ItemSink {
    fn drop(&mut self) {
        {
            let mut q = self.queue.state();
            q.closed = true;
            q.events.push(Event::PlanComplete);
        }
        self.queue.ready.notify_waiters();
    }
}

/// The engine's end of an [`item_queue`], for [`Engine::fetch_from`].
/// Dropping it (the run ended, or never started) stops the queue, so a
/// producer waiting for room goes on planning without queueing.
pub struct ItemSource {
    queue: Arc<ItemQueue>,
}

impl Drop for ItemSource {
    fn drop(&mut self) {
        self.queue.stop();
    }
}

impl ItemSource {
    /// For a run's last downloads: once the plan is complete and fewer
    /// items wait than there are jobs, each request asks the server to
    /// close its connection after the response (`Connection: close`;
    /// dropped by HTTP/2), so no idle connection is left to close at the
    /// end of the run, after everything else. Without it connections stay
    /// pooled for the engine's next downloads.
    pub fn closing_connections(self) -> Self {
        self.queue.close_at_end.store(true, Ordering::Relaxed);
        self
    }
}

struct ItemQueue {
    assume_ok: bool,
    state: std::sync::Mutex<QueueState>,
    /// Signalled for each item queued, and when the queue closes or stops.
    ready: tokio::sync::Notify,
    /// Signalled when the queue is down to half of [`QUEUE_AHEAD`] while
    /// producers wait for room, and when the queue stops.
    space: std::sync::Condvar,
    /// Set after a failure (without `keep_going`) or by
    /// [`ItemSink::abandon`]: take and plan no more items.
    stop: AtomicBool,
    /// See [`ItemSource::closing_connections`].
    close_at_end: AtomicBool,
}

#[derive(Default)]
struct QueueState {
    items: std::collections::VecDeque<FetchItem>,
    closed: bool,
    /// Items pushed, skipped ones included.
    planned: usize,
    /// Producers waiting in [`ItemSink::push`] for room in `items`.
    producers_waiting: usize,
    skipped: usize,
    /// Skipped items and growth of the plan, not yet reported.
    events: Vec<Event>,
}

impl ItemQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next item, waiting for the producer while the queue is open;
    /// `None` once it is closed and empty, or the run stopped. With it,
    /// whether its connection is to close after it: when asked to (see
    /// [`ItemSource::closing_connections`]), the plan was complete and
    /// fewer than `slots` items were left when it was taken (read under
    /// the same lock as the take).
    async fn next(&self, slots: usize) -> Option<(FetchItem, bool)> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking, so a push or close in between
            // is not missed.
            notified.as_mut().enable();
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            {
                let mut q = self.state();
                if let Some(item) = q.items.pop_front() {
                    // Producers waiting at the cap go on once half of it
                    // is taken (one wake-up per QUEUE_AHEAD / 2 items, not
                    // one per item).
                    if q.producers_waiting > 0 && q.items.len() <= QUEUE_AHEAD / 2 {
                        self.space.notify_all();
                    }
                    let ending = self.close_at_end.load(Ordering::Relaxed)
                        && q.closed
                        && q.items.len() < slots;
                    return Some((item, ending));
                }
                if q.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.ready.notify_waiters();
        // Under the lock: a producer checks `stop` under it before it
        // waits, so it either sees the flag or is woken here.
        let _q = self.state();
        self.space.notify_all();
    }
}

/// Lower the calling thread's scheduling priority (nice 10): the
/// publisher's disk work then yields to the tasks' network work when a
/// burst of responses arrives, and fills the waits in between.
fn lower_priority() {
    // Failure only leaves the priority as it was. On Linux a thread id
    // names the thread alone.
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

/// What the tasks of one [`Engine::fetch_from`] share.
struct RunState {
    /// Where the items come from.
    queue: Arc<ItemQueue>,
    keep_going: bool,
    /// Bytes received and not yet reported.
    bytes: AtomicU64,
    /// Reports of the tasks not yet forwarded.
    events: std::sync::Mutex<Vec<Event>>,
    /// A directory on each file system a file was published to, by
    /// device: synced once the run ends ([`store::sync_tree`]).
    written: std::sync::Mutex<std::collections::BTreeMap<u64, PathBuf>>,
}

impl RunState {
    /// Hand what the tasks reported since the last call to `reporter`.
    fn forward(&self, reporter: &dyn Reporter) {
        let bytes = self.bytes.swap(0, Ordering::Relaxed);
        if bytes > 0 {
            reporter.bytes(bytes);
        }
        let planned = std::mem::take(&mut self.queue.state().events);
        let events = std::mem::take(&mut *self.events());
        for event in planned.into_iter().chain(events) {
            match event {
                Event::Item(url, outcome) => reporter.item(&url, outcome),
                Event::Verbose(line) => reporter.verbose(&line),
                Event::Warn(line) => reporter.warn(&line),
                Event::Unbytes(n) => reporter.unbytes(n),
                Event::Planned(n) => reporter.grow(n),
                Event::PlanComplete => reporter.planned(),
            }
        }
    }

    /// Note the file system `dest` was published to.
    fn wrote(&self, dest: &Path) {
        use std::os::unix::fs::MetadataExt;
        store::trace("publish", dest);
        let Some(dir) = dest.parent() else { return };
        let Ok(meta) = fs::metadata(dir) else { return };
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written
            .entry(meta.dev())
            .or_insert_with(|| dir.to_path_buf());
    }

    /// Make every file published durable: one `syncfs` per file system
    /// written to, before the caller writes the metadata naming them.
    fn sync(&self) -> Vec<(String, FetchError)> {
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()));
        written
            .into_values()
            .filter_map(|dir| {
                store::sync_tree(&dir)
                    .err()
                    .map(|e| (dir.display().to_string(), FetchError::io(&dir, e)))
            })
            .collect()
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Report how an item ended; a failure stops the run unless
    /// `keep_going`.
    fn finished(&self, item: &FetchItem, r: &Result<u64, FetchError>, reporter: &dyn Reporter) {
        match r {
            Ok(_) => {
                self.wrote(&item.dest);
                reporter.item(&item.url, Outcome::Done)
            }
            Err(e) => {
                reporter.item(&item.url, Outcome::Failed);
                reporter.verbose(&format!("failed: {e}"));
                if !self.keep_going {
                    self.queue.stop();
                }
            }
        }
    }
}

/// A report from a download task, forwarded to the caller's reporter.
enum Event {
    Item(String, Outcome),
    Verbose(String),
    Warn(String),
    Unbytes(u64),
    /// More items to download than announced so far.
    Planned(u64),
    /// No more items will be planned.
    PlanComplete,
}

/// The reporter tasks see: byte counts add up in [`RunState::bytes`],
/// the rest waits in [`RunState::events`].
struct TaskReporter {
    run: Arc<RunState>,
}

impl Reporter for TaskReporter {
    fn bytes(&self, n: u64) {
        self.run.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn unbytes(&self, n: u64) {
        self.run.events().push(Event::Unbytes(n));
    }
    fn item(&self, name: &str, outcome: Outcome) {
        self.run
            .events()
            .push(Event::Item(name.to_string(), outcome));
    }
    fn verbose(&self, line: &str) {
        self.run.events().push(Event::Verbose(line.to_string()));
    }
}

/// One job slot of [`Engine::fetch_from`]: fetch items until none is left
/// (or the run stops); the results of the items it finished itself.
async fn fetch_task(
    slots: usize,
    client: reqwest::Client,
    http: HttpOptions,
    run: Arc<RunState>,
    to_publish: std::sync::mpsc::SyncSender<(FetchItem, Vec<u8>)>,
) -> Vec<(String, Result<u64, FetchError>)> {
    use std::sync::mpsc::TrySendError;
    let reporter = TaskReporter {
        run: Arc::clone(&run),
    };
    let mut done = Vec::new();
    // For a run's last downloads, once the plan is complete and fewer
    // items wait than there are slots, an item is likely its slot's last:
    // its connection is closed after the response instead of idling in
    // the pool until the run ends (where closing them all would come
    // last, in a row).
    while let Some((item, last)) = run.queue.next(slots).await {
        let r = match fetch_verified(&client, &http, &item, &reporter, true, last).await {
            Ok(Fetched::Published(n)) => Ok(n),
            Ok(Fetched::Verified(bytes)) => match to_publish.try_send((item, bytes)) {
                // The publisher reports it.
                Ok(()) => continue,
                Err(
                    TrySendError::Full((item, bytes)) | TrySendError::Disconnected((item, bytes)),
                ) => {
                    let r = publish_verified(&item, &bytes);
                    run.finished(&item, &r, &reporter);
                    done.push((item.url, r));
                    continue;
                }
            },
            Err(e) => Err(e),
        };
        run.finished(&item, &r, &reporter);
        done.push((item.url, r));
    }
    done
}

/// Whether an item's file is already in place and correct.
fn is_present(item: &FetchItem, assume_ok: bool) -> bool {
    let Ok(meta) = fs::metadata(&item.dest) else {
        return false;
    };
    if !meta.is_file() || item.size.is_some_and(|s| s != meta.len()) {
        return false;
    }
    if item.signature.as_ref().is_some_and(|s| !s.dest.is_file()) {
        return false;
    }
    if item.sidecars.iter().any(|(p, _)| !p.is_file()) {
        return false;
    }
    if assume_ok {
        return true;
    }
    item.sha256
        .is_none_or(|expected| hash_file(&item.dest).is_ok_and(|(d, _)| d == expected))
        && item
            .sha512
            .is_none_or(|expected| hash_file_sha512(&item.dest).is_ok_and(|d| d == expected))
}

/// When `item`'s file is in place with other bytes than the plan's
/// SHA-256, the warning saying so. Only verified bytes are ever renamed
/// to `dest`, so this is a published file that upstream changed (or a
/// damaged copy); it is fetched again and replaced once upstream's bytes
/// verify, as the near side follows upstream, but never silently: a far
/// side that holds the old file refuses an archive carrying the new one.
fn changed_warning(item: &FetchItem) -> Option<String> {
    let expected = item.sha256?;
    if !fs::symlink_metadata(&item.dest).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let (found, _) = hash_file(&item.dest).ok()?;
    (found != expected).then(|| {
        format!(
            "{}: the file in place (sha256 {found}) differs from what upstream lists now \
             (sha256 {expected}, {}); it is replaced by upstream's once that verifies. A \
             published versioned file should never change: upstream replaced it, or the \
             copy here is damaged. Far sides holding the old file refuse archives carrying \
             the new one",
            item.dest.display(),
            item.url
        )
    })
}

/// `<dest>.partial`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// What a server said about a copy held (see
/// [`Engine::fetch_bytes_conditional_reporting`]); empty for no copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// The `ETag` header, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` header, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// The answer to a conditional GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional {
    /// `304`: the copy held is current.
    NotModified,
    /// A new body and its validators.
    Fetched {
        /// The body.
        bytes: Vec<u8>,
        /// Its validators, for the next request.
        validators: Validators,
    },
}

/// One conditional GET into memory, with retries (see
/// [`Engine::fetch_bytes_conditional_reporting`]); also used by `mirror serve`'s
/// pull-through cache.
pub(crate) async fn get_conditional(
    client: &reqwest::Client,
    opts: &HttpOptions,
    url: &str,
    held: &Validators,
    limit: Limit,
) -> Result<Conditional, FetchError> {
    use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
    with_retries(opts, || async {
        let mut req = client.get(url);
        if let Some(etag) = &held.etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        if let Some(date) = &held.last_modified {
            req = req.header(IF_MODIFIED_SINCE, date);
        }
        let resp = req.send().await.map_err(|e| network(url, &e))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Conditional::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::status(url, &resp));
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let bytes = read_body(resp, url, limit).await?;
        Ok(Conditional::Fetched { bytes, validators })
    })
    .await
}

/// One GET into memory, with retries (see [`Engine::fetch_bytes`]); also
/// used by `mirror serve`'s pull-through cache.
pub(crate) async fn get_bytes(
    client: &reqwest::Client,
    opts: &HttpOptions,
    url: &str,
    limit: Limit,
) -> Result<Vec<u8>, FetchError> {
    with_retries(opts, || async {
        let resp = client.get(url).send().await.map_err(|e| network(url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::status(url, &resp));
        }
        read_body(resp, url, limit).await
    })
    .await
}

/// Run one request attempt after another while it fails in a way worth
/// retrying (see [`crate::http`]), up to `opts.retries` more, with backoff.
/// (File downloads have their own loop in `fetch_one`: they also resume.)
async fn with_retries<T, F, Fut>(opts: &HttpOptions, mut attempt_once: F) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let mut attempt = 0;
    loop {
        match attempt_once().await {
            Err(e) if e.is_retryable() && attempt < opts.retries => {
                attempt += 1;
                let wait = http::retry_wait(opts.retry_delay, attempt, e.retry_after());
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Bodies up to this size, of items without a signature, are received
/// into memory by [`Engine::fetch_from`] and written by its publisher
/// thread, so a job slot is free for the next request as soon as the last
/// byte has arrived and verified.
const HOLD_IN_MEMORY: u64 = 1 << 20;

/// Items whose skip checks [`Engine::fetch_all`] runs in parallel before
/// queueing them, in order: small enough that the first requests leave
/// early, large enough to keep every core hashing when much is present.
const CHECK_BATCH: usize = 64;

/// How often [`Engine::fetch_from`] hands its tasks' reports to the
/// caller's reporter.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Verified bodies waiting for the publisher, at most (so at most this
/// many times [`HOLD_IN_MEMORY`] bytes are held).
const PUBLISH_QUEUE: usize = 64;

/// Items an [`ItemSink`] queues ahead of the downloads before its producer
/// waits: ~7 MB of plan; seconds of work even at tens of thousands of
/// small files a second.
pub const QUEUE_AHEAD: usize = 16_384;

/// What one fetch produced.
enum Fetched {
    /// Verified and published: the bytes received.
    Published(u64),
    /// Verified, held in memory, still to be published
    /// ([`publish_verified`]).
    Verified(Vec<u8>),
}

/// Fetch, verify and publish one item (the steps in the module docs); the
/// bytes received. Also used by `mirror serve`'s pull-through cache.
pub(crate) async fn fetch_one(
    client: &reqwest::Client,
    opts: &HttpOptions,
    item: &FetchItem,
    reporter: &dyn Reporter,
) -> Result<u64, FetchError> {
    match fetch_verified(client, opts, item, reporter, false, false).await? {
        Fetched::Published(n) => Ok(n),
        Fetched::Verified(bytes) => publish_verified(item, &bytes),
    }
}

/// Write verified bytes held in memory to a temporary of their own
/// ([`store::write_replace`]), rename it into place and write the
/// sidecars; the bytes published. Not synced one by one: the run syncs
/// what it published once, at its end.
fn publish_verified(item: &FetchItem, bytes: &[u8]) -> Result<u64, FetchError> {
    store::write_replace(&item.dest, bytes).map_err(|e| FetchError::io(&item.dest, e))?;
    for (path, data) in &item.sidecars {
        store::write_replace(path, data).map_err(|e| FetchError::io(path, e))?;
    }
    Ok(bytes.len() as u64)
}

/// `<dest>.partial`, held with an exclusive lock (`flock`) by the one
/// transfer writing it: two processes on one tree (`mirror serve`'s cache
/// and an `update`) never write the same partial file at once, and the
/// second resumes or reuses what the first left. Opened without
/// truncating and never through a symlink; the lock goes with the handle.
pub(crate) struct PartialLock {
    file: File,
}

/// How often a transfer waiting for another's partial file looks again.
const PARTIAL_POLL: std::time::Duration = std::time::Duration::from_millis(20);

impl PartialLock {
    /// The lock on `partial`, created empty (readable by its owner only,
    /// so no other user can open it to hold the lock) when absent;
    /// `Ok(None)` when another holds it and `wait` is `None`. While another
    /// holds it, this waits as long as the file grows at least once per
    /// `wait`; a holder that stalls longer is an error. The bool: whether
    /// it had to wait (another transfer had it: its file may be published
    /// now).
    async fn acquire(
        partial: &Path,
        wait: Option<std::time::Duration>,
    ) -> Result<Option<(PartialLock, bool)>, FetchError> {
        let io = |e| FetchError::io(partial, e);
        let mut waited = false;
        let mut seen = (u64::MAX, std::time::Instant::now());
        loop {
            if let Some(parent) = partial.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            let mut o = OpenOptions::new();
            o.read(true).write(true).create(true).truncate(false);
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .mode(0o600);
            }
            let file = o.open(partial).map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let Some(stall) = wait else {
                        return Ok(None);
                    };
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    if len != seen.0 {
                        seen = (len, std::time::Instant::now());
                    } else if seen.1.elapsed() > stall {
                        return Err(io(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "another process holds this partial download and it has not grown for {}s",
                                stall.as_secs()
                            ),
                        )));
                    }
                    waited = true;
                    drop(file);
                    tokio::time::sleep(PARTIAL_POLL).await;
                    continue;
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            // Renamed into place or removed by the one that had it: the
            // name now means another file (or none).
            if is_same_file(&file, partial) {
                return Ok(Some((PartialLock { file }, waited)));
            }
            waited = true;
        }
    }

    /// Empty the partial file, to start over (same file, lock kept).
    fn truncate(&self) -> io::Result<()> {
        self.file.set_len(0)
    }

    /// Make the verified file readable by all, as published files are,
    /// before it is renamed into place.
    fn publishable(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.file
                .set_permissions(fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }
}

/// Whether `path` (not followed) names the file open as `file`.
fn is_same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.is_file()
    }
}

/// Fetch and verify one item; publish it unless `hold` allows keeping its
/// verified body in memory (no signature, a fresh transfer of at most
/// [`HOLD_IN_MEMORY`] bytes), which the caller then publishes. With
/// `close`, the request asks the server to close the connection after
/// the response (`Connection: close`; dropped by HTTP/2).
async fn fetch_verified(
    client: &reqwest::Client,
    opts: &HttpOptions,
    item: &FetchItem,
    reporter: &dyn Reporter,
    hold: bool,
    close: bool,
) -> Result<Fetched, FetchError> {
    let hold = hold && item.signature.is_none();
    let partial = partial_path(&item.dest);
    // A body that will go to the partial file (or resume one) takes it
    // first; a small one held in memory only when it has to write there.
    let mut lock = None;
    if !hold || fs::symlink_metadata(&partial).is_ok() {
        if let Some((l, waited)) = PartialLock::acquire(&partial, Some(opts.timeout)).await? {
            if waited && is_present(item, false) {
                // Another process published it meanwhile.
                let _ = fs::remove_file(&partial);
                return Ok(Fetched::Published(0));
            }
            lock = Some(l);
        }
    }
    let lock = &mut lock;
    let body = async {
        let mut attempt = 0;
        let mut restarted = false;
        loop {
            match transfer(client, opts, item, &partial, reporter, hold, close, lock).await {
                Ok(t) => return Ok(t),
                Err((e, _)) if e.is_retryable() && attempt < opts.retries => {
                    attempt += 1;
                    let wait = http::retry_wait(opts.retry_delay, attempt, e.retry_after());
                    reporter.verbose(&format!(
                        "retry {attempt}/{} in {:.1}s: {e}",
                        opts.retries,
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
                Err((FetchError::Digest(_), resumed)) if resumed && !restarted => {
                    restarted = true;
                    reporter.verbose(&format!(
                        "{}: resumed bytes did not verify; starting over",
                        item.url
                    ));
                    restart(&partial, lock);
                }
                Err((e, _)) => {
                    if matches!(
                        e,
                        FetchError::Digest(_)
                            | FetchError::Size { .. }
                            | FetchError::TooLarge { .. }
                    ) {
                        let _ = fs::remove_file(&partial);
                    }
                    return Err(e);
                }
            }
        }
    };
    // A detached signature (small) is fetched beside the body, not after
    // it: one round trip per item instead of two.
    let signature = async {
        match item.signature.as_ref().map(|s| &s.source) {
            Some(SignatureSource::Url(url)) => get_bytes(client, opts, url, limit::COMPANION)
                .await
                .map(Some),
            Some(SignatureSource::Inline(bytes)) => Ok(Some(bytes.clone())),
            None => Ok(None),
        }
    };
    let (received, sig_bytes) = match futures_util::future::try_join(body, signature).await {
        Ok(got) => got,
        Err(e) => {
            // An empty partial file taken for a transfer that never
            // started (a 404, a refused connection) is not left behind.
            if let Some(l) = lock.as_ref() {
                if l.file.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = fs::remove_file(&partial);
                }
            }
            return Err(e);
        }
    };

    if let Some(l) = lock.as_ref() {
        l.publishable().map_err(|e| FetchError::io(&partial, e))?;
    }
    let received = match received {
        Body::Memory(bytes) => {
            if lock.is_some() {
                // A partial file this body did not need.
                let _ = fs::remove_file(&partial);
            }
            return Ok(Fetched::Verified(bytes));
        }
        Body::File(n) => n,
    };
    if let (Some(sig), Some(sig_bytes)) = (&item.signature, sig_bytes) {
        if let Err(e) = sig.check.check(&partial, &sig_bytes, &item.url) {
            let _ = fs::remove_file(&partial);
            return Err(FetchError::Signature {
                url: item.url.clone(),
                message: format!("{e:#}"),
            });
        }
        fs::rename(&partial, &item.dest).map_err(|e| FetchError::io(&item.dest, e))?;
        store::write_replace(&sig.dest, &sig_bytes).map_err(|e| FetchError::io(&sig.dest, e))?;
    } else {
        fs::rename(&partial, &item.dest).map_err(|e| FetchError::io(&item.dest, e))?;
    }
    for (path, data) in &item.sidecars {
        store::write_replace(path, data).map_err(|e| FetchError::io(path, e))?;
    }
    Ok(Fetched::Published(received))
}

/// Where one attempt's verified body is.
enum Body {
    /// In `<dest>.partial`: the bytes received by this attempt.
    File(u64),
    /// In memory, whole.
    Memory(Vec<u8>),
}

/// One attempt. On error, also says whether it had resumed a partial file.
#[allow(clippy::too_many_arguments)]
async fn transfer(
    client: &reqwest::Client,
    opts: &HttpOptions,
    item: &FetchItem,
    partial: &Path,
    reporter: &dyn Reporter,
    hold: bool,
    close: bool,
    lock: &mut Option<PartialLock>,
) -> Result<Body, (FetchError, bool)> {
    let url = item.url.as_str();
    // Only a partial file this transfer holds is resumed.
    let mut offset = match lock {
        Some(l) => l.file.metadata().map(|m| m.len()).unwrap_or(0),
        None => 0,
    };
    if item.size.is_some_and(|s| offset > s) {
        offset = 0;
    }
    let resumed = offset > 0;
    let err = |e: FetchError| (e, resumed);

    let mut request = client.get(url);
    if close {
        request = request.header(reqwest::header::CONNECTION, "close");
    }
    if offset > 0 {
        request = request.header(RANGE, format!("bytes={offset}-"));
    }
    let mut resp = request.send().await.map_err(|e| err(network(url, &e)))?;
    let status = resp.status();
    if offset > 0 && status == StatusCode::RANGE_NOT_SATISFIABLE {
        // The partial file is as long as (or longer than) the resource;
        // start over rather than trust it.
        restart(partial, lock);
        return Err(err(FetchError::Network {
            url: url.to_string(),
            message: "range not satisfiable; restarting from zero".into(),
        }));
    }
    if !status.is_success() {
        return Err(err(FetchError::status(url, &resp)));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let start = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range_start);
        if offset == 0 || start != Some(offset) {
            restart(partial, lock);
            return Err(err(FetchError::Network {
                url: url.to_string(),
                message: format!("unexpected Content-Range for a request from byte {offset}"),
            }));
        }
    } else {
        offset = 0;
    }
    if let (Some(expected), Some(len)) = (item.size, resp.content_length()) {
        if offset + len != expected {
            return Err(err(FetchError::Size {
                url: url.to_string(),
                expected,
                actual: offset + len,
            }));
        }
    }
    // The most bytes the whole file may have: its planned size, else its
    // kind's ceiling (raised by `--max-file-size`).
    let ceiling = match item.size {
        Some(size) => Limit::new("body (longer than its planned size)", size),
        None => {
            let kind = item.limit.unwrap_or(limit::DOWNLOAD);
            match opts.max_file_size {
                Some(max) if max > kind.bytes => kind.at(max),
                _ => kind,
            }
        }
    };
    if let Some(len) = resp.content_length() {
        ceiling
            .check(offset.saturating_add(len))
            .map_err(|e| err(too_large(url, e)))?;
    }

    let io_err = |e| err(FetchError::io(partial, e));
    let mut hasher = Hasher::new();
    let mut hasher512 = item.sha512.map(|_| Hasher512::default());
    // A small fresh body stays in memory; anything else goes to the
    // partial file (resumable).
    let mut memory = match resp.content_length() {
        Some(len) if hold && offset == 0 && len <= HOLD_IN_MEMORY => {
            Some(Vec::with_capacity(len as usize))
        }
        _ => None,
    };
    let mut file = if memory.is_some() {
        None
    } else if offset > 0 {
        // The very file locked (the name is not looked up again).
        let mut f = held_file(lock).map_err(io_err)?;
        f.seek(io::SeekFrom::Start(0)).map_err(io_err)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut seen = 0u64;
        while seen < offset {
            let n = f.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(h) = &mut hasher512 {
                h.update(&buf[..n]);
            }
            seen += n as u64;
        }
        Some(f)
    } else {
        if lock.is_none() {
            let (l, _) = PartialLock::acquire(partial, Some(opts.timeout))
                .await
                .map_err(err)?
                .expect("a waiting acquire has the lock");
            *lock = Some(l);
        }
        let mut f = held_file(lock).map_err(io_err)?;
        f.set_len(0).map_err(io_err)?;
        f.seek(io::SeekFrom::Start(0)).map_err(io_err)?;
        Some(f)
    };

    let mut received = 0u64;
    // Low-speed check: bytes seen in the current window of `timeout`.
    let window = opts.timeout;
    let mut window_start = std::time::Instant::now();
    let mut window_bytes = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if offset + received + chunk.len() as u64 > ceiling.bytes {
                    return Err(err(too_large(
                        url,
                        ceiling.exceeded(Found::MoreThan(ceiling.bytes)),
                    )));
                }
                hasher.update(&chunk);
                if let Some(h) = &mut hasher512 {
                    h.update(&chunk);
                }
                match (&mut file, &mut memory) {
                    (Some(f), _) => f.write_all(&chunk).map_err(io_err)?,
                    (None, Some(m)) => {
                        if m.len() + chunk.len() > HOLD_IN_MEMORY as usize {
                            return Err(err(FetchError::Network {
                                url: url.to_string(),
                                message: format!(
                                    "the body runs past {HOLD_IN_MEMORY} bytes, more than its Content-Length"
                                ),
                            }));
                        }
                        m.extend_from_slice(&chunk)
                    }
                    (None, None) => {}
                }
                received += chunk.len() as u64;
                reporter.bytes(chunk.len() as u64);
                window_bytes += chunk.len() as u64;
                if window_start.elapsed() >= window {
                    let floor = opts.low_speed_limit.saturating_mul(window.as_secs().max(1));
                    if window_bytes < floor {
                        keep_for_resume(partial, &mut file, memory.as_deref(), lock);
                        return Err((
                            FetchError::Network {
                                url: url.to_string(),
                                message: format!(
                                    "too slow: {window_bytes} bytes in {}s, below the {} bytes/s limit",
                                    window.as_secs(),
                                    opts.low_speed_limit
                                ),
                            },
                            true,
                        ));
                    }
                    window_start = std::time::Instant::now();
                    window_bytes = 0;
                }
            }
            Ok(None) => break,
            Err(e) => {
                keep_for_resume(partial, &mut file, memory.as_deref(), lock);
                return Err((network(url, &e), true));
            }
        }
    }
    if let Some(mut f) = file {
        f.flush().map_err(io_err)?;
    }

    let total = offset + received;
    if let Some(expected) = item.size {
        if total != expected {
            return Err(err(FetchError::Size {
                url: url.to_string(),
                expected,
                actual: total,
            }));
        }
    }
    if let Some(expected) = item.sha256 {
        let actual = hasher.finish();
        if actual != expected {
            return Err(err(FetchError::Digest(DigestMismatch::new(
                url, expected, actual,
            ))));
        }
    }
    if let (Some(expected), Some(h)) = (item.sha512, hasher512) {
        let actual = h.finish();
        if actual != expected {
            return Err(err(FetchError::Digest(DigestMismatch::new(
                url, expected, actual,
            ))));
        }
    }
    Ok(match memory {
        Some(bytes) => Body::Memory(bytes),
        None => Body::File(received),
    })
}

/// After a transfer broke off: flush what the partial file holds, or
/// write the bytes received into memory to it, so the retry (or the next
/// run) resumes from there. Best effort: without it the item starts over.
/// Only under the partial file's lock ([`PartialLock`]), taken here if
/// free.
fn keep_for_resume(
    partial: &Path,
    file: &mut Option<File>,
    memory: Option<&[u8]>,
    lock: &mut Option<PartialLock>,
) {
    match (file, memory) {
        (Some(f), _) => {
            let _ = f.flush();
        }
        (None, Some(bytes)) if !bytes.is_empty() => {
            if lock.is_none() {
                let acquired =
                    futures_util::FutureExt::now_or_never(PartialLock::acquire(partial, None));
                if let Some(Ok(Some((l, _)))) = acquired {
                    *lock = Some(l);
                }
            }
            if let Some(l) = lock {
                let mut f = &l.file;
                let _ = l.truncate().and_then(|()| {
                    f.seek(io::SeekFrom::Start(0))?;
                    f.write_all(bytes)
                });
            }
        }
        _ => {}
    }
}

/// A handle of the locked partial file.
fn held_file(lock: &Option<PartialLock>) -> io::Result<File> {
    match lock {
        Some(l) => l.file.try_clone(),
        None => Err(io::Error::other("the partial file is not locked")),
    }
}

/// Start the partial file over: emptied under its lock (the same file,
/// so a transfer waiting for it never writes a second one beside it).
fn restart(partial: &Path, lock: &Option<PartialLock>) {
    match lock {
        Some(l) => {
            let _ = l.truncate();
        }
        None => {
            let _ = fs::remove_file(partial);
        }
    }
}

/// The first byte position of `Content-Range: bytes a-b/len`.
fn parse_content_range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(parse_content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(parse_content_range_start("bytes */200"), None);
        assert_eq!(parse_content_range_start("items 1-2/3"), None);
    }

    /// Push `n` items (nothing on disk, so none is skipped).
    fn push_all(sink: &ItemSink, n: usize) {
        for i in 0..n {
            sink.push(FetchItem::new(
                format!("http://127.0.0.1:1/{i}"),
                format!("/nonexistent/{i}"),
            ));
        }
    }

    fn waiting_items(sink: &ItemSink) -> (usize, usize) {
        let q = sink.queue.state();
        (q.items.len(), q.producers_waiting)
    }

    /// Wait until the queue holds `items` and `waiting` producers wait.
    fn until(sink: &ItemSink, items: usize, waiting: usize) {
        let start = std::time::Instant::now();
        while waiting_items(sink) != (items, waiting) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "queue at {:?}, not ({items}, {waiting})",
                waiting_items(sink)
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A producer QUEUE_AHEAD items ahead waits until half of them are
    /// taken, then fills the queue again: it never holds more.
    #[test]
    fn a_producer_far_ahead_waits_for_room() {
        let (sink, source) = item_queue(false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        std::thread::scope(|scope| {
            // Owned here: a failed assertion drops it, which lets the
            // producer go, so the scope can end.
            let source = source;
            let producer = scope.spawn(|| push_all(&sink, QUEUE_AHEAD + 2));
            until(&sink, QUEUE_AHEAD, 1);
            let (first, _) = rt.block_on(source.queue.next(1)).unwrap();
            assert_eq!(first.url, "http://127.0.0.1:1/0");
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(
                waiting_items(&sink),
                (QUEUE_AHEAD - 1, 1),
                "still waiting: not half taken"
            );
            for _ in 1..QUEUE_AHEAD / 2 {
                rt.block_on(source.queue.next(1)).unwrap();
            }
            producer.join().unwrap();
            assert_eq!(waiting_items(&sink), (QUEUE_AHEAD / 2 + 2, 0));
            assert_eq!(sink.queue.state().planned, QUEUE_AHEAD + 2);
        });
    }

    /// A producer waiting for room is let go when the engine's end goes
    /// away (the run ended or never started): it counts the rest of its
    /// plan without queueing it.
    #[test]
    fn a_waiting_producer_is_let_go_when_the_run_ends() {
        let (sink, source) = item_queue(false);
        std::thread::scope(|scope| {
            let source = source;
            let producer = scope.spawn(|| push_all(&sink, QUEUE_AHEAD + 100));
            until(&sink, QUEUE_AHEAD, 1);
            drop(source);
            producer.join().unwrap();
            assert_eq!(waiting_items(&sink), (QUEUE_AHEAD, 0));
            let planned = sink.queue.state().planned;
            assert_eq!(planned, QUEUE_AHEAD + 100, "the whole plan counted");
        });
    }

    #[test]
    fn partial_is_beside_dest() {
        assert_eq!(
            partial_path(Path::new("/a/b/rustup-init")),
            PathBuf::from("/a/b/rustup-init.partial")
        );
    }
}
