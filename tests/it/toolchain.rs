//! `mirror toolchain` end to end through the binary: a generated, signed
//! dist server on the fake upstream; download, verify, list, pack, unpack
//! into a second tree, serve it, and the real rustup installs from it.

use std::path::Path;
use std::process::{Command, Output};

use crate::rustup::{mirror, require_client};
use crate::support::dist::{
    component_tar, dist_upstream, host_triple, publish, xz, Release, BETA, NIGHTLY, OLD_STABLE,
    STABLE,
};
use crate::support::keys::{sign_detached, TestKey};
use crate::support::upstream::{Fault, Upstream};

const LINUX: &str = "x86_64-unknown-linux-gnu";

/// The download most tests run.
pub(crate) const MINIMAL: &[&str] = &[
    "download",
    "-s",
    "stable",
    "-t",
    "linux",
    "--profile",
    "minimal",
];

fn keyring() -> String {
    TestKey::Signing.public_path().display().to_string()
}

/// `mirror toolchain ARGS --url <upstream>/dist --keyring <test key>`.
pub(crate) fn tc(root: &Path, up: &Upstream, args: &[&str]) -> Output {
    let url = up.url("dist");
    let key = keyring();
    let mut all = vec!["toolchain"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &url, "--keyring", &key]);
    mirror(root, &all)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "mirror should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Nothing of a release was published: no manifest anywhere, no files.
fn assert_nothing_published(root: &Path, rel: &Release) {
    let dated = root.join("dist").join(rel.date);
    let names: Vec<String> = std::fs::read_dir(&dated)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !names.iter().any(|n| n.starts_with("channel-rust-")),
        "a manifest was published: {names:?}"
    );
    assert!(!root.join("dist/channel-rust-stable.toml").exists());
}

#[test]
fn download_writes_romt_layout_and_every_manifest_form() {
    let up = dist_upstream(&[LINUX]);
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    ok(&tc(
        r,
        &up,
        &[
            "download",
            "-s",
            "stable,1.98.0,beta,nightly",
            "-t",
            "linux",
            "--profile",
            "minimal",
        ],
    ));
    for rel in [OLD_STABLE, STABLE, BETA, NIGHTLY] {
        for pkg in ["rustc", "cargo", "rust-std"] {
            let f = format!("dist/{}/{}", rel.date, rel.file_name(pkg, LINUX, "xz"));
            assert!(r.join(&f).is_file(), "{f}");
            let sum = String::from_utf8(read(r, &format!("{f}.sha256"))).unwrap();
            assert!(
                sum.ends_with(&format!("  {}\n", rel.file_name(pkg, LINUX, "xz"))),
                "{sum}"
            );
            assert!(r.join(format!("{f}.asc")).is_file());
            // Only xz by default, only the profile.
            assert!(!r.join(f.replace(".tar.xz", ".tar.gz")).exists());
        }
        assert!(!r
            .join(format!(
                "dist/{}/{}",
                rel.date,
                rel.file_name("rust-docs", LINUX, "xz")
            ))
            .exists());
        for ext in ["", ".sha256", ".asc"] {
            assert!(r.join(format!("{}{ext}", rel.manifest_path())).is_file());
        }
    }
    // Fixup: the newest per channel, stable by X.Y.Z and X.Y, in dist/ and
    // the dated directories, each with .sha256 and .asc.
    let stable = read(r, &STABLE.manifest_path());
    let old = read(r, &OLD_STABLE.manifest_path());
    for (path, want) in [
        ("dist/channel-rust-stable.toml", &stable),
        ("dist/channel-rust-1.99.1.toml", &stable),
        ("dist/channel-rust-1.99.toml", &stable),
        ("dist/channel-rust-1.98.0.toml", &old),
        ("dist/channel-rust-1.98.toml", &old),
        ("dist/2026-10-15/channel-rust-1.99.1.toml", &stable),
        ("dist/2026-10-15/channel-rust-1.99.toml", &stable),
        ("dist/2026-09-03/channel-rust-1.98.0.toml", &old),
    ] {
        assert_eq!(&read(r, path), want, "{path}");
        let name = path.rsplit('/').next().unwrap();
        let sum = String::from_utf8(read(r, &format!("{path}.sha256"))).unwrap();
        assert!(sum.ends_with(&format!("  {name}\n")), "{sum}");
        assert!(r.join(format!("{path}.asc")).is_file(), "{path}.asc");
    }
    assert_eq!(
        read(r, "dist/channel-rust-beta.toml"),
        read(r, &BETA.manifest_path())
    );
    assert_eq!(
        read(r, "dist/channel-rust-nightly.toml"),
        read(r, &NIGHTLY.manifest_path())
    );

    let listed = ok(&tc(r, &up, &["list"]));
    assert_eq!(
        listed,
        "stable-2026-09-03(1.98.0) targets[1/1] packages[3/6]\n\
         beta-2026-10-14(1.100.0-beta.3) targets[1/1] packages[3/6]\n\
         stable-2026-10-15(1.99.1) targets[1/1] packages[3/6]\n\
         nightly-2026-10-16(1.101.0-nightly) targets[1/1] packages[3/6]\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&tc(r, &up, &["list", "-s", "1.99.1", "--json"]))).unwrap();
    assert_eq!(json[0]["name"], "stable-2026-10-15");
    assert_eq!(json[0]["packages"], 3);
    let out = ok(&tc(r, &up, &["verify"]));
    assert!(out.is_empty());

    // A second run asks only for manifests.
    up.clear_requests();
    ok(&tc(r, &up, MINIMAL));
    let paths: Vec<String> = up.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().all(|p| p.contains("channel-rust-")),
        "{paths:?}"
    );
}

