//! `mirror serve --upstream-crates`: the pull-through cache against a fake
//! sparse upstream. A miss is fetched, verified and stored, a hit makes no
//! upstream request; concurrent clients share one download; corrupt
//! upstream bytes are refused with 502 and never stored; with upstream down
//! the cached index is still served; real cargo fills the tree through it.

use std::path::Path;
use std::time::Duration;

use mirror::http::HttpOptions;
use mirror::serve::cache::{CratesUpstream, UpstreamOptions};
use mirror::serve::{spawn, RunningServer, ServeOptions};
use sha2::{Digest, Sha256};

use crate::support::crates::{index_line, index_path, CratesFixture, DL_PREFIX};
use crate::support::serve_process::ServeProcess;
use crate::support::sparse::{SparseUpstream, INDEX_PREFIX};
use crate::support::upstream::{Fault, Upstream};

use super::crates_serve::{request, Raw};

/// A server over `root` pulling from `upstream` (retried once, no delay).
pub(crate) fn pulling_server(root: &Path, upstream: UpstreamOptions) -> RunningServer {
    let mut opts = ServeOptions::local(root);
    opts.upstream = Some(UpstreamOptions {
        http: HttpOptions {
            retries: 1,
            retry_delay: Duration::ZERO,
            ..HttpOptions::default()
        },
        ..upstream
    });
    spawn(opts).unwrap()
}

/// The crates upstream of `up` (index under `index/`, files under `dl/`).
fn crates_upstream(up: &Upstream) -> Option<CratesUpstream> {
    Some(CratesUpstream {
        index: format!("{}/", up.url(INDEX_PREFIX)),
        dl: format!(
            "{}/{{crate}}/{{crate}}-{{version}}.crate",
            up.url(DL_PREFIX)
        ),
    })
}

/// A server over `root` whose crates come from `up`.
fn cached_server(root: &Path, up: &Upstream, ttl: Duration) -> RunningServer {
    pulling_server(
        root,
        UpstreamOptions {
            crates: crates_upstream(up),
            ttl,
            ..UpstreamOptions::default()
        },
    )
}

/// `leaf 1.0.0` on a sparse upstream, and a cached server over an empty
/// tree.
fn leaf_served(
    up: &Upstream,
    ttl: Duration,
) -> (
    CratesFixture<'_>,
    SparseUpstream<'_>,
    tempfile::TempDir,
    RunningServer,
) {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    let sp = SparseUpstream::new(up);
    sp.sync(&fx);
    let tmp = tempfile::tempdir().unwrap();
    let server = cached_server(tmp.path(), up, ttl);
    (fx, sp, tmp, server)
}

pub(crate) const LONG: Duration = Duration::from_secs(3600);

pub(crate) fn get(server: &RunningServer, target: &str) -> Raw {
    request(server.addr, "GET", target, &[])
}

