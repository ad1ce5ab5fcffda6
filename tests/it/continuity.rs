//! Archives are imported in order, for every ecosystem: the same archive
//! twice and an older one after a newer are no-ops that say so; an
//! archive whose start is not where the last import ended is a gap,
//! refused naming the range and the `pack --start` that makes it; a full
//! archive (`pack --start 0`) newer than the last import is taken; an
//! archive without a range (romt's) still unpacks, with a warning. For
//! crates also: an upstream squash is absorbed online, a foreign history
//! is refused on the far side unless `--allow-rewrite`, a changed `cksum`
//! of a published version is refused. After each step `verify` passes and
//! nothing refused or replayed changed what is served.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use mirror::bundle::{Manifest, Range, MANIFEST_NAME};

use crate::support::archive::{file, tar_gz, Raw};
use crate::support::tree;
use crate::support::upstream::Upstream;
use crate::trips::{check_far, fails, import, ok, Kind, Source};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn run_ok(root: &Path, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(root, &args)
}

fn run_fails(root: &Path, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(root, &args)
}

/// The range an archive carries (from its manifest, the first member).
fn range(archive: &Path) -> Range {
    let f = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    let mut first = tar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some(MANIFEST_NAME));
    let mut json = Vec::new();
    first.read_to_end(&mut json).unwrap();
    Manifest::from_json(&json)
        .unwrap()
        .range
        .unwrap_or_else(|| panic!("{} has no range", archive.display()))
}

/// Every file a tree serves, with its bytes (not `.mirror/`).
fn served(root: &Path) -> BTreeMap<String, Vec<u8>> {
    tree::files(root, |name| name != ".mirror")
}

/// `archive` as romt writes them: the same members, no manifest.
fn without_manifest(archive: &Path, out: &Path) {
    let f = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    let mut entries: Vec<Raw> = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path == MANIFEST_NAME || !e.header().entry_type().is_file() {
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        entries.push(file(&path, &data));
    }
    assert!(!entries.is_empty());
    std::fs::write(out, tar_gz(&entries)).unwrap();
}

/// One time-marked ecosystem (Hex, Arch, toolchain, rustup).
struct TimeEco<'a> {
    /// Its command.
    eco: &'a str,
    /// Arguments every run takes (upstream, keys).
    base: Vec<String>,
    /// Before trip `n` (1, 2, 3): publish what is new upstream; returns
    /// the selection that trip's `export` takes.
    grow: Box<dyn FnMut(usize) -> Vec<String> + 'a>,
}