#[test]
fn targets_components_cross_and_formats_select_files() {
    let up = Upstream::start();
    let wasm = "wasm32-unknown-unknown";
    publish(&up, &STABLE, &[LINUX, wasm]);
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    ok(&tc(
        r,
        &up,
        &[
            "download",
            "-s",
            "stable",
            "-t",
            LINUX,
            "--cross",
            wasm,
            "--profile",
            "minimal",
            "--components",
            "rust-src,docs,!cargo",
            "--format",
            "gz,xz",
        ],
    ));
    let d = r.join("dist").join(STABLE.date);
    for (pkg, t) in [
        ("rustc", LINUX),
        ("rust-std", LINUX),
        ("rust-std", wasm),
        ("rust-docs", LINUX),
        ("rust-src", "*"),
    ] {
        for ext in ["xz", "gz"] {
            assert!(
                d.join(STABLE.file_name(pkg, t, ext)).is_file(),
                "{pkg} {t} {ext}"
            );
        }
    }
    assert!(!d.join(STABLE.file_name("cargo", LINUX, "xz")).exists());
    assert!(!d.join(STABLE.file_name("rustc", wasm, "xz")).exists());
    assert!(!d.join(STABLE.file_name("rust", LINUX, "xz")).exists());

    let targets = ok(&tc(
        r,
        &up,
        &["fetch-manifest", "all-targets", "-s", "stable"],
    ));
    assert_eq!(targets, format!("{wasm}\n{LINUX}\n"));
    let comps = ok(&tc(r, &up, &["all-components", "-s", "stable"]));
    assert_eq!(comps, "cargo\nrust\nrust-docs\nrust-src\nrust-std\nrustc\n");
    let e = err(&tc(
        r,
        &up,
        &[
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--components",
            "nonesuch",
        ],
    ));
    assert!(e.contains("nonesuch"), "{e}");
}

#[test]
fn a_tampered_tarball_is_refused_and_no_manifest_published() {
    let up = dist_upstream(&[LINUX]);
    let path = STABLE.file_path("rustc", LINUX, "xz");
    up.put(&path, b"not the tarball".to_vec());
    let root = tempfile::tempdir().unwrap();
    let e = err(&tc(root.path(), &up, MINIMAL));
    assert!(e.contains(&STABLE.file_name("rustc", LINUX, "xz")), "{e}");
    assert!(e.to_lowercase().contains("mismatch"), "{e}");
    assert!(!root.path().join(&path).exists());
    assert_nothing_published(root.path(), &STABLE);
}

#[test]
fn a_tampered_manifest_is_refused() {
    let up = dist_upstream(&[LINUX]);
    let root = tempfile::tempdir().unwrap();
    // Other bytes than the .sha256 says.
    let mut m = stable_manifest();
    m.extend_from_slice(b"\n# tampered\n");
    up.put("dist/channel-rust-stable.toml", m.clone());
    let e = err(&tc(
        root.path(),
        &up,
        &["download", "-s", "stable", "-t", "linux"],
    ));
    assert!(e.contains("channel-rust-stable.toml"), "{e}");
    assert!(e.to_lowercase().contains("mismatch"), "{e}");
    // With a matching .sha256 the signature catches it.
    up.put(
        "dist/channel-rust-stable.toml.sha256",
        format!("{}  channel-rust-stable.toml\n", sha256_hex(&m)),
    );
    let e = err(&tc(
        root.path(),
        &up,
        &["download", "-s", "stable", "-t", "linux"],
    ));
    assert!(
        e.contains("channel-rust-stable.toml") && e.contains("bad OpenPGP signature"),
        "{e}"
    );
    assert_nothing_published(root.path(), &STABLE);
    assert!(!root.path().join("dist").join(STABLE.date).exists());
}

