//! `mirror serve --upstream-hex`: signed resources pulled and checked
//! (key, repository name, package name), tarballs against the outer
//! checksum; bad signatures and bytes refused with 502 and never stored.

use std::path::Path;

use mirror::eco::hex::registry::PublicKey;
use mirror::serve::cache::{HexUpstream, UpstreamOptions};
use mirror::serve::RunningServer;

use super::serve_cache::{files_under, get, pulling_server, stats, LONG};
use crate::support::hex::{rel, tarball, test_public_key_pem, HexRepo};
use crate::support::upstream::{Fault, Upstream};

fn hex_server(root: &Path, up: &Upstream) -> RunningServer {
    pulling_server(root, hex_options(up))
}

#[test]
fn hex_miss_then_hit_checks_signatures_and_outer_checksums() {
    let up = Upstream::start();
    let repo = HexRepo::sample();
    repo.publish(&up);
    let tmp = tempfile::tempdir().unwrap();
    let server = hex_server(tmp.path(), &up);

    let r = get(&server, "/hex/packages/beta");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, repo.package_resource("beta"));
    let (tar, _) = tarball("beta", &rel("2.1.0", &[]));
    let r = get(&server, "/hex/tarballs/beta-2.1.0.tar");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, tar);
    assert!(r.header("etag").is_some(), "rebar3 needs an ETag");
    assert_eq!(
        std::fs::read(tmp.path().join("hex/tarballs/beta-2.1.0.tar")).unwrap(),
        tar
    );
    // A tarball whose package was never asked for: the package first.
    let r = get(&server, "/hex/tarballs/gamma-0.1.0.tar");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.gets("hex/packages/gamma"), 1);
    for file in ["names", "versions"] {
        let r = get(&server, &format!("/hex/{file}"));
        assert_eq!(r.status, 200, "{file}: {}", r.text());
    }
    let r = get(&server, "/hex/public_key");
    assert_eq!(r.text(), test_public_key_pem());
    assert_eq!(up.gets("hex/public_key"), 0);

    up.clear_requests();
    for p in [
        "/hex/packages/beta",
        "/hex/tarballs/beta-2.1.0.tar",
        "/hex/names",
        "/hex/public_key",
    ] {
        assert_eq!(get(&server, p).status, 200, "{p}");
    }
    assert_eq!(up.requests(), vec![]);
    assert_eq!(get(&server, "/hex/tarballs/beta-9.0.0.tar").status, 404);
    assert_eq!(get(&server, "/hex/packages/nonexistent").status, 404);
}

#[test]
fn hex_bad_signatures_repositories_and_tarballs_are_refused() {
    let up = Upstream::start();
    let repo = HexRepo::sample();
    repo.publish(&up);
    let tmp = tempfile::tempdir().unwrap();
    let server = hex_server(tmp.path(), &up);

    // Signed with another key.
    let mut other_key = HexRepo::sample();
    other_key.key = "hex-test-other.key.pem".into();
    up.put("hex/packages/alpha", other_key.package_resource("alpha"));
    let r = get(&server, "/hex/packages/alpha");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains(&up.url("hex/packages/alpha")),
        "{}",
        r.text()
    );

    // Right key, another repository's payload.
    let mut other_repo = HexRepo::sample();
    other_repo.repo_name = "someone-else".into();
    up.put("hex/packages/beta", other_repo.package_resource("beta"));
    let r = get(&server, "/hex/packages/beta");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("someone-else") && r.text().contains("--upstream-hex-repo-name"),
        "{}",
        r.text()
    );

    // A package file served under another package's name.
    up.put("hex/packages/gamma", repo.package_resource("beta"));
    let r = get(&server, "/hex/packages/gamma");
    assert_eq!(r.status, 502, "{}", r.text());
    // And a tarball of gamma cannot be had without its package.
    assert_eq!(get(&server, "/hex/tarballs/gamma-0.1.0.tar").status, 502);

    // Good package, corrupt tarball.
    up.put("hex/packages/beta", repo.package_resource("beta"));
    // (A second server: the first still trusts its failed check of beta
    // until the TTL passes.)
    let refresh = hex_server(tmp.path(), &up);
    up.fault("hex/tarballs/beta-2.0.0.tar", Fault::WrongBytes, 1);
    let r = get(&refresh, "/hex/tarballs/beta-2.0.0.tar");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());

    let stored = files_under(&tmp.path().join("hex"));
    assert_eq!(stored, vec!["packages/beta".to_string()], "{stored:?}");
    // alpha, beta, gamma, and gamma again for its tarball (a refused
    // answer is not remembered when there is no copy to fall back on).
    assert_eq!(stats(&server)["rejected"].as_u64().unwrap(), 4);
}

fn hex_options(up: &Upstream) -> UpstreamOptions {
    UpstreamOptions {
        hex: Some(HexUpstream {
            url: up.url("hex"),
            key: PublicKey::from_pem(&test_public_key_pem(), "the test key").unwrap(),
            repo: "hexpm".into(),
        }),
        ttl: LONG,
        ..UpstreamOptions::default()
    }
}

/// The real rebar3 (trusting the test key) fetches and compiles `alpha`
/// and its dependency `beta` through `mirror serve --upstream-hex` over an
/// empty tree; a second rebar3 with a fresh HOME makes no upstream request.
#[test]
fn real_rebar3_through_the_cache() {
    use super::hex::{rebar3, rebar3_home, rebar_project};
    let Some(bin) = crate::rustup::require_client("rebar3") else {
        return;
    };
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    let tmp = tempfile::tempdir().unwrap();
    let server = hex_server(tmp.path(), &up);
    let cdn = server.url("/hex");
    let compile = |home: &Path| {
        rebar3_home(home);
        let project = home.join("proj");
        rebar_project(&project, "alpha", "~> 1.0");
        let out = rebar3(&bin, home, &project, &cdn, &["compile"]);
        assert!(out.status.success(), "rebar3 compile failed");
        for dep in ["alpha", "beta"] {
            let src = project.join("_build/default/lib").join(dep).join("src");
            assert!(src.is_dir(), "{dep} not fetched");
        }
    };
    let home = tempfile::tempdir().unwrap();
    compile(home.path());
    for tarball in ["alpha-1.1.0.tar", "beta-2.1.0.tar"] {
        assert!(tmp.path().join("hex/tarballs").join(tarball).is_file());
    }
    up.clear_requests();
    let home2 = tempfile::tempdir().unwrap();
    compile(home2.path());
    assert_eq!(up.requests(), vec![], "the second rebar3 went upstream");
}