pub(crate) fn stats(server: &RunningServer) -> serde_json::Value {
    let r = get(server, "/stats");
    assert_eq!(r.status, 200);
    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["cache"].clone()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn crate_on_disk(root: &Path, name: &str, version: &str) -> std::path::PathBuf {
    root.join("crates")
        .join(mirror::eco::crates::layout::crate_rel_path(name, version))
}

/// Publish `bytes` as crate `name` `version` (any bytes: the cache only
/// checks them against the index `cksum`); not synced.
fn publish_bytes(up: &Upstream, fx: &CratesFixture<'_>, name: &str, version: &str, bytes: &[u8]) {
    up.put(&CratesFixture::crate_upstream_path(name, version), bytes);
    let rel = index_path(name);
    let mut text = fx.read(&rel).unwrap_or_default();
    text.push_str(&index_line(name, version, &[], &sha256_hex(bytes), false));
    text.push('\n');
    fx.write(&rel, &text);
}

#[test]
fn miss_is_fetched_verified_and_stored_then_hits_never_ask_upstream() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let tmp = tempfile::tempdir().unwrap();
    let server = cached_server(tmp.path(), &up, LONG);

    // The index page tells cargo users what to do, though the tree is
    // still empty.
    let page = get(&server, "/").text();
    assert!(page.contains("sparse+http://"), "{page}");
    assert!(!page.contains("pacman"), "{page}");

    // The index file: fetched once, byte-for-byte.
    let index = get(&server, "/index/le/af/leaf");
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(index.text(), fx.read("le/af/leaf").unwrap());
    assert_eq!(up.gets("index/le/af/leaf"), 1);

    // The crate: fetched once, stored in the layout `mirror crate` uses.
    let leaf = &fx.get("leaf", "1.0.0").bytes;
    let r = get(&server, "/crates/leaf/leaf-1.0.0.crate");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body, leaf);
    assert_eq!(
        std::fs::read(crate_on_disk(tmp.path(), "leaf", "1.0.0")).unwrap(),
        *leaf
    );
    assert_eq!(up.gets("dl/leaf/leaf-1.0.0.crate"), 1);
    // The index copy was fresh: not asked again for the cksum.
    assert_eq!(up.gets("index/le/af/leaf"), 1);

    // A crate whose index file was never asked for: the index comes first.
    // A HEAD fills the tree too (it waits for the file).
    let app = &fx.get("app", "0.1.0").bytes;
    let r = request(server.addr, "HEAD", "/crates/app/0.1.0/download", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-length"),
        Some(app.len().to_string().as_str())
    );
    let r = get(&server, "/crates/app/0.1.0/download");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, fx.get("app", "0.1.0").bytes);
    assert_eq!(up.gets("index/ap/p/app"), 0, "app has a 3-char prefix");
    assert_eq!(up.gets("index/3/a/app"), 1);

    // Hits: no upstream request at all.
    up.clear_requests();
    for target in [
        "/index/le/af/leaf",
        "/crates/leaf/leaf-1.0.0.crate",
        "/crates/le/af/leaf/leaf-1.0.0.crate",
        "/index/3/a/app",
        "/crates/app/app-0.1.0.crate",
    ] {
        let r = get(&server, target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
    }
    assert_eq!(up.requests(), vec![], "hits went upstream");

    // Unknown crates and versions are 404, from upstream's answer.
    assert_eq!(get(&server, "/index/no/ne/nonexistent").status, 404);
    // Remembered for the TTL: asked upstream once.
    assert_eq!(get(&server, "/index/no/ne/nonexistent").status, 404);
    assert_eq!(up.gets("index/no/ne/nonexistent"), 1);
    assert_eq!(get(&server, "/crates/LEAF/LEAF-1.0.0.crate").status, 404);
    let r = get(&server, "/crates/leaf/leaf-9.9.9.crate");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("leaf 9.9.9"), "{}", r.text());
    assert_eq!(up.gets("dl/leaf/leaf-9.9.9.crate"), 0);

    let s = stats(&server);
    let index_bytes = fx.read("le/af/leaf").unwrap().len() + fx.read("3/a/app").unwrap().len();
    let crate_bytes = leaf.len() + fx.get("app", "0.1.0").bytes.len();
    assert_eq!(
        s["upstream_bytes"].as_u64().unwrap(),
        (index_bytes + crate_bytes) as u64,
        "{s}"
    );
    assert!(s["hits"].as_u64().unwrap() >= 5, "{s}");
    assert!(s["misses"].as_u64().unwrap() >= 4, "{s}");
}

