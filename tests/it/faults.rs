//! Interruptions: `kill -9` at seeded moments of `mirror rustup download`
//! and `unpack`, with a reader polling the tree the whole time. At no
//! moment may a published file be partial or unverified; after each kill a
//! rerun completes and the tree verifies.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mirror::verify::Sha256Digest;

use crate::rustup::mirror;
use crate::support::rustup::{init_bytes, init_name, publish};
use crate::support::upstream::Upstream;

const VERSIONS: &[&str] = &["1.28.2", "1.27.1"];
const TARGETS: &[&str] = mirror::eco::rustup::ALL_KNOWN_TARGETS;

/// Every invariant a client of the served tree relies on; returns what is
/// violated (an empty list when all is well). Temporary and partial files
/// are ignored: the server never hands them out.
fn violations(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let r = root.join("rustup");
    for v in VERSIONS {
        for t in TARGETS {
            let dir = r.join(format!("archive/{v}/{t}"));
            let expected = init_bytes(v, t);
            let bin = dir.join(init_name(t));
            if let Ok(bytes) = std::fs::read(&bin) {
                if bytes != expected {
                    out.push(format!("{} is published with other bytes", bin.display()));
                }
            }
            let sum = dir.join(format!("{}.sha256", init_name(t)));
            if let Ok(text) = std::fs::read(&sum) {
                match mirror::verify::digest::parse_sidecar(&text, "x") {
                    Ok(d) if d == Sha256Digest::of(&expected) => {}
                    _ => out.push(format!(
                        "{} is published with a wrong digest",
                        sum.display()
                    )),
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(r.join("release-stable.toml")) {
        let v = if text.contains("1.28.2") {
            "1.28.2"
        } else {
            "1.27.1"
        };
        if !TARGETS.iter().any(|t| {
            r.join(format!("archive/{v}/{t}/{}", init_name(t)))
                .is_file()
        }) {
            out.push(format!(
                "release-stable.toml names {v} before its files are published"
            ));
        }
    }
    out
}

/// Poll `root` until stopped, collecting violations.
fn watch(root: &Path) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let root = root.to_path_buf();
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let seen = Mutex::new(Vec::new());
        while !flag.load(Ordering::Relaxed) {
            seen.lock().unwrap().extend(violations(&root));
        }
        seen.into_inner().unwrap()
    });
    (stop, handle)
}

/// Start `mirror` with `args`, kill -9 it after `after`, wait.
fn run_and_kill(root: &Path, args: &[&str], after: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

fn upstream() -> Upstream {
    let up = Upstream::start();
    publish(&up, &["1.27.1"], TARGETS);
    publish(&up, &["1.28.2"], TARGETS);
    up.set_delay(Duration::from_millis(2));
    up
}

/// A deterministic spread of kill moments over the first ~150 ms.
fn kill_moment(seed: u64) -> Duration {
    Duration::from_micros((seed * 7919 + 1000) % 150_000)
}

#[test]
fn kill_9_during_download_never_publishes_a_bad_file_and_a_rerun_completes() {
    let up = upstream();
    let url = up.url("rustup");
    let targets = TARGETS.join(",");
    let args = [
        "rustup",
        "-j",
        "4",
        "download",
        "-s",
        "1.28.2,1.27.1",
        "-t",
        &targets,
        "--url",
        &url,
    ];
    for seed in 0..20 {
        let root = tempfile::tempdir().unwrap();
        let (stop, reader) = watch(root.path());
        run_and_kill(root.path(), &args, kill_moment(seed));
        let out = mirror(root.path(), &args);
        assert!(out.status.success(), "seed {seed}: rerun failed");
        stop.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(
            seen.is_empty(),
            "seed {seed}: {:?}",
            &seen[..seen.len().min(5)]
        );
        let out = mirror(root.path(), &["rustup", "verify"]);
        assert!(
            out.status.success(),
            "seed {seed}: verify failed after the rerun"
        );
        assert!(violations(root.path()).is_empty());
    }
}

#[test]
fn kill_9_during_unpack_never_publishes_a_bad_file_and_a_rerun_completes() {
    let up = upstream();
    let online = tempfile::tempdir().unwrap();
    let archive = online.path().join("rustup.tar.gz");
    let archive = archive.to_str().unwrap();
    let targets = TARGETS.join(",");
    let url = up.url("rustup");
    let out = mirror(
        online.path(),
        &[
            "rustup",
            "download",
            "pack",
            "-s",
            "1.28.2,1.27.1",
            "-t",
            &targets,
            "--url",
            &url,
            "--archive",
            archive,
        ],
    );
    assert!(out.status.success());
    let args = ["rustup", "unpack", "--archive", archive];
    for seed in 0..20 {
        let root = tempfile::tempdir().unwrap();
        let (stop, reader) = watch(root.path());
        run_and_kill(root.path(), &args, kill_moment(seed) / 2);
        let out = mirror(root.path(), &args);
        assert!(out.status.success(), "seed {seed}: rerun failed");
        stop.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(
            seen.is_empty(),
            "seed {seed}: {:?}",
            &seen[..seen.len().min(5)]
        );
        assert!(mirror(root.path(), &["rustup", "verify"]).status.success());
        // The killed run's staging directory is gone after the rerun.
        let staging = root.path().join(".mirror/staging");
        let left: Vec<_> = std::fs::read_dir(&staging)
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "seed {seed}: staging left behind: {left:?}"
        );
    }
}

#[test]
#[ignore = "diagnostic: how long the runs the kill tests interrupt take"]
fn kill_windows_cover_the_runs() {
    let up = upstream();
    let url = up.url("rustup");
    let targets = TARGETS.join(",");
    let root = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let args = [
        "rustup",
        "-j",
        "4",
        "download",
        "-s",
        "1.28.2,1.27.1",
        "-t",
        &targets,
        "--url",
        &url,
    ];
    assert!(mirror(root.path(), &args).status.success());
    eprintln!("download took {:?}", t.elapsed());
    let archive = root.path().join("a.tar.gz");
    let archive = archive.to_str().unwrap();
    assert!(
        mirror(root.path(), &["rustup", "pack", "--archive", archive])
            .status
            .success()
    );
    let other = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    assert!(
        mirror(other.path(), &["rustup", "unpack", "--archive", archive])
            .status
            .success()
    );
    eprintln!("unpack took {:?}", t.elapsed());
}
