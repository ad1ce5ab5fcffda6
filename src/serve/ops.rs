//! What the server tells its administrator: the access log and the
//! Prometheus metrics (`GET /metrics`).
//!
//! # Metrics
//!
//! Every request is counted when its response body ends (or is dropped;
//! one whose client went away before it was answered counts, and is
//! logged, as [`CLIENT_GONE`], nginx's 499):
//! by ecosystem (the first path segment: `rustup`, `toolchain` for
//! `/dist`, `crates` for the sparse and git index, `/crates` and `/api`,
//! `hex`, `arch`, `other`) and status, its body bytes, and its duration
//! (from its header to the end of its body) in a histogram. The counters
//! are relaxed atomics in fixed arrays: the request path takes no lock
//! and allocates nothing for them. `/metrics` renders them in the text
//! exposition format 0.0.4, with the open connections, the running `git
//! upload-pack` processes, the pull-through cache's counters and the
//! access log's dropped lines. The counters are sharded by thread (one
//! event loop per core), so the loops share no cache line.
//!
//! The access log itself is [`super::access_log`]; this module holds what
//! the request path reports to it (`Observed`, the cache outcome).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

pub(crate) use super::access_log::with_outcome;
pub(crate) use super::access_log::Entry;
pub use super::access_log::{AccessLog, CacheOutcome, LogCounters, LogFormat, LogTarget, QUEUE};
use super::cache::CacheStats;

/// What the administrator asked for (`--access-log`, `--log-format`,
/// `--auth-file`), and the server's counters.
#[derive(Debug, Clone, Default)]
pub struct OpsOptions {
    /// Write an access log there.
    pub access_log: Option<LogTarget>,
    /// In this format.
    pub log_format: LogFormat,
    /// Entries the access log's queue holds (`0`: [`QUEUE`]).
    pub log_queue: usize,
    /// Require a credential of this file ([`super::auth`]).
    pub auth_file: Option<PathBuf>,
    /// The counters `/metrics` shows, shared by every part of the server.
    pub metrics: Arc<Metrics>,
}

/// The ecosystems requests are counted by.
pub const ECOSYSTEMS: [&str; 6] = ["rustup", "toolchain", "crates", "hex", "arch", "other"];

/// The ecosystem of a request path (an index into [`ECOSYSTEMS`]).
pub fn ecosystem(path: &str) -> usize {
    let first = path
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    match first {
        "rustup" => 0,
        "dist" => 1,
        "crates" | "index" | "crates-index" | "git" | "api" => 2,
        "hex" => 3,
        "archlinux" => 4,
        _ => 5,
    }
}

/// The statuses counted by code; any other counts as `other`.
const STATUSES: [u16; 19] = [
    200, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 413, 416, 429, 499, 500, 502, 503, 504,
];

/// The status counted and logged for a request whose client went away
/// before it was answered (as nginx logs it).
pub const CLIENT_GONE: u16 = 499;

/// Upper bounds of the duration histogram's buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    5_000_000,
    30_000_000,
    120_000_000,
];

const NE: usize = ECOSYSTEMS.len();
const NS: usize = STATUSES.len() + 1;
const NB: usize = BUCKETS_US.len() + 1;

/// Copies of the per-request counters: each thread counts into its own
/// (one event loop per core), so the cores do not contend for one cache
/// line; `/metrics` adds them up.
const SHARDS: usize = 8;

/// One thread's per-request counters, on cache lines of their own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; NS]; NE],
    bytes: [AtomicU64; NE],
    buckets: [[AtomicU64; NB]; NE],
    duration_us: [AtomicU64; NE],
}

impl Shard {
    fn new() -> Shard {
        Shard {
            requests: [const { [const { AtomicU64::new(0) }; NS] }; NE],
            bytes: [const { AtomicU64::new(0) }; NE],
            buckets: [const { [const { AtomicU64::new(0) }; NB] }; NE],
            duration_us: [const { AtomicU64::new(0) }; NE],
        }
    }
}

