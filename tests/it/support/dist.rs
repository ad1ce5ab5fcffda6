//! A generated dist server: channel manifests (signed with the test key)
//! and component tarballs in the rust-installer format, put on a fake
//! upstream under `dist/`, laid out like `static.rust-lang.org/dist`.
//!
//! Each component tarball is `<pkg>-<ver>[-<target>]/` holding
//! `rust-installer-version` (`3`), `components`, and
//! `<component>/manifest.in` listing its files; `rustc` and `cargo` are
//! tiny shell scripts printing `rustc <version> (fixture)`.

use std::io::Write;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::keys::{sign_detached, TestKey};
use super::upstream::Upstream;

/// The URL prefix upstream manifests carry (rustup replaces it with
/// `RUSTUP_DIST_SERVER`).
pub const OFFICIAL: &str = "https://static.rust-lang.org";

/// One release to publish.
#[derive(Clone, Debug)]
pub struct Release {
    /// `stable`, `beta` or `nightly`.
    pub channel: &'static str,
    /// `YYYY-MM-DD`.
    pub date: &'static str,
    /// `1.99.1`, `1.100.0-beta.3`, `1.101.0-nightly`.
    pub version: &'static str,
}

impl Release {
    /// The version word in file names: the release for stable, else the
    /// channel.
    pub fn file_version(&self) -> &str {
        if self.channel == "stable" {
            self.version
        } else {
            self.channel
        }
    }

    /// `dist/<date>/channel-rust-<channel>.toml`.
    pub fn manifest_path(&self) -> String {
        format!("dist/{}/channel-rust-{}.toml", self.date, self.channel)
    }

    /// `<pkg>-<ver>[-<target>].tar.xz` below `dist/<date>/`.
    pub fn file_name(&self, pkg: &str, target: &str, ext: &str) -> String {
        if target == "*" {
            format!("{pkg}-{}.tar.{ext}", self.file_version())
        } else {
            format!("{pkg}-{}-{target}.tar.{ext}", self.file_version())
        }
    }

    /// `dist/<date>/<file>` on the upstream.
    pub fn file_path(&self, pkg: &str, target: &str, ext: &str) -> String {
        format!("dist/{}/{}", self.date, self.file_name(pkg, target, ext))
    }
}

/// The packages of every release: (name, per-target?).
pub const PACKAGES: &[(&str, bool)] = &[
    ("rustc", true),
    ("cargo", true),
    ("rust-std", true),
    ("rust-docs", true),
    ("rust-src", false),
];

/// What `publish` put upstream.
#[derive(Clone, Debug)]
pub struct Published {
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// Every component file path (`dist/<date>/<file>`), xz and gz.
    pub files: Vec<String>,
}

