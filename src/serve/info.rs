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
use super::held::Held;
use super::listing::{date, esc, STYLE};
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
    auth: bool,
    held: Arc<HeldCache>,
}

/// What the tree holds, read again at most every [`STATS_TTL`].
#[derive(Default)]
struct HeldCache(Mutex<Option<(Instant, Arc<Held>)>>);

impl HeldCache {
    fn get(&self, root: &Path) -> Arc<Held> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, held)) = slot.as_ref() {
            if at.elapsed() < STATS_TTL {
                return Arc::clone(held);
            }
        }
        let held = Arc::new(super::held::read(root));
        *slot = Some((Instant::now(), Arc::clone(&held)));
        held
    }
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
        auth: opts.ops.auth_file.is_some(),
        held: Arc::default(),
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

/// The host rustup-init is shown for when the tree holds several.
const USUAL_HOST: &str = "x86_64-unknown-linux-gnu";

/// What the landing page needs besides the tree.
#[derive(Debug, Clone, Default)]
pub struct PageContext {
    /// This server's public address.
    pub base: String,
    /// Directories an upstream fills on demand.
    pub pulled: Vec<&'static str>,
    /// Whether clients need credentials (`--auth-file`).
    pub auth: bool,
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|t| format!("<span class=\"tag\">{}</span>", esc(t)))
        .collect()
}

/// The toolchain section: a table of what is held, then rustup commands
/// that work for it.
fn toolchain_section(held: &Held, cx: &PageContext, b: &str) -> String {
    let mut out = String::new();
    let pulled = cx.pulled.contains(&"dist");
    if held.toolchains.is_empty() {
        out.push_str("<p class=\"muted\">No toolchain manifest is held yet");
        out.push_str(if pulled {
            "; they are pulled from upstream as rustup asks.</p>\n"
        } else {
            ".</p>\n"
        });
    } else {
        out.push_str(
            "<table><thead><tr><th>Toolchain</th><th>Version</th><th>Profile held</th>\
             <th>Host targets</th><th>Cross targets (rust-std)</th></tr></thead><tbody>\n",
        );
        for t in &held.toolchains {
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&t.install_name()),
                esc(&t.version),
                t.profile
                    .as_deref()
                    .map_or_else(|| "<span class=\"muted\">incomplete</span>".to_owned(), esc),
                list(&t.hosts),
                list(&t.cross),
            ));
        }
        out.push_str("</tbody></table>\n");
    }
    // The advice follows the newest toolchain of the first channel held.
    let pick = held
        .toolchains
        .iter()
        .find(|t| t.current)
        .or(held.toolchains.first());
    let env = format!("export RUSTUP_DIST_SERVER={b}");
    match pick {
        Some(t) => {
            let name = esc(&t.install_name());
            let (flag, note) = match t.profile.as_deref() {
                Some("complete") | Some("default") => (String::new(), String::new()),
                Some(p) => (
                    format!(" --profile {}", esc(p)),
                    format!(
                        "<p class=\"warn\">Only the <b>{}</b> profile is held: install with \
                         <code>--profile {}</code> (the default profile also needs {}, which \
                         this mirror does not hold).</p>\n",
                        esc(p),
                        esc(p),
                        esc(&t.missing_default.join(", "))
                    ),
                ),
                None => (
                    " --profile minimal".to_owned(),
                    "<p class=\"warn\">No profile is held complete for every host target: \
                     install with <code>--profile minimal</code> and add the components held.</p>\n"
                        .to_owned(),
                ),
            };
            out.push_str(&note);
            out.push_str(&format!(
                "<h3>With rustup installed</h3>\n<pre>{env}\nrustup toolchain install {name}{flag}</pre>\n"
            ));
            if t.hosts.len() > 1 || !t.cross.is_empty() {
                if let Some(cross) = t.cross.first().or(t.hosts.get(1)) {
                    out.push_str(&format!(
                        "<p>Another target: <code>rustup target add --toolchain {name} {}</code></p>\n",
                        esc(cross)
                    ));
                }
            }
        }
        None if pulled => out.push_str(&format!(
            "<pre>{env}\nrustup toolchain install stable</pre>\n"
        )),
        None => {}
    }
    out
}