/// The shard of the calling thread.
fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Relaxed) as usize) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// The server's counters; see the module docs.
#[derive(Debug)]
pub struct Metrics {
    shards: Box<[Shard]>,
    connections: AtomicU64,
    closed: AtomicU64,
    /// The access log's dropped lines and write errors.
    pub(crate) log: Arc<LogCounters>,
    pub(crate) auth_denied: AtomicU64,
    pub(crate) auth_limited: AtomicU64,
    pub(crate) auth_checks: AtomicU64,
    git: OnceLock<(Arc<Semaphore>, usize)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            connections: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            log: Arc::default(),
            auth_denied: AtomicU64::new(0),
            auth_limited: AtomicU64::new(0),
            auth_checks: AtomicU64::new(0),
            git: OnceLock::new(),
        }
    }
}

/// One open connection, counted until dropped.
pub(crate) struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Relaxed);
    }
}

impl Metrics {
    /// Count a connection open until the guard is dropped.
    pub(crate) fn open_connection(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// The git index's process slots (`slots` of `max`), for the gauge of
    /// running upload-packs.
    pub(crate) fn watch_git(&self, slots: &Arc<Semaphore>, max: usize) {
        let _ = self.git.set((Arc::clone(slots), max));
    }

    /// Count one finished request.
    pub(crate) fn record(&self, eco: usize, status: u16, bytes: u64, took: Duration) {
        let eco = eco.min(NE - 1);
        let s = STATUSES.iter().position(|&c| c == status).unwrap_or(NS - 1);
        let shard = &self.shards[shard_index()];
        shard.requests[eco][s].fetch_add(1, Relaxed);
        shard.bytes[eco].fetch_add(bytes, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_US.iter().position(|&le| us <= le).unwrap_or(NB - 1);
        shard.buckets[eco][b].fetch_add(1, Relaxed);
        shard.duration_us[eco].fetch_add(us, Relaxed);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        let closed = self.closed.load(Relaxed);
        self.connections.load(Relaxed).saturating_sub(closed)
    }

    /// Access log entries dropped because the writer fell behind.
    pub fn log_dropped(&self) -> u64 {
        self.log.dropped.load(Relaxed)
    }

    /// The text exposition format (0.0.4), with the cache's counters when
    /// there is a cache.
    pub fn render(&self, cache: Option<&CacheStats>) -> String {
        let mut out = String::with_capacity(8192);
        self.render_requests(&mut out);
        self.render_server(&mut out);
        if let Some(c) = cache {
            render_cache(&mut out, c);
        }
        out
    }

    /// Requests, bytes and durations by ecosystem.
    fn render_requests(&self, out: &mut String) {
        family(
            out,
            "mirror_http_requests_total",
            "counter",
            "Requests answered, by ecosystem and status.",
        );
        let sum = |f: &dyn Fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards.iter().map(|s| f(s).load(Relaxed)).sum()
        };
        for (e, eco) in ECOSYSTEMS.iter().enumerate() {
            for s in 0..NS {
                let n = sum(&|sh| &sh.requests[e][s]);
                if n == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(s)
                    .map_or_else(|| "other".to_owned(), |c| c.to_string());
                let _ = writeln!(
                    out,
                    "mirror_http_requests_total{{ecosystem=\"{eco}\",status=\"{status}\"}} {n}"
                );
            }
        }
        family(
            out,
            "mirror_http_response_bytes_total",
            "counter",
            "Response body bytes sent, by ecosystem.",
        );
        for (e, eco) in ECOSYSTEMS.iter().enumerate() {
            let _ = writeln!(
                out,
                "mirror_http_response_bytes_total{{ecosystem=\"{eco}\"}} {}",
                sum(&|sh| &sh.bytes[e])
            );
        }
        family(
            out,
            "mirror_http_request_duration_seconds",
            "histogram",
            "Time from a request's header to the end of its response body.",
        );
        for (e, eco) in ECOSYSTEMS.iter().enumerate() {
            let mut cumulative = 0;
            for b in 0..NB {
                cumulative += sum(&|sh| &sh.buckets[e][b]);
                let le = BUCKETS_US
                    .get(b)
                    .map_or_else(|| "+Inf".to_owned(), |us| seconds(*us));
                let _ = writeln!(
                    out,
                    "mirror_http_request_duration_seconds_bucket{{ecosystem=\"{eco}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mirror_http_request_duration_seconds_sum{{ecosystem=\"{eco}\"}} {}\n\
                 mirror_http_request_duration_seconds_count{{ecosystem=\"{eco}\"}} {cumulative}",
                seconds(sum(&|sh| &sh.duration_us[e]))
            );
        }
    }

    /// Connections, git, the access log, credentials.
    fn render_server(&self, out: &mut String) {
        single(
            out,
            "mirror_http_open_connections",
            "gauge",
            "Connections open now.",
            self.open_connections(),
        );
        single(
            out,
            "mirror_http_connections_total",
            "counter",
            "Connections accepted.",
            self.connections.load(Relaxed),
        );
        let running = self.git.get().map_or(0, |(slots, max)| {
            max.saturating_sub(slots.available_permits())
        });
        single(
            out,
            "mirror_git_upload_packs_running",
            "gauge",
            "git upload-pack processes serving the git index now.",
            running as u64,
        );
        single(
            out,
            "mirror_access_log_dropped_total",
            "counter",
            "Access log lines dropped because the writer fell behind.",
            self.log.dropped.load(Relaxed),
        );
        single(
            out,
            "mirror_access_log_write_errors_total",
            "counter",
            "Access log writes that failed.",
            self.log.errors.load(Relaxed),
        );
        single(
            out,
            "mirror_auth_checks_total",
            "counter",
            "Credentials checked against the auth file (not from the cache of checked ones).",
            self.auth_checks.load(Relaxed),
        );
        single(
            out,
            "mirror_auth_denied_total",
            "counter",
            "Requests answered 401.",
            self.auth_denied.load(Relaxed),
        );
        single(
            out,
            "mirror_auth_limited_total",
            "counter",
            "Requests answered 429 because their client checked too many credentials.",
            self.auth_limited.load(Relaxed),
        );
    }
}

/// The pull-through cache's counters.
fn render_cache(out: &mut String, c: &CacheStats) {
    for (name, help, v) in [
        (
            "hits",
            "Requests answered from the tree without asking upstream.",
            c.hits,
        ),
        (
            "misses",
            "Requests that started an upstream transfer or revalidation.",
            c.misses,
        ),
        (
            "joins",
            "Requests that joined a transfer another request started.",
            c.joined,
        ),
        (
            "revalidated",
            "Metadata revalidations upstream answered with 304.",
            c.revalidated,
        ),
        (
            "stale",
            "Metadata served from the last good copy because upstream failed.",
            c.stale,
        ),
        (
            "rejected",
            "Upstream answers refused because they did not verify.",
            c.rejected,
        ),
        (
            "upstream_errors",
            "Upstream requests that failed (not 404).",
            c.upstream_errors,
        ),
        (
            "upstream_bytes",
            "Bytes received from upstream.",
            c.upstream_bytes,
        ),
        (
            "limited",
            "Requests refused with 429 for their client's upstream budget.",
            c.limited,
        ),
        (
            "parses",
            "Metadata files read and parsed (one parse per file at a time).",
            c.parses,
        ),
    ] {
        single(
            out,
            &format!("mirror_cache_{name}_total"),
            "counter",
            help,
            v,
        );
    }
    single(
        out,
        "mirror_cache_not_found_entries",
        "gauge",
        "Entries of the cache's memory of upstream 404s.",
        c.not_found_entries,
    );
}

/// `# HELP` and `# TYPE` of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family of one sample without labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

/// Microseconds as seconds, exactly (`0.0005`, `1`, `2.5`).
fn seconds(us: u64) -> String {
    let (s, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return s.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{s}.{}", frac.trim_end_matches('0'))
}

/// A request being served, until its response body ends.
pub(crate) struct Observed {
    pub started: Instant,
    pub eco: usize,
    pub status: u16,
    pub bytes: u64,
    pub log: Option<(AccessLog, Box<Entry>)>,
    pub metrics: Arc<Metrics>,
}

impl Drop for Observed {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        if self.status == 0 {
            self.status = CLIENT_GONE;
        }
        self.metrics.record(self.eco, self.status, self.bytes, took);
        if let Some((log, mut entry)) = self.log.take() {
            entry.status = self.status;
            entry.bytes = self.bytes;
            entry.took = took;
            log.send(*entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_and_seconds() {
        assert_eq!(ECOSYSTEMS[ecosystem("/dist/x")], "toolchain");
        assert_eq!(ECOSYSTEMS[ecosystem("/index/se/rd/serde")], "crates");
        assert_eq!(ECOSYSTEMS[ecosystem("/")], "other");
        assert_eq!(ECOSYSTEMS[ecosystem("/archlinux?x")], "arch");
        assert_eq!(seconds(500), "0.0005");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(1_000_000), "1");
    }
}
