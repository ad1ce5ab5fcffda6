//! `mirror crate` from a sparse upstream: selections (a lockfile, a
//! `--crate` closure with optional, target-specific, build and renamed
//! deps), refreshes that cost only 304s, a new version picked up by
//! `update`, a yank propagated, a locked checksum that disagrees.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::crates::{index_path, CratesFixture};
use crate::support::sparse::{dep, publish_line, SparseUpstream};
use crate::support::tree::copy_dir;
use crate::support::upstream::Upstream;

/// `mirror --root ROOT crate ARGS` (the root is created when missing).
pub(crate) fn run(root: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(root).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mirror"))
        .current_dir(root)
        .arg("--root")
        .arg(root)
        .arg("crate")
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .env_remove("MIRROR_JOBS")
        .env_remove("MIRROR_CRATES_URL")
        .output()
        .expect("run mirror")
}

/// [`run`], which must succeed; its stderr.
pub(crate) fn ok(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "mirror crate {args:?} ({:?}):\n{stderr}",
        out.status
    );
    stderr
}

/// `name@version` of every `.crate` under `root/crates`.
pub(crate) fn held(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = mirror::eco::crates::held_crates(&root.join("crates"))
        .unwrap()
        .into_iter()
        .map(|(n, v)| format!("{n}@{v}"))
        .collect();
    out.sort();
    out
}

fn show(root: &Path, spec: &str) -> Option<String> {
    let out = Command::new("git")
        .current_dir(root.join("git/crates.io-index"))
        .args(["show", spec])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// leaf 1.0.0 1.1.0 2.0.0; app 0.1.0 with a normal dep on leaf ^1, an
/// optional one on opt, a cfg(windows) one on winonly, a build dep on
/// builder, a dev dep on tester and `alias` renamed from `real`; other.
fn fixture<'a>(up: &'a Upstream) -> CratesFixture<'a> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("leaf", "2.0.0", &[]);
    for (n, v) in [
        ("opt", "0.1.0"),
        ("winonly", "0.1.0"),
        ("builder", "1.0.0"),
        ("tester", "1.0.0"),
        ("real", "0.2.0"),
        ("other", "0.1.0"),
    ] {
        fx.publish(n, v, &[]);
    }
    let deps = format!(
        "[{}]",
        [
            dep("leaf", "^1", "normal", false, None),
            dep("opt", "^0.1", "normal", true, None),
            dep("winonly", "^0.1", "normal", false, Some("cfg(windows)")),
            dep("builder", "^1", "build", false, None),
            dep("tester", "^1", "dev", false, None),
            dep("alias", "^0.2", "normal", false, None)
                .replace("\"kind\"", "\"package\":\"real\",\"kind\""),
        ]
        .join(",")
    );
    publish_line(up, &fx, "app", "0.1.0", &deps);
    fx.commit("Add crates");
    fx
}

#[test]
fn crate_closure_follows_optional_target_build_and_renamed_deps() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let tmpl = fx.crates_url_template();
    ok(root, &["init", "--index-url", &sp.index_url()]);
    let err = ok(
        root,
        &[
            "update",
            "--crates-url",
            &tmpl,
            "--crate",
            "app",
            "--with-deps",
            "normal,build",
        ],
    );
    assert!(err.contains("6 versions selected"), "{err}");
    assert_eq!(
        held(root),
        [
            "app@0.1.0",
            "builder@1.0.0",
            "leaf@1.1.0",
            "opt@0.1.0",
            "real@0.2.0",
            "winonly@0.1.0"
        ]
    );
    // Served: only what is held, lines byte-for-byte.
    let leaf = fx.read(&index_path("leaf")).unwrap();
    let line = leaf.lines().find(|l| l.contains("1.1.0")).unwrap();
    assert_eq!(
        show(root, "master:le/af/leaf").unwrap(),
        format!("{line}\n")
    );
    assert_eq!(
        show(root, "master:3/a/app").unwrap(),
        fx.read("3/a/app").unwrap()
    );
    assert!(show(root, "master:te/st/tester").is_none());
    assert!(show(root, "master:ot/he/other").is_none());
    // The upstream's config.json came along, byte-for-byte, in working.
    assert_eq!(
        show(root, "working:config.json").unwrap(),
        fx.read("config.json").unwrap()
    );

    // `list --json`: what the mirror holds.
    let out = run(root, &["list", "--json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}@{}",
                e["name"].as_str().unwrap(),
                e["vers"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, held(root));
    assert_eq!(list[0]["path"], "crates/3/a/app/app-0.1.0.crate");

    // --versions all (and dev deps): every version a requirement selects.
    let err = ok(
        root,
        &[
            "update",
            "--crates-url",
            &tmpl,
            "--crate",
            "app",
            "--with-deps",
            "normal,build,dev",
            "--versions",
            "all",
        ],
    );
    assert!(err.contains("8 versions selected"), "{err}");
    let h = held(root);
    assert!(h.contains(&"leaf@1.0.0".to_string()) && h.contains(&"tester@1.0.0".to_string()));
    assert!(!h.contains(&"leaf@2.0.0".to_string()), "{h:?}");
}

#[test]
fn lockfile_selection_refresh_costs_only_304s() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let lock = work.path().join("Cargo.lock");
    let sum = |n: &str, v: &str| fx.get(n, v).cksum.clone();
    let lock_text = format!(
        "version = 3\n\n[[package]]\nname = \"consumer\"\nversion = \"0.1.0\"\n\n\
         [[package]]\nname = \"leaf\"\nversion = \"1.0.0\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n\
         [[package]]\nname = \"opt\"\nversion = \"0.1.0\"\n\
         source = \"sparse+https://index.crates.io/\"\nchecksum = \"{}\"\n\n\
         [[package]]\nname = \"gitdep\"\nversion = \"0.1.0\"\n\
         source = \"git+https://example.invalid/gitdep#abc\"\n",
        sum("leaf", "1.0.0"),
        sum("opt", "0.1.0")
    );
    std::fs::write(&lock, &lock_text).unwrap();
    let tmpl = fx.crates_url_template();
    let lock_s = lock.display().to_string();
    ok(&root, &["init", "--index-url", &sp.index_url()]);
    ok(
        &root,
        &["update", "--crates-url", &tmpl, "--lockfile", &lock_s],
    );
    assert_eq!(held(&root), ["leaf@1.0.0", "opt@0.1.0"]);
    let master = show(&root, "master").unwrap();

    // The refresh of an unchanged selection (remembered): only 304s.
    up.clear_requests();
    let started = std::time::Instant::now();
    let err = ok(&root, &["update", "--crates-url", &tmpl]);
    eprintln!("refresh: {:?}", started.elapsed());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    for r in &reqs {
        assert!(r.path.starts_with("/index/"), "{r:?}");
        assert!(r.header("if-none-match").is_some(), "{r:?}");
    }
    assert!(
        err.contains("3 index files requested") && err.contains("3 not modified"),
        "{err}"
    );
    assert_eq!(show(&root, "master").unwrap(), master);

    // A locked checksum that disagrees with the index: refused, named.
    std::fs::write(
        &lock,
        lock_text.replace(&sum("opt", "0.1.0"), &"0".repeat(64)),
    )
    .unwrap();
    let out = run(&root, &["pull", "--lockfile", &lock_s]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&lock_s) && stderr.contains("checksum of opt 0.1.0"),
        "{stderr}"
    );
}

