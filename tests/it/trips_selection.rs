//! Trips with a selection that changes: it only grows (an older version
//! of a crate already held included), drops only what `--remove` names,
//! and the far side holds exactly what the near side holds after every
//! trip — through a tree moved and copied between trips and an import
//! killed and run again. After each step `verify` passes on the far side,
//! `list --json` is equal on both sides and the real client still works.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::crates::CratesFixture;
use crate::support::upstream::Upstream;

use crate::crates_sparse::held;
use crate::trips::{fails, ok, run, Kind, Source};

/// The trees of a test: the near side, where archives are carried, and
/// far sides made fresh, moved or copied.
struct Trees {
    work: tempfile::TempDir,
}

impl Trees {
    fn new() -> Trees {
        let t = Trees {
            work: tempfile::tempdir().unwrap(),
        };
        for d in ["near", "carry", "far1"] {
            std::fs::create_dir_all(t.work.path().join(d)).unwrap();
        }
        t
    }
    fn near(&self) -> PathBuf {
        self.work.path().join("near")
    }
    /// A fresh far side.
    fn far(&self) -> PathBuf {
        self.work.path().join("far1")
    }
    /// Archive number `n`.
    fn archive(&self, n: u32) -> String {
        self.work
            .path()
            .join(format!("carry/{n}.tar.gz"))
            .display()
            .to_string()
    }
    /// `far` moved to a new place.
    fn moved(&self, far: &Path) -> PathBuf {
        let to = self.work.path().join("far2");
        std::fs::rename(far, &to).unwrap();
        to
    }
    /// A copy of `far` (`cp -a`); `far` stays.
    fn copied(&self, far: &Path) -> PathBuf {
        let to = self.work.path().join("far3");
        let st = Command::new("cp")
            .arg("-a")
            .arg(far)
            .arg(&to)
            .status()
            .unwrap();
        assert!(st.success(), "cp -a failed");
        to
    }
}

/// What `mirror ECO list --json FLAGS` prints (`eco` is ECO and its
/// FLAGS), as a set of its entries (each rendered as compact JSON).
pub(crate) fn listed(root: &Path, eco: &[&str]) -> BTreeSet<String> {
    let mut args = vec![eco[0], "list", "--json"];
    args.extend_from_slice(&eco[1..]);
    let out = run(root, &args);
    assert!(
        out.status.success(),
        "mirror {args:?} in {}:\n{}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mirror {args:?}: not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array()
        .unwrap_or_else(|| panic!("mirror {args:?}: not a JSON array: {v}"))
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Both sides list the same held versions.
pub(crate) fn same_listed(near: &Path, far: &Path, eco: &[&str]) -> BTreeSet<String> {
    let n = listed(near, eco);
    let f = listed(far, eco);
    assert_eq!(
        n,
        f,
        "{eco:?}: the near side ({}) and the far side ({}) hold different versions",
        near.display(),
        far.display()
    );
    n
}

/// Run `mirror ARGS` in `root` and kill it (SIGKILL) past the first step
/// it traces (a file published or written); returns whether it was killed
/// before it finished. The trace file is a FIFO: each step blocks opening
/// it until the test reads, so the run never gets far past that step.
pub(crate) fn killed_midway(root: &Path, args: &[&str]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trace");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success(), "mkfifo failed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .current_dir(root)
        .arg("--root")
        .arg(root)
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .env("MIRROR_TRACE_SYNC", &fifo)
        .env_remove("MIRROR_JOBS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_fifo = fifo.clone();
    let reader = std::thread::spawn(move || {
        // Blocks until the run traces its first step.
        let f = std::fs::File::open(&reader_fifo).unwrap();
        let mut line = String::new();
        let _ = BufReader::new(f).read_line(&mut line);
        let _ = tx.send(line);
    });
    let killed = loop {
        if rx
            .recv_timeout(std::time::Duration::from_millis(50))
            .is_ok()
        {
            let k = child.try_wait().unwrap().is_none();
            let _ = child.kill();
            break k;
        }
        if child.try_wait().unwrap().is_some() {
            // Finished without tracing: unblock the reader.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            break false;
        }
    };
    let _ = child.wait();
    reader.join().unwrap();
    killed
}

/// leaf 1.0.0 1.1.0 2.0.0, app 0.1.0 (depends on leaf ^1), other 0.1.0,
/// as a git or a sparse upstream.
fn source(up: &Upstream, kind: Kind) -> Source<'_> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("leaf", "2.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.publish("other", "0.1.0", &[]);
    fx.commit("Add crates");
    Source::over(up, kind, fx)
}

/// After a trip: the far side holds `want`, verifies, lists what the near
/// side lists, and cargo builds against it.
fn check(near: &Path, far: &Path, want: &[&str], step: &str) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(held(far), want, "{step}: the far side holds other crates");
    assert_eq!(held(near), want, "{step}: the near side holds other crates");
    ok(far, &["crate", "verify", "--start", "0"]);
    let listed = same_listed(near, far, &["crate"]);
    assert_eq!(listed.len(), want.len(), "{step}: {listed:?}");
    cargo_builds(far, step);
}

/// cargo resolves, fetches and builds a project on app and leaf from the
/// far side served by `mirror serve`.
fn cargo_builds(far: &Path, step: &str) {
    let Some(bin) = crate::rustup::require_client("cargo") else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far)).unwrap();
    ok(far, &["crate", "config", "--server-url", &server.url("")]);
    let work = tempfile::tempdir().unwrap();
    crate::cargo_client::round(
        &bin,
        work.path(),
        step,
        "sparse",
        &format!("sparse+{}", server.url("/index/")),
    );
}

