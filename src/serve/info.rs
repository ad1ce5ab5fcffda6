//! What a person or a monitor asks the server itself:
//!
//! - `GET /` — an HTML page telling how to point each client at this
//!   server, for the trees the root holds or an upstream fills;
//! - `GET /metrics` — the counters of [`super::ops`] for Prometheus;
//! - `GET /stats` — JSON: files and bytes per tree (recounted at most every
//!   [`STATS_TTL`]) and, when an upstream is configured, the pull-through
//!   cache's counters as they are now (`cache`: hits, misses,
//!   upstream_bytes … see [`CacheStats`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::cache::{Cache, CacheStats};
use super::path::is_hidden_name;
use super::{PublicBase, ServeOptions};

/// How long a `/stats` count is reused.
pub const STATS_TTL: Duration = Duration::from_secs(30);

/// The trees a root may hold, as (name in `/stats`, directory).
pub const TREES: &[(&str, &str)] = &[
    ("rustup", "rustup"),
    ("toolchain", "dist"),
    ("crates", "crates"),
    ("crates-index", "git/crates.io-index"),
    ("hex", "hex"),
    ("arch", "archlinux"),
];

struct InfoState {
    root: PathBuf,
    base: PublicBase,
    stats: Mutex<Option<(Instant, Arc<Stats>)>>,
    cache: Option<Arc<Cache>>,
    metrics: Arc<super::ops::Metrics>,
}

/// `/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Per tree present: files and bytes (hidden and unfinished files not
    /// counted).
    pub trees: Vec<TreeStats>,
    /// Seconds since the count was made.
    pub age_secs: u64,
    /// The pull-through cache's counters, when an upstream is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
}

/// One tree's count.
#[derive(Debug, Clone, Serialize)]
pub struct TreeStats {
    /// `rustup`, `toolchain`, `crates` …
    pub name: &'static str,
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The routes `/` and `/stats`.
pub fn routes(opts: &ServeOptions, cache: Option<Arc<Cache>>) -> Router {
    let state = Arc::new(InfoState {
        root: opts.root.clone(),
        base: PublicBase::new(opts),
        stats: Mutex::new(None),
        cache,
        metrics: Arc::clone(&opts.ops.metrics),
    });
    Router::new()
        .route("/", get(index_page))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Count the files and bytes of every tree under `root`.
pub fn count(root: &Path) -> Vec<TreeStats> {
    fn walk(dir: &Path, files: &mut u64, bytes: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_hidden_name(&name) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&entry.path(), files, bytes),
                Ok(t) if t.is_file() => {
                    *files += 1;
                    *bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                }
                _ => {}
            }
        }
    }
    TREES
        .iter()
        .filter(|(_, dir)| root.join(dir).is_dir())
        .map(|(name, dir)| {
            let (mut files, mut bytes) = (0, 0);
            walk(&root.join(dir), &mut files, &mut bytes);
            TreeStats { name, files, bytes }
        })
        .collect()
}

async fn stats(State(state): State<Arc<InfoState>>) -> Response {
    let cached = state
        .stats
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(at, _)| at.elapsed() < STATS_TTL);
    let (at, stats) = match cached {
        Some(c) => c,
        None => {
            let root = state.root.clone();
            let trees = tokio::task::spawn_blocking(move || count(&root))
                .await
                .unwrap_or_default();
            let fresh = (
                Instant::now(),
                Arc::new(Stats {
                    trees,
                    age_secs: 0,
                    cache: None,
                }),
            );
            if let Ok(mut c) = state.stats.lock() {
                *c = Some(fresh.clone());
            }
            fresh
        }
    };
    let body = Stats {
        trees: stats.trees.clone(),
        age_secs: at.elapsed().as_secs(),
        cache: state.cache.as_ref().map(|c| c.stats()),
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    )
        .into_response()
}

/// `/metrics`: Prometheus' text exposition format 0.0.4 ([`super::ops`]).
async fn metrics(State(state): State<Arc<InfoState>>) -> Response {
    let cache = state.cache.as_ref().map(|c| c.stats());
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        state.metrics.render(cache.as_ref()),
    )
        .into_response()
}

/// Escape text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The index page for `base`, listing the trees present under `root` and
/// those an upstream fills on demand (`pulled`: their directories).
pub fn page(root: &Path, base: &str, pulled: &[&str]) -> String {
    let b = esc(base);
    let mut sections = String::new();
    let mut add = |dir: &str, title: &str, body: String| {
        if root.join(dir).is_dir() || pulled.contains(&dir) {
            sections.push_str(&format!(
                "<section id=\"{dir}\"><h2>{title}</h2>\n{body}</section>\n"
            ));
        }
    };
    add(
        "dist",
        "Rust toolchains (rustup)",
        format!("<pre>export RUSTUP_DIST_SERVER={b}\nrustup toolchain install stable</pre>\n"),
    );
    add(
        "rustup",
        "rustup itself",
        format!(
            "<pre>curl -O {b}/rustup/dist/x86_64-unknown-linux-gnu/rustup-init\n\
             export RUSTUP_UPDATE_ROOT={b}/rustup\nrustup self update</pre>\n"
        ),
    );
    add(
        "crates",
        "Crates (cargo)",
        format!(
            "<p>In <code>~/.cargo/config.toml</code>:</p>\n<pre>[source.crates-io]\nreplace-with = \"mirror\"\n\n\
             [source.mirror]\nregistry = \"sparse+{b}/index/\"\n# or the git index:\n\
             # registry = \"{b}/git/crates.io-index\"</pre>\n"
        ),
    );
    add(
        "hex",
        "Hex (rebar3, mix)",
        format!(
            "<pre>export HEX_CDN={b}/hex      # rebar3\nexport HEX_MIRROR={b}/hex   # mix\n\
             mix local.hex --force   # Hex itself, from this mirror</pre>\n"
        ),
    );
    add(
        "archlinux",
        "Arch Linux (pacman)",
        format!(
            "<p>In <code>/etc/pacman.d/mirrorlist</code>:</p>\n<pre>Server = {b}/archlinux/$repo/os/$arch</pre>\n"
        ),
    );
    if sections.is_empty() {
        sections.push_str("<p>This mirror holds no trees yet.</p>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mirror at {b}</title></head>\n<body>\n<h1>mirror at {b}</h1>\n\
         <p>Point your clients at this server:</p>\n{sections}\
         <p><a href=\"/stats\">/stats</a> · <a href=\"/health\">/health</a></p>\n</body></html>\n"
    )
}

async fn index_page(State(state): State<Arc<InfoState>>, headers: HeaderMap) -> Response {
    let base = state.base.for_request(&headers);
    let root = state.root.clone();
    let pulled = state
        .cache
        .as_ref()
        .map(|c| c.options().trees())
        .unwrap_or_default();
    let html = tokio::task::spawn_blocking(move || page(&root, &base, &pulled))
        .await
        .unwrap_or_default();
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}
