//! Real cargo against `mirror serve`: a generated project that depends on
//! the fixture crate `app` (which depends on `leaf`) is resolved and fetched
//! over the sparse protocol and over the git protocol (libgit2, smart HTTP),
//! then built offline. Both give the same Cargo.lock.
//!
//! cargo runs with a temporary CARGO_HOME whose `config.toml` replaces
//! crates-io with the mirror, so it has no other source to reach; proxies
//! are removed from its environment and timeouts are short.

use std::path::Path;
use std::process::{Command, Output};

use super::crates_serve::crates_tree;
use super::rustup::require_client;
use crate::support::crates::CratesFixture;
use crate::support::upstream::Upstream;

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A project depending on `app ^0.1` that prints `leaf`'s version.
pub(crate) fn project(dir: &Path) {
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\napp = \"0.1\"\nleaf = \"1\"\n\n[workspace]\n",
    );
    write(
        &dir.join("src/main.rs"),
        "fn main() {\n    println!(\"{} {}\", app::app_version(), leaf::leaf_version());\n}\n",
    );
}

/// A CARGO_HOME whose crates-io is replaced by `registry`.
pub(crate) fn cargo_home(dir: &Path, registry: &str) {
    write(
        &dir.join("config.toml"),
        &format!(
            "[source.crates-io]\nreplace-with = \"mirror\"\n\n\
             [source.mirror]\nregistry = \"{registry}\"\n\n\
             [net]\noffline = false\ngit-fetch-with-cli = false\nretry = 0\n\n\
             [http]\ntimeout = 20\n"
        ),
    );
}

pub(crate) fn cargo(
    cargo: &Path,
    project: &Path,
    home: &Path,
    protocol: &str,
    args: &[&str],
) -> Output {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project)
        .args(args)
        .env("CARGO_HOME", home)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .env("CARGO_NET_GIT_FETCH_WITH_CLI", "false")
        .env("CARGO_REGISTRIES_CRATES_IO_PROTOCOL", protocol)
        .env("CARGO_HTTP_TIMEOUT", "20")
        .env("CARGO_NET_RETRY", "0")
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS");
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "CARGO_HTTP_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run cargo")
}

pub(crate) fn ok(what: &str, out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Resolve, fetch and build offline with one protocol; returns Cargo.lock.
pub(crate) fn round(bin: &Path, work: &Path, name: &str, protocol: &str, registry: &str) -> String {
    let dir = work.join(name);
    let home = dir.join("cargo-home");
    let proj = dir.join("project");
    project(&proj);
    cargo_home(&home, registry);
    ok(
        &format!("{name}: cargo generate-lockfile"),
        cargo(bin, &proj, &home, protocol, &["generate-lockfile"]),
    );
    ok(
        &format!("{name}: cargo fetch"),
        cargo(bin, &proj, &home, protocol, &["fetch"]),
    );
    // The crates came from the mirror into this CARGO_HOME.
    let cached: Vec<String> = walk(&home.join("registry/cache"))
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for want in ["app-0.1.0.crate", "leaf-1.1.0.crate"] {
        assert!(
            cached.iter().any(|c| c == want),
            "{name}: {want} not in {cached:?}"
        );
    }
    // The index came over the protocol asked for: a git clone, or the
    // sparse cache.
    let index_dirs: Vec<_> = std::fs::read_dir(home.join("registry/index"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let marker = if protocol == "git" { ".git" } else { ".cache" };
    assert!(
        index_dirs.iter().any(|d| d.join(marker).exists()),
        "{name}: no {marker} in {index_dirs:?}"
    );
    ok(
        &format!("{name}: cargo build --offline"),
        cargo(bin, &proj, &home, protocol, &["build", "--offline"]),
    );
    let run = Command::new(proj.join("target/debug/consumer"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "0.1.0 1.1.0\n",
        "{name}"
    );
    std::fs::read_to_string(proj.join("Cargo.lock")).unwrap()
}

pub(crate) fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn cargo_fetches_and_builds_over_sparse_and_git_protocols() {
    let Some(bin) = require_client("cargo") else {
        return;
    };
    let t = crates_tree();
    let started = std::time::Instant::now();
    let sparse = round(
        &bin,
        t.tmp.path(),
        "sparse",
        "sparse",
        &format!("sparse+{}", t.server.url("/index/")),
    );
    eprintln!("sparse round: {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let git = round(
        &bin,
        t.tmp.path(),
        "git",
        "git",
        &t.server.url("/git/crates.io-index"),
    );
    eprintln!("git round: {:?}", started.elapsed());
    assert_eq!(sparse, git, "the two protocols resolved differently");
    assert!(
        sparse.contains("source = \"registry+https://github.com/rust-lang/crates.io-index\""),
        "{sparse}"
    );
    assert!(
        sparse.contains("name = \"leaf\"\nversion = \"1.1.0\""),
        "{sparse}"
    );
}

pub(crate) fn mirror_crate(root: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .current_dir(root)
        .arg("--root")
        .arg(root)
        .arg("crate")
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .env_remove("MIRROR_JOBS")
        .env_remove("MIRROR_CRATES_URL")
        .output()
        .expect("run mirror");
    ok(&format!("mirror crate {args:?}"), out);
}

/// The whole path: `mirror crate init/config/update` from a fixture
/// upstream, `mirror serve` over that tree, cargo over both protocols.
#[test]
fn cargo_builds_from_a_tree_made_by_mirror_crate() {
    let Some(bin) = require_client("cargo") else {
        return;
    };
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf and app");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(&root)).unwrap();
    mirror_crate(&root, &["init", "--index-url", &fx.index_url()]);
    mirror_crate(&root, &["config", "--server-url", &server.url("")]);
    mirror_crate(
        &root,
        &["update", "--crates-url", &fx.crates_url_template()],
    );
    let sparse = round(
        &bin,
        work.path(),
        "sparse",
        "sparse",
        &format!("sparse+{}", server.url("/index/")),
    );
    let git = round(
        &bin,
        work.path(),
        "git",
        "git",
        &server.url("/git/crates.io-index"),
    );
    assert_eq!(sparse, git);
}
