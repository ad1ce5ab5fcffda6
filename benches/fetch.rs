//! Download engine benchmark (not a test: it prints figures).
//!
//! 1. Engine: N small files from an upstream that waits a fixed delay
//!    before every response, with J jobs. The ideal is N × delay ÷ J; the
//!    figure that matters is measured ÷ ideal (target: ≤ 1.1).
//! 2. `mirror rustup download` vs `romt rustup download` for every known
//!    target of one version, same upstream, same delay. romt is taken from
//!    `$ROMT` or `bench/.venv/bin/romt` (see bench/README.md); skipped with a
//!    message when absent.
//!
//! Run: `cargo bench --bench fetch`.

#[allow(dead_code)]
#[path = "../tests/it/support/upstream.rs"]
mod upstream;

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use mirror::fetch::{Engine, FetchItem, FetchOptions};
use mirror::http::HttpOptions;
use mirror::report::NullReporter;
use mirror::verify::Sha256Digest;
use support::bench_dir;
use upstream::Upstream;

fn engine_bench(n: usize, size: usize, delay: Duration, jobs: usize) {
    let up = Upstream::start();
    up.set_delay(delay);
    let dir = bench_dir();
    let mut items = Vec::new();
    for i in 0..n {
        let data: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
        let path = format!("f/{i}.bin");
        items.push(
            FetchItem::new(up.url(&path), dir.path().join(&path)).sha256(Sha256Digest::of(&data)),
        );
        up.put(&path, data);
    }
    let engine = Engine::new(FetchOptions {
        jobs,
        http: HttpOptions {
            retry_delay: Duration::ZERO,
            ..HttpOptions::default()
        },
        ..FetchOptions::default()
    })
    .unwrap();
    let start = Instant::now();
    let summary = engine.fetch_all(items, &NullReporter).unwrap();
    let took = start.elapsed();
    assert_eq!(summary.fetched, n);
    let ideal = delay.mul_f64(n as f64 / jobs as f64);
    println!(
        "engine  N={n:4} size={size:6} delay={:3}ms J={jobs:3}: {:7.3}s  ideal {:7.3}s  ratio {:.3}  ({:.0} files/s)",
        delay.as_millis(),
        took.as_secs_f64(),
        ideal.as_secs_f64(),
        if ideal.is_zero() { f64::NAN } else { took.as_secs_f64() / ideal.as_secs_f64() },
        n as f64 / took.as_secs_f64()
    );
}

const TARGETS: &[&str] = mirror::eco::rustup::ALL_KNOWN_TARGETS;

fn rustup_upstream(delay: Duration) -> Upstream {
    let up = Upstream::start();
    for t in TARGETS {
        let name = mirror::eco::rustup::init_name(t);
        let data: Vec<u8> = (0..200_000)
            .map(|b: usize| (b * 13 + t.len()) as u8)
            .collect();
        let path = format!("rustup/archive/1.28.2/{t}/{name}");
        up.put(
            &format!("{path}.sha256"),
            format!("{}  {name}\n", Sha256Digest::of(&data)),
        );
        up.put(&path, data);
    }
    up.put(
        "rustup/release-stable.toml",
        "schema-version = '1'\nversion = '1.28.2'\n",
    );
    up.set_delay(delay);
    up
}

fn time_command(mut cmd: Command) -> Option<Duration> {
    let start = Instant::now();
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("command failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(start.elapsed())
}

fn cli_bench(delay: Duration) {
    let up = rustup_upstream(delay);
    let url = up.url("rustup");
    let targets = TARGETS.join(",");
    let mirror_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
    cmd.args(["--root"]).arg(mirror_dir.path());
    cmd.args([
        "rustup", "-q", "download", "-s", "1.28.2", "-t", &targets, "--url", &url,
    ]);
    let ours = time_command(cmd).expect("mirror rustup download");
    println!(
        "rustup download, {} targets, delay {}ms: mirror {:.3}s",
        TARGETS.len(),
        delay.as_millis(),
        ours.as_secs_f64()
    );
    let Some(romt) = support::romt() else {
        println!(
            "  romt: not found (set ROMT or create bench/.venv, see bench/README.md); skipped"
        );
        return;
    };
    let romt_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(romt);
    cmd.current_dir(romt_dir.path());
    cmd.args(["rustup", "download", "-s", "1.28.2", "--url", &url]);
    for t in TARGETS {
        cmd.args(["-t", t]);
    }
    match time_command(cmd) {
        Some(theirs) => println!(
            "  romt {:.3}s  -> mirror is {:.1}x faster",
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
        None => println!("  romt: failed to run"),
    }
}

fn main() {
    println!(
        "# engine downloads land in {}",
        bench_dir().path().parent().unwrap().display()
    );
    // `cargo bench` passes `--bench`; ignore arguments.
    let delay = Duration::from_millis(50);
    for jobs in [1, 8, 32] {
        engine_bench(if jobs == 1 { 40 } else { 400 }, 16 * 1024, delay, jobs);
    }
    engine_bench(2000, 4 * 1024, Duration::from_millis(20), 64);
    // The ceiling of this machine (client and fake upstream share its
    // cores): no delay at all.
    engine_bench(2000, 4 * 1024, Duration::ZERO, 8);
    cli_bench(Duration::from_millis(20));
}