fn import(far: &Path, archive: &str) -> String {
    ok(far, &["crate", "import", "--archive", archive])
}

fn selection_trips(kind: Kind) {
    let up = Upstream::start();
    let mut src = source(&up, kind);
    let trees = Trees::new();
    let near = trees.near();
    let far1 = trees.far();
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    ok(&far1, &["crate", "init-import"]);

    // First trip into a fresh tree.
    let a1 = trees.archive(1);
    src.export_with(
        &near,
        &a1,
        &[
            "--filter",
            "app",
            "--filter",
            "leaf@1.1.0",
            "--filter",
            "other",
        ],
        &[
            "--crate",
            "app",
            "--with-deps",
            "normal",
            "--crate",
            "other",
        ],
    );
    import(&far1, &a1);
    check(
        &near,
        &far1,
        &["app@0.1.0", "leaf@1.1.0", "other@0.1.0"],
        "first trip",
    );

    // Moved; the selection grows to every version of leaf, older ones
    // included, whose index file did not change.
    let far2 = trees.moved(&far1);
    let a2 = trees.archive(2);
    src.export_with(
        &near,
        &a2,
        &["--filter", "leaf"],
        &["--crate", "leaf", "--versions", "all"],
    );
    let out = import(&far2, &a2);
    assert!(!out.contains("removes"), "{out}");
    check(
        &near,
        &far2,
        &[
            "app@0.1.0",
            "leaf@1.0.0",
            "leaf@1.1.0",
            "leaf@2.0.0",
            "other@0.1.0",
        ],
        "grown selection",
    );

    // Copied; an explicit removal. A typo'd one is refused first.
    let far3 = trees.copied(&far2);
    let tmpl = src.fx.crates_url_template();
    let err = fails(
        &near,
        &["crate", "export", "--crates-url", &tmpl, "--remove", "othr"],
    );
    assert!(
        err.contains("--remove othr") && err.contains("other") && err.contains("spelling"),
        "{err}"
    );
    let a3 = trees.archive(3);
    let packed = src.export_with(&near, &a3, &["--remove", "other"], &["--remove", "other"]);
    assert!(packed.contains("removes 1 crates"), "{packed}");
    let out = import(&far3, &a3);
    assert!(
        out.contains("this archive removes 1 crates: other 0.1.0"),
        "{out}"
    );
    let after_removal = ["app@0.1.0", "leaf@1.0.0", "leaf@1.1.0", "leaf@2.0.0"];
    check(&near, &far3, &after_removal, "after --remove");

    // A run without selection arguments mirrors the remembered selection
    // (never the whole upstream), and an import killed midway is run again.
    src.publish("stranger", "0.1.0");
    src.publish("leaf", "1.2.0");
    let a4 = trees.archive(4);
    src.export_with(&near, &a4, &[], &[]);
    assert!(
        !held(&near).iter().any(|c| c.starts_with("stranger@")),
        "{:?}",
        held(&near)
    );
    let archive = a4.as_str();
    assert!(
        killed_midway(&far3, &["crate", "import", "--archive", archive]),
        "the import finished before it could be killed"
    );
    import(&far3, &a4);
    let mut want = after_removal.to_vec();
    want.push("leaf@1.2.0");
    let mut want_sorted = want.clone();
    want_sorted.sort();
    // cargo now resolves leaf 1.2.0: check the trees, not the client.
    assert_eq!(held(&far3), want_sorted);
    assert_eq!(held(&near), want_sorted);
    ok(&far3, &["crate", "verify", "--start", "0"]);
    same_listed(&near, &far3, &["crate"]);
}

