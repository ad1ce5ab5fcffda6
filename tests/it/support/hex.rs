//! A Hex repository generated at test time, signed with the checked-in
//! test key (`fixtures/keys/hex-test.key.pem`): real tarballs (VERSION,
//! CHECKSUM, metadata.config, contents.tar.gz holding an Erlang app),
//! `packages/<name>`, `names`, `versions`, served by the fake upstream under
//! `hex/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use mirror::eco::hex::registry::{
    Dependency, Names, NamesPackage, Package, Release, RetirementStatus, Signed, Timestamp,
    Versions, VersionsPackage,
};
use prost::Message;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha512};

use super::upstream::Upstream;

/// `fixtures/keys/<name>`.
pub fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keys")
        .join(name)
}

/// The PEM public key the fixtures verify with.
pub fn test_public_key_pem() -> String {
    std::fs::read_to_string(key_path("hex-test.pub.pem")).unwrap()
}

fn private_key(name: &str) -> RsaPrivateKey {
    let pem = std::fs::read_to_string(key_path(name)).unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

/// gzip(Signed{payload, signature}) signed with key file `key`.
pub fn sign_with(payload: &[u8], key: &str) -> Vec<u8> {
    let digest = Sha512::digest(payload);
    let signature = private_key(key)
        .sign(Pkcs1v15Sign::new::<Sha512>(), &digest)
        .unwrap();
    let signed = Signed {
        payload: payload.to_vec(),
        signature: Some(signature),
    };
    gzip(&signed.encode_to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// One release of a fixture package.
#[derive(Debug, Clone)]
pub struct FixtureRelease {
    /// Version.
    pub version: String,
    /// (package, requirement).
    pub deps: Vec<(String, String)>,
    /// Retired (security) when set.
    pub retired: bool,
}

/// `FixtureRelease` shorthand.
pub fn rel(version: &str, deps: &[(&str, &str)]) -> FixtureRelease {
    FixtureRelease {
        version: version.to_string(),
        deps: deps
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect(),
        retired: false,
    }
}

/// A whole repository.
#[derive(Debug, Clone)]
pub struct HexRepo {
    /// The name inside every payload.
    pub repo_name: String,
    /// Key file that signs (under fixtures/keys).
    pub key: String,
    /// Packages and their releases.
    pub packages: BTreeMap<String, Vec<FixtureRelease>>,
    /// `updated_at` seconds per package.
    pub updated: BTreeMap<String, i64>,
}

impl HexRepo {
    /// alpha 1.0.0 (retired), 1.1.0 -> beta ~> 2.0; beta 2.0.0, 2.1.0;
    /// gamma 0.1.0 (not a dependency of anything).
    pub fn sample() -> HexRepo {
        let mut r = HexRepo {
            repo_name: "hexpm".into(),
            key: "hex-test.key.pem".into(),
            packages: BTreeMap::new(),
            updated: BTreeMap::new(),
        };
        let mut old = rel("1.0.0", &[("beta", "~> 2.0")]);
        old.retired = true;
        r.add("alpha", vec![old, rel("1.1.0", &[("beta", "~> 2.0")])]);
        r.add("beta", vec![rel("2.0.0", &[]), rel("2.1.0", &[])]);
        r.add("gamma", vec![rel("0.1.0", &[])]);
        r
    }

    /// Add (or replace) a package; bumps its `updated_at`.
    pub fn add(&mut self, name: &str, releases: Vec<FixtureRelease>) {
        self.packages.insert(name.to_string(), releases);
        let next = self
            .updated
            .values()
            .max()
            .copied()
            .unwrap_or(1_700_000_000)
            + 60;
        self.updated.insert(name.to_string(), next);
    }

    /// Add one release to a package; bumps its `updated_at`.
    pub fn add_release(&mut self, name: &str, release: FixtureRelease) {
        let mut rels = self.packages[name].clone();
        rels.push(release);
        self.add(name, rels);
    }

    /// The signed `packages/<name>` resource.
    pub fn package_resource(&self, name: &str) -> Vec<u8> {
        let releases = self.packages[name]
            .iter()
            .map(|r| {
                let (tar, inner) = tarball(name, r);
                Release {
                    version: r.version.clone(),
                    inner_checksum: inner.to_vec(),
                    dependencies: r
                        .deps
                        .iter()
                        .map(|(p, req)| Dependency {
                            package: p.clone(),
                            requirement: req.clone(),
                            optional: None,
                            app: None,
                            repository: None,
                        })
                        .collect(),
                    retired: r.retired.then(|| RetirementStatus {
                        reason: 2,
                        message: Some("a test retirement".into()),
                    }),
                    outer_checksum: Some(Sha256::digest(&tar).to_vec()),
                }
            })
            .collect();
        let p = Package {
            releases,
            name: name.to_string(),
            repository: self.repo_name.clone(),
        };
        sign_with(&p.encode_to_vec(), &self.key)
    }

    /// Every resource: (path under `hex/`, bytes).
    pub fn resources(&self) -> Vec<(String, Vec<u8>)> {
        let names = Names {
            packages: self
                .packages
                .keys()
                .map(|n| NamesPackage {
                    name: n.clone(),
                    updated_at: Some(Timestamp {
                        seconds: self.updated[n],
                        nanos: Some(0),
                    }),
                })
                .collect(),
            repository: self.repo_name.clone(),
        };
        let versions = Versions {
            packages: self
                .packages
                .iter()
                .map(|(n, rels)| VersionsPackage {
                    name: n.clone(),
                    versions: rels.iter().map(|r| r.version.clone()).collect(),
                    retired: rels
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.retired)
                        .map(|(i, _)| i as i32)
                        .collect(),
                    with_advisories: vec![],
                })
                .collect(),
            repository: self.repo_name.clone(),
        };
        let mut out = vec![
            (
                "names".to_string(),
                sign_with(&names.encode_to_vec(), &self.key),
            ),
            (
                "versions".to_string(),
                sign_with(&versions.encode_to_vec(), &self.key),
            ),
            ("public_key".to_string(), test_public_key_pem().into_bytes()),
        ];
        for (name, rels) in &self.packages {
            out.push((format!("packages/{name}"), self.package_resource(name)));
            for r in rels {
                out.push((
                    format!("tarballs/{name}-{}.tar", r.version),
                    tarball(name, r).0,
                ));
            }
        }
        out
    }

    /// Put every resource on `up` under `hex/`.
    pub fn publish(&self, up: &Upstream) {
        for (path, bytes) in self.resources() {
            up.put(&format!("hex/{path}"), bytes);
        }
    }
}

/// The tarball of a release and its inner checksum. Deterministic.
pub fn tarball(name: &str, r: &FixtureRelease) -> (Vec<u8>, [u8; 32]) {
    let v = &r.version;
    let apps: String = r.deps.iter().map(|(d, _)| format!(", {d}")).collect();
    let app_src = format!(
        "{{application, {name}, [{{description, \"{name} test package\"}}, {{vsn, \"{v}\"}}, \
         {{registered, []}}, {{applications, [kernel, stdlib{apps}]}}, {{env, []}}]}}.\n"
    );
    let erl = format!("-module({name}).\n-export([version/0]).\nversion() -> <<\"{v}\">>.\n");
    let contents = {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, data) in [
            (format!("src/{name}.app.src"), app_src.as_bytes()),
            (format!("src/{name}.erl"), erl.as_bytes()),
        ] {
            append(&mut b, &path, data);
        }
        b.into_inner().unwrap().finish().unwrap()
    };
    let reqs: Vec<String> = r
        .deps
        .iter()
        .map(|(d, req)| {
            format!(
                "{{<<\"{d}\">>,[{{<<\"app\">>,<<\"{d}\">>}},{{<<\"optional\">>,false}},\
                 {{<<\"requirement\">>,<<\"{req}\">>}},{{<<\"repository\">>,<<\"hexpm\">>}}]}}"
            )
        })
        .collect();
    let metadata = format!(
        "{{<<\"name\">>,<<\"{name}\">>}}.\n\
         {{<<\"app\">>,<<\"{name}\">>}}.\n\
         {{<<\"version\">>,<<\"{v}\">>}}.\n\
         {{<<\"description\">>,<<\"{name} test package\">>}}.\n\
         {{<<\"licenses\">>,[<<\"MIT\">>]}}.\n\
         {{<<\"requirements\">>,[{}]}}.\n\
         {{<<\"build_tools\">>,[<<\"rebar3\">>]}}.\n\
         {{<<\"files\">>,[<<\"src/{name}.app.src\">>,<<\"src/{name}.erl\">>]}}.\n",
        reqs.join(",")
    );
    let mut h = Sha256::new();
    h.update(b"3");
    h.update(metadata.as_bytes());
    h.update(&contents);
    let inner: [u8; 32] = h.finalize().into();
    let checksum = hex::encode_upper(inner);
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "VERSION", b"3");
    append(&mut b, "CHECKSUM", checksum.as_bytes());
    append(&mut b, "metadata.config", metadata.as_bytes());
    append(&mut b, "contents.tar.gz", &contents);
    (b.into_inner().unwrap(), inner)
}

