//! Directory listings of the browsable trees ([`BROWSABLE`]: `/dist/`,
//! `/rustup/`, `/archlinux/`), as nginx's autoindex shows them: a
//! directory's entries, directories first, each with its size and date.
//!
//! - A directory asked for without its trailing `/` is redirected (`301`)
//!   to it, so relative links work.
//! - Dot-files and dot-directories (`.mirror-partial`, the store's
//!   temporaries) and `NAME.partial` downloads are never listed, nor is a
//!   directory below a hidden one; the directory must lie under the root
//!   once symlinks are resolved.
//! - At most [`MAX_ENTRIES`] names are read from one directory (a listing
//!   says when it stopped there), and a page shows [`PAGE`] of them
//!   (`?page=N`), so no directory makes a listing costly.
//!
//! Everything else stays unlisted (`404`), as before: the crates, the
//! index, Hex.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::path::{is_hidden_name, parse_request_path};

/// The trees a listing is shown for (first path segment).
pub const BROWSABLE: &[&str] = &["dist", "rustup", "archlinux"];

/// Names read from one directory at most.
pub const MAX_ENTRIES: usize = 100_000;

/// Entries on one page.
pub const PAGE: usize = 1000;

/// The answer for `raw_path` when it names a browsable directory: its
/// listing, or a redirect to it with a trailing `/`. `None`: not one.
pub async fn respond(root: &Path, raw_path: &str, query: Option<&str>) -> Option<Response> {
    let trailing = raw_path.ends_with('/') && raw_path.len() > 1;
    let trimmed = if trailing {
        &raw_path[..raw_path.len() - 1]
    } else {
        raw_path
    };
    let segments = parse_request_path(trimmed).ok()?;
    if !BROWSABLE.contains(&segments.first()?.as_str()) {
        return None;
    }
    let canon_root = std::fs::canonicalize(root).ok()?;
    let dir = directory_below(&canon_root, &segments)?;
    if !trailing {
        let mut res = StatusCode::MOVED_PERMANENTLY.into_response();
        let location = format!("{raw_path}/");
        res.headers_mut()
            .insert(LOCATION, HeaderValue::from_str(&location).ok()?);
        return Some(res);
    }
    let page = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let shown = format!("/{}/", segments.join("/"));
    let html = tokio::task::spawn_blocking(move || render(&canon_root, &dir, &shown, page))
        .await
        .ok()?;
    // For HEAD, hyper sends the header only (with the body's length).
    Some(
        (
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            html,
        )
            .into_response(),
    )
}

/// The directory `canon_root/segments` when it is one, lies under the
/// (canonical) root with symlinks resolved, and has no hidden component
/// below it.
fn directory_below(canon_root: &Path, segments: &[String]) -> Option<PathBuf> {
    let mut joined = canon_root.to_path_buf();
    joined.extend(segments);
    let real = visible_below(canon_root, &joined)?;
    real.is_dir().then_some(real)
}

/// `path` with symlinks resolved, when that lies under `canon_root` with no
/// hidden component below it.
fn visible_below(canon_root: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let below = real.strip_prefix(canon_root).ok()?;
    let visible = below.components().all(|c| match c {
        std::path::Component::Normal(name) => !is_hidden_name(&name.to_string_lossy()),
        _ => false,
    });
    visible.then_some(real)
}

