//! A pacman repository generated at test time: packages written directly
//! as `.pkg.tar.zst` (a tar with `.PKGINFO` and one file), each with a
//! detached binary `.sig` by a test key, and a `<repo>.db` (gzip tar, one
//! `<name>-<version>/desc` per package) served by the fake upstream under
//! `<prefix>/<repo>/os/x86_64/`.

use std::collections::BTreeMap;

use mirror::eco::arch::db::{write_db, RawDesc};
use mirror::verify::Sha256Digest;

use super::keys::{sign_detached, TestKey};
use super::upstream::Upstream;

/// The architecture of the fixtures.
pub const ARCH: &str = "x86_64";

/// One package of a fixture repository.
#[derive(Clone, Debug)]
pub struct Pkg {
    /// `%NAME%`.
    pub name: String,
    /// `pkgver-pkgrel`.
    pub version: String,
    /// `%DEPENDS%`.
    pub depends: Vec<String>,
}

impl Pkg {
    /// A package without dependencies.
    pub fn new(name: &str, version: &str) -> Pkg {
        Pkg {
            name: name.into(),
            version: version.into(),
            depends: Vec::new(),
        }
    }

    /// The package file name.
    pub fn filename(&self) -> String {
        format!("{}-{}-{ARCH}.pkg.tar.zst", self.name, self.version)
    }

    /// The package file: a zstd tar with `.PKGINFO` and a README.
    pub fn bytes(&self) -> Vec<u8> {
        let readme = format!("{} {}\n", self.name, self.version);
        let mut info = format!(
            "pkgname = {}\npkgbase = {}\npkgver = {}\npkgdesc = test package\nbuilddate = 1700000000\npackager = Test <test@example.invalid>\nsize = {}\narch = {ARCH}\n",
            self.name,
            self.name,
            self.version,
            readme.len()
        );
        for d in &self.depends {
            info.push_str(&format!("depend = {d}\n"));
        }
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in [
            (".PKGINFO".to_string(), info.as_bytes()),
            (format!("usr/share/{}/README", self.name), readme.as_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1_700_000_000);
            builder.append_data(&mut h, path, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        ruzstd::encoding::compress_to_vec(
            tar.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        )
    }

    /// The database entry for `bytes`.
    pub fn desc(&self, bytes: &[u8]) -> RawDesc {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut put = |k: &str, v: Vec<String>| {
            fields.insert(k.to_string(), v);
        };
        put("FILENAME", vec![self.filename()]);
        put("NAME", vec![self.name.clone()]);
        put("BASE", vec![self.name.clone()]);
        put("VERSION", vec![self.version.clone()]);
        put("DESC", vec!["test package".into()]);
        put("CSIZE", vec![bytes.len().to_string()]);
        put("ISIZE", vec!["100".into()]);
        put("SHA256SUM", vec![Sha256Digest::of(bytes).to_hex()]);
        put("ARCH", vec![ARCH.into()]);
        put("BUILDDATE", vec!["1700000000".into()]);
        put("PACKAGER", vec!["Test <test@example.invalid>".into()]);
        if !self.depends.is_empty() {
            put("DEPENDS", self.depends.clone());
        }
        RawDesc {
            dir: format!("{}-{}", self.name, self.version),
            fields,
        }
    }
}

/// A published fixture repository.
pub struct Repo {
    /// URL path of the repository directory on the upstream.
    pub dir: String,
    /// The packages' bytes by file name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The database bytes.
    pub db: Vec<u8>,
}

/// Publish `pkgs` as repository `repo` under `<prefix>/<repo>/os/x86_64/`,
/// signed by `key`; `edit` may change each entry before the database is
/// written.
pub fn publish_with(
    up: &Upstream,
    prefix: &str,
    repo: &str,
    pkgs: &[Pkg],
    key: TestKey,
    edit: impl Fn(&mut RawDesc),
) -> Repo {
    let dir = format!("{prefix}/{repo}/os/{ARCH}");
    let mut files = BTreeMap::new();
    let mut entries = Vec::new();
    for p in pkgs {
        let bytes = p.bytes();
        up.put(&format!("{dir}/{}", p.filename()), bytes.clone());
        up.put(
            &format!("{dir}/{}.sig", p.filename()),
            sign_detached(key, &bytes, false),
        );
        let mut desc = p.desc(&bytes);
        edit(&mut desc);
        entries.push(desc);
        files.insert(p.filename(), bytes);
    }
    let db = write_db(&entries).unwrap();
    up.put(&format!("{dir}/{repo}.db"), db.clone());
    up.put(&format!("{dir}/{repo}.files"), db.clone());
    Repo { dir, files, db }
}

/// [`publish_with`] signed by the test key, entries unchanged.
pub fn publish(up: &Upstream, prefix: &str, repo: &str, pkgs: &[Pkg]) -> Repo {
    publish_with(up, prefix, repo, pkgs, TestKey::Signing, |_| {})
}
