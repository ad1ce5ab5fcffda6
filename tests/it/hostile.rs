//! Hostile input through the real commands, for every ecosystem: bundles
//! that `unpack`/`import` must refuse, upstream faults a `download` must
//! survive or report, and two runs on one tree.
//!
//! Each part is one table run against each ecosystem, so a new rule or
//! fault is one row, and a new ecosystem one line per part.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mirror::verify::Sha256Digest;

use crate::rustup::mirror;
use crate::support::archive::{file, gz, manifest_claiming, raw, tar, tar_gz, Raw};
use crate::support::crates::CratesFixture;
use crate::support::hex::{key_path, HexRepo};
use crate::support::keys::TestKey;
use crate::support::tree::{files, paths};
use crate::support::upstream::{Fault, Upstream};
use crate::support::{arch, dist, rustup};

pub(crate) fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn run(root: &Path, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    mirror(root, &args)
}

pub(crate) fn succeeds(root: &Path, args: &[String]) {
    let out = run(root, args);
    assert!(
        out.status.success(),
        "mirror {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------ bundles

/// How one ecosystem takes a bundle in.
pub(crate) struct Intake {
    /// The ecosystem a manifest names.
    pub(crate) ecosystem: &'static str,
    /// A path its bundles may hold.
    pub(crate) member: &'static str,
    /// Commands an empty far-side tree needs first.
    pub(crate) prepare: &'static [&'static [&'static str]],
    /// The command that reads `--archive` (appended).
    pub(crate) command: &'static [&'static str],
    /// The option naming the key it checks with, and the key.
    pub(crate) key: Option<KeyOption>,
}

impl Intake {
    /// The command reading `archive`, with its key.
    pub(crate) fn args(&self, archive: &Path) -> Vec<String> {
        let mut args = owned(self.command);
        if let Some((option, key)) = self.key {
            args.push(option.into());
            args.push(key().display().to_string());
        }
        args.push("--archive".into());
        args.push(archive.display().to_string());
        args
    }
}

/// An option naming a key file (`--keyring`, `--public-key`), and the key.
pub(crate) type KeyOption = (&'static str, fn() -> PathBuf);

fn signing_key() -> PathBuf {
    TestKey::Signing.public_path()
}

fn hex_key() -> PathBuf {
    key_path("hex-test.pub.pem")
}

pub(crate) const RUSTUP_INTAKE: Intake = Intake {
    ecosystem: "rustup",
    member: "rustup/archive/1.0.0/x86_64-unknown-linux-gnu/rustup-init",
    prepare: &[],
    command: &["rustup", "unpack"],
    key: None,
};

pub(crate) const TOOLCHAIN_INTAKE: Intake = Intake {
    ecosystem: "toolchain",
    member: "dist/2026-10-15/rustc-1.99.1-x86_64-unknown-linux-gnu.tar.xz",
    prepare: &[],
    command: &["toolchain", "unpack"],
    key: Some(("--keyring", signing_key)),
};

pub(crate) const CRATES_INTAKE: Intake = Intake {
    ecosystem: "crates",
    member: "crates/le/af/leaf/leaf-1.0.0.crate",
    prepare: &[&["crate", "init-import"]],
    command: &["crate", "import"],
    key: None,
};

pub(crate) const HEX_INTAKE: Intake = Intake {
    ecosystem: "hex",
    member: "hex/tarballs/alpha-1.0.0.tar",
    prepare: &[],
    command: &["hex", "import"],
    key: Some(("--public-key", hex_key)),
};

pub(crate) const ARCH_INTAKE: Intake = Intake {
    ecosystem: "arch",
    member: "archlinux/core/os/x86_64/hello-1.0-1-x86_64.pkg.tar.zst",
    prepare: &[],
    command: &["arch", "import", "--repo", "core"],
    key: Some(("--keyring", signing_key)),
};

/// A petabyte: more than any test machine has free.
const HUGE: u64 = 1 << 50;

/// Every hostile archive, named, with what the error must say. `outside`
/// is a directory beside the root (absolute paths point there).
fn hostile_archives(intake: &Intake, outside: &Path) -> Vec<(&'static str, Vec<u8>, Vec<String>)> {
    let member = intake.member;
    let top = member.split('/').next().unwrap();
    let good = || file(member, b"good bytes");
    let absolute = outside.join("absolute").display().to_string();
    let other = format!("{member}.other");
    let cut = {
        let mut bulk = vec![0u8; 64 * 1024];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for b in &mut bulk {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let whole = tar_gz(&[good(), file(&other, &bulk)]);
        whole[..whole.len() / 2].to_vec()
    };
    let claims = |size: u64| Raw {
        claim: Some(size),
        ..file(member, b"a few bytes of a petabyte")
    };
    let zeros_after = {
        let mut t = tar(&[good()]);
        t.resize(t.len() + 16 * 1024 * 1024, 0);
        gz(&t)
    };
    let lying = manifest_claiming(
        intake.ecosystem,
        &[(member, 10, Sha256Digest::of(b"other byte"))],
    );
    let huge_manifest = manifest_claiming(
        intake.ecosystem,
        &[(member, HUGE, Sha256Digest::of(b"good bytes"))],
    );
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            "path traversal",
            tar_gz(&[good(), file(&format!("{top}/../../escaped"), b"evil")]),
            s(&["\"..\" component"]),
        ),
        (
            "absolute path",
            tar_gz(&[good(), file(&absolute, b"evil")]),
            s(&["absolute path", &absolute]),
        ),
        (
            "symbolic link",
            tar_gz(&[raw(other.as_bytes(), b'2', b"/etc/passwd"), good()]),
            s(&["is a symbolic link", &other]),
        ),
        (
            "hard link",
            tar_gz(&[good(), raw(other.as_bytes(), b'1', b"/etc/passwd")]),
            s(&["is a hard link", &other]),
        ),
        (
            "duplicate entry",
            tar_gz(&[good(), file(member, b"evil bytes")]),
            s(&["occurs twice", member]),
        ),
        (
            "manifest lying about a digest",
            tar_gz(&[file("MIRROR-BUNDLE.json", &lying), good()]),
            s(&["checksum mismatch", member]),
        ),
        ("truncated gzip", cut, s(&["cannot read"])),
        (
            "member header claiming a petabyte",
            tar_gz(&[claims(HUGE)]),
            s(&["not enough disk space", &format!("{HUGE} bytes"), member]),
        ),
        (
            "manifest claiming a petabyte",
            tar_gz(&[file("MIRROR-BUNDLE.json", &huge_manifest), good()]),
            s(&["not enough disk space", &format!("{HUGE} bytes")]),
        ),
        (
            "zeros after the end of the tar archive",
            zeros_after,
            s(&["after the end of the tar archive"]),
        ),
        (
            "GNU long name of 8 MiB",
            tar_gz(&[file(&format!("{top}/{}", "a".repeat(8 << 20)), b"x")]),
            s(&["take more than 1048576 bytes"]),
        ),
        (
            "member data running past its header size",
            tar_gz(&[Raw {
                claim: Some(4),
                ..file(member, &[b'x'; 2000])
            }]),
            s(&["cannot read", "data runs past the size its header gives"]),
        ),
    ]
}

/// Feed every hostile archive to `intake`'s command on a fresh tree: each
/// must fail naming the archive and its problem, publish nothing, write
/// nothing outside the root, and leave no staging behind.
fn refuses_hostile_bundles(intake: &Intake) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for (what, bytes, want) in hostile_archives(intake, &outside) {
        let case = tempfile::tempdir_in(tmp.path()).unwrap();
        let root = case.path().join("root");
        for args in intake.prepare {
            succeeds(&root, &owned(args));
        }
        let archive = case.path().join("hostile.tar.gz");
        std::fs::write(&archive, &bytes).unwrap();
        let not_ours = |n: &str| n != ".mirror";
        let before = files(tmp.path(), not_ours);

        let out = run(&root, &intake.args(&archive));
        let err = String::from_utf8_lossy(&out.stderr);
        let name = intake.ecosystem;
        assert!(
            out.status.code() != Some(101) && !err.contains("panicked"),
            "{name}, {what}: panicked:\n{err}"
        );
        assert!(!out.status.success(), "{name}, {what}: accepted");
        assert!(
            err.contains(&archive.display().to_string()),
            "{name}, {what}: archive not named:\n{err}"
        );
        for w in &want {
            assert!(
                err.contains(w.as_str()),
                "{name}, {what}: {w:?} not in:\n{err}"
            );
        }
        assert!(
            before == files(tmp.path(), not_ours),
            "{name}, {what}: files written or changed (inside the root or beside it):\n{err}"
        );
        let staging = root.join(".mirror/staging");
        assert_eq!(
            paths(&staging, |_| true),
            Vec::<String>::new(),
            "{name}, {what}: staging left behind"
        );
    }
    eprintln!(
        "{}: hostile bundles refused in {:?}",
        intake.ecosystem,
        started.elapsed()
    );
}

#[test]
fn rustup_unpack_refuses_hostile_bundles() {
    refuses_hostile_bundles(&RUSTUP_INTAKE);
}

#[test]
fn toolchain_unpack_refuses_hostile_bundles() {
    refuses_hostile_bundles(&TOOLCHAIN_INTAKE);
}

#[test]
fn crate_import_refuses_hostile_bundles() {
    refuses_hostile_bundles(&CRATES_INTAKE);
}

#[test]
fn hex_import_refuses_hostile_bundles() {
    refuses_hostile_bundles(&HEX_INTAKE);
}

#[test]
fn arch_import_refuses_hostile_bundles() {
    refuses_hostile_bundles(&ARCH_INTAKE);
}

// ----------------------------------------------------- upstream faults

/// What a download must do when one file meets a fault once.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// Retry (resuming where it can) and succeed.
    Recovers,
    /// Fail naming the URL, publish nothing of that file; a rerun
    /// succeeds.
    Fails,
    /// Fails where the plan knows the file's size (a `Content-Length`
    /// other than that size is an answer, not an accident: the engine
    /// does not retry it), recovers where it does not (a body cut short).
    FailsIfSized,
}