/// rustup-init against this mirror, and rustup's self-update.
fn rustup_section(held: &Held, cx: &PageContext, b: &str) -> String {
    let mut out = String::new();
    let r = held.rustup.clone().unwrap_or_default();
    if !r.versions.is_empty() {
        out.push_str("<table><thead><tr><th>rustup</th><th>Targets</th></tr></thead><tbody>\n");
        for (v, targets) in &r.versions {
            let stable = if r.stable.as_deref() == Some(v) {
                " <span class=\"tag\">current</span>"
            } else {
                ""
            };
            out.push_str(&format!(
                "<tr><td>{}{stable}</td><td>{}</td></tr>\n",
                esc(v),
                list(targets)
            ));
        }
        out.push_str("</tbody></table>\n");
    } else if !cx.pulled.contains(&"rustup") {
        out.push_str("<p class=\"muted\">No rustup version is held yet.</p>\n");
    }
    let host = if r.dist_targets.iter().any(|t| t == USUAL_HOST) || r.dist_targets.is_empty() {
        USUAL_HOST.to_owned()
    } else {
        r.dist_targets[0].clone()
    };
    let toolchain = held
        .toolchains
        .iter()
        .find(|t| t.current)
        .or(held.toolchains.first());
    let (default, profile) = match toolchain {
        Some(t) => (
            esc(&t.install_name()),
            esc(t
                .profile
                .as_deref()
                .filter(|p| *p != "complete")
                .unwrap_or("minimal")),
        ),
        None if cx.pulled.contains(&"dist") => ("stable".to_owned(), "default".to_owned()),
        None => ("none".to_owned(), "minimal".to_owned()),
    };
    out.push_str(&format!(
        "<h3>Install rustup from this mirror</h3>\n<pre>curl -fO {b}/rustup/dist/{host}/rustup-init\n\
         chmod +x rustup-init\n\
         RUSTUP_DIST_SERVER={b} RUSTUP_UPDATE_ROOT={b}/rustup \\\n    \
         ./rustup-init -y --profile {profile} --default-toolchain {default}</pre>\n\
         <p>Keep both variables in the shell's profile so later installs and updates come here too:</p>\n\
         <pre>export RUSTUP_DIST_SERVER={b}\nexport RUSTUP_UPDATE_ROOT={b}/rustup\nrustup self update</pre>\n",
        host = esc(&host),
    ));
    if r.dist_targets.len() > 1 {
        out.push_str(&format!(
            "<p>rustup-init is held for: {}</p>\n",
            list(&r.dist_targets)
        ));
    }
    out
}

/// The client side of a Hex tree signed with the site's key (a partial
/// mirror made with `--signing-key`): its `public_key` is not hexpm's, so
/// clients must trust it instead. Empty for any other tree. `b` is the
/// escaped base URL.
fn hex_site_key(root: &Path, b: &str) -> String {
    use crate::eco::hex::registry::PublicKey;
    let Ok(pem) = crate::limit::read_file(&root.join("hex/public_key"), crate::limit::COMPANION)
    else {
        return String::new();
    };
    let pem = String::from_utf8_lossy(&pem).trim().to_string();
    let hexpm = PublicKey::hexpm();
    if pem.is_empty() || pem == hexpm.pem().trim() {
        return String::new();
    }
    let key = esc(&pem);
    format!(
        "<p>This mirror signs its Hex index with its own key (a partial mirror lists only \
         the releases it holds): <a href=\"{b}/hex/public_key\">{b}/hex/public_key</a>. \
         Clients trust that key for <code>hexpm</code>:</p>\n\
         <p>rebar3, in <code>~/.config/rebar3/rebar.config</code> (with <code>HEX_CDN</code> \
         as above):</p>\n\
         <pre>{{hex, [{{repos, [#{{name =&gt; &lt;&lt;\"hexpm\"&gt;&gt;,\n\
         \x20                   repo_url =&gt; &lt;&lt;\"{b}/hex\"&gt;&gt;,\n\
         \x20                   repo_public_key =&gt; &lt;&lt;\"{key}\"&gt;&gt;}}]}}]}}.</pre>\n\
         <p>mix:</p>\n\
         <pre>curl -o hex_mirror_key.pem {b}/hex/public_key\n\
         mix hex.repo set hexpm --url {b}/hex --public-key hex_mirror_key.pem</pre>\n"
    )
}

