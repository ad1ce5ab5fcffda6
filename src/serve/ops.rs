//! What the server tells its administrator: the access log and the
//! Prometheus metrics (`GET /metrics`).
//!
//! # Metrics
//!
//! Every request is counted when its response body ends (or is dropped):
//! by ecosystem (the first path segment: `rustup`, `toolchain` for
//! `/dist`, `crates` for the sparse and git index, `/crates` and `/api`,
//! `hex`, `arch`, `other`) and status, its body bytes, and its duration
//! (from its header to the end of its body) in a histogram. The counters
//! are relaxed atomics in fixed arrays: the request path takes no lock
//! and allocates nothing for them. `/metrics` renders them in the text
//! exposition format 0.0.4, with the open connections, the running `git
//! upload-pack` processes, the pull-through cache's counters and the
//! access log's dropped lines.
//!
//! # Access log
//!
//! With `--access-log FILE|-`, one line per request, in the combined log
//! format followed by the duration in seconds and the cache outcome
//! (`hit`, `miss`, `join`, or `-` when the cache was not asked):
//!
//! ```text
//! 127.0.0.1 - - [03/Dec/2026:19:02:26 +0000] "GET /dist/channel-rust-stable.toml HTTP/1.1" 200 1234 "-" "rustup/1.28" 0.001 hit
//! ```
//!
//! or with `--log-format json` one JSON object per line (`time`,
//! `client`, `user`, `method`, `path`, `protocol`, `status`, `bytes`,
//! `duration`, `cache`, `referer`, `user_agent`). Times are UTC.
//!
//! The event loops never write: each hands its entry to a bounded queue
//! ([`QUEUE`] entries) read by one writer thread, which formats, writes and
//! flushes whenever the queue runs empty. A full queue (a disk that does
//! not keep up, a pipe nobody reads) drops the entry and counts it
//! (`mirror_access_log_dropped_total`): serving never waits on the log.
//! Every byte from the request (path, method, user, `Referer`,
//! `User-Agent`) is escaped: outside printable ASCII, and `"` and `\`,
//! it is written `\xHH`, so a request cannot forge or split a line or
//! reach a terminal. SIGHUP makes the writer reopen the file (logrotate's
//! convention: rename, then signal).

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, Method, Uri, Version};
use tokio::sync::Semaphore;

use super::cache::CacheStats;

/// Entries the access log's queue holds before it drops.
pub const QUEUE: usize = 16_384;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output (`-`).
    Stdout,
    /// This file, appended to, reopened on SIGHUP.
    File(PathBuf),
}

impl LogTarget {
    /// `-` is stdout, anything else a file.
    pub fn parse(s: &str) -> LogTarget {
        if s == "-" {
            LogTarget::Stdout
        } else {
            LogTarget::File(PathBuf::from(s))
        }
    }
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// The combined log format, then duration (s) and cache outcome.
    #[default]
    Combined,
    /// One JSON object per line.
    Json,
}

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
const STATUSES: [u16; 18] = [
    200, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 413, 416, 429, 500, 502, 503, 504,
];

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
    pub(crate) log_dropped: AtomicU64,
    pub(crate) log_errors: AtomicU64,
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
            log_dropped: AtomicU64::new(0),
            log_errors: AtomicU64::new(0),
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
        self.log_dropped.load(Relaxed)
    }

    /// The text exposition format (0.0.4), with the cache's counters when
    /// there is a cache.
    pub fn render(&self, cache: Option<&CacheStats>) -> String {
        let mut out = String::with_capacity(8192);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
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
            &mut out,
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
            &mut out,
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
        let single = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        };
        single(
            &mut out,
            "mirror_http_open_connections",
            "gauge",
            "Connections open now.",
            self.open_connections(),
        );
        single(
            &mut out,
            "mirror_http_connections_total",
            "counter",
            "Connections accepted.",
            self.connections.load(Relaxed),
        );
        let running = self.git.get().map_or(0, |(slots, max)| {
            max.saturating_sub(slots.available_permits())
        });
        single(
            &mut out,
            "mirror_git_upload_packs_running",
            "gauge",
            "git upload-pack processes serving the git index now.",
            running as u64,
        );
        single(
            &mut out,
            "mirror_access_log_dropped_total",
            "counter",
            "Access log lines dropped because the writer fell behind.",
            self.log_dropped.load(Relaxed),
        );
        single(
            &mut out,
            "mirror_access_log_write_errors_total",
            "counter",
            "Access log writes that failed.",
            self.log_errors.load(Relaxed),
        );
        single(
            &mut out,
            "mirror_auth_checks_total",
            "counter",
            "Credentials checked against the auth file (not from the cache of checked ones).",
            self.auth_checks.load(Relaxed),
        );
        single(
            &mut out,
            "mirror_auth_denied_total",
            "counter",
            "Requests answered 401.",
            self.auth_denied.load(Relaxed),
        );
        single(
            &mut out,
            "mirror_auth_limited_total",
            "counter",
            "Requests answered 429 because their client checked too many credentials.",
            self.auth_limited.load(Relaxed),
        );
        if let Some(c) = cache {
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
            ] {
                single(
                    &mut out,
                    &format!("mirror_cache_{name}_total"),
                    "counter",
                    help,
                    v,
                );
            }
            single(
                &mut out,
                "mirror_cache_not_found_entries",
                "gauge",
                "Entries of the cache's memory of upstream 404s.",
                c.not_found_entries,
            );
        }
        out
    }
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