/// The `--timeout` of the runs, in seconds: a stall lasts longer.
const TIMEOUT: &str = "1";

const FAULTS: &[(&str, Fault, Outcome)] = &[
    ("connection reset", Fault::Reset, Outcome::Recovers),
    (
        "stall past --timeout",
        Fault::Stall { ms: 3000 },
        Outcome::Recovers,
    ),
    (
        "truncated body",
        Fault::CutBody { after: 100 },
        Outcome::Recovers,
    ),
    ("500", Fault::Status(500), Outcome::Recovers),
    (
        "429 with Retry-After",
        Fault::RetryAfter { secs: 2 },
        Outcome::Recovers,
    ),
    (
        "Content-Length too long",
        Fault::LongLength { extra: 1000 },
        Outcome::FailsIfSized,
    ),
    ("wrong bytes", Fault::WrongBytes, Outcome::Fails),
];

/// One ecosystem's download against the fake upstream.
struct Download<'a> {
    name: &'static str,
    up: &'a Upstream,
    /// Commands a fresh tree needs first.
    prepare: Vec<Vec<String>>,
    download: Vec<String>,
    verify: Vec<String>,
    /// The upstream path of the data file to fault.
    path: String,
    /// Whether the plan knows that file's size.
    sized: bool,
}

impl Download<'_> {
    fn survives_each_fault(&self) {
        let started = Instant::now();
        let name = self.name;
        let url = self.up.url(&self.path);
        let file_name = self.path.rsplit('/').next().unwrap().to_string();
        let mut download = self.download.clone();
        download.extend(owned(&["--timeout", TIMEOUT]));
        for &(what, fault, outcome) in FAULTS {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path();
            for args in &self.prepare {
                succeeds(root, args);
            }
            let gets = self.up.gets(&self.path);
            self.up.fault(&self.path, fault, 1);
            let t = Instant::now();
            let out = run(root, &download);
            let took = t.elapsed();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                self.up.gets(&self.path) > gets,
                "{name}, {what}: {} never requested",
                self.path
            );
            let outcome = match outcome {
                Outcome::FailsIfSized if self.sized => Outcome::Fails,
                Outcome::FailsIfSized => Outcome::Recovers,
                other => other,
            };
            match (outcome, out.status.success()) {
                (Outcome::Recovers, true) => {
                    assert!(self.up.gets(&self.path) >= gets + 2, "{name}, {what}");
                }
                (Outcome::Fails, false) => {
                    assert!(err.contains(&url), "{name}, {what}: URL not named:\n{err}");
                    let published: Vec<String> = paths(root, |n| !n.starts_with('.'))
                        .into_iter()
                        .filter(|p| p.rsplit('/').next() == Some(&file_name))
                        .collect();
                    assert!(
                        published.is_empty(),
                        "{name}, {what}: published {published:?}"
                    );
                    succeeds(root, &download);
                }
                (_, ok) => panic!("{name}, {what}: expected {outcome:?}, success: {ok}\n{err}"),
            }
            if let Fault::RetryAfter { secs } = fault {
                assert!(
                    took >= Duration::from_secs(secs),
                    "{name}, {what}: Retry-After ignored ({took:?})"
                );
            }
            succeeds(root, &self.verify);
        }
        eprintln!("{name}: {} faults in {:?}", FAULTS.len(), started.elapsed());
    }
}

