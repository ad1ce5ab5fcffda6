//! Escape sequences carried by a bundle never reach the terminal raw:
//! every message that quotes a name, a path or git's words shows control
//! characters escaped.

use std::path::Path;
use std::process::Output;

use crate::hostile::{
    owned, run, succeeds, Intake, ARCH_INTAKE, CRATES_INTAKE, HEX_INTAKE, RUSTUP_INTAKE,
    TOOLCHAIN_INTAKE,
};
use crate::support::archive::{file, manifest_for, tar_gz};
use crate::support::crates::git;

/// What a hostile name carries: a window title (OSC … BEL), a screen
/// clear (CSI), a C1 CSI, and a right-to-left override.
const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m\u{202e}";

/// How [`EVIL`] must show.
const SHOWN: &str = "\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m\\u{202e}";

/// Every control character and bidi override `bytes` holds raw, as
/// (offset, character).
fn raw_controls(bytes: &[u8]) -> Vec<(usize, char)> {
    String::from_utf8_lossy(bytes)
        .char_indices()
        .filter(|&(_, c)| {
            (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

fn assert_escaped(what: &str, out: &Output) {
    for (stream, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        let raw = raw_controls(bytes);
        assert!(
            raw.is_empty(),
            "{what}: raw control characters on {stream} {raw:?}:\n{}",
            String::from_utf8_lossy(bytes).escape_debug()
        );
    }
    // Escaped here, or already by a message quoting with `{:?}`.
    let err = String::from_utf8_lossy(&out.stderr);
    let debug = EVIL.escape_debug().to_string();
    assert!(
        err.contains(SHOWN) || err.contains(&debug),
        "{what}: {SHOWN:?} not in:\n{err}"
    );
}

fn import(intake: &Intake, root: &Path, bytes: &[u8], verbose: bool) -> Output {
    for args in intake.prepare {
        succeeds(root, &owned(args));
    }
    std::fs::create_dir_all(root).unwrap();
    let archive = root.with_extension("tar.gz");
    std::fs::write(&archive, bytes).unwrap();
    let mut args = intake.args(&archive);
    if verbose {
        args.insert(0, "-v".into());
    }
    run(root, &args)
}

/// A git bundle's prerequisite comment and its ref names are quoted when
/// `crate import` refuses it.
#[test]
fn crate_import_escapes_git_bundle_prerequisites_and_ref_names() {
    let tmp = tempfile::tempdir().unwrap();
    let member = "git/crates.io-index/origin.bundle";

    // A prerequisite the index lacks, with a comment full of escapes.
    let prerequisite = format!(
        "# v2 git bundle\n-{} first commit {EVIL}\n{} refs/heads/bundle/master\n\nPACK",
        "1".repeat(40),
        "2".repeat(40)
    );
    let out = import(
        &CRATES_INTAKE,
        &tmp.path().join("prerequisite"),
        &tar_gz(&[file(member, prerequisite.as_bytes())]),
        true,
    );
    assert!(!out.status.success());
    assert_escaped("prerequisite comment", &out);

    // A valid bundle whose only ref has escapes in its name.
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&repo, &["branch", "evil"]);
    let plain = tmp.path().join("plain.bundle");
    git(
        &repo,
        &[
            "bundle",
            "create",
            "-q",
            plain.to_str().unwrap(),
            "refs/heads/evil",
        ],
    );
    let evil_ref = format!("refs/heads/{EVIL}evil");
    let bytes = std::fs::read(&plain).unwrap();
    let at = bytes
        .windows(15)
        .position(|w| w == b"refs/heads/evil")
        .unwrap();
    let mut bundle = bytes[..at].to_vec();
    bundle.extend_from_slice(evil_ref.as_bytes());
    bundle.extend_from_slice(&bytes[at + 15..]);
    let out = import(
        &CRATES_INTAKE,
        &tmp.path().join("ref"),
        &tar_gz(&[file(member, &bundle)]),
        true,
    );
    assert!(!out.status.success());
    assert_escaped("ref name", &out);
}

/// A member path and a manifest's ecosystem with escapes in them, through
/// every ecosystem's command (verbose, so every member is named).
#[test]
fn every_unpack_escapes_member_names() {
    let tmp = tempfile::tempdir().unwrap();
    for intake in [
        &RUSTUP_INTAKE,
        &TOOLCHAIN_INTAKE,
        &CRATES_INTAKE,
        &HEX_INTAKE,
        &ARCH_INTAKE,
    ] {
        let name = intake.ecosystem;
        let (dir, base) = intake.member.rsplit_once('/').unwrap();
        let evil = format!("{dir}/{EVIL}{base}");
        let data = b"data";
        let bare = tar_gz(&[file(&evil, data)]);
        let manifest = manifest_for(name, &[(evil.as_str(), data)]);
        let listed = tar_gz(&[file("MIRROR-BUNDLE.json", &manifest), file(&evil, data)]);
        let other_eco = manifest_for(&format!("x{EVIL}"), &[(evil.as_str(), data)]);
        let wrong = tar_gz(&[file("MIRROR-BUNDLE.json", &other_eco), file(&evil, data)]);
        for (case, bytes) in [("bare", bare), ("listed", listed), ("ecosystem", wrong)] {
            let root = tmp.path().join(format!("{name}-{case}"));
            let out = import(intake, &root, &bytes, true);
            assert_escaped(&format!("{name}, {case}"), &out);
        }
    }
}

/// `list` prints names a bundle brought (here: a rustup target directory)
/// escaped on stdout too.
#[test]
fn list_escapes_names_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join(format!("rustup/archive/1.0.0/{EVIL}x"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rustup-init"), b"x").unwrap();
    let out = run(root, &owned(&["-v", "rustup", "list"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1.0.0"), "{stdout}");
    assert!(
        raw_controls(&out.stdout).is_empty(),
        "{}",
        stdout.escape_debug()
    );
    assert!(stdout.contains(SHOWN), "{SHOWN:?} not in:\n{stdout}");
}
