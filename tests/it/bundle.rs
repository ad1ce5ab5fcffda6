//! Bundles end to end: pack → unpack round trips, romt archives, and one
//! hand-made hostile archive per rejection rule.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use mirror::bundle::{self, Manifest, PackOptions, UnpackOptions};
use mirror::report::{NullReporter, Reporter};
use mirror::verify::Sha256Digest;

use crate::support::archive::{self, file, raw, tar_gz, Raw};

/// Deterministic incompressible bytes (xorshift64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
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

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// Every file (not directory) under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(base, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(base).unwrap().to_owned();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn rustup_opts() -> UnpackOptions {
    UnpackOptions {
        allowed_prefixes: vec!["rustup/archive/".into()],
        expect_ecosystem: Some("rustup".into()),
        publish_last: Vec::new(),
        check_staged: None,
        versioned: None,
        expect_range: None,
    }
}

/// Records verbose lines, so tests can see the publish order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn verbose(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

const LONG_DIR: &str = "rustup/archive/1.28.2/a-rather-long-target-triple-name-that-goes-on-and-on-x86_64-unknown-linux-gnu-with-more";

fn sample_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init".into(),
            b"ELF pretend binary\n".repeat(10_000),
        ),
        (
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init.sha256".into(),
            b"abc  rustup-init\n".to_vec(),
        ),
        (
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/big.tar.xz".into(),
            noise(300_000, 7),
        ),
        (
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/big.tar.xz.asc".into(),
            b"-----BEGIN PGP SIGNATURE-----\n".to_vec(),
        ),
        ("rustup/archive/1.28.2/empty".into(), Vec::new()),
        (format!("{LONG_DIR}/rustup-init.exe"), noise(100_000, 9)),
        (
            "rustup/archive/1.28.2/notes.txt".into(),
            b"text ".repeat(30_000),
        ),
    ];
    for (p, d) in &files {
        write(root, p, d);
    }
    files
}

fn pack_sample(src: &Path, archive: &Path) -> (Vec<(String, Vec<u8>)>, bundle::PackSummary) {
    let files = sample_tree(src);
    let members: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let opts = PackOptions {
        ecosystem: "rustup".into(),
        range: Some(bundle::Range {
            start: Some("1.28.1".into()),
            end: "1.28.2".into(),
        }),
    };
    let summary = bundle::pack(src, &members, archive, &opts, &NullReporter).unwrap();
    (files, summary)
}

#[test]
fn pack_then_unpack_round_trips_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let archive = tmp.path().join("out/bundle.tar.gz");
    let (files, summary) = pack_sample(&src, &archive);

    assert_eq!(summary.manifest.members.len(), files.len());
    assert_eq!(summary.manifest.ecosystem, "rustup");
    assert!(summary.manifest.tool.starts_with("mirror "));
    assert!(
        summary.gzip_members >= 3,
        "text, stored, text: {}",
        summary.gzip_members
    );
    assert_eq!(
        summary.bytes,
        files.iter().map(|(_, d)| d.len() as u64).sum::<u64>()
    );
    // Only the archive is left beside it (no temporary).
    assert_eq!(files_under(&tmp.path().join("out")), vec!["bundle.tar.gz"]);

    let rec = Recorder::default();
    let got = bundle::unpack(&archive, &dst, &rustup_opts(), &rec).unwrap();
    let m = got.manifest.expect("our bundles carry a manifest");
    assert_eq!(m, summary.manifest);
    assert_eq!(m.range.unwrap().end, "1.28.2");
    let names: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(got.files, names);
    for (p, d) in &files {
        assert_eq!(&fs::read(dst.join(p)).unwrap(), d, "{p}");
    }
    let mut want = names.clone();
    want.sort();
    assert_eq!(files_under(&dst), want, "nothing but the members");
    assert!(dst.join(".mirror/staging").is_dir());
    assert_eq!(
        fs::read_dir(dst.join(".mirror/staging")).unwrap().count(),
        0
    );
    // Unpacking again over an existing tree replaces the files.
    bundle::unpack(&archive, &dst, &rustup_opts(), &NullReporter).unwrap();
    assert_eq!(files_under(&dst), want);
}

