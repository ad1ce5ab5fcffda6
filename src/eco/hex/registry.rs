//! The Hex repository's signed resources: `names`, `versions` and
//! `packages/<name>`.
//!
//! Each is a gzip of a protobuf `Signed { payload = 1; signature = 2 }`
//! (proto2). The signature is RSA PKCS#1 v1.5 with SHA-512 over the raw
//! payload bytes, made with the repository's key. The payload is one of
//! [`Names`], [`Versions`] or [`Package`], and names the repository it
//! belongs to: a client configured for repository `hexpm` accepts only
//! payloads that say `hexpm` (and, for `packages/<name>`, name `<name>`).
//!
//! The wire structs below mirror the upstream `.proto` files field by
//! field (tags included); fields we do not use (advisories) are left out
//! and skipped as unknown fields. Enum values are kept as plain integers,
//! so a new retirement reason does not make a file unreadable.
//!
//! A full mirror keeps these files byte-for-byte. A partial mirror given
//! the site's key ([`SigningKey`]) publishes its own `names`, `versions`
//! and `packages/<name>`, listing only what it holds, signed the same way
//! ([`sign_resource`]).

use std::path::Path;

use flate2::read::GzDecoder;
use prost::Message;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha512};

use crate::verify::Sha256Digest;

/// The public key of repo.hex.pm (`hexpm`), embedded as the default.
pub const HEXPM_PUBLIC_KEY: &str = include_str!("keys/hexpm-public-key.pem");

/// `Signed`: the outer message of every resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Signed {
    /// The encoded payload message.
    #[prost(bytes = "vec", required, tag = "1")]
    pub payload: Vec<u8>,
    /// RSA PKCS#1 v1.5 / SHA-512 signature over `payload`.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

/// `Timestamp`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, required, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

/// The `names` payload: every package with when it last changed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Names {
    /// The packages.
    #[prost(message, repeated, tag = "1")]
    pub packages: Vec<NamesPackage>,
    /// The repository the file belongs to.
    #[prost(string, required, tag = "2")]
    pub repository: String,
}

/// One package of [`Names`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamesPackage {
    /// Package name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// When `packages/<name>` last changed.
    #[prost(message, optional, tag = "3")]
    pub updated_at: Option<Timestamp>,
}

/// The `versions` payload: every package's versions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Versions {
    /// The packages.
    #[prost(message, repeated, tag = "1")]
    pub packages: Vec<VersionsPackage>,
    /// The repository the file belongs to.
    #[prost(string, required, tag = "2")]
    pub repository: String,
}

/// One package of [`Versions`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionsPackage {
    /// Package name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Its versions.
    #[prost(string, repeated, tag = "2")]
    pub versions: Vec<String>,
    /// Indexes into `versions` of retired ones.
    #[prost(int32, repeated, packed = "true", tag = "3")]
    pub retired: Vec<i32>,
    /// Indexes into `versions` with security advisories.
    #[prost(int32, repeated, packed = "true", tag = "5")]
    pub with_advisories: Vec<i32>,
}

/// The `packages/<name>` payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Package {
    /// Every release.
    #[prost(message, repeated, tag = "1")]
    pub releases: Vec<Release>,
    /// Package name.
    #[prost(string, required, tag = "2")]
    pub name: String,
    /// The repository the file belongs to.
    #[prost(string, required, tag = "3")]
    pub repository: String,
}

/// One release of a [`Package`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Release {
    /// Version (semantic versioning).
    #[prost(string, required, tag = "1")]
    pub version: String,
    /// SHA-256 of the tarball's contents (VERSION, metadata, contents).
    #[prost(bytes = "vec", required, tag = "2")]
    pub inner_checksum: Vec<u8>,
    /// What it depends on.
    #[prost(message, repeated, tag = "3")]
    pub dependencies: Vec<Dependency>,
    /// Set when the release is retired.
    #[prost(message, optional, tag = "4")]
    pub retired: Option<RetirementStatus>,
    /// SHA-256 of the whole tarball file.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub outer_checksum: Option<Vec<u8>>,
}

/// Why a release was retired.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetirementStatus {
    /// `RetirementReason` (0 other, 1 invalid, 2 security, 3 deprecated,
    /// 4 renamed), kept as a number.
    #[prost(int32, required, tag = "1")]
    pub reason: i32,
    /// Free text.
    #[prost(string, optional, tag = "2")]
    pub message: Option<String>,
}

