//! `mirror serve`: one HTTP server for every mirrored tree under a root,
//! read-only unless it pulls through from an upstream.
//!
//! # What it answers
//!
//! | request | answer |
//! |---|---|
//! | `GET/HEAD /health` | `200 ok` (open even with `--auth-file`) |
//! | `GET /` | the landing page: what is held, how to point clients here ([`info`]) |
//! | `GET /stats`, `GET /metrics` | JSON counts; Prometheus text ([`ops`]) |
//! | `GET/HEAD /<path>` | the file `<root>/<path>` (after [`Rewrite`]s), see below |
//! | `GET/HEAD /dist/…/`, `/rustup/…/`, `/archlinux/…/` | a directory listing ([`listing`]) |
//! | any other method | `405` with `Allow: GET, HEAD` |
//!
//! With `--auth-file` every path but `/health` first needs a credential
//! ([`auth`]); with `--access-log` every request is logged ([`ops`]).
//!
//! Static files honour `Range` (one range → `206` + `Content-Range`; several
//! → `200` whole file; unsatisfiable → `416` + `Content-Range: bytes */LEN`),
//! `If-Range`, `HEAD`, a strong `ETag` from (size, mtime) with
//! `If-None-Match` → `304`, and `Last-Modified` with `If-Modified-Since` →
//! `304` (pacman revalidates databases that way; rebar3 insists on ETags).
//! Bodies are streamed from disk, small files kept in memory while they
//! stay the same file. Details in [`files`]. The server runs one event loop
//! per core ([`loops`]), http and https alike.
//!
//! # Limits
//!
//! Every phase of a connection has a deadline (TLS handshake, request
//! header, request body, response, keep-alive) and the open connections a
//! cap below the open-file limit, at which the connections that have not
//! sent a request yet are shed first, so new clients are served while
//! stalled ones hold the cap: see [`limits`] for each limit, its default and
//! its flag.
//!
//! # The root
//!
//! Everything under the root is served, so [`check_root`] refuses a root
//! that is the file system's root, a home directory, or a directory that
//! holds no mirror tree (none of the directories of [`info::TREES`] nor
//! `.mirror/`; with an upstream configured an empty directory is fine, the
//! cache fills it), unless [`ServeOptions::force_root`] (`--force-root`).
//!
//! # Path safety
//!
//! The raw request path is split on `/` and each segment is percent-decoded
//! exactly once ([`path::parse_request_path`]). Traversal (`..`, `%2e%2e`),
//! encoded separators (`%2f`, `%5c`), backslashes, NUL and control
//! characters, and empty segments are `400`. Dot-files and dot-directories
//! (`.mirror/`, `.git/`, the store's `.NAME.tmp.PID.N.RANDOM` temporaries) and
//! `NAME.partial` downloads are `404`, as are directories, but for those of
//! the browsable trees, which are listed ([`listing`]).
//! Then the final path is canonicalized and must lie under the canonicalized
//! root with no hidden component below it, so a symlink in the tree cannot
//! leak a file from outside it (symlinks *within* the tree, such as Arch's
//! `core.db` → `core.db.tar.gz`, are served).
//!
//! # Rewrites
//!
//! Ecosystems whose public URLs differ from the on-disk layout plug a
//! [`Rewrite`] into [`ServeOptions::rewrites`]. Each gets the decoded,
//! validated segments; the first to return `Some` decides the on-disk
//! segments, which are validated again. Without a match the request path is
//! the on-disk path. Closures `Fn(&[&str]) -> Option<Vec<String>>` are
//! rewrites, and [`PrefixRewrite`] maps one path prefix onto another.
//!
//! # Pull-through cache
//!
//! With [`ServeOptions::upstream`], a request for a file the tree lacks is
//! fetched from upstream, verified and published before it is answered,
//! and metadata is revalidated after a TTL; see [`cache`]. The tree is then
//! no longer read-only, but everything is written as the offline commands
//! write it (a temporary or `.partial` sibling, then a rename).
//!
//! # API
//!
//! - [`router`] builds the axum [`Router`]; later routes (sparse index, git
//!   smart HTTP) can be `merge`d or `route`d onto it.
//! - [`bind_std`] opens the listener ([`ServeError::AddrInUse`] names the
//!   address and suggests `--port`).
//! - [`run_blocking`] is the CLI's entry: raise the open-file limit, check
//!   the root, bind, report the address through a callback, serve until
//!   Ctrl-C (a second Ctrl-C, or [`SHUTDOWN_GRACE`] after the first, drops
//!   unfinished transfers).
//! - [`spawn`] is for tests: a server on its own thread and runtime;
//!   dropping the [`RunningServer`] stops it.