/// The stable manifest's bytes (the fixture is deterministic; only
/// signatures differ between runs).
fn stable_manifest() -> Vec<u8> {
    let scratch = Upstream::start();
    publish(&scratch, &STABLE, &[LINUX]).manifest
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

#[test]
fn bad_signature_unknown_signer_and_missing_asc_are_refused() {
    let file = STABLE.file_path("cargo", LINUX, "xz");
    let name = STABLE.file_name("cargo", LINUX, "xz");

    // A signature over other bytes.
    let up = dist_upstream(&[LINUX]);
    up.put(
        &format!("{file}.asc"),
        sign_detached(TestKey::Signing, b"other", true),
    );
    let root = tempfile::tempdir().unwrap();
    let e = err(&tc(root.path(), &up, MINIMAL));
    assert!(
        e.contains(&name) && e.contains("bad OpenPGP signature"),
        "{e}"
    );
    assert!(!root.path().join(&file).exists());
    assert_nothing_published(root.path(), &STABLE);

    // Signed by a key outside the keyring.
    let up = dist_upstream(&[LINUX]);
    let bytes = xz(&component_tar(&STABLE, "cargo", LINUX));
    up.put(
        &format!("{file}.asc"),
        sign_detached(TestKey::Other, &bytes, true),
    );
    let root = tempfile::tempdir().unwrap();
    let e = err(&tc(root.path(), &up, MINIMAL));
    assert!(e.contains(&name) && e.contains("unknown key"), "{e}");
    assert_nothing_published(root.path(), &STABLE);

    // The manifest signed by an unknown key.
    let up = dist_upstream(&[LINUX]);
    let m = stable_manifest();
    up.put(
        "dist/channel-rust-stable.toml.asc",
        sign_detached(TestKey::Other, &m, true),
    );
    let e = err(&tc(
        root.path(),
        &up,
        &["download", "-s", "stable", "-t", "linux"],
    ));
    assert!(
        e.contains("channel-rust-stable.toml") && e.contains("unknown key"),
        "{e}"
    );

    // A missing .asc: an error by default, a warning with --warn-signature.
    let up = dist_upstream(&[LINUX]);
    up.remove(&format!("{file}.asc"));
    let root = tempfile::tempdir().unwrap();
    let e = err(&tc(root.path(), &up, MINIMAL));
    assert!(e.contains(&name) && e.contains(".asc"), "{e}");
    assert!(
        e.contains("no signature") && e.contains("--warn-signature"),
        "{e}"
    );
    assert_nothing_published(root.path(), &STABLE);
    let out = tc(
        root.path(),
        &up,
        &[
            "download",
            "-s",
            "stable",
            "-t",
            "linux",
            "--profile",
            "minimal",
            "--warn-signature",
        ],
    );
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains(&name),
        "{stderr}"
    );
    assert!(root.path().join(&file).is_file());
    assert!(root.path().join("dist/channel-rust-stable.toml").is_file());
}

#[test]
fn an_interrupted_download_resumes_with_range() {
    let up = dist_upstream(&[LINUX]);
    let path = STABLE.file_path("rustc", LINUX, "xz");
    up.fault(&path, Fault::CutBody { after: 20_000 }, 1);
    let root = tempfile::tempdir().unwrap();
    ok(&tc(root.path(), &up, MINIMAL));
    let reqs = up.requests_for(&path);
    assert!(reqs.len() >= 2, "{reqs:?}");
    let range = reqs.last().unwrap().header("range").map(str::to_string);
    assert!(
        range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "{range:?}"
    );
    ok(&tc(root.path(), &up, &["verify"]));
}

