//! `mirror serve` over a temporary tree: Range, conditional requests, HEAD,
//! content types, path safety (over raw TCP, since HTTP clients normalise
//! paths), `/health`, a port in use, rewrites.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mirror::serve::{spawn, PrefixRewrite, Rewrite, RunningServer, ServeOptions};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// `tmp/root` holds the tree; `tmp/outside` holds a secret that must never
/// be served.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    server: RunningServer,
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// 1000 bytes whose value at i is (i % 251).
fn data() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 251) as u8).collect()
}

fn fixture_with(rewrites: Vec<Arc<dyn Rewrite>>) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    write(&outside.join("secret.txt"), SECRET.as_bytes());
    write(&root.join("dist/rust-1.0.tar.xz"), &data());
    write(
        &root.join("dist/channel-rust-stable.toml"),
        b"manifest-version = \"2\"\n",
    );
    write(
        &root.join("dist/channel-rust-stable.toml.sha256"),
        b"abc  x\n",
    );
    write(
        &root.join("dist/rust-1.1.tar.xz.partial"),
        SECRET.as_bytes(),
    );
    write(&root.join("dist/.x.tmp.1"), SECRET.as_bytes());
    write(&root.join(".mirror/state.json"), SECRET.as_bytes());
    write(&root.join(".git/config"), SECRET.as_bytes());
    write(&root.join("empty.bin"), b"");
    write(&root.join("archlinux/core/os/x86_64/core.db.tar.gz"), b"DB");
    write(&root.join("crates/se/rd/serde/serde-1.0.0.crate"), b"CRATE");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(
            "core.db.tar.gz",
            root.join("archlinux/core/os/x86_64/core.db"),
        )
        .unwrap();
        symlink(outside.join("secret.txt"), root.join("leak.txt")).unwrap();
        symlink("../outside", root.join("outdir")).unwrap();
        symlink("../.mirror/state.json", root.join("dist/state.json")).unwrap();
    }
    let mut opts = ServeOptions::local(&root);
    opts.rewrites = rewrites;
    let server = spawn(opts).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        server,
    }
}

