//! `mirror toolchain clean`: retention per channel with pins, `--dry-run`,
//! the removals carried by the next archive to the far side, and the real
//! rustup still installing every kept version from the served tree.

use std::path::Path;
use std::process::Output;

use crate::rustup::require_client;
use crate::support::dist::{host_triple, publish, Release, BETA, NIGHTLY, OLD_STABLE, STABLE};
use crate::support::upstream::Upstream;
use crate::toolchain::{run_rustup, tc};

/// A stable older than the fixtures' two.
const OLDEST: Release = Release {
    channel: "stable",
    date: "2026-08-01",
    version: "1.97.0",
};

/// A nightly older than the fixtures' one.
const OLD_NIGHTLY: Release = Release {
    channel: "nightly",
    date: "2026-10-01",
    version: "1.101.0-nightly",
};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file below `root/dist`, relative to the root, sorted.
fn dist_files(root: &Path) -> Vec<String> {
    dist_files_under(root, "dist")
}

/// An upstream with three stables, a beta and two nightlies for `host`,
/// and an online tree that downloaded all of them.
fn online(host: &str) -> (Upstream, tempfile::TempDir) {
    let up = Upstream::start();
    for rel in [OLDEST, OLD_STABLE, BETA, OLD_NIGHTLY, STABLE, NIGHTLY] {
        publish(&up, &rel, &[host]);
    }
    let root = tempfile::tempdir().unwrap();
    for spec in ["1.97.0,1.98.0,stable,beta", "nightly-2026-10-01", "nightly"] {
        ok(&tc(
            root.path(),
            &up,
            &["download", "-s", spec, "-t", host, "--profile", "minimal"],
        ));
    }
    (up, root)
}

const KEEP: &[&str] = &[
    "clean",
    "--keep",
    "stable=1,beta=0,nightly=1",
    "--pin",
    "1.97.0",
];

#[test]
fn clean_keeps_the_newest_per_channel_and_the_pins_and_dry_run_removes_nothing() {
    let host = host_triple();
    let (up, root) = online(&host);
    let r = root.path();
    let before = dist_files(r);
    let mut dry = KEEP.to_vec();
    dry.push("--dry-run");
    let out = ok(&tc(r, &up, &dry));
    assert_eq!(dist_files(r), before, "--dry-run removed something");
    let listed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("would remove "))
        .collect();

    ok(&tc(r, &up, KEEP));
    let after = dist_files(r);
    let removed: Vec<&str> = before
        .iter()
        .filter(|f| !after.contains(f))
        .map(String::as_str)
        .collect();
    assert_eq!(
        listed, removed,
        "--dry-run listed other files than clean removed"
    );

    // Dropped: 1.98.0, the beta, the older nightly, with their directories.
    for gone in [OLD_STABLE.date, BETA.date, OLD_NIGHTLY.date] {
        assert!(!r.join("dist").join(gone).exists(), "{gone} kept");
    }
    for gone in [
        "dist/channel-rust-beta.toml",
        "dist/channel-rust-beta.toml.sha256",
        "dist/channel-rust-1.98.0.toml",
        "dist/channel-rust-1.98.toml",
    ] {
        assert!(!r.join(gone).exists(), "{gone} kept");
    }
    // Kept: the newest stable and nightly, the pinned 1.97.0, each with
    // every file its manifest references.
    for rel in [OLDEST, STABLE, NIGHTLY] {
        assert!(r.join(rel.manifest_path()).is_file(), "{rel:?}");
        for pkg in ["rustc", "cargo", "rust-std"] {
            assert!(
                r.join(rel.file_path(pkg, &host, "xz")).is_file(),
                "{pkg} {rel:?}"
            );
        }
    }
    // The dateless copies follow the newest kept.
    for (copy, rel) in [
        ("dist/channel-rust-stable.toml", STABLE),
        ("dist/channel-rust-1.97.0.toml", OLDEST),
        ("dist/channel-rust-1.97.toml", OLDEST),
        ("dist/channel-rust-1.99.1.toml", STABLE),
        ("dist/channel-rust-nightly.toml", NIGHTLY),
    ] {
        assert_eq!(
            std::fs::read(r.join(copy)).unwrap(),
            std::fs::read(r.join(rel.manifest_path())).unwrap(),
            "{copy}"
        );
    }
    let list = ok(&tc(r, &up, &["list"]));
    assert!(!list.contains("1.98.0") && !list.contains("beta"), "{list}");
    ok(&tc(r, &up, &["verify"]));
    // A second clean has nothing left to remove.
    ok(&tc(r, &up, KEEP));
    assert_eq!(dist_files(r), after);
}

