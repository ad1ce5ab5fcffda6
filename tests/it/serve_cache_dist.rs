//! `mirror serve --upstream-dist`: channel manifests pulled with their
//! `.asc` and checked against the keyring, their `.sha256` written from
//! their bytes, component files checked against the manifest's hash; the
//! real rustup installs toolchains through it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mirror::serve::cache::{DistUpstream, UpstreamOptions};
use mirror::serve::RunningServer;
use sha2::{Digest, Sha256};

use super::serve_cache::{files_under, get, pulling_server, stats, LONG};
use crate::rustup::require_client;
use crate::support::dist::{host_triple, publish, OLD_STABLE, STABLE};
use crate::support::keys::{sign_detached, test_keyring, TestKey};
use crate::support::upstream::{Fault, Upstream};
use crate::toolchain::run_rustup;

fn dist_server(root: &Path, up: &Upstream) -> RunningServer {
    dist_server_ttl(root, up, LONG)
}

/// A cache of `up`'s dist server whose manifests are kept `ttl`.
pub(crate) fn dist_server_ttl(root: &Path, up: &Upstream, ttl: Duration) -> RunningServer {
    pulling_server(
        root,
        UpstreamOptions {
            dist: Some(DistUpstream {
                url: up.url("dist"),
                keyring: Arc::new(test_keyring()),
            }),
            ttl,
            ..UpstreamOptions::default()
        },
    )
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const TARGET: &str = "x86_64-unknown-linux-gnu";

#[test]
fn dist_manifests_and_components_are_pulled_checked_and_kept() {
    let up = Upstream::start();
    let published = publish(&up, &STABLE, &[TARGET]);
    let tmp = tempfile::tempdir().unwrap();
    let server = dist_server(tmp.path(), &up);

    // rustup's first request: the .sha256, answered from the manifest.
    let r = get(&server, "/dist/channel-rust-stable.toml.sha256");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("{}  channel-rust-stable.toml\n", hex(&published.manifest))
    );
    let r = get(&server, "/dist/channel-rust-stable.toml");
    assert_eq!(r.body, published.manifest);
    assert_eq!(
        get(&server, "/dist/channel-rust-stable.toml.asc").status,
        200
    );
    assert_eq!(up.gets("dist/channel-rust-stable.toml"), 1);
    assert_eq!(up.gets("dist/channel-rust-stable.toml.asc"), 1);
    assert_eq!(up.gets("dist/channel-rust-stable.toml.sha256"), 0);

    let file = STABLE.file_path("rustc", TARGET, "xz");
    let r = get(&server, &format!("/{file}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = std::fs::read(tmp.path().join(&file)).unwrap();
    assert_eq!(r.body, stored);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(format!("{file}.sha256"))).unwrap(),
        format!("{}  {}\n", hex(&stored), file.rsplit('/').next().unwrap())
    );
    // Its hash came from the dated manifest.
    assert_eq!(up.gets(&STABLE.manifest_path()), 1);

    up.clear_requests();
    for p in [
        "/dist/channel-rust-stable.toml.sha256",
        "/dist/channel-rust-stable.toml",
        &format!("/{file}"),
    ] {
        assert_eq!(get(&server, p).status, 200, "{p}");
    }
    assert_eq!(up.requests(), vec![]);
    let missing = format!("/dist/{}/rustc-0.0.0-{TARGET}.tar.xz", STABLE.date);
    assert_eq!(get(&server, &missing).status, 404);
}

#[test]
fn dist_bad_signatures_dates_and_bytes_are_refused() {
    let up = Upstream::start();
    let published = publish(&up, &STABLE, &[TARGET]);
    let tmp = tempfile::tempdir().unwrap();
    let server = dist_server(tmp.path(), &up);

    // Signed by a key outside the keyring.
    up.put(
        "dist/channel-rust-stable.toml.asc",
        sign_detached(TestKey::Other, &published.manifest, true),
    );
    let r = get(&server, "/dist/channel-rust-stable.toml");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains(&up.url("dist/channel-rust-stable.toml")),
        "{}",
        r.text()
    );
    // A (well signed) manifest of another date in a dated directory.
    let old = publish(&up, &OLD_STABLE, &[TARGET]);
    up.put(&STABLE.manifest_path(), old.manifest.clone());
    up.put(
        &format!("{}.asc", STABLE.manifest_path()),
        sign_detached(TestKey::Signing, &old.manifest, true),
    );
    let r = get(&server, &format!("/{}", STABLE.manifest_path()));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains(OLD_STABLE.date), "{}", r.text());

    // A good manifest, a corrupt component.
    let fresh = tempfile::tempdir().unwrap();
    let up2 = Upstream::start();
    publish(&up2, &STABLE, &[TARGET]);
    let server2 = dist_server(fresh.path(), &up2);
    let file = STABLE.file_path("cargo", TARGET, "xz");
    up2.fault(&file, Fault::WrongBytes, 1);
    let r = get(&server2, &format!("/{file}"));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());
    assert!(!fresh.path().join(&file).exists());
    assert!(!fresh.path().join(format!("{file}.sha256")).exists());

    let stored: Vec<String> = files_under(tmp.path())
        .into_iter()
        .filter(|f| f.starts_with("dist/"))
        .collect();
    assert_eq!(stored, Vec::<String>::new());
    assert_eq!(stats(&server)["rejected"].as_u64().unwrap(), 2);
}

/// The real rustup installs `stable`, `1.98.0` and `stable-2026-10-15`
/// through `mirror serve --upstream-dist` over an empty tree; a second
/// install into a fresh RUSTUP_HOME makes no upstream request.
#[test]
fn real_rustup_installs_through_the_cache() {
    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let host = host_triple();
    let up = Upstream::start();
    for rel in [OLD_STABLE, STABLE] {
        publish(&up, &rel, &[host.as_str()]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = dist_server(tmp.path(), &up);
    let run = |home: &Path, args: &[&str]| run_rustup(&rustup, home, &server, args);
    let install = |home: &Path, toolchain: &str, version: &str| {
        let out = run(
            home,
            &[
                "toolchain",
                "install",
                toolchain,
                "--profile",
                "minimal",
                "--no-self-update",
            ],
        );
        assert!(out.status.success(), "rustup toolchain install {toolchain}");
        let out = run(home, &["run", toolchain, "rustc", "-V"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("rustc {version} (fixture)")
        );
    };
    let home = tempfile::tempdir().unwrap();
    for (toolchain, version) in [
        ("stable", "1.99.1"),
        ("1.98.0", "1.98.0"),
        ("stable-2026-10-15", "1.99.1"),
    ] {
        install(home.path(), toolchain, version);
    }
    assert!(tmp
        .path()
        .join(STABLE.file_path("rustc", &host, "xz"))
        .is_file());

    up.clear_requests();
    let home2 = tempfile::tempdir().unwrap();
    install(home2.path(), "stable", "1.99.1");
    assert_eq!(up.requests(), vec![], "the second install went upstream");
}