/// What the cache did for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Not asked (no cache, or a path no upstream covers).
    None = 0,
    /// Answered from the tree.
    Hit = 1,
    /// Went upstream.
    Miss = 2,
    /// Joined another request's transfer.
    Join = 3,
}

impl CacheOutcome {
    fn name(self) -> &'static str {
        match self {
            CacheOutcome::None => "-",
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Join => "join",
        }
    }

    fn from_u8(n: u8) -> CacheOutcome {
        match n {
            1 => CacheOutcome::Hit,
            2 => CacheOutcome::Miss,
            3 => CacheOutcome::Join,
            _ => CacheOutcome::None,
        }
    }
}

tokio::task_local! {
    static OUTCOME: Cell<u8>;
}

/// Note what the cache did for the request being handled (when the access
/// log asks; a no-op otherwise).
pub(crate) fn note_outcome(o: CacheOutcome) {
    let _ = OUTCOME.try_with(|c| c.set(o as u8));
}

/// Run `fut` (a request's handler) noting its cache outcome.
pub(crate) async fn with_outcome<T>(
    fut: impl std::future::Future<Output = T>,
) -> (T, CacheOutcome) {
    OUTCOME
        .scope(Cell::new(0), async move {
            let t = fut.await;
            (t, CacheOutcome::from_u8(OUTCOME.with(Cell::get)))
        })
        .await
}

/// One request as the access log sees it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub at: SystemTime,
    pub client: IpAddr,
    pub user: Option<Arc<str>>,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub status: u16,
    pub bytes: u64,
    pub took: Duration,
    pub outcome: CacheOutcome,
    pub referer: Option<HeaderValue>,
    pub agent: Option<HeaderValue>,
}

/// The access log: a bounded queue to its writer thread.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Entry>,
    reopen: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    /// Open `target` and start its writer thread.
    pub fn start(
        target: &LogTarget,
        format: LogFormat,
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<AccessLog> {
        let out = open(target)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(if queue == 0 { QUEUE } else { queue });
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            target: target.clone(),
            format,
            out,
            reopen: Arc::clone(&reopen),
            metrics: Arc::clone(&metrics),
        };
        std::thread::Builder::new()
            .name("mirror-access-log".into())
            .spawn(move || writer.run(rx))?;
        Ok(AccessLog {
            tx,
            reopen,
            metrics,
        })
    }

    /// Queue `entry`; when the queue is full, drop and count it.
    pub(crate) fn send(&self, entry: Entry) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(entry) {
            self.metrics.log_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Reopen the file before the next line (SIGHUP).
    pub fn reopen(&self) {
        self.reopen.store(true, Relaxed);
    }
}

fn open(target: &LogTarget) -> std::io::Result<Box<dyn std::io::Write + Send>> {
    Ok(match target {
        LogTarget::Stdout => Box::new(std::io::stdout()),
        LogTarget::File(path) => {
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
            Box::new(o.open(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot open the access log {}: {e}", path.display()),
                )
            })?)
        }
    })
}

