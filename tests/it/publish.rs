//! `mirror publish` against a real S3 server (`s3s-fs`, see
//! `support::s3`): a tree with a partial crates mirror, a toolchain,
//! rustup, an Arch repository and a Hex repository is published; the real
//! cargo resolves and fetches straight off the store's public endpoint
//! (`sparse+http://127.0.0.1:PORT/BUCKET/PREFIX/index/`), a version with
//! `+` included; the next trip's publish uploads only what changed, in
//! order, and deletes the pruned crate's index file at once and its
//! `.crate` only later; publishes killed at seeded moments leave a mirror
//! in which every index line has its file, and a rerun completes; an
//! unreachable store is a clear error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::cargo_client::{cargo, cargo_home, ok, round, walk, write};
use crate::support::crates::{git, CratesFixture};
use crate::support::s3::S3Server;
use crate::support::upstream::Upstream;

const BUCKET: &str = "mirror-bkt";
const PREFIX: &str = "site/v1";

fn to() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// The public URL of the prefix (the unsigned server).
fn public(s3: &S3Server) -> String {
    format!("{}/{BUCKET}/{PREFIX}", s3.public_endpoint)
}

/// A mirror root: the fixture crates index cloned to
/// `git/crates.io-index` and the crate files under `crates/`, plus plain
/// trees of the other ecosystems (publish copies them as they are).
struct Tree<'a> {
    root: PathBuf,
    fx: CratesFixture<'a>,
}