pub mod access_log;
pub mod auth;
pub mod cache;
mod conn;
pub mod crates;
pub mod files;
pub mod git;
pub mod held;
pub mod info;
pub mod limits;
pub mod listing;
pub mod loops;
pub mod ops;
pub mod path;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONTENT_TYPE, RANGE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;

use self::path::{check_segment, parse_request_path, Refusal};
use crate::store;

/// How long a shutdown waits for in-flight transfers before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Maps request segments onto on-disk segments for one ecosystem
/// (crates: `/crates/serde/serde-1.0.0.crate` →
/// `crates/se/rd/serde/serde-1.0.0.crate`).
pub trait Rewrite: Send + Sync {
    /// `segments` are decoded and validated. Return the on-disk segments
    /// (relative to the root) if this rewrite handles the path, else `None`.
    fn rewrite(&self, segments: &[&str]) -> Option<Vec<String>>;
}

impl<F> Rewrite for F
where
    F: Fn(&[&str]) -> Option<Vec<String>> + Send + Sync,
{
    fn rewrite(&self, segments: &[&str]) -> Option<Vec<String>> {
        self(segments)
    }
}

/// Serves `from/...` as `to/...` (`from` may be empty: the whole tree).
#[derive(Debug, Clone)]
pub struct PrefixRewrite {
    /// Request prefix segments.
    pub from: Vec<String>,
    /// On-disk prefix segments.
    pub to: Vec<String>,
}

impl PrefixRewrite {
    /// From slash-separated prefixes, e.g. `("hex", "hex/repo")`.
    pub fn new(from: &str, to: &str) -> Self {
        let split = |s: &str| {
            s.split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
        PrefixRewrite {
            from: split(from),
            to: split(to),
        }
    }
}

impl Rewrite for PrefixRewrite {
    fn rewrite(&self, segments: &[&str]) -> Option<Vec<String>> {
        if segments.len() <= self.from.len() || !self.from.iter().zip(segments).all(|(a, b)| a == b)
        {
            return None;
        }
        let rest = segments[self.from.len()..].iter().map(|s| s.to_string());
        Some(self.to.iter().cloned().chain(rest).collect())
    }
}

/// What `mirror serve` needs.
#[derive(Clone)]
pub struct ServeOptions {
    /// The mirror root; every served file is under it.
    pub root: PathBuf,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// Consulted in order before mapping a path onto the tree.
    pub rewrites: Vec<Arc<dyn Rewrite>>,
    /// Public URL of this server for `config.json` of the sparse index
    /// (`--base-url`); `None`: from the request's `Host`, else bind:port.
    pub base_url: Option<String>,
    /// Serve https with this certificate and key (`--tls-cert`,
    /// `--tls-key`); `None`: plain http.
    pub tls: Option<tls::TlsFiles>,
    /// Pull what the tree lacks from these upstreams (`--upstream-…`,
    /// see [`cache`]); `None`: serve the tree as it is.
    pub upstream: Option<cache::UpstreamOptions>,
    /// How many git processes the git index runs at once, and for how long.
    pub git: git::GitLimits,
    /// Timeouts and the connection cap (`--header-timeout`, …).
    pub limits: limits::Limits,
    /// Serve a root [`check_root`] would refuse (`--force-root`).
    pub force_root: bool,
    /// The access log, the credentials, the metrics ([`ops`], [`auth`]).
    pub ops: ops::OpsOptions,
}

impl ServeOptions {
    /// Options serving `root` on `127.0.0.1:0` with no rewrites, for tests
    /// and programs that choose the root themselves: [`check_root`]'s
    /// policy is off ([`ServeOptions::force_root`]), as such a root often
    /// starts empty.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        ServeOptions {
            root: root.into(),
            bind: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            rewrites: Vec::new(),
            base_url: None,
            tls: None,
            upstream: None,
            git: git::GitLimits::default(),
            limits: limits::Limits::default(),
            force_root: true,
            ops: ops::OpsOptions::default(),
        }
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("root", &self.root)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("rewrites", &self.rewrites.len())
            .field("base_url", &self.base_url)
            .field("tls", &self.tls)
            .field("upstream", &self.upstream)
            .field("git", &self.git)
            .field("limits", &self.limits)
            .field("force_root", &self.force_root)
            .field("ops", &self.ops)
            .finish()
    }
}

