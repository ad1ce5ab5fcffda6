//! `mirror serve --upstream-arch`: databases and packages pulled from Arch
//! mirrors on demand, packages checked against `%SHA256SUM%`, the next
//! mirror tried when one sends bad bytes, signatures embedded in the
//! database written without a request.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use mirror::serve::cache::UpstreamOptions;
use mirror::serve::RunningServer;

use super::serve_cache::{files_under, get, pulling_server, stats, LONG};
use crate::support::arch::{publish, publish_with, Pkg, Repo, ARCH};
use crate::support::keys::{sign_detached, TestKey};
use crate::support::upstream::{Fault, Upstream};

fn arch_server(root: &Path, mirrors: &[String], ttl: Duration) -> RunningServer {
    pulling_server(
        root,
        UpstreamOptions {
            arch: mirrors
                .iter()
                .map(|m| format!("{m}/$repo/os/$arch"))
                .collect(),
            ttl,
            ..UpstreamOptions::default()
        },
    )
}

fn pkgs() -> Vec<Pkg> {
    vec![Pkg::new("alpha", "1.0-1"), Pkg::new("beta", "2.0-1")]
}

fn path(file: &str) -> String {
    format!("/archlinux/core/os/{ARCH}/{file}")
}

#[test]
fn arch_miss_then_hit_with_signatures_from_mirror_and_database() {
    let up = Upstream::start();
    // beta's signature is embedded in the database.
    let beta = Pkg::new("beta", "2.0-1");
    let beta_sig = sign_detached(TestKey::Signing, &beta.bytes(), false);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&beta_sig);
    let repo: Repo = publish_with(&up, "m", "core", &pkgs(), TestKey::Signing, |d| {
        if d.dir.starts_with("beta-") {
            d.fields.insert("PGPSIG".into(), vec![b64.clone()]);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let server = arch_server(tmp.path(), &[up.url("m")], LONG);
    let dir = format!("m/core/os/{ARCH}");

    let db = get(&server, &path("core.db"));
    assert_eq!(db.status, 200, "{}", db.text());
    assert_eq!(db.body, repo.db);
    assert_eq!(up.gets(&format!("{dir}/core.db")), 1);

    let alpha = Pkg::new("alpha", "1.0-1").filename();
    let r = get(&server, &path(&alpha));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, repo.files[&alpha]);
    let stored = tmp.path().join(format!("archlinux/core/os/{ARCH}/{alpha}"));
    assert_eq!(std::fs::read(&stored).unwrap(), repo.files[&alpha]);
    // Not embedded: from the mirror, as it is.
    let r = get(&server, &path(&format!("{alpha}.sig")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.gets(&format!("{dir}/{alpha}.sig")), 1);

    // Embedded: written with the package, no request for it.
    let r = get(&server, &path(&beta.filename()));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&server, &path(&format!("{}.sig", beta.filename())));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, beta_sig);
    assert_eq!(up.gets(&format!("{dir}/{}.sig", beta.filename())), 0);

    // Hits never go upstream; unknown packages are 404.
    up.clear_requests();
    for p in ["core.db".to_string(), alpha.clone(), format!("{alpha}.sig")] {
        assert_eq!(get(&server, &path(&p)).status, 200, "{p}");
    }
    assert_eq!(up.requests(), vec![]);
    let r = get(&server, &path("gamma-1-1-x86_64.pkg.tar.zst"));
    assert_eq!(r.status, 404, "{}", r.text());
    // The database was checked moments ago: not asked again for it.
    assert_eq!(up.gets(&format!("{dir}/core.db")), 0);
    assert_eq!(up.gets(&format!("{dir}/gamma-1-1-x86_64.pkg.tar.zst")), 0);
}

