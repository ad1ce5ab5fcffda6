//! Trips across the gap that must never break: far-side trees moved or
//! copied between imports, the first archive of a tree imported in any
//! order of `config` on either side, `pack` after `update`, and typo'd
//! selections refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::crates::{index_path, CratesFixture};
use crate::support::sparse::SparseUpstream;
use crate::support::tree;
use crate::support::upstream::Upstream;

pub(crate) fn run(root: &Path, args: &[&str]) -> Output {
    crate::rustup::mirror(root, args)
}

pub(crate) fn ok(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "mirror {args:?} failed:\n{stderr}");
    stderr
}

pub(crate) fn fails(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "mirror {args:?} should have failed:\n{stderr}"
    );
    stderr
}

/// The index file of `name` in the far side's published `master`.
fn published(root: &Path, name: &str) -> String {
    let out = Command::new("git")
        .current_dir(root.join("git/crates.io-index"))
        .args(["show", &format!("master:{}", index_path(name))])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the near side's crates come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Git,
    Sparse,
}

/// An upstream index of either kind over one fixture.
pub(crate) struct Source<'a> {
    pub(crate) kind: Kind,
    pub(crate) fx: CratesFixture<'a>,
    sparse: SparseUpstream<'a>,
}

impl<'a> Source<'a> {
    fn new(up: &'a Upstream, kind: Kind) -> Source<'a> {
        let mut fx = CratesFixture::new(up);
        fx.publish("leaf", "1.0.0", &[]);
        fx.commit("Add leaf 1.0.0");
        Source::over(up, kind, fx)
    }
    /// `fx` (committed) served as a git or a sparse upstream.
    pub(crate) fn over(up: &'a Upstream, kind: Kind, fx: CratesFixture<'a>) -> Source<'a> {
        let sparse = SparseUpstream::new(up);
        sparse.sync(&fx);
        Source { kind, fx, sparse }
    }
    pub(crate) fn index_url(&self) -> String {
        match self.kind {
            Kind::Git => self.fx.index_url(),
            Kind::Sparse => self.sparse.index_url(),
        }
    }
    /// A new version of leaf upstream.
    fn grow(&mut self, version: &str) {
        self.publish("leaf", version);
    }
    /// A new crate version upstream (no dependencies), committed.
    pub(crate) fn publish(&mut self, name: &str, version: &str) {
        self.fx.publish(name, version, &[]);
        self.fx.commit(&format!("Add {name} {version}"));
        self.sparse.sync(&self.fx);
    }
    /// `export` arguments (a sparse upstream needs a selection).
    fn export(&self, near: &Path, archive: &Path) {
        let archive = archive.to_str().unwrap();
        self.export_with(
            near,
            archive,
            &[],
            &["--crate", "leaf", "--versions", "all"],
        );
    }
    /// `crate export` with the selection arguments of this kind; its stderr.
    pub(crate) fn export_with(
        &self,
        near: &Path,
        archive: &str,
        git: &[&str],
        sparse: &[&str],
    ) -> String {
        let tmpl = self.fx.crates_url_template();
        let mut args = vec![
            "crate",
            "export",
            "--crates-url",
            &tmpl,
            "--archive",
            archive,
        ];
        args.extend(match self.kind {
            Kind::Git => git,
            Kind::Sparse => sparse,
        });
        ok(near, &args)
    }
}

fn import(far: &Path, archive: &Path) -> String {
    ok(
        far,
        &["crate", "import", "--archive", archive.to_str().unwrap()],
    )
}

fn check_far(far: &Path, versions: &[&str]) {
    let index = published(far, "leaf");
    for v in versions {
        assert!(
            index.contains(&format!("\"vers\":\"{v}\"")),
            "leaf {v} not published on the far side {}:\n{index}",
            far.display()
        );
        assert!(
            far.join(format!("crates/le/af/leaf/leaf-{v}.crate"))
                .is_file(),
            "leaf-{v}.crate missing on the far side"
        );
    }
    ok(far, &["crate", "verify", "--start", "0"]);
}