struct Item {
    name: String,
    dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

/// Escape text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A name as a relative link.
fn href(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
}

fn human(size: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = size as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{size} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `2026-12-03 19:02` (UTC).
pub(crate) fn date(t: Option<SystemTime>) -> String {
    let Some(secs) = t
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
    else {
        return "-".to_owned();
    };
    let (y, m, d) = super::access_log::civil_date((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!("{y}-{m:02}-{d:02} {:02}:{:02}", s / 3600, s / 60 % 60)
}

fn render(canon_root: &Path, dir: &Path, shown: &str, page: usize) -> String {
    let mut names = Vec::new();
    let mut stopped = false;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if names.len() >= MAX_ENTRIES {
                stopped = true;
                break;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if is_hidden_name(&name) {
                continue;
            }
            names.push(name);
        }
    }
    names.sort();
    let pages = names.len().div_ceil(PAGE).max(1);
    let page = page.min(pages);
    let mut items: Vec<Item> = names
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .filter_map(|name| {
            // Following symlinks, as serving does, but only those that
            // stay in the tree; a dangling one is left out.
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).ok()?.is_symlink() {
                visible_below(canon_root, &path)?;
            }
            let meta = std::fs::metadata(&path).ok()?;
            Some(Item {
                name: name.clone(),
                dir: meta.is_dir(),
                size: meta.len(),
                modified: meta.modified().ok(),
            })
        })
        .collect();
    items.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    let title = esc(shown);
    let mut rows = String::new();
    if shown.matches('/').count() > 2 {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for it in &items {
        let slash = if it.dir { "/" } else { "" };
        let size = if it.dir {
            "-".to_owned()
        } else {
            human(it.size)
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td class=\"n\">{size}</td><td>{}</td></tr>\n",
            href(&it.name),
            esc(&it.name),
            date(it.modified),
        ));
    }
    let mut nav = String::new();
    if pages > 1 {
        nav.push_str(&format!("<p class=\"nav\">page {page} of {pages}"));
        if page > 1 {
            nav.push_str(&format!(" · <a href=\"?page={}\">previous</a>", page - 1));
        }
        if page < pages {
            nav.push_str(&format!(" · <a href=\"?page={}\">next</a>", page + 1));
        }
        nav.push_str("</p>\n");
    }
    if stopped {
        nav.push_str(&format!(
            "<p class=\"nav\">only the first {MAX_ENTRIES} entries of this directory are listed</p>\n"
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Index of {title}</title>\n<style>{}</style></head>\n<body>\n\
         <h1>Index of {title}</h1>\n{nav}<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n{rows}</tbody></table>\n{nav}<p class=\"foot\"><a href=\"/\">mirror</a></p>\n</body></html>\n",
        STYLE
    )
}

/// The style of the listings and the landing page.
pub(crate) const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1d232b;--muted:#5c6773;--bg:#fbfbfc;--card:#fff;--line:#dde2e8;--accent:#0b62c4;--code:#f2f4f7}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ee;--muted:#9aa5b1;--bg:#14171b;--card:#1c2127;--line:#2e353d;--accent:#6cb2ff;--code:#232a32}}\
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg);max-width:62rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:0 0 .6rem}h3{font-size:1rem;margin:1rem 0 .4rem}\
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}\
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin:0 0 1rem}\
pre{background:var(--code);border-radius:6px;padding:.7rem .9rem;overflow-x:auto;font:13px/1.45 ui-monospace,'SFMono-Regular',Menlo,monospace}\
code{background:var(--code);border-radius:4px;padding:0 .25rem;font:13px ui-monospace,Menlo,monospace}\
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid var(--line)}\
th{color:var(--muted);font-weight:600}td.n{text-align:right;white-space:nowrap}\
.muted,.nav,.foot{color:var(--muted)}.tag{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 .5rem;margin:0 .2rem .2rem 0;font-size:12px}\
.warn{border-left:3px solid #d08700;padding-left:.6rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_unfinished_entries_are_not_listed_and_pages_bound_the_rows() {
        let d = tempfile::tempdir().unwrap();
        for name in [
            "a.txt",
            ".mirror-partial",
            "b.tar.xz.partial",
            ".x.tmp.1.2.3",
        ] {
            std::fs::write(d.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let html = render(d.path(), d.path(), "/dist/x/", 1);
        assert!(html.contains("href=\"a.txt\""), "{html}");
        assert!(html.contains("href=\"sub/\""), "{html}");
        for hidden in ["mirror-partial", ".partial", "tmp"] {
            assert!(!html.contains(hidden), "{hidden}: {html}");
        }
        for i in 0..(PAGE + 5) {
            std::fs::write(d.path().join(format!("f{i:05}")), b"").unwrap();
        }
        let first = render(d.path(), d.path(), "/dist/x/", 1);
        assert_eq!(first.matches("<tr><td><a href=\"f").count(), PAGE - 1);
        assert!(first.contains("page 1 of 2") && first.contains("?page=2"));
        let second = render(d.path(), d.path(), "/dist/x/", 2);
        assert!(second.contains("f01004"), "{second}");
    }

    #[test]
    fn names_are_escaped_in_text_and_links() {
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(href("a b\"<.tar-x_y"), "a%20b%22%3C.tar-x_y");
    }
}