#[test]
fn pack_keeps_mtime_and_writes_plain_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let archive = tmp.path().join("b.tar.gz");
    pack_sample(&src, &archive);
    let f = fs::File::open(&archive).unwrap();
    let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.username().unwrap(), Some(""));
        assert!(h.mtime().unwrap() > 0);
        names.push(String::from_utf8(e.path_bytes().into_owned()).unwrap());
    }
    assert_eq!(names[0], "MIRROR-BUNDLE.json");
    assert!(names.iter().any(|n| n.starts_with(LONG_DIR)));
}

#[test]
fn gnu_tar_and_python_read_our_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let archive = tmp.path().join("b.tar.gz");
    let (files, _) = pack_sample(&src, &archive);

    let out = Command::new("tar").arg("tzf").arg(&archive).output();
    match out {
        Err(e) => eprintln!("SKIPPED: GNU tar not runnable here ({e})"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listed = String::from_utf8(out.stdout).unwrap();
            let listed: Vec<&str> = listed.lines().collect();
            assert_eq!(listed[0], "MIRROR-BUNDLE.json");
            assert_eq!(listed.len(), files.len() + 1);
            let x = tmp.path().join("x");
            fs::create_dir(&x).unwrap();
            let st = Command::new("tar")
                .arg("xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&x)
                .status()
                .unwrap();
            assert!(st.success());
            for (p, d) in &files {
                assert_eq!(&fs::read(x.join(p)).unwrap(), d, "{p}");
            }
        }
    }

    let script = "import sys, tarfile\n\
                  t = tarfile.open(sys.argv[1], 'r:gz')\n\
                  names = t.getnames()\n\
                  print(len(names))\n\
                  print(names[0])\n\
                  for m in t.getmembers():\n    assert m.isfile(), m.name\n    t.extractfile(m).read()\n";
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&archive)
        .output()
    {
        Err(e) => {
            eprintln!("SKIPPED: python3 not runnable here ({e}); tarfile compatibility unchecked")
        }
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            assert_eq!(text, format!("{}\nMIRROR-BUNDLE.json\n", files.len() + 1));
        }
    }
}

#[test]
fn pack_refuses_bad_members_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "a/b", b"x");
    let archive = tmp.path().join("out.tar.gz");
    let opts = PackOptions {
        ecosystem: "rustup".into(),
        range: None,
    };
    for (members, want) in [
        (vec!["a/missing"], "a/missing"),
        (vec!["a/../a/b"], "\"..\" component"),
        (vec!["a/b", "a/b"], "listed twice"),
        (vec!["MIRROR-BUNDLE.json"], "reserved"),
        (vec![".mirror/state.json"], ".mirror/"),
        (vec!["a"], "not a regular file"),
    ] {
        let members: Vec<String> = members.iter().map(|s| s.to_string()).collect();
        let err = bundle::pack(&src, &members, &archive, &opts, &NullReporter)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{want:?} not in {err}");
        assert_eq!(files_under(tmp.path()), vec!["src/a/b"], "{err}");
    }
}

/// Regression: a killed pack left its temporary archive
/// (`.<name>.tmp.<pid>`, as large as the bundle) beside `--archive` for
/// good; every later pack of the same archive left it there.
#[test]
fn killed_pack_left_its_temporary_archive_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "a/b", b"x");
    let archive = tmp.path().join("out.tar.gz");
    // pid 2^22 + 1 is above Linux's pid_max: never alive.
    let dead = tmp.path().join(".out.tar.gz.tmp.4194305");
    let other = tmp.path().join(".other.tar.gz.tmp.4194305");
    for f in [&dead, &other] {
        fs::write(f, b"half an archive").unwrap();
    }
    let opts = PackOptions {
        ecosystem: "rustup".into(),
        range: None,
    };
    bundle::pack(&src, &["a/b".to_string()], &archive, &opts, &NullReporter).unwrap();
    assert!(!dead.exists(), "the killed pack's temporary is left");
    assert!(other.exists(), "another archive's temporary was removed");
}

