//! Published versioned files never change: an archive carrying a `.crate`,
//! a toolchain tarball, a `rustup-init` of a release, a Hex tarball or an
//! Arch package with other bytes than the published one is refused
//! before anything of it is published, naming the file and both
//! digests; the same archive twice is a no-op.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use mirror::bundle::MANIFEST_NAME;
use mirror::verify::Sha256Digest;

use crate::support::arch::{publish as arch_publish, Pkg};
use crate::support::archive::{file, manifest_for, tar_gz};
use crate::support::crates::CratesFixture;
use crate::support::dist::{dist_upstream, STABLE};
use crate::support::hex::{key_path, rel, HexRepo};
use crate::support::keys::TestKey;
use crate::support::upstream::Upstream;

const LINUX: &str = "x86_64-unknown-linux-gnu";

fn run(root: &Path, args: &[&str]) -> Output {
    crate::rustup::mirror(root, args)
}

fn ok(root: &Path, args: &[&str]) {
    let out = run(root, args);
    assert!(
        out.status.success(),
        "mirror {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn digest(path: &Path) -> Sha256Digest {
    Sha256Digest::of(&fs::read(path).unwrap())
}

/// `args` fails naming `rel` and both digests; `rel` still holds
/// `published`.
fn refused(root: &Path, args: &[&str], rel: &str, published: Sha256Digest, carried: Sha256Digest) {
    let out = run(root, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mirror {args:?} accepted:\n{err}");
    assert_ne!(out.status.code(), Some(101), "panicked:\n{err}");
    for want in [
        rel.to_string(),
        published.to_string(),
        carried.to_string(),
        "nothing was published".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert_eq!(digest(&root.join(rel)), published, "{rel} was replaced");
}

fn sidecar(data: &[u8], name: &str) -> Vec<u8> {
    format!("{}  {name}\n", Sha256Digest::of(data)).into_bytes()
}

/// A rustup archive of `files` (path, bytes), each with its `.sha256`;
/// without a manifest (`romt`: as romt writes them) nothing lists digests.
fn rustup_archive(files: &[(&str, &[u8])], romt: bool) -> Vec<u8> {
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, data) in files {
        let name = path.rsplit('/').next().unwrap();
        all.push((path.to_string(), data.to_vec()));
        all.push((format!("{path}.sha256"), sidecar(data, name)));
    }
    let listed: Vec<(&str, &[u8])> = all
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let mut entries = Vec::new();
    if !romt {
        entries.push(file(MANIFEST_NAME, &manifest_for("rustup", &listed)));
    }
    entries.extend(listed.iter().map(|(p, d)| file(p, d)));
    tar_gz(&entries)
}

#[test]
fn rustup_init_of_a_release_is_never_replaced() {
    for romt in [false, true] {
        rustup_init_is_kept(romt);
    }
}

fn rustup_init_is_kept(romt: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let init = "rustup/archive/1.27.1/x86_64-unknown-linux-gnu/rustup-init";
    let other = "rustup/archive/1.28.0/x86_64-unknown-linux-gnu/rustup-init";
    let a = tmp.path().join("a.tar.gz");
    let b = tmp.path().join("b.tar.gz");
    fs::write(
        &a,
        rustup_archive(&[(init, b"the published rustup-init")], romt),
    )
    .unwrap();
    fs::write(
        &b,
        rustup_archive(
            &[
                (init, b"other bytes, same version"),
                (other, b"a newer one"),
            ],
            romt,
        ),
    )
    .unwrap();
    let a_s = a.display().to_string();
    ok(&root, &["rustup", "unpack", "--archive", &a_s]);
    ok(&root, &["rustup", "unpack", "--archive", &a_s]);
    let published = digest(&root.join(init));
    refused(
        &root,
        &["rustup", "unpack", "--archive", &b.display().to_string()],
        init,
        published,
        Sha256Digest::of(b"other bytes, same version"),
    );
    assert_eq!(
        fs::read(root.join(format!("{init}.sha256"))).unwrap(),
        sidecar(b"the published rustup-init", "rustup-init")
    );
    assert!(
        !root.join(other).exists(),
        "a file of the refused archive was published"
    );
}

/// Two near sides (one per upstream), a far side, and the archive each
/// near side writes.
struct Sides {
    near_a: PathBuf,
    near_b: PathBuf,
    far: PathBuf,
    a: String,
    b: String,
}

impl Sides {
    fn in_dir(dir: &Path) -> Sides {
        let archive = |n: &str| dir.join(format!("{n}.tar.gz")).display().to_string();
        Sides {
            near_a: dir.join("a"),
            near_b: dir.join("b"),
            far: dir.join("far"),
            a: archive("a"),
            b: archive("b"),
        }
    }
}

#[test]
fn hex_tarball_is_never_replaced() {
    let key = key_path("hex-test.pub.pem").display().to_string();
    let hex = |root: &Path, up: &Upstream, ops: &[&str], archive: &str| {
        let url = up.url("hex");
        let mut args = vec!["hex"];
        args.extend_from_slice(ops);
        args.extend_from_slice(&["--url", &url, "--public-key", &key, "--archive", archive]);
        run(root, &args)
    };
    let tmp = tempfile::tempdir().unwrap();
    let Sides {
        near_a,
        near_b,
        far,
        a,
        b,
    } = Sides::in_dir(tmp.path());
    let up_a = Upstream::start();
    HexRepo::sample().publish(&up_a);
    assert!(hex(&near_a, &up_a, &["export"], &a).status.success());
    // Upstream B: gamma 0.1.0 rebuilt with other bytes, and a gamma 0.2.0.
    let up_b = Upstream::start();
    let mut repo = HexRepo::sample();
    repo.add(
        "gamma",
        vec![rel("0.1.0", &[("beta", "~> 2.0")]), rel("0.2.0", &[])],
    );
    repo.publish(&up_b);
    let out = hex(&near_b, &up_b, &["export"], &b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for _ in 0..2 {
        let out = hex(&far, &up_a, &["import"], &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tarball = "hex/tarballs/gamma-0.1.0.tar";
    let names = fs::read(far.join("hex/names")).unwrap();
    let published = digest(&far.join(tarball));
    let carried = digest(&near_b.join(tarball));
    assert_ne!(published, carried);
    let mut args = vec!["hex", "import", "--public-key", &key, "--archive", &b];
    let url = up_b.url("hex");
    args.extend_from_slice(&["--url", &url]);
    refused(&far, &args, tarball, published, carried);
    assert!(!far.join("hex/tarballs/gamma-0.2.0.tar").exists());
    assert_eq!(
        fs::read(far.join("hex/names")).unwrap(),
        names,
        "names was published"
    );
}

#[test]
fn arch_package_is_never_replaced() {
    let keyring = TestKey::Signing.public_path().display().to_string();
    let arch = |root: &Path, op: &str, url: Option<&str>, archive: &str| {
        let mut args = vec!["arch", op];
        if let Some(u) = url {
            args.extend(["--url", u]);
        }
        args.extend([
            "--repo",
            "core",
            "--keyring",
            &keyring,
            "--retries",
            "1",
            "--archive",
            archive,
        ]);
        run(root, &args)
    };
    let tmp = tempfile::tempdir().unwrap();
    let Sides {
        near_a,
        near_b,
        far,
        a,
        b,
    } = Sides::in_dir(tmp.path());
    let up_a = Upstream::start();
    arch_publish(&up_a, "m", "core", &[Pkg::new("hello", "1.0-1")]);
    let url_a = up_a.url("m/$repo/os/$arch");
    let out = arch(&near_a, "export", Some(&url_a), &a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Upstream B: hello 1.0-1 rebuilt with other bytes, and another package.
    let up_b = Upstream::start();
    let mut rebuilt = Pkg::new("hello", "1.0-1");
    rebuilt.depends = vec!["glibc".into()];
    arch_publish(&up_b, "m", "core", &[rebuilt, Pkg::new("world", "2.0-1")]);
    let url_b = up_b.url("m/$repo/os/$arch");
    let out = arch(&near_b, "export", Some(&url_b), &b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for _ in 0..2 {
        let out = arch(&far, "import", None, &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = "archlinux/core/os/x86_64";
    let pkg = format!("{dir}/hello-1.0-1-x86_64.pkg.tar.zst");
    let db = fs::read(far.join(format!("{dir}/core.db"))).unwrap();
    let published = digest(&far.join(&pkg));
    let carried = digest(&near_b.join(&pkg));
    assert_ne!(published, carried);
    let args = [
        "arch",
        "import",
        "--repo",
        "core",
        "--keyring",
        &keyring,
        "--archive",
        &b,
    ];
    refused(&far, &args, &pkg, published, carried);
    assert!(!far
        .join(format!("{dir}/world-2.0-1-x86_64.pkg.tar.zst"))
        .exists());
    assert_eq!(fs::read(far.join(format!("{dir}/core.db"))).unwrap(), db);
}

#[test]
fn crate_file_is_never_replaced() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf 1.0.0");
    let tmp = tempfile::tempdir().unwrap();
    let (near, far) = (tmp.path().join("near"), tmp.path().join("far"));
    let a = tmp.path().join("a.tar.gz").display().to_string();
    let b = tmp.path().join("b.tar.gz").display().to_string();
    let url = fx.crates_url_template();
    ok(&near, &["crate", "init", "--index-url", &fx.index_url()]);
    ok(&far, &["crate", "init-import"]);
    ok(
        &far,
        &[
            "crate",
            "config",
            "--server-url",
            "http://mirror.invalid:8000",
        ],
    );
    ok(
        &near,
        &["crate", "export", "--crates-url", &url, "--archive", &a],
    );
    ok(&far, &["crate", "import", "--archive", &a]);
    ok(&far, &["crate", "import", "--archive", &a]);

    // Upstream republishes leaf 1.0.0 with other bytes, and adds 1.1.0.
    fx.remove("leaf", "1.0.0");
    let deps = [("serde", "^1")];
    fx.publish("leaf", "1.0.0", &deps);
    fx.publish("leaf", "1.1.0", &[]);
    fx.commit("Rebuild leaf 1.0.0, add leaf 1.1.0");
    // Online, the changed file is fetched again (the near side follows
    // upstream), but never silently.
    let near_before = digest(&near.join("crates/le/af/leaf/leaf-1.0.0.crate"));
    let out = run(
        &near,
        &["crate", "export", "--crates-url", &url, "--archive", &b],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");

    let rel = "crates/le/af/leaf/leaf-1.0.0.crate";
    let head = |root: &Path| {
        crate::support::crates::git(&root.join("git/crates.io-index"), &["rev-parse", "master"])
    };
    let master = head(&far);
    let published = digest(&far.join(rel));
    let carried = Sha256Digest::of(&crate::support::crates::crate_file("leaf", "1.0.0", &deps));
    assert_ne!(published, carried);
    for want in [
        "warning".to_string(),
        "leaf-1.0.0.crate".to_string(),
        near_before.to_string(),
        carried.to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    refused(
        &far,
        &["crate", "import", "--archive", &b],
        rel,
        published,
        carried,
    );
    assert!(!far.join("crates/le/af/leaf/leaf-1.1.0.crate").exists());
    assert_eq!(head(&far), master, "the index moved");
}

#[test]
fn toolchain_tarball_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let up = dist_upstream(&[LINUX]);
    let url = up.url("dist");
    let keyring = TestKey::Signing.public_path().display().to_string();
    let (near, far) = (tmp.path().join("near"), tmp.path().join("far"));
    let a = tmp.path().join("a.tar.gz").display().to_string();
    let tc = |root: &Path, args: &[&str]| {
        let mut all = vec!["toolchain"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url, "--keyring", &keyring]);
        run(root, &all)
    };
    let out = tc(
        &near,
        &[crate::toolchain::MINIMAL, &["pack", "--archive", &a]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..2 {
        let out = tc(&far, &["unpack", "--archive", &a]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The far side holds other bytes at a versioned path (published by an
    // earlier archive); the archive's file must not replace them, and
    // nothing else of it is published.
    let rel = STABLE.file_path("cargo", LINUX, "xz");
    let carried = digest(&far.join(&rel));
    fs::write(far.join(&rel), b"published earlier").unwrap();
    let published = Sha256Digest::of(b"published earlier");
    let manifest = far.join(STABLE.manifest_path());
    fs::remove_file(&manifest).unwrap();
    // A newer archive of the same files (the same one again is a no-op).
    let a2 = tmp.path().join("a2.tar.gz").display().to_string();
    let out = tc(
        &near,
        &[crate::toolchain::MINIMAL, &["pack", "--archive", &a2]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["toolchain", "unpack", "--archive", &a2];
    args.extend_from_slice(&["--url", &url, "--keyring", &keyring]);
    refused(&far, &args, &rel, published, carried);
    assert!(
        !manifest.exists(),
        "the manifest of the refused archive was published"
    );
}

/// What each ecosystem holds to be versioned, and what it does not
/// (metadata, signatures and sidecars, which move forward).
#[test]
fn versioned_paths_of_each_ecosystem() {
    use mirror::eco::{arch, hex, rustup, toolchain};
    type Rule = fn(&str) -> bool;
    let cases: [(Rule, &str, bool); 20] = [
        (
            toolchain::is_versioned,
            "dist/2026-10-15/cargo-1.99.1-x86_64-unknown-linux-gnu.tar.xz",
            true,
        ),
        (
            toolchain::is_versioned,
            "dist/2026-10-15/rust-src-nightly.tar.gz",
            true,
        ),
        (
            toolchain::is_versioned,
            "dist/2026-10-15/cargo-1.99.1-x86_64-unknown-linux-gnu.tar.xz.sha256",
            false,
        ),
        (
            toolchain::is_versioned,
            "dist/2026-10-15/channel-rust-stable.toml",
            false,
        ),
        (
            toolchain::is_versioned,
            "dist/channel-rust-stable.toml",
            false,
        ),
        (toolchain::is_versioned, "dist/nodate/x.tar.xz", false),
        (
            rustup::is_versioned,
            "rustup/archive/1.28.2/x86_64-pc-windows-msvc/rustup-init.exe",
            true,
        ),
        (
            rustup::is_versioned,
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init",
            true,
        ),
        (
            rustup::is_versioned,
            "rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init.sha256",
            false,
        ),
        (
            rustup::is_versioned,
            "rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
            false,
        ),
        (hex::is_versioned, "hex/tarballs/alpha-1.0.0.tar", true),
        (hex::is_versioned, "hex/packages/alpha", false),
        (hex::is_versioned, "hex/names", false),
        (hex::is_versioned, "hex/installs/1.14.0/hex-2.0.6.ez", true),
        (hex::is_versioned, "hex/installs/hex-1.x.csv", false),
        (hex::is_versioned, "hex/tarballs/sub/x.tar", false),
        (
            arch::is_versioned,
            "archlinux/core/os/x86_64/hello-1.0-1-x86_64.pkg.tar.zst",
            true,
        ),
        (
            arch::is_versioned,
            "archlinux/core/os/x86_64/hello-1.0-1-x86_64.pkg.tar.zst.sig",
            false,
        ),
        (
            arch::is_versioned,
            "archlinux/core/os/x86_64/core.db",
            false,
        ),
        (arch::is_versioned, "archlinux/lastsync", false),
    ];
    for (rule, path, want) in cases {
        assert_eq!(rule(path), want, "{path}");
    }
}
