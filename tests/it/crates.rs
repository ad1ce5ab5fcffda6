//! `mirror crate` end to end through the binary, and the crates fixture
//! builder's own checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::crates::{self, CratesFixture};
use crate::support::tree;
use crate::support::upstream::{Fault, Upstream};

#[test]
fn fixture_builds_history_with_real_crates() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let heads = crates::standard_history(&mut fx);
    assert_eq!(heads.len(), 5);
    assert_eq!(fx.head(), heads[4]);
    // After the squash, one parentless commit.
    assert_eq!(fx.git(&["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        fx.git(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/master"
    );
    let leaf = fx.read("le/af/leaf").unwrap();
    assert_eq!(leaf.lines().count(), 3, "{leaf}");
    assert!(leaf.lines().next().unwrap().contains("\"yanked\":true"));
    assert!(fx.read("2/ab").is_none(), "removed version's file is gone");
    assert!(fx.read("config.json").unwrap().contains("auth-required"));
    for p in fx.published() {
        let served = up.url(&CratesFixture::crate_upstream_path(&p.name, &p.version));
        assert!(served.ends_with(".crate"));
        // A gzip'd tar with the package directory inside.
        let tar = flate2::read::GzDecoder::new(&p.bytes[..]);
        let names: Vec<String> = tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let root = format!("{}-{}", p.name, p.version);
        assert_eq!(
            names,
            [format!("{root}/Cargo.toml"), format!("{root}/src/lib.rs")]
        );
    }
    let app = fx.read("3/a/app").unwrap();
    assert!(
        app.contains("\"deps\":[{\"name\":\"leaf\",\"req\":\"^1\""),
        "{app}"
    );
    assert!(app.contains(&fx.get("app", "0.1.0").cksum));
}

/// Run `mirror --root ROOT crate ARGS` (the rustup tests' runner).
fn crate_cmd(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["crate"];
    all.extend_from_slice(args);
    crate::rustup::mirror(root, &all)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: Output) -> String {
    assert!(!out.status.success(), "mirror should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn index_dir(root: &Path) -> PathBuf {
    root.join("git/crates.io-index")
}

/// `git rev-parse` in a mirror's index; `None` when the ref is missing.
pub(crate) fn rev(root: &Path, spec: &str) -> Option<String> {
    let out = Command::new("git")
        .current_dir(index_dir(root))
        .args(["rev-parse", "--verify", "-q", spec])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Every file under `crates/` (but romt's config.toml), with its bytes.
fn crate_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = tree::files(&root.join("crates"), |_| true);
    out.remove("config.toml");
    out
}

/// The crate files the fixture's current index lists.
fn expected_tree(fx: &CratesFixture<'_>) -> BTreeMap<String, Vec<u8>> {
    fx.published()
        .filter(|p| {
            fx.read(&crates::index_path(&p.name))
                .is_some_and(|t| t.contains(&format!("\"vers\":\"{}\"", p.version)))
        })
        .map(|p| {
            (
                mirror::eco::crates::layout::crate_rel_path(&p.name, &p.version),
                p.bytes.clone(),
            )
        })
        .collect()
}

/// `git ls-tree -r` of a tree without config.json.
fn tree_listing(dir: &Path, spec: &str) -> String {
    crates::git(dir, &["ls-tree", "-r", spec])
        .lines()
        .filter(|l| !l.ends_with("\tconfig.json"))
        .map(|l| format!("{l}\n"))
        .collect()
}

struct Pair {
    near: tempfile::TempDir,
    far: tempfile::TempDir,
    carry: tempfile::TempDir,
    url: String,
}

impl Pair {
    fn new(fx: &CratesFixture<'_>) -> Pair {
        let pair = Pair {
            near: tempfile::tempdir().unwrap(),
            far: tempfile::tempdir().unwrap(),
            carry: tempfile::tempdir().unwrap(),
            url: fx.crates_url_template(),
        };
        ok(crate_cmd(
            pair.near(),
            &["init", "--index-url", &fx.index_url()],
        ));
        ok(crate_cmd(pair.far(), &["init-import"]));
        ok(crate_cmd(
            pair.far(),
            &["config", "--server-url", "http://mirror.invalid:8000"],
        ));
        pair
    }
    fn near(&self) -> &Path {
        self.near.path()
    }
    fn far(&self) -> &Path {
        self.far.path()
    }
    fn archive(&self, n: usize) -> String {
        self.carry
            .path()
            .join(format!("crates-{n}.tar.gz"))
            .display()
            .to_string()
    }
    /// export on the near side, import on the far side, then compare.
    fn cycle(&self, fx: &CratesFixture<'_>, n: usize) {
        let archive = self.archive(n);
        ok(crate_cmd(
            self.near(),
            &["export", "--crates-url", &self.url, "--archive", &archive],
        ));
        ok(crate_cmd(self.far(), &["import", "--archive", &archive]));
        self.check(fx);
    }
    fn check(&self, fx: &CratesFixture<'_>) {
        let want = expected_tree(fx);
        assert_eq!(
            crate_tree(self.near()).keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        assert_eq!(crate_tree(self.near()), want);
        assert_eq!(crate_tree(self.far()), want);
        // Near: master serves upstream exactly; HEAD names master.
        let near_idx = index_dir(self.near());
        assert_eq!(
            crates::git(&near_idx, &["rev-parse", "master^{tree}"]),
            fx.git(&["rev-parse", "HEAD^{tree}"])
        );
        assert_eq!(
            crates::git(&near_idx, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/master"
        );
        assert_eq!(rev(self.near(), "mark"), rev(self.near(), "master"));
        // Far: the near side's working arrived; master has upstream's files
        // and its own config.json.
        assert_eq!(
            rev(self.far(), "origin_master"),
            rev(self.near(), "working")
        );
        let far_idx = index_dir(self.far());
        assert_eq!(
            tree_listing(&far_idx, "master"),
            tree_listing(fx.path().as_path(), "HEAD")
        );
        let config = crates::git(&far_idx, &["show", "master:config.json"]);
        assert!(
            config.contains("http://mirror.invalid:8000/crates/{crate}/{crate}-{version}.crate"),
            "{config}"
        );
        assert_eq!(rev(self.far(), "mark"), rev(self.far(), "master"));
        assert_eq!(
            crates::git(&far_idx, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/master"
        );
    }
}

#[test]
fn export_import_cycles_follow_upstream_through_yank_remove_config_change_and_squash() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let pair = Pair::new(&fx);

    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf 1.0.0 and app 0.1.0");
    pair.cycle(&fx, 1);

    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    fx.publish("ab", "0.1.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    fx.commit("Add leaf 1.1.0, Mixed_Case, ab, abc");
    pair.cycle(&fx, 2);
    assert!(pair
        .far()
        .join("crates/mi/xe/Mixed_Case/Mixed_Case-0.1.0.crate")
        .is_file());

    // No new crates, but commits: the archive must still carry them (romt
    // packs nothing here yet moves mark, and the next import fails).
    fx.yank("leaf", "1.0.0");
    fx.remove("ab", "0.1.0");
    fx.commit("Yank leaf 1.0.0, remove ab 0.1.0");
    pair.cycle(&fx, 3);
    assert!(
        !pair.near().join("crates/2/ab").exists(),
        "pruned, with its directory"
    );
    assert!(!pair.far().join("crates/2/ab/ab-0.1.0.crate").exists());

    let config = fx.read("config.json").unwrap();
    fx.set_config(&config.replace("\n}", ",\n  \"auth-required\": false\n}"));
    fx.commit("Change config.json");
    pair.cycle(&fx, 4);
    let near_config = crates::git(&index_dir(pair.near()), &["show", "master:config.json"]);
    assert!(
        near_config.contains("auth-required"),
        "upstream's change arrives: {near_config}"
    );

    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("Add leaf 1.2.0");
    fx.squash();
    pair.cycle(&fx, 5);

    // Nothing new upstream: the archive imports as a no-op, marks stay.
    let (near_mark, far_mark) = (rev(pair.near(), "mark"), rev(pair.far(), "mark"));
    pair.cycle(&fx, 6);
    assert_eq!(rev(pair.near(), "mark"), near_mark);
    assert_eq!(rev(pair.far(), "mark"), far_mark);

    // And the next real change still flows.
    fx.publish("abc", "0.2.0", &[]);
    fx.commit("Add abc 0.2.0");
    pair.cycle(&fx, 7);

    // The bundle on disk is one plain git accepts.
    crates::git(
        &index_dir(pair.near()),
        &["bundle", "verify", "-q", "origin.bundle"],
    );
}

#[test]
fn update_online_matches_upstream_and_lists_the_range() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let heads = crates::standard_history(&mut fx);
    let root = tempfile::tempdir().unwrap();
    let url = fx.crates_url_template();
    ok(crate_cmd(
        root.path(),
        &["init", "--index-url", &fx.index_url()],
    ));
    ok(crate_cmd(root.path(), &["pull"]));
    let listed = ok(crate_cmd(root.path(), &["list", "--start", "0"]));
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "Mixed_Case@0.1.0",
            "abc@0.1.0",
            "app@0.1.0",
            "leaf@1.0.0",
            "leaf@1.1.0",
            "leaf@1.2.0"
        ]
    );
    let filtered = ok(crate_cmd(
        root.path(),
        &["list", "--filter", "leaf@1.[01].*"],
    ));
    assert_eq!(
        filtered.lines().collect::<Vec<_>>(),
        ["leaf@1.0.0", "leaf@1.1.0"]
    );
    ok(crate_cmd(
        root.path(),
        &["update", "--crates-url", &url, "-j", "4"],
    ));
    assert_eq!(crate_tree(root.path()), expected_tree(&fx));
    assert_eq!(rev(root.path(), "master"), Some(heads[4].clone()));
    // A second update asks the upstream for nothing.
    up.clear_requests();
    ok(crate_cmd(root.path(), &["update", "--crates-url", &url]));
    assert!(up.requests().is_empty(), "{:?}", up.requests());
}

/// A tree that ran `init` and `update` against the fixture, and the
/// `--crates-url` it used.
fn updated(fx: &CratesFixture<'_>) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let url = fx.crates_url_template();
    ok(crate_cmd(
        root.path(),
        &["init", "--index-url", &fx.index_url()],
    ));
    ok(crate_cmd(root.path(), &["update", "--crates-url", &url]));
    (root, url)
}

/// A first mirror whose plan is longer than the engine queues ahead of
/// its downloads (`QUEUE_AHEAD`): the range diff waits for the downloads
/// to catch up — on its own thread for the first index files, on the
/// thread pool for the rest — and every crate still arrives.
#[test]
fn a_plan_longer_than_the_engine_queue_downloads_every_crate() {
    let up = Upstream::start();
    up.set_request_log(false);
    let mut fx = CratesFixture::new(&up);
    let (crates, versions) = (100, mirror::fetch::QUEUE_AHEAD / 100 + 2);
    for c in 0..crates {
        for v in 0..versions {
            fx.publish(&format!("many{c:03}"), &format!("1.0.{v}"), &[]);
        }
    }
    fx.commit("Many versions");
    let (root, _) = updated(&fx);
    assert_eq!(rev(root.path(), "mark"), Some(fx.head()));
    assert_eq!(crate_tree(root.path()).len(), crates * versions);
}

#[test]
fn failed_crate_download_leaves_master_and_mark_and_a_rerun_fetches_it() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let (root, url) = updated(&fx);
    let before = rev(root.path(), "mark");
    assert!(before.is_some());

    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    fx.commit("Add leaf 1.1.0, abc");
    let bad = CratesFixture::crate_upstream_path("leaf", "1.1.0");
    up.fault(&bad, Fault::Status(404), 1);
    let err = failed(crate_cmd(root.path(), &["update", "--crates-url", &url]));
    assert!(
        err.contains("leaf-1.1.0.crate") && err.contains("404"),
        "{err}"
    );
    assert_eq!(rev(root.path(), "mark"), before);
    assert_eq!(rev(root.path(), "master"), before);

    ok(crate_cmd(root.path(), &["update", "--crates-url", &url]));
    assert_eq!(rev(root.path(), "mark"), Some(fx.head()));
    assert_eq!(crate_tree(root.path()), expected_tree(&fx));

    // --keep-going: the run goes on, lists the failure, exits non-zero.
    fx.publish("abc", "0.2.0", &[]);
    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("More");
    up.fault(
        &CratesFixture::crate_upstream_path("abc", "0.2.0"),
        Fault::Status(404),
        1,
    );
    let bad_list = root.path().join("bad.txt");
    let err = failed(crate_cmd(
        root.path(),
        &[
            "update",
            "--crates-url",
            &url,
            "--keep-going",
            "--bad-crates",
            bad_list.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("abc-0.2.0.crate"), "{err}");
    assert_eq!(std::fs::read_to_string(&bad_list).unwrap(), "abc@0.2.0\n");
    assert!(root
        .path()
        .join("crates/le/af/leaf/leaf-1.2.0.crate")
        .is_file());
}

#[test]
fn hostile_index_content_is_refused_and_nothing_is_written() {
    let sum = "0".repeat(64);
    for (path, line, needle) in [
        (
            "3/e/evl",
            format!(r#"{{"name":"../evl","vers":"1.0.0","cksum":"{sum}"}}"#),
            "crate name",
        ),
        (
            "3/e/evl",
            format!(r#"{{"name":"e/l","vers":"1.0.0","cksum":"{sum}"}}"#),
            "crate name",
        ),
        (
            "3/e/evl",
            format!(r#"{{"name":"evl","vers":"../../x","cksum":"{sum}"}}"#),
            "version",
        ),
        (
            "3/e/evl",
            r#"{"name":"evl","vers":"1.0.0","cksum":"../../etc"}"#.to_string(),
            "64 hex",
        ),
    ] {
        let up = Upstream::start();
        let fx = CratesFixture::new(&up);
        fx.write(path, &format!("{line}\n"));
        fx.commit("Hostile");
        let root = tempfile::tempdir().unwrap();
        ok(crate_cmd(
            root.path(),
            &["init", "--index-url", &fx.index_url()],
        ));
        let err = failed(crate_cmd(
            root.path(),
            &["update", "--crates-url", &fx.crates_url_template()],
        ));
        assert!(err.contains(path) && err.contains(needle), "{err}");
        assert!(crate_tree(root.path()).is_empty());
        assert!(up.requests().is_empty());
        assert_eq!(rev(root.path(), "mark"), None);
        let top: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        for name in &top {
            assert!(
                ["git", "crates", ".mirror"].contains(&name.as_str()),
                "{top:?}"
            );
        }
    }
}

/// A tar.gz laid out as romt 0.10 writes it: `ARCHIVE_FORMAT`, the bundle,
/// then the crates; no manifest.
fn romt_style_archive(path: &Path, near: &Path, crates: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, data).unwrap();
    };
    add("ARCHIVE_FORMAT", b"2\n");
    let bundle = std::fs::read(index_dir(near).join("origin.bundle")).unwrap();
    add("git/crates.io-index/origin.bundle", &bundle);
    for (rel, data) in crates {
        add(&format!("crates/{rel}"), data);
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn romt_layout_archive_imports_and_a_tampered_crate_publishes_nothing() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    fx.commit("Add two");
    let pair = Pair::new(&fx);
    let archive = pair.archive(1);
    ok(crate_cmd(
        pair.near(),
        &["export", "--crates-url", &pair.url, "--archive", &archive],
    ));
    let good: Vec<(String, Vec<u8>)> = crate_tree(pair.near()).into_iter().collect();

    // One crate's bytes changed: refused against the index the bundle
    // brings, before anything is published.
    let mut bad = good.clone();
    bad[0].1[20] ^= 0xff;
    let romt_bad = pair.carry.path().join("romt-bad.tar.gz");
    romt_style_archive(&romt_bad, pair.near(), &bad);
    let mark = rev(pair.far(), "mark");
    let master = rev(pair.far(), "master");
    let err = failed(crate_cmd(
        pair.far(),
        &["import", "--archive", romt_bad.to_str().unwrap()],
    ));
    assert!(
        err.contains("checksum mismatch") && err.contains(&bad[0].0),
        "{err}"
    );
    assert!(err.contains("nothing was published"), "{err}");
    assert!(crate_tree(pair.far()).is_empty());
    assert_eq!(rev(pair.far(), "mark"), mark);
    assert_eq!(rev(pair.far(), "master"), master);

    let romt_good = pair.carry.path().join("romt-good.tar.gz");
    romt_style_archive(&romt_good, pair.near(), &good);
    ok(crate_cmd(
        pair.far(),
        &["import", "--archive", romt_good.to_str().unwrap()],
    ));
    pair.check(&fx);
    assert!(
        std::fs::read_dir(pair.far().join(".mirror/staging"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no staging left behind"
    );
}

/// romt itself exports; mirror imports. Skipped (loudly) without romt:
/// it lives in bench/.venv (see bench/README.md) or `$ROMT`.
#[test]
fn archive_exported_by_romt_imports() {
    let romt = std::env::var_os("ROMT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/romt"));
    if !romt.is_file() {
        eprintln!("\n!!! SKIPPED: romt not found (set ROMT or create bench/.venv) !!!\n");
        return;
    }
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add two");
    let near = tempfile::tempdir().unwrap();
    let far = tempfile::tempdir().unwrap();
    let romt_run = |args: &[&str]| {
        let out = Command::new(&romt)
            .current_dir(near.path())
            .arg("crate")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "romt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let index = fx.path().display().to_string();
    let url = fx.crates_url_template();
    romt_run(&["init", "--index-url", &index]);
    romt_run(&["export", "--crates-url", &url]);
    let archive = near.path().join("crates.tar.gz");
    ok(crate_cmd(far.path(), &["init-import"]));
    ok(crate_cmd(
        far.path(),
        &["import", "--archive", archive.to_str().unwrap()],
    ));
    assert_eq!(crate_tree(far.path()), expected_tree(&fx));
    assert_eq!(
        tree_listing(&index_dir(far.path()), "master"),
        tree_listing(fx.path().as_path(), "HEAD")
    );
    // A second round: romt's next bundle builds on what was imported.
    fx.publish("leaf", "1.1.0", &[]);
    fx.commit("Add leaf 1.1.0");
    romt_run(&["export", "--crates-url", &url]);
    ok(crate_cmd(
        far.path(),
        &["import", "--archive", archive.to_str().unwrap()],
    ));
    assert_eq!(crate_tree(far.path()), expected_tree(&fx));
}

#[test]
fn export_keep_going_packs_what_it_has_and_the_far_side_names_the_missing_crate() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    fx.commit("Add two");
    let pair = Pair::new(&fx);
    up.fault(
        &CratesFixture::crate_upstream_path("abc", "0.1.0"),
        Fault::Status(404),
        1,
    );
    let archive = pair.archive(1);
    let err = failed(crate_cmd(
        pair.near(),
        &[
            "export",
            "--keep-going",
            "--crates-url",
            &pair.url,
            "--archive",
            &archive,
        ],
    ));
    assert!(err.contains("abc-0.1.0.crate"), "{err}");
    assert!(Path::new(&archive).is_file(), "the archive is written");
    assert_eq!(rev(pair.near(), "mark"), rev(pair.near(), "working"));

    // Without --keep-going the far side refuses to mark past the gap.
    let err = failed(crate_cmd(pair.far(), &["import", "--archive", &archive]));
    assert!(
        err.contains("abc@0.1.0") && err.contains("missing"),
        "{err}"
    );
    let far_mark = rev(pair.far(), "mark");
    assert_ne!(rev(pair.far(), "working"), far_mark);
    assert!(pair
        .far()
        .join("crates/le/af/leaf/leaf-1.0.0.crate")
        .is_file());
}

#[test]
fn missing_git_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root.path())
        .args(["crate", "init", "--index-url", "/nonexistent/index"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let err = failed(out);
    assert!(
        err.contains("the `git` program is needed to create the index")
            && err.contains("install git"),
        "{err}"
    );
    assert!(!index_dir(root.path()).exists(), "no half-made index left");
}

/// A bundle whose prerequisites the far side lacks (the archive of an
/// earlier trip never arrived): import refuses it, naming the missing
/// commits, and publishes nothing — the far side's branches and crates
/// stay; once the earlier archive is imported, the later one imports too.
#[test]
fn a_bundle_with_missing_prerequisites_is_refused_and_nothing_is_published() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let pair = Pair::new(&fx);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf 1.0.0");
    let (first, second) = (pair.archive(1), pair.archive(2));
    ok(crate_cmd(
        pair.near(),
        &["export", "--crates-url", &pair.url, "--archive", &first],
    ));
    fx.publish("leaf", "1.1.0", &[]);
    fx.commit("Add leaf 1.1.0");
    ok(crate_cmd(
        pair.near(),
        &["export", "--crates-url", &pair.url, "--archive", &second],
    ));

    let before = (
        rev(pair.far(), "master"),
        rev(pair.far(), "mark"),
        rev(pair.far(), "origin_master"),
    );
    let err = failed(crate_cmd(pair.far(), &["import", "--archive", &second]));
    assert!(
        err.contains("the bundle builds on commits this index lacks")
            && err.contains("an earlier archive")
            && err.contains(&second),
        "{err}"
    );
    assert_eq!(
        (
            rev(pair.far(), "master"),
            rev(pair.far(), "mark"),
            rev(pair.far(), "origin_master"),
        ),
        before,
        "no branch moved"
    );
    assert!(
        crate_tree(pair.far()).is_empty(),
        "no crate published: {:?}",
        crate_tree(pair.far()).keys().collect::<Vec<_>>()
    );

    ok(crate_cmd(pair.far(), &["import", "--archive", &first]));
    ok(crate_cmd(pair.far(), &["import", "--archive", &second]));
    pair.check(&fx);
}

/// The pid of a process that has exited.
pub(crate) fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Regression: a killed `crate import` left its work directory (every
/// crate of the archive) under `.mirror/staging/` for good; the bundle
/// module cleared the staging directory of the work directory it unpacked
/// into, not the tree's.
#[test]
fn killed_crate_import_left_its_staging_behind() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let pair = Pair::new(&fx);
    pair.cycle(&fx, 1);
    let left = pair
        .far()
        .join(format!(".mirror/staging/{}-crate-unpack-1", dead_pid()));
    std::fs::create_dir_all(left.join("crates/le/af/leaf")).unwrap();
    std::fs::write(left.join("crates/le/af/leaf/leaf-1.0.0.crate"), b"x").unwrap();
    fx.publish("leaf", "1.1.0", &[]);
    fx.commit("Add leaf 1.1.0");
    pair.cycle(&fx, 2);
    assert!(!left.exists(), "a killed import's staging is left behind");
}

/// Whether process `pid` is gone (or a zombie nobody reaps yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim()
            .starts_with('Z'),
    }
}

/// Regression: `kill -9` of a `crate` run left its `git fetch` running,
/// writing the index while the rerun (which took the lock the dead run
/// left) ran its own fetch: "cannot lock ref 'refs/remotes/origin/master':
/// is at X but expected Y".
#[test]
fn killed_crate_run_left_its_git_fetch_running() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let root = tempfile::tempdir().unwrap();
    ok(crate_cmd(
        root.path(),
        &["init", "--index-url", &fx.index_url()],
    ));
    // A git whose fetch never ends, and tells its pid.
    let real = crate::rustup::require_client("git").expect("git on PATH");
    let bin = tempfile::tempdir().unwrap();
    let pidfile = bin.path().join("pid");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = fetch ] && {{ echo $$ > '{}'; exec sleep 60; }}; done\nexec '{}' \"$@\"\n",
        pidfile.display(),
        real.display()
    );
    std::fs::write(bin.path().join("git"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.path().join("git"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut run = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root.path())
        .args(["crate", "pull"])
        .env("PATH", path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let git = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "git fetch never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    run.kill().unwrap();
    run.wait().unwrap();
    let killed = std::time::Instant::now();
    while !gone(git) && killed.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let alive = !gone(git);
    if alive {
        let _ = Command::new("kill").args(["-9", &git.to_string()]).status();
    }
    assert!(!alive, "git fetch outlived the killed run");
}

/// Regression: lock files a killed run (or its git) left in the index
/// (`refs/heads/mark.lock`, `packed-refs.lock`, …) made every later run
/// fail until someone removed them by hand.
#[test]
fn stale_git_locks_of_a_killed_run_failed_every_rerun() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let (root, url) = updated(&fx);
    let idx = index_dir(root.path());
    for lock in [
        "refs/heads/mark.lock",
        "refs/heads/master.lock",
        "refs/remotes/origin/master.lock",
        "packed-refs.lock",
        "shallow.lock",
    ] {
        std::fs::create_dir_all(idx.join(lock).parent().unwrap()).unwrap();
        std::fs::write(idx.join(lock), "").unwrap();
    }
    fx.publish("leaf", "1.1.0", &[]);
    let head = fx.commit("Add leaf 1.1.0");
    ok(crate_cmd(root.path(), &["update", "--crates-url", &url]));
    assert_eq!(rev(root.path(), "mark"), Some(head.clone()));
    assert_eq!(rev(root.path(), "master"), Some(head));
}

/// Regression: a run killed while git wrote the index bundle left
/// `.origin.bundle.tmp.<pid>` (as large as the bundle) in the index for
/// good.
#[test]
fn killed_export_left_its_temporary_bundle_behind() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let pair = Pair::new(&fx);
    // pid 2^22 + 1 is above Linux's pid_max: never alive.
    let left = index_dir(pair.near()).join(".origin.bundle.tmp.4194305");
    std::fs::write(&left, b"half a bundle").unwrap();
    pair.cycle(&fx, 1);
    assert!(!left.exists(), "a killed export's bundle is left behind");
}
