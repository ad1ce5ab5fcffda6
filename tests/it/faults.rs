//! Interruptions: `kill -9` at seeded moments of every ecosystem's
//! `download`, `pack`, `unpack`/`import` and `mark`, with a reader polling
//! the tree the whole time.
//!
//! Each test prepares the tree an operation starts from (its *base*), times
//! one uninterrupted run of the operation on a copy (the *reference*), then
//! for each seed: a fresh copy of the base, the operation killed at a
//! moment spread over the measured run length, a rerun that must complete,
//! the ecosystem's `verify`, and the served tree equal to the reference.
//! What a reader may see meanwhile is derived from the base and the
//! reference alone ([`Expect`]), so one set of invariants serves every
//! ecosystem:
//! - a served file holds its bytes from before the run or from after it,
//!   never partial or unverified ones (temporaries and `.partial` files
//!   are dot-files or suffixed, and the server never hands them out);
//! - an index file (manifest, `release-stable.toml`, Hex `names`, Arch
//!   `.db`, the crates index's `master`) changes only once every data file
//!   of the finished run is published;
//! - `.mirror/state.json` always parses (marks are written atomically).
//!
//! `pack` is checked for what it leaves at `--archive` after the kill
//! (nothing, or a whole archive that unpacks and verifies) and for not
//! moving the mark; `export` may move the mark only once the archive
//! carrying the range up to it is whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::crates::rev;
use crate::rustup::mirror;
use crate::support::crates::CratesFixture;
use crate::support::hex::{key_path, rel, HexRepo};
use crate::support::keys::TestKey;
use crate::support::tree::{copy_dir, paths};
use crate::support::upstream::Upstream;
use crate::support::{arch, dist, rustup};

/// Kills per operation.
const SEEDS: u64 = 20;

/// Where `pack` and `export` write, relative to the tree (outside every
/// served directory).
const ARCHIVE: &str = "carry/bundle.tar.gz";

/// Delay of every upstream response, so downloads last long enough to be
/// interrupted in many places.
const UPSTREAM_DELAY: Duration = Duration::from_millis(2);

/// The served part of a tree: the directories a reader walks and which of
/// their files are indexes (published after every file they reference).
#[derive(Clone, Copy)]
struct Served {
    /// Top-level directories handed out by `mirror serve`.
    dirs: &'static [&'static str],
    /// Whether a path (relative to the root) is an index file.
    is_index: fn(&str) -> bool,
    /// Index files whose bytes are not ours to predict (git refs, a time
    /// of the last sync): not compared, but checked to change last.
    volatile: &'static [&'static str],
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

const RUSTUP: Served = Served {
    dirs: &["rustup"],
    is_index: |p| p == "rustup/release-stable.toml",
    volatile: &[],
};

const TOOLCHAIN: Served = Served {
    dirs: &["dist"],
    is_index: |p| file_name(p).starts_with("channel-rust-"),
    volatile: &[],
};

const HEX: Served = Served {
    dirs: &["hex"],
    is_index: |p| p == "hex/names" || p == "hex/versions",
    volatile: &[],
};

const ARCH: Served = Served {
    dirs: &["archlinux"],
    // core.db, core.files, their .tar.gz copies and signatures.
    is_index: |p| file_name(p).starts_with("core."),
    volatile: &["archlinux/lastsync"],
};

const CRATES: Served = Served {
    dirs: &["crates"],
    is_index: |_| false,
    volatile: &["git/crates.io-index/refs/heads/master"],
};

/// Files a run writes but nobody is handed: our temporaries
/// (`.<name>.tmp.<pid>`), partial downloads, hidden directories.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".partial")
}

/// The served files of `root`, relative to it (volatile ones left out).
fn served_paths(root: &Path, served: &Served) -> Vec<String> {
    let mut out = Vec::new();
    for dir in served.dirs {
        for rel in paths(&root.join(dir), |n| !is_temporary(n)) {
            let rel = format!("{dir}/{rel}");
            if !served.volatile.contains(&rel.as_str()) {
                out.push(rel);
            }
        }
    }
    out
}

/// The served files of `root` with their bytes.
fn served_files(root: &Path, served: &Served) -> BTreeMap<String, Vec<u8>> {
    served_paths(root, served)
        .into_iter()
        .filter_map(|rel| Some((rel.clone(), std::fs::read(root.join(&rel)).ok()?)))
        .collect()
}