#[test]
fn crate_selection_trips_git_upstream() {
    selection_trips(Kind::Git);
}

#[test]
fn crate_selection_trips_sparse_upstream() {
    selection_trips(Kind::Sparse);
}

/// A state file written before entries kept their own bound: one
/// `versions` and `with_deps` for every `--crate` is read as each entry's.
#[test]
fn sparse_state_with_one_policy_reads_per_entry() {
    let up = Upstream::start();
    let src = source(&up, Kind::Sparse);
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    let state = near.join(".mirror/crates-sparse.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(
        &state,
        r#"{"selection":{"locked":[],"crates":["app"],"versions":"all","with_deps":["normal"]},"validators":{},"selected":[]}"#,
    )
    .unwrap();
    let tmpl = src.fx.crates_url_template();
    ok(&near, &["crate", "update", "--crates-url", &tmpl]);
    assert_eq!(
        held(&near),
        ["app@0.1.0", "leaf@1.0.0", "leaf@1.1.0"],
        "app with its normal deps, every version"
    );
    // Another entry keeps its own bound; the first keeps its.
    ok(
        &near,
        &["crate", "update", "--crates-url", &tmpl, "--crate", "other"],
    );
    assert_eq!(
        held(&near),
        ["app@0.1.0", "leaf@1.0.0", "leaf@1.1.0", "other@0.1.0"]
    );
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"spec\": \"app\""), "{text}");
}

/// `(name, version)` of every entry `list --json` prints.
fn names_versions(listed: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = listed
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            format!(
                "{}@{}",
                v["name"].as_str().unwrap(),
                v["version"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// `mirror hex OPS --url UP --public-key TEST-KEY --installs none EXTRA`.
fn hex(root: &Path, up: &Upstream, ops: &[&str], extra: &[&str]) -> String {
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let mut args = vec!["hex"];
    args.extend_from_slice(ops);
    args.extend_from_slice(&["--url", &url, "--public-key", &key, "--installs", "none"]);
    args.extend_from_slice(extra);
    ok(root, &args)
}

/// After a Hex trip: the far side verifies, both sides list `want`, and
/// rebar3 compiles a project on alpha from the far side.
fn hex_check(up: &Upstream, near: &Path, far: &Path, want: &[&str], step: &str) {
    hex(far, up, &["verify"], &[]);
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let listed = same_listed(near, far, &["hex", "--public-key", &key]);
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names_versions(&listed), want, "{step}");
    let Some(rebar3) = crate::rustup::require_client("rebar3") else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far)).unwrap();
    let home = tempfile::tempdir().unwrap();
    crate::hex::rebar3_home(home.path());
    let project = home.path().join("proj");
    crate::hex::rebar_project(&project, "alpha", "~> 1.0");
    let out = crate::hex::rebar3(
        &rebar3,
        home.path(),
        &project,
        &server.url("/hex"),
        &["compile"],
    );
    assert!(out.status.success(), "{step}: rebar3 compile failed");
    server.stop().unwrap();
}

