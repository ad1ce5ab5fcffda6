//! `mirror crate update` benchmark (not a test: it prints figures).
//!
//! A generated git index of N crates (one version each, real `.crate`
//! files) on the fake upstream, which waits a fixed delay before every
//! response. For J in 4, 16, 64 jobs: a fresh tree, `mirror crate init`,
//! then `mirror crate update` is timed, beside the floor N × delay ÷ J and
//! beside `romt crate update` on the same upstream (romt from `$ROMT` or
//! `bench/.venv/bin/romt`; skipped with a message when absent).
//!
//! Run: `cargo bench --bench crates`.

// `crates.rs` names `super::upstream`: both sit at the crate root here.
#[allow(dead_code)]
#[path = "../tests/it/support/upstream.rs"]
mod upstream;

#[allow(dead_code)]
#[path = "../tests/it/support/crates.rs"]
mod crates_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crates_fixture::CratesFixture;
use upstream::Upstream;

const CRATES: usize = 300;
const DELAY: Duration = Duration::from_millis(20);

fn romt_path() -> Option<PathBuf> {
    let p = std::env::var_os("ROMT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/romt"));
    p.is_file().then_some(p)
}

fn run(mut cmd: Command, what: &str) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Where trees land: `$MIRROR_BENCH_DIR`, else /dev/shm, else /tmp (see
/// benches/fetch.rs for why tmpfs).
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("MIRROR_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new("/dev/shm")
                .is_dir()
                .then(|| PathBuf::from("/dev/shm"))
        })
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).unwrap()
}

fn mirror_update(fx: &CratesFixture<'_>, jobs: usize) -> Duration {
    let dir = bench_dir();
    let mut init = Command::new(env!("CARGO_BIN_EXE_mirror"));
    init.arg("--root").arg(dir.path());
    init.args(["crate", "-q", "init", "--index-url", &fx.index_url()]);
    run(init, "mirror crate init");
    let mut update = Command::new(env!("CARGO_BIN_EXE_mirror"));
    update.arg("--root").arg(dir.path());
    update.args([
        "crate",
        "-q",
        "update",
        "-j",
        &jobs.to_string(),
        "--crates-url",
        &fx.crates_url_template(),
    ]);
    update.env_remove("MIRROR_JOBS");
    run(update, "mirror crate update")
}

fn romt_update(romt: &Path, fx: &CratesFixture<'_>, jobs: usize) -> Duration {
    let dir = bench_dir();
    let mut init = Command::new(romt);
    init.current_dir(dir.path());
    init.args([
        "crate",
        "-q",
        "init",
        "--index-url",
        &fx.path().display().to_string(),
    ]);
    run(init, "romt crate init");
    let mut update = Command::new(romt);
    update.current_dir(dir.path());
    update.args([
        "crate",
        "-q",
        "update",
        "--num-jobs",
        &jobs.to_string(),
        "--crates-url",
        &fx.crates_url_template(),
    ]);
    run(update, "romt crate update")
}

fn main() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    for i in 0..CRATES {
        fx.publish(&format!("bench-crate-{i:04}"), "1.0.0", &[]);
    }
    fx.commit("Generated crates");
    up.set_delay(DELAY);
    let romt = romt_path();
    println!(
        "# {CRATES} crates, {}ms per request; `init` untimed, `update` = pull prune download mark",
        DELAY.as_millis()
    );
    if romt.is_none() {
        println!(
            "# romt: not found (set ROMT or create bench/.venv, see bench/README.md); skipped"
        );
    }
    for jobs in [4, 16, 64] {
        let floor = DELAY.mul_f64(CRATES as f64 / jobs as f64);
        let ours = mirror_update(&fx, jobs);
        let mut line = format!(
            "J={jobs:2}: mirror {:6.3}s  floor {:6.3}s  ratio {:.2}",
            ours.as_secs_f64(),
            floor.as_secs_f64(),
            ours.as_secs_f64() / floor.as_secs_f64()
        );
        if let Some(romt) = &romt {
            let theirs = romt_update(romt, &fx, jobs);
            line.push_str(&format!(
                "  | romt {:6.3}s  ratio {:.2}  -> mirror {:.1}x faster",
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / floor.as_secs_f64(),
                theirs.as_secs_f64() / ours.as_secs_f64()
            ));
        }
        println!("{line}");
    }
}