/// The version of each file found good: (inode, size, mtime), so a
/// reader polling a tree reads only what changed since.
type Checked = HashMap<String, (u64, u64, i128)>;

fn version(meta: &std::fs::Metadata) -> (u64, u64, i128) {
    use std::os::unix::fs::MetadataExt;
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    (meta.ino(), meta.len(), mtime)
}

/// What a reader may see in a tree while an operation runs on it, taken
/// from the tree before the operation and the tree after an uninterrupted
/// run.
struct Expect {
    served: Served,
    /// Each served file a reader may see, with every content it may have.
    allowed: BTreeMap<String, Vec<Vec<u8>>>,
    /// The data files of the finished run.
    complete: Vec<String>,
    /// Index files as they were before the run (`None`: absent).
    indexes: BTreeMap<String, Option<Vec<u8>>>,
}

impl Expect {
    fn between(before: &Path, after: &Path, served: Served) -> Expect {
        let mut allowed: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        let old = served_files(before, &served);
        let new = served_files(after, &served);
        for (rel, bytes) in old.iter().chain(&new) {
            let seen = allowed.entry(rel.clone()).or_default();
            if !seen.contains(bytes) {
                seen.push(bytes.clone());
            }
        }
        let complete = new
            .keys()
            .filter(|p| !(served.is_index)(p))
            .cloned()
            .collect();
        let mut indexes: BTreeMap<String, Option<Vec<u8>>> = allowed
            .keys()
            .filter(|p| (served.is_index)(p))
            .map(|p| (p.clone(), old.get(p).cloned()))
            .collect();
        for r in served.volatile {
            indexes.insert(r.to_string(), std::fs::read(before.join(r)).ok());
        }
        Expect {
            served,
            allowed,
            complete,
            indexes,
        }
    }

    /// Every invariant a client of the served tree relies on that `root`
    /// breaks right now (empty when all is well).
    fn violations(&self, root: &Path) -> Vec<String> {
        self.check(root, &mut Checked::new())
    }

    /// [`Expect::violations`], reading only the files that changed since
    /// `checked` was last updated.
    fn check(&self, root: &Path, checked: &mut Checked) -> Vec<String> {
        let mut out = Vec::new();
        for rel in served_paths(root, &self.served) {
            let path = root.join(&rel);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if checked.get(&rel) == Some(&version(&meta)) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            match self.allowed.get(&rel) {
                None => out.push(format!("{rel} is published, but no run writes it")),
                Some(ok) if !ok.contains(&bytes) => out.push(format!(
                    "{rel} is published with other bytes ({} bytes)",
                    bytes.len()
                )),
                Some(_) => {
                    checked.insert(rel, version(&meta));
                }
            }
        }
        for (index, before) in &self.indexes {
            let now = std::fs::read(root.join(index)).ok();
            if now.is_some() && now != *before {
                for data in &self.complete {
                    if !root.join(data).is_file() {
                        out.push(format!("{index} changed before {data} was published"));
                    }
                }
            }
        }
        if let Err(e) = mirror::store::State::load(root) {
            out.push(format!("the state file is torn: {e:#}"));
        }
        out
    }
}

/// A reader polling a tree until told to stop.
struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<BTreeSet<String>>,
}

impl Watcher {
    fn start(root: &Path, expect: Arc<Expect>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut checked = Checked::new();
            while !flag.load(Ordering::Relaxed) {
                seen.extend(expect.check(&root, &mut checked));
                // Leave the cores to the run: what is published stays
                // published, so a slower poll still sees it.
                std::thread::sleep(Duration::from_micros(300));
            }
            seen
        });
        Watcher { stop, handle }
    }

    /// Stop polling; every violation seen.
    fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Start `mirror` with `args`, kill -9 it after `after`, wait; returns
/// its pid.
fn run_and_kill(root: &Path, args: &[String], after: Duration) -> u32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .env_remove("MIRROR_JOBS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
    child.id()
}