/// This server's public address (`<base>`), as clients should use it in
/// URLs we hand out (`config.json`, the index page): `--base-url` when
/// given, else the scheme + the request's `Host`, else the bound address.
#[derive(Debug, Clone)]
pub struct PublicBase {
    configured: Option<String>,
    scheme: &'static str,
    bind_base: String,
}

impl PublicBase {
    /// From the options.
    pub fn new(opts: &ServeOptions) -> Self {
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        PublicBase {
            configured: opts
                .base_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            scheme,
            bind_base: format!("{scheme}://{}", opts.addr()),
        }
    }

    /// `<base>` for one request.
    pub fn for_request(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(base) = &self.configured {
            return base.clone();
        }
        headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| is_plausible_host(h))
            .map(|h| format!("{}://{h}", self.scheme))
            .unwrap_or_else(|| self.bind_base.clone())
    }
}

/// A `Host` header we are willing to put into URLs we hand out: a host
/// name or address with an optional port, nothing else.
pub(crate) fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The port is taken.
    #[error(
        "cannot listen on {addr}: address already in use \
         (is another server running there? choose another port with --port)"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure to listen (permission, address not local, ...).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The root is missing or not a directory.
    #[error("cannot serve {}: not a directory", path.display())]
    Root {
        /// The root given.
        path: PathBuf,
        /// Why it is unusable.
        #[source]
        source: std::io::Error,
    },
    /// The root is one serving it would expose what it should not.
    #[error(
        "refusing to serve {}: {reason}; point --root (or MIRROR_ROOT) at a mirror tree, \
         or pass --force-root to serve it anyway",
        path.display()
    )]
    RootRefused {
        /// The root given.
        path: PathBuf,
        /// What it is.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the server runtime")]
    Runtime(#[source] std::io::Error),
    /// Serving failed after the listener was open.
    #[error("serving on {addr} failed")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Check that the root is an existing directory and one it is safe to
/// serve (unless [`ServeOptions::force_root`]): not the file system's root,
/// not a home directory, and holding a mirror tree (or, with an upstream
/// configured, empty).
pub fn check_root(opts: &ServeOptions) -> Result<(), ServeError> {
    let err = |source| ServeError::Root {
        path: opts.root.clone(),
        source,
    };
    let meta = std::fs::metadata(&opts.root).map_err(err)?;
    if !meta.is_dir() {
        return Err(err(std::io::Error::other("not a directory")));
    }
    if opts.force_root {
        return Ok(());
    }
    let pulls = opts.upstream.as_ref().is_some_and(|u| u.any());
    match refuse_root(&opts.root, pulls) {
        Some(reason) => Err(ServeError::RootRefused {
            path: opts.root.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `root` (an existing directory) should not be served, if it should
/// not. `pulls`: an upstream fills it, so it may start empty.
fn refuse_root(root: &Path, pulls: bool) -> Option<String> {
    let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let via = if real.as_path() != root {
        format!(" ({})", real.display())
    } else {
        String::new()
    };
    if real.parent().is_none() {
        return Some(format!(
            "it is the file system's root{via}: every file on the host would be \
             served, /proc/self/environ included"
        ));
    }
    if home_dirs().contains(&real) {
        return Some(format!(
            "it is a home directory{via}: keys, tokens and shell history would be served"
        ));
    }
    let has_tree = info::TREES
        .iter()
        .map(|(_, dir)| *dir)
        .chain([store::META_DIR])
        .any(|dir| real.join(dir).is_dir());
    if has_tree {
        return None;
    }
    let empty = || std::fs::read_dir(&real).is_ok_and(|mut d| d.next().is_none());
    if pulls && empty() {
        return None;
    }
    let expected: Vec<String> = info::TREES
        .iter()
        .map(|(_, dir)| format!("{dir}/"))
        .chain([format!("{}/", store::META_DIR)])
        .collect();
    Some(format!(
        "it holds no mirror tree{via} (expected one of {}{})",
        expected.join(", "),
        if pulls {
            ", or an empty directory for the pull-through cache"
        } else {
            ""
        }
    ))
}

/// The home directories of this host: `$HOME` and every one in
/// `/etc/passwd`, canonicalized (those that exist).
fn home_dirs() -> Vec<PathBuf> {
    use std::io::Read;
    let mut homes: Vec<PathBuf> = std::env::var_os("HOME")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let mut passwd = String::new();
    if let Ok(f) = std::fs::File::open("/etc/passwd") {
        // A local file, but still: no more than a large one.
        let _ = f.take(16 << 20).read_to_string(&mut passwd);
    }
    homes.extend(
        passwd
            .lines()
            .filter_map(|line| line.split(':').nth(5))
            .filter(|home| home.starts_with('/'))
            .map(PathBuf::from),
    );
    homes
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .filter(|h| h.parent().is_some())
        .collect()
}

/// Bind a standard listener on `opts.bind:opts.port` (for [`loops`]).
pub fn bind_std(opts: &ServeOptions) -> Result<std::net::TcpListener, ServeError> {
    let addr = opts.addr();
    std::net::TcpListener::bind(addr).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::AddrInUse { addr, source }
        } else {
            ServeError::Bind { addr, source }
        }
    })
}

/// A server that has started.
#[derive(Debug)]
pub struct Started {
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The connection cap in force.
    pub max_connections: usize,
    /// The open-file limit it was derived from (`None`: unlimited).
    pub fd_limit: Option<u64>,
    /// What is wrong with the limits, the TLS certificate or key, one line
    /// each.
    pub warnings: Vec<String>,
}

/// Bind `opts.bind:opts.port` and serve `router` there on [`loops`], over
/// TLS with `tls`.
fn start_loops(
    opts: &ServeOptions,
    router: Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    site: conn::Site,
) -> Result<(Started, loops::Loops), ServeError> {
    let listener = bind_std(opts)?;
    let addr = listener.local_addr().map_err(|source| ServeError::Serve {
        addr: opts.addr(),
        source,
    })?;
    let registry = Arc::new(limits::Registry::new(&opts.limits));
    let fd_limit = limits::fd_limit();
    let mut warnings = Vec::new();
    // Each connection may hold a file open besides its socket.
    let room = fd_limit.map(|n| n.saturating_sub(limits::FD_RESERVE) / 2);
    if let (Some(asked), Some(room)) = (opts.limits.max_connections, room) {
        if asked as u64 > room {
            warnings.push(format!(
                "--max-connections {asked} is more than the open-file limit ({}) leaves room \
                 for ({room}): clients could take every descriptor; raise `ulimit -n` or \
                 lower --max-connections",
                fd_limit.unwrap_or_default()
            ));
        }
    }
    if let Some(line) = exposure_warning(opts) {
        warnings.push(line);
    }
    let started = Started {
        addr,
        max_connections: registry.cap(),
        fd_limit,
        warnings,
    };
    let server = Arc::new(conn::Server::new(router, opts.limits.clone(), tls, site));
    let loops = loops::start(listener, server, registry).map_err(ServeError::Runtime)?;
    Ok((started, loops))
}

/// One line when the server listens beyond this host without
/// credentials or without TLS.
fn exposure_warning(opts: &ServeOptions) -> Option<String> {
    if opts.bind.is_loopback() {
        return None;
    }
    let addr = opts.addr();
    match (opts.ops.auth_file.is_some(), opts.tls.is_some()) {
        (true, true) => None,
        (false, false) => Some(format!(
            "listening on {addr} with neither --auth-file nor TLS: anyone who can reach it \
             reads the mirror, and what clients fetch travels in the clear"
        )),
        (false, true) => Some(format!(
            "listening on {addr} without --auth-file: anyone who can reach it reads the mirror"
        )),
        (true, false) => Some(format!(
            "listening on {addr} with --auth-file but without TLS: passwords travel in the clear \
             (add --tls-cert and --tls-key)"
        )),
    }
}

/// What the connections report to and are checked by: the metrics, the
/// access log (its writer thread started), the credentials (read).
fn site(opts: &ServeOptions) -> anyhow::Result<conn::Site> {
    let metrics = Arc::clone(&opts.ops.metrics);
    let log = match &opts.ops.access_log {
        Some(target) => Some(ops::AccessLog::start(
            target,
            opts.ops.log_format,
            opts.ops.log_queue,
            Arc::clone(&metrics.log),
        )?),
        None => None,
    };
    let auth = match &opts.ops.auth_file {
        Some(path) => Some(Arc::new(auth::Auth::load(path, Arc::clone(&metrics))?)),
        None => None,
    };
    Ok(conn::Site { metrics, log, auth })
}

/// The router: `/health`, the crate routes ([`crates::routes`],
/// [`git::routes`]) and static
/// files from `opts.root` (after `opts.rewrites`, then
/// [`crates::crate_file_rewrite`]), filled from upstream on a miss when
/// `opts.upstream` names one ([`cache`]). Other routes may be added to it.
/// Fails only when the upstream HTTP client cannot be built.
pub fn router(opts: &ServeOptions) -> anyhow::Result<Router> {
    let mut rewrites = opts.rewrites.clone();
    rewrites.push(crates::crate_file_rewrite());
    let cache = match &opts.upstream {
        Some(up) if up.any() => Some(Arc::new(cache::Cache::new(&opts.root, up.clone())?)),
        _ => None,
    };
    let index = crates::index_state(opts, cache.clone());
    let tree = Arc::new(Tree {
        root: opts.root.clone(),
        rewrites,
        cache: cache.clone(),
        files: files::FileCache::default(),
    });
    Ok(Router::new()
        .route("/health", get(health))
        .fallback(static_file)
        .with_state(tree)
        .merge(crates::routes(Arc::clone(&index)))
        .merge(git::routes(index, &opts.git, &opts.ops.metrics))
        .merge(info::routes(opts, cache)))
}

/// The peer address of the connection `req` came on, when known (the
/// pull-through cache charges upstream requests to it).
pub(crate) fn peer_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The CLI entry point: raise the open-file limit, check the root, load
/// the TLS files, bind, call `on_ready`, serve until Ctrl-C. Prints
/// nothing.
pub fn run_blocking(opts: ServeOptions, on_ready: impl FnOnce(&Started)) -> anyhow::Result<()> {
    limits::raise_fd_limit();
    check_root(&opts)?;
    let (tls, warnings) = match &opts.tls {
        Some(files) => {
            let (config, warnings) = tls::load_checked(files)?;
            (Some(config), warnings)
        }
        None => (None, Vec::new()),
    };
    let site = site(&opts)?;
    let (log, auth) = (site.log.clone(), site.auth.clone());
    let (mut started, loops) = start_loops(&opts, router(&opts)?, tls, site)?;
    started.warnings.extend(warnings);
    let addr = started.addr;
    // Ctrl-C stops accepting and gives transfers a grace period; a second
    // Ctrl-C ends them at once. The handler is in place before the address
    // is announced, so an early Ctrl-C is never fatal.
    let control = loops.control();
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let (mut interrupts, mut hangups) = {
        let _in = signals.enter();
        (
            Interrupts::new().map_err(ServeError::Runtime)?,
            hangups().map_err(ServeError::Runtime)?,
        )
    };
    on_ready(&started);
    std::thread::Builder::new()
        .name("mirror-serve-signals".into())
        .spawn(move || {
            signals.block_on(async {
                // SIGHUP: reopen the access log, reread the auth file.
                tokio::spawn(async move {
                    while hangups.next().await {
                        if let Some(log) = &log {
                            log.reopen();
                        }
                        if let Some(auth) = &auth {
                            match auth.reload() {
                                Ok(n) => {
                                    crate::log!("mirror serve: auth file reread: {n} credentials")
                                }
                                Err(e) => crate::log!(
                                    "mirror serve: {e}; the credentials read before stay in force"
                                ),
                            }
                        }
                    }
                });
                interrupts.next().await;
                control.stop();
                tokio::select! {
                    _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
                    _ = interrupts.next() => {}
                }
                control.abort();
            })
        })
        .map_err(ServeError::Runtime)?;
    loops
        .join()
        .map_err(|source| ServeError::Serve { addr, source })?;
    Ok(())
}

/// SIGHUP as a stream, its handler installed when created (so a SIGHUP
/// never ends the server).
struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

fn hangups() -> std::io::Result<Hangups> {
    Ok(Hangups {
        #[cfg(unix)]
        signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
    })
}

impl Hangups {
    /// The next SIGHUP; `false` when there will be none.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            std::future::pending::<bool>().await
        }
    }
}

/// Ctrl-C (SIGINT) as a stream, its handler installed when created.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Install the handler (inside a runtime context).
    fn new() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    /// The next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A server on its own thread; dropping it shuts it down.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    scheme: &'static str,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// `http://ADDR` (or `https://`) + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// Stop and wait for the thread; returns how serving ended.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Start a server on its own thread and runtime (for tests; callable from
/// inside another runtime). Binding happens before this returns, so errors
/// such as a port in use come back here. Dropping the [`RunningServer`]
/// stops it, waiting at most [`SHUTDOWN_GRACE`] for open transfers.
pub fn spawn(opts: ServeOptions) -> anyhow::Result<RunningServer> {
    check_root(&opts)?;
    let tls = opts.tls.as_ref().map(tls::load).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let router = router(&opts)?;
    let (started, loops) = start_loops(&opts, router, tls, site(&opts)?)?;
    let addr = started.addr;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("mirror-serve-{}", addr.port()))
        .spawn(move || -> std::io::Result<()> {
            let control = loops.control();
            // A dropped sender stops the server as well.
            let _ = stop_rx.blocking_recv();
            control.stop();
            let _ = std::thread::Builder::new()
                .name("mirror-serve-grace".into())
                .spawn(move || {
                    std::thread::sleep(SHUTDOWN_GRACE);
                    control.abort();
                });
            loops.join()
        })
        .map_err(ServeError::Runtime)?;
    Ok(RunningServer {
        addr,
        scheme,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// What the static-file fallback needs.
struct Tree {
    root: PathBuf,
    rewrites: Vec<Arc<dyn Rewrite>>,
    cache: Option<Arc<cache::Cache>>,
    /// Small files kept in memory between requests.
    files: files::FileCache,
}

impl Tree {
    /// Request segments → on-disk segments.
    fn map(&self, segments: &[String]) -> Result<Vec<String>, Refusal> {
        let borrowed: Vec<&str> = segments.iter().map(String::as_str).collect();
        for rewrite in &self.rewrites {
            if let Some(mapped) = rewrite.rewrite(&borrowed) {
                if mapped.is_empty() {
                    return Err(Refusal::NotFound);
                }
                for seg in &mapped {
                    check_segment(seg)?;
                }
                return Ok(mapped);
            }
        }
        Ok(segments.to_vec())
    }
}

async fn health() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "ok\n",
    )
        .into_response()
}

async fn static_file(State(tree): State<Arc<Tree>>, req: Request) -> Response {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        let mut res = status_response(StatusCode::METHOD_NOT_ALLOWED);
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let segments = match parse_request_path(req.uri().path()).and_then(|s| tree.map(&s)) {
        Ok(s) => s,
        Err(Refusal::NotFound) => return not_found_or_listing(&tree, req.uri().clone()).await,
        Err(refusal) => return status_response(refusal.status()),
    };
    let name = segments.last().map(String::as_str).unwrap_or("");
    if let Some(cache) = &tree.cache {
        // Only a plain GET of the whole file may follow a download.
        let may_follow = method == Method::GET && !req.headers().contains_key(RANGE);
        let prepared = cache::for_client(peer_ip(&req), cache.prepare(&segments, may_follow));
        match prepared.await {
            Ok(Some(following)) => return following.response(name),
            Ok(None) => {}
            Err(e) => return e.response(),
        }
    }
    let key = segments.join("/");
    if let Some(served) = tree.files.lookup(&tree.root, &key) {
        return files::respond(method, req.headers(), name, served).await;
    }
    let Some((_, file)) = files::resolve(&tree.root, &segments).await else {
        return not_found_or_listing(&tree, req.uri().clone()).await;
    };
    tree.files.remember(key, &file);
    files::respond(method, req.headers(), name, files::Served::opened(file)).await
}

/// `404`, unless the request names a browsable directory ([`listing`]).
async fn not_found_or_listing(tree: &Tree, uri: axum::http::Uri) -> Response {
    match listing::respond(&tree.root, uri.path(), uri.query()).await {
        Some(res) => res,
        None => status_response(StatusCode::NOT_FOUND),
    }
}

/// A short plain-text answer for an error status.
pub(crate) fn status_response(status: StatusCode) -> Response {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rewrite_maps_only_below_its_prefix() {
        let r = PrefixRewrite::new("/hex/", "hex/repo");
        assert_eq!(
            r.rewrite(&["hex", "packages", "jason"]),
            Some(vec![
                "hex".into(),
                "repo".into(),
                "packages".into(),
                "jason".into()
            ])
        );
        assert_eq!(r.rewrite(&["hex"]), None);
        assert_eq!(r.rewrite(&["hexx", "a"]), None);
        assert_eq!(r.rewrite(&["dist", "a"]), None);
    }

    #[test]
    fn rewrite_output_is_validated() {
        let bad: Arc<dyn Rewrite> =
            Arc::new(|_: &[&str]| Some(vec!["..".to_string(), "etc".to_string()]));
        let hidden: Arc<dyn Rewrite> = Arc::new(|_: &[&str]| Some(vec![".mirror".to_string()]));
        let tree = |r: Arc<dyn Rewrite>| Tree {
            root: PathBuf::from("/nonexistent"),
            rewrites: vec![r],
            cache: None,
            files: files::FileCache::default(),
        };
        assert!(matches!(
            tree(bad).map(&["a".into()]),
            Err(Refusal::Malformed(_))
        ));
        assert_eq!(tree(hidden).map(&["a".into()]), Err(Refusal::Hidden));
    }

    #[test]
    fn first_matching_rewrite_wins() {
        let tree = Tree {
            root: PathBuf::from("/nonexistent"),
            rewrites: vec![
                Arc::new(PrefixRewrite::new("a", "x")),
                Arc::new(PrefixRewrite::new("a", "y")),
            ],
            cache: None,
            files: files::FileCache::default(),
        };
        assert_eq!(tree.map(&["a".into(), "f".into()]).unwrap(), ["x", "f"]);
        assert_eq!(tree.map(&["b".into(), "f".into()]).unwrap(), ["b", "f"]);
    }

    #[test]
    fn addr_in_use_names_address_and_port_flag() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let e = ServeError::AddrInUse {
            addr,
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let text = e.to_string();
        assert!(
            text.contains("127.0.0.1:8000") && text.contains("--port"),
            "{text}"
        );
    }
}