#[test]
fn update_picks_up_a_new_version_and_propagates_a_yank() {
    let up = Upstream::start();
    let mut fx = fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let tmpl = fx.crates_url_template();
    ok(root, &["init", "--index-url", &sp.index_url()]);
    ok(
        root,
        &["update", "--crates-url", &tmpl, "--crate", "leaf@^1"],
    );
    assert_eq!(held(root), ["leaf@1.1.0"]);

    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("Add leaf 1.2.0");
    sp.sync(&fx);
    up.clear_requests();
    ok(root, &["update", "--crates-url", &tmpl]);
    assert_eq!(held(root), ["leaf@1.1.0", "leaf@1.2.0"]);
    // Only leaf's file changed: config.json answered 304.
    let leaf_get = up.requests_for("/index/le/af/leaf");
    assert_eq!(leaf_get.len(), 1);
    assert!(show(root, "master:le/af/leaf")
        .unwrap()
        .contains("\"vers\":\"1.2.0\""));

    fx.yank("leaf", "1.2.0");
    fx.commit("Yank leaf 1.2.0");
    sp.sync(&fx);
    ok(root, &["update", "--crates-url", &tmpl]);
    let served = show(root, "master:le/af/leaf").unwrap();
    let upstream = fx.read("le/af/leaf").unwrap();
    let yanked = upstream.lines().find(|l| l.contains("1.2.0")).unwrap();
    assert!(yanked.contains("\"yanked\":true"));
    assert!(served.contains(yanked), "{served}");
}

/// Live: mirror this project's own Cargo.lock from the real sparse index
/// and static.crates.io, serve it, and build the project offline from it.
/// Needs the network and cargo: `cargo test --test it live_ -- --ignored`.
#[test]
#[ignore = "live: reaches index.crates.io and static.crates.io"]
fn live_mirror_of_this_projects_lockfile_builds_offline() {
    use super::cargo_client::{cargo, cargo_home, ok as cargo_ok};
    let Some(bin) = super::rustup::require_client("cargo") else {
        return;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(&root)).unwrap();
    let started = std::time::Instant::now();
    ok(&root, &["init", "--index-url", "sparse"]);
    ok(&root, &["config", "--server-url", &server.url("")]);
    let lock = here.join("Cargo.lock").display().to_string();
    let err = ok(&root, &["update", "--lockfile", &lock]);
    let bytes: u64 = walk_sizes(&root.join("crates"));
    eprintln!(
        "live mirror: {:?}, {} crates, {bytes} bytes\n{err}",
        started.elapsed(),
        held(&root).len()
    );
    // A copy of the project, built offline against the mirror.
    let proj = work.path().join("project");
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::create_dir_all(&proj).unwrap();
        std::fs::copy(here.join(f), proj.join(f)).unwrap();
    }
    copy_dir(&here.join("src"), &proj.join("src"));
    for d in ["benches", "examples", "tests"] {
        if here.join(d).exists() {
            copy_dir(&here.join(d), &proj.join(d));
        }
    }
    let home = work.path().join("cargo-home");
    cargo_home(&home, &format!("sparse+{}", server.url("/index/")));
    let started = std::time::Instant::now();
    cargo_ok(
        "cargo fetch --locked",
        cargo(&bin, &proj, &home, "sparse", &["fetch", "--locked"]),
    );
    cargo_ok(
        "cargo build --offline --locked",
        cargo(
            &bin,
            &proj,
            &home,
            "sparse",
            &["build", "--offline", "--locked"],
        ),
    );
    eprintln!("live fetch + offline build: {:?}", started.elapsed());
}

fn walk_sizes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        n += if p.is_dir() {
            walk_sizes(&p)
        } else {
            e.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    n
}