/// The kill moment of `seed`: a deterministic spread over `window`, the
/// measured length of an uninterrupted run, from its start to its end.
fn kill_moment(seed: u64, window: Duration) -> Duration {
    window.mul_f64(((seed * 7919 + 1000) % 1000) as f64 / 1000.0)
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn succeeds(root: &Path, args: &[String], what: &str) {
    let out = mirror(root, &strs(args));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An operation to interrupt.
struct Interrupt<'a> {
    /// What messages call it: `hex pack`.
    name: &'a str,
    /// The tree the operation starts from; every run works on a copy.
    base: &'a Path,
    /// The operation's arguments (after `--root ROOT`) on a tree.
    args: &'a dyn Fn(&Path) -> Vec<String>,
    /// The ecosystem's `verify` arguments.
    verify: Vec<String>,
    served: Served,
    /// Checks right after the kill, before the rerun: (tree, base).
    after_kill: &'a dyn Fn(&Path, &Path),
}

impl Interrupt<'_> {
    /// Time an uninterrupted run, then kill -9 the operation at [`SEEDS`]
    /// moments spread over that time, each on a fresh copy of the base,
    /// with a reader polling the tree; after each kill the invariants
    /// hold, a rerun completes, the tree verifies and equals the
    /// uninterrupted run's.
    fn run(&self) {
        let name = self.name;
        let reference = tempfile::tempdir().unwrap();
        copy_dir(self.base, reference.path());
        let started = Instant::now();
        succeeds(
            reference.path(),
            &(self.args)(reference.path()),
            &format!("{name}: the uninterrupted run failed"),
        );
        let window = started.elapsed();
        eprintln!("{name}: an uninterrupted run takes {window:?}");
        let expect = Arc::new(Expect::between(self.base, reference.path(), self.served));
        let want = served_files(reference.path(), &self.served);
        let all = Instant::now();
        for seed in 0..SEEDS {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            copy_dir(self.base, root);
            let args = (self.args)(root);
            let watcher = Watcher::start(root, expect.clone());
            let killed = run_and_kill(root, &args, kill_moment(seed, window));
            let at_kill = expect.violations(root);
            assert!(at_kill.is_empty(), "{name}, seed {seed}: {at_kill:?}");
            (self.after_kill)(root, self.base);
            succeeds(root, &args, &format!("{name}, seed {seed}: rerun failed"));
            let seen = watcher.finish();
            assert!(
                seen.is_empty(),
                "{name}, seed {seed}: {:?}",
                seen.iter().take(5).collect::<Vec<_>>()
            );
            succeeds(
                root,
                &self.verify,
                &format!("{name}, seed {seed}: verify failed after the rerun"),
            );
            assert!(
                served_files(root, &self.served) == want,
                "{name}, seed {seed}: the tree differs from an uninterrupted run's"
            );
            // Nothing of the killed run is left after the rerun: no
            // staging, no temporary (`.<name>.tmp.<pid>`) anywhere.
            let mut left: Vec<_> = std::fs::read_dir(root.join(".mirror/staging"))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            let suffix = format!(".tmp.{killed}");
            left.extend(
                paths(root, |_| true)
                    .into_iter()
                    .filter(|p| p.ends_with(&suffix))
                    .map(|p| root.join(p)),
            );
            assert!(
                left.is_empty(),
                "{name}, seed {seed}: the killed run left {left:?}"
            );
        }
        eprintln!("{name}: {SEEDS} kills in {:?}", all.elapsed());
    }
}

/// No check after the kill beyond the invariants.
fn nothing(_: &Path, _: &Path) {}

fn unpack_anywhere(archive: &Path) -> Result<mirror::bundle::UnpackSummary, String> {
    let scratch = tempfile::tempdir().unwrap();
    mirror::bundle::unpack(
        archive,
        scratch.path(),
        &mirror::bundle::UnpackOptions::default(),
        &mirror::report::NullReporter,
    )
    .map_err(|e| format!("{e:#}"))
}

/// The archive at [`ARCHIVE`], if any, is whole: every member there and
/// matching the manifest; and the same archive cut short anywhere is
/// refused, so a torn one could not pass for whole. Returns its manifest.
fn whole_archive(root: &Path) -> Option<mirror::bundle::Manifest> {
    let archive = root.join(ARCHIVE);
    let bytes = std::fs::read(&archive).ok()?;
    let summary = unpack_anywhere(&archive)
        .unwrap_or_else(|e| panic!("a killed pack left a torn archive: {e}"));
    let scratch = tempfile::tempdir().unwrap();
    let cut = scratch.path().join("cut.tar.gz");
    for len in [bytes.len() / 3, bytes.len() * 2 / 3, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        assert!(
            unpack_anywhere(&cut).is_err(),
            "the archive cut to {len} of {} bytes unpacks as whole",
            bytes.len()
        );
    }
    Some(summary.manifest.expect("our archives carry a manifest"))
}

