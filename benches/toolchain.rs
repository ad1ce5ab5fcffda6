//! `mirror toolchain download` vs `romt toolchain download` (not a test:
//! it prints figures).
//!
//! A generated stable release (the test fixture's component tarballs,
//! signed with the test key) for 24 targets on the fake upstream, which
//! waits 20 ms before every response; both tools download the release's
//! files for every target into a fresh tree with 4 and 16 jobs. mirror
//! checks every `.asc` (the test keyring) and SHA-256; romt runs with
//! `--no-signature` (its keyring is the real Rust key) and checks SHA-256.
//!
//! Run: `cargo bench --bench toolchain` (romt from `$ROMT` or
//! `bench/.venv/bin/romt`).

#[path = "support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/it/support/upstream.rs"]
mod upstream;

#[allow(dead_code)]
#[path = "../tests/it/support/keys.rs"]
mod keys;

#[allow(dead_code)]
#[path = "../tests/it/support/dist.rs"]
mod dist;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::run;
use upstream::Upstream;

const DELAY: Duration = Duration::from_millis(20);

/// Targets the release is published for.
const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "x86_64-pc-windows-msvc",
    "x86_64-pc-windows-gnu",
    "i686-pc-windows-msvc",
    "aarch64-pc-windows-msvc",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "i686-unknown-linux-gnu",
    "armv7-unknown-linux-gnueabihf",
    "arm-unknown-linux-gnueabihf",
    "riscv64gc-unknown-linux-gnu",
    "powerpc64le-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
    "x86_64-unknown-freebsd",
    "x86_64-unknown-netbsd",
    "x86_64-unknown-illumos",
    "wasm32-unknown-unknown",
    "wasm32-wasip1",
    "aarch64-linux-android",
    "x86_64-linux-android",
    "thumbv7em-none-eabihf",
];

/// The component tarballs under `dir` (recursively).
fn tarballs(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                tarballs(&p)
            } else {
                let n = p.to_string_lossy();
                usize::from(n.ends_with(".tar.xz") || n.ends_with(".tar.gz"))
            }
        })
        .sum()
}

fn main() {
    let up = Upstream::start();
    let published = dist::publish(&up, &dist::STABLE, TARGETS);
    up.set_delay(DELAY);
    let url = up.url("dist");
    let key = keys::TestKey::Signing.public_path().display().to_string();
    let targets = TARGETS.join(",");
    let romt = support::romt();
    println!(
        "# toolchain download: stable for {} targets ({} files, each with .sha256 and .asc), {}ms per request",
        TARGETS.len(),
        published.files.len(),
        DELAY.as_millis()
    );
    for jobs in [4, 16] {
        let j = jobs.to_string();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
        cmd.arg("--root").arg(dir.path()).args([
            "toolchain",
            "-q",
            "download",
            "-s",
            "stable",
            "-t",
            &targets,
            "--url",
            &url,
            "--keyring",
            &key,
            "-j",
            &j,
        ]);
        let ours = run(cmd, "mirror toolchain download");
        let mut line = format!(
            "J={jobs:2}: mirror {:.3}s ({} tarballs)",
            ours.as_secs_f64(),
            tarballs(&dir.path().join("dist"))
        );
        if let Some(romt) = &romt {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = Command::new(romt);
            cmd.current_dir(dir.path()).args([
                "toolchain",
                "-q",
                "download",
                "-s",
                "stable",
                "--url",
                &url,
                "--no-signature",
                "--num-jobs",
                &j,
            ]);
            for t in TARGETS {
                cmd.args(["-t", t]);
            }
            let theirs = run(cmd, "romt toolchain download");
            line.push_str(&format!(
                " | romt (no signatures) {:.3}s ({} tarballs) -> mirror {:.1}x faster",
                theirs.as_secs_f64(),
                tarballs(&dir.path().join("dist")),
                theirs.as_secs_f64() / ours.as_secs_f64()
            ));
        } else {
            line.push_str(" | romt: not found (set ROMT, see bench/README.md); skipped");
        }
        println!("{line}");
    }
}