/// The index page for `cx.base`: what the tree holds (`held`) and how
/// to point each client at it, for the trees present under `root` and
/// those an upstream fills on demand.
pub fn page(root: &Path, held: &Held, cx: &PageContext) -> String {
    let b = esc(&cx.base);
    // Clients that take credentials in the URL get them there.
    let ub = if cx.auth {
        esc(&cx.base.replacen("://", "://NAME:PASSWORD@", 1))
    } else {
        b.clone()
    };
    let mut sections = String::new();
    let mut add = |dir: &str, title: &str, body: String| {
        if root.join(dir).is_dir() || cx.pulled.contains(&dir) {
            let pulled = if cx.pulled.contains(&dir) {
                " <span class=\"tag\">filled from upstream on demand</span>"
            } else {
                ""
            };
            sections.push_str(&format!(
                "<section id=\"{dir}\"><h2>{title}{pulled}</h2>\n{body}</section>\n"
            ));
        }
    };
    add(
        "dist",
        "Rust toolchains (rustup)",
        toolchain_section(held, cx, &ub),
    );
    add("rustup", "rustup itself", rustup_section(held, cx, &ub));
    let crates_body = {
        let mut body = String::new();
        if let Some((n, partial)) = held.crates {
            body.push_str(&format!(
                "<p>{n} crate files held{}.</p>\n",
                if partial {
                    " — a <b>partial</b> mirror: crates outside its selection are not here"
                } else {
                    ""
                }
            ));
        }
        if cx.auth {
            body.push_str(&format!(
                "<p>In <code>~/.cargo/config.toml</code> (cargo 1.74 or later):</p>\n<pre>[registries.mirror]\n\
                 index = \"sparse+{b}/index/\"\n\n[source.crates-io]\nreplace-with = \"mirror\"\n\n\
                 [registry]\nglobal-credential-providers = [\"cargo:token\"]</pre>\n\
                 <p>and the credential as cargo's token:</p>\n\
                 <pre>export CARGO_REGISTRIES_MIRROR_TOKEN='NAME:PASSWORD'</pre>\n"
            ));
        } else {
            body.push_str(&format!(
                "<p>In <code>~/.cargo/config.toml</code>:</p>\n<pre>[source.crates-io]\nreplace-with = \"mirror\"\n\n\
                 [source.mirror]\nregistry = \"sparse+{b}/index/\"</pre>\n"
            ));
            if held.crates_index {
                body.push_str(&format!(
                    "<p>or the git index: <code>registry = \"{b}/git/crates.io-index\"</code></p>\n"
                ));
            }
        }
        body
    };
    add("crates", "Crates (cargo)", crates_body);
    let hex_body = {
        let mut body = String::new();
        if let Some((names, tarballs)) = held.hex {
            body.push_str(&format!(
                "<p>{names} packages, {tarballs} release tarballs held.</p>\n"
            ));
        }
        body.push_str(&format!(
            "<pre>export HEX_CDN={ub}/hex      # rebar3\nexport HEX_MIRROR={ub}/hex   # mix\n\
             mix local.hex --force   # Hex itself, from this mirror</pre>\n"
        ));
        body.push_str(&hex_site_key(root, &ub));
        body
    };
    add("hex", "Hex (rebar3, mix)", hex_body);
    let arch_body = {
        let mut body = String::new();
        if !held.arch.is_empty() {
            body.push_str(
                "<table><thead><tr><th>Repository</th><th>Architecture</th><th>Packages</th>\
                 <th>Database written (UTC)</th></tr></thead><tbody>\n",
            );
            for r in &held.arch {
                body.push_str(&format!(
                    "<tr><td><a href=\"/archlinux/{0}/os/{1}/\">{0}</a></td><td>{1}</td><td class=\"n\">{2}</td><td>{3}</td></tr>\n",
                    esc(&r.repo),
                    esc(&r.arch),
                    r.packages,
                    date(r.synced)
                ));
            }
            body.push_str("</tbody></table>\n");
        }
        body.push_str(&format!(
            "<p>In <code>/etc/pacman.d/mirrorlist</code>:</p>\n<pre>Server = {ub}/archlinux/$repo/os/$arch</pre>\n"
        ));
        body
    };
    add("archlinux", "Arch Linux (pacman)", arch_body);
    if sections.is_empty() {
        sections.push_str("<section><p>This mirror holds no trees yet.</p></section>\n");
    }
    let auth_note = if cx.auth {
        "<p class=\"warn\">This mirror asks for a name and password (basic auth, or \
         <code>NAME:PASSWORD</code> as a token). rustup, pacman, rebar3 and mix take them in \
         the URL: <code>http://NAME:PASSWORD@host/…</code>.</p>\n"
    } else {
        ""
    };
    let browse: Vec<String> = super::listing::BROWSABLE
        .iter()
        .filter(|d| root.join(d).is_dir())
        .map(|d| format!("<a href=\"/{d}/\">/{d}/</a>"))
        .collect();
    let browse = if browse.is_empty() {
        String::new()
    } else {
        format!(" · browse {}", browse.join(" "))
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>mirror at {b}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>mirror at {b}</h1>\n\
         <p class=\"muted\">Point your clients at this server; what it holds is listed with each.</p>\n\
         {auth_note}{sections}\
         <p class=\"foot\"><a href=\"/stats\">/stats</a> · <a href=\"/metrics\">/metrics</a> · \
         <a href=\"/health\">/health</a>{browse}</p>\n</body></html>\n"
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
    let auth = state.auth;
    let held = state.held.clone();
    let html = tokio::task::spawn_blocking(move || {
        let held = held.get(&root);
        page(&root, &held, &PageContext { base, pulled, auth })
    })
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
