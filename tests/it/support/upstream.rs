//! A hermetic fake upstream: an HTTP/1.1 server on `127.0.0.1:0`, std only.
//!
//! Tests of every ecosystem's download engine point their upstream URL here,
//! `put` the files the upstream would hold, inject faults, and read back the
//! request log. The benchmark includes this file with `#[path]`, so it uses
//! nothing but `std`.
//!
//! What it serves, per path (the query string is ignored when matching):
//! - `GET`/`HEAD` of a known path: `200` with `Content-Length`, `ETag`
//!   (FNV-1a of the body), `Accept-Ranges: bytes`;
//! - `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (one range): `206` with
//!   `Content-Range`; `416` with `Content-Range: bytes */LEN` when
//!   unsatisfiable; `If-Range` with another ETag gets the whole body;
//! - `If-None-Match` matching the ETag (or `*`): `304`;
//! - unknown paths: `404`; other methods: `405`.
//!
//! Connections are kept alive (HTTP/1.1 default) unless the client sends
//! `Connection: close` or speaks HTTP/1.0 without `keep-alive`. Each is
//! served by a thread of a pool that grows on demand; the acceptor hands
//! a new connection straight to one idle thread (each waits on a channel
//! of its own, so a burst of connections wakes that many threads at once,
//! not one after another), and [`Upstream::prewarm`] starts some ahead,
//! so a benchmark's burst of new connections does not wait on thread
//! creation (a real server's accept costs us nothing).
//!
//! Faults queued with [`Upstream::fault`] hit the next GETs of a path, one
//! fault per request, in the order queued; HEAD requests are never faulted.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A fault to inject in place of normal service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short text body (e.g. 500, 503, 429, 404).
    Status(u16),
    /// Read the request, then close the connection without any response.
    Reset,
    /// Send the real headers (with the real `Content-Length`), then only the
    /// first `after` bytes of the body, then close.
    CutBody { after: usize },
    /// Send the real headers and a body of the same length but other bytes.
    WrongBytes,
    /// Send the body `bytes` at a time with `every_ms` between writes (a
    /// slow mirror).
    Trickle { bytes: usize, every_ms: u64 },
    /// Send the real headers, then nothing for `ms`, then close (a stalled
    /// mirror: longer than the client's `--timeout`).
    Stall { ms: u64 },
    /// Answer `429 Too Many Requests` with `Retry-After: <secs>`.
    RetryAfter { secs: u64 },
    /// Send a `Content-Length` `extra` bytes longer than the body, the
    /// body, then close.
    LongLength { extra: u64 },
    /// Send the real headers without `Content-Length` (the body ends
    /// when the connection closes), then the body over and over: an
    /// endless body, cut at `up_to` bytes so that a test ends.
    Endless { up_to: u64 },
    /// Claim a `Content-Length` of `len`, then send the body over and
    /// over up to it: a body larger than any real file of its kind.
    Huge { len: u64 },
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path without the query string, e.g. `/dist/channel-rust-stable.toml`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// Header names lower-cased, values trimmed, in order received.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    files: HashMap<String, Arc<Vec<u8>>>,
    /// The ETag of each file, computed when it is put.
    etags: HashMap<String, String>,
    faults: HashMap<String, VecDeque<(Fault, usize)>>,
    delay: Duration,
    requests: Vec<Request>,
    /// Whether `requests` records (a benchmark's many runs need no log).
    no_log: bool,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    next_conn: AtomicU64,
    /// Live connections, so that dropping the server closes them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    /// Pool threads waiting for a connection, each by the sender of its
    /// own channel; the acceptor empties it when it stops, which ends
    /// them.
    idle: Mutex<Vec<Sender<(u64, TcpStream)>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Sender<(u64, TcpStream)>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake upstream. Dropping it stops the server and closes connections.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Start a server on `127.0.0.1` with a free port.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            idle: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("upstream-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared))
                .expect("spawn acceptor")
        };
        Upstream {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (leading slashes optional).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url(), path.trim_start_matches('/'))
    }

    /// Serve `body` at `path` from now on (replacing what was there).
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        let body = body.into();
        let tag = etag(&body);
        let mut state = self.shared.state();
        state.etags.insert(normalize(path), tag);
        state.files.insert(normalize(path), Arc::new(body));
    }

    /// The body served at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.shared
            .state()
            .files
            .get(&normalize(path))
            .map(|b| b.to_vec())
    }

    /// Stop serving `path` (it answers 404).
    pub fn remove(&self, path: &str) {
        let mut state = self.shared.state();
        state.files.remove(&normalize(path));
        state.etags.remove(&normalize(path));
    }

    /// The next `times` GETs of `path` get `fault`, after any faults already
    /// queued for it; then normal service resumes.
    pub fn fault(&self, path: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.shared
            .state()
            .faults
            .entry(normalize(path))
            .or_default()
            .push_back((fault, times));
    }

    /// Drop the faults still queued for `path`.
    pub fn clear_faults(&self, path: &str) {
        self.shared.state().faults.remove(&normalize(path));
    }

    /// Wait `d` before every response (zero by default).
    pub fn set_delay(&self, d: Duration) {
        self.shared.state().delay = d;
    }

    /// Stop (or resume) recording requests: a benchmark serving many runs
    /// would otherwise grow the log, and copy it under the server's lock.
    pub fn set_request_log(&self, on: bool) {
        self.shared.state().no_log = !on;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    /// The requests for `path` (query string ignored), in order.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        let path = normalize(path);
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many GET requests `path` received.
    pub fn gets(&self, path: &str) -> usize {
        self.requests_for(path)
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }
}

