//! `mirror rustup` end to end through the binary: download from the fake
//! upstream, pack, unpack into a second tree, serve it.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::rustup::{init_bytes, init_path, publish};
use crate::support::upstream::{Fault, Upstream};

const LINUX: &str = "x86_64-unknown-linux-gnu";
const WINDOWS: &str = "x86_64-pc-windows-msvc";

/// Run the `mirror` binary with `--root root`; no retry delays.
pub fn mirror(root: &Path, args: &[&str]) -> Output {
    crate::support::run_logged(
        Command::new(env!("CARGO_BIN_EXE_mirror"))
            .arg("--root")
            .arg(root)
            .args(args)
            .env("MIRROR_RETRY_DELAY_MS", "0")
            .env_remove("MIRROR_JOBS"),
        &format!("mirror {args:?}"),
    )
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn fake_upstream() -> Upstream {
    let up = Upstream::start();
    publish(&up, &["1.28.2"], &[LINUX, WINDOWS]);
    publish(&up, &["1.27.1"], &[LINUX, WINDOWS]);
    // release-stable.toml names the first version of the last call; fix it.
    up.put(
        "rustup/release-stable.toml",
        "schema-version = '1'\nversion = '1.28.2'\n",
    );
    up
}

#[test]
fn download_writes_romt_layout_and_publishes_stable() {
    let up = fake_upstream();
    let root = tempfile::tempdir().unwrap();
    let url = up.url("rustup");
    ok(&mirror(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "stable",
            "-t",
            "linux,windows",
            "--url",
            &url,
        ],
    ));
    let r = root.path().join("rustup");
    for (t, name) in [(LINUX, "rustup-init"), (WINDOWS, "rustup-init.exe")] {
        let bin = std::fs::read(r.join(format!("archive/1.28.2/{t}/{name}"))).unwrap();
        assert_eq!(bin, init_bytes("1.28.2", t));
        let sum =
            std::fs::read_to_string(r.join(format!("archive/1.28.2/{t}/{name}.sha256"))).unwrap();
        assert!(sum.ends_with(&format!("  {name}\n")), "{sum:?}");
        assert_eq!(
            std::fs::read(r.join(format!("dist/{t}/{name}"))).unwrap(),
            bin
        );
    }
    assert_eq!(
        std::fs::read_to_string(r.join("release-stable.toml")).unwrap(),
        "schema-version = '1'\nversion = '1.28.2'\n"
    );

    // An older version does not move stable back.
    ok(&mirror(
        root.path(),
        &[
            "rustup", "download", "-s", "1.27.1", "-t", "linux", "--url", &url,
        ],
    ));
    assert!(std::fs::read_to_string(r.join("release-stable.toml"))
        .unwrap()
        .contains("1.28.2"));
    let listed = ok(&mirror(root.path(), &["rustup", "list"]));
    assert_eq!(listed, "1.28.2\n1.27.1\n");
    let latest = ok(&mirror(root.path(), &["rustup", "list", "-s", "latest"]));
    assert_eq!(latest, "1.28.2\n");
}

#[test]
fn a_second_download_requests_only_release_stable() {
    let up = fake_upstream();
    let root = tempfile::tempdir().unwrap();
    let url = up.url("rustup");
    let args = [
        "rustup", "download", "-s", "stable", "-t", "linux", "--url", &url,
    ];
    ok(&mirror(root.path(), &args));
    up.clear_requests();
    ok(&mirror(root.path(), &args));
    let paths: Vec<String> = up.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/rustup/release-stable.toml"]);
    // With an explicit version there is nothing to ask at all.
    up.clear_requests();
    ok(&mirror(
        root.path(),
        &[
            "rustup", "download", "-s", "1.28.2", "-t", "linux", "--url", &url,
        ],
    ));
    assert!(up.requests().is_empty(), "{:?}", up.requests());
}