fn relocated_far_side_imports(kind: Kind) {
    let up = Upstream::start();
    let mut src = Source::new(&up, kind);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let carry = work.path().join("carry");
    std::fs::create_dir_all(&carry).unwrap();
    let far1 = work.path().join("far1");
    let far2 = work.path().join("far2");
    let far3 = work.path().join("far3");
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    ok(&far1, &["crate", "init-import"]);
    let a1 = carry.join("1.tar.gz");
    src.export(&near, &a1);
    import(&far1, &a1);
    check_far(&far1, &["1.0.0"]);

    // Moved: the old path no longer exists.
    std::fs::rename(&far1, &far2).unwrap();
    src.grow("1.1.0");
    let a2 = carry.join("2.tar.gz");
    src.export(&near, &a2);
    import(&far2, &a2);
    check_far(&far2, &["1.0.0", "1.1.0"]);

    // Copied: the old tree (and its old origin.bundle) stays.
    let status = Command::new("cp")
        .arg("-a")
        .arg(&far2)
        .arg(&far3)
        .status()
        .unwrap();
    assert!(status.success());
    // As a tree made before origins were relative: an absolute path to
    // the old tree's bundle, which still exists.
    crate::support::crates::git(
        &far3.join("git/crates.io-index"),
        &[
            "config",
            "remote.origin.url",
            far2.join("git/crates.io-index/origin.bundle")
                .to_str()
                .unwrap(),
        ],
    );
    src.grow("1.2.0");
    let a3 = carry.join("3.tar.gz");
    src.export(&near, &a3);
    import(&far3, &a3);
    check_far(&far3, &["1.0.0", "1.1.0", "1.2.0"]);
    // The copy's origin names its own bundle, absolute as romt needs it.
    let url = crate::support::crates::git(
        &far3.join("git/crates.io-index"),
        &["config", "remote.origin.url"],
    );
    assert_eq!(
        Path::new(url.trim()),
        far3.join("git/crates.io-index/origin.bundle")
    );
}

#[test]
fn moved_and_copied_far_side_imports_git_upstream() {
    relocated_far_side_imports(Kind::Git);
}

#[test]
fn moved_and_copied_far_side_imports_sparse_upstream() {
    relocated_far_side_imports(Kind::Sparse);
}

/// When `config` runs on the near side.
#[derive(Clone, Copy, Debug)]
enum NearConfig {
    Never,
    BeforeFirstExport,
    BetweenExports,
}

/// When `config` runs on the far side.
#[derive(Clone, Copy, Debug)]
enum FarConfig {
    Never,
    BeforeFirstImport,
    AfterFirstImport,
}

fn first_trip(kind: Kind, near_cfg: NearConfig, far_cfg: FarConfig) {
    let up = Upstream::start();
    let mut src = Source::new(&up, kind);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    let carry = work.path().join("carry");
    std::fs::create_dir_all(&carry).unwrap();
    let config = |root: &PathBuf, url: &str| {
        ok(root, &["crate", "config", "--server-url", url]);
    };
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    if let NearConfig::BeforeFirstExport = near_cfg {
        config(&near, "http://near.invalid:8000");
    }
    let a1 = carry.join("1.tar.gz");
    src.export(&near, &a1);
    ok(&far, &["crate", "init-import"]);
    if let FarConfig::BeforeFirstImport = far_cfg {
        config(&far, "http://far.invalid:8000");
    }
    import(&far, &a1);
    if let FarConfig::AfterFirstImport = far_cfg {
        config(&far, "http://far.invalid:8000");
    }
    check_far(&far, &["1.0.0"]);

    if let NearConfig::BetweenExports = near_cfg {
        config(&near, "http://near.invalid:8000");
    }
    src.grow("1.1.0");
    let a2 = carry.join("2.tar.gz");
    src.export(&near, &a2);
    import(&far, &a2);
    check_far(&far, &["1.0.0", "1.1.0"]);
    if !matches!(far_cfg, FarConfig::Never) {
        let out = Command::new("git")
            .current_dir(far.join("git/crates.io-index"))
            .args(["show", "master:config.json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("far.invalid"), "{text}");
    }
}

fn every_order(kind: Kind) {
    for near_cfg in [
        NearConfig::Never,
        NearConfig::BeforeFirstExport,
        NearConfig::BetweenExports,
    ] {
        for far_cfg in [
            FarConfig::Never,
            FarConfig::BeforeFirstImport,
            FarConfig::AfterFirstImport,
        ] {
            eprintln!("order: {kind:?} near {near_cfg:?} far {far_cfg:?}");
            first_trip(kind, near_cfg, far_cfg);
        }
    }
}

#[test]
fn first_archive_imports_in_every_config_order_git_upstream() {
    every_order(Kind::Git);
}

#[test]
fn first_archive_imports_in_every_config_order_sparse_upstream() {
    every_order(Kind::Sparse);
}

/// A far side that skipped an archive is told the range to pack and how.
#[test]
fn missing_archive_names_the_range_and_the_command() {
    let up = Upstream::start();
    let mut src = Source::new(&up, Kind::Git);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    let carry = work.path().join("carry");
    std::fs::create_dir_all(&carry).unwrap();
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    let a1 = carry.join("1.tar.gz");
    src.export(&near, &a1);
    src.grow("1.1.0");
    let a2 = carry.join("2.tar.gz");
    src.export(&near, &a2);
    ok(&far, &["crate", "init-import"]);
    let before = tree::paths(&far, |_| true);
    let err = fails(
        &far,
        &["crate", "import", "--archive", a2.to_str().unwrap()],
    );
    assert!(err.contains("mirror crate pack --start 0"), "{err}");
    assert_eq!(tree::paths(&far, |_| true), before);
    // The command it names makes the archive that was missing.
    let cmd = err.split('`').nth(1).unwrap();
    let earlier = carry.join("earlier.tar.gz");
    let args: Vec<&str> = cmd
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a == "EARLIER.tar.gz" {
                earlier.to_str().unwrap()
            } else {
                a
            }
        })
        .collect();
    ok(&near, &args);
    import(&far, &earlier);
    import(&far, &a2);
    check_far(&far, &["1.0.0", "1.1.0"]);
}