/// After a killed `pack`: no torn archive, and the mark did not move (a
/// pack that finished may have recorded what it packed, `packed`, which
/// is not a mark).
fn pack_left_no_torn_archive_and_the_mark(root: &Path, base: &Path) {
    whole_archive(root);
    let marks = |r: &Path| {
        let text = std::fs::read(r.join(".mirror/state.json")).ok()?;
        let mut state: serde_json::Value = serde_json::from_slice(&text).unwrap();
        if let Some(marks) = state["marks"].as_object_mut() {
            for eco in marks.values_mut() {
                if let Some(eco) = eco.as_object_mut() {
                    eco.remove("packed");
                    eco.remove("pack_end");
                }
            }
        }
        Some(state)
    };
    assert!(marks(root) == marks(base), "a killed pack moved the mark");
}

/// A tree with `args` run on it.
fn prepared(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    succeeds(dir.path(), &owned(args), "preparing the base tree");
    dir
}

fn with_archive(args: &[&str], root: &Path) -> Vec<String> {
    let mut all = owned(args);
    all.push("--archive".into());
    all.push(root.join(ARCHIVE).display().to_string());
    all
}

/// Both sides of the gap after one crossing: a near tree that ran
/// `near_setup` then `export`, and a far tree that ran `far_setup` then
/// `import` of its archive. Upstream moves on afterwards: the operations
/// under test carry the next increment, and a `pack` or `export` under
/// test replaces the first archive (which a kill must leave whole).
struct Gap {
    near: tempfile::TempDir,
    far: tempfile::TempDir,
}

impl Gap {
    fn cross(
        near_setup: &[Vec<String>],
        export: &[String],
        far_setup: &[Vec<String>],
        import: &[String],
    ) -> Gap {
        let near = tempfile::tempdir().unwrap();
        let far = tempfile::tempdir().unwrap();
        let at_near = |args: &[String]| with_archive(&strs(args), near.path());
        for args in near_setup {
            succeeds(near.path(), args, "preparing the near side");
        }
        succeeds(near.path(), &at_near(export), "export");
        for args in far_setup {
            succeeds(far.path(), args, "preparing the far side");
        }
        succeeds(far.path(), &at_near(import), "import");
        Gap { near, far }
    }

    /// Export the next increment on the near side; returns the `import`
    /// arguments that carry it to the far side.
    fn next_import(&self, export: &[String], import: &[String]) -> Vec<String> {
        succeeds(
            self.near.path(),
            &with_archive(&strs(export), self.near.path()),
            "export",
        );
        with_archive(&strs(import), self.near.path())
    }
}

// ---------------------------------------------------------------- rustup

const VERSIONS: &str = "1.28.2,1.27.1";

/// Two rustup versions for `targets` upstream, and the `download` of
/// them.
fn rustup_upstream(targets: &[&str]) -> (Upstream, Vec<String>) {
    let up = Upstream::start();
    rustup::publish(&up, &["1.27.1"], targets);
    rustup::publish(&up, &["1.28.2"], targets);
    up.set_delay(UPSTREAM_DELAY);
    let url = up.url("rustup");
    let args = owned(&[
        "rustup",
        "-j",
        "4",
        "download",
        "-s",
        VERSIONS,
        "-t",
        &targets.join(","),
        "--url",
        &url,
    ]);
    (up, args)
}

#[test]
fn kill_9_during_download_never_publishes_a_bad_file_and_a_rerun_completes() {
    let (_up, download) = rustup_upstream(mirror::eco::rustup::ALL_KNOWN_TARGETS);
    let base = tempfile::tempdir().unwrap();
    Interrupt {
        name: "rustup download",
        base: base.path(),
        args: &|_| download.clone(),
        verify: owned(&["rustup", "verify"]),
        served: RUSTUP,
        after_kill: &nothing,
    }
    .run();
}

#[test]
fn kill_9_during_rustup_pack_never_leaves_a_torn_archive() {
    let (_up, download) = rustup_upstream(&mirror::eco::rustup::ALL_KNOWN_TARGETS[..16]);
    let base = prepared(&strs(&download));
    Interrupt {
        name: "rustup pack",
        base: base.path(),
        args: &|root| with_archive(&["rustup", "pack", "-s", "*"], root),
        verify: owned(&["rustup", "verify"]),
        served: RUSTUP,
        after_kill: &pack_left_no_torn_archive_and_the_mark,
    }
    .run();
}