#[test]
fn concurrent_clients_share_one_upstream_download() {
    let up = Upstream::start();
    let fx = CratesFixture::new(&up);
    // Sent slowly enough to overlap.
    let big = slow_big_crate(&up, &fx, 60);
    let tmp = tempfile::tempdir().unwrap();
    let server = cached_server(tmp.path(), &up, LONG);

    let clients: Vec<_> = (0..3)
        .map(|i| {
            let addr = server.addr;
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150 * i));
                request(addr, "GET", "/crates/big/big-1.0.0.crate", &[])
            })
        })
        .collect();
    let answers: Vec<Raw> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body.len(), big.len());
        assert_eq!(sha256_hex(&r.body), sha256_hex(&big));
    }
    assert_eq!(
        up.gets("dl/big/big-1.0.0.crate"),
        1,
        "one upstream download"
    );
    assert_eq!(up.gets("index/3/b/big"), 1);
    let s = stats(&server);
    assert!(s["joined"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(
        std::fs::read(crate_on_disk(tmp.path(), "big", "1.0.0")).unwrap(),
        big
    );
}

/// Every file under `dir` (hidden ones too).
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    super::cargo_client::walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn corrupt_upstream_bytes_are_never_served_or_stored() {
    let up = Upstream::start();
    let (fx, sp, tmp, server) = leaf_served(&up, LONG);

    // Same length, other bytes.
    up.fault("dl/leaf/leaf-1.0.0.crate", Fault::WrongBytes, 1);
    let r = get(&server, "/crates/leaf/leaf-1.0.0.crate");
    assert_eq!(r.status, 502, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("checksum mismatch")
            && text.contains(&up.url("dl/leaf/leaf-1.0.0.crate"))
            && text.contains(&fx.get("leaf", "1.0.0").cksum),
        "{text}"
    );
    assert!(
        !files_under(tmp.path())
            .iter()
            .any(|f| f.starts_with("crates/")),
        "{:?}",
        files_under(tmp.path())
    );
    // A digest mismatch is not retried.
    assert_eq!(up.gets("dl/leaf/leaf-1.0.0.crate"), 1);

    // An index file that is not an index file is refused too.
    fx.write("3/b/bad", "<html>maintenance</html>\n");
    sp.sync(&fx);
    let r = get(&server, "/index/3/b/bad");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains(&up.url("index/3/b/bad")) && r.text().contains("not an index entry"),
        "{}",
        r.text()
    );
    assert!(!tmp
        .path()
        .join(".mirror/cache/crates-index/3/b/bad")
        .exists());
    let s = stats(&server);
    assert_eq!(s["rejected"].as_u64().unwrap(), 2, "{s}");

    // Once upstream is sound again, the real bytes come through.
    up.clear_requests();
    let r = get(&server, "/crates/leaf/leaf-1.0.0.crate");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, fx.get("leaf", "1.0.0").bytes);
    // No partial file or temporary is left behind.
    let left: Vec<String> = files_under(tmp.path())
        .into_iter()
        .filter(|f| f.contains(".partial") || f.contains(".tmp."))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn upstream_down_still_serves_the_cached_index() {
    let up = Upstream::start();
    // TTL zero: every request revalidates.
    let (mut fx, sp, _tmp, server) = leaf_served(&up, Duration::ZERO);

    let first = get(&server, "/index/le/af/leaf");
    assert_eq!(first.status, 200, "{}", first.text());
    let etag = first.header("etag").unwrap().to_string();

    // Revalidation sends the upstream ETag back and takes the 304.
    let again = get(&server, "/index/le/af/leaf");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    let reqs = up.requests_for("index/le/af/leaf");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].header("if-none-match").is_some(), "{:?}", reqs[1]);
    assert_eq!(stats(&server)["revalidated"].as_u64().unwrap(), 1);

    // A client's own revalidation against our ETag gets a 304.
    let r = request(
        server.addr,
        "GET",
        "/index/le/af/leaf",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);

    // Upstream down (5xx, then resets): the last good copy is served.
    up.fault("index/le/af/leaf", Fault::Status(503), 2);
    up.fault("index/le/af/leaf", Fault::Reset, 2);
    for _ in 0..2 {
        let r = get(&server, "/index/le/af/leaf");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, first.body);
    }
    assert_eq!(stats(&server)["stale"].as_u64().unwrap(), 2);
    // And a crate whose index line is cached can still be fetched.
    up.fault("index/le/af/leaf", Fault::Status(500), 2);
    let r = get(&server, "/crates/leaf/leaf-1.0.0.crate");
    assert_eq!(r.status, 200, "{}", r.text());

    // Upstream back with a new version: picked up.
    fx.publish("leaf", "1.1.0", &[]);
    sp.sync(&fx);
    let r = get(&server, "/index/le/af/leaf");
    assert_eq!(r.text(), fx.read("le/af/leaf").unwrap());
    assert!(r.text().contains("\"1.1.0\""));

    // No copy and upstream down: 502 naming the URL.
    fx.publish("new", "1.0.0", &[]);
    sp.sync(&fx);
    up.fault("index/3/n/new", Fault::Status(503), 2);
    let r = get(&server, "/index/3/n/new");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains(&up.url("index/3/n/new")) && r.text().contains("503"),
        "{}",
        r.text()
    );
}