#[test]
fn the_next_archive_carries_the_clean_and_rustup_installs_what_is_kept() {
    let host = host_triple();
    let (up, online) = online(&host);
    let a = online.path();
    let first = a.join("first.tar.gz");
    let second = a.join("second.tar.gz");
    let far = tempfile::tempdir().unwrap();
    let b = far.path();
    ok(&tc(
        a,
        &up,
        &["pack", "mark", "--archive", first.to_str().unwrap()],
    ));
    ok(&tc(
        b,
        &up,
        &["import", "--archive", first.to_str().unwrap()],
    ));
    assert_eq!(dist_files(a), dist_files(b));

    ok(&tc(a, &up, KEEP));
    ok(&tc(
        a,
        &up,
        &["pack", "mark", "--archive", second.to_str().unwrap()],
    ));
    ok(&tc(
        b,
        &up,
        &["import", "--archive", second.to_str().unwrap()],
    ));
    assert_eq!(
        dist_files(a),
        dist_files(b),
        "the far side holds something else"
    );
    assert_eq!(
        ok(&tc(a, &up, &["list", "--json"])),
        ok(&tc(b, &up, &["list", "--json"]))
    );
    ok(&tc(b, &up, &["verify"]));
    ok(&tc(a, &up, &["verify"]));

    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(b)).unwrap();
    let home = tempfile::tempdir().unwrap();
    for (toolchain, version) in [
        ("stable", STABLE.version),
        ("1.97.0", OLDEST.version),
        ("nightly", NIGHTLY.version),
    ] {
        let out = run_rustup(
            &rustup,
            home.path(),
            &server,
            &[
                "toolchain",
                "install",
                toolchain,
                "--profile",
                "minimal",
                "--no-self-update",
            ],
        );
        assert!(
            out.status.success(),
            "rustup toolchain install {toolchain} failed"
        );
        let out = run_rustup(
            &rustup,
            home.path(),
            &server,
            &["run", toolchain, "rustc", "-V"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("rustc {version} (fixture)")
        );
    }
}

#[test]
fn an_archive_may_remove_only_toolchain_files() {
    let host = host_triple();
    let (up, online) = online(&host);
    let a = online.path();
    ok(&tc(a, &up, KEEP));
    // The recorded removals, tampered with: a path outside dist/.
    let state = a.join(".mirror/toolchain-selection.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replacen("\"dist/", "\"rustup/", 1)).unwrap();
    let archive = a.join("bad.tar.gz");
    ok(&tc(
        a,
        &up,
        &[
            "pack",
            "--start",
            "0",
            "--archive",
            archive.to_str().unwrap(),
        ],
    ));
    let far = tempfile::tempdir().unwrap();
    let out = tc(
        far.path(),
        &up,
        &["unpack", "--archive", archive.to_str().unwrap()],
    );
    assert!(
        !out.status.success(),
        "an archive removing rustup/ files was accepted"
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("not a package file"), "{e}");
}

#[test]
fn rustup_clean_keeps_the_newest_and_the_pins_and_the_far_side_follows() {
    use crate::rustup::mirror;
    const LINUX: &str = "x86_64-unknown-linux-gnu";
    let up = Upstream::start();
    for v in ["1.26.0", "1.27.1", "1.28.2"] {
        crate::support::rustup::publish(&up, &[v], &[LINUX]);
    }
    up.put(
        "rustup/release-stable.toml",
        "schema-version = '1'\nversion = '1.28.2'\n",
    );
    let url = up.url("rustup");
    let online = tempfile::tempdir().unwrap();
    let a = online.path();
    let far = tempfile::tempdir().unwrap();
    let b = far.path();
    let first = a.join("first.tar.gz");
    let second = a.join("second.tar.gz");
    ok(&mirror(
        a,
        &[
            "rustup",
            "download",
            "pack",
            "mark",
            "-s",
            "1.26.0,1.27.1,1.28.2",
            "-t",
            LINUX,
            "--url",
            &url,
            "--archive",
            first.to_str().unwrap(),
        ],
    ));
    ok(&mirror(
        b,
        &["rustup", "import", "--archive", first.to_str().unwrap()],
    ));
    let list = |root: &Path| ok(&mirror(root, &["rustup", "list", "--json"]));
    assert_eq!(list(a), list(b));

    let before = dist_files_under(a, "rustup");
    let out = ok(&mirror(
        a,
        &[
            "rustup",
            "clean",
            "--keep",
            "1",
            "--pin",
            "1.26.0",
            "--dry-run",
        ],
    ));
    assert_eq!(
        dist_files_under(a, "rustup"),
        before,
        "--dry-run removed something"
    );
    assert!(out.contains("would remove rustup/archive/1.27.1/"), "{out}");
    assert!(!out.contains("1.26.0") && !out.contains("1.28.2"), "{out}");

    ok(&mirror(
        a,
        &["rustup", "clean", "--keep", "1", "--pin", "1.26.0"],
    ));
    assert!(!a.join("rustup/archive/1.27.1").exists());
    assert!(a.join("rustup/archive/1.26.0").is_dir());
    assert!(a.join("rustup/archive/1.28.2").is_dir());
    let held = list(a);
    assert!(
        !held.contains("1.27.1") && held.contains("1.26.0"),
        "{held}"
    );
    ok(&mirror(a, &["rustup", "verify"]));

    ok(&mirror(
        a,
        &[
            "rustup",
            "pack",
            "mark",
            "--archive",
            second.to_str().unwrap(),
        ],
    ));
    ok(&mirror(
        b,
        &["rustup", "import", "--archive", second.to_str().unwrap()],
    ));
    assert_eq!(list(a), list(b), "the far side holds something else");
    assert_eq!(dist_files_under(a, "rustup"), dist_files_under(b, "rustup"));
    ok(&mirror(b, &["rustup", "verify"]));

    // The far side can clean on its own.
    ok(&mirror(b, &["rustup", "clean", "--keep", "1"]));
    assert!(!b.join("rustup/archive/1.26.0").exists());
    assert!(b.join("rustup/dist").is_dir());
}

/// Every file below `root/dir`, relative to the root, sorted.
fn dist_files_under(root: &Path, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.join(dir)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
