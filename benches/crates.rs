//! `mirror crate update` benchmark (not a test: it prints figures).
//!
//! A generated git index of N crates (`$MIRROR_BENCH_CRATES`, default
//! 320; one version each, real `.crate` files) on the fake upstream,
//! which waits a fixed delay before every response. For J in 4, 16, 64
//! jobs: a fresh tree, `mirror crate init`, then `mirror crate update` is
//! timed (the median of `$MIRROR_BENCH_RUNS` runs, default 3, each on a
//! fresh tree), beside the floor N × delay ÷ J and beside `romt crate
//! update` on the same upstream (romt from `$ROMT` or
//! `bench/.venv/bin/romt`; skipped with a message when absent) and beside
//! `panamax sync` (clone + download; from `$PANAMAX` or
//! `bench/.panamax/bin/panamax`, see bench/README.md), which is compared
//! with mirror's `pull` + `download mark`.
//!
//! 320 is a multiple of every job count measured, so the floor is a whole
//! number of rounds that a tool can reach. For another N the line also
//! shows the rounds floor ⌈N ÷ J⌉ × delay: with 300 crates at 64 jobs the
//! last round holds 44 requests, and no tool can finish before 1.067 ×
//! the floor.
//!
//! Beside them, a bare client calibrates the harness: `jobs` keep-alive
//! connections in this process, each GETting the next crate and writing
//! its body to a file from the task itself (no process start, no index,
//! no hashing, no hand-off to another thread), so the figure is what this
//! upstream and machine allow before any tool's own cost.
//!
//! Then two trips for both tools at 16 jobs, each step timed with its peak
//! memory (`/usr/bin/time`): `export` (pull, download, pack, mark) of the
//! whole index and `import` on a second tree; 30 new crates upstream,
//! `export` and `import` of those; `verify` of the whole far tree.
//!
//! Run: `cargo bench --bench crates`. With `MIRROR_BENCH_HOLD=1` it only
//! starts the upstream (delay set), prints the index URL and crates URL
//! template, and waits an hour, for timing or profiling `mirror` by hand.

#[path = "support/mod.rs"]
mod support;

// `crates.rs` names `super::upstream`: both sit at the crate root here.
#[allow(dead_code)]
#[path = "../tests/it/support/upstream.rs"]
mod upstream;

#[allow(dead_code)]
#[path = "../tests/it/support/crates.rs"]
mod crates_fixture;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crates_fixture::CratesFixture;
use support::{bench_dir, run};
use upstream::Upstream;

