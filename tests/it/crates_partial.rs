//! Partial crate mirrors serve only what they hold: the published index
//! (`master`) lists only versions whose `.crate` is present, lines kept
//! byte-for-byte, so real cargo resolves within the subset or fails with
//! "no matching package" / "failed to select a version" — never a 404 on a
//! `.crate`. A partial export imports into a second tree that is partial too.

use std::path::Path;

use super::cargo_client::{cargo, cargo_home, mirror_crate, ok, write};
use super::rustup::require_client;
use crate::support::crates::{index_path, CratesFixture};
use crate::support::upstream::Upstream;

/// The fixture: `leaf` 1.0.0 and 1.1.0, `app` 0.1.0 (needs `leaf ^1`), and
/// `other` 0.1.0, which no selection below takes.
fn fixture(up: &Upstream) -> CratesFixture<'_> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.publish("other", "0.1.0", &[]);
    fx.commit("Add crates");
    fx
}

const FILTER: [&str; 4] = ["--filter", "app", "--filter", "leaf@1.1.0"];

/// A project with `deps` (TOML lines) and a CARGO_HOME pointing at `index`.
fn consumer(dir: &Path, index: &str, deps: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let proj = dir.join("project");
    let home = dir.join("cargo-home");
    write(
        &proj.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\n{deps}\n\n[workspace]\n"
        ),
    );
    write(&proj.join("src/main.rs"), "fn main() {}\n");
    cargo_home(&home, index);
    (proj, home)
}

fn git_show(root: &Path, spec: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .current_dir(root.join("git/crates.io-index"))
        .args(["show", spec])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Check the published index of `root` holds exactly app 0.1.0 and leaf
/// 1.1.0, byte-for-byte as upstream wrote the lines.
fn assert_published_subset(root: &Path, fx: &CratesFixture<'_>) {
    let leaf_up = fx.read(&index_path("leaf")).unwrap();
    let leaf_line = leaf_up
        .lines()
        .find(|l| l.contains("\"vers\":\"1.1.0\""))
        .unwrap();
    assert_eq!(
        git_show(root, &format!("master:{}", index_path("leaf"))).unwrap(),
        format!("{leaf_line}\n")
    );
    assert_eq!(
        git_show(root, &format!("master:{}", index_path("app"))).unwrap(),
        fx.read(&index_path("app")).unwrap()
    );
    assert_eq!(
        git_show(root, &format!("master:{}", index_path("other"))),
        None
    );
    // The history kept in working is the whole upstream index.
    assert!(git_show(root, &format!("working:{}", index_path("other"))).is_some());
}

fn assert_clean_resolution_failure(what: &str, out: std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: cargo succeeded:\n{stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: no {needle:?} in:\n{stderr}"
    );
    assert!(
        !stderr.contains("404"),
        "{what}: a 404 reached cargo:\n{stderr}"
    );
    assert!(
        !stderr.contains(".crate"),
        "{what}: cargo tried a crate file:\n{stderr}"
    );
}

#[test]
fn partial_mirror_publishes_only_the_versions_it_holds() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut init = vec!["init", "--index-url"];
    let url = fx.index_url();
    init.push(&url);
    init.extend(FILTER);
    mirror_crate(&root, &init);
    assert!(root.join("crates/PARTIAL").is_file());
    let tmpl = fx.crates_url_template();
    let mut update = vec!["update", "--crates-url", &tmpl];
    update.extend(FILTER);
    mirror_crate(&root, &update);
    assert_published_subset(&root, &fx);
    // A full mirror keeps the index as it is.
    let full = work.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    mirror_crate(&full, &["init", "--index-url", &url]);
    mirror_crate(&full, &["update", "--crates-url", &tmpl]);
    assert_eq!(
        git_show(&full, "master:le/af/leaf").unwrap(),
        fx.read("le/af/leaf").unwrap()
    );
    assert!(!full.join("crates/PARTIAL").exists());
}

#[test]
fn cargo_resolves_within_a_partial_mirror_and_fails_cleanly_outside() {
    let Some(bin) = require_client("cargo") else {
        return;
    };
    let up = Upstream::start();
    let fx = fixture(&up);
    let work = tempfile::tempdir().unwrap();
    let url = fx.index_url();
    let tmpl = fx.crates_url_template();

    // Near side: a partial export.
    let near = work.path().join("near");
    std::fs::create_dir_all(&near).unwrap();
    let archive = work.path().join("partial.tar.gz");
    let archive_s = archive.display().to_string();
    let mut init = vec!["init", "--index-url", &url];
    init.extend(FILTER);
    mirror_crate(&near, &init);
    let mut export = vec!["export", "--crates-url", &tmpl, "--archive", &archive_s];
    export.extend(FILTER);
    mirror_crate(&near, &export);

    // Far side: import into a second tree and serve it.
    let far = work.path().join("far");
    std::fs::create_dir_all(&far).unwrap();
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(&far)).unwrap();
    mirror_crate(&far, &["init-import"]);
    mirror_crate(&far, &["config", "--server-url", &server.url("")]);
    mirror_crate(&far, &["import", "--archive", &archive_s]);
    assert!(far.join("crates/PARTIAL").is_file());
    assert_published_subset(&far, &fx);
    let index = format!("sparse+{}", server.url("/index/"));

    // A project within the selection fetches and builds offline.
    let (proj, home) = consumer(
        &work.path().join("inside"),
        &index,
        "app = \"0.1\"\nleaf = \"1\"",
    );
    ok(
        "cargo fetch",
        cargo(&bin, &proj, &home, "sparse", &["fetch"]),
    );
    let lock = std::fs::read_to_string(proj.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"leaf\"\nversion = \"1.1.0\""),
        "{lock}"
    );
    ok(
        "cargo build --offline",
        cargo(&bin, &proj, &home, "sparse", &["build", "--offline"]),
    );

    // A crate outside the selection: no matching package.
    let (proj, home) = consumer(&work.path().join("outside"), &index, "other = \"0.1\"");
    assert_clean_resolution_failure(
        "other",
        cargo(&bin, &proj, &home, "sparse", &["generate-lockfile"]),
        "no matching package named `other` found",
    );
    // A version outside the selection: failed to select a version.
    let (proj, home) = consumer(&work.path().join("old-leaf"), &index, "leaf = \"=1.0.0\"");
    assert_clean_resolution_failure(
        "leaf =1.0.0",
        cargo(&bin, &proj, &home, "sparse", &["generate-lockfile"]),
        "failed to select a version",
    );
}