#[test]
fn hex_selection_trips() {
    use crate::support::hex::{rel, HexRepo};
    let up = Upstream::start();
    let mut repo = HexRepo::sample();
    repo.publish(&up);
    let trees = Trees::new();
    let near = trees.near();
    let archive = |n: u32| trees.archive(n);

    // First trip into a fresh tree.
    let far1 = trees.far();
    let a1 = archive(1);
    hex(
        &near,
        &up,
        &["export"],
        &[
            "--package",
            "alpha",
            "--versions",
            "latest",
            "--with-deps",
            "--package",
            "gamma",
            "--archive",
            &a1,
        ],
    );
    hex(&far1, &up, &["import"], &["--archive", &a1]);
    hex_check(
        &up,
        &near,
        &far1,
        &["alpha@1.1.0", "beta@2.1.0", "gamma@0.1.0"],
        "first trip",
    );

    // Moved; the selection grows to every version of beta (an older one
    // of a package held); alpha and gamma stay.
    let far2 = trees.moved(&far1);
    let a2 = archive(2);
    hex(
        &near,
        &up,
        &["export"],
        &["--package", "beta", "--versions", "all", "--archive", &a2],
    );
    hex(&far2, &up, &["import"], &["--archive", &a2]);
    hex_check(
        &up,
        &near,
        &far2,
        &["alpha@1.1.0", "beta@2.0.0", "beta@2.1.0", "gamma@0.1.0"],
        "grown selection",
    );

    // Copied; an explicit removal (a typo'd one is refused first).
    let far3 = trees.copied(&far2);
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let err = fails(
        &near,
        &[
            "hex",
            "export",
            "--url",
            &url,
            "--public-key",
            &key,
            "--installs",
            "none",
            "--remove",
            "gama",
        ],
    );
    assert!(
        err.contains("--remove gama") && err.contains("gamma") && err.contains("spelling"),
        "{err}"
    );
    let a3 = archive(3);
    hex(
        &near,
        &up,
        &["export"],
        &["--remove", "gamma", "--archive", &a3],
    );
    let out = hex(&far3, &up, &["import"], &["--archive", &a3]);
    assert!(
        out.contains(
            "this archive removes 2 files: hex/packages/gamma, hex/tarballs/gamma-0.1.0.tar"
        ),
        "{out}"
    );
    let kept = ["alpha@1.1.0", "beta@2.0.0", "beta@2.1.0"];
    hex_check(&up, &near, &far3, &kept, "after --remove");

    // Without selection arguments: the remembered selection, not the
    // whole upstream (delta is new upstream, beta has a new release);
    // the import is killed midway and run again.
    repo.add("delta", vec![rel("0.1.0", &[])]);
    repo.add_release("beta", rel("2.2.0", &[]));
    repo.publish(&up);
    let a4 = archive(4);
    hex(&near, &up, &["export"], &["--archive", &a4]);
    let key_arg = key.clone();
    assert!(
        killed_midway(
            &far3,
            &["hex", "import", "--archive", &a4, "--public-key", &key_arg]
        ),
        "the import finished before it could be killed"
    );
    hex(&far3, &up, &["import"], &["--archive", &a4]);
    hex_check(
        &up,
        &near,
        &far3,
        &["alpha@1.1.0", "beta@2.0.0", "beta@2.1.0", "beta@2.2.0"],
        "after a killed import",
    );
}

/// `mirror arch OPS --url URL --repo core --keyring TEST-KEY EXTRA`.
fn arch(root: &Path, up: &Upstream, ops: &[&str], extra: &[&str]) -> String {
    let url = up.url("m/$repo/os/$arch");
    let key = crate::support::keys::TestKey::Signing
        .public_path()
        .display()
        .to_string();
    let mut args = vec!["arch"];
    args.extend_from_slice(ops);
    args.extend_from_slice(&["--url", &url, "--repo", "core", "--keyring", &key]);
    args.extend_from_slice(extra);
    ok(root, &args)
}

/// After an Arch trip: the far side verifies, both sides list `want`, and
/// pacman downloads `fetch` (with what it depends on) from the far side.
fn arch_check(
    up: &Upstream,
    near: &Path,
    far: &Path,
    want: &[&str],
    fetch: &[&str],
    files: &std::collections::BTreeMap<String, Vec<u8>>,
    step: &str,
) {
    arch(far, up, &["verify"], &[]);
    let listed = same_listed(near, far, &["arch"]);
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names_versions(&listed), want, "{step}");
    let Some(clients) = crate::arch::pacman_clients() else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(far)).unwrap();
    crate::arch::pacman_fetches(&clients, &server.url(""), fetch, files);
    server.stop().unwrap();
}