const RUSTUP_VERSION: &str = "1.28.2";
const LINUX: &str = "x86_64-unknown-linux-gnu";

/// One rustup-init upstream, and the `rustup download` of it.
fn rustup_upstream() -> (Upstream, Vec<String>) {
    let up = Upstream::start();
    rustup::publish(&up, &[RUSTUP_VERSION], &[LINUX]);
    let url = up.url("rustup");
    let download = owned(&[
        "rustup",
        "download",
        "-s",
        RUSTUP_VERSION,
        "-t",
        LINUX,
        "--url",
        &url,
    ]);
    (up, download)
}

#[test]
fn rustup_download_survives_or_reports_each_upstream_fault() {
    let (up, download) = rustup_upstream();
    Download {
        name: "rustup",
        up: &up,
        prepare: Vec::new(),
        download,
        verify: owned(&["rustup", "verify"]),
        path: rustup::init_path(RUSTUP_VERSION, LINUX),
        sized: false,
    }
    .survives_each_fault();
}

#[test]
fn toolchain_download_survives_or_reports_each_upstream_fault() {
    let up = Upstream::start();
    let target = LINUX;
    dist::publish(&up, &dist::STABLE, &[target]);
    let key = signing_key().display().to_string();
    let with = |ops: &[&str]| {
        let mut args = owned(&["toolchain"]);
        args.extend(owned(ops));
        args.extend(owned(&["--url", &up.url("dist"), "--keyring", &key]));
        args
    };
    Download {
        name: "toolchain",
        up: &up,
        prepare: Vec::new(),
        download: with(crate::toolchain::MINIMAL),
        verify: with(&["verify"]),
        path: dist::STABLE.file_path("rustc", target, "xz"),
        sized: false,
    }
    .survives_each_fault();
}

