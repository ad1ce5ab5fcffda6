//! Hardening of `mirror serve --upstream-…` (the pull-through cache):
//! every path segment held to its ecosystem's grammar before any upstream
//! request or write; one file and its sidecar written by many requests at
//! once; a partial mirror's metadata never replaced from upstream; the
//! "not found" memory bounded and each client's upstream requests
//! budgeted; temporaries of killed runs swept, those of live ones kept;
//! the engine's `.partial` shared by two transfers of one file.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mirror::eco::hex::registry::PublicKey;
use mirror::fetch::{Engine, FetchItem, FetchOptions};
use mirror::http::HttpOptions;
use mirror::report::NullReporter;
use mirror::serve::cache::limits::Limits;
use mirror::serve::cache::{CratesUpstream, DistUpstream, HexUpstream, UpstreamOptions};
use mirror::verify::openpgp::Keyring;
use mirror::verify::Sha256Digest;

use super::crates_serve::Raw;
use super::serve_cache::{get, pulling_server, stats, LONG};
use crate::rustup::mirror;
use crate::support::arch::{publish, publish_with, Pkg, ARCH};
use crate::support::hex::{key_path, rel, test_public_key_pem, HexRepo};
use crate::support::keys::{sign_detached, TestKey};
use crate::support::upstream::{Fault, Upstream};

/// Every upstream of the cache, all on `up` (which holds nothing unless a
/// test publishes it).
fn all_upstreams(up: &Upstream) -> UpstreamOptions {
    UpstreamOptions {
        crates: Some(CratesUpstream {
            index: format!("{}/", up.url("index")),
            dl: format!("{}/{{crate}}/{{crate}}-{{version}}.crate", up.url("dl")),
        }),
        arch: vec![format!("{}/$repo/os/$arch", up.url("m"))],
        hex: Some(hex_upstream(up)),
        dist: Some(DistUpstream {
            url: up.url("dist"),
            keyring: Arc::new(Keyring::rust_release()),
        }),
        rustup: Some(up.url("rustup")),
        ttl: LONG,
        ..UpstreamOptions::default()
    }
}

fn hex_upstream(up: &Upstream) -> HexUpstream {
    HexUpstream {
        url: up.url("hex"),
        key: PublicKey::from_pem(&test_public_key_pem(), "the test key").unwrap(),
        repo: "hexpm".into(),
    }
}

