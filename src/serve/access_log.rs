//! The access log (`mirror serve --access-log FILE|-`).
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
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, Method, Uri, Version};

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

/// What the access log counts: lines dropped because the writer could not
/// keep up, and failed writes (shown by `/metrics`).
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Lines dropped at a full queue.
    pub(crate) dropped: std::sync::atomic::AtomicU64,
    /// Writes that failed.
    pub(crate) errors: std::sync::atomic::AtomicU64,
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
    /// `hit`, `miss`, `join`, `-`.
    pub fn name(self) -> &'static str {
        match self {
            CacheOutcome::None => "-",
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Join => "join",
        }
    }

    pub(crate) fn from_u8(n: u8) -> CacheOutcome {
        match n {
            1 => CacheOutcome::Hit,
            2 => CacheOutcome::Miss,
            3 => CacheOutcome::Join,
            _ => CacheOutcome::None,
        }
    }
}

/// The access log: a bounded queue to its writer thread.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Entry>,
    reopen: Arc<AtomicBool>,
    metrics: Arc<LogCounters>,
}

impl AccessLog {
    /// Open `target` and start its writer thread.
    pub fn start(
        target: &LogTarget,
        format: LogFormat,
        queue: usize,
        metrics: Arc<LogCounters>,
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
            self.metrics.dropped.fetch_add(1, Relaxed);
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
    metrics: Arc<LogCounters>,
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
            self.metrics.errors.fetch_add(1, Relaxed);
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