// ---------------------------------------------------------------------------
// Hand-made archives.

fn manifest_for(entries: &[(&str, &[u8])]) -> Vec<u8> {
    archive::manifest_for("rustup", entries)
}

const GOOD: &str = "rustup/archive/1.0.0/x86_64-unknown-linux-gnu/rustup-init";

/// Unpack `bytes` into `<tmp>/dest`, expect an error containing the archive
/// name and each of `want`, and check nothing was written anywhere: not
/// outside the destination, not published inside it, no staging left.
fn assert_rejected(bytes: &[u8], opts: &UnpackOptions, want: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("hostile.tar.gz");
    fs::write(&archive, bytes).unwrap();
    let dest = tmp.path().join("dest");
    let err = bundle::unpack(&archive, &dest, opts, &NullReporter)
        .expect_err("hostile archive accepted")
        .to_string();
    assert!(err.contains("hostile.tar.gz"), "archive not named: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    assert_eq!(
        files_under(tmp.path()),
        vec!["hostile.tar.gz"],
        "files written for: {err}"
    );
    let mut dirs: Vec<String> = Vec::new();
    for e in fs::read_dir(&dest).unwrap() {
        dirs.push(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    assert_eq!(dirs, vec![".mirror"], "{err}");
    assert_eq!(
        fs::read_dir(dest.join(".mirror/staging")).unwrap().count(),
        0,
        "staging left behind for: {err}"
    );
    err
}

fn good_then(bad: Raw) -> Vec<u8> {
    tar_gz(&[file(GOOD, b"good bytes"), bad])
}

#[test]
fn romt_archive_without_manifest_is_accepted() {
    let bytes = tar_gz(&[
        raw(b"rustup/", b'5', b""),
        raw(b"rustup/archive/", b'5', b""),
        file(GOOD, b"init"),
        file(&format!("{GOOD}.sha256"), b"digest  rustup-init\n"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("romt.tar.gz");
    fs::write(&archive, bytes).unwrap();
    let dest = tmp.path().join("dest");
    let got = bundle::unpack(&archive, &dest, &rustup_opts(), &NullReporter).unwrap();
    assert!(got.manifest.is_none());
    assert_eq!(got.files, vec![GOOD.to_string(), format!("{GOOD}.sha256")]);
    assert_eq!(fs::read(dest.join(GOOD)).unwrap(), b"init");
    assert_eq!(got.bytes, 4 + 20);
}

#[test]
fn publish_last_paths_are_renamed_after_everything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let members = [
        "hex/names",
        "hex/tarballs/a-1.0.0.tar",
        "hex/packages/a",
        "hex/versions",
        "hex/tarballs/b-1.0.0.tar",
    ];
    for m in members {
        write(&src, m, m.as_bytes());
    }
    let members: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    let archive = tmp.path().join("hex.tar.gz");
    let popts = PackOptions {
        ecosystem: "hex".into(),
        range: None,
    };
    bundle::pack(&src, &members, &archive, &popts, &NullReporter).unwrap();
    let opts = UnpackOptions {
        allowed_prefixes: vec!["hex/".into()],
        expect_ecosystem: Some("hex".into()),
        publish_last: vec![
            "hex/versions".into(),
            "hex/names".into(),
            "hex/packages/".into(),
        ],
        check_staged: None,
        versioned: None,
        expect_range: None,
    };
    let rec = Recorder::default();
    bundle::unpack(&archive, &tmp.path().join("dst"), &opts, &rec).unwrap();
    let published: Vec<String> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("publish ").map(str::to_string))
        .collect();
    assert_eq!(
        published,
        [
            "hex/tarballs/a-1.0.0.tar",
            "hex/tarballs/b-1.0.0.tar",
            "hex/versions",
            "hex/names",
            "hex/packages/a"
        ]
    );
}

#[test]
fn existing_directory_at_a_destination_publishes_nothing() {
    let bytes = tar_gz(&[file(GOOD, b"a"), file("rustup/archive/dir", b"b")]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a.tar.gz");
    fs::write(&archive, bytes).unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir_all(dest.join("rustup/archive/dir")).unwrap();
    let err = bundle::unpack(&archive, &dest, &rustup_opts(), &NullReporter)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
    assert!(!dest.join(GOOD).exists());
}

#[test]
fn absolute_path_is_rejected() {
    let name = format!("/tmp/mirror-bundle-test-{}", std::process::id());
    assert_rejected(
        &good_then(file(&name, b"x")),
        &rustup_opts(),
        &[&name, "absolute path"],
    );
    assert!(!Path::new(&name).exists());
}

#[test]
fn dot_dot_component_is_rejected() {
    let bad = good_then(file("rustup/archive/../../../evil", b"x"));
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["rustup/archive/../../../evil", "\"..\" component"],
    );
    assert_rejected(
        &good_then(file("../evil", b"x")),
        &UnpackOptions::default(),
        &["\"..\" component"],
    );
}

#[test]
fn dot_component_is_rejected() {
    assert_rejected(
        &good_then(file("rustup/archive/./x", b"x")),
        &rustup_opts(),
        &["\".\" component"],
    );
}

#[test]
fn empty_component_is_rejected() {
    assert_rejected(
        &good_then(file("rustup/archive//x", b"x")),
        &rustup_opts(),
        &["empty component"],
    );
}

#[test]
fn backslash_is_rejected() {
    assert_rejected(
        &good_then(file("rustup/archive/..\\..\\evil", b"x")),
        &rustup_opts(),
        &["backslash"],
    );
}

#[test]
fn nul_in_long_name_is_rejected() {
    let bad = Raw {
        name: b"rustup/archive/a\0/../../evil".to_vec(),
        kind: b'0',
        data: b"x".to_vec(),
        link: b"",
        claim: None,
    };
    assert_rejected(&good_then(bad), &rustup_opts(), &["NUL"]);
}

#[test]
fn symlink_is_rejected() {
    let bad = good_then(raw(b"rustup/archive/link", b'2', b"/etc/passwd"));
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["rustup/archive/link", "symbolic link"],
    );
}

#[test]
fn hard_link_is_rejected() {
    let bad = good_then(raw(b"rustup/archive/link", b'1', b"/etc/passwd"));
    assert_rejected(&bad, &rustup_opts(), &["rustup/archive/link", "hard link"]);
}

#[test]
fn devices_and_fifos_are_rejected() {
    for (kind, what) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "FIFO"),
    ] {
        assert_rejected(
            &good_then(raw(b"rustup/archive/dev", kind, b"")),
            &rustup_opts(),
            &[what],
        );
    }
}