/// Real cargo through `mirror serve --upstream-crates` (the binary): the
/// first `cargo fetch` fills the tree, a second one with a fresh
/// CARGO_HOME makes no upstream request.
#[test]
fn cargo_fetch_through_the_cache_fills_the_tree() {
    use super::cargo_client::{cargo, cargo_home, ok, project};
    let Some(bin) = super::rustup::require_client("cargo") else {
        return;
    };
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    SparseUpstream::new(&up).sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let server = ServeProcess::start(
        &root,
        &[
            "--upstream-crates",
            &format!("sparse+{}/", up.url(INDEX_PREFIX)),
            "--upstream-crates-dl",
            &format!(
                "{}/{{crate}}/{{crate}}-{{version}}.crate",
                up.url(DL_PREFIX)
            ),
        ],
    );
    let registry = format!("sparse+{}", server.url("/index/"));

    let proj = work.path().join("project");
    project(&proj);
    let home1 = work.path().join("home1");
    cargo_home(&home1, &registry);
    ok(
        "cargo generate-lockfile",
        cargo(&bin, &proj, &home1, "sparse", &["generate-lockfile"]),
    );
    ok(
        "cargo fetch",
        cargo(&bin, &proj, &home1, "sparse", &["fetch"]),
    );
    for (name, version) in [("app", "0.1.0"), ("leaf", "1.1.0")] {
        assert_eq!(
            std::fs::read(crate_on_disk(&root, name, version)).unwrap(),
            fx.get(name, version).bytes,
            "{name} {version} in the tree"
        );
    }
    assert!(!crate_on_disk(&root, "leaf", "1.0.0").exists());

    up.clear_requests();
    let home2 = work.path().join("home2");
    cargo_home(&home2, &registry);
    ok(
        "second cargo fetch",
        cargo(&bin, &proj, &home2, "sparse", &["fetch"]),
    );
    assert_eq!(up.requests(), vec![], "the second fetch went upstream");
    let cached: Vec<String> = super::cargo_client::walk(&home2.join("registry/cache"))
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for want in ["app-0.1.0.crate", "leaf-1.1.0.crate"] {
        assert!(cached.iter().any(|c| c == want), "{want} not in {cached:?}");
    }
}

/// 8 MiB of incompressible bytes.
fn big_bytes(seed: u64) -> Vec<u8> {
    let mut big = Vec::with_capacity(8 << 20);
    let mut x = seed;
    while big.len() < 8 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    big
}

/// Publish `big 1.0.0` (8 MiB), whose next download is sent 512 KiB at a
/// time, `every_ms` apart; its bytes.
fn slow_big_crate(up: &Upstream, fx: &CratesFixture<'_>, every_ms: u64) -> Vec<u8> {
    let big = big_bytes(0x9e37_79b9_7f4a_7c15);
    publish_bytes(up, fx, "big", "1.0.0", &big);
    SparseUpstream::new(up).sync(fx);
    up.fault(
        "dl/big/big-1.0.0.crate",
        Fault::Trickle {
            bytes: 512 * 1024,
            every_ms,
        },
        1,
    );
    big
}

