//! Bundles that once made an unpack panic or misjudge the space it needs,
//! through every ecosystem's command.

use std::path::Path;
use std::process::Output;

use mirror::verify::Sha256Digest;

use crate::hostile::{
    owned, run, succeeds, Intake, ARCH_INTAKE, CRATES_INTAKE, HEX_INTAKE, RUSTUP_INTAKE,
    TOOLCHAIN_INTAKE,
};
use crate::support::archive::{gz, manifest_claiming};
use crate::support::tree::paths;

const INTAKES: [&Intake; 5] = [
    &RUSTUP_INTAKE,
    &TOOLCHAIN_INTAKE,
    &CRATES_INTAKE,
    &HEX_INTAKE,
    &ARCH_INTAKE,
];

/// Prepare a fresh tree at `root` as `intake` needs.
fn prepare(intake: &Intake, root: &Path) {
    for args in intake.prepare {
        succeeds(root, &owned(args));
    }
    std::fs::create_dir_all(root).unwrap();
}

/// Write `bytes` as an archive beside `root` and run `intake`'s command
/// on it: the output, stderr, and the archive's path.
fn take_in(intake: &Intake, root: &Path, bytes: &[u8]) -> (Output, String, String) {
    let archive = root.with_extension("tar.gz");
    std::fs::write(&archive, bytes).unwrap();
    let out = run(root, &intake.args(&archive));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err, archive.display().to_string())
}

fn assert_no_panic(what: &str, out: &Output, err: &str) {
    assert!(
        out.status.code() != Some(101) && !err.contains("panicked"),
        "{what}: panicked:\n{err}"
    );
}

/// A tar header for a regular file `name` of `size` bytes.
fn header(name: &str, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_cksum();
    h
}

/// A tar header whose binary (base-256) mtime is 2^64-1 made every
/// ecosystem's unpack exit 101 ("overflow when adding duration to
/// instant"). Such a time is not kept; the archive is judged on the rest
/// (here: a member each ecosystem's own check refuses), and nothing is
/// published.
#[test]
fn tar_mtime_of_2_pow_64_minus_1_does_not_panic_any_unpack() {
    let tmp = tempfile::tempdir().unwrap();
    for intake in INTAKES {
        let data = b"good bytes";
        let manifest = manifest_claiming(
            intake.ecosystem,
            &[(intake.member, 10, Sha256Digest::of(data))],
        );
        for with_manifest in [false, true] {
            let mut b = tar::Builder::new(Vec::new());
            if with_manifest {
                let h = header("MIRROR-BUNDLE.json", manifest.len() as u64, u64::MAX);
                b.append(&h, &manifest[..]).unwrap();
            }
            let h = header(intake.member, data.len() as u64, u64::MAX);
            assert_eq!(h.mtime().unwrap(), u64::MAX);
            assert_eq!(h.as_bytes()[136] & 0x80, 0x80, "base-256 mtime");
            b.append(&h, &data[..]).unwrap();
            let bytes = gz(&b.into_inner().unwrap());

            let what = format!("{} (manifest: {with_manifest})", intake.ecosystem);
            let root = tmp
                .path()
                .join(format!("{}-{with_manifest}", intake.ecosystem));
            prepare(intake, &root);
            let (out, err, archive) = take_in(intake, &root, &bytes);
            assert_no_panic(&what, &out, &err);
            assert!(err.contains(&archive), "{what}: archive not named:\n{err}");
            assert!(
                !root.join(intake.member).exists(),
                "{what}: published:\n{err}"
            );
            assert_eq!(
                paths(&root.join(".mirror/staging"), |_| true),
                Vec::<String>::new(),
                "{what}: staging left behind"
            );
        }
    }
}

/// The free bytes and inodes of the file system holding `path`.
fn statvfs(path: &Path) -> (u64, u64, u64) {
    let st = rustix::fs::statvfs(path).unwrap();
    (st.f_bavail * st.f_frsize, st.f_favail, st.f_frsize)
}

/// 200,000 one-byte files once passed the free-space check as 200 KB and
/// then took 819 MB of blocks and 200,000 inodes. A manifest whose bytes
/// fit in the free space but whose files, each rounded up to a block, do
/// not, is refused before anything is written, saying bytes and inodes
/// needed and free.
#[test]
fn many_small_files_are_counted_in_blocks_and_inodes() {
    const SMALL: usize = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    for intake in INTAKES {
        let root = tmp.path().join(intake.ecosystem);
        prepare(intake, &root);
        let (free, _, block) = statvfs(&root);
        // Bytes: one big member fills the free space but for 192 MiB
        // (the margin kept spare is 64 MiB); 100,000 one-byte files take
        // 100 KB as bytes, but 400 MB in 4 KiB blocks.
        assert!(block as usize * SMALL > 300 << 20, "block size {block}");
        let big = free - (192 << 20);
        let dir = intake.member.rsplit_once('/').unwrap().0;
        let names: Vec<String> = (0..SMALL).map(|i| format!("{dir}/s{i}")).collect();
        let one = Sha256Digest::of(b"x");
        let mut listed: Vec<(&str, u64, Sha256Digest)> =
            names.iter().map(|n| (n.as_str(), 1, one)).collect();
        listed.push((intake.member, big, one));
        let manifest = manifest_claiming(intake.ecosystem, &listed);
        let mut b = tar::Builder::new(Vec::new());
        let h = header("MIRROR-BUNDLE.json", manifest.len() as u64, 1_700_000_000);
        b.append(&h, &manifest[..]).unwrap();
        let bytes = gz(&b.into_inner().unwrap());

        let what = intake.ecosystem;
        let (out, err, archive) = take_in(intake, &root, &bytes);
        assert_no_panic(what, &out, &err);
        assert!(!out.status.success(), "{what}: accepted");
        let total = big + SMALL as u64;
        for want in [
            archive.as_str(),
            "not enough disk space",
            &format!("{total} bytes in {} files", SMALL + 1),
            &format!("blocks of {block} bytes"),
            "inodes",
            "nothing was written",
        ] {
            assert!(err.contains(want), "{what}: {want:?} not in:\n{err}");
        }
        assert_eq!(
            paths(&root.join(".mirror/staging"), |_| true),
            Vec::<String>::new(),
            "{what}: staging left behind"
        );
    }
}