#[test]
fn unexpected_entry_types_are_rejected() {
    assert_rejected(
        &good_then(raw(b"rustup/archive/odd", b'S', b"")),
        &rustup_opts(),
        &["sparse file"],
    );
    for kind in [b'S', b'7', b'V', b'Z'] {
        let err = assert_rejected(
            &good_then(raw(b"rustup/archive/odd", kind, b"")),
            &rustup_opts(),
            &["rustup/archive/odd"],
        );
        assert!(err.contains("only regular files"), "{err}");
    }
}

#[test]
fn duplicate_member_is_rejected() {
    let bad = tar_gz(&[file(GOOD, b"one"), file(GOOD, b"two")]);
    assert_rejected(&bad, &rustup_opts(), &[GOOD, "occurs twice"]);
}

#[test]
fn file_where_a_directory_is_needed_is_rejected() {
    let bad = tar_gz(&[
        file("rustup/archive/a", b"one"),
        file("rustup/archive/a/b", b"two"),
    ]);
    assert_rejected(&bad, &rustup_opts(), &["rustup/archive/a/b", "conflicts"]);
    let bad = tar_gz(&[
        file("rustup/archive/a/b", b"one"),
        file("rustup/archive/a", b"two"),
    ]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["conflicts with member \"rustup/archive/a/b\""],
    );
}