#[test]
fn a_corrupt_download_fails_and_publishes_nothing() {
    let up = fake_upstream();
    up.fault(&init_path("1.28.2", LINUX), Fault::WrongBytes, 10);
    let root = tempfile::tempdir().unwrap();
    let out = mirror(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--url",
            &up.url("rustup"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&up.url(&init_path("1.28.2", LINUX))), "{err}");
    assert!(
        err.contains("expected sha256") && err.contains("actual sha256"),
        "{err}"
    );
    let r = root.path().join("rustup");
    assert!(!r
        .join(format!("archive/1.28.2/{LINUX}/rustup-init"))
        .exists());
    assert!(!r.join("release-stable.toml").exists());
    assert!(!r.join("dist").exists());
}

#[test]
fn transient_faults_are_survived() {
    let up = fake_upstream();
    let path = init_path("1.28.2", LINUX);
    up.fault(&path, Fault::Status(503), 2);
    up.fault(&path, Fault::CutBody { after: 1000 }, 1);
    up.fault("rustup/release-stable.toml", Fault::Reset, 1);
    let root = tempfile::tempdir().unwrap();
    ok(&mirror(
        root.path(),
        &[
            "rustup",
            "-q",
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--url",
            &up.url("rustup"),
        ],
    ));
    let reqs = up.requests_for(&path);
    assert_eq!(reqs.last().unwrap().header("range"), Some("bytes=1000-"));
}

#[test]
fn verify_names_a_corrupted_file() {
    let up = fake_upstream();
    let root = tempfile::tempdir().unwrap();
    ok(&mirror(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--url",
            &up.url("rustup"),
        ],
    ));
    ok(&mirror(root.path(), &["rustup", "verify"]));
    let bin = root
        .path()
        .join(format!("rustup/archive/1.28.2/{LINUX}/rustup-init"));
    std::fs::write(&bin, b"tampered").unwrap();
    let out = mirror(root.path(), &["rustup", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&bin.display().to_string()) && err.contains("expected sha256"),
        "{err}"
    );
}

#[test]
fn download_refuses_wildcards_and_needs_targets() {
    let root = tempfile::tempdir().unwrap();
    let out = mirror(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "*",
            "-t",
            "linux",
            "--url",
            "http://127.0.0.1:9",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("download needs stable or X.Y.Z"));
    let out = mirror(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "1.2.3",
            "--url",
            "http://127.0.0.1:9",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TARGET given"));
}

/// Two trees, as on both sides of an air gap: `download pack` on the
/// online one, `unpack` of that archive on the offline one.
struct AirGap {
    online: tempfile::TempDir,
    offline: tempfile::TempDir,
}

fn across_the_gap(up: &Upstream, target: &str) -> AirGap {
    let gap = AirGap {
        online: tempfile::tempdir().unwrap(),
        offline: tempfile::tempdir().unwrap(),
    };
    let archive = gap.online.path().join("rustup.tar.gz");
    let archive = archive.to_str().unwrap();
    let url = up.url("rustup");
    let download = [
        "rustup",
        "download",
        "pack",
        "-s",
        "stable",
        "-t",
        target,
        "--url",
        &url,
        "--archive",
        archive,
    ];
    ok(&mirror(gap.online.path(), &download));
    ok(&mirror(
        gap.offline.path(),
        &["rustup", "unpack", "list", "--archive", archive],
    ));
    gap
}

#[test]
fn round_trip_download_pack_unpack() {
    let up = fake_upstream();
    let AirGap { online, offline } = across_the_gap(&up, "linux");
    for rel in [
        format!("rustup/archive/1.28.2/{LINUX}/rustup-init"),
        format!("rustup/archive/1.28.2/{LINUX}/rustup-init.sha256"),
        format!("rustup/dist/{LINUX}/rustup-init"),
        format!("rustup/dist/{LINUX}/rustup-init.sha256"),
        "rustup/release-stable.toml".to_string(),
    ] {
        assert_eq!(
            std::fs::read(online.path().join(&rel)).unwrap(),
            std::fs::read(offline.path().join(&rel)).unwrap(),
            "{rel}"
        );
    }

    // Serve the offline tree and fetch what rustup-init.sh would.
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(offline.path())).unwrap();
    let client = mirror::fetch::Engine::new(mirror::fetch::FetchOptions::default()).unwrap();
    let bin = client
        .fetch_bytes(
            &server.url(&format!("/rustup/dist/{LINUX}/rustup-init")),
            mirror::limit::RUSTUP_INIT,
        )
        .unwrap();
    assert_eq!(bin, init_bytes("1.28.2", LINUX));
    let sum = client
        .fetch_bytes(
            &server.url(&format!("/rustup/dist/{LINUX}/rustup-init.sha256")),
            mirror::limit::COMPANION,
        )
        .unwrap();
    let expected = std::fs::read(
        online
            .path()
            .join(format!("rustup/archive/1.28.2/{LINUX}/rustup-init.sha256")),
    )
    .unwrap();
    assert_eq!(sum, expected);
    assert_eq!(
        mirror::verify::digest::parse_sidecar(&sum, "served").unwrap(),
        mirror::verify::Sha256Digest::of(&bin)
    );
    let stable = client
        .fetch_bytes(
            &server.url("/rustup/release-stable.toml"),
            mirror::limit::SMALL_TEXT,
        )
        .unwrap();
    assert_eq!(stable, b"schema-version = '1'\nversion = '1.28.2'\n");
}