/// One dependency of a [`Release`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dependency {
    /// Package name.
    #[prost(string, required, tag = "1")]
    pub package: String,
    /// Version requirement (`~> 1.0`, `>= 1.2.0 and < 2.0.0`, …).
    #[prost(string, required, tag = "2")]
    pub requirement: String,
    /// Only needed when the dependent asks for it.
    #[prost(bool, optional, tag = "3")]
    pub optional: Option<bool>,
    /// OTP application name, when it differs from the package name.
    #[prost(string, optional, tag = "4")]
    pub app: Option<String>,
    /// Another repository, when not the same one.
    #[prost(string, optional, tag = "5")]
    pub repository: Option<String>,
}

impl Release {
    /// The outer checksum as a digest, if present and 32 bytes long.
    pub fn outer_digest(&self) -> Option<Sha256Digest> {
        let bytes: [u8; 32] = self.outer_checksum.as_deref()?.try_into().ok()?;
        Some(Sha256Digest(bytes))
    }
}

/// Why a resource was refused. `what` names the file or URL.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not gzip, or too large.
    #[error("{what}: not a gzip-compressed Hex resource: {message}")]
    Gzip {
        /// File or URL.
        what: String,
        /// Why.
        message: String,
    },
    /// The protobuf does not decode.
    #[error("{what}: not a valid Hex {kind} message: {message}")]
    Protobuf {
        /// File or URL.
        what: String,
        /// `Signed`, `Names`, …
        kind: &'static str,
        /// Decoder's message.
        message: String,
    },
    /// No signature at all.
    #[error("{what}: the resource is not signed")]
    Unsigned {
        /// File or URL.
        what: String,
    },
    /// The signature does not verify with the configured key.
    #[error("{what}: bad signature: not signed by the repository key {key}")]
    BadSignature {
        /// File or URL.
        what: String,
        /// Which key (file name or `embedded hexpm key`).
        key: String,
    },
    /// The payload belongs to another repository.
    #[error("{what}: payload is for repository {found:?}, expected {expected:?} (set --repo-name if this is intended)")]
    WrongRepository {
        /// File or URL.
        what: String,
        /// `--repo-name`.
        expected: String,
        /// The payload's `repository`.
        found: String,
    },
    /// `packages/<name>` names another package.
    #[error("{what}: payload is for package {found:?}, expected {expected:?}")]
    WrongPackage {
        /// File or URL.
        what: String,
        /// The name from the path.
        expected: String,
        /// The payload's `name`.
        found: String,
    },
}

/// A repository's RSA public key.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: RsaPublicKey,
    pem: String,
    origin: String,
}

impl PublicKey {
    /// The embedded key of repo.hex.pm.
    pub fn hexpm() -> PublicKey {
        PublicKey::from_pem(HEXPM_PUBLIC_KEY, "embedded hexpm key")
            .expect("the embedded hexpm key parses")
    }

    /// Parse a PEM key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`);
    /// `origin` names it in messages.
    pub fn from_pem(pem: &str, origin: &str) -> anyhow::Result<PublicKey> {
        let key = RsaPublicKey::from_public_key_pem(pem.trim())
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{origin}: not an RSA public key in PEM form (expected \
                     -----BEGIN PUBLIC KEY-----): {e}"
                )
            })?;
        Ok(PublicKey {
            key,
            pem: pem.to_string(),
            origin: origin.to_string(),
        })
    }

    /// Read a PEM key file.
    pub fn from_file(path: &Path) -> anyhow::Result<PublicKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read public key {}: {e}", path.display()))?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    /// The PEM text as given (what the mirror serves as `public_key`).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Where the key came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Check a PKCS#1 v1.5 SHA-512 signature over `payload`.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> bool {
        let digest = Sha512::digest(payload);
        self.key
            .verify(Pkcs1v15Sign::new::<Sha512>(), &digest, signature)
            .is_ok()
    }
}