#[test]
fn crate_download_survives_or_reports_each_upstream_fault() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf and app");
    Download {
        name: "crate",
        up: &up,
        prepare: vec![owned(&["crate", "init", "--index-url", &fx.index_url()])],
        download: owned(&["crate", "update", "--crates-url", &fx.crates_url_template()]),
        verify: owned(&["crate", "verify"]),
        path: CratesFixture::crate_upstream_path("leaf", "1.0.0"),
        sized: false,
    }
    .survives_each_fault();
}

#[test]
fn hex_download_survives_or_reports_each_upstream_fault() {
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    let key = hex_key().display().to_string();
    let with = |op: &str| owned(&["hex", op, "--url", &up.url("hex"), "--public-key", &key]);
    Download {
        name: "hex",
        up: &up,
        prepare: Vec::new(),
        download: with("download"),
        verify: with("verify"),
        path: "hex/tarballs/beta-2.1.0.tar".into(),
        sized: false,
    }
    .survives_each_fault();
}

#[test]
fn arch_download_survives_or_reports_each_upstream_fault() {
    let up = Upstream::start();
    let hello = arch::Pkg::new("hello", "1.0-1");
    arch::publish(
        &up,
        "m",
        "core",
        &[hello.clone(), arch::Pkg::new("tools", "3.0-1")],
    );
    let key = signing_key().display().to_string();
    let with = |op: &str| {
        owned(&[
            "arch",
            op,
            "--url",
            &up.url("m/$repo/os/$arch"),
            "--repo",
            "core",
            "--keyring",
            &key,
        ])
    };
    Download {
        name: "arch",
        up: &up,
        prepare: Vec::new(),
        download: with("download"),
        verify: with("verify"),
        path: format!("m/core/os/x86_64/{}", hello.filename()),
        sized: true,
    }
    .survives_each_fault();
}

// ------------------------------------------------------ concurrent runs

/// A second run on a tree a first run holds is refused at once, naming
/// the lock file and the holder; the first run is not disturbed.
#[test]
fn a_second_run_on_a_locked_tree_is_refused_naming_the_lock_file() {
    let (up, args) = rustup_upstream();
    // Slow enough that the first run is still downloading when the
    // second starts.
    up.set_delay(Duration::from_millis(1500));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let first = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = root.join(".mirror/lock");
    let pid = first.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&lock)
        .ok()
        .as_deref()
        .map(str::trim)
        != Some(pid.as_str())
    {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let t = Instant::now();
    let second = run(root, &args);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second run went ahead");
    assert!(
        err.contains(&lock.display().to_string()),
        "lock file not named:\n{err}"
    );
    assert!(
        err.contains(&format!("pid {pid}")),
        "holder not named:\n{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the second run waited"
    );

    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "the first run failed:\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    succeeds(root, &owned(&["rustup", "verify"]));
}