/// Find a client program; in CI (`CI=true`) a missing one fails the test,
/// elsewhere the test is skipped with a loud message.
pub fn require_client(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required in CI but was not found on PATH"
        );
        eprintln!("\n!!! SKIPPED: {name} not found on PATH; install it to run this test !!!\n");
    }
    found
}

/// An upstream whose newest rustup, 99.0.0 for `host`, is `real` (the
/// machine's own rustup binary, relabelled).
pub(crate) fn newer_rustup_upstream(real: &[u8], host: &str) -> Upstream {
    let up = Upstream::start();
    let path = format!("rustup/archive/99.0.0/{host}/rustup-init");
    up.put(
        &format!("{path}.sha256"),
        format!("{}  rustup-init\n", mirror::verify::Sha256Digest::of(real)),
    );
    up.put(&path, real.to_vec());
    up.put(
        "rustup/release-stable.toml",
        "schema-version = '1'\nversion = '99.0.0'\n",
    );
    up
}

/// A copy of the real `rustup` in a temporary CARGO_HOME updates itself
/// from `update_root` (`RUSTUP_UPDATE_ROOT`) to 99.0.0, whose binary is
/// `real`.
pub(crate) fn self_update(rustup: &Path, update_root: &str, real: &[u8]) {
    let home = tempfile::tempdir().unwrap();
    let cargo_home = home.path().join("cargo");
    std::fs::create_dir_all(cargo_home.join("bin")).unwrap();
    let installed = cargo_home.join("bin/rustup");
    std::fs::copy(rustup, &installed).unwrap();
    // Mark the installed copy so the update is visible.
    let before = std::fs::metadata(&installed).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = Command::new(&installed)
        .args(["self", "update"])
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTUP_HOME", home.path().join("rustup"))
        .env("RUSTUP_UPDATE_ROOT", update_root)
        .env_remove("RUSTUP_DIST_SERVER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rustup self update failed:\n{stderr}");
    assert!(stderr.contains("new version: 99.0.0"), "{stderr}");
    let after = std::fs::metadata(&installed).unwrap().modified().unwrap();
    assert!(after > before, "the installed rustup was replaced");
    assert_eq!(std::fs::read(&installed).unwrap(), real);
}