#[test]
fn member_outside_allowed_prefixes_is_rejected() {
    let bad = good_then(file("dist/channel-rust-stable.toml", b"x"));
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["dist/channel-rust-stable.toml", "rustup/archive/"],
    );
}

#[test]
fn member_under_the_meta_dir_is_rejected() {
    let bad = good_then(file(".mirror/state.json", b"{}"));
    assert_rejected(
        &bad,
        &UnpackOptions::default(),
        &[".mirror/state.json", "may not write"],
    );
}

#[test]
fn member_not_in_manifest_is_rejected() {
    let m = manifest_for(&[(GOOD, b"good")]);
    let bad = tar_gz(&[
        file("MIRROR-BUNDLE.json", &m),
        file(GOOD, b"good"),
        file("rustup/archive/extra", b"x"),
    ]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["rustup/archive/extra", "not listed in MIRROR-BUNDLE.json"],
    );
}

#[test]
fn manifest_member_missing_from_archive_is_rejected() {
    let m = manifest_for(&[
        (GOOD, b"good"),
        ("rustup/archive/gone", b"x"),
        ("rustup/archive/gone2", b"y"),
    ]);
    let bad = tar_gz(&[file("MIRROR-BUNDLE.json", &m), file(GOOD, b"good")]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &[
            "rustup/archive/gone",
            "missing from the archive",
            "(and 1 more)",
        ],
    );
}

#[test]
fn size_mismatch_is_rejected() {
    let m = manifest_for(&[(GOOD, b"good"), ("rustup/archive/b", b"short")]);
    let bad = tar_gz(&[
        file("MIRROR-BUNDLE.json", &m),
        file(GOOD, b"good"),
        file("rustup/archive/b", b"longer!"),
    ]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["rustup/archive/b", "expected size: 5\n", "actual size:   7"],
    );
}