/// A server whose clients follow downloads after 100 ms.
fn following_server(root: &Path, up: &Upstream) -> RunningServer {
    pulling_server(
        root,
        UpstreamOptions {
            crates: crates_upstream(up),
            ttl: LONG,
            follow_after: Duration::from_millis(100),
            ..UpstreamOptions::default()
        },
    )
}

/// GET `url`: when the headers came, and the body (or the error that cut
/// it).
async fn timed_get(url: String) -> (Duration, u16, Result<Vec<u8>, String>) {
    let started = std::time::Instant::now();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client.get(url).send().await.unwrap();
    let head = started.elapsed();
    let status = res.status().as_u16();
    let body = res
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("{e:?}"));
    (head, status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_downloads_are_followed_as_they_arrive() {
    let up = Upstream::start();
    let fx = CratesFixture::new(&up);
    // 16 writes 150 ms apart: about 2.4 s.
    let big = slow_big_crate(&up, &fx, 150);
    let tmp = tempfile::tempdir().unwrap();
    let server = following_server(tmp.path(), &up);
    let url = server.url("/crates/big/big-1.0.0.crate");
    let first = tokio::spawn(timed_get(url.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = tokio::spawn(timed_get(url.clone()));
    let (head1, status1, body1) = first.await.unwrap();
    let (head2, status2, body2) = second.await.unwrap();
    assert_eq!((status1, status2), (200, 200));
    // Both had their headers long before the 2.4 s transfer ended.
    assert!(head1 < Duration::from_millis(1500), "{head1:?}");
    assert!(head2 < Duration::from_millis(1500), "{head2:?}");
    for body in [body1.unwrap(), body2.unwrap()] {
        assert_eq!(sha256_hex(&body), sha256_hex(&big));
    }
    assert_eq!(up.gets("dl/big/big-1.0.0.crate"), 1);
    assert_eq!(
        std::fs::read(crate_on_disk(tmp.path(), "big", "1.0.0")).unwrap(),
        big
    );
    // Later clients get the file from disk.
    let (_, status, body) = timed_get(url).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().len(), big.len());
    assert_eq!(up.gets("dl/big/big-1.0.0.crate"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_followed_download_that_fails_to_verify_is_cut_short_and_not_stored() {
    let up = Upstream::start();
    let fx = CratesFixture::new(&up);
    let good = big_bytes(1);
    publish_bytes(&up, &fx, "big", "1.0.0", &good);
    SparseUpstream::new(&up).sync(&fx);
    // Upstream sends other bytes than the index's cksum, slowly.
    up.put("dl/big/big-1.0.0.crate", big_bytes(2));
    up.fault(
        "dl/big/big-1.0.0.crate",
        Fault::Trickle {
            bytes: 1024 * 1024,
            every_ms: 100,
        },
        1,
    );
    let tmp = tempfile::tempdir().unwrap();
    let server = following_server(tmp.path(), &up);
    let (_, status, body) = timed_get(server.url("/crates/big/big-1.0.0.crate")).await;
    assert_eq!(status, 200, "followed");
    let err = body.expect_err("a body that failed to verify must not complete");
    assert!(!err.is_empty());
    assert!(!crate_on_disk(tmp.path(), "big", "1.0.0").exists());
    // A client that waits for verification (the default 5 s) gets the
    // reason instead.
    let waiting = cached_server(tmp.path(), &up, LONG);
    let (_, status, body) = timed_get(waiting.url("/crates/big/big-1.0.0.crate")).await;
    assert_eq!(status, 502);
    let text = String::from_utf8(body.unwrap()).unwrap();
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(!crate_on_disk(tmp.path(), "big", "1.0.0").exists());
}