#[test]
fn a_tampered_archive_member_is_refused_on_unpack() {
    let up = dist_upstream(&[LINUX]);
    let a = tempfile::tempdir().unwrap();
    ok(&tc(a.path(), &up, MINIMAL));
    // Tamper with a file and its .sha256 alike: only the manifest hash and
    // the signature can tell.
    let f = a.path().join(STABLE.file_path("cargo", LINUX, "xz"));
    std::fs::write(&f, b"evil").unwrap();
    std::fs::write(
        a.path().join(format!("{}.sha256", f.display())),
        format!("{}  x\n", sha256_hex(b"evil")),
    )
    .unwrap();
    let archive = a.path().join("t.tar.gz");
    ok(&tc(
        a.path(),
        &up,
        &[
            "pack",
            "-s",
            "stable",
            "--archive",
            archive.to_str().unwrap(),
        ],
    ));
    let b = tempfile::tempdir().unwrap();
    let e = err(&tc(
        b.path(),
        &up,
        &["unpack", "--archive", archive.to_str().unwrap()],
    ));
    assert!(e.contains(&STABLE.file_name("cargo", LINUX, "xz")), "{e}");
    assert!(!b.path().join("dist").exists(), "something was published");
}

/// The whole crossing: download → pack → unpack on a second tree →
/// `mirror::serve::spawn` → the real rustup installs `stable` (minimal),
/// `1.98.0` by version and `stable-2026-10-15` by date, and each toolchain's
/// `rustc -V` prints the fixture's version.
#[test]
fn real_rustup_installs_toolchains_from_the_mirror() {
    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let host = host_triple();
    let up = Upstream::start();
    for rel in [OLD_STABLE, STABLE, BETA, NIGHTLY] {
        publish(&up, &rel, &[host.as_str()]);
    }
    let online = tempfile::tempdir().unwrap();
    let archive = online.path().join("toolchain.tar.gz");
    let archive = archive.to_str().unwrap();
    ok(&tc(
        online.path(),
        &up,
        &[
            "download",
            "pack",
            "-s",
            "stable,1.98.0",
            "-t",
            &host,
            "--profile",
            "minimal",
            "--archive",
            archive,
        ],
    ));
    let offline = tempfile::tempdir().unwrap();
    let out = ok(&tc(
        offline.path(),
        &up,
        &["unpack", "list", "--archive", archive],
    ));
    assert!(out.contains("stable-2026-10-15(1.99.1)"), "{out}");
    assert!(offline
        .path()
        .join("dist/channel-rust-1.98.0.toml")
        .is_file());

    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(offline.path())).unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| run_rustup(&rustup, home.path(), &server, args);
    for (toolchain, version) in [
        ("stable", "1.99.1"),
        ("1.98.0", "1.98.0"),
        ("stable-2026-10-15", "1.99.1"),
        ("1.99", "1.99.1"),
    ] {
        let out = run(&[
            "toolchain",
            "install",
            toolchain,
            "--profile",
            "minimal",
            "--no-self-update",
        ]);
        assert!(
            out.status.success(),
            "rustup toolchain install {toolchain} failed"
        );
        let out = run(&["run", toolchain, "rustc", "-V"]);
        assert!(
            out.status.success(),
            "rustup run {toolchain} rustc -V failed"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("rustc {version} (fixture)")
        );
    }
}

/// The real rustup with its homes under `home`, pointed at `server` for
/// toolchains and self-updates; its output is echoed.
pub(crate) fn run_rustup(
    rustup: &Path,
    home: &Path,
    server: &mirror::serve::RunningServer,
    args: &[&str],
) -> Output {
    crate::support::run_logged(
        Command::new(rustup)
            .args(args)
            .env("RUSTUP_HOME", home.join("rustup"))
            .env("CARGO_HOME", home.join("cargo"))
            .env("RUSTUP_DIST_SERVER", server.url(""))
            .env("RUSTUP_UPDATE_ROOT", server.url("/rustup"))
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("CARGO"),
        &format!("rustup {args:?}"),
    )
}

/// The real upstream: fetch and check the stable manifest. Run by hand:
/// `cargo test --test it toolchain_live -- --ignored`.
#[test]
#[ignore]
fn toolchain_live_fetches_the_real_stable_manifest() {
    let root = tempfile::tempdir().unwrap();
    // Upstream serves no .asc beside its manifests today (seen): warn.
    let out = ok(&mirror(
        root.path(),
        &[
            "toolchain",
            "fetch-manifest",
            "all-targets",
            "-s",
            "stable",
            "--warn-signature",
        ],
    ));
    assert!(
        out.lines().any(|l| l == "x86_64-unknown-linux-gnu"),
        "{out}"
    );
}