fn append<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

/// One line of an install list: a Hex version, its archive's bytes, and
/// what it is for: Elixir versions (`hex-1.x.csv`) or `[elixir, otp]`
/// (`hex.csv`).
#[derive(Debug, Clone)]
pub struct InstallLine {
    /// Hex version.
    pub hex: String,
    /// The archive (`.ez`) bytes.
    pub archive: Vec<u8>,
    /// Elixir versions, or Elixir version and OTP release.
    pub for_versions: Vec<String>,
}

/// `InstallLine` shorthand.
pub fn install_line(hex: &str, archive: &[u8], for_versions: &[&str]) -> InstallLine {
    InstallLine {
        hex: hex.to_string(),
        archive: archive.to_vec(),
        for_versions: for_versions.iter().map(|s| s.to_string()).collect(),
    }
}

/// The `.signed` of an install list as upstream writes it: base64 of the
/// RSA SHA-512 signature, wrapped at 64 columns (`openssl base64`).
pub fn sign_install_list(csv: &[u8], key: &str) -> Vec<u8> {
    use base64::Engine as _;
    let digest = Sha512::digest(csv);
    let signature = private_key(key)
        .sign(Pkcs1v15Sign::new::<Sha512>(), &digest)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
    let mut out = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.into_bytes()
}