impl Upstream {
    /// Start `n` idle connection threads ahead of a burst of connections.
    pub fn prewarm(&self, n: usize) {
        for _ in 0..n {
            let shared = Arc::clone(&self.shared);
            let _ = thread::Builder::new()
                .name("upstream-conn".into())
                .spawn(move || pool_thread(None, &shared));
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
        for (_, conn) in self.shared.conns().drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// `/a/b` for `a/b`, `/a/b`, `/a/b?x=1`.
fn normalize(path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    format!("/{}", path.trim_start_matches('/'))
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = conn.try_clone() {
            shared.conns().insert(id, clone);
        }
        // The most recently idle pool thread takes it; else a new thread
        // joins the pool.
        let mut next = Some((id, conn));
        while let Some(c) = next.take() {
            let waiting = shared.idle().pop();
            let Some(waiting) = waiting else {
                next = Some(c);
                break;
            };
            // A thread that is gone gives it back; try the next.
            if let Err(mpsc::SendError(c)) = waiting.send(c) {
                next = Some(c);
            }
        }
        let Some((id, conn)) = next else { continue };
        let pool = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("upstream-conn".into())
            .spawn(move || pool_thread(Some((id, conn)), &pool));
        if spawned.is_err() {
            // Out of threads: the connection is dropped, which the client
            // sees as a reset.
            shared.conns().remove(&id);
        }
    }
    // Idle threads end when their senders go.
    shared.idle().clear();
}

/// A pool thread: serve `first`, then each connection handed to it while
/// idle, until the server stops.
fn pool_thread(first: Option<(u64, TcpStream)>, shared: &Shared) {
    let mut next = first;
    loop {
        let (id, conn) = match next.take() {
            Some(c) => c,
            None => {
                // The list holds the only sender, so clearing it ends us.
                let (tx, rx) = mpsc::channel();
                shared.idle().push(tx);
                // Pushed after the acceptor emptied the list (it stops
                // after `stop` is set): nobody would send.
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                match rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                }
            }
        };
        let _ = serve_connection(&conn, shared);
        let _ = conn.shutdown(Shutdown::Both);
        shared.conns().remove(&id);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Whether to keep the connection open after a response.
enum After {
    KeepAlive,
    Close,
}

fn serve_connection(conn: &TcpStream, shared: &Shared) -> io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn);
    // A response goes out in one write where it fits (as a real server's
    // would), not its head and body in two segments.
    let mut writer = io::BufWriter::with_capacity(64 * 1024, conn);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let Some((request, version)) = parse_head(&head) else {
            let reply = Reply {
                keep_alive: false,
                head_only: false,
            };
            write_simple(&mut writer, 400, "bad request\n", reply, &[])?;
            return writer.flush();
        };
        // Discard a request body, if any (only Content-Length bodies).
        if let Some(len) = request
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
        {
            io::copy(&mut (&mut reader).take(len), &mut io::sink())?;
        }
        let connection = request
            .header("connection")
            .unwrap_or("")
            .to_ascii_lowercase();
        let keep_alive = if version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
        let after = respond(&request, keep_alive, shared, &mut writer)?;
        writer.flush()?;
        match after {
            After::KeepAlive if keep_alive => {}
            _ => return Ok(()),
        }
    }
}