/// SHA-1 is accepted where the Rust release key needs it (its subkey
/// binding) and nowhere else: a data signature made with SHA-1 by a key of
/// the keyring is refused.
#[test]
fn sha1_is_accepted_for_the_rust_key_binding_and_nowhere_else() {
    use mirror::verify::openpgp::{policy, verify_detached, Keyring};
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::serialize::Serialize;
    use openpgp::types::{HashAlgorithm, SignatureType};
    use sequoia_openpgp as openpgp;

    let p = policy();
    let rust = Keyring::rust_release();
    let signing: Vec<String> = rust.certs()[0]
        .keys()
        .with_policy(&p, None)
        .for_signing()
        .map(|k| k.key().fingerprint().to_hex())
        .collect();
    let subkey = "C13466B7E169A085188632165CB4A9347B3B09DC".to_string();
    assert!(signing.contains(&subkey), "{signing:?}");
    // Under the standard policy (no SHA-1 at all) the subkey is not bound.
    let standard = openpgp::policy::StandardPolicy::new();
    let strict: Vec<String> = rust.certs()[0]
        .keys()
        .with_policy(&standard, None)
        .for_signing()
        .map(|k| k.key().fingerprint().to_hex())
        .collect();
    assert!(!strict.contains(&subkey), "{strict:?}");

    let data = b"manifest-version = \"2\"\n";
    let sign_with = |hash: HashAlgorithm| -> Vec<u8> {
        let cert = TestKey::Signing.secret_cert();
        let mut keypair = cert
            .keys()
            .with_policy(&p, None)
            .for_signing()
            .secret()
            .next()
            .expect("signing key")
            .key()
            .clone()
            .into_keypair()
            .expect("unencrypted");
        let sig = SignatureBuilder::new(SignatureType::Binary)
            .set_hash_algo(hash)
            .sign_message(&mut keypair, data)
            .expect("sign");
        let mut out = Vec::new();
        openpgp::Packet::from(sig).serialize(&mut out).unwrap();
        out
    };
    let keyring = TestKey::Signing.keyring();
    verify_detached(
        &keyring,
        &data[..],
        &sign_with(HashAlgorithm::SHA256),
        "x.toml",
    )
    .expect("a SHA-256 signature verifies");
    let e = verify_detached(
        &keyring,
        &data[..],
        &sign_with(HashAlgorithm::SHA1),
        "x.toml",
    )
    .expect_err("a SHA-1 data signature must be refused");
    assert!(e.to_string().contains("x.toml"), "{e}");
}

/// romt's archives carry no MIRROR-BUNDLE.json: a plain tar.gz of the
/// dated directory is accepted, checked and fixed up.
#[test]
fn a_romt_archive_is_accepted_and_checked() {
    let up = dist_upstream(&[LINUX]);
    let a = tempfile::tempdir().unwrap();
    ok(&tc(a.path(), &up, MINIMAL));
    let build = |tamper: bool| -> std::path::PathBuf {
        let archive = a
            .path()
            .join(if tamper { "evil.tar.gz" } else { "romt.tar.gz" });
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut t = tar::Builder::new(gz);
        let dated = format!("dist/{}", STABLE.date);
        let mut names: Vec<String> = std::fs::read_dir(a.path().join(&dated))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("channel-rust-1."))
            .collect();
        names.sort();
        for n in names {
            let mut data = std::fs::read(a.path().join(&dated).join(&n)).unwrap();
            if tamper && n == STABLE.file_name("rustc", LINUX, "xz") {
                data[100] ^= 1;
            }
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            t.append_data(&mut h, format!("{dated}/{n}"), &data[..])
                .unwrap();
        }
        t.into_inner().unwrap().finish().unwrap();
        archive
    };
    let evil = build(true);
    let b = tempfile::tempdir().unwrap();
    let e = err(&tc(
        b.path(),
        &up,
        &["unpack", "--archive", evil.to_str().unwrap()],
    ));
    assert!(e.contains(&STABLE.file_name("rustc", LINUX, "xz")), "{e}");
    assert!(!b.path().join("dist").exists());

    let good = build(false);
    ok(&tc(
        b.path(),
        &up,
        &["unpack", "verify", "--archive", good.to_str().unwrap()],
    ));
    assert_eq!(
        read(b.path(), "dist/channel-rust-1.99.1.toml"),
        read(a.path(), &STABLE.manifest_path())
    );

    // verify re-checks what is on disk.
    let f = b.path().join(STABLE.file_path("cargo", LINUX, "xz"));
    std::fs::write(&f, b"rot").unwrap();
    let e = err(&tc(b.path(), &up, &["verify"]));
    assert!(e.contains(&STABLE.file_name("cargo", LINUX, "xz")), "{e}");
}
