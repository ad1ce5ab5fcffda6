//! Decompression bombs, oversized and endless bodies: every kind of file
//! the engine and the pull-through cache download, and every compressed
//! input, has a ceiling fitted to the real thing; past it the command
//! fails naming what, the limit and what it found, publishes nothing, and
//! its peak memory (children included: git) stays under [`CAP_KIB`].
//!
//! Peak memory is GNU time's `%M` for a command (the maximum RSS of the
//! process and of the children it waited for), and `VmHWM` of
//! `/proc/<pid>/status` for a running server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use crate::crates_serve::request;
use crate::rustup::require_client;
use crate::support::archive::{file, manifest_for, tar_gz};
use crate::support::crates::{git, index_path, CratesFixture};
use crate::support::hex::{key_path, HexRepo};
use crate::support::keys::TestKey;
use crate::support::serve_process::ServeProcess;
use crate::support::sparse::SparseUpstream;
use crate::support::tree::paths;
use crate::support::upstream::{Fault, Upstream};
use crate::support::{arch, dist};

/// The most memory one hostile input may cost a process, in KiB.
const CAP_KIB: u64 = 256 * 1024;

/// How much an endless body sends before the fake upstream gives up (so
/// a test of code without limits ends), and the `Content-Length` an
/// oversized one claims: more than the cap, so reading it whole shows.
const FLOOD: u64 = 300 << 20;

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `mirror --root ROOT ARGS…` under GNU time: its output, and its peak
/// RSS in KiB (`None` when GNU time is missing outside CI).
fn measured(root: &Path, args: &[String]) -> (Output, Option<u64>) {
    let mut cmd;
    let report = tempfile::NamedTempFile::new().unwrap();
    let time = require_client("time");
    match &time {
        Some(time) => {
            cmd = Command::new(time);
            cmd.args(["-f", "%M", "-o"])
                .arg(report.path())
                .arg(env!("CARGO_BIN_EXE_mirror"));
        }
        None => cmd = Command::new(env!("CARGO_BIN_EXE_mirror")),
    }
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env("MIRROR_RETRY_DELAY_MS", "0")
        .env_remove("MIRROR_JOBS");
    let out = crate::support::run_logged(&mut cmd, &format!("mirror {args:?}"));
    let peak = time.map(|_| {
        // "Command exited with non-zero status 1" may come first.
        let text = std::fs::read_to_string(report.path()).unwrap();
        text.lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no peak RSS in {text:?}"))
    });
    (out, peak)
}

fn assert_under_cap(what: &str, peak_kib: Option<u64>) {
    if let Some(kib) = peak_kib {
        eprintln!("{what}: peak RSS {} MiB", kib / 1024);
        assert!(
            kib < CAP_KIB,
            "{what}: peak RSS {} MiB, more than {} MiB",
            kib / 1024,
            CAP_KIB / 1024
        );
    }
}

/// The server's peak RSS in KiB so far.
fn server_peak(server: &ServeProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// Files under `root` (outside `.mirror/`) named `name` or `name.partial`.
fn published(root: &Path, name: &str) -> Vec<String> {
    let partial = format!("{name}.partial");
    paths(root, |n| !n.starts_with(".mirror"))
        .into_iter()
        .filter(|p| {
            let last = p.rsplit('/').next().unwrap_or(p);
            last == name || last == partial
        })
        .collect()
}

// ------------------------------------------------------------ gzip bombs

/// A gzip member of `n` zero bytes (about n/1000 compressed).
fn gz_zeros(n: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; n]).unwrap();
    gz.finish().unwrap()
}

/// An Arch database whose one entry's file list is `size` zero bytes:
/// gzip members one after the other (as `gzip -c a b` writes them), so
/// it costs the test little to build; about `size / 1000` bytes.
fn arch_db_bomb(size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("bomb-1.0-1/files").unwrap();
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    let mut out = crate::support::archive::gz(header.as_bytes());
    const CHUNK: u64 = 4 << 20;
    let chunk = gz_zeros(CHUNK as usize);
    for _ in 0..size / CHUNK {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&gz_zeros((size % CHUNK) as usize));
    // The end of the tar: two zero blocks.
    out.extend_from_slice(&gz_zeros(1024));
    out
}