/// `update` then `pack`: the mark already moved; the message says so and
/// names the `pack --start` that carries what the update brought.
#[test]
fn pack_after_update_names_the_start_to_use() {
    let up = Upstream::start();
    let mut src = Source::new(&up, Kind::Git);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    let carry = work.path().join("carry");
    std::fs::create_dir_all(&carry).unwrap();
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    let a1 = carry.join("1.tar.gz");
    src.export(&near, &a1);
    let end1 = crate::crates::rev(&near, "mark").unwrap();
    src.grow("1.1.0");
    let tmpl = src.fx.crates_url_template();
    ok(&near, &["crate", "update", "--crates-url", &tmpl]);
    let a2 = carry.join("2.tar.gz");
    let err = ok(&near, &["crate", "pack", "--archive", a2.to_str().unwrap()]);
    assert!(err.contains("moved by `update`"), "{err}");
    let cmd = format!("mirror crate pack --start {end1}");
    assert!(err.contains(&cmd), "{err}");
    assert!(err.contains("mirror crate export"), "{err}");
    // The command named carries it.
    ok(
        &near,
        &[
            "crate",
            "pack",
            "--start",
            &end1,
            "--archive",
            a2.to_str().unwrap(),
        ],
    );
    ok(&far, &["crate", "init-import"]);
    import(&far, &a1);
    import(&far, &a2);
    check_far(&far, &["1.0.0", "1.1.0"]);
}

/// Run `mirror ARGS` in a fresh tree that must refuse it: non-zero exit,
/// the message names every `hint`, and the tree is as it was.
fn refused_untouched(root: &Path, args: &[&str], hints: &[&str]) {
    // The tree lock is taken by every run that may write.
    let listing = || {
        let mut l = tree::paths(root, |_| true);
        l.retain(|p| p != ".mirror/lock");
        l
    };
    let before = listing();
    let err = fails(root, args);
    for h in hints {
        assert!(err.contains(h), "{args:?}: no {h:?} in:\n{err}");
    }
    assert_eq!(listing(), before, "{args:?} wrote to the tree");
}