#[test]
fn kill_9_during_unpack_never_publishes_a_bad_file_and_a_rerun_completes() {
    // Half the targets: each kill is followed by a whole rerun, and an
    // unpack of all of them takes seconds under load.
    let (_up, download) = rustup_upstream(&mirror::eco::rustup::ALL_KNOWN_TARGETS[..16]);
    let online = prepared(&strs(&download));
    let pack = with_archive(&["rustup", "pack"], online.path());
    succeeds(online.path(), &pack, "rustup pack");
    let unpack = with_archive(&["rustup", "unpack"], online.path());
    let base = tempfile::tempdir().unwrap();
    Interrupt {
        name: "rustup unpack",
        base: base.path(),
        args: &|_| unpack.clone(),
        verify: owned(&["rustup", "verify"]),
        served: RUSTUP,
        after_kill: &nothing,
    }
    .run();
}

// ------------------------------------------------------------- toolchain

/// `toolchain OPS... --url U --keyring K` for one stable release.
fn toolchain_args(up: &Upstream, ops: &[&str]) -> Vec<String> {
    let mut args = owned(&["toolchain"]);
    args.extend(owned(ops));
    args.extend(owned(&[
        "--url",
        &up.url("dist"),
        "--keyring",
        &TestKey::Signing.public_path().display().to_string(),
    ]));
    args
}

fn toolchain_upstream() -> Upstream {
    let up = Upstream::start();
    dist::publish(&up, &dist::STABLE, &["x86_64-unknown-linux-gnu"]);
    up.set_delay(UPSTREAM_DELAY);
    up
}

const TOOLCHAIN_SELECT: &[&str] = &["-s", "stable", "-t", "linux", "--profile", "minimal"];

fn toolchain_download(up: &Upstream) -> Vec<String> {
    let mut ops = vec!["-j", "4", "download"];
    ops.extend_from_slice(TOOLCHAIN_SELECT);
    toolchain_args(up, &ops)
}

fn toolchain_pack(up: &Upstream, root: &Path) -> Vec<String> {
    let mut args = toolchain_args(up, &["pack", "-s", "stable"]);
    args.extend(with_archive(&[], root));
    args
}

#[test]
fn kill_9_during_toolchain_download_never_publishes_a_bad_file() {
    let up = toolchain_upstream();
    let base = tempfile::tempdir().unwrap();
    Interrupt {
        name: "toolchain download",
        base: base.path(),
        args: &|_| toolchain_download(&up),
        verify: toolchain_args(&up, &["verify"]),
        served: TOOLCHAIN,
        after_kill: &nothing,
    }
    .run();
}

#[test]
fn kill_9_during_toolchain_pack_never_leaves_a_torn_archive() {
    let up = toolchain_upstream();
    let base = prepared(&strs(&toolchain_download(&up)));
    Interrupt {
        name: "toolchain pack",
        base: base.path(),
        args: &|root| toolchain_pack(&up, root),
        verify: toolchain_args(&up, &["verify"]),
        served: TOOLCHAIN,
        after_kill: &pack_left_no_torn_archive_and_the_mark,
    }
    .run();
}

#[test]
fn kill_9_during_toolchain_unpack_never_publishes_a_bad_file() {
    let up = toolchain_upstream();
    let online = prepared(&strs(&toolchain_download(&up)));
    succeeds(
        online.path(),
        &toolchain_pack(&up, online.path()),
        "toolchain pack",
    );
    let mut unpack = toolchain_args(&up, &["unpack"]);
    unpack.extend(with_archive(&[], online.path()));
    let base = tempfile::tempdir().unwrap();
    Interrupt {
        name: "toolchain unpack",
        base: base.path(),
        args: &|_| unpack.clone(),
        verify: toolchain_args(&up, &["verify"]),
        served: TOOLCHAIN,
        after_kill: &nothing,
    }
    .run();
}

// ------------------------------------------------------------ hex, arch

/// An ecosystem whose increments are the files written since a time mark
/// in `.mirror/state.json` (Hex, Arch): the same operations, the same
/// tests.
struct TimeMarked {
    eco: &'static str,
    /// `<eco> OPS... <upstream and key options>`.
    args: fn(&Upstream, &[&str]) -> Vec<String>,
    served: Served,
    /// The upstream and both sides after one crossing; upstream has moved
    /// on since.
    trees: fn() -> (Upstream, Gap),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Download,
    Pack,
    Import,
    Mark,
}