#[test]
fn arch_selection_trips() {
    use crate::support::arch::{publish, Pkg};
    let up = Upstream::start();
    let mut world = Pkg::new("world", "2.0-1");
    world.depends = vec!["hello>=1.0".into()];
    let mut pkgs = vec![
        Pkg::new("hello", "1.0-1"),
        world,
        Pkg::new("lonely", "1-1"),
        Pkg::new("solo", "1-1"),
    ];
    let repo = publish(&up, "m", "core", &pkgs);
    let pick = |names: &[&str]| -> std::collections::BTreeMap<String, Vec<u8>> {
        repo.files
            .iter()
            .filter(|(f, _)| names.iter().any(|n| f.starts_with(&format!("{n}-"))))
            .map(|(f, b)| (f.clone(), b.clone()))
            .collect()
    };
    let trees = Trees::new();
    let near = trees.near();
    let archive = |n: u32| trees.archive(n);

    // First trip into a fresh tree.
    let far1 = trees.far();
    let a1 = archive(1);
    arch(
        &near,
        &up,
        &["export"],
        &["--package", "world", "--archive", &a1],
    );
    arch(&far1, &up, &["import"], &["--archive", &a1]);
    arch_check(
        &up,
        &near,
        &far1,
        &["hello@1.0-1", "world@2.0-1"],
        &["world"],
        &pick(&["world", "hello"]),
        "first trip",
    );

    // Moved; the selection grows: world and hello stay.
    let far2 = trees.moved(&far1);
    let a2 = archive(2);
    arch(
        &near,
        &up,
        &["export"],
        &["--package", "lonely", "--archive", &a2],
    );
    arch(&far2, &up, &["import"], &["--archive", &a2]);
    arch_check(
        &up,
        &near,
        &far2,
        &["hello@1.0-1", "lonely@1-1", "world@2.0-1"],
        &["world", "lonely"],
        &pick(&["world", "hello", "lonely"]),
        "grown selection",
    );

    // Copied; an explicit removal.
    let far3 = trees.copied(&far2);
    let a3 = archive(3);
    arch(
        &near,
        &up,
        &["export"],
        &["--remove", "lonely", "--archive", &a3],
    );
    let out = arch(&far3, &up, &["import"], &["--archive", &a3]);
    assert!(out.contains("this archive removes 2 files"), "{out}");
    let lonely = Pkg::new("lonely", "1-1").filename();
    assert!(
        !far3
            .join(format!(
                "archlinux/core/os/{}/{lonely}",
                crate::support::arch::ARCH
            ))
            .exists(),
        "{lonely} is still on the far side"
    );
    arch_check(
        &up,
        &near,
        &far3,
        &["hello@1.0-1", "world@2.0-1"],
        &["world"],
        &pick(&["world", "hello"]),
        "after --remove",
    );

    // Without selection arguments: the remembered selection (stranger is
    // new upstream, hello has a new release); the import is killed midway
    // and run again.
    pkgs[0] = Pkg::new("hello", "1.1-1");
    pkgs.push(Pkg::new("stranger", "1-1"));
    let repo2 = publish(&up, "m", "core", &pkgs);
    let a4 = archive(4);
    arch(&near, &up, &["export"], &["--archive", &a4]);
    let key = crate::support::keys::TestKey::Signing
        .public_path()
        .display()
        .to_string();
    assert!(
        killed_midway(
            &far3,
            &["arch", "import", "--archive", &a4, "--keyring", &key]
        ),
        "the import finished before it could be killed"
    );
    arch(&far3, &up, &["import"], &["--archive", &a4]);
    let files: std::collections::BTreeMap<String, Vec<u8>> = repo2
        .files
        .iter()
        .filter(|(f, _)| f.starts_with("world-") || f.starts_with("hello-1.1"))
        .map(|(f, b)| (f.clone(), b.clone()))
        .collect();
    arch_check(
        &up,
        &near,
        &far3,
        &["hello@1.1-1", "world@2.0-1"],
        &["world"],
        &files,
        "after a killed import",
    );
}

