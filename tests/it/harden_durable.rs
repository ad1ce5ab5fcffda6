//! What is published is durable before the metadata naming it: each
//! download and unpack path records its steps in `MIRROR_TRACE_SYNC`
//! (`publish` a file, `sync` a file system, `write` metadata), and every
//! metadata write must come after a sync that follows the last file
//! published before it.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::upstream::Upstream;

/// `mirror --root ROOT ARGS`, tracing into `trace`.
fn traced(root: &Path, trace: &Path, args: &[&str]) -> String {
    let out: Output = crate::support::run_logged(
        Command::new(env!("CARGO_BIN_EXE_mirror"))
            .arg("--root")
            .arg(root)
            .args(args)
            .env("MIRROR_RETRY_DELAY_MS", "0")
            .env("MIRROR_TRACE_SYNC", trace)
            .env_remove("MIRROR_JOBS"),
        &format!("mirror {args:?}"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "mirror {args:?} failed:\n{stderr}");
    stderr
}

/// Check the trace of one run: files were published, metadata was
/// written, and no metadata write follows a file published since the
/// last sync. Returns the trace read, which is then emptied.
fn check_order(trace: &Path, what: &str, metadata: &[&str]) -> String {
    let text = std::fs::read_to_string(trace)
        .unwrap_or_else(|e| panic!("{what}: no trace at {}: {e}", trace.display()));
    std::fs::remove_file(trace).unwrap();
    let mut unsynced: Option<&str> = None;
    let mut published = 0;
    for line in text.lines() {
        let (event, path) = line.split_once(' ').unwrap_or((line, ""));
        match event {
            "publish" => {
                published += 1;
                unsynced = Some(path);
            }
            "sync" => unsynced = None,
            "write" => {
                if let Some(file) = unsynced {
                    panic!("{what}: {path} written before {file} was synced:\n{text}");
                }
            }
            other => panic!("{what}: unknown trace event {other:?}:\n{text}"),
        }
    }
    assert!(published > 0, "{what}: no file published:\n{text}");
    for m in metadata {
        assert!(
            text.lines()
                .any(|l| l.starts_with("write ") && l.ends_with(m)),
            "{what}: no write of {m}:\n{text}"
        );
    }
    text
}

#[test]
fn hex_download_and_import_sync_before_names_and_marks() {
    let up = Upstream::start();
    crate::support::hex::HexRepo::sample().publish(&up);
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let work = tempfile::tempdir().unwrap();
    let (near, far) = (work.path().join("near"), work.path().join("far"));
    let trace = work.path().join("trace");
    let archive = work.path().join("h.tar.gz");
    let archive = archive.to_str().unwrap();
    let base = ["--url", url.as_str(), "--public-key", key.as_str()];
    let args = |op: &'static str| -> Vec<&str> {
        let mut a = vec!["hex", op];
        a.extend(base);
        a.extend(["--archive", archive]);
        a
    };
    traced(&near, &trace, &args("export"));
    check_order(
        &trace,
        "hex export",
        &["hex/names", "hex/versions", "state.json"],
    );
    traced(&far, &trace, &args("import"));
    check_order(&trace, "hex import", &["hex/names", "state.json"]);
}

#[test]
fn arch_download_and_import_sync_before_databases_and_marks() {
    use crate::support::arch::{publish, Pkg};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    publish(&up, "m", "core", &[Pkg::new("hello", "1.0-1")]);
    let url = up.url("m/$repo/os/$arch");
    let key = TestKey::Signing.public_path().display().to_string();
    let work = tempfile::tempdir().unwrap();
    let (near, far) = (work.path().join("near"), work.path().join("far"));
    let trace = work.path().join("trace");
    let archive = work.path().join("a.tar.gz");
    let archive = archive.to_str().unwrap();
    traced(
        &near,
        &trace,
        &[
            "arch",
            "export",
            "--url",
            &url,
            "--keyring",
            &key,
            "--repo",
            "core",
            "--archive",
            archive,
        ],
    );
    check_order(
        &trace,
        "arch export",
        &["core.db", "lastsync", "state.json"],
    );
    traced(
        &far,
        &trace,
        &["arch", "import", "--archive", archive, "--keyring", &key],
    );
    check_order(&trace, "arch import", &["core.db", "state.json"]);
}

#[test]
fn toolchain_download_and_unpack_sync_before_manifests() {
    use crate::support::dist::{publish, STABLE};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    publish(&up, &STABLE, &["x86_64-unknown-linux-gnu"]);
    let url = up.url("dist");
    let key = TestKey::Signing.public_path().display().to_string();
    let work = tempfile::tempdir().unwrap();
    let (near, far) = (work.path().join("near"), work.path().join("far"));
    let trace = work.path().join("trace");
    let archive = work.path().join("t.tar.gz");
    let archive = archive.to_str().unwrap();
    let tc = |root: &Path, args: &[&str]| {
        let mut all = vec!["toolchain"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url, "--keyring", &key]);
        traced(root, &trace, &all);
    };
    tc(
        &near,
        &[
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--profile",
            "minimal",
        ],
    );
    check_order(
        &trace,
        "toolchain download",
        &["dist/channel-rust-stable.toml"],
    );
    tc(&near, &["pack", "-s", "stable", "--archive", archive]);
    let _ = std::fs::remove_file(&trace);
    tc(&far, &["unpack", "--archive", archive]);
    check_order(&trace, "toolchain unpack", &["channel-rust-stable.toml"]);
}

#[test]
fn crates_update_and_import_sync_before_branches_and_bundle() {
    use crate::support::crates::CratesFixture;
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf 1.0.0");
    let work = tempfile::tempdir().unwrap();
    let (near, far) = (work.path().join("near"), work.path().join("far"));
    let trace = work.path().join("trace");
    let archive = work.path().join("c.tar.gz");
    let archive = archive.to_str().unwrap();
    crate::rustup::ok(&crate::rustup::mirror(
        &near,
        &["crate", "init", "--index-url", &fx.index_url()],
    ));
    let tmpl = fx.crates_url_template();
    traced(
        &near,
        &trace,
        &[
            "crate",
            "export",
            "--crates-url",
            &tmpl,
            "--archive",
            archive,
        ],
    );
    check_order(
        &trace,
        "crate export",
        &["refs/heads/master", "refs/heads/mark"],
    );
    crate::rustup::ok(&crate::rustup::mirror(&far, &["crate", "init-import"]));
    traced(&far, &trace, &["crate", "import", "--archive", archive]);
    check_order(&trace, "crate import", &["refs/heads/master"]);
}