fn fixture() -> Fixture {
    fixture_with(Vec::new())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

async fn get(f: &Fixture, path: &str, headers: &[(&'static str, &str)]) -> reqwest::Response {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    client()
        .get(f.server.url(path))
        .headers(h)
        .send()
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A raw response: status, header block (lower-cased), body.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Send `METHOD TARGET HTTP/1.1` verbatim, with `Connection: close`, and
/// read everything back.
fn raw(addr: SocketAddr, method: &str, target: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Raw {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

#[tokio::test]
async fn whole_file_has_validators_type_and_length() {
    let f = fixture();
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/x-xz");
    assert_eq!(header(&res, "content-length"), "1000");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
    let etag = header(&res, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    httpdate::parse_http_date(&header(&res, "last-modified")).unwrap();
    assert_eq!(res.bytes().await.unwrap(), data());

    let res = get(&f, "/dist/channel-rust-stable.toml", &[]).await;
    assert_eq!(header(&res, "content-type"), "application/toml");
    let res = get(&f, "/dist/channel-rust-stable.toml.sha256", &[]).await;
    assert_eq!(header(&res, "content-type"), "text/plain; charset=utf-8");
    let res = get(&f, "/empty.bin", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-length"), "0");
}

#[tokio::test]
async fn range_gives_206_with_the_right_bytes() {
    let f = fixture();
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", "bytes=100-199")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&res, "content-range"), "bytes 100-199/1000");
    assert_eq!(header(&res, "content-length"), "100");
    assert_eq!(res.bytes().await.unwrap(), &data()[100..200]);

    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", "bytes=990-")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&res, "content-range"), "bytes 990-999/1000");
    assert_eq!(res.bytes().await.unwrap(), &data()[990..]);

    // An end past the file is clamped.
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", "bytes=995-5000")]).await;
    assert_eq!(header(&res, "content-range"), "bytes 995-999/1000");
    assert_eq!(res.bytes().await.unwrap(), &data()[995..]);
}

#[tokio::test]
async fn large_files_stream_whole_and_in_ranges_across_read_chunks() {
    let f = fixture();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    write(&f.root.join("dist/big.tar.gz"), &big);
    let res = get(&f, "/dist/big.tar.gz", &[]).await;
    assert_eq!(header(&res, "content-length"), "300000");
    assert_eq!(header(&res, "content-type"), "application/gzip");
    assert_eq!(res.bytes().await.unwrap(), big);
    let res = get(&f, "/dist/big.tar.gz", &[("range", "bytes=65000-200000")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&res, "content-range"), "bytes 65000-200000/300000");
    assert_eq!(res.bytes().await.unwrap(), &big[65000..=200000]);
}

#[tokio::test]
async fn query_strings_are_ignored() {
    let f = fixture();
    let res = get(&f, "/dist/rust-1.0.tar.xz?x=1&y=..%2f", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), data());
}

#[tokio::test]
async fn suffix_range_gives_the_last_bytes() {
    let f = fixture();
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", "bytes=-10")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&res, "content-range"), "bytes 990-999/1000");
    assert_eq!(res.bytes().await.unwrap(), &data()[990..]);
}

#[tokio::test]
async fn unsatisfiable_range_gives_416_with_the_length() {
    let f = fixture();
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&res, "content-range"), "bytes */1000", "{range}");
    }
}

#[tokio::test]
async fn multiple_or_malformed_ranges_give_the_whole_file() {
    let f = fixture();
    for range in ["bytes=0-1,5-6", "bytes=9-3", "pages=1-2"] {
        let res = get(&f, "/dist/rust-1.0.tar.xz", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{range}");
        assert_eq!(res.bytes().await.unwrap(), data(), "{range}");
    }
}

#[tokio::test]
async fn if_range_honours_range_only_for_the_current_file() {
    let f = fixture();
    let etag = header(&get(&f, "/dist/rust-1.0.tar.xz", &[]).await, "etag");
    let res = get(
        &f,
        "/dist/rust-1.0.tar.xz",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), &data()[..10]);

    let res = get(
        &f,
        "/dist/rust-1.0.tar.xz",
        &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), data());
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let f = fixture();
    let etag = header(&get(&f, "/dist/rust-1.0.tar.xz", &[]).await, "etag");
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&res, "etag"), etag);
    assert!(res.bytes().await.unwrap().is_empty());

    let res = get(
        &f,
        "/dist/rust-1.0.tar.xz",
        &[("if-none-match", "\"other\"")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Rewriting the file changes the ETag.
    std::fs::write(f.root.join("dist/rust-1.0.tar.xz"), b"new content").unwrap();
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(header(&res, "etag"), etag);
}

#[tokio::test]
async fn if_modified_since_gives_304() {
    let f = fixture();
    let path = "/archlinux/core/os/x86_64/core.db";
    let lm = header(&get(&f, path, &[]).await, "last-modified");
    let res = get(&f, path, &[("if-modified-since", &lm)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&res, "last-modified"), lm);

    let old = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let res = get(&f, path, &[("if-modified-since", &old)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), &b"DB"[..]);
}

#[tokio::test]
async fn head_has_content_length_and_no_body() {
    let f = fixture();
    let res = client()
        .head(f.server.url("/dist/rust-1.0.tar.xz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-length"), "1000");
    assert_eq!(header(&res, "content-type"), "application/x-xz");
    assert!(res.headers().contains_key("etag"));

    // On the wire: headers only, nothing after them.
    let r = raw(f.server.addr, "HEAD", b"/dist/rust-1.0.tar.xz");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-length: 1000"), "{}", r.head);
    assert!(r.body.is_empty(), "{} body bytes", r.body.len());
}

#[tokio::test]
async fn symlinks_inside_the_tree_are_served() {
    let f = fixture();
    let res = get(&f, "/archlinux/core/os/x86_64/core.db", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), &b"DB"[..]);
}

#[test]
fn traversal_attempts_never_serve_outside_files() {
    let f = fixture();
    let abs = format!("{}/../outside/secret.txt", f.root.display());
    let targets: Vec<&[u8]> = vec![
        b"/../outside/secret.txt",
        b"/dist/../../outside/secret.txt",
        b"/%2e%2e/outside/secret.txt",
        b"/%2E%2E/outside/secret.txt",
        b"/dist/%2e%2e/%2e%2e/outside/secret.txt",
        b"/.%2e/outside/secret.txt",
        b"/dist/..%2f..%2foutside%2fsecret.txt",
        b"/dist%2F..%2F..%2Foutside%2Fsecret.txt",
        b"/..%5coutside%5csecret.txt",
        b"/dist\\..\\..\\outside\\secret.txt",
        b"/..%00/outside/secret.txt",
        b"/dist/rust-1.0.tar.xz%00.txt",
        b"/dist/\0/../../outside/secret.txt",
        b"//outside/secret.txt",
        abs.as_bytes(),
        b"http://localhost/../outside/secret.txt",
        // Symlinks from inside the tree to outside it.
        b"/leak.txt",
        b"/outdir/secret.txt",
        b"/outdir%2fsecret.txt",
    ];
    for target in targets {
        let shown = String::from_utf8_lossy(target).into_owned();
        // Some targets are rejected by the HTTP parser before we see them;
        // either way the connection must not carry the secret.
        let r = raw_or_closed(f.server.addr, target);
        if let Some(r) = r {
            assert!(
                r.status == 400 || r.status == 404,
                "{shown}: status {}",
                r.status
            );
            assert!(
                !String::from_utf8_lossy(&r.body).contains(SECRET),
                "{shown} leaked the secret"
            );
        }
    }
}

/// Like [`raw`], but a connection closed without any response is `None`.
fn raw_or_closed(addr: SocketAddr, target: &[u8]) -> Option<Raw> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(&req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !String::from_utf8_lossy(&out).contains(SECRET),
        "{} leaked the secret",
        String::from_utf8_lossy(target)
    );
    if out.is_empty() {
        return None;
    }
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Raw {
        status,
        head,
        body: out[split + 4..].to_vec(),
    })
}