impl TimeMarked {
    /// Interrupt `op`: `download`, `pack` and `mark` on the near side
    /// (`pack` after a download), `import` of the next increment on the
    /// far side.
    fn interrupt(&self, op: Op) {
        let (up, gap) = (self.trees)();
        let args = |ops: &[&str]| (self.args)(&up, ops);
        let name = format!("{} {op:?}", self.eco).to_lowercase();
        let import = match op {
            Op::Pack => {
                succeeds(gap.near.path(), &args(&["download"]), "download");
                Vec::new()
            }
            Op::Import => gap.next_import(&args(&["export"]), &args(&["import"])),
            Op::Download | Op::Mark => Vec::new(),
        };
        let run = |root: &Path| match op {
            Op::Download => args(&["download"]),
            Op::Pack => with_archive(&strs(&args(&["pack"])), root),
            Op::Import => import.clone(),
            Op::Mark => args(&["mark"]),
        };
        Interrupt {
            name: &name,
            base: match op {
                Op::Import => gap.far.path(),
                _ => gap.near.path(),
            },
            args: &run,
            verify: args(&["verify"]),
            served: self.served,
            after_kill: match op {
                Op::Pack => &pack_left_no_torn_archive_and_the_mark,
                _ => &nothing,
            },
        }
        .run();
    }
}

const HEX_ECO: TimeMarked = TimeMarked {
    eco: "hex",
    args: |up, ops| {
        let mut args = owned(&["hex", "-j", "4"]);
        args.extend(owned(ops));
        args.extend(owned(&[
            "--url",
            &up.url("hex"),
            "--public-key",
            &key_path("hex-test.pub.pem").display().to_string(),
        ]));
        args
    },
    served: HEX,
    // The sample repository, then one more package and a release.
    trees: || {
        let up = Upstream::start();
        let mut repo = HexRepo::sample();
        repo.publish(&up);
        let gap = HEX_ECO.cross(&up);
        repo.add_release("gamma", rel("0.2.0", &[]));
        repo.add("delta", vec![rel("1.0.0", &[("gamma", "~> 0.2")])]);
        repo.publish(&up);
        up.set_delay(UPSTREAM_DELAY);
        (up, gap)
    },
};

const ARCH_ECO: TimeMarked = TimeMarked {
    eco: "arch",
    args: |up, ops| {
        let mut args = owned(&["arch", "-j", "4"]);
        args.extend(owned(ops));
        args.extend(owned(&[
            "--url",
            &up.url("m/$repo/os/$arch"),
            "--repo",
            "core",
            "--keyring",
            &TestKey::Signing.public_path().display().to_string(),
            "--retries",
            "1",
        ]));
        args
    },
    served: ARCH,
    // Three packages, then two new versions and a new package.
    trees: || {
        let up = Upstream::start();
        let pkgs = |v: &str| -> Vec<arch::Pkg> {
            let mut world = arch::Pkg::new("world", &format!("2.{v}-1"));
            world.depends = vec!["hello>=1.0".into()];
            vec![
                arch::Pkg::new("hello", &format!("1.{v}-1")),
                world,
                arch::Pkg::new("tools", "3.0-1"),
            ]
        };
        arch::publish(&up, "m", "core", &pkgs("0"));
        let gap = ARCH_ECO.cross(&up);
        let mut next = pkgs("1");
        next.push(arch::Pkg::new("extra", "0.1-1"));
        arch::publish(&up, "m", "core", &next);
        up.set_delay(UPSTREAM_DELAY);
        (up, gap)
    },
};

impl TimeMarked {
    /// `export` on a new near tree, `import` on a new far tree.
    fn cross(&self, up: &Upstream) -> Gap {
        let args = |ops: &[&str]| (self.args)(up, ops);
        Gap::cross(&[], &args(&["export"]), &[], &args(&["import"]))
    }
}

#[test]
fn kill_9_during_hex_download_never_publishes_a_bad_file() {
    HEX_ECO.interrupt(Op::Download);
}

#[test]
fn kill_9_during_hex_pack_never_leaves_a_torn_archive_nor_moves_the_mark() {
    HEX_ECO.interrupt(Op::Pack);
}

#[test]
fn kill_9_during_hex_import_never_publishes_a_bad_file() {
    HEX_ECO.interrupt(Op::Import);
}

