//! Metadata only moves forward, judged by what the formats carry: a
//! channel manifest's `date` (and its name against its channel, version
//! and date), rustup's `release-stable.toml` version, an Arch database's
//! `lastsync` and newest `%BUILDDATE%`, Hex `names`' per-package
//! `updated_at`. An older file after a newer one, by download, unpack
//! (archives made with `pack --start 0` or romt's, which no range check
//! catches) or the pull-through cache, leaves the newer one published.

use std::path::Path;
use std::time::Duration;

use mirror::serve::cache::UpstreamOptions;
use sha2::{Digest, Sha256};

use super::serve_cache::{get, pulling_server};
use super::serve_cache_dist::dist_server_ttl;
use crate::rustup::mirror;
use crate::support::archive::{file, tar_gz};
use crate::support::dist::{publish, OLD_STABLE, STABLE};
use crate::support::keys::{sign_detached, TestKey};
use crate::support::upstream::Upstream;
use crate::toolchain::{tc, MINIMAL};

const LINUX: &str = "x86_64-unknown-linux-gnu";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn err(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "mirror should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

// ---- toolchain ------------------------------------------------------------

/// A manifest under `rel` with its `.sha256` and `.asc`, as archive entries.
fn signed_manifest(rel: &str, manifest: &[u8]) -> Vec<crate::support::archive::Raw> {
    let name = rel.rsplit('/').next().unwrap();
    vec![
        file(rel, manifest),
        file(
            &format!("{rel}.sha256"),
            format!("{}  {name}\n", hex(manifest)).as_bytes(),
        ),
        file(
            &format!("{rel}.asc"),
            &sign_detached(TestKey::Signing, manifest, true),
        ),
    ]
}

/// A far side with the newer stable, unpacked from an archive.
fn toolchain_far_side(up: &Upstream) -> (tempfile::TempDir, tempfile::TempDir) {
    let near = tempfile::tempdir().unwrap();
    ok(&tc(near.path(), up, MINIMAL));
    let archive = near.path().join("tc.tar.gz");
    ok(&tc(
        near.path(),
        up,
        &["pack", "-s", "*", "--archive", archive.to_str().unwrap()],
    ));
    let far = tempfile::tempdir().unwrap();
    ok(&tc(
        far.path(),
        up,
        &["unpack", "verify", "--archive", archive.to_str().unwrap()],
    ));
    (near, far)
}

/// An older signed dateless `channel-rust-stable.toml` (alone, or with its
/// dated manifest: romt's archives carry both) is refused before anything
/// is published; the newer one stays and `verify` passes.
#[test]
fn toolchain_older_manifest_is_refused_on_unpack() {
    let up = Upstream::start();
    let old = publish(&up, &OLD_STABLE, &[LINUX]);
    let new = publish(&up, &STABLE, &[LINUX]);
    let (near, far) = toolchain_far_side(&up);
    assert_eq!(
        read(far.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );

    let lone = near.path().join("lone.tar.gz");
    std::fs::write(
        &lone,
        tar_gz(&signed_manifest(
            "dist/channel-rust-stable.toml",
            &old.manifest,
        )),
    )
    .unwrap();
    let e = err(&tc(
        far.path(),
        &up,
        &["unpack", "--archive", lone.to_str().unwrap()],
    ));
    assert!(
        e.contains(OLD_STABLE.date) && e.contains(STABLE.date) && e.contains("older"),
        "{e}"
    );
    assert_eq!(
        read(far.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );

    // With its dated manifest beside it: the same.
    let mut entries = signed_manifest(&OLD_STABLE.manifest_path(), &old.manifest);
    entries.extend(signed_manifest(
        "dist/channel-rust-stable.toml",
        &old.manifest,
    ));
    let romt = near.path().join("romt.tar.gz");
    std::fs::write(&romt, tar_gz(&entries)).unwrap();
    let e = err(&tc(
        far.path(),
        &up,
        &["unpack", "--archive", romt.to_str().unwrap()],
    ));
    assert!(
        e.contains(OLD_STABLE.date) && e.contains(STABLE.date),
        "{e}"
    );
    assert!(!far.path().join(OLD_STABLE.manifest_path()).exists());
    assert_eq!(
        read(far.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );
    ok(&tc(far.path(), &up, &["verify"]));

    // The older dated manifest alone (our own archive of the older
    // release) is welcome: stable stays the newer.
    let older = near.path().join("older.tar.gz");
    std::fs::write(
        &older,
        tar_gz(&signed_manifest(&OLD_STABLE.manifest_path(), &old.manifest)),
    )
    .unwrap();
    ok(&tc(
        far.path(),
        &up,
        &["unpack", "verify", "--archive", older.to_str().unwrap()],
    ));
    assert_eq!(
        read(far.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );
    assert_eq!(
        read(far.path(), "dist/channel-rust-1.98.0.toml"),
        old.manifest
    );
}

/// A manifest is what its name says: stable offered as beta, a dated copy
/// under another date, a version name holding another release: refused,
/// nothing published.
#[test]
fn toolchain_renamed_manifest_is_refused_on_unpack() {
    let up = Upstream::start();
    publish(&up, &OLD_STABLE, &[LINUX]);
    let new = publish(&up, &STABLE, &[LINUX]);
    let (near, far) = toolchain_far_side(&up);
    let cases = [
        (
            format!("dist/{}/channel-rust-beta.toml", STABLE.date),
            "beta",
        ),
        ("dist/channel-rust-beta.toml".to_string(), "beta"),
        (
            "dist/2026-10-20/channel-rust-stable.toml".to_string(),
            "2026-10-20",
        ),
        ("dist/channel-rust-1.98.0.toml".to_string(), "1.98.0"),
        ("dist/channel-rust-1.98.toml".to_string(), "1.98"),
    ];
    for (i, (rel, promised)) in cases.iter().enumerate() {
        let mut entries = signed_manifest(&STABLE.manifest_path(), &new.manifest);
        entries.extend(signed_manifest(rel, &new.manifest));
        let archive = near.path().join(format!("renamed{i}.tar.gz"));
        std::fs::write(&archive, tar_gz(&entries)).unwrap();
        let e = err(&tc(
            far.path(),
            &up,
            &["unpack", "--archive", archive.to_str().unwrap()],
        ));
        assert!(e.contains(rel.as_str()) && e.contains(promised), "{e}");
        assert!(!far.path().join(rel).exists(), "{rel} was published");
        ok(&tc(far.path(), &up, &["verify"]));
    }
    assert_eq!(
        read(far.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );

    // A dateless copy without the dated manifest it copies (whose files
    // clients would ask for): refused.
    let beta = publish(&up, &crate::support::dist::BETA, &[LINUX]);
    let archive = near.path().join("beta.tar.gz");
    std::fs::write(
        &archive,
        tar_gz(&signed_manifest(
            "dist/channel-rust-beta.toml",
            &beta.manifest,
        )),
    )
    .unwrap();
    let e = err(&tc(
        far.path(),
        &up,
        &["unpack", "--archive", archive.to_str().unwrap()],
    ));
    assert!(
        e.contains("dist/channel-rust-beta.toml")
            && e.contains("neither in the archive nor in the tree"),
        "{e}"
    );
    assert!(!far.path().join("dist/channel-rust-beta.toml").exists());
    ok(&tc(far.path(), &up, &["verify"]));
}

/// Online, an upstream whose stable is older than the published one is
/// not followed back: said once, nothing of it downloaded, the run goes on.
#[test]
fn toolchain_download_keeps_the_newer_stable() {
    let up = Upstream::start();
    publish(&up, &OLD_STABLE, &[LINUX]);
    let new = publish(&up, &STABLE, &[LINUX]);
    let root = tempfile::tempdir().unwrap();
    ok(&tc(root.path(), &up, MINIMAL));

    let behind = Upstream::start();
    publish(&behind, &OLD_STABLE, &[LINUX]);
    let e = ok(&tc(root.path(), &behind, MINIMAL));
    assert_eq!(e.matches("older than the published").count(), 1, "{e}");
    assert!(
        e.contains(OLD_STABLE.date) && e.contains(STABLE.date),
        "{e}"
    );
    assert_eq!(
        read(root.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );
    assert!(!root.path().join(OLD_STABLE.manifest_path()).exists());
    ok(&tc(root.path(), &up, &["verify"]));
}

/// The pull-through cache keeps its newer manifest when upstream turns to
/// an older signed one, and refuses a manifest its name does not describe.
#[test]
fn toolchain_cache_keeps_the_newer_manifest() {
    let up = Upstream::start();
    let old = publish(&up, &OLD_STABLE, &[LINUX]);
    let new = publish(&up, &STABLE, &[LINUX]);
    let root = tempfile::tempdir().unwrap();
    let server = dist_server_ttl(root.path(), &up, Duration::ZERO);
    let r = get(&server, "/dist/channel-rust-stable.toml");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, new.manifest);

    for (path, bytes) in [
        ("dist/channel-rust-stable.toml", &old.manifest),
        ("dist/channel-rust-beta.toml", &new.manifest),
    ] {
        up.put(path, bytes.clone());
        up.put(
            &format!("{path}.asc"),
            sign_detached(TestKey::Signing, bytes, true),
        );
        up.put(&format!("{path}.sha256"), format!("{}  x\n", hex(bytes)));
    }
    let r = get(&server, "/dist/channel-rust-stable.toml");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, new.manifest, "the older manifest was served");
    assert_eq!(
        read(root.path(), "dist/channel-rust-stable.toml"),
        new.manifest
    );
    let r = get(&server, "/dist/channel-rust-stable.toml.sha256");
    assert!(String::from_utf8_lossy(&r.body).starts_with(&hex(&new.manifest)));

    let r = get(&server, "/dist/channel-rust-beta.toml");
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("beta") && text.contains("stable"), "{text}");
    assert!(!root.path().join("dist/channel-rust-beta.toml").exists());
}

// ---- rustup ---------------------------------------------------------------

/// Online, an upstream `release-stable.toml` older than the published one
/// is said once and not followed; the pull-through cache keeps its newer
/// copy.
#[test]
fn rustup_stable_never_goes_back() {
    use crate::support::rustup::publish as publish_rustup;
    let up = Upstream::start();
    publish_rustup(&up, &["1.28.2"], &[LINUX]);
    let root = tempfile::tempdir().unwrap();
    let rustup = |up: &Upstream| {
        let url = up.url("rustup");
        mirror(
            root.path(),
            &[
                "rustup", "download", "-s", "stable", "-t", "linux", "--url", &url,
            ],
        )
    };
    ok(&rustup(&up));
    let behind = Upstream::start();
    publish_rustup(&behind, &["1.27.1"], &[LINUX]);
    let e = ok(&rustup(&behind));
    assert_eq!(e.matches("older than the published").count(), 1, "{e}");
    assert!(e.contains("1.27.1") && e.contains("1.28.2"), "{e}");
    assert!(!root.path().join("rustup/archive/1.27.1").exists());
    assert_eq!(
        std::fs::read_to_string(root.path().join("rustup/release-stable.toml")).unwrap(),
        "schema-version = '1'\nversion = '1.28.2'\n"
    );
    ok(&mirror(root.path(), &["rustup", "verify"]));

    let cached = tempfile::tempdir().unwrap();
    let server = pulling_server(
        cached.path(),
        UpstreamOptions {
            rustup: Some(up.url("rustup")),
            ttl: Duration::ZERO,
            ..UpstreamOptions::default()
        },
    );
    let r = get(&server, "/rustup/release-stable.toml");
    assert!(String::from_utf8_lossy(&r.body).contains("1.28.2"));
    up.put(
        "rustup/release-stable.toml",
        "schema-version = '1'\nversion = '1.27.1'\n",
    );
    let r = get(&server, "/rustup/release-stable.toml");
    assert_eq!(r.status, 200);
    assert!(
        String::from_utf8_lossy(&r.body).contains("1.28.2"),
        "the older release-stable.toml was served"
    );
    assert!(
        std::fs::read_to_string(cached.path().join("rustup/release-stable.toml"))
            .unwrap()
            .contains("1.28.2")
    );
}

// ---- Arch -----------------------------------------------------------------

/// `mirror arch OPS --url URL --repo core --keyring test-key`.
fn arch(root: &Path, ops: &[&str], url: Option<&Upstream>) -> std::process::Output {
    let key = TestKey::Signing.public_path().display().to_string();
    let mut args: Vec<String> = vec!["arch".into()];
    args.extend(ops.iter().map(|s| s.to_string()));
    if let Some(up) = url {
        args.extend(["--url".into(), up.url("m/$repo/os/$arch")]);
    }
    args.extend(["--repo", "core", "--keyring", &key, "--retries", "1"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    mirror(root, &args)
}

const CORE: &str = "archlinux/core/os/x86_64";

/// An older and a newer Arch repository: `world` is rebuilt later in the
/// newer one.
fn arch_upstreams() -> (Upstream, Upstream, Vec<u8>, crate::support::arch::Repo) {
    use crate::support::arch::{publish_with, Pkg};
    // What pacman_round asks for: world (needing hello) and epochal.
    let mut pkgs = crate::arch::two_packages();
    pkgs.push(Pkg::new("epochal", "2:0.5-1"));
    let old = Upstream::start();
    let old_db = publish_with(&old, "m", "core", &pkgs, TestKey::Signing, |_| {}).db;
    let mut newer = pkgs.clone();
    newer[1].version = "2.0-2".into();
    let new = Upstream::start();
    let repo = publish_with(&new, "m", "core", &newer, TestKey::Signing, |d| {
        if d.dir.starts_with("world-") {
            d.fields
                .insert("BUILDDATE".into(), vec!["1700100000".into()]);
        }
    });
    (old, new, old_db, repo)
}

/// An older archive (all of an older tree, `pack --start 0`) after a newer
/// one is refused before anything is published, naming both build dates;
/// one with an older `lastsync` too. Online, a mirror behind the published
/// database is said once and not followed. `verify` passes throughout.
#[test]
fn arch_older_database_never_replaces_a_newer() {
    let (old_up, new_up, _old_db, new_repo) = arch_upstreams();
    let new_db = new_repo.db.clone();
    let near_old = tempfile::tempdir().unwrap();
    ok(&arch(near_old.path(), &["download"], Some(&old_up)));
    let near_new = tempfile::tempdir().unwrap();
    ok(&arch(near_new.path(), &["download"], Some(&new_up)));
    let pack = |root: &Path, name: &str| -> String {
        let a = root.join(name).display().to_string();
        ok(&arch(
            root,
            &["pack", "--start", "0", "--archive", &a],
            None,
        ));
        a
    };
    let older = pack(near_old.path(), "old.tar.gz");
    let newer = pack(near_new.path(), "new.tar.gz");

    let far = tempfile::tempdir().unwrap();
    ok(&arch(
        far.path(),
        &["unpack", "verify", "--archive", &newer],
        None,
    ));
    assert_eq!(read(far.path(), &format!("{CORE}/core.db")), new_db);
    let e = err(&arch(far.path(), &["unpack", "--archive", &older], None));
    assert!(
        e.contains("core.db") && e.contains("2023-11-14T22:13:20Z") && e.contains("2023-11-16"),
        "{e}"
    );
    assert_eq!(read(far.path(), &format!("{CORE}/core.db")), new_db);
    assert_eq!(read(far.path(), &format!("{CORE}/core.db.tar.gz")), new_db);
    ok(&arch(far.path(), &["verify"], None));

    // The newer databases with an older lastsync: an older archive too.
    std::fs::write(near_new.path().join("archlinux/lastsync"), "1600000000\n").unwrap();
    let stale = pack(near_new.path(), "stale.tar.gz");
    let e = err(&arch(far.path(), &["unpack", "--archive", &stale], None));
    assert!(e.contains("lastsync") && e.contains("2020-09-13"), "{e}");
    assert_ne!(read(far.path(), "archlinux/lastsync"), b"1600000000\n");
    ok(&arch(far.path(), &["verify"], None));
    // pacman syncs the newer database and downloads its packages.
    if let Some(clients) = crate::arch::pacman_clients() {
        let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far.path())).unwrap();
        crate::arch::pacman_round(&clients, &server.url(""), &new_repo);
    }

    // Online: the older mirror is not followed back.
    let e = ok(&arch(near_new.path(), &["download"], Some(&old_up)));
    assert_eq!(
        e.matches("the published database is kept").count(),
        1,
        "{e}"
    );
    assert_eq!(read(near_new.path(), &format!("{CORE}/core.db")), new_db);
    ok(&arch(near_new.path(), &["verify"], None));
}

/// The pull-through cache keeps its newer database when a mirror turns to
/// an older one.
#[test]
fn arch_cache_keeps_the_newer_database() {
    let (_old_up, new_up, old_db, new_repo) = arch_upstreams();
    let new_db = new_repo.db;
    let root = tempfile::tempdir().unwrap();
    let server = pulling_server(
        root.path(),
        UpstreamOptions {
            arch: vec![new_up.url("m/$repo/os/$arch")],
            ttl: Duration::ZERO,
            ..UpstreamOptions::default()
        },
    );
    let path = format!("/{CORE}/core.db");
    assert_eq!(get(&server, &path).body, new_db);
    new_up.put("m/core/os/x86_64/core.db", old_db);
    let r = get(&server, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, new_db, "the older database was served");
    assert_eq!(read(root.path(), &format!("{CORE}/core.db")), new_db);
}

// ---- Hex ------------------------------------------------------------------

/// `mirror hex OPS --url <up>/hex --public-key <test key>`.
fn hexm(root: &Path, up: &Upstream, ops: &[&str]) -> std::process::Output {
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let mut args = vec!["hex"];
    args.extend_from_slice(ops);
    args.extend_from_slice(&["--url", &url, "--public-key", &key]);
    mirror(root, &args)
}

/// The sample repository, and a newer one where `beta` gained a release.
fn hex_upstreams() -> (
    Upstream,
    Upstream,
    crate::support::hex::HexRepo,
    crate::support::hex::HexRepo,
) {
    use crate::support::hex::{rel, HexRepo};
    let old = HexRepo::sample();
    let mut new = old.clone();
    new.add_release("beta", rel("2.2.0", &[]));
    let (old_up, new_up) = (Upstream::start(), Upstream::start());
    old.publish(&old_up);
    new.publish(&new_up);
    (old_up, new_up, old, new)
}

fn resource(repo: &crate::support::hex::HexRepo, path: &str) -> Vec<u8> {
    repo.resources()
        .into_iter()
        .find(|(p, _)| p == path)
        .unwrap()
        .1
}

/// An older archive (all of an older tree) after a newer one is refused
/// before anything is published, naming the package and both dates;
/// online, an upstream behind the published `names` is said once and the
/// published names, versions and package files are kept.
#[test]
fn hex_older_names_never_replace_newer() {
    let (old_up, new_up, _old, new) = hex_upstreams();
    let near_old = tempfile::tempdir().unwrap();
    ok(&hexm(near_old.path(), &old_up, &["download"]));
    let near_new = tempfile::tempdir().unwrap();
    ok(&hexm(near_new.path(), &new_up, &["download"]));
    let pack = |root: &Path, up: &Upstream, name: &str| -> String {
        let a = root.join(name).display().to_string();
        ok(&hexm(root, up, &["pack", "--start", "0", "--archive", &a]));
        a
    };
    let older = pack(near_old.path(), &old_up, "old.tar.gz");
    let newer = pack(near_new.path(), &new_up, "new.tar.gz");
    let kept = |root: &Path| {
        for f in ["names", "versions", "packages/beta"] {
            assert_eq!(read(root, &format!("hex/{f}")), resource(&new, f), "{f}");
        }
    };

    let far = tempfile::tempdir().unwrap();
    ok(&hexm(
        far.path(),
        &new_up,
        &["unpack", "verify", "--archive", &newer],
    ));
    kept(far.path());
    let e = err(&hexm(far.path(), &new_up, &["unpack", "--archive", &older]));
    assert!(
        e.contains("beta")
            && e.contains("2023-11-14T22:15:20Z")
            && e.contains("2023-11-14T22:17:20Z"),
        "{e}"
    );
    kept(far.path());
    ok(&hexm(far.path(), &new_up, &["verify"]));
    // rebar3 finds the release only the newer metadata lists.
    if let Some(bin) = crate::rustup::require_client("rebar3") {
        use crate::hex::{rebar3, rebar3_home, rebar_project};
        let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far.path())).unwrap();
        let home = tempfile::tempdir().unwrap();
        rebar3_home(home.path());
        let project = home.path().join("proj");
        rebar_project(&project, "beta", "~> 2.2");
        let out = rebar3(
            &bin,
            home.path(),
            &project,
            &server.url("/hex"),
            &["compile"],
        );
        assert!(out.status.success(), "rebar3 compile failed");
    }

    let e = ok(&hexm(near_new.path(), &old_up, &["download"]));
    assert_eq!(
        e.matches("older than the published names").count(),
        1,
        "{e}"
    );
    kept(near_new.path());
    ok(&hexm(near_new.path(), &new_up, &["verify"]));
}

/// The pull-through cache keeps its newer `names`, `versions` and
/// `packages/<name>` when upstream turns to older signed ones.
#[test]
fn hex_cache_keeps_the_newer_metadata() {
    use mirror::eco::hex::registry::PublicKey;
    use mirror::serve::cache::HexUpstream;
    let (_old_up, new_up, old, new) = hex_upstreams();
    let root = tempfile::tempdir().unwrap();
    let server = pulling_server(
        root.path(),
        UpstreamOptions {
            hex: Some(HexUpstream {
                url: new_up.url("hex"),
                key: PublicKey::from_pem(
                    &crate::support::hex::test_public_key_pem(),
                    "the test key",
                )
                .unwrap(),
                repo: "hexpm".into(),
            }),
            ttl: Duration::ZERO,
            ..UpstreamOptions::default()
        },
    );
    let files = ["names", "versions", "packages/beta"];
    for f in files {
        assert_eq!(
            get(&server, &format!("/hex/{f}")).body,
            resource(&new, f),
            "{f}"
        );
    }
    old.publish(&new_up);
    for f in files {
        let r = get(&server, &format!("/hex/{f}"));
        assert_eq!(r.status, 200, "{f}");
        assert_eq!(r.body, resource(&new, f), "the older {f} was served");
        assert_eq!(
            read(root.path(), &format!("hex/{f}")),
            resource(&new, f),
            "{f}"
        );
    }
}