/// The site's RSA private key, which signs the `names`, `versions` and
/// `packages/<name>` of a partial mirror (`--signing-key`).
#[derive(Clone)]
pub struct SigningKey {
    key: RsaPrivateKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("origin", &self.public.origin)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parse a PEM private key (`BEGIN PRIVATE KEY`, PKCS#8, or `BEGIN RSA
    /// PRIVATE KEY`, PKCS#1); `origin` names it in messages.
    pub fn from_pem(pem: &str, origin: &str) -> anyhow::Result<SigningKey> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{origin}: not an RSA private key in PEM form (expected \
                     -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----): {e}"
                )
            })?;
        key.validate()
            .map_err(|e| anyhow::anyhow!("{origin}: not a valid RSA private key: {e}"))?;
        let public = key.to_public_key();
        let pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("{origin}: cannot encode its public key: {e}"))?;
        Ok(SigningKey {
            key,
            public: PublicKey {
                key: public,
                pem,
                origin: format!("public key of {origin}"),
            },
        })
    }

    /// Read a PEM private key file.
    pub fn from_file(path: &Path) -> anyhow::Result<SigningKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read signing key {}: {e}", path.display()))?;
        SigningKey::from_pem(&text, &path.display().to_string())
    }

    /// The matching public key (what the mirror serves as `public_key`).
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// gzip(`Signed { payload, signature }`), signed as Hex signs: RSA
    /// PKCS#1 v1.5 over the SHA-512 of `payload`. The same payload always
    /// gives the same bytes.
    pub fn sign_resource(&self, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        use std::io::Write;
        let digest = Sha512::digest(payload);
        let signature = self
            .key
            .sign(Pkcs1v15Sign::new::<Sha512>(), &digest)
            .map_err(|e| anyhow::anyhow!("cannot sign with {}: {e}", self.public.origin))?;
        let signed = Signed {
            payload: payload.to_vec(),
            signature: Some(signature),
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&signed.encode_to_vec())?;
        Ok(gz.finish()?)
    }
}

/// The releases of `package` in `held`, and nothing else changed: each
/// kept release as upstream signed it (dependencies, checksums,
/// retirement).
pub fn held_only(package: &Package, held: impl Fn(&str) -> bool) -> Package {
    Package {
        releases: package
            .releases
            .iter()
            .filter(|r| held(&r.version))
            .cloned()
            .collect(),
        name: package.name.clone(),
        repository: package.repository.clone(),
    }
}