/// Read up to and including the blank line; `None` on a clean EOF.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                // Tolerate stray blank lines between requests.
                continue;
            }
            return Ok(Some(head));
        }
        head.push_str(&line);
        if head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
    }
}

fn parse_head(head: &str) -> Option<(Request, String)> {
    let mut lines = head.lines();
    let mut parts = lines.next()?.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let request = Request {
        method,
        path: normalize(path),
        query,
        headers,
    };
    Some((request, version))
}

fn respond(
    request: &Request,
    keep_alive: bool,
    shared: &Shared,
    w: &mut impl Write,
) -> io::Result<After> {
    let (body, tag, fault, delay) = {
        let mut state = shared.state();
        if !state.no_log {
            state.requests.push(request.clone());
        }
        let fault = if request.method == "GET" {
            take_fault(&mut state, &request.path)
        } else {
            None
        };
        (
            state.files.get(&request.path).cloned(),
            state.etags.get(&request.path).cloned(),
            fault,
            state.delay,
        )
    };
    if !delay.is_zero() {
        thread::sleep(delay);
    }
    let head_only = request.method == "HEAD";
    let reply = Reply {
        keep_alive,
        head_only,
    };

    match fault {
        Some(Fault::Status(code)) => {
            write_simple(w, code, "injected fault\n", reply, &[])?;
            return Ok(After::KeepAlive);
        }
        Some(Fault::Reset) => return Ok(After::Close),
        Some(Fault::RetryAfter { secs }) => {
            let secs = secs.to_string();
            write_simple(w, 429, "injected fault\n", reply, &[("Retry-After", &secs)])?;
            return Ok(After::KeepAlive);
        }
        _ => {}
    }

    if request.method != "GET" && request.method != "HEAD" {
        write_simple(
            w,
            405,
            "method not allowed\n",
            reply,
            &[("Allow", "GET, HEAD")],
        )?;
        return Ok(After::KeepAlive);
    }
    let Some(body) = body else {
        write_simple(w, 404, "not found\n", reply, &[])?;
        return Ok(After::KeepAlive);
    };

    let etag = tag.unwrap_or_else(|| etag(&body));
    if let Some(inm) = request.header("if-none-match") {
        if etag_matches(inm, &etag) {
            write_head(w, 304, None, keep_alive, &[("ETag", &etag)])?;
            return Ok(After::KeepAlive);
        }
    }

    let len = body.len() as u64;
    let if_range_ok = request.header("if-range").is_none_or(|v| v.trim() == etag);
    let range = match request.header("range") {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => RangeSpec::Whole,
    };
    let (status, start, end, content_range) = match range {
        RangeSpec::Whole => (200, 0, len, None),
        RangeSpec::Part(a, b) => (206, a, b + 1, Some(format!("bytes {a}-{b}/{len}"))),
        RangeSpec::Unsatisfiable => {
            let cr = format!("bytes */{len}");
            write_simple(
                w,
                416,
                "range not satisfiable\n",
                reply,
                &[("Content-Range", &cr), ("ETag", &etag)],
            )?;
            return Ok(After::KeepAlive);
        }
    };
    let slice = &body[start as usize..end as usize];
    let mut extra: Vec<(&str, &str)> = vec![("ETag", &etag), ("Accept-Ranges", "bytes")];
    if let Some(cr) = &content_range {
        extra.push(("Content-Range", cr));
    }
    let claimed = match fault {
        Some(Fault::LongLength { extra }) => Some(slice.len() as u64 + extra),
        Some(Fault::Huge { len }) => Some(len),
        Some(Fault::Endless { .. }) => None,
        _ => Some(slice.len() as u64),
    };
    let endless = matches!(fault, Some(Fault::Endless { .. }));
    write_head(w, status, claimed, keep_alive && !endless, &extra)?;
    if head_only {
        w.flush()?;
        return Ok(After::KeepAlive);
    }
    match fault {
        Some(Fault::CutBody { after }) => {
            w.write_all(&slice[..after.min(slice.len())])?;
            w.flush()?;
            Ok(After::Close)
        }
        Some(Fault::Trickle { bytes, every_ms }) => {
            for chunk in slice.chunks(bytes.max(1)) {
                w.write_all(chunk)?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(every_ms));
            }
            Ok(After::KeepAlive)
        }
        Some(Fault::Stall { ms }) => {
            w.flush()?;
            std::thread::sleep(Duration::from_millis(ms));
            Ok(After::Close)
        }
        Some(Fault::LongLength { .. }) => {
            w.write_all(slice)?;
            w.flush()?;
            Ok(After::Close)
        }
        Some(Fault::Endless { up_to: len }) | Some(Fault::Huge { len }) => {
            // Whole copies of the body, in writes of about 1 MiB; the
            // client hanging up ends it early.
            let copies = (1 << 20) / slice.len().max(1) + 1;
            let block = slice.repeat(copies);
            let mut sent = 0u64;
            while sent < len && !block.is_empty() {
                let n = (len - sent).min(block.len() as u64) as usize;
                if w.write_all(&block[..n]).is_err() {
                    return Ok(After::Close);
                }
                sent += n as u64;
            }
            let _ = w.flush();
            Ok(After::Close)
        }
        Some(Fault::WrongBytes) => {
            let wrong: Vec<u8> = slice.iter().map(|b| b ^ 0x5a).collect();
            w.write_all(&wrong)?;
            w.flush()?;
            Ok(After::KeepAlive)
        }
        _ => {
            w.write_all(slice)?;
            w.flush()?;
            Ok(After::KeepAlive)
        }
    }
}