#[test]
fn digest_mismatch_is_rejected_with_both_digests() {
    let m = manifest_for(&[(GOOD, b"good"), ("rustup/archive/b", b"right")]);
    let bad = tar_gz(&[
        file("MIRROR-BUNDLE.json", &m),
        file(GOOD, b"good"),
        file("rustup/archive/b", b"wrong"),
    ]);
    let expected = Sha256Digest::of(b"right").to_hex();
    let actual = Sha256Digest::of(b"wrong").to_hex();
    let err = assert_rejected(
        &bad,
        &rustup_opts(),
        &["checksum mismatch", "rustup/archive/b"],
    );
    assert!(
        err.contains(&format!("\n  expected sha256: {expected}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("\n  actual sha256:   {actual}")),
        "{err}"
    );
}

#[test]
fn manifest_not_first_is_rejected() {
    let m = manifest_for(&[(GOOD, b"good")]);
    let bad = tar_gz(&[file(GOOD, b"good"), file("MIRROR-BUNDLE.json", &m)]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["MIRROR-BUNDLE.json must be the first member"],
    );
}

#[test]
fn invalid_manifest_is_rejected() {
    let bad = tar_gz(&[
        file("MIRROR-BUNDLE.json", b"{\"format\": 1, \"members\": 3}"),
        file(GOOD, b"good"),
    ]);
    assert_rejected(&bad, &rustup_opts(), &["not a valid MIRROR-BUNDLE.json"]);
    let newer = br#"{"format":9,"ecosystem":"rustup","tool":"t","created":"0","members":[]}"#;
    let bad = tar_gz(&[file("MIRROR-BUNDLE.json", newer), file(GOOD, b"good")]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["newer than this mirror understands"],
    );
    let hostile = br#"{"format":1,"ecosystem":"rustup","tool":"t","created":"0","members":[{"path":"../x","size":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#;
    let bad = tar_gz(&[file("MIRROR-BUNDLE.json", hostile)]);
    assert_rejected(&bad, &rustup_opts(), &["\"../x\"", "\"..\" component"]);
}

#[test]
fn manifest_for_another_ecosystem_is_rejected() {
    let m = Manifest::new("crates", None, Vec::new()).to_json();
    let bad = tar_gz(&[file("MIRROR-BUNDLE.json", &m), file(GOOD, b"good")]);
    assert_rejected(&bad, &rustup_opts(), &["\"crates\"", "expected \"rustup\""]);
}

#[test]
fn corrupt_gzip_is_rejected() {
    let mut bytes = good_then(file("rustup/archive/b", &noise(10_000, 3)));
    let n = bytes.len();
    bytes[n - 6] ^= 0xff; // inside the CRC/length trailer
    assert_rejected(&bytes, &rustup_opts(), &["cannot read"]);
    let bytes = good_then(file("rustup/archive/b", &noise(10_000, 3)));
    assert_rejected(&bytes[..bytes.len() / 2], &rustup_opts(), &["cannot read"]);
}

/// Tar writers pad the archive to a whole record (GNU tar's `-b 2048`
/// makes 1 MiB records); such padding is not taken for a gzip bomb.
#[test]
fn record_padding_after_the_tar_end_is_accepted() {
    let mut padded = archive::tar(&[file(GOOD, b"good")]);
    padded.resize(1 << 20, 0);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("padded.tar.gz");
    fs::write(&path, archive::gz(&padded)).unwrap();
    let dest = tmp.path().join("dest");
    bundle::unpack(&path, &dest, &rustup_opts(), &NullReporter).unwrap();
    assert_eq!(fs::read(dest.join(GOOD)).unwrap(), b"good");
}

#[test]
fn staging_is_removed_after_success_and_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dest: PathBuf = tmp.path().join("dest");
    let ok = tmp.path().join("ok.tar.gz");
    fs::write(&ok, tar_gz(&[file(GOOD, b"good")])).unwrap();
    let bad = tmp.path().join("bad.tar.gz");
    let m = manifest_for(&[(GOOD, b"good")]);
    fs::write(
        &bad,
        tar_gz(&[file("MIRROR-BUNDLE.json", &m), file(GOOD, b"evil")]),
    )
    .unwrap();
    bundle::unpack(&ok, &dest, &rustup_opts(), &NullReporter).unwrap();
    bundle::unpack(&bad, &dest, &rustup_opts(), &NullReporter).unwrap_err();
    assert_eq!(
        fs::read_dir(dest.join(".mirror/staging")).unwrap().count(),
        0
    );
    assert_eq!(fs::read(dest.join(GOOD)).unwrap(), b"good", "old file kept");
}

/// A pax extended header (`x` local, `g` global) carrying `records`.
fn pax(kind: u8, records: &[(&str, &[u8])]) -> Raw {
    let mut data = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n", where len counts itself.
        let body = 1 + k.len() + 1 + v.len() + 1;
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    Raw {
        name: b"PaxHeader".to_vec(),
        kind,
        data,
        link: b"",
        claim: None,
    }
}

#[test]
fn pax_path_override_is_checked_like_any_path() {
    let bad = tar_gz(&[
        file(GOOD, b"good"),
        pax(b'x', &[("path", b"rustup/archive/../../../evil")]),
        file("rustup/archive/innocent", b"x"),
    ]);
    assert_rejected(
        &bad,
        &rustup_opts(),
        &["rustup/archive/../../../evil", "\"..\" component"],
    );
}

#[test]
fn pax_headers_are_honoured_and_global_ones_ignored() {
    let long = format!("{LONG_DIR}/{LONG_DIR}/rustup-init");
    let bytes = tar_gz(&[
        pax(b'g', &[("comment", b"made by hand")]),
        pax(
            b'x',
            &[("path", long.as_bytes()), ("mtime", b"1700000000.5")],
        ),
        file("rustup/archive/truncated-name", b"init"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("pax.tar.gz");
    fs::write(&archive, bytes).unwrap();
    let dest = tmp.path().join("dest");
    let got = bundle::unpack(&archive, &dest, &rustup_opts(), &NullReporter).unwrap();
    assert_eq!(got.files, vec![long.clone()]);
    assert_eq!(fs::read(dest.join(&long)).unwrap(), b"init");
}