/// The archive paths (under `installs/`) of `line` in list `csv`.
pub fn install_paths(csv: &str, line: &InstallLine) -> Vec<String> {
    if csv == "hex.csv" {
        vec![format!(
            "{}/hex-{}-otp-{}.ez",
            line.for_versions[0], line.hex, line.for_versions[1]
        )]
    } else {
        line.for_versions
            .iter()
            .map(|e| format!("{e}/hex-{}.ez", line.hex))
            .collect()
    }
}

/// Put `hex/installs/<csv>`, its `.signed` (by key file `key`) and every
/// archive on `up`; returns the CSV bytes.
pub fn publish_installs(up: &Upstream, csv: &str, lines: &[InstallLine], key: &str) -> Vec<u8> {
    let mut text = String::new();
    for l in lines {
        let sha = hex::encode(Sha512::digest(&l.archive));
        text.push_str(&format!("{},{sha},{}\n", l.hex, l.for_versions.join(",")));
        for p in install_paths(csv, l) {
            up.put(&format!("hex/installs/{p}"), l.archive.clone());
        }
    }
    up.put(&format!("hex/installs/{csv}"), text.clone().into_bytes());
    up.put(
        &format!("hex/installs/{csv}.signed"),
        sign_install_list(text.as_bytes(), key),
    );
    text.into_bytes()
}