impl Tree<'_> {
    fn put(&self, rel: &str, bytes: &[u8]) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Write every published crate file and move the root's `master` to
    /// the fixture's.
    fn sync_crates(&self) {
        for p in self.fx.published() {
            let rel = format!(
                "crates/{}",
                mirror::eco::crates::layout::crate_rel_path(&p.name, &p.version)
            );
            self.put(&rel, &p.bytes);
        }
        let index = self.root.join("git/crates.io-index");
        if index.exists() {
            git(&index, &["pull", "-q", "--ff-only", "origin", "master"]);
        } else {
            git(
                &self.root,
                &["clone", "-q", &self.fx.index_url(), "git/crates.io-index"],
            );
        }
    }

    /// Every file the store must hold: tree path → bytes.
    fn published_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for dir in ["dist", "rustup", "crates", "hex", "archlinux"] {
            for p in walk(&self.root.join(dir)) {
                let rel = p.strip_prefix(&self.root).unwrap().to_str().unwrap();
                if !rel.split('/').any(|c| c.starts_with('.')) {
                    out.insert(rel.to_owned(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }
}

fn tree<'a>(up: &'a Upstream, tmp: &Path) -> Tree<'a> {
    let root = tmp.join("root");
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    fx.publish("plus", "1.0.0+build.1", &[]);
    fx.commit("Add crates");
    let t = Tree { root, fx };
    t.sync_crates();
    let day = "dist/2024-01-01";
    let pkg = "rust-1.75.0-x86_64-unknown-linux-gnu.tar.xz";
    t.put(&format!("{day}/{pkg}"), b"toolchain tarball");
    t.put(&format!("{day}/{pkg}.sha256"), b"0000  rust.tar.xz\n");
    for dir in [day, "dist"] {
        t.put(
            &format!("{dir}/channel-rust-stable.toml"),
            b"manifest-version = \"2\"\n",
        );
        t.put(&format!("{dir}/channel-rust-stable.toml.sha256"), b"1111\n");
        t.put(&format!("{dir}/channel-rust-stable.toml.asc"), b"sig\n");
    }
    t.put(
        "rustup/release-stable.toml",
        b"schema-version = '1'\nversion = '1.27.1'\n",
    );
    t.put(
        "rustup/archive/1.27.1/x86_64-unknown-linux-gnu/rustup-init",
        b"ELF",
    );
    t.put("rustup/dist/x86_64-unknown-linux-gnu/rustup-init", b"ELF");
    let arch = "archlinux/core/os/x86_64";
    t.put(
        &format!("{arch}/libc++-18.1.8-1-x86_64.pkg.tar.zst"),
        b"pkg",
    );
    t.put(
        &format!("{arch}/libc++-18.1.8-1-x86_64.pkg.tar.zst.sig"),
        b"psig",
    );
    for f in ["core.db", "core.db.sig", "core.files", "core.files.sig"] {
        t.put(&format!("{arch}/{f}"), f.as_bytes());
    }
    t.put(&format!("{arch}/.mirror-partial"), b"marker");
    t.put("hex/names", b"names-v1");
    t.put("hex/versions", b"versions-v1");
    t.put("hex/packages/jason", b"jason-package");
    t.put("hex/tarballs/jason-1.4.0.tar", b"jason-tarball");
    t.put(".mirror/state.json", b"{}");
    t
}

fn publish(s3: &S3Server, root: &Path, extra: &[&str]) -> Output {
    let mut cmd = s3.publish(root, &to(), extra);
    crate::support::run_logged(&mut cmd, "mirror publish")
}

fn publish_ok(s3: &S3Server, root: &Path, extra: &[&str]) -> String {
    let out = publish(s3, root, extra);
    assert!(out.status.success(), "mirror publish failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The store's path of a tree key, below the bucket's public URL.
fn key_path(rel: &str) -> String {
    format!("/{BUCKET}/{PREFIX}/{rel}")
}

fn assert_store_has(s3: &S3Server, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, bytes) in files {
        let (status, body) = s3.get(&key_path(rel));
        assert_eq!(status, 200, "{rel} is not in the store");
        assert_eq!(&body, bytes, "{rel} differs in the store");
    }
}

/// (operation, key below the prefix) routed by the signed server since
/// `from` operations.
fn ops_since(s3: &S3Server, from: usize) -> Vec<(String, String)> {
    s3.operations().into_iter().skip(from).collect()
}

#[test]
fn publish_serves_cargo_from_the_store_and_uploads_only_what_changed() {
    let Some(s3) = S3Server::start(BUCKET) else {
        return;
    };
    let up = Upstream::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut t = tree(&up, tmp.path());
    // A file above the multipart threshold goes in parts.
    let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
    t.put("dist/2024-01-01/rust-src-1.75.0.tar.xz", &big);
    let multipart = ["--multipart-threshold", "5M", "--part-size", "5M"];

    let said = publish_ok(&s3, &t.root, &multipart);
    assert!(said.contains("published:"), "{said}");
    let ops = ops_since(&s3, 0);
    assert!(
        ops.iter().any(|(op, _)| op == "CompleteMultipartUpload"),
        "{ops:?}"
    );
    assert_store_has(&s3, &t.published_files());
    for local_only in [".mirror/state.json", "git/crates.io-index/config.json"] {
        assert_eq!(s3.get(&key_path(local_only)).0, 404, "{local_only}");
    }
    assert_eq!(
        s3.get(&key_path("archlinux/core/os/x86_64/.mirror-partial"))
            .0,
        404
    );
    // Every file before any metadata; index files before config.json.
    let puts: Vec<&str> = ops
        .iter()
        .filter(|(op, _)| op == "PutObject" || op == "CreateMultipartUpload")
        .map(|(_, k)| k.strip_prefix(&format!("{PREFIX}/")).unwrap_or(k))
        .collect();
    let pos = |k: &str| {
        puts.iter()
            .position(|p| *p == k)
            .unwrap_or_else(|| panic!("{k} not in {puts:?}"))
    };
    let last_file = [
        "crates/le/af/leaf/leaf-1.1.0.crate",
        "crates/pl/us/plus/plus-1.0.0+build.1.crate",
        "hex/tarballs/jason-1.4.0.tar",
        "archlinux/core/os/x86_64/libc++-18.1.8-1-x86_64.pkg.tar.zst",
        "rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
    ]
    .iter()
    .map(|k| pos(k))
    .max()
    .unwrap();
    for meta in [
        "index/le/af/leaf",
        "index/config.json",
        "hex/names",
        "archlinux/core/os/x86_64/core.db",
        "dist/channel-rust-stable.toml",
        "rustup/release-stable.toml",
    ] {
        assert!(pos(meta) > last_file, "{meta} before a file: {puts:?}");
    }
    assert!(
        pos("index/le/af/leaf") < pos("index/config.json"),
        "{puts:?}"
    );
    assert!(
        pos("dist/channel-rust-stable.toml") < pos("dist/channel-rust-stable.toml.sha256"),
        "{puts:?}"
    );
    assert!(
        pos("archlinux/core/os/x86_64/core.db") < pos("archlinux/core/os/x86_64/core.db.sig"),
        "{puts:?}"
    );

    // Headers fit the files: no Content-Encoding on compressed files.
    let addr = s3
        .public_endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let crate_head = crate::crates_serve::request(
        addr,
        "GET",
        &key_path("crates/le/af/leaf/leaf-1.1.0.crate"),
        &[],
    );
    assert_eq!(crate_head.header("content-type"), Some("application/gzip"));
    assert!(crate_head.header("content-encoding").is_none());
    assert!(crate_head
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
    let config = crate::crates_serve::request(addr, "GET", &key_path("index/config.json"), &[]);
    let config: serde_json::Value = serde_json::from_slice(&config.body).unwrap();
    assert_eq!(
        config["dl"],
        format!(
            "{}/crates/{{lowerprefix}}/{{crate}}/{{crate}}-{{version}}.crate",
            public(&s3)
        )
    );

    // The real cargo, straight off the store.
    if let Some(bin) = crate::rustup::require_client("cargo") {
        let registry = format!("sparse+{}/index/", public(&s3));
        round(&bin, tmp.path(), "sparse-store", "sparse", &registry);
        // A version with build metadata (`+`) round-trips.
        let dir = tmp.path().join("plus");
        let (home, proj) = (dir.join("cargo-home"), dir.join("project"));
        write(
            &proj.join("Cargo.toml"),
            "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nplus = \"1\"\n\n[workspace]\n",
        );
        write(&proj.join("src/main.rs"), "fn main() {}\n");
        cargo_home(&home, &registry);
        ok(
            "cargo fetch plus",
            cargo(&bin, &proj, &home, "sparse", &["fetch"]),
        );
        let lock = std::fs::read_to_string(proj.join("Cargo.lock")).unwrap();
        assert!(lock.contains("version = \"1.0.0+build.1\""), "{lock}");
        let cached: Vec<String> = walk(&home.join("registry/cache"))
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert!(
            cached.iter().any(|c| c == "plus-1.0.0+build.1.crate"),
            "{cached:?}"
        );
    }

    // No change: one request (the manifest).
    let before = s3.requests();
    publish_ok(&s3, &t.root, &[]);
    assert_eq!(
        ops_since(&s3, before),
        [(
            "GetObject".to_owned(),
            format!("{PREFIX}/.mirror-publish.json")
        )]
    );

    // The next trip: leaf 1.2.0 arrives, abc is pruned, Hex names change.
    t.fx.publish("leaf", "1.2.0", &[]);
    t.fx.remove("abc", "0.1.0");
    t.fx.commit("Next trip");
    t.sync_crates();
    let abc = "crates/3/a/abc/abc-0.1.0.crate";
    std::fs::remove_file(t.root.join(abc)).unwrap();
    t.put("hex/names", b"names-v2");
    let before = s3.requests();
    publish_ok(&s3, &t.root, &[]);
    let ops = ops_since(&s3, before);
    let key = |k: &str| format!("{PREFIX}/{k}");
    let manifest = key(".mirror-publish.json");
    let changed: Vec<&(String, String)> = ops.iter().filter(|(_, k)| *k != manifest).collect();
    let expect = [
        ("PutObject", key("crates/le/af/leaf/leaf-1.2.0.crate")),
        ("PutObject", key("index/le/af/leaf")),
        ("PutObject", key("hex/names")),
        // object_store deletes in batches: the key is not logged.
        ("DeleteObjects", String::new()),
    ];
    let want: Vec<(String, String)> = expect
        .iter()
        .map(|(o, k)| ((*o).to_owned(), k.clone()))
        .collect();
    assert_eq!(
        changed.iter().map(|p| (*p).clone()).collect::<Vec<_>>(),
        want,
        "the second publish: {ops:?}"
    );
    // The manifest read, and written before the deletion and at the end.
    assert_eq!(ops.len(), want.len() + 3, "{ops:?}");
    assert_store_has(&s3, &t.published_files());
    assert_eq!(s3.get(&key_path("index/3/a/abc")).0, 404);
    // The pruned crate stays until a publish after the metadata's max-age.
    assert_eq!(s3.get(&key_path(abc)).0, 200, "{abc} deleted too soon");
    let before = s3.requests();
    publish_ok(&s3, &t.root, &[]);
    assert_eq!(s3.get(&key_path(abc)).0, 200, "{abc} deleted too soon");
    assert!(ops_since(&s3, before).len() <= 2);
    let before = s3.requests();
    publish_ok(&s3, &t.root, &["--retire-after", "0"]);
    let ops = ops_since(&s3, before);
    assert!(
        ops.contains(&("DeleteObjects".to_owned(), String::new())),
        "{ops:?}"
    );
    assert_eq!(s3.get(&key_path(abc)).0, 404);
}

#[test]
fn publish_to_a_refusing_or_unreachable_store_names_the_endpoint_and_key() {
    let Some(mut s3) = S3Server::start(BUCKET) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("hex")).unwrap();
    std::fs::write(tmp.path().join("hex/names"), b"x").unwrap();
    // Credentials from the shared credentials file, profile AWS_PROFILE.
    let creds = tmp.path().join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n\
             [site]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            crate::support::s3::ACCESS_KEY,
            crate::support::s3::SECRET_KEY
        ),
    )
    .unwrap();
    let mut cmd = s3.publish(tmp.path(), &to(), &[]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_PROFILE", "site");
    let out = crate::support::run_logged(&mut cmd, "mirror publish (credentials file)");
    assert!(out.status.success());
    assert_eq!(s3.get(&key_path("hex/names")), (200, b"x".to_vec()));
    // Refusing: wrong credentials.
    let mut cmd = s3.publish(tmp.path(), &to(), &["--retries", "1"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = crate::support::run_logged(&mut cmd, "mirror publish (wrong secret)");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&s3.endpoint), "{err}");
    assert!(err.contains(".mirror-publish.json"), "{err}");
    assert!(
        err.contains("403") || err.contains("SignatureDoesNotMatch"),
        "{err}"
    );
    // Unreachable.
    s3.stop_signed();
    let out = publish(&s3, tmp.path(), &["--retries", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&s3.endpoint), "{err}");
    assert!(
        err.contains(&format!("{BUCKET}/{PREFIX}/.mirror-publish.json")),
        "{err}"
    );
}

/// Check, as a reader would, that every line of every index file the store
/// serves has its crate file with that checksum. Returns the lines seen.
fn check_index(s3: &S3Server, names: &[String]) -> usize {
    let (status, config) = s3.get(&key_path("index/config.json"));
    if status == 404 {
        return 0;
    }
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert!(config["dl"].as_str().unwrap().contains("{lowerprefix}"));
    let mut lines = 0;
    for name in names {
        let (status, body) = s3.get(&key_path(&format!(
            "index/{}",
            crate::support::crates::index_path(name)
        )));
        if status == 404 {
            continue;
        }
        assert_eq!(status, 200, "index file of {name}");
        for line in String::from_utf8(body).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (n, vers) = (v["name"].as_str().unwrap(), v["vers"].as_str().unwrap());
            let rel = mirror::eco::crates::layout::crate_rel_path(n, vers);
            let (status, bytes) = s3.get(&key_path(&format!("crates/{rel}")));
            assert_eq!(
                status, 200,
                "the index lists {n} {vers}; its file is not in the store"
            );
            let sum = mirror::verify::Sha256Digest::of(&bytes).to_hex();
            assert_eq!(sum, v["cksum"].as_str().unwrap(), "{n} {vers}");
            lines += 1;
        }
    }
    lines
}