/// Every entry (directories too) below `root`, relative, sorted.
fn entries_under(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            out.push(rel);
            if e.file_type().unwrap().is_dir() {
                walk(base, &e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Each cache path with `{}` where one segment goes, and a value of that
/// segment the ecosystem takes (so the template is shown to reach
/// upstream when the segment is good).
const TEMPLATES: &[(&str, &str)] = &[
    // Arch: repository, architecture, file.
    ("/archlinux/{}/os/x86_64/core.db", "core"),
    ("/archlinux/core/os/{}/core.db", "x86_64"),
    (
        "/archlinux/core/os/{}/alpha-1.0-1-x86_64.pkg.tar.zst",
        "x86_64",
    ),
    (
        "/archlinux/core/os/{}/alpha-1.0-1-x86_64.pkg.tar.zst.sig",
        "x86_64",
    ),
    ("/archlinux/core/os/x86_64/{}", "core.db"),
    (
        "/archlinux/core/os/x86_64/{}.pkg.tar.zst",
        "alpha-1.0-1-x86_64",
    ),
    // crates: the sparse index and the `.crate` layout.
    ("/index/se/rd/{}", "serde"),
    ("/crates/se/rd/serde/serde-{}.crate", "1.0.0"),
    ("/crates/se/rd/{}/serde-1.0.0.crate", "serde"),
    // Hex: package names, tarball names and versions.
    ("/hex/packages/{}", "alpha"),
    ("/hex/tarballs/{}-1.0.0.tar", "alpha"),
    ("/hex/tarballs/alpha-{}.tar", "1.0.0"),
    // Toolchains: dates, manifests, component files.
    ("/dist/{}", "channel-rust-stable.toml"),
    ("/dist/channel-rust-{}.toml", "stable"),
    (
        "/dist/2024-01-02/{}",
        "rustc-1.0.0-x86_64-unknown-linux-gnu.tar.xz",
    ),
    ("/dist/2024-01-02/channel-rust-{}.toml", "stable"),
    (
        "/dist/{}/rustc-1.0.0-x86_64-unknown-linux-gnu.tar.xz",
        "2024-01-02",
    ),
    // rustup: versions and triples.
    (
        "/rustup/archive/{}/x86_64-unknown-linux-gnu/rustup-init",
        "1.27.1",
    ),
    (
        "/rustup/archive/1.27.1/{}/rustup-init",
        "x86_64-unknown-linux-gnu",
    ),
    ("/rustup/dist/{}/rustup-init", "x86_64-unknown-linux-gnu"),
];

/// Raw segments (as sent on the wire) that decode, once or twice, into
/// separators, dot segments, NUL, or URL structure (`?`, `#`).
const HOSTILE: &[&str] = &[
    "%252F",
    "a%252Fb",
    "%255C",
    "%252E%252E",
    "%252e%252e",
    "..%252F..%252Fcore",
    "%2500",
    "a%253Fb",
    "a%2523b",
    "a%3Fb",
    "a%23b",
    "a%20b",
    "%2F",
    "a%2Fb",
    "%5C",
    "%2E%2E",
    "%2e%2E",
    "..",
    ".",
    "%00",
    "%2Ehidden",
    "%C3%A9",
];

#[test]
fn every_cache_segment_of_every_ecosystem_is_held_to_its_grammar() {
    let up = Upstream::start();
    let tmp = tempfile::tempdir().unwrap();
    // No TTL: nothing remembered, so every good request goes upstream.
    let server = pulling_server(
        tmp.path(),
        UpstreamOptions {
            ttl: Duration::ZERO,
            ..all_upstreams(&up)
        },
    );

    // Each template reaches upstream when its segment is good.
    for (template, good) in TEMPLATES {
        up.clear_requests();
        let path = template.replace("{}", good);
        let r = get(&server, &path);
        assert!(r.status < 500, "{path}: {} {}", r.status, r.text());
        assert!(
            !up.requests().is_empty(),
            "{path}: a good segment goes upstream (the template is a cache path)"
        );
    }
    let before = entries_under(tmp.path());
    up.clear_requests();

    let mut refused = Vec::new();
    for (template, _) in TEMPLATES {
        for bad in HOSTILE {
            let path = template.replace("{}", bad);
            let r = get(&server, &path);
            assert!(
                r.status == 400 || r.status == 404,
                "{path}: expected 400 or 404, got {} {}",
                r.status,
                r.text()
            );
            refused.push((path, r.status));
        }
    }
    assert_eq!(
        up.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "no hostile segment reaches upstream"
    );
    assert_eq!(
        entries_under(tmp.path()),
        before,
        "no directory or file made for a hostile segment"
    );
    // The segments the cache takes apart say what was expected.
    let r = get(&server, "/archlinux/core/os/%252F..%252Fextra/core.db");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("Arch architecture") && r.text().contains("expected"),
        "{}",
        r.text()
    );
}

/// A package whose signature the database embeds: the package's download
/// writes `<file>.sig` beside it while a request for the `.sig` writes the
/// same file. Many rounds of both at once: never an error, never an empty
/// or wrong body.
#[test]
fn a_package_and_its_signature_hammered_together_are_always_whole() {
    let up = Upstream::start();
    let pkgs: Vec<Pkg> = (0..3)
        .map(|i| Pkg::new(&format!("p{i}"), "1.0-1"))
        .collect();
    let sigs: Vec<Vec<u8>> = pkgs
        .iter()
        .map(|p| sign_detached(TestKey::Signing, &p.bytes(), false))
        .collect();
    let repo = publish_with(&up, "m", "core", &pkgs, TestKey::Signing, |d| {
        for (p, sig) in pkgs.iter().zip(&sigs) {
            if d.dir.starts_with(&format!("{}-", p.name)) {
                let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
                d.fields.insert("PGPSIG".into(), vec![b64]);
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let server = pulling_server(
        tmp.path(),
        UpstreamOptions {
            arch: vec![format!("{}/$repo/os/$arch", up.url("m"))],
            ttl: LONG,
            ..UpstreamOptions::default()
        },
    );
    let dir = tmp.path().join(format!("archlinux/core/os/{ARCH}"));
    let addr = server.addr;
    for round in 0..25 {
        // Nothing held: every request of the round is a miss.
        for p in &pkgs {
            let _ = std::fs::remove_file(dir.join(p.filename()));
            let _ = std::fs::remove_file(dir.join(format!("{}.sig", p.filename())));
        }
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (p, sig) in pkgs.iter().zip(&sigs) {
                let file = p.filename();
                for _ in 0..3 {
                    for (path, want) in [
                        (
                            format!("/archlinux/core/os/{ARCH}/{file}"),
                            &repo.files[&file],
                        ),
                        (format!("/archlinux/core/os/{ARCH}/{file}.sig"), sig),
                    ] {
                        handles.push(scope.spawn(move || {
                            let r = super::crates_serve::request(addr, "GET", &path, &[]);
                            (path, r, want)
                        }));
                    }
                }
            }
            for h in handles {
                let (path, r, want) = h.join().unwrap();
                assert_eq!(r.status, 200, "round {round}: {path}: {}", r.text());
                assert!(
                    &r.body == want,
                    "round {round}: {path}: {} bytes, not the {} expected",
                    r.body.len(),
                    want.len()
                );
            }
        });
    }
    let left: Vec<String> = entries_under(&dir)
        .into_iter()
        .filter(|f| f.contains(".tmp.") || f.ends_with(".partial"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "temporaries left behind");
}

/// `mirror arch download --package` regenerates the database to list only
/// what it holds. A cache on the same tree (revalidating at once) serves
/// that database as it is, never upstream's, and adds no file lists.
#[test]
fn a_partial_arch_trees_regenerated_database_is_never_replaced_by_the_cache() {
    let up = Upstream::start();
    let repo = publish(
        &up,
        "m",
        "core",
        &[Pkg::new("alpha", "1.0-1"), Pkg::new("beta", "2.0-1")],
    );
    let root = tempfile::tempdir().unwrap();
    let key = TestKey::Signing.public_path().display().to_string();
    let url = up.url("m/$repo/os/$arch");
    let out = mirror(
        root.path(),
        &[
            "arch",
            "download",
            "--url",
            &url,
            "--repo",
            "core",
            "--keyring",
            &key,
            "--package",
            "alpha",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.path().join(format!("archlinux/core/os/{ARCH}"));
    let regenerated = std::fs::read(dir.join("core.db")).unwrap();
    assert_ne!(regenerated, repo.db, "a partial mirror regenerates");

    let server = pulling_server(
        root.path(),
        UpstreamOptions {
            arch: vec![format!("{}/$repo/os/$arch", up.url("m"))],
            ttl: Duration::ZERO,
            ..UpstreamOptions::default()
        },
    );
    up.clear_requests();
    for _ in 0..2 {
        let r = get(&server, &format!("/archlinux/core/os/{ARCH}/core.db"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == regenerated, "the regenerated database is served");
        let r = get(&server, &format!("/archlinux/core/os/{ARCH}/core.files"));
        assert_eq!(r.status, 404, "{}", r.text());
    }
    // A package outside the selection is not listed: 404, and the
    // database is not refreshed from upstream to find it.
    let beta = Pkg::new("beta", "2.0-1").filename();
    let r = get(&server, &format!("/archlinux/core/os/{ARCH}/{beta}"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(std::fs::read(dir.join("core.db")).unwrap(), regenerated);
    assert!(!dir.join("core.files").exists());
    let db_requests: Vec<String> = up
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.contains("/core.db") || p.contains("/core.files"))
        .collect();
    assert_eq!(db_requests, Vec::<String>::new());
    // Held packages are served as ever.
    let alpha = Pkg::new("alpha", "1.0-1").filename();
    let r = get(&server, &format!("/archlinux/core/os/{ARCH}/{alpha}"));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `mirror hex download --package` keeps the `names` and `versions` it
/// compares the next download with: a cache on the same tree never
/// replaces them with upstream's newer ones.
#[test]
fn a_partial_hex_trees_names_and_versions_are_never_replaced_by_the_cache() {
    let up = Upstream::start();
    let mut repo = HexRepo::sample();
    repo.publish(&up);
    let root = tempfile::tempdir().unwrap();
    let hex_url = up.url("hex");
    let key = key_path("hex-test.pub.pem").display().to_string();
    let out = mirror(
        root.path(),
        &[
            "hex",
            "download",
            "--url",
            &hex_url,
            "--public-key",
            &key,
            "--package",
            "alpha",
            "--versions",
            "latest",
            "--with-deps",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex_dir = root.path().join("hex");
    let held: Vec<Vec<u8>> = ["names", "versions"]
        .iter()
        .map(|f| std::fs::read(hex_dir.join(f)).unwrap())
        .collect();
    // Upstream moves on.
    repo.add("zeta", vec![rel("0.1.0", &[])]);
    repo.publish(&up);
    assert_ne!(up.get("hex/names").unwrap(), held[0]);

    let server = pulling_server(
        root.path(),
        UpstreamOptions {
            hex: Some(hex_upstream(&up)),
            ttl: Duration::ZERO,
            ..UpstreamOptions::default()
        },
    );
    up.clear_requests();
    for (file, bytes) in ["names", "versions"].iter().zip(&held) {
        let r = get(&server, &format!("/hex/{file}"));
        assert_eq!(r.status, 200, "{file}: {}", r.text());
        assert!(
            &r.body == bytes,
            "{file}: the partial mirror's copy is served"
        );
        assert_eq!(&std::fs::read(hex_dir.join(file)).unwrap(), bytes, "{file}");
    }
    assert_eq!(up.gets("hex/names") + up.gets("hex/versions"), 0);
}

/// A request from `from` (a loopback address of its own) to `server`.
fn request_from(from: &str, server: SocketAddr, target: &str) -> Raw {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(server).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    let mut s = stream;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    Raw {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// Distinct names that do not exist: each a 404 upstream. One client past
/// its budget gets 429 with Retry-After and makes no more upstream
/// requests; another client still gets its own; the "not found" memory
/// stays under its cap; a remembered 404 costs no token.
#[test]
fn misses_are_budgeted_per_client_and_the_not_found_memory_is_bounded() {
    let up = Upstream::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = pulling_server(
        tmp.path(),
        UpstreamOptions {
            limits: Limits {
                not_found_entries: 8,
                miss_rate: 0.01,
                miss_burst: 12,
                ..Limits::default()
            },
            ..all_upstreams(&up)
        },
    );
    let index = |name: &str| format!("/index/{}", crate::support::crates::index_path(name));
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = request_from("127.0.0.1", server.addr, &index(&format!("nothing{i}")));
        if r.status == 429 {
            let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!(after >= 1, "{after}");
        }
        statuses.push(r.status);
    }
    let from_one = up.requests().len();
    assert_eq!(from_one, 12, "one upstream request per token: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 12);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 28);
    // A 404 still remembered costs no token: 404, not 429.
    let r = request_from("127.0.0.1", server.addr, &index("nothing11"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(up.requests().len(), from_one);

    // Another client is not held back by the first.
    for i in 0..5 {
        let r = request_from("127.0.0.2", server.addr, &index(&format!("other{i}")));
        assert_eq!(r.status, 404, "{}", r.text());
    }
    assert_eq!(up.requests().len(), from_one + 5);

    let s = stats(&server);
    assert!(s["not_found_entries"].as_u64().unwrap() <= 8, "{s}");
    assert_eq!(s["limited"].as_u64().unwrap(), 28, "{s}");
}

/// A run killed between writing a temporary and renaming it leaves it
/// behind; the next write into that directory removes it when its writer
/// is gone, and keeps a live writer's.
#[test]
fn temporaries_of_killed_runs_are_swept_and_those_of_live_writers_kept() {
    let up = Upstream::start();
    publish(&up, "m", "core", &[Pkg::new("alpha", "1.0-1")]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(format!("archlinux/core/os/{ARCH}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    // pid 2^22 + 1 is above Linux's pid_max: never alive.
    let dead = [
        ".core.db.tmp.4194305.3.1a2b3c4d".to_string(),
        ".alpha-1.0-1-x86_64.pkg.tar.zst.sig.tmp.4194305.9.ffffffff".to_string(),
    ];
    let alive = format!(".core.db.tmp.{}.1.0badcafe", live.id());
    for name in dead.iter().chain([&alive]) {
        std::fs::write(dir.join(name), b"half a file").unwrap();
    }
    let server = pulling_server(
        tmp.path(),
        UpstreamOptions {
            arch: vec![format!("{}/$repo/os/$arch", up.url("m"))],
            ttl: LONG,
            ..UpstreamOptions::default()
        },
    );
    let r = get(&server, &format!("/archlinux/core/os/{ARCH}/core.db"));
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = entries_under(&dir);
    for d in &dead {
        assert!(!names.contains(d), "{d} swept: {names:?}");
    }
    assert!(names.contains(&alive), "a live writer's kept: {names:?}");
    let _ = live.kill();
    let _ = live.wait();
}

/// An engine of one job with this timeout and retries.
fn one_job_engine(timeout: Duration, retries: u32) -> Engine {
    Engine::new(FetchOptions {
        jobs: 1,
        keep_going: false,
        assume_ok: false,
        http: HttpOptions {
            timeout,
            retries,
            retry_delay: Duration::ZERO,
            low_speed_limit: 0,
            max_file_size: None,
        },
    })
    .unwrap()
}

/// Two transfers of one file at once (the cache and an `update` on one
/// tree): one writes `<dest>.partial`, the other waits for it, and both
/// end with the whole, verified file in place.
#[test]
fn two_transfers_of_one_file_share_its_partial_file_safely() {
    let up = Upstream::start();
    // Past the 1 MiB the engine may hold in memory: through `.partial`.
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    up.put("big.bin", data.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dest: PathBuf = tmp.path().join("big.bin");
    let engine = || one_job_engine(Duration::from_secs(20), 1);
    for _ in 0..3 {
        let _ = std::fs::remove_file(&dest);
        // Slow enough that the two overlap.
        up.fault(
            "big.bin",
            Fault::Trickle {
                bytes: 50_000,
                every_ms: 20,
            },
            2,
        );
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..2)
                .map(|_| {
                    let item = FetchItem::new(up.url("big.bin"), &dest)
                        .sha256(Sha256Digest::of(&data))
                        .size(data.len() as u64);
                    let e = engine();
                    scope.spawn(move || e.fetch_all(vec![item], &NullReporter).map(|_| ()))
                })
                .collect();
            for r in runs {
                r.join().unwrap().unwrap();
            }
        });
        assert!(std::fs::read(&dest).unwrap() == data, "the whole file");
        assert!(!mirror::fetch::partial_path(&dest).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "published readable by all");
        }
    }
}

/// A partial file another process holds (locked) and does not grow: the
/// transfer gives up after the timeout with a message, publishing
/// nothing, instead of writing into it or waiting for ever.
#[test]
fn a_partial_file_held_by_a_stalled_process_is_an_error_not_a_wait_for_ever() {
    let up = Upstream::start();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 13) as u8).collect();
    up.put("held.bin", data.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("held.bin");
    let partial = mirror::fetch::partial_path(&dest);
    std::fs::write(&partial, b"someone else's").unwrap();
    let holder = std::fs::File::open(&partial).unwrap();
    holder.lock().unwrap();
    let engine = one_job_engine(Duration::from_secs(1), 0);
    let item = FetchItem::new(up.url("held.bin"), &dest).sha256(Sha256Digest::of(&data));
    let e = engine.fetch_all(vec![item], &NullReporter).unwrap_err();
    let text = format!("{e:?}");
    assert!(text.contains("another process holds"), "{text}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read(&partial).unwrap(), b"someone else's");
    drop(holder);
}

/// A `.crate` the index lists but upstream does not have: `404`, and no
/// empty `.partial` (or other file) is left where it would have gone.
#[test]
fn a_download_upstream_does_not_have_leaves_no_partial_file() {
    let up = Upstream::start();
    let rel = crate::support::crates::index_path("ghost");
    let line = crate::support::crates::index_line("ghost", "1.0.0", &[], &"0".repeat(64), false);
    up.put(&format!("index/{rel}"), format!("{line}\n"));
    let tmp = tempfile::tempdir().unwrap();
    let server = pulling_server(tmp.path(), all_upstreams(&up));
    let r = get(&server, "/crates/gh/os/ghost/ghost-1.0.0.crate");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(up.gets("dl/ghost/ghost-1.0.0.crate"), 1);
    let left: Vec<String> = entries_under(tmp.path())
        .into_iter()
        .filter(|e| e.contains("ghost-1.0.0"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}