/// Every refusal of a selection change says what, why and what to do,
/// and changes nothing.
#[test]
fn selection_changes_that_cannot_apply_are_refused_with_what_to_do() {
    let up = Upstream::start();
    let src = source(&up, Kind::Git);
    let trees = Trees::new();
    let near = trees.near();
    let tmpl = src.fx.crates_url_template();
    ok(&near, &["crate", "init", "--index-url", &src.index_url()]);
    // A partial tree made before filters were remembered: a download
    // without them would mirror the whole upstream.
    std::fs::write(near.join("crates/PARTIAL"), "# partial\n").unwrap();
    let err = fails(&near, &["crate", "update", "--crates-url", &tmpl]);
    assert!(
        err.contains("partial mirror") && err.contains("remembers no --filter"),
        "{err}"
    );
    assert!(held(&near).is_empty(), "{:?}", held(&near));
    ok(
        &near,
        &[
            "crate",
            "update",
            "--crates-url",
            &tmpl,
            "--filter",
            "other",
        ],
    );
    assert_eq!(held(&near), ["other@0.1.0"]);
    // Nothing given to replace with; a drop in a run that cannot apply it.
    let err = fails(
        &near,
        &[
            "crate",
            "update",
            "--crates-url",
            &tmpl,
            "--replace-selection",
        ],
    );
    assert!(
        err.contains("--replace-selection: no new selection given") && err.contains("--filter"),
        "{err}"
    );
    let err = fails(&near, &["crate", "pack", "--remove", "other"]);
    assert!(
        err.contains("which download applies") && err.contains("add `download`"),
        "{err}"
    );
    // The only pattern dropped would mean the whole upstream.
    let err = fails(
        &near,
        &[
            "crate",
            "update",
            "--crates-url",
            &tmpl,
            "--remove",
            "other",
        ],
    );
    assert!(err.contains("would be empty"), "{err}");
    assert_eq!(held(&near), ["other@0.1.0"]);
    // --replace-selection: the new selection only; what it drops goes.
    ok(
        &near,
        &[
            "crate",
            "update",
            "--crates-url",
            &tmpl,
            "--replace-selection",
            "--filter",
            "app",
        ],
    );
    assert_eq!(held(&near), ["app@0.1.0"]);
}

/// A partial Hex or Arch tree made before selections were remembered is
/// never widened to the whole upstream by a run without a selection: it
/// is refused, saying what to give; a typo'd --remove is refused too.
#[test]
fn hex_and_arch_partial_trees_without_a_remembered_selection_are_not_widened() {
    use crate::support::arch::{publish, Pkg};
    use crate::support::hex::HexRepo;
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    publish(
        &up,
        "m",
        "core",
        &[Pkg::new("hello", "1.0-1"), Pkg::new("lonely", "1-1")],
    );
    let trees = Trees::new();
    let near = trees.near();
    hex(&near, &up, &["download"], &["--package", "gamma"]);
    arch(&near, &up, &["download"], &["--package", "hello"]);
    for eco in ["hex", "arch"] {
        std::fs::remove_file(near.join(format!(".mirror/{eco}-selection.json"))).unwrap();
    }
    let before = crate::support::tree::paths(&near, |p| p != ".mirror/lock");
    let url = up.url("hex");
    let key = crate::support::hex::key_path("hex-test.pub.pem")
        .display()
        .to_string();
    let err = fails(
        &near,
        &[
            "hex",
            "download",
            "--url",
            &url,
            "--public-key",
            &key,
            "--installs",
            "none",
        ],
    );
    assert!(
        err.contains("partial hex mirror") && err.contains("remembers no selection"),
        "{err}"
    );
    let arch_url = up.url("m/$repo/os/$arch");
    let keyring = crate::support::keys::TestKey::Signing
        .public_path()
        .display()
        .to_string();
    let err = fails(
        &near,
        &[
            "arch",
            "download",
            "--url",
            &arch_url,
            "--repo",
            "core",
            "--keyring",
            &keyring,
        ],
    );
    assert!(
        err.contains("partial arch mirror") && err.contains("remembers no selection"),
        "{err}"
    );
    assert_eq!(
        crate::support::tree::paths(&near, |p| p != ".mirror/lock"),
        before,
        "a refused run wrote to the tree"
    );
    // Given once, the selection is remembered; a typo'd removal is refused.
    hex(&near, &up, &["download"], &["--package", "gamma"]);
    arch(&near, &up, &["download"], &["--package", "hello"]);
    let err = fails(
        &near,
        &[
            "arch",
            "download",
            "--url",
            &arch_url,
            "--repo",
            "core",
            "--keyring",
            &keyring,
            "--remove",
            "helo",
        ],
    );
    assert!(
        err.contains("--remove helo") && err.contains("hello") && err.contains("spelling"),
        "{err}"
    );
}