/// The real `rustup` updates itself from `mirror serve`: upstream publishes
/// a newer version (the machine's own rustup binary, relabelled), mirror
/// downloads, packs and unpacks it into a second tree, serves that, and
/// `rustup self update` with `RUSTUP_UPDATE_ROOT` installs it.
#[test]
fn real_rustup_self_updates_from_the_served_mirror() {
    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let host = crate::support::dist::host_triple();
    let real = std::fs::read(&rustup).unwrap();
    let up = newer_rustup_upstream(&real, &host);
    let AirGap { offline, .. } = across_the_gap(&up, &host);
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(offline.path())).unwrap();
    self_update(&rustup, &server.url("/rustup"), &real);
}

/// A romt-style archive: plain tar.gz of `rustup/archive/...`, no manifest.
fn romt_archive(path: &Path, members: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &data[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn romt_members(tamper: bool) -> Vec<(String, Vec<u8>)> {
    let bin = init_bytes("1.28.2", LINUX);
    let sum = format!("{}  rustup-init\n", mirror::verify::Sha256Digest::of(&bin));
    let mut shipped = bin.clone();
    if tamper {
        shipped[100] ^= 1;
    }
    vec![
        (
            format!("rustup/archive/1.28.2/{LINUX}/rustup-init"),
            shipped,
        ),
        (
            format!("rustup/archive/1.28.2/{LINUX}/rustup-init.sha256"),
            sum.into_bytes(),
        ),
    ]
}

#[test]
fn romt_archives_unpack_and_are_verified_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar.gz");
    romt_archive(&good, &romt_members(false));
    let root = tempfile::tempdir().unwrap();
    ok(&mirror(
        root.path(),
        &["rustup", "unpack", "--archive", good.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(root.path().join(format!("rustup/dist/{LINUX}/rustup-init"))).unwrap(),
        init_bytes("1.28.2", LINUX)
    );

    let bad = dir.path().join("bad.tar.gz");
    romt_archive(&bad, &romt_members(true));
    let root = tempfile::tempdir().unwrap();
    let out = mirror(
        root.path(),
        &["rustup", "unpack", "--archive", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.tar.gz") && err.contains("expected sha256"),
        "{err}"
    );
    assert!(
        !root.path().join("rustup/archive").exists(),
        "nothing published"
    );
}

/// Against the real upstream (needs the internet): `cargo test -- --ignored`.
#[test]
#[ignore = "needs the internet (static.rust-lang.org)"]
fn live_download_of_stable_rustup_for_linux() {
    let root = tempfile::tempdir().unwrap();
    ok(&mirror(
        root.path(),
        &[
            "rustup", "download", "verify", "-s", "stable", "-t", "linux",
        ],
    ));
    assert!(root
        .path()
        .join(format!("rustup/dist/{LINUX}/rustup-init"))
        .is_file());
}

/// Regression: `fixup` (after every download and unpack) replaced
/// `rustup/dist/` by moving the old directory aside and the new one in, so
/// for a moment `dist/<triple>/rustup-init` was gone while
/// `release-stable.toml` named its version, and a run killed in between
/// left no `dist/` at all until the next one.
#[test]
#[cfg_attr(
    not(all(target_os = "linux", target_env = "gnu")),
    ignore = "the atomic exchange needs Linux with glibc; elsewhere dist/ is swapped with two renames"
)]
fn fixup_unpublished_dist_while_replacing_it() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let up = fake_upstream();
    let root = tempfile::tempdir().unwrap();
    let url = up.url("rustup");
    ok(&mirror(
        root.path(),
        &[
            "rustup", "download", "-s", "stable", "-t", "linux", "--url", &url,
        ],
    ));
    let bin = root.path().join(format!("rustup/dist/{LINUX}/rustup-init"));
    let stop = Arc::new(AtomicBool::new(false));
    let misses = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, misses, bin) = (stop.clone(), misses.clone(), bin.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if !bin.is_file() {
                    misses.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    for _ in 0..40 {
        ok(&mirror(root.path(), &["rustup", "fixup", "-s", "stable"]));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(misses.load(Ordering::Relaxed), 0, "dist/ was unpublished");
    let parent = root.path().join("rustup");
    let left: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