#[test]
fn arch_bad_bytes_from_one_mirror_come_from_the_next_or_are_refused() {
    let up = Upstream::start();
    let repo = publish(&up, "m1", "core", &pkgs());
    publish(&up, "m2", "core", &pkgs());
    let tmp = tempfile::tempdir().unwrap();
    let server = arch_server(tmp.path(), &[up.url("m1"), up.url("m2")], LONG);
    let alpha = Pkg::new("alpha", "1.0-1").filename();
    let beta = Pkg::new("beta", "2.0-1").filename();

    up.fault(&format!("m1/core/os/{ARCH}/{alpha}"), Fault::WrongBytes, 1);
    let r = get(&server, &path(&alpha));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, repo.files[&alpha]);
    assert_eq!(up.gets(&format!("m2/core/os/{ARCH}/{alpha}")), 1);

    // Bad everywhere: 502, nothing stored.
    for m in ["m1", "m2"] {
        up.fault(&format!("{m}/core/os/{ARCH}/{beta}"), Fault::WrongBytes, 1);
    }
    let r = get(&server, &path(&beta));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("checksum mismatch") && r.text().contains(&up.url("m2")),
        "{}",
        r.text()
    );
    assert!(
        !files_under(tmp.path()).iter().any(|f| f.contains("beta")),
        "{:?}",
        files_under(tmp.path())
    );
    assert_eq!(stats(&server)["rejected"].as_u64().unwrap(), 3);
}

#[test]
fn arch_database_is_revalidated_and_survives_mirrors_going_down() {
    let up = Upstream::start();
    let repo = publish(&up, "m", "core", &pkgs());
    let tmp = tempfile::tempdir().unwrap();
    let server = arch_server(tmp.path(), &[up.url("m")], Duration::ZERO);
    let db_path = format!("m/core/os/{ARCH}/core.db");

    assert_eq!(get(&server, &path("core.db")).body, repo.db);
    assert_eq!(get(&server, &path("core.db")).body, repo.db);
    assert_eq!(stats(&server)["revalidated"].as_u64().unwrap(), 1);

    up.fault(&db_path, Fault::Status(502), 2);
    let r = get(&server, &path("core.db"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, repo.db);
    assert_eq!(stats(&server)["stale"].as_u64().unwrap(), 1);

    // A new database upstream replaces ours.
    let newer = publish(&up, "m", "core", &[Pkg::new("alpha", "1.1-1")]);
    let r = get(&server, &path("core.db"));
    assert_eq!(r.body, newer.db);
    let r = get(&server, &path(&Pkg::new("alpha", "1.1-1").filename()));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The real pacman syncs and downloads through `mirror serve
/// --upstream-arch` over an empty tree; a second pacman (fresh root and
/// cache) is served without any upstream request.
#[test]
fn real_pacman_through_the_cache() {
    let Some(clients) = super::arch::pacman_clients() else {
        return;
    };
    let up = Upstream::start();
    let mut pkgs = super::arch::two_packages();
    pkgs.push(Pkg::new("epochal", "2:0.5-1"));
    let repo = publish(&up, "m", "core", &pkgs);
    let tmp = tempfile::tempdir().unwrap();
    let server = arch_server(tmp.path(), &[up.url("m")], LONG);
    super::arch::pacman_round(&clients, &server.url(""), &repo);
    for (file, bytes) in &repo.files {
        let stored = tmp.path().join(format!("archlinux/core/os/{ARCH}/{file}"));
        assert_eq!(&std::fs::read(&stored).unwrap(), bytes, "{file}");
    }
    up.clear_requests();
    super::arch::pacman_round(&clients, &server.url(""), &repo);
    assert_eq!(up.requests(), vec![], "the second pacman went upstream");
}

#[test]
fn arch_database_signatures_come_and_go_with_their_database() {
    let up = Upstream::start();
    let repo = publish(&up, "m", "core", &pkgs());
    let dir = format!("m/core/os/{ARCH}");
    let sig = sign_detached(TestKey::Signing, &repo.db, false);
    up.put(&format!("{dir}/core.db.sig"), sig.clone());
    let tmp = tempfile::tempdir().unwrap();
    let server = arch_server(tmp.path(), &[up.url("m")], Duration::ZERO);

    let r = get(&server, &path("core.db.sig"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, sig);
    assert_eq!(get(&server, &path("core.db")).body, repo.db);
    // An unchanged database (304) keeps its signature without asking.
    assert_eq!(up.gets(&format!("{dir}/core.db.sig")), 1);

    // A new, unsigned database: the old signature goes with the old one.
    let newer = publish(&up, "m", "core", &[Pkg::new("alpha", "1.1-1")]);
    up.remove(&format!("{dir}/core.db.sig"));
    assert_eq!(get(&server, &path("core.db")).body, newer.db);
    assert_eq!(get(&server, &path("core.db.sig")).status, 404);
}