#[test]
fn publish_killed_at_seeded_moments_leaves_a_readable_mirror() {
    let Some(s3) = S3Server::start(BUCKET) else {
        return;
    };
    let up = Upstream::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut t = tree(&up, tmp.path());
    let mut names: Vec<String> = (0..30).map(|i| format!("crate{i:02}")).collect();
    for n in &names {
        t.fx.publish(n, "1.0.0", &[]);
    }
    t.fx.commit("Many crates");
    t.sync_crates();
    names.extend(["leaf", "app", "mixed_case", "abc", "plus"].map(String::from));

    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                check_index(&s3, &names);
                rounds += 1;
            }
            rounds
        });
        // The reader stops however the rest ends (a failed assertion too).
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let guard = StopOnDrop(&stop);
        // Seeded moments: a small LCG picks each.
        let mut seed: u64 = 0x5eed_2026;
        let mut interrupted = 0;
        for trip in 0..2 {
            for _ in 0..4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // The moment: after the store has routed this many more
                // requests (or when the publish ends by itself first).
                let target = s3.requests() + 1 + ((seed >> 33) % 60) as usize;
                let mut child = s3
                    .publish(&t.root, &to(), &["-j", "4", "-q"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                while s3.requests() < target && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                if child.try_wait().unwrap().is_none() {
                    interrupted += 1;
                }
                // kill -9: no chance to clean up.
                let _ = child.kill();
                let _ = child.wait();
            }
            publish_ok(&s3, &t.root, &["-j", "4"]);
            assert_store_has(&s3, &t.published_files());
            if trip == 0 {
                // Prune half the crates and add new versions, then go again.
                for (i, n) in names.iter().take(30).enumerate() {
                    if i % 2 == 0 {
                        t.fx.remove(n, "1.0.0");
                        let rel = mirror::eco::crates::layout::crate_rel_path(n, "1.0.0");
                        std::fs::remove_file(t.root.join("crates").join(rel)).unwrap();
                    } else {
                        t.fx.publish(n, "1.1.0", &[]);
                    }
                }
                t.fx.commit("Next trip");
                t.sync_crates();
                // sync_crates writes every published file back: prune again.
                for (i, n) in names.iter().take(30).enumerate() {
                    if i % 2 == 0 {
                        let rel = mirror::eco::crates::layout::crate_rel_path(n, "1.0.0");
                        let _ = std::fs::remove_file(t.root.join("crates").join(rel));
                    }
                }
            }
        }
        drop(guard);
        let rounds = reader.join().expect("a reader saw a broken mirror");
        assert!(rounds > 0);
        assert!(interrupted > 0, "no publish was interrupted");
        eprintln!("{interrupted} publishes interrupted; the reader checked {rounds} times");
    });
    assert!(check_index(&s3, &names) > 0);
}