#[test]
fn typo_d_toolchain_target_and_component_are_refused_before_writing() {
    use crate::support::dist::{publish, STABLE};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    publish(
        &up,
        &STABLE,
        &["x86_64-unknown-linux-gnu", "wasm32-unknown-unknown"],
    );
    let root = tempfile::tempdir().unwrap();
    let url = up.url("dist");
    let key = TestKey::Signing.public_path().display().to_string();
    let base = [
        "toolchain",
        "download",
        "-s",
        "stable",
        "--url",
        &url,
        "--keyring",
        &key,
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    for (extra, hints) in [
        (
            &["-t", "x86_64-unknown-linux-gnux"][..],
            &["unknown target", "did you mean x86_64-unknown-linux-gnu"][..],
        ),
        (
            &["-t", "linux", "--cross", "wasm32-unknown-unknwn"][..],
            &["unknown target", "did you mean wasm32-unknown-unknown"][..],
        ),
        (
            &[
                "-t",
                "linux",
                "--profile",
                "minimal",
                "--components",
                "rust-srx",
            ][..],
            &["unknown component", "did you mean rust-src"][..],
        ),
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused_untouched(root.path(), &args, hints);
    }
    assert!(!root.path().join("dist/channel-rust-stable.toml").exists());
}

#[test]
fn typo_d_rustup_target_is_refused_before_writing() {
    let up = crate::rustup::fake_upstream();
    let root = tempfile::tempdir().unwrap();
    let url = up.url("rustup");
    refused_untouched(
        root.path(),
        &[
            "rustup",
            "download",
            "-s",
            "stable",
            "-t",
            "x86_64-unknown-linux-gnux",
            "--url",
            &url,
        ],
        &["unknown target", "did you mean x86_64-unknown-linux-gnu"],
    );
}

#[test]
fn typo_d_hex_package_is_refused_before_writing() {
    let up = Upstream::start();
    let repo = crate::support::hex::HexRepo::sample();
    repo.publish(&up);
    let root = tempfile::tempdir().unwrap();
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    refused_untouched(
        root.path(),
        &[
            "hex",
            "download",
            "--url",
            &url,
            "--public-key",
            &key,
            "--package",
            "alpah",
        ],
        &["unknown package \"alpah\"", "did you mean alpha"],
    );
}

#[test]
fn typo_d_arch_repository_architecture_and_package_are_refused_before_writing() {
    use crate::support::arch::{publish, Pkg};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    publish(&up, "m", "core", &[Pkg::new("hello", "1.0-1")]);
    publish(&up, "m", "extra", &[Pkg::new("world", "1.0-1")]);
    let root = tempfile::tempdir().unwrap();
    let url = up.url("m/$repo/os/$arch");
    let key = TestKey::Signing.public_path().display().to_string();
    let base = [
        "arch",
        "download",
        "--url",
        &url,
        "--keyring",
        &key,
        "--retries",
        "1",
    ];
    for (extra, hints) in [
        (
            &["--repo", "core,extar"][..],
            &["unknown repository \"extar\"", "did you mean extra"][..],
        ),
        (
            &["--repo", "core", "--arch", "x86-64"][..],
            &["unknown architecture \"x86-64\"", "did you mean x86_64"][..],
        ),
        (
            &["--repo", "core,extra", "--package", "wrold"][..],
            &["unknown package \"wrold\"", "did you mean world"][..],
        ),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        refused_untouched(root.path(), &args, hints);
    }
}

/// The `packed` mark of an ecosystem in `.mirror/state.json`.
fn packed_mark(root: &Path, eco: &str) -> String {
    let text = std::fs::read_to_string(root.join(".mirror/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["marks"][eco]["packed"].as_str().unwrap().to_string()
}

/// Hex and Arch: `update` then `pack` carries no package file; the
/// message says why and names `pack --start` and `export`.
fn pack_after_update_says_what_to_run(eco: &str, base: &[&str]) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let carry = tempfile::tempdir().unwrap();
    let archive = |n: &str| carry.path().join(n).display().to_string();
    let with = |ops: &[&str], extra: &[&str]| -> Vec<String> {
        std::iter::once(eco)
            .chain(ops.iter().copied())
            .chain(base.iter().copied())
            .chain(extra.iter().copied())
            .map(str::to_string)
            .collect()
    };
    let run_ok = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(r, &args)
    };
    run_ok(with(&["export"], &["--archive", &archive("1.tar.gz")]));
    let packed = packed_mark(r, eco);
    run_ok(with(&["update"], &[]));
    let err = run_ok(with(&["pack"], &["--archive", &archive("2.tar.gz")]));
    assert!(err.contains("moved after the last download"), "{err}");
    assert!(
        err.contains(&format!("mirror {eco} pack --start {packed}")),
        "{err}"
    );
    assert!(err.contains(&format!("mirror {eco} export")), "{err}");
    // The command named is accepted.
    run_ok(with(
        &["pack"],
        &["--start", &packed, "--archive", &archive("3.tar.gz")],
    ));
}

#[test]
fn hex_pack_after_update_says_what_to_run() {
    let up = Upstream::start();
    let repo = crate::support::hex::HexRepo::sample();
    repo.publish(&up);
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    pack_after_update_says_what_to_run("hex", &["--url", &url, "--public-key", &key]);
}

#[test]
fn arch_pack_after_update_says_what_to_run() {
    use crate::support::arch::{publish, Pkg};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    publish(&up, "m", "core", &[Pkg::new("hello", "1.0-1")]);
    let url = up.url("m/$repo/os/$arch");
    let key = TestKey::Signing.public_path().display().to_string();
    pack_after_update_says_what_to_run(
        "arch",
        &["--url", &url, "--keyring", &key, "--repo", "core"],
    );
}
