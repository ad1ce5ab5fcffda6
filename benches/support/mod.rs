//! What the benchmarks share: where peers and trees are, and timing a
//! command. Included by each bench with `#[path = "support/mod.rs"]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A peer's executable: `$VAR`, else `default` under the project; `None`
/// when absent (the bench then says so and skips it).
pub fn peer(var: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default));
    p.is_file().then_some(p)
}

/// romt from `$ROMT` or `bench/.venv/bin/romt`.
pub fn romt() -> Option<PathBuf> {
    peer("ROMT", "bench/.venv/bin/romt")
}

/// panamax from `$PANAMAX` or `bench/.panamax/bin/panamax`.
pub fn panamax() -> Option<PathBuf> {
    peer("PANAMAX", "bench/.panamax/bin/panamax")
}

/// Run `cmd` to success and time it; a failure panics with its stderr.
pub fn run(mut cmd: Command, what: &str) -> Duration {
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

/// Where downloads and trees land: `$MIRROR_BENCH_DIR`, else /dev/shm when
/// present (so the figures show the tools, not this machine's inode
/// allocation; on ext4 many creates after many deletes cost ~1 ms each),
/// else /tmp.
pub fn bench_dir() -> tempfile::TempDir {
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