fn take_fault(state: &mut State, path: &str) -> Option<Fault> {
    let queue = state.faults.get_mut(path)?;
    let (fault, left) = queue.front_mut()?;
    let fault = *fault;
    *left -= 1;
    if *left == 0 {
        queue.pop_front();
    }
    if queue.is_empty() {
        state.faults.remove(path);
    }
    Some(fault)
}

enum RangeSpec {
    Whole,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; anything we do not understand (several ranges, other
/// units, syntax errors) means the whole body, as RFC 9110 allows.
fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix: the last n bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if len == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Part(len.saturating_sub(n), len - 1),
            Err(_) => RangeSpec::Whole,
        };
    }
    let Ok(first) = a.parse::<u64>() else {
        return RangeSpec::Whole;
    };
    let last = if b.is_empty() {
        None
    } else {
        match b.parse::<u64>() {
            Ok(last) if last >= first => Some(last),
            _ => return RangeSpec::Whole,
        }
    };
    if first >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
}

/// A strong ETag: FNV-1a (64 bit) of the body and its length, in hex.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}-{:x}\"", body.len())
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_head(
    w: &mut impl Write,
    code: u16,
    content_length: Option<u64>,
    keep_alive: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    if let Some(len) = content_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

/// A response with a short text body (left out for HEAD requests).
fn write_simple(
    w: &mut impl Write,
    code: u16,
    body: &str,
    reply: Reply,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    // 1xx, 204 and 304 carry no body.
    let body = if code < 200 || code == 204 || code == 304 {
        ""
    } else {
        body
    };
    let mut extra = extra.to_vec();
    extra.push(("Content-Type", "text/plain"));
    write_head(w, code, Some(body.len() as u64), reply.keep_alive, &extra)?;
    if !reply.head_only {
        w.write_all(body.as_bytes())?;
    }
    w.flush()
}

/// How to answer: keep the connection, send bodies.
#[derive(Clone, Copy)]
struct Reply {
    keep_alive: bool,
    head_only: bool,
}