#[test]
fn encoded_traversal_is_a_bad_request() {
    let f = fixture();
    for target in [
        &b"/%2e%2e/outside/secret.txt"[..],
        b"/../outside/secret.txt",
        b"/dist%2f..%2f..%2foutside%2fsecret.txt",
        b"/..%5coutside",
        b"/a%00b",
        b"/a//b",
    ] {
        let r = raw(f.server.addr, "GET", target);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(target));
    }
}

#[test]
fn dot_files_partials_and_temporaries_are_refused() {
    let f = fixture();
    for target in [
        &b"/.mirror/state.json"[..],
        b"/.git/config",
        b"/%2emirror/state.json",
        b"/dist/rust-1.1.tar.xz.partial",
        b"/dist/.x.tmp.1",
        // A symlink inside the tree pointing into `.mirror/`.
        b"/dist/state.json",
    ] {
        let r = raw(f.server.addr, "GET", target);
        assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(target));
        assert!(!String::from_utf8_lossy(&r.body).contains(SECRET));
    }
}

#[test]
fn only_browsable_directories_are_listed() {
    let f = fixture();
    // `/` is the index page (tests/it/serve_info.rs), not a listing;
    // `/dist/`, `/rustup/`, `/archlinux/…` are listed (tests/it/serve_ops.rs),
    // nothing else.
    for target in [
        &b"/crates"[..],
        b"/crates/",
        b"/crates/se/rd/",
        b"/.mirror/",
    ] {
        let r = raw(f.server.addr, "GET", target);
        assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(target));
    }
    assert_eq!(raw(f.server.addr, "GET", b"/archlinux/core").status, 301);
    let listing = raw(f.server.addr, "GET", b"/dist/");
    assert_eq!(listing.status, 200);
    let text = String::from_utf8_lossy(&listing.body);
    assert!(text.contains("rust-1.0.tar.xz"), "{text}");
    assert!(
        !text.contains("partial") && !text.contains(".x.tmp"),
        "{text}"
    );
}

#[test]
fn missing_files_are_404() {
    let f = fixture();
    assert_eq!(raw(f.server.addr, "GET", b"/dist/nope.tar.xz").status, 404);
    assert_eq!(raw(f.server.addr, "GET", b"/nope/nope").status, 404);
}

