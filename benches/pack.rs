//! Packing speed against GNU tar (uncompressed): `cargo bench --bench pack`.
//!
//! Builds ~100 MB of mostly incompressible files (like `.crate` and
//! `.tar.xz` payloads) plus a little text, then times `tar cf` and
//! `mirror::bundle::pack` (best of 3 each). `pack` fsyncs its archive, so
//! tar is timed both alone and followed by an fsync of its output.
//! `MIRROR_BENCH_DIR` chooses where the files go (default: the system
//! temporary directory).

use std::fs::{self, File};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mirror::bundle::{self, PackOptions};
use mirror::report::Reporter;

/// Records how long each phase of the last run took.
#[derive(Default)]
struct Phases(Mutex<PhaseLog>);

/// The phase running (name, start) and the phases ended.
type PhaseLog = (Option<(String, Instant)>, Vec<(String, Duration)>);

impl Reporter for Phases {
    fn begin(&self, phase: &str, _items: u64, _bytes: Option<u64>) {
        self.0.lock().unwrap().0 = Some((phase.to_string(), Instant::now()));
    }
    fn end(&self) {
        let mut g = self.0.lock().unwrap();
        if let Some((name, t)) = g.0.take() {
            g.1.push((name, t.elapsed()));
        }
    }
}

const FILES: usize = 400;
const FILE_SIZE: usize = 256 * 1024;
const TEXT_FILES: usize = 40;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn text(len: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "{{\"name\":\"crate-{seed}\",\"vers\":\"0.{i}.0\",\"deps\":[],\"yanked\":false}}\n"
            )
            .as_bytes(),
        );
        i += 1;
    }
    out
}

fn best_of_3(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let base = std::env::var_os("MIRROR_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).expect("temporary directory");
    let root = tmp.path().join("root");
    let mut members = Vec::new();
    let mut total = 0u64;
    for i in 0..FILES {
        let rel = format!("crates/{:02x}/{:02x}/c{i}-1.0.{i}.crate", i % 256, i / 7);
        let p = root.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data = noise(FILE_SIZE, i as u64 + 1);
        total += data.len() as u64;
        fs::write(p, data).unwrap();
        members.push(rel);
    }
    for i in 0..TEXT_FILES {
        let rel = format!("index/{:02}/crate-{i}", i % 10);
        let p = root.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data = text(20_000 + 1000 * i, i);
        total += data.len() as u64;
        fs::write(p, data).unwrap();
        members.push(rel);
    }
    println!(
        "pack bench: {} files, {:.1} MB under {}",
        members.len(),
        total as f64 / 1e6,
        base.display()
    );

    let list = tmp.path().join("members.txt");
    fs::write(&list, members.join("\n") + "\n").unwrap();
    let tar_out = tmp.path().join("tar.tar");
    let run_tar = |sync: bool| {
        let st = Command::new("tar")
            .arg("cf")
            .arg(&tar_out)
            .arg("-C")
            .arg(&root)
            .arg("-T")
            .arg(&list)
            .status()
            .expect("GNU tar");
        assert!(st.success());
        if sync {
            File::open(&tar_out).unwrap().sync_all().unwrap();
        }
    };
    run_tar(true); // warm the page cache
    let tar_time = best_of_3(|| run_tar(false));
    let tar_sync_time = best_of_3(|| run_tar(true));

    let archive = tmp.path().join("bundle.tar.gz");
    let opts = PackOptions {
        ecosystem: "crates".into(),
        range: None,
    };
    let mut summary = None;
    let mut phases = Vec::new();
    let pack_time = best_of_3(|| {
        let rep = Phases::default();
        summary = Some(bundle::pack(&root, &members, &archive, &opts, &rep).unwrap());
        phases = rep.0.into_inner().unwrap().1;
    });
    let summary = summary.unwrap();
    let tar_size = fs::metadata(&tar_out).unwrap().len();

    println!(
        "tar cf         {:>8.1} ms  {:>8.1} MB/s  ({:.1} MB)",
        tar_time.as_secs_f64() * 1e3,
        mbps(total, tar_time),
        tar_size as f64 / 1e6
    );
    println!(
        "tar cf + fsync {:>8.1} ms  {:>8.1} MB/s",
        tar_sync_time.as_secs_f64() * 1e3,
        mbps(total, tar_sync_time)
    );
    println!(
        "bundle::pack   {:>8.1} ms  {:>8.1} MB/s  ({:.1} MB, {} gzip members; hashes, gzips, fsyncs)",
        pack_time.as_secs_f64() * 1e3,
        mbps(total, pack_time),
        summary.archive_bytes as f64 / 1e6,
        summary.gzip_members
    );
    for (name, d) in &phases {
        println!(
            "  phase {name:<8} {:>8.1} ms (last run)",
            d.as_secs_f64() * 1e3
        );
    }
    println!(
        "pack / tar time: {:.2}x   pack / (tar + fsync) time: {:.2}x",
        pack_time.as_secs_f64() / tar_time.as_secs_f64(),
        pack_time.as_secs_f64() / tar_sync_time.as_secs_f64()
    );
}