impl TimeEco<'_> {
    fn args(&self, ops: &[&str], extra: &[String], archive: Option<&Path>) -> Vec<String> {
        let mut a = vec![self.eco.to_string()];
        a.extend(strings(ops));
        a.extend(extra.iter().cloned());
        a.extend(self.base.iter().cloned());
        if let Some(p) = archive {
            a.extend(["--archive".to_string(), p.display().to_string()]);
        }
        a
    }

    fn import(&self, far: &Path, archive: &Path) -> String {
        run_ok(far, &self.args(&["import"], &[], Some(archive)))
    }

    fn verify(&self, far: &Path) {
        run_ok(far, &self.args(&["verify"], &[], None));
    }

    /// The whole matrix.
    fn matrix(mut self) {
        let eco = self.eco.to_string();
        let work = tempfile::tempdir().unwrap();
        let near = work.path().join("near");
        let far = work.path().join("far");
        let a = |n: &str| work.path().join(format!("{n}.tar.gz"));
        // Three trips, each an `export` (download pack mark).
        for n in 1..=3 {
            let sel = (self.grow)(n);
            run_ok(
                &near,
                &self.args(&["export"], &sel, Some(&a(&n.to_string()))),
            );
        }
        let (r1, r2, r3) = (range(&a("1")), range(&a("2")), range(&a("3")));
        assert_eq!(r1.start, None, "{eco}: the first archive is a full one");
        assert_eq!(r2.start.as_deref(), Some(r1.end.as_str()), "{eco}");
        assert_eq!(r3.start.as_deref(), Some(r2.end.as_str()), "{eco}");

        self.import(&far, &a("1"));
        self.verify(&far);

        // Trip 3 before trip 2: a gap, refused, nothing published.
        let before = served(&far);
        let err = run_fails(&far, &self.args(&["import"], &[], Some(&a("3"))));
        let cmd = format!("mirror {eco} pack --start {}", r1.end);
        for want in [
            "gap",
            &format!("starts at {}", r2.end),
            &format!("ended at {}", r1.end),
            &cmd,
            "nothing was published",
        ] {
            assert!(err.contains(want), "{eco}: no {want:?} in:\n{err}");
        }
        assert_eq!(served(&far), before, "{eco}: a refused archive published");
        self.verify(&far);

        // The command named makes an archive that fills the gap.
        let fill = tempfile::tempdir().unwrap();
        let far_copy = fill.path().join("far");
        tree::copy_dir(&far, &far_copy);
        let fix = fill.path().join("fix.tar.gz");
        run_ok(
            &near,
            &self.args(&["pack", "--start", &r1.end], &[], Some(&fix)),
        );
        self.import(&far_copy, &fix);
        self.import(&far_copy, &a("3"));
        self.verify(&far_copy);

        // Trip 2, then trip 2 again: the same archive twice is a no-op.
        self.import(&far, &a("2"));
        self.verify(&far);
        let before = served(&far);
        let out = self.import(&far, &a("2"));
        assert!(out.contains("imported already"), "{eco}:\n{out}");
        assert_eq!(served(&far), before, "{eco}: a replay published");
        // An older archive after a newer: a no-op naming both ends.
        let out = self.import(&far, &a("1"));
        for want in ["older", &r1.end, &r2.end] {
            assert!(out.contains(want), "{eco}: no {want:?} in:\n{out}");
        }
        assert_eq!(served(&far), before, "{eco}: an older archive published");
        self.verify(&far);

        self.import(&far, &a("3"));
        self.verify(&far);

        // A full archive newer than the last import is taken.
        run_ok(
            &near,
            &self.args(&["pack", "--start", "0"], &[], Some(&a("full"))),
        );
        assert_eq!(range(&a("full")).start, None);
        self.import(&far, &a("full"));
        self.verify(&far);
        // romt's archives (no manifest) still unpack, with a warning.
        without_manifest(&a("full"), &a("romt"));
        let out = run_ok(&far, &self.args(&["unpack"], &[], Some(&a("romt"))));
        assert!(
            out.contains(&format!("the order of {eco} archives cannot be checked")),
            "{eco}:\n{out}"
        );
        self.verify(&far);
    }
}

#[test]
fn hex_archives_import_in_order() {
    use crate::support::hex::{key_path, rel, HexRepo};
    let up = Upstream::start();
    let key = key_path("hex-test.pub.pem").display().to_string();
    let url = up.url("hex");
    let mut repo = HexRepo::sample();
    let up_ref = &up;
    TimeEco {
        eco: "hex",
        base: strings(&["--url", &url, "--public-key", &key, "--installs", "none"]),
        grow: Box::new(move |n| {
            if n > 1 {
                repo.add(&format!("new{n}"), vec![rel("1.0.0", &[])]);
            }
            repo.publish(up_ref);
            Vec::new()
        }),
    }
    .matrix();
}

#[test]
fn arch_archives_import_in_order() {
    use crate::support::arch::{publish, Pkg};
    use crate::support::keys::TestKey;
    let up = Upstream::start();
    let url = up.url("m/$repo/os/$arch");
    let key = TestKey::Signing.public_path().display().to_string();
    let up_ref = &up;
    let mut pkgs = vec![Pkg::new("hello", "1.0-1")];
    TimeEco {
        eco: "arch",
        base: strings(&["--url", &url, "--keyring", &key, "--repo", "core"]),
        grow: Box::new(move |n| {
            if n > 1 {
                pkgs.push(Pkg::new(&format!("new{n}"), "1.0-1"));
            }
            publish(up_ref, "m", "core", &pkgs);
            Vec::new()
        }),
    }
    .matrix();
}