#[tokio::test]
async fn health_says_ok() {
    let f = fixture();
    let res = get(&f, "/health", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap().trim(), "ok");
}

#[test]
fn only_get_and_head_are_allowed() {
    let f = fixture();
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        for target in [&b"/dist/rust-1.0.tar.xz"[..], b"/health"] {
            let r = raw(f.server.addr, method, target);
            assert_eq!(
                r.status,
                405,
                "{method} {}",
                String::from_utf8_lossy(target)
            );
            assert!(r.head.contains("allow: get"), "{}", r.head);
        }
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::local(tmp.path());
    opts.port = port;
    let err = spawn(opts).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("address already in use"), "{text}");
    assert!(text.contains("--port"), "{text}");
}

#[test]
fn missing_root_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-root");
    let err = spawn(ServeOptions::local(&missing)).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("no-such-root"), "{text}");
}

#[tokio::test]
async fn rewrite_maps_a_path() {
    // Crates-style: `/crates/NAME/FILE` → `crates/<prefix>/NAME/FILE`.
    let crates: Arc<dyn Rewrite> = Arc::new(|segs: &[&str]| match segs {
        ["crates", name, file] if name.len() >= 4 => Some(vec![
            "crates".to_string(),
            name[..2].to_string(),
            name[2..4].to_string(),
            name.to_string(),
            file.to_string(),
        ]),
        _ => None,
    });
    let prefix: Arc<dyn Rewrite> = Arc::new(PrefixRewrite::new("pacman", "archlinux"));
    let f = fixture_with(vec![crates, prefix]);

    let res = get(&f, "/crates/serde/serde-1.0.0.crate", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/gzip");
    assert_eq!(res.bytes().await.unwrap(), &b"CRATE"[..]);

    let res = get(&f, "/pacman/core/os/x86_64/core.db", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), &b"DB"[..]);

    // Unmatched paths still map straight onto the tree.
    let res = get(&f, "/dist/rust-1.0.tar.xz", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn dropping_the_server_stops_it() {
    let f = fixture();
    let addr = f.server.addr;
    assert_eq!(raw(addr, "GET", b"/health").status, 200);
    drop(f);
    assert!(TcpStream::connect(addr).is_err());
}

/// Small files are kept in memory between requests, but a cached copy is
/// served only while the path still names the same file: a file renamed
/// over it, rewritten in place (same size), a symlink re-pointed, a file
/// deleted, or a symlink out of the tree put in its place are all seen at
/// the next request.
#[tokio::test]
async fn small_files_held_in_memory_follow_every_change() {
    let f = fixture();
    // Old enough to be kept in memory (see `files::RACY`).
    tokio::time::sleep(mirror::serve::files::RACY + Duration::from_millis(100)).await;
    let path = "/dist/channel-rust-stable.toml";
    let file = f.root.join("dist/channel-rust-stable.toml");
    let body = |res: reqwest::Response| async move { res.bytes().await.unwrap().to_vec() };
    let first = get(&f, path, &[]).await;
    let first_tag = header(&first, "etag");
    assert_eq!(body(first).await, b"manifest-version = \"2\"\n");
    // Cached now: the same bytes again.
    assert_eq!(
        body(get(&f, path, &[]).await).await,
        b"manifest-version = \"2\"\n"
    );

    // A new file renamed over it (same size).
    let tmp = f.root.join("dist/.new.tmp");
    std::fs::write(&tmp, b"manifest-version = \"3\"\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let res = get(&f, path, &[]).await;
    assert_ne!(header(&res, "etag"), first_tag);
    assert_eq!(body(res).await, b"manifest-version = \"3\"\n");

    // Rewritten in place, same size.
    std::fs::write(&file, b"manifest-version = \"4\"\n").unwrap();
    assert_eq!(
        body(get(&f, path, &[]).await).await,
        b"manifest-version = \"4\"\n"
    );

    // A symlink re-pointed at another file of the same size.
    let db = "/archlinux/core/os/x86_64/core.db";
    let dir = f.root.join("archlinux/core/os/x86_64");
    assert_eq!(body(get(&f, db, &[]).await).await, b"DB");
    std::fs::write(dir.join("core.db.tar.zst"), b"ZS").unwrap();
    std::fs::remove_file(dir.join("core.db")).unwrap();
    std::os::unix::fs::symlink("core.db.tar.zst", dir.join("core.db")).unwrap();
    assert_eq!(body(get(&f, db, &[]).await).await, b"ZS");

    // A symlink out of the tree in its place: refused, not served from
    // memory.
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(f.root.join("../outside/secret.txt"), &file).unwrap();
    assert_eq!(get(&f, path, &[]).await.status(), StatusCode::NOT_FOUND);

    // Deleted.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(get(&f, path, &[]).await.status(), StatusCode::NOT_FOUND);
}

/// Pipelined HTTP/1.1 requests are answered in order on one connection,
/// and HTTP/2 with prior knowledge (h2c) is spoken too.
#[tokio::test]
async fn pipelined_http1_and_h2c_are_served() {
    use std::io::{Read, Write};
    let f = fixture();
    let addr = f.server.addr;
    let answers = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            b"GET /dist/rust-1.0.tar.xz HTTP/1.1\r\nHost: a\r\n\r\n\
              GET /no/such HTTP/1.1\r\nHost: a\r\n\r\n\
              GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answers);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "200"], "{text}");

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = h2
        .get(f.server.url("/dist/rust-1.0.tar.xz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.bytes().await.unwrap(), data());
    // Stop the server off this (single-threaded) runtime, so the client's
    // connection task can run and close while it waits for it.
    drop(h2);
    tokio::task::spawn_blocking(move || drop(f)).await.unwrap();
}

/// `mirror serve` (the binary) on Ctrl-C: stops accepting at once, lets a
/// transfer in flight finish, then exits 0; a second Ctrl-C ends it at
/// once even with a transfer open.
#[test]
fn ctrl_c_stops_accepting_and_lets_transfers_finish() {
    use std::io::{BufRead, BufReader, Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    write(&tmp.path().join("dist/big.bin"), &big);
    let start = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mirror"))
            .arg("--root")
            .arg(tmp.path())
            .args(["serve", "--port", "0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "serving ROOT on http://ADDR/ (Ctrl-C stops)"
        let addr: SocketAddr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        (child, addr)
    };
    let interrupt = |child: &std::process::Child| {
        // SAFETY: a plain signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    };
    let begin = |addr: SocketAddr| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /dist/big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 4096];
        let n = s.read(&mut first).unwrap();
        assert!(n > 0);
        (s, first[..n].to_vec())
    };

    // One Ctrl-C: the open transfer completes, new connections are refused.
    let (mut child, addr) = start();
    let (mut s, mut got) = begin(addr);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    let refused = std::net::TcpStream::connect(addr).map_or(true, |mut c| {
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut buf = [0u8; 64];
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        !matches!(c.read(&mut buf), Ok(n) if n > 0)
    });
    assert!(refused, "a new connection was served after Ctrl-C");
    s.read_to_end(&mut got).unwrap();
    let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        got.len() - body_at,
        big.len(),
        "the transfer in flight was cut"
    );
    assert!(got[body_at..] == big[..]);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // Two Ctrl-Cs: ends at once, the open transfer is dropped.
    let (mut child, addr) = start();
    let (_s, _) = begin(addr);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let waited = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
    assert!(status.success(), "{status:?}");
}

/// Ctrl-C right after `mirror serve` announces its address ends it
/// cleanly, over http and https: the handler is in place before the
/// announcement.
#[test]
fn an_early_ctrl_c_ends_serve_cleanly() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("dist")).unwrap();
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    for https in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mirror"));
        cmd.arg("--root")
            .arg(tmp.path())
            .args(["serve", "--port", "0"]);
        if https {
            cmd.arg("--tls-cert")
                .arg(tls.join("test-cert.pem"))
                .arg("--tls-key")
                .arg(tls.join("test-key.pem"));
        }
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("serving"), "{line}");
        // SAFETY: a plain signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let waited = std::time::Instant::now();
        let status = child.wait().unwrap();
        assert!(status.success(), "https={https}: {status:?}");
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "{:?}",
            waited.elapsed()
        );
    }
}