/// The `versions` entry of `package` (held releases), with upstream's
/// advisories (`upstream`, by version) kept.
pub fn versions_entry(package: &Package, upstream: Option<&VersionsPackage>) -> VersionsPackage {
    let advised: std::collections::HashSet<&str> = upstream
        .map(|u| {
            u.with_advisories
                .iter()
                .filter_map(|&i| u.versions.get(usize::try_from(i).ok()?))
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    let index = |i: usize| i32::try_from(i).unwrap_or(i32::MAX);
    VersionsPackage {
        name: package.name.clone(),
        versions: package.releases.iter().map(|r| r.version.clone()).collect(),
        retired: (package.releases.iter().enumerate())
            .filter(|(_, r)| r.retired.is_some())
            .map(|(i, _)| index(i))
            .collect(),
        with_advisories: (package.releases.iter().enumerate())
            .filter(|(_, r)| advised.contains(r.version.as_str()))
            .map(|(i, _)| index(i))
            .collect(),
    }
}

/// Gunzip, decode `Signed`, check the signature; returns the payload.
pub fn open_signed(bytes: &[u8], key: &PublicKey, what: &str) -> Result<Vec<u8>, RegistryError> {
    let gzip = |message: String| RegistryError::Gzip {
        what: what.to_string(),
        message,
    };
    crate::limit::HEX_RESOURCE
        .check(bytes.len() as u64)
        .map_err(|e| gzip(e.to_string()))?;
    let inflated = crate::limit::HEX_RESOURCE_INFLATED.limit(bytes.len() as u64);
    let raw = crate::limit::read_to_vec(
        crate::limit::Capped::new(GzDecoder::new(bytes), inflated),
        inflated,
        None,
    )
    .map_err(|e| gzip(e.to_string()))?;
    let signed = Signed::decode(raw.as_slice()).map_err(|e| proto_err(what, "Signed", e))?;
    let Some(signature) = signed.signature.as_deref() else {
        return Err(RegistryError::Unsigned {
            what: what.to_string(),
        });
    };
    if !key.verify(&signed.payload, signature) {
        return Err(RegistryError::BadSignature {
            what: what.to_string(),
            key: key.origin.clone(),
        });
    }
    Ok(signed.payload)
}

fn proto_err(what: &str, kind: &'static str, e: prost::DecodeError) -> RegistryError {
    RegistryError::Protobuf {
        what: what.to_string(),
        kind,
        message: e.to_string(),
    }
}

fn check_repository(found: &str, expected: &str, what: &str) -> Result<(), RegistryError> {
    if found != expected {
        return Err(RegistryError::WrongRepository {
            what: what.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

impl Timestamp {
    /// `(seconds, nanos)`, for ordering.
    pub fn key(&self) -> (i64, i32) {
        (self.seconds, self.nanos.unwrap_or(0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = u64::try_from(self.seconds).unwrap_or(0);
        f.write_str(&crate::bundle::manifest::rfc3339(secs))
    }
}

/// The packages `offered` says were updated before `published` says:
/// `(name, offered updated_at, published updated_at)`, by name. A `names`
/// with any is older than the published one (for those packages).
pub fn names_behind(offered: &Names, published: &Names) -> Vec<(String, Timestamp, Timestamp)> {
    let now: std::collections::HashMap<&str, &Timestamp> = published
        .packages
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.updated_at.as_ref()?)))
        .collect();
    let mut out: Vec<(String, Timestamp, Timestamp)> = offered
        .packages
        .iter()
        .filter_map(|p| {
            let o = p.updated_at.as_ref()?;
            let n = now.get(p.name.as_str())?;
            (o.key() < n.key()).then(|| (p.name.clone(), o.clone(), (*n).clone()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// [`names_behind`] in words, `None` when `offered` is not behind: `what`
/// (a `names` file) lists the first package with both dates.
pub fn describe_behind(what: &str, behind: &[(String, Timestamp, Timestamp)]) -> Option<String> {
    let (name, o, p) = behind.first()?;
    let more = match behind.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more packages)"),
    };
    Some(format!(
        "{what} is older than the published names: it says {name} was updated {o}, the \
         published names says {p}{more}"
    ))
}

/// Open and check a `names` resource.
pub fn parse_names(
    bytes: &[u8],
    key: &PublicKey,
    repo: &str,
    what: &str,
) -> Result<Names, RegistryError> {
    let payload = open_signed(bytes, key, what)?;
    let names = Names::decode(payload.as_slice()).map_err(|e| proto_err(what, "Names", e))?;
    check_repository(&names.repository, repo, what)?;
    Ok(names)
}

/// Open and check a `versions` resource.
pub fn parse_versions(
    bytes: &[u8],
    key: &PublicKey,
    repo: &str,
    what: &str,
) -> Result<Versions, RegistryError> {
    let payload = open_signed(bytes, key, what)?;
    let v = Versions::decode(payload.as_slice()).map_err(|e| proto_err(what, "Versions", e))?;
    check_repository(&v.repository, repo, what)?;
    Ok(v)
}

/// Open and check a `packages/<name>` resource.
pub fn parse_package(
    bytes: &[u8],
    key: &PublicKey,
    repo: &str,
    name: &str,
    what: &str,
) -> Result<Package, RegistryError> {
    let payload = open_signed(bytes, key, what)?;
    let p = Package::decode(payload.as_slice()).map_err(|e| proto_err(what, "Package", e))?;
    check_repository(&p.repository, repo, what)?;
    if p.name != name {
        return Err(RegistryError::WrongPackage {
            what: what.to_string(),
            expected: name.to_string(),
            found: p.name,
        });
    }
    Ok(p)
}

/// Whether `name` is a plausible package name (safe as a file name):
/// ASCII letters, digits and `_`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `version` is a plausible version (safe inside a file name):
/// ASCII letters, digits, `.`, `-`, `+`, starting with a digit.
pub fn is_valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 128
        && version.as_bytes()[0].is_ascii_digit()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_key_parses() {
        let k = PublicKey::hexpm();
        assert!(k.pem().contains("BEGIN PUBLIC KEY"));
        assert!(!k.verify(b"x", &[0u8; 256]));
    }

    #[test]
    fn garbage_is_refused_with_the_name() {
        let k = PublicKey::hexpm();
        let e = parse_names(b"nope", &k, "hexpm", "http://x/names").unwrap_err();
        assert!(
            e.to_string().starts_with("http://x/names: not a gzip"),
            "{e}"
        );
    }

    #[test]
    fn names_behind_by_package() {
        let names = |pkgs: &[(&str, i64)]| Names {
            packages: pkgs
                .iter()
                .map(|(n, t)| NamesPackage {
                    name: n.to_string(),
                    updated_at: Some(Timestamp {
                        seconds: *t,
                        nanos: None,
                    }),
                })
                .collect(),
            repository: "hexpm".into(),
        };
        let published = names(&[("a", 100), ("b", 200)]);
        // Newer, equal, or only new packages: not behind.
        for offered in [
            names(&[("a", 100), ("b", 300)]),
            names(&[("a", 100), ("b", 200), ("c", 1)]),
            names(&[("c", 1)]),
        ] {
            assert!(names_behind(&offered, &published).is_empty());
        }
        let behind = names_behind(&names(&[("a", 50), ("b", 100)]), &published);
        assert_eq!(behind.len(), 2);
        let why = describe_behind("u/names", &behind).unwrap();
        assert!(
            why.contains("u/names")
                && why.contains("a was updated 1970-01-01T00:00:50Z")
                && why.contains("1970-01-01T00:01:40Z")
                && why.contains("and 1 more"),
            "{why}"
        );
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/keys")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn a_signing_key_signs_what_its_public_key_and_the_pair_verify() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let pkcs8 = SigningKey::from_pem(&fixture("hex-test.key.pem"), "site.pem").unwrap();
        let pkcs1_pem = pkcs8.key.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1_pem.contains("BEGIN RSA PRIVATE KEY"));
        let pkcs1 = SigningKey::from_pem(&pkcs1_pem, "site1.pem").unwrap();
        assert_eq!(pkcs1.public().pem(), pkcs8.public().pem());
        assert!(pkcs8.public().pem().contains("BEGIN PUBLIC KEY"));

        let names = Names {
            packages: vec![NamesPackage {
                name: "alpha".into(),
                updated_at: Some(Timestamp {
                    seconds: 7,
                    nanos: None,
                }),
            }],
            repository: "hexpm".into(),
        };
        let signed = pkcs8.sign_resource(&names.encode_to_vec()).unwrap();
        assert_eq!(signed, pkcs1.sign_resource(&names.encode_to_vec()).unwrap());
        let fixture_public = PublicKey::from_pem(&fixture("hex-test.pub.pem"), "pub").unwrap();
        for key in [pkcs8.public(), &fixture_public] {
            assert_eq!(parse_names(&signed, key, "hexpm", "names").unwrap(), names);
        }
        let other = PublicKey::from_pem(&fixture("hex-test-other.pub.pem"), "other").unwrap();
        let e = parse_names(&signed, &other, "hexpm", "names").unwrap_err();
        assert!(e.to_string().contains("bad signature"), "{e}");
    }

    #[test]
    fn a_signing_key_must_be_a_private_key() {
        for (text, why) in [
            ("nope".to_string(), "not an RSA private key"),
            (fixture("hex-test.pub.pem"), "not an RSA private key"),
        ] {
            let e = SigningKey::from_pem(&text, "site.pem").unwrap_err();
            assert!(
                e.to_string().starts_with("site.pem: ") && e.to_string().contains(why),
                "{e}"
            );
        }
    }

    #[test]
    fn held_only_keeps_releases_as_signed_and_versions_keep_retirements() {
        let release = |v: &str, retired: bool| Release {
            version: v.into(),
            inner_checksum: vec![1; 32],
            dependencies: vec![Dependency {
                package: "beta".into(),
                requirement: "~> 2.0".into(),
                optional: None,
                app: None,
                repository: None,
            }],
            retired: retired.then(|| RetirementStatus {
                reason: 2,
                message: Some("bad".into()),
            }),
            outer_checksum: Some(vec![2; 32]),
        };
        let package = Package {
            releases: vec![
                release("1.0.0", true),
                release("1.1.0", false),
                release("1.2.0", true),
            ],
            name: "alpha".into(),
            repository: "hexpm".into(),
        };
        let held = held_only(&package, |v| v != "1.1.0");
        assert_eq!(
            held.releases,
            [package.releases[0].clone(), package.releases[2].clone()]
        );
        let upstream = VersionsPackage {
            name: "alpha".into(),
            versions: vec!["1.0.0".into(), "1.1.0".into(), "1.2.0".into()],
            retired: vec![0, 2],
            with_advisories: vec![1, 2],
        };
        let v = versions_entry(&held, Some(&upstream));
        assert_eq!(v.versions, ["1.0.0", "1.2.0"]);
        assert_eq!(v.retired, [0, 1]);
        assert_eq!(v.with_advisories, [1]);
    }

    #[test]
    fn names_and_versions_are_checked() {
        assert!(is_valid_name("cowboy_telemetry"));
        for bad in ["", "../x", "a/b", "_a", "1a", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_version("1.0.0-rc.1+build"));
        for bad in ["", "../1", "v1", "1/2"] {
            assert!(!is_valid_version(bad), "{bad}");
        }
    }
}