#[test]
fn toolchain_archives_import_in_order() {
    use crate::support::dist::dist_upstream;
    use crate::support::keys::TestKey;
    let up = dist_upstream(&["x86_64-unknown-linux-gnu"]);
    let url = up.url("dist");
    let key = TestKey::Signing.public_path().display().to_string();
    TimeEco {
        eco: "toolchain",
        base: strings(&["--url", &url, "--keyring", &key]),
        // One channel per trip; the upstream holds them all.
        grow: Box::new(|n| {
            let channel = ["stable", "beta", "nightly"][n - 1];
            strings(&["-s", channel, "-t", "linux", "--profile", "minimal"])
        }),
    }
    .matrix();
}

#[test]
fn rustup_archives_import_in_order() {
    let up = Upstream::start();
    let url = up.url("rustup");
    let up_ref = &up;
    TimeEco {
        eco: "rustup",
        base: strings(&["--url", &url]),
        grow: Box::new(move |n| {
            let version = ["1.27.1", "1.28.2", "1.29.0"][n - 1];
            crate::support::rustup::publish(up_ref, &[version], &["x86_64-unknown-linux-gnu"]);
            strings(&["-s", "stable", "-t", "linux"])
        }),
    }
    .matrix();
}

/// What a crates far side serves: the crate files, `master` and the
/// index bundle.
fn crates_served(far: &Path) -> (BTreeMap<String, Vec<u8>>, String, Vec<u8>) {
    let index = far.join("git/crates.io-index");
    (
        tree::files(&far.join("crates"), |_| true),
        crate::support::crates::git(&index, &["rev-parse", "master"]),
        std::fs::read(index.join("origin.bundle")).unwrap(),
    )
}