/// A database that inflates to more than the cap (and to more than
/// anything but a bomb would at its compressed size).
fn big_bomb() -> Vec<u8> {
    arch_db_bomb(FLOOD)
}

#[test]
fn an_arch_database_bomb_in_a_bundle_is_refused_within_the_memory_cap() {
    let bomb = big_bomb();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let member = "archlinux/core/os/x86_64/core.db";
    let archive = tar_gz(&[
        file(
            "MIRROR-BUNDLE.json",
            &manifest_for("arch", &[(member, &bomb)]),
        ),
        file(member, &bomb),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.tar.gz");
    std::fs::write(&path, &archive).unwrap();
    let root = tmp.path().join("root");
    let key = TestKey::Signing.public_path().display().to_string();
    let (out, peak) = measured(
        &root,
        &owned(&[
            "arch",
            "import",
            "--repo",
            "core",
            "--keyring",
            &key,
            "--archive",
            path.to_str().unwrap(),
        ]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bomb was imported");
    assert!(
        err.contains("Arch database (inflated) too large") && err.contains("limit:"),
        "{err}"
    );
    assert_under_cap("arch import of a database bomb", peak);
    assert_eq!(published(&root, "core.db"), Vec::<String>::new());
}

#[test]
fn an_arch_database_bomb_from_upstream_is_refused_by_download_and_by_the_cache() {
    let up = Upstream::start();
    arch::publish(&up, "m", "core", &[arch::Pkg::new("hello", "1.0-1")]);
    up.put("m/core/os/x86_64/core.db", big_bomb());

    let tmp = tempfile::tempdir().unwrap();
    let (out, peak) = measured(tmp.path(), &arch_download(&up));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bomb was downloaded");
    assert!(err.contains("Arch database (inflated) too large"), "{err}");
    assert_under_cap("arch download of a database bomb", peak);
    assert_eq!(published(tmp.path(), "core.db"), Vec::<String>::new());

    let served = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(
        served.path(),
        &["--upstream-arch", &up.url("m/$repo/os/$arch")],
    );
    let r = request(server.addr, "GET", "/archlinux/core/os/x86_64/core.db", &[]);
    assert!(
        r.status >= 500,
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains("too large"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let peak = server_peak(&server);
    assert_under_cap("serve --upstream-arch, a database bomb", Some(peak));
    assert_eq!(published(served.path(), "core.db"), Vec::<String>::new());
}

/// `arch download` of repository `core` from `<up>/m/`.
fn arch_download(up: &Upstream) -> Vec<String> {
    let key = TestKey::Signing.public_path().display().to_string();
    owned(&[
        "arch",
        "download",
        "--url",
        &up.url("m/$repo/os/$arch"),
        "--repo",
        "core",
        "--keyring",
        &key,
    ])
}

/// `head -c SIZE /dev/zero | gzip -1`: one gzip member (a registry
/// resource is read as one), made by the real gzip in a moment.
fn gzip_of_zeros(size: u64) -> Vec<u8> {
    require_client("gzip").expect("gzip");
    let out = Command::new("sh")
        .args(["-c", &format!("head -c {size} /dev/zero | gzip -1")])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn a_hex_registry_bomb_is_refused_within_the_memory_cap() {
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    let bomb = gzip_of_zeros(FLOOD);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    up.put("hex/names", bomb);
    let key = key_path("hex-test.pub.pem").display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let (out, peak) = measured(
        tmp.path(),
        &owned(&[
            "hex",
            "download",
            "--url",
            &up.url("hex"),
            "--public-key",
            &key,
        ]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bomb was taken");
    assert!(
        err.contains("Hex registry resource (inflated) too large"),
        "{err}"
    );
    assert_under_cap("hex download of a registry bomb", peak);
    assert_eq!(published(tmp.path(), "names"), Vec::<String>::new());
}

// ------------------------------------------------- a huge index blob

/// Commit a file of `size` bytes of repeated index lines at a crate's
/// path, `hu/ge/huge` (kilobytes once compressed).
fn add_a_huge_file(fx: &mut CratesFixture<'_>, size: usize) {
    let line = fx.read(&index_path("leaf")).unwrap();
    let mut text = String::with_capacity(size + line.len());
    while text.len() < size {
        text.push_str(&line);
    }
    fx.write(&index_path("huge"), &text);
    drop(text);
    fx.commit("Add a huge file");
}

/// A crates archive whose index bundle adds a file of `size` bytes of
/// repeated index lines (kilobytes once compressed) at a crate's path.
fn crates_archive_with_a_huge_file(dir: &Path, size: usize) -> Vec<u8> {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    add_a_huge_file(&mut fx, size);
    let bundle = dir.join("origin.bundle");
    git(&fx.path(), &["branch", "-f", "bundle/master", "master"]);
    git(
        &fx.path(),
        &[
            "bundle",
            "create",
            bundle.to_str().unwrap(),
            "bundle/master",
        ],
    );
    let bytes = std::fs::read(&bundle).unwrap();
    let member = mirror::eco::crates::BUNDLE_MEMBER;
    tar_gz(&[
        file(
            "MIRROR-BUNDLE.json",
            &manifest_for("crates", &[(member, &bytes)]),
        ),
        file(member, &bytes),
    ])
}

#[test]
fn a_crates_bundle_with_a_huge_index_file_is_refused_within_the_memory_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = crates_archive_with_a_huge_file(tmp.path(), FLOOD as usize);
    assert!(archive.len() < 4 << 20, "{} bytes", archive.len());
    let path = tmp.path().join("crates.tar.gz");
    std::fs::write(&path, &archive).unwrap();
    let root = tmp.path().join("root");
    let (out, _) = measured(&root, &owned(&["crate", "init-import"]));
    assert!(out.status.success());
    let (out, peak) = measured(
        &root,
        &owned(&["crate", "import", "--archive", path.to_str().unwrap()]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a huge index file was imported");
    assert!(
        err.contains("crate index file too large") && err.contains("hu/ge/huge"),
        "{err}"
    );
    assert_under_cap("crate import of a huge index file", peak);
    let index = root.join("git/crates.io-index");
    for branch in ["master", "working", "origin_master"] {
        let out = Command::new("git")
            .arg("-C")
            .arg(&index)
            .args(["rev-parse", "--verify", "-q", branch])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{branch} was published");
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(&index)
        .args(["rev-parse", "--verify", "-q", "refs/remotes/origin/master"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "origin/master took the bundle");
}

#[test]
fn an_upstream_index_with_a_huge_file_is_refused_by_update_within_the_memory_cap() {
    let up = Upstream::start();
    let mut fx = crates_fixture(&up);
    add_a_huge_file(&mut fx, FLOOD as usize);
    // Over file:// the upstream's git (upload-pack, pack-objects) runs
    // as a child of ours, under its own configuration (git does not pass
    // ours on to another repository): a real upstream is another host.
    // Have it stream its large blobs, so the peak measured is ours.
    git(&fx.path(), &["config", "core.bigFileThreshold", "16m"]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (out, _) = measured(
        root,
        &owned(&["crate", "init", "--index-url", &fx.index_url()]),
    );
    assert!(out.status.success());
    let (out, peak) = measured(
        root,
        &owned(&["crate", "update", "--crates-url", &fx.crates_url_template()]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a huge index file was taken");
    assert!(
        err.contains("crate index file too large") && err.contains("hu/ge/huge"),
        "{err}"
    );
    assert_under_cap("crate update from an index with a huge file", peak);
    let index = root.join("git/crates.io-index");
    for branch in ["master", "origin_master"] {
        let out = Command::new("git")
            .arg("-C")
            .arg(&index)
            .args(["rev-parse", "--verify", "-q", branch])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{branch} was set");
    }
    assert_eq!(published(root, "leaf-1.0.0.crate"), Vec::<String>::new());
}

// ------------------------------------------------ bodies without end

/// One kind of file a download fetches, and how to make it fetch it.
struct Kind<'a> {
    name: &'static str,
    up: &'a Upstream,
    prepare: Vec<Vec<String>>,
    download: Vec<String>,
    /// The upstream path to fault.
    path: String,
    /// What the error must call it.
    want: &'static str,
}

impl Kind<'_> {
    /// An endless body and one larger than any real file of the kind are
    /// each refused, naming the ceiling; nothing is published.
    fn refuses_floods(&self) {
        let name = self.name;
        let file_name = self.path.rsplit('/').next().unwrap().to_string();
        for (what, fault) in [
            ("endless body", Fault::Endless { up_to: FLOOD }),
            ("oversized body", Fault::Huge { len: FLOOD }),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path();
            for args in &self.prepare {
                let (out, _) = measured(root, args);
                assert!(out.status.success(), "{name}: {args:?} failed");
            }
            self.up.fault(&self.path, fault, 5);
            let (out, peak) = measured(root, &self.download);
            self.up.clear_faults(&self.path);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name}, {what}: accepted");
            assert!(
                err.contains(&format!("{} too large", self.want)) && err.contains("limit:"),
                "{name}, {what}: the limit is not named:\n{err}"
            );
            assert!(
                err.contains(&self.up.url(&self.path)),
                "{name}, {what}: the URL is not named:\n{err}"
            );
            assert_under_cap(&format!("{name}, {what}"), peak);
            assert_eq!(
                published(root, &file_name),
                Vec::<String>::new(),
                "{name}, {what}: published"
            );
        }
    }
}

fn crates_fixture(up: &Upstream) -> CratesFixture<'_> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    fx
}

#[test]
fn a_crate_download_refuses_endless_and_oversized_bodies() {
    let up = Upstream::start();
    let fx = crates_fixture(&up);
    Kind {
        name: "crate",
        up: &up,
        prepare: vec![owned(&["crate", "init", "--index-url", &fx.index_url()])],
        download: owned(&["crate", "update", "--crates-url", &fx.crates_url_template()]),
        path: CratesFixture::crate_upstream_path("leaf", "1.0.0"),
        want: "crate archive",
    }
    .refuses_floods();
}

/// `--max-file-size` raises a ceiling: a crate body of 200 MiB is then
/// received whole (and refused by its checksum, since it is not the
/// crate), not cut at 128 MiB.
#[test]
fn max_file_size_raises_the_crate_ceiling() {
    let up = Upstream::start();
    let fx = crates_fixture(&up);
    let path = CratesFixture::crate_upstream_path("leaf", "1.0.0");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (out, _) = measured(
        root,
        &owned(&["crate", "init", "--index-url", &fx.index_url()]),
    );
    assert!(out.status.success());
    up.fault(&path, Fault::Huge { len: 200 << 20 }, 1);
    let (out, _) = measured(
        root,
        &owned(&[
            "crate",
            "update",
            "--crates-url",
            &fx.crates_url_template(),
            "--max-file-size",
            "256M",
        ]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("checksum mismatch") && !err.contains("too large"),
        "{err}"
    );
    assert_eq!(published(root, "leaf-1.0.0.crate"), Vec::<String>::new());
}

#[test]
fn a_sparse_index_download_refuses_endless_and_oversized_bodies() {
    let up = Upstream::start();
    let fx = crates_fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    Kind {
        name: "sparse index",
        up: &up,
        prepare: vec![owned(&["crate", "init", "--index-url", &sp.index_url()])],
        download: owned(&[
            "crate",
            "update",
            "--crates-url",
            &fx.crates_url_template(),
            "--crate",
            "leaf",
        ]),
        path: format!("index/{}", index_path("leaf")),
        want: "crate index file",
    }
    .refuses_floods();
}

fn toolchain_kind<'a>(up: &'a Upstream, path: String, want: &'static str) -> Kind<'a> {
    let key = TestKey::Signing.public_path().display().to_string();
    let mut download = owned(&["toolchain"]);
    download.extend(owned(crate::toolchain::MINIMAL));
    download.extend(owned(&["--url", &up.url("dist"), "--keyring", &key]));
    Kind {
        name: "toolchain",
        up,
        prepare: Vec::new(),
        download,
        path,
        want,
    }
}

#[test]
fn a_toolchain_download_refuses_endless_and_oversized_manifests_and_companions() {
    let up = Upstream::start();
    dist::publish(&up, &dist::STABLE, &["x86_64-unknown-linux-gnu"]);
    let manifest = "dist/channel-rust-stable.toml";
    assert!(up.get(manifest).is_some());
    toolchain_kind(&up, manifest.into(), "channel manifest").refuses_floods();
    for companion in [".sha256", ".asc"] {
        toolchain_kind(
            &up,
            format!("{manifest}{companion}"),
            "signature or checksum file",
        )
        .refuses_floods();
    }
}

#[test]
fn a_hex_download_refuses_endless_and_oversized_resources_and_tarballs() {
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    let key = key_path("hex-test.pub.pem").display().to_string();
    for (path, want) in [
        ("hex/names", "Hex registry resource"),
        ("hex/versions", "Hex registry resource"),
        ("hex/packages/beta", "Hex package resource"),
        ("hex/tarballs/beta-2.1.0.tar", "Hex package tarball"),
    ] {
        assert!(up.get(path).is_some(), "{path}");
        Kind {
            name: "hex",
            up: &up,
            prepare: Vec::new(),
            download: owned(&[
                "hex",
                "download",
                "--url",
                &up.url("hex"),
                "--public-key",
                &key,
            ]),
            path: path.into(),
            want,
        }
        .refuses_floods();
    }
}

#[test]
fn an_arch_download_refuses_endless_and_oversized_databases() {
    let up = Upstream::start();
    arch::publish(&up, "m", "core", &[arch::Pkg::new("hello", "1.0-1")]);
    Kind {
        name: "arch",
        up: &up,
        prepare: Vec::new(),
        download: arch_download(&up),
        path: "m/core/os/x86_64/core.db".into(),
        want: "Arch database",
    }
    .refuses_floods();
}

// ------------------------------------------- the pull-through cache

#[test]
fn the_cache_refuses_endless_and_oversized_crates_and_index_files() {
    let up = Upstream::start();
    let fx = crates_fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let crate_path = CratesFixture::crate_upstream_path("leaf", "1.0.0");
    let index = format!("index/{}", index_path("leaf"));
    for (what, fault) in [
        ("endless body", Fault::Endless { up_to: FLOOD }),
        ("oversized body", Fault::Huge { len: FLOOD }),
    ] {
        let root = tempfile::tempdir().unwrap();
        let server = ServeProcess::start(
            root.path(),
            &[
                "--upstream-crates",
                &sp.index_url(),
                "--upstream-crates-dl",
                &fx.crates_url_template(),
            ],
        );
        // The index file first: refused, nothing kept.
        up.fault(&index, fault, 5);
        let r = request(
            server.addr,
            "GET",
            &format!("/index/{}", index_path("leaf")),
            &[],
        );
        assert!(r.status >= 500, "{what}: index file answered {}", r.status);
        assert!(
            String::from_utf8_lossy(&r.body).contains("crate index file too large"),
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        up.clear_faults(&index);
        // Then the crate, its index file good.
        up.fault(&crate_path, fault, 5);
        // A client following the transfer gets its head at once; the
        // body is cut short where the ceiling is passed (read raw here:
        // chunk sizes included, hence the margin).
        let r = request(server.addr, "GET", "/crates/leaf/leaf-1.0.0.crate", &[]);
        let limit = mirror::limit::CRATE_FILE.bytes + (1 << 20);
        assert!(
            r.status >= 500 || (r.status == 200 && r.body.len() as u64 <= limit),
            "{what}: crate answered {} with {} bytes",
            r.status,
            r.body.len()
        );
        assert_under_cap(&format!("serve cache, {what}"), Some(server_peak(&server)));
        assert_eq!(
            published(root.path(), "leaf-1.0.0.crate"),
            Vec::<String>::new(),
            "{what}: published"
        );
        up.clear_faults(&crate_path);
    }
}

/// A file whose size the plan knows (an Arch package: `%CSIZE%`) is
/// cut one byte past that size when its body does not end.
#[test]
fn a_body_longer_than_its_planned_size_is_cut_one_byte_past_it() {
    let up = Upstream::start();
    let hello = arch::Pkg::new("hello", "1.0-1");
    arch::publish(&up, "m", "core", std::slice::from_ref(&hello));
    let path = format!("m/core/os/x86_64/{}", hello.filename());
    up.fault(&path, Fault::Endless { up_to: FLOOD }, 5);
    let tmp = tempfile::tempdir().unwrap();
    let (out, peak) = measured(tmp.path(), &arch_download(&up));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an endless package was accepted");
    let size = hello.bytes().len();
    assert!(
        err.contains("body (longer than its planned size) too large")
            && err.contains(&format!("limit: {size} bytes")),
        "{err}"
    );
    assert_under_cap("arch download, an endless package", peak);
    assert_eq!(
        published(tmp.path(), &hello.filename()),
        Vec::<String>::new()
    );
    assert_eq!(published(tmp.path(), "core.db"), Vec::<String>::new());
}