struct Writer {
    target: LogTarget,
    format: LogFormat,
    out: Box<dyn std::io::Write + Send>,
    reopen: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Entry>) {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.reopen.swap(false, Relaxed) {
                match open(&self.target) {
                    Ok(out) => self.out = out,
                    Err(e) => crate::log!("mirror serve: {e}"),
                }
            }
            let Some(first) = first else { continue };
            self.line(&mut buf, &first);
            // Everything queued meanwhile, then one write.
            while let Ok(e) = rx.try_recv() {
                self.line(&mut buf, &e);
                if buf.len() >= 64 * 1024 {
                    self.write(&mut buf);
                }
            }
            self.write(&mut buf);
        }
    }

    fn write(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        if self
            .out
            .write_all(buf)
            .and_then(|()| self.out.flush())
            .is_err()
        {
            self.metrics.log_errors.fetch_add(1, Relaxed);
        }
        buf.clear();
    }

    fn line(&self, buf: &mut Vec<u8>, e: &Entry) {
        let line = match self.format {
            LogFormat::Combined => combined(e),
            LogFormat::Json => json(e),
        };
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
}

/// `bytes` for a log line: printable ASCII but `"` and `\` as they are,
/// everything else as `\xHH`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

fn target(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn header(v: &Option<HeaderValue>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), |v| escape_bytes(v.as_bytes()))
}

/// One line of the combined log format, then duration and cache outcome.
fn combined(e: &Entry) -> String {
    let user = e
        .user
        .as_deref()
        .map_or_else(|| "-".to_owned(), |u| escape_bytes(u.as_bytes()));
    format!(
        "{} - {user} [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\" {:.3} {}",
        e.client,
        clf_time(e.at),
        escape_bytes(e.method.as_str().as_bytes()),
        escape_bytes(target(&e.uri).as_bytes()),
        e.version,
        e.status,
        e.bytes,
        header(&e.referer),
        header(&e.agent),
        e.took.as_secs_f64(),
        e.outcome.name(),
    )
}

/// One JSON line.
fn json(e: &Entry) -> String {
    let text = |v: &Option<HeaderValue>| {
        v.as_ref()
            .map(|v| serde_json::Value::String(escape_bytes(v.as_bytes())))
            .unwrap_or(serde_json::Value::Null)
    };
    serde_json::json!({
        "time": iso_time(e.at),
        "client": e.client.to_string(),
        "user": e.user.as_deref(),
        "method": escape_bytes(e.method.as_str().as_bytes()),
        "path": escape_bytes(target(&e.uri).as_bytes()),
        "protocol": format!("{:?}", e.version),
        "status": e.status,
        "bytes": e.bytes,
        "duration": e.took.as_secs_f64(),
        "cache": e.outcome.name(),
        "referer": text(&e.referer),
        "user_agent": text(&e.agent),
    })
    .to_string()
}

/// (year, month 1–12, day) of a day count since 1970-01-01.
pub(crate) fn civil_date(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn split_time(at: SystemTime) -> ((i64, u32, u32), u64, u32) {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    (
        civil_date((secs / 86_400) as i64),
        secs % 86_400,
        d.subsec_millis(),
    )
}

/// `03/Dec/2026:19:02:26 +0000`.
fn clf_time(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ((y, m, d), s, _) = split_time(at);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m as usize - 1) % 12],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `2026-12-03T19:02:26.123Z`.
fn iso_time(at: SystemTime) -> String {
    let ((y, m, d), s, ms) = split_time(at);
    format!(
        "{y}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
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
    fn times_are_formatted_in_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_796_324_546_123);
        assert_eq!(clf_time(at), "03/Dec/2026:19:02:26 +0000");
        assert_eq!(iso_time(at), "2026-12-03T19:02:26.123Z");
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso_time(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        assert_eq!(
            escape_bytes(b"/a b\"c\\d\x1b[2J\n\xff"),
            "/a b\\x22c\\x5Cd\\x1B[2J\\x0A\\xFF"
        );
    }

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