/// `xz -c` of `data` (the `xz` command; CI installs xz-utils).
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("xz")
        .args(["-c", "-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run xz (install xz-utils)");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("xz");
    writer.join().unwrap().expect("write to xz");
    assert!(out.status.success(), "xz failed");
    out.stdout
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The plain tar of one component in the rust-installer format.
pub fn component_tar(rel: &Release, pkg: &str, target: &str) -> Vec<u8> {
    let top = if target == "*" {
        format!("{pkg}-{}", rel.file_version())
    } else {
        format!("{pkg}-{}-{target}", rel.file_version())
    };
    let component = if pkg == "rust-std" {
        format!("rust-std-{target}")
    } else {
        pkg.to_string()
    };
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    match pkg {
        "rustc" | "cargo" => files.push((
            format!("bin/{pkg}"),
            format!(
                "#!/bin/sh\ncase \"$1\" in -V|--version|-vV) echo \"{pkg} {} (fixture)\";; *) echo \"{pkg} fixture\";; esac\n",
                rel.version
            )
            .into_bytes(),
            0o755,
        )),
        "rust-std" => files.push((
            format!("lib/rustlib/{target}/lib/libstd-fixture.rlib"),
            b"fixture".to_vec(),
            0o644,
        )),
        "rust-src" => files.push((
            "lib/rustlib/src/rust/README.md".into(),
            b"fixture".to_vec(),
            0o644,
        )),
        _ => files.push((
            format!("share/doc/{pkg}/index.html"),
            b"<p>fixture</p>".to_vec(),
            0o644,
        )),
    }
    // Incompressible bulk, so cut bodies and ranges have room to act.
    let mut bulk = Vec::with_capacity(96 * 1024);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (pkg.len() as u64);
    while bulk.len() < 96 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bulk.extend_from_slice(&x.to_le_bytes());
    }
    files.push((format!("share/doc/{pkg}/bulk.bin"), bulk, 0o644));

    let manifest_in: String = files
        .iter()
        .map(|(p, _, _)| format!("file:{p}\n"))
        .collect();
    let mut entries: Vec<(String, Vec<u8>, u32)> = vec![
        (
            format!("{top}/rust-installer-version"),
            b"3\n".to_vec(),
            0o644,
        ),
        (
            format!("{top}/components"),
            format!("{component}\n").into_bytes(),
            0o644,
        ),
        (
            format!("{top}/{component}/manifest.in"),
            manifest_in.into_bytes(),
            0o644,
        ),
    ];
    for (p, data, mode) in files {
        entries.push((format!("{top}/{component}/{p}"), data, mode));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// Publish a release for `targets` (plus `rust-src` for `*`): tarballs
/// (xz and gz) with `.sha256` and `.asc`, the dated manifest with its
/// `.sha256` and `.asc`, and the dateless manifest of its channel (and for
/// stable `channel-rust-X.Y.Z.toml`). Publish older releases first.
pub fn publish(up: &Upstream, rel: &Release, targets: &[&str]) -> Published {
    let mut toml = format!("manifest-version = \"2\"\ndate = \"{}\"\n\n", rel.date);
    let mut files = Vec::new();
    let pkg_version = format!("{} (fixture {})", rel.version, rel.date);
    let put_file = |path: &str, bytes: Vec<u8>, files: &mut Vec<String>| -> String {
        let h = hex(&bytes);
        let name = path.rsplit('/').next().unwrap();
        up.put(&format!("{path}.sha256"), format!("{h}  {name}\n"));
        up.put(
            &format!("{path}.asc"),
            sign_detached(TestKey::Signing, &bytes, true),
        );
        up.put(path, bytes);
        files.push(path.to_string());
        h
    };
    let mut pkg_tables = |pkg: &str, pkg_targets: &[&str], files: &mut Vec<String>| {
        toml.push_str(&format!("[pkg.{pkg}]\nversion = \"{pkg_version}\"\n\n"));
        for t in pkg_targets {
            let tar = component_tar(rel, pkg, t);
            let xz_path = rel.file_path(pkg, t, "xz");
            let gz_path = rel.file_path(pkg, t, "gz");
            let xz_hash = put_file(&xz_path, xz(&tar), files);
            let gz_hash = put_file(&gz_path, gz(&tar), files);
            let key = if *t == "*" {
                "\"*\"".to_string()
            } else {
                t.to_string()
            };
            toml.push_str(&format!(
                "[pkg.{pkg}.target.{key}]\navailable = true\nurl = \"{OFFICIAL}/{gz_path}\"\nhash = \"{gz_hash}\"\nxz_url = \"{OFFICIAL}/{xz_path}\"\nxz_hash = \"{xz_hash}\"\n\n"
            ));
        }
    };
    for (pkg, per_target) in PACKAGES {
        let ts: Vec<&str> = if *per_target {
            targets.to_vec()
        } else {
            vec!["*"]
        };
        pkg_tables(pkg, &ts, &mut files);
    }
    // The combined installer: listed, with its components.
    toml.push_str(&format!("[pkg.rust]\nversion = \"{pkg_version}\"\n\n"));
    for t in targets {
        let tar = component_tar(rel, "rustc", t);
        let xz_path = rel.file_path("rust", t, "xz");
        let xz_hash = put_file(&xz_path, xz(&tar), &mut files);
        toml.push_str(&format!(
            "[pkg.rust.target.{t}]\navailable = true\nxz_url = \"{OFFICIAL}/{xz_path}\"\nxz_hash = \"{xz_hash}\"\n\n"
        ));
        for pkg in ["rustc", "cargo", "rust-std"] {
            toml.push_str(&format!(
                "[[pkg.rust.target.{t}.components]]\npkg = \"{pkg}\"\ntarget = \"{t}\"\n\n"
            ));
        }
        for (pkg, target) in [("rust-docs", *t), ("rust-src", "*")] {
            toml.push_str(&format!(
                "[[pkg.rust.target.{t}.extensions]]\npkg = \"{pkg}\"\ntarget = \"{target}\"\n\n"
            ));
        }
    }
    toml.push_str("[renames.docs]\nto = \"rust-docs\"\n\n");
    toml.push_str(
        "[profiles]\nminimal = [\"rustc\", \"cargo\", \"rust-std\", \"rust-mingw\"]\n\
         default = [\"rustc\", \"cargo\", \"rust-std\", \"rust-mingw\", \"rust-docs\"]\n\
         complete = [\"rustc\", \"cargo\", \"rust-std\", \"rust-mingw\", \"rust-docs\", \"rust-src\"]\n\n",
    );
    // Upstream adds tables clients ignore.
    toml.push_str("[artifacts.source-code]\n[[artifacts.source-code.target.\"*\"]]\nurl = \"x\"\nhash-sha256 = \"y\"\n");

    let manifest = toml.into_bytes();
    let put_manifest = |path: String| {
        let name = path.rsplit('/').next().unwrap().to_string();
        up.put(
            &format!("{path}.sha256"),
            format!("{}  {name}\n", hex(&manifest)),
        );
        up.put(
            &format!("{path}.asc"),
            sign_detached(TestKey::Signing, &manifest, true),
        );
        up.put(&path, manifest.clone());
    };
    put_manifest(rel.manifest_path());
    put_manifest(format!("dist/channel-rust-{}.toml", rel.channel));
    if rel.channel == "stable" {
        put_manifest(format!("dist/channel-rust-{}.toml", rel.version));
    }
    Published { manifest, files }
}

/// The host triple of the machine running the tests.
pub fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("host triple")
}

/// The fixture releases: two stables, a beta, a nightly.
pub const OLD_STABLE: Release = Release {
    channel: "stable",
    date: "2026-09-03",
    version: "1.98.0",
};
/// The newer stable.
pub const STABLE: Release = Release {
    channel: "stable",
    date: "2026-10-15",
    version: "1.99.1",
};
/// A beta.
pub const BETA: Release = Release {
    channel: "beta",
    date: "2026-10-14",
    version: "1.100.0-beta.3",
};
/// A nightly.
pub const NIGHTLY: Release = Release {
    channel: "nightly",
    date: "2026-10-16",
    version: "1.101.0-nightly",
};

/// A fake upstream with all four releases for `targets`.
pub fn dist_upstream(targets: &[&str]) -> Upstream {
    let up = Upstream::start();
    for rel in [OLD_STABLE, STABLE, BETA, NIGHTLY] {
        publish(&up, &rel, targets);
    }
    up
}
