//! `mirror serve --upstream-rustup`: `release-stable.toml` and
//! `rustup-init` binaries pulled on demand, binaries checked against
//! upstream's `.sha256` and stored with it.

use std::path::Path;

use mirror::serve::cache::UpstreamOptions;
use mirror::serve::RunningServer;
use sha2::{Digest, Sha256};

use super::serve_cache::{files_under, get, pulling_server, LONG};
use crate::support::rustup::{init_bytes, init_path, publish};
use crate::support::upstream::Upstream;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn rustup_server(root: &Path, up: &Upstream) -> RunningServer {
    pulling_server(
        root,
        UpstreamOptions {
            rustup: Some(up.url("rustup")),
            ttl: LONG,
            ..UpstreamOptions::default()
        },
    )
}

fn sum(bytes: &[u8]) -> String {
    format!("{:x}  rustup-init\n", Sha256::digest(bytes))
}

#[test]
fn rustup_files_are_pulled_checked_against_their_sha256_and_kept() {
    let up = Upstream::start();
    publish(&up, &["1.28.2", "1.27.0"], &[TARGET]);
    let newest = init_bytes("1.28.2", TARGET);
    up.put(&format!("rustup/dist/{TARGET}/rustup-init"), newest.clone());
    up.put(
        &format!("rustup/dist/{TARGET}/rustup-init.sha256"),
        sum(&newest),
    );
    let tmp = tempfile::tempdir().unwrap();
    let server = rustup_server(tmp.path(), &up);

    let r = get(&server, "/rustup/release-stable.toml");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("version = '1.28.2'"), "{}", r.text());

    let path = init_path("1.28.2", TARGET);
    let r = get(&server, &format!("/{path}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, newest);
    assert_eq!(std::fs::read(tmp.path().join(&path)).unwrap(), newest);
    let r = get(&server, &format!("/{path}.sha256"));
    assert_eq!(r.text(), sum(&newest));

    // The sum first: the pair comes together.
    let old = init_path("1.27.0", TARGET);
    let r = get(&server, &format!("/{old}.sha256"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.gets(&old), 1);

    let r = get(&server, &format!("/rustup/dist/{TARGET}/rustup-init"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, newest);

    up.clear_requests();
    for p in [
        "/rustup/release-stable.toml".to_string(),
        format!("/{path}"),
        format!("/{old}"),
        format!("/rustup/dist/{TARGET}/rustup-init.sha256"),
    ] {
        assert_eq!(get(&server, &p).status, 200, "{p}");
    }
    assert_eq!(up.requests(), vec![]);
}

#[test]
fn rustup_binaries_that_disagree_with_their_sha256_are_refused() {
    let up = Upstream::start();
    publish(&up, &["1.28.2"], &[TARGET]);
    let path = init_path("1.28.2", TARGET);
    up.put(&format!("{path}.sha256"), sum(b"other bytes"));
    up.put(
        &format!("rustup/dist/{TARGET}/rustup-init"),
        b"new".to_vec(),
    );
    up.put(
        &format!("rustup/dist/{TARGET}/rustup-init.sha256"),
        sum(b"old"),
    );
    up.put("rustup/release-stable.toml", "<html>oops</html>");
    let tmp = tempfile::tempdir().unwrap();
    let server = rustup_server(tmp.path(), &up);

    for p in [
        format!("/{path}"),
        format!("/rustup/dist/{TARGET}/rustup-init"),
        "/rustup/release-stable.toml".to_string(),
    ] {
        let r = get(&server, &p);
        assert_eq!(r.status, 502, "{p}: {}", r.text());
    }
    let r = get(&server, &format!("/{path}"));
    assert!(
        r.text().contains("checksum mismatch") && r.text().contains(&up.url(&path)),
        "{}",
        r.text()
    );
    let stored: Vec<String> = files_under(tmp.path())
        .into_iter()
        .filter(|f| f.starts_with("rustup/"))
        .collect();
    assert_eq!(stored, Vec::<String>::new());
}

/// The real `rustup self update` through `mirror serve --upstream-rustup`
/// over an empty tree; the new binary is then in the tree.
#[test]
fn real_rustup_self_updates_through_the_cache() {
    let Some(rustup) = crate::rustup::require_client("rustup") else {
        return;
    };
    let host = crate::support::dist::host_triple();
    let real = std::fs::read(&rustup).unwrap();
    let up = crate::rustup::newer_rustup_upstream(&real, &host);
    let tmp = tempfile::tempdir().unwrap();
    let server = rustup_server(tmp.path(), &up);
    crate::rustup::self_update(&rustup, &server.url("/rustup"), &real);
    let stored = tmp
        .path()
        .join(format!("rustup/archive/99.0.0/{host}/rustup-init"));
    assert_eq!(std::fs::read(stored).unwrap(), real);
}