/// Crates in the generated index: `$MIRROR_BENCH_CRATES`, default 320
/// (see the module docs).
fn crates() -> usize {
    std::env::var("MIRROR_BENCH_CRATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(320)
}
const DELAY: Duration = Duration::from_millis(20);

/// Runs per tool and job count, of which the median is shown:
/// `$MIRROR_BENCH_RUNS`, default 3.
fn runs() -> usize {
    std::env::var("MIRROR_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// The run whose second time is the median of `runs()` runs of `f`.
fn median(mut f: impl FnMut() -> (Duration, Duration)) -> (Duration, Duration) {
    let mut all: Vec<(Duration, Duration)> = (0..runs()).map(|_| f()).collect();
    all.sort_by_key(|r| r.1);
    all[all.len() / 2]
}

/// Times of (`pull`, `download mark`) for one fresh tree.
fn mirror_update(fx: &CratesFixture<'_>, jobs: usize) -> (Duration, Duration) {
    let dir = bench_dir();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mirror"));
        c.arg("--root")
            .arg(dir.path())
            .arg("crate")
            .arg("-q")
            .args(args);
        c.env_remove("MIRROR_JOBS");
        c
    };
    run(
        cmd(&["init", "--index-url", &fx.index_url()]),
        "mirror crate init",
    );
    let pull = run(cmd(&["pull"]), "mirror crate pull");
    let url = fx.crates_url_template();
    let j = jobs.to_string();
    let download = run(
        cmd(&["download", "mark", "-j", &j, "--crates-url", &url]),
        "mirror crate download mark",
    );
    (pull, download)
}

/// Times of (`pull`, `download mark`) for one fresh tree.
fn romt_update(romt: &Path, fx: &CratesFixture<'_>, jobs: usize) -> (Duration, Duration) {
    let dir = bench_dir();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(romt);
        c.current_dir(dir.path()).arg("crate").arg("-q").args(args);
        c
    };
    let index = fx.path().display().to_string();
    run(cmd(&["init", "--index-url", &index]), "romt crate init");
    let pull = run(cmd(&["pull"]), "romt crate pull");
    let url = fx.crates_url_template();
    let j = jobs.to_string();
    let download = run(
        cmd(&["download", "mark", "--num-jobs", &j, "--crates-url", &url]),
        "romt crate download mark",
    );
    (pull, download)
}

/// Time of the bare client (see the module docs) fetching every crate of
/// `fx` with `jobs` connections into a fresh directory.
fn bare_client(up: &Upstream, crates: usize, jobs: usize) -> Duration {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = bench_dir();
    let addr = up.base_url().trim_start_matches("http://").to_string();
    let paths: Vec<String> = (0..crates)
        .map(|i| {
            let name = format!("bench-crate-{i:04}");
            CratesFixture::crate_upstream_path(&name, "1.0.0")
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let next = AtomicUsize::new(0);
    let start = std::time::Instant::now();
    rt.block_on(async {
        let (paths, next, root) = (&paths, &next, dir.path());
        let slots = (0..jobs).map(|_| async {
            let mut conn: Option<tokio::net::TcpStream> = None;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                if conn.is_none() {
                    let c = tokio::net::TcpStream::connect(&addr).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    conn = Some(c);
                }
                let c = conn.as_mut().unwrap();
                let request = format!(
                    "GET /{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
                    path.trim_start_matches('/')
                );
                c.write_all(request.as_bytes()).await.unwrap();
                let mut got = 0;
                let body = loop {
                    let n = c.read(&mut buf[got..]).await.unwrap();
                    assert!(n > 0, "upstream closed the connection");
                    got += n;
                    let Some(end) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .expect("Content-Length");
                    while got < end + 4 + len {
                        let n = c.read(&mut buf[got..]).await.unwrap();
                        assert!(n > 0, "upstream closed the connection");
                        got += n;
                    }
                    break buf[end + 4..end + 4 + len].to_vec();
                };
                // Small bodies on a memory file system: written in place
                // (tokio::fs would add a thread hand-off per file).
                std::fs::write(root.join(format!("{i}.crate")), body).unwrap();
            }
        });
        futures_util::future::join_all(slots).await;
    });
    start.elapsed()
}

/// Time of `panamax sync` (clone of the index + every crate) for one fresh
/// mirror; crates come from `<upstream>/api/{name}/{version}/download`.
fn panamax_sync(panamax: &Path, up: &Upstream, fx: &CratesFixture<'_>, jobs: usize) -> Duration {
    let dir = bench_dir();
    let m = dir.path().join("m");
    run(
        {
            let mut c = Command::new(panamax);
            c.arg("init").arg(&m);
            c
        },
        "panamax init",
    );
    let config = format!(
        "[mirror]\nretries = 5\n\n[rustup]\nsync = false\ndownload_threads = 4\n\
         source = \"http://127.0.0.1:1\"\n\n[crates]\nsync = true\ndownload_threads = {jobs}\n\
         source = \"{}\"\nsource_index = \"{}\"\nbase_url = \"http://127.0.0.1:1/crates\"\n",
        up.url("api"),
        fx.path().display()
    );
    std::fs::write(m.join("mirror.toml"), config).unwrap();
    let mut c = Command::new(panamax);
    c.arg("sync").arg(&m);
    run(c, "panamax sync")
}

/// Run `cmd` under `/usr/bin/time`: its time and peak memory (KiB).
fn run_measured(cmd: Command, what: &str) -> (Duration, u64) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(out.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let took = run(timed, what);
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    let kib = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    (took, kib)
}

/// One tool's trip: (step, time, peak KiB) for update, export, import,
/// verify. `tool(root, args)` builds the command for a tree.
fn trip(
    name: &str,
    fx: &mut CratesFixture<'_>,
    tool: &dyn Fn(&Path, &[&str]) -> Command,
    jobs_flag: &str,
) -> Vec<(String, Duration, u64)> {
    let near = bench_dir();
    let far = bench_dir();
    let archive = near.path().join("crates.tar.gz").display().to_string();
    let url = fx.crates_url_template();
    let index = fx.path().display().to_string();
    let j = "16";
    let mut steps = Vec::new();
    run(tool(near.path(), &["init", "--index-url", &index]), "init");
    let mut step = |label: &str, root: &Path, args: &[&str]| {
        let (t, kib) = run_measured(tool(root, args), &format!("{name} {label}"));
        steps.push((label.to_string(), t, kib));
    };
    let export = [
        "export",
        jobs_flag,
        j,
        "--crates-url",
        &url,
        "--archive",
        &archive,
    ];
    run(tool(far.path(), &["init-import"]), "init-import");
    step("export (all)", near.path(), &export);
    step(
        "import (all)",
        far.path(),
        &["import", "--archive", &archive],
    );
    // 30 new crates upstream, then the next trip.
    for i in 0..30 {
        fx.publish(&format!("bench-new-{name}-{i:02}"), "1.0.0", &[]);
    }
    fx.commit(&format!("30 new crates for {name}"));
    step("export (+30)", near.path(), &export);
    step(
        "import (+30)",
        far.path(),
        &["import", "--archive", &archive],
    );
    step("verify (all)", far.path(), &["verify", "--start", "0"]);
    steps
}

fn main() {
    let crates = crates();
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    for i in 0..crates {
        fx.publish(&format!("bench-crate-{i:04}"), "1.0.0", &[]);
    }
    fx.commit("Generated crates");
    // panamax asks for crates at `{source}/{name}/{version}/download`.
    for i in 0..crates {
        let name = format!("bench-crate-{i:04}");
        let bytes = up
            .get(&CratesFixture::crate_upstream_path(&name, "1.0.0"))
            .expect("published");
        up.put(&format!("api/{name}/1.0.0/download"), bytes);
    }
    up.set_delay(DELAY);
    up.set_request_log(false);
    // Connection threads for the 64-job run's burst of new connections
    // (see `Upstream::prewarm`).
    up.prewarm(64);
    // For profiling by hand: keep the upstream up and say where it is.
    if std::env::var_os("MIRROR_BENCH_HOLD").is_some() {
        println!(
            "HOLD index={} crates={}",
            fx.index_url(),
            fx.crates_url_template()
        );
        std::thread::sleep(Duration::from_secs(3600));
    }
    let romt = support::romt();
    let panamax = support::panamax();
    println!(
        "# {crates} crates, {}ms per request; `init` untimed; `pull` timed apart from `download mark`; median of {} runs",
        DELAY.as_millis(),
        runs()
    );
    if panamax.is_none() {
        println!("# panamax: not found (set PANAMAX or see bench/README.md); skipped");
    }
    if romt.is_none() {
        println!(
            "# romt: not found (set ROMT or create bench/.venv, see bench/README.md); skipped"
        );
    }
    for jobs in [4, 16, 64] {
        let floor = DELAY.mul_f64(crates as f64 / jobs as f64);
        let rounds = DELAY * crates.div_ceil(jobs) as u32;
        let (_, bare) = median(|| (Duration::ZERO, bare_client(&up, crates, jobs)));
        let (pull, ours) = median(|| mirror_update(&fx, jobs));
        let mut line = format!(
            "J={jobs:2}: floor {:6.3}s | mirror download+mark {:6.3}s ratio {:.2} (pull {:.3}s, update {:.3}s)",
            floor.as_secs_f64(),
            ours.as_secs_f64(),
            ours.as_secs_f64() / floor.as_secs_f64(),
            pull.as_secs_f64(),
            (pull + ours).as_secs_f64(),
        );
        if !crates.is_multiple_of(jobs) {
            line.push_str(&format!(
                " [rounds floor {:.3}s: ratio {:.2}]",
                rounds.as_secs_f64(),
                ours.as_secs_f64() / rounds.as_secs_f64()
            ));
        }
        line.push_str(&format!(
            " | bare client {:6.3}s ratio {:.2}",
            bare.as_secs_f64(),
            bare.as_secs_f64() / floor.as_secs_f64()
        ));
        if let Some(romt) = &romt {
            let (rpull, theirs) = median(|| romt_update(romt, &fx, jobs));
            line.push_str(&format!(
                " | romt {:6.3}s ratio {:.2} (pull {:.3}s) -> mirror {:.1}x faster",
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / floor.as_secs_f64(),
                rpull.as_secs_f64(),
                theirs.as_secs_f64() / ours.as_secs_f64()
            ));
        }
        if let Some(panamax) = &panamax {
            let (_, theirs) = median(|| (Duration::ZERO, panamax_sync(panamax, &up, &fx, jobs)));
            line.push_str(&format!(
                " | panamax sync {:6.3}s vs mirror update -> mirror {:.1}x faster",
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / (pull + ours).as_secs_f64()
            ));
        }
        println!("{line}");
    }
    // A whole trip, step by step, with peak memory.
    up.set_delay(Duration::ZERO);
    let ours = trip(
        "mirror",
        &mut fx,
        &|root, args| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_mirror"));
            c.arg("--root").arg(root).arg("crate").arg("-q").args(args);
            c.env_remove("MIRROR_JOBS");
            c
        },
        "-j",
    );
    let theirs = romt.as_ref().map(|romt| {
        trip(
            "romt",
            &mut fx,
            &|root, args| {
                let mut c = Command::new(romt);
                c.current_dir(root).arg("crate").arg("-q").args(args);
                c
            },
            "--num-jobs",
        )
    });
    println!("# two trips at 16 jobs, no delay: time and peak memory per step");
    for (i, (step, t, kib)) in ours.iter().enumerate() {
        let mut line = format!(
            "{step:14} mirror {:7.3}s {:6} MiB",
            t.as_secs_f64(),
            kib / 1024
        );
        if let Some((_, rt, rkib)) = theirs.as_ref().and_then(|v| v.get(i)) {
            line.push_str(&format!(
                " | romt {:7.3}s {:6} MiB -> mirror {:.1}x faster",
                rt.as_secs_f64(),
                rkib / 1024,
                rt.as_secs_f64() / t.as_secs_f64()
            ));
        }
        println!("{line}");
    }

    // The fixed cost (process, index diff, client, connections): no delay.
    up.set_delay(Duration::ZERO);
    let (pull, ours) = mirror_update(&fx, 64);
    println!(
        "J=64, no delay: mirror download+mark {:.3}s (pull {:.3}s) = the fixed cost",
        ours.as_secs_f64(),
        pull.as_secs_f64()
    );
}