fn crates_matrix(kind: Kind) {
    let up = Upstream::start();
    let mut src = Source::new(&up, kind);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    let a = |n: &str| work.path().join(format!("{n}.tar.gz"));
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    ok(&far, &["crate", "init-import"]);
    src.export(&near, &a("1"));
    src.grow("1.1.0");
    src.export(&near, &a("2"));
    src.grow("1.2.0");
    src.export(&near, &a("3"));
    let (r1, r2, r3) = (range(&a("1")), range(&a("2")), range(&a("3")));
    assert_eq!(r2.start.as_deref(), Some(r1.end.as_str()));
    assert_eq!(r3.start.as_deref(), Some(r2.end.as_str()));

    import(&far, &a("1"));
    check_far(&far, &["1.0.0"]);

    // Trip 3 before trip 2.
    let before = crates_served(&far);
    let err = fails(
        &far,
        &["crate", "import", "--archive", a("3").to_str().unwrap()],
    );
    for want in [
        "gap",
        &format!("starts at {}", r2.end),
        &format!("ended at {}", r1.end),
        &format!("mirror crate pack --start {}", r1.end),
        "nothing was published",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
    assert_eq!(crates_served(&far), before);
    check_far(&far, &["1.0.0"]);

    // Trip 2 twice, then trip 1 again.
    import(&far, &a("2"));
    check_far(&far, &["1.0.0", "1.1.0"]);
    let before = crates_served(&far);
    let out = import(&far, &a("2"));
    assert!(out.contains("imported already"), "{out}");
    let out = import(&far, &a("1"));
    for want in ["older", &r1.end, &r2.end] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert_eq!(
        crates_served(&far),
        before,
        "a replay changed what is served"
    );
    check_far(&far, &["1.0.0", "1.1.0"]);
    import(&far, &a("3"));
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0"]);

    // Upstream squashes its history (a git index only has one): the
    // online side absorbs it, the next archive continues the last one.
    src.grow("1.3.0");
    if kind == Kind::Git {
        src.fx.squash();
    }
    src.export(&near, &a("4"));
    assert_eq!(range(&a("4")).start.as_deref(), Some(r3.end.as_str()));
    import(&far, &a("4"));
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0", "1.3.0"]);

    // Another online tree: its index history is not the one imported.
    src.grow("1.4.0");
    let other = work.path().join("other");
    ok(&other, &["crate", "init", "--index-url", &src.index_url()]);
    src.export(&other, &a("foreign"));
    let before = crates_served(&far);
    let err = fails(
        &far,
        &[
            "crate",
            "import",
            "--archive",
            a("foreign").to_str().unwrap(),
        ],
    );
    for want in [
        "foreign history",
        &range(&a("foreign")).end,
        &range(&a("4")).end,
        "--allow-rewrite",
        "nothing was published",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
    assert_eq!(crates_served(&far), before);
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0", "1.3.0"]);
    let out = ok(
        &far,
        &[
            "crate",
            "import",
            "--allow-rewrite",
            "--archive",
            a("foreign").to_str().unwrap(),
        ],
    );
    assert!(out.contains("--allow-rewrite"), "{out}");
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]);

    // romt's archives (no manifest) still unpack, with a warning.
    without_manifest(&a("foreign"), &a("romt"));
    let out = import(&far, &a("romt"));
    assert!(
        out.contains("the order of crates archives cannot be checked"),
        "{out}"
    );
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]);

    // Upstream changes the cksum of a published version.
    src.fx.remove("leaf", "1.3.0");
    src.fx.publish("leaf", "1.3.0", &[("serde", "^1")]);
    src.fx.commit("Rebuild leaf 1.3.0");
    src.sparse.sync(&src.fx);
    src.export(&other, &a("cksum"));
    let before = crates_served(&far);
    let published = mirror::verify::Sha256Digest::of(
        &std::fs::read(far.join("crates/le/af/leaf/leaf-1.3.0.crate")).unwrap(),
    );
    let carried = mirror::verify::Sha256Digest::of(&crate::support::crates::crate_file(
        "leaf",
        "1.3.0",
        &[("serde", "^1")],
    ));
    let err = fails(
        &far,
        &["crate", "import", "--archive", a("cksum").to_str().unwrap()],
    );
    for want in [
        "leaf 1.3.0".to_string(),
        published.to_string(),
        carried.to_string(),
        "nothing was published".to_string(),
    ] {
        assert!(err.contains(&want), "no {want:?} in:\n{err}");
    }
    assert_eq!(crates_served(&far), before);
    check_far(&far, &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]);
    cargo_fetches(&far, "1.4.0");
}

/// cargo, through `mirror serve` over the far side's sparse index,
/// fetches leaf `version` (its cksum checked against the served index).
fn cargo_fetches(far: &Path, version: &str) {
    use crate::cargo_client::{cargo, cargo_home, write};
    let Some(bin) = crate::rustup::require_client("cargo") else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far)).unwrap();
    ok(far, &["crate", "config", "--server-url", &server.url("")]);
    let work = tempfile::tempdir().unwrap();
    let (proj, home) = (work.path().join("project"), work.path().join("home"));
    write(
        &proj.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nleaf = \"={version}\"\n\n[workspace]\n"
        ),
    );
    write(&proj.join("src/main.rs"), "fn main() {}\n");
    cargo_home(&home, &format!("sparse+{}", server.url("/index/")));
    crate::cargo_client::ok(
        "cargo fetch",
        cargo(&bin, &proj, &home, "sparse", &["fetch"]),
    );
}

#[test]
fn crates_archives_import_in_order_git_upstream() {
    crates_matrix(Kind::Git);
}

#[test]
fn crates_archives_import_in_order_sparse_upstream() {
    crates_matrix(Kind::Sparse);
}