#[test]
fn kill_9_during_hex_mark_never_tears_the_state_file() {
    HEX_ECO.interrupt(Op::Mark);
}

#[test]
fn kill_9_during_arch_download_never_publishes_a_bad_file() {
    ARCH_ECO.interrupt(Op::Download);
}

#[test]
fn kill_9_during_arch_pack_never_leaves_a_torn_archive_nor_moves_the_mark() {
    ARCH_ECO.interrupt(Op::Pack);
}

#[test]
fn kill_9_during_arch_import_never_publishes_a_bad_file() {
    ARCH_ECO.interrupt(Op::Import);
}

#[test]
fn kill_9_during_arch_mark_never_tears_the_state_file() {
    ARCH_ECO.interrupt(Op::Mark);
}

// ---------------------------------------------------------------- crates

/// Two crates across the gap, then upstream's next commit: more crates,
/// a new version, a removal.
fn crate_trees<'a>(up: &'a Upstream, fx: &mut CratesFixture<'a>) -> (Gap, String) {
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf and app");
    let url = fx.crates_url_template();
    let gap = Gap::cross(
        &[owned(&["crate", "init", "--index-url", &fx.index_url()])],
        &owned(&["crate", "export", "--crates-url", &url]),
        &[
            owned(&["crate", "init-import"]),
            owned(&[
                "crate",
                "config",
                "--server-url",
                "http://mirror.invalid:8000",
            ]),
        ],
        &owned(&["crate", "import"]),
    );
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    for n in ["ab", "abc", "abcd", "tools"] {
        fx.publish(n, "0.1.0", &[("leaf", "^1")]);
    }
    fx.remove("app", "0.1.0");
    fx.commit("Add leaf 1.1.0 and more, remove app");
    up.set_delay(UPSTREAM_DELAY);
    (gap, url)
}

/// After a killed `export`: the mark moved only if the archive carrying
/// the range up to it is whole.
fn export_moved_the_mark_only_with_a_whole_archive(root: &Path, base: &Path) {
    let manifest = whole_archive(root);
    let mark = rev(root, "mark");
    if mark != rev(base, "mark") {
        let end = manifest.and_then(|m| m.range).map(|r| r.end);
        assert_eq!(
            end, mark,
            "a killed export moved the mark past what its archive carries"
        );
    }
}

#[test]
fn kill_9_during_crate_update_never_publishes_a_bad_file() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let (gap, url) = crate_trees(&up, &mut fx);
    Interrupt {
        name: "crate update",
        base: gap.near.path(),
        args: &|_| owned(&["crate", "-j", "4", "update", "--crates-url", &url]),
        verify: owned(&["crate", "verify"]),
        served: CRATES,
        after_kill: &nothing,
    }
    .run();
}

#[test]
fn kill_9_during_crate_export_never_leaves_a_torn_archive_behind_a_moved_mark() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let (gap, url) = crate_trees(&up, &mut fx);
    Interrupt {
        name: "crate export",
        base: gap.near.path(),
        args: &|root| with_archive(&["crate", "-j", "4", "export", "--crates-url", &url], root),
        verify: owned(&["crate", "verify"]),
        served: CRATES,
        after_kill: &export_moved_the_mark_only_with_a_whole_archive,
    }
    .run();
}

#[test]
fn kill_9_during_crate_import_never_publishes_a_bad_file() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let (gap, url) = crate_trees(&up, &mut fx);
    let import = gap.next_import(
        &owned(&["crate", "export", "--crates-url", &url]),
        &owned(&["crate", "import"]),
    );
    Interrupt {
        name: "crate import",
        base: gap.far.path(),
        args: &|_| import.clone(),
        verify: owned(&["crate", "verify"]),
        served: CRATES,
        after_kill: &nothing,
    }
    .run();
}

#[test]
fn kill_9_during_crate_mark_leaves_master_and_mark_whole() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let (gap, url) = crate_trees(&up, &mut fx);
    succeeds(
        gap.near.path(),
        &owned(&["crate", "pull", "download", "--crates-url", &url]),
        "crate pull download",
    );
    Interrupt {
        name: "crate mark",
        base: gap.near.path(),
        args: &|_| owned(&["crate", "mark"]),
        verify: owned(&["crate", "verify"]),
        served: CRATES,
        after_kill: &|root: &Path, _: &Path| {
            assert!(rev(root, "master").is_some() && rev(root, "mark").is_some());
        },
    }
    .run();
}
