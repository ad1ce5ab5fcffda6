//! OpenPGP detached signatures: keyrings and verification (sequoia).
//!
//! Upstreams sign files with detached signatures beside them: the Rust dist
//! server has armored `<file>.asc`, Arch Linux has binary `<file>.sig`. Both
//! forms are accepted everywhere, told apart by content, not by name.
//!
//! A [`Keyring`] is a set of certificates: the embedded Rust release key
//! ([`Keyring::rust_release`]) and whatever the user passes with
//! `--keyring` (armored or binary, one or many certificates per file).
//! Secret key material in such files is dropped on load.
//!
//! A signature is good when at least one of its signatures is a good
//! checksum made by a key of a keyring certificate that is valid, alive and
//! signing-capable at the signature's creation time under [`policy`].
//! Otherwise [`SignatureError`] says which of these went wrong: bad
//! signature, unknown key (with the issuer), invalid key, or a signature
//! that does not parse.
//!
//! Policy: sequoia's standard policy, except that SHA-1 is accepted where
//! only second-preimage resistance matters (binding signatures on keys).
//! The Rust release key's subkey binding uses SHA-1; signatures over data
//! still need a collision-resistant hash.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::{HashAlgoSecurity, StandardPolicy};
use openpgp::types::HashAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle};

/// The Rust release signing key ("Rust Language (Tag and Release Signing
/// Key)"), primary `108F66205EAEB0AAA8DD5E1C85AB96E6FA1BE5FE`.
const RUST_RELEASE_KEY: &[u8] = include_bytes!("keys/rust-release-key.asc");

/// The policy every verification uses: sequoia's standard policy, with SHA-1
/// accepted for second-preimage resistance (key binding signatures).
pub fn policy() -> StandardPolicy<'static> {
    let mut p = StandardPolicy::new();
    p.accept_hash_property(
        HashAlgorithm::SHA1,
        HashAlgoSecurity::SecondPreImageResistance,
    );
    p
}

/// A keyring that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file could not be read.
    #[error("cannot read keyring {what}")]
    Read {
        /// The file.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The content is not OpenPGP certificates.
    #[error("cannot parse OpenPGP certificates in {what}")]
    Parse {
        /// The file or a description of the bytes.
        what: String,
        /// What sequoia said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The content parsed, but holds no certificate.
    #[error("{what} holds no OpenPGP certificate")]
    Empty {
        /// The file or a description of the bytes.
        what: String,
    },
}

/// A set of OpenPGP certificates (public parts only), one per fingerprint.
#[derive(Clone, Default)]
pub struct Keyring {
    certs: Vec<Cert>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Keyring")
            .field(&self.fingerprints())
            .finish()
    }
}

impl Keyring {
    /// An empty keyring (verifies nothing).
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// The embedded Rust release signing key.
    pub fn rust_release() -> Keyring {
        Keyring::from_bytes(RUST_RELEASE_KEY, "embedded Rust release key")
            .expect("the embedded Rust release key parses")
    }

    /// Load every certificate in `path` (armored or binary).
    pub fn from_file(path: &Path) -> Result<Keyring, KeyringError> {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| KeyringError::Read {
            what: what.clone(),
            source,
        })?;
        Keyring::from_bytes(&bytes, &what)
    }

    /// Load every certificate in `bytes` (armored or binary); `what` names
    /// them in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Keyring, KeyringError> {
        let parse_err = |e: anyhow::Error| KeyringError::Parse {
            what: what.to_string(),
            source: e.into(),
        };
        let mut keyring = Keyring::new();
        for cert in CertParser::from_bytes(bytes).map_err(parse_err)? {
            keyring.insert(cert.map_err(parse_err)?);
        }
        if keyring.certs.is_empty() {
            return Err(KeyringError::Empty {
                what: what.to_string(),
            });
        }
        Ok(keyring)
    }

    /// Add a certificate, merging it with one of the same fingerprint.
    pub fn insert(&mut self, cert: Cert) {
        let cert = cert.strip_secret_key_material();
        match self
            .certs
            .iter_mut()
            .find(|c| c.fingerprint() == cert.fingerprint())
        {
            Some(existing) => {
                let merged = existing
                    .clone()
                    .merge_public(cert)
                    .expect("certificates with one fingerprint merge");
                *existing = merged;
            }
            None => self.certs.push(cert),
        }
    }

    /// Add every certificate of `other`.
    pub fn merge(&mut self, other: Keyring) {
        for cert in other.certs {
            self.insert(cert);
        }
    }

    /// Primary key fingerprints, upper-case hex without spaces.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect()
    }

    /// The certificates.
    pub fn certs(&self) -> &[Cert] {
        &self.certs
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there is no certificate.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.certs.iter().any(|c| &c.fingerprint() == fingerprint)
    }
}

/// A good signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Fingerprint of the key (often a subkey) that made the signature.
    pub fingerprint: String,
    /// Fingerprint of its certificate's primary key.
    pub cert_fingerprint: String,
    /// The certificate's primary user ID, if any.
    pub user_id: Option<String>,
    /// When the signature was made.
    pub created: Option<SystemTime>,
}

/// A detached signature that does not verify. Every variant names the
/// signed file or URL (`what`).
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A keyring key made the signature, but over other data.
    #[error(
        "bad OpenPGP signature for {what}: the data does not match (signed by key {fingerprint})"
    )]
    Bad {
        /// The signed file or URL.
        what: String,
        /// The signing key.
        fingerprint: String,
        /// What sequoia said.
        reason: String,
    },
    /// No keyring certificate has the signing key.
    #[error("OpenPGP signature for {what} was made by unknown key {issuer}")]
    UnknownKey {
        /// The signed file or URL.
        what: String,
        /// The issuer fingerprint or key ID from the signature, or `unknown`.
        issuer: String,
    },
    /// A keyring certificate has the key, but it is not valid for signing
    /// (not bound under our policy, expired, revoked, not signing-capable).
    #[error("OpenPGP signature for {what} was made by key {fingerprint}, which is not valid for signing: {reason}")]
    InvalidKey {
        /// The signed file or URL.
        what: String,
        /// The key, or the certificate when the key is not bound.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// The signature file is not an OpenPGP detached signature.
    #[error("cannot parse OpenPGP signature for {what}: {reason}")]
    Unparseable {
        /// The signed file or URL.
        what: String,
        /// Why.
        reason: String,
    },
    /// The signed data could not be read.
    #[error("cannot read {what} to check its OpenPGP signature")]
    Read {
        /// The signed file or URL.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl SignatureError {
    /// The signed file or URL.
    pub fn what(&self) -> &str {
        match self {
            SignatureError::Bad { what, .. }
            | SignatureError::UnknownKey { what, .. }
            | SignatureError::InvalidKey { what, .. }
            | SignatureError::Unparseable { what, .. }
            | SignatureError::Read { what, .. } => what,
        }
    }
}

/// Verify the detached `signature` (armored `.asc` or binary `.sig`) over
/// `data`, streaming; `what` names the signed file or URL in errors.
pub fn verify_detached(
    keyring: &Keyring,
    data: impl Read + Send + Sync,
    signature: &[u8],
    what: &str,
) -> Result<Verified, SignatureError> {
    let unparseable = |e: anyhow::Error| SignatureError::Unparseable {
        what: what.to_string(),
        reason: error_chain(&e),
    };
    let policy = policy();
    let helper = Helper {
        keyring,
        outcome: None,
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(unparseable)?
        .with_policy(&policy, None, helper)
        .map_err(unparseable)?;

    let read_error = Arc::new(Mutex::new(None));
    let data = ErrorKeepingReader {
        inner: data,
        error: Arc::clone(&read_error),
    };
    let result = verifier.verify_reader(data);
    if let Some(source) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(SignatureError::Read {
            what: what.to_string(),
            source,
        });
    }
    let outcome = verifier.into_helper().outcome;
    match (result, outcome) {
        (Ok(()), Some(Outcome::Good(verified))) => Ok(verified),
        (_, Some(Outcome::Failed(failure))) => Err(failure.into_error(what)),
        (Err(e), _) => Err(unparseable(e)),
        // `check` accepted without a good signature: cannot happen.
        (Ok(()), _) => Err(SignatureError::Unparseable {
            what: what.to_string(),
            reason: "no signature found".into(),
        }),
    }
}

/// Verify the detached `signature` over the file at `path`, streaming.
/// Errors name `path`.
pub fn verify_file(
    keyring: &Keyring,
    path: &Path,
    signature: &[u8],
) -> Result<Verified, SignatureError> {
    let what = path.display().to_string();
    let file = File::open(path).map_err(|source| SignatureError::Read {
        what: what.clone(),
        source,
    })?;
    verify_detached(keyring, io::BufReader::new(file), signature, &what)
}

/// Passes reads through and keeps the first error, so that a failure to
/// read the data is not mistaken for a bad signature.
struct ErrorKeepingReader<R> {
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for ErrorKeepingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let copy = io::Error::new(e.kind(), e.to_string());
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(e);
                }
                Err(copy)
            }
            other => other,
        }
    }
}

enum Outcome {
    Good(Verified),
    Failed(Failure),
}

/// Why no signature was good, most telling first when there are several.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    Bad { fingerprint: String, reason: String },
    InvalidKey { fingerprint: String, reason: String },
    UnknownKey { issuer: String },
    Malformed { reason: String },
}

impl Failure {
    fn into_error(self, what: &str) -> SignatureError {
        let what = what.to_string();
        match self {
            Failure::Bad {
                fingerprint,
                reason,
            } => SignatureError::Bad {
                what,
                fingerprint,
                reason,
            },
            Failure::InvalidKey {
                fingerprint,
                reason,
            } => SignatureError::InvalidKey {
                what,
                fingerprint,
                reason,
            },
            Failure::UnknownKey { issuer } => SignatureError::UnknownKey { what, issuer },
            Failure::Malformed { reason } => SignatureError::Unparseable { what, reason },
        }
    }
}

struct Helper<'k> {
    keyring: &'k Keyring,
    outcome: Option<Outcome>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        // Keyrings are small: hand over all, sequoia picks by issuer.
        Ok(self.keyring.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut failures = Vec::new();
        let mut seen = false;
        for layer in structure {
            let MessageLayer::SignatureGroup { results } = layer else {
                continue;
            };
            for result in results {
                seen = true;
                match result {
                    Ok(good) if self.keyring.contains(&good.ka.cert().fingerprint()) => {
                        let cert = good.ka.cert();
                        let user_id = good
                            .ka
                            .valid_cert()
                            .primary_userid()
                            .ok()
                            .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned());
                        self.outcome = Some(Outcome::Good(Verified {
                            fingerprint: good.ka.key().fingerprint().to_hex(),
                            cert_fingerprint: cert.fingerprint().to_hex(),
                            user_id,
                            created: good.sig.signature_creation_time(),
                        }));
                        return Ok(());
                    }
                    Ok(good) => failures.push(Failure::UnknownKey {
                        issuer: good.ka.key().fingerprint().to_hex(),
                    }),
                    Err(e) => failures.push(failure_of(e)),
                }
            }
        }
        if !seen {
            failures.push(Failure::Malformed {
                reason: "no signature found".into(),
            });
        }
        failures.sort();
        let failure = failures.into_iter().next().expect("at least one failure");
        self.outcome = Some(Outcome::Failed(failure));
        Err(anyhow::anyhow!("no good signature"))
    }
}

fn failure_of(e: VerificationError<'_>) -> Failure {
    match e {
        VerificationError::MissingKey { sig } => Failure::UnknownKey {
            issuer: issuer_of(&sig.get_issuers()),
        },
        VerificationError::UnboundKey { cert, error, .. } => Failure::InvalidKey {
            fingerprint: cert.fingerprint().to_hex(),
            reason: error_chain(&error),
        },
        VerificationError::BadKey { ka, error, .. } => Failure::InvalidKey {
            fingerprint: ka.key().fingerprint().to_hex(),
            reason: error_chain(&error),
        },
        VerificationError::BadSignature { ka, error, .. } => Failure::Bad {
            fingerprint: ka.key().fingerprint().to_hex(),
            reason: error_chain(&error),
        },
        VerificationError::MalformedSignature { error, .. } => Failure::Malformed {
            reason: error_chain(&error),
        },
        VerificationError::UnknownSignature { sig } => Failure::Malformed {
            reason: sig.error().to_string(),
        },
        other => Failure::Malformed {
            reason: other.to_string(),
        },
    }
}

/// The issuer to name: a fingerprint if the signature has one, else a key ID.
fn issuer_of(issuers: &[KeyHandle]) -> String {
    issuers
        .iter()
        .find(|h| matches!(h, KeyHandle::Fingerprint(_)))
        .or_else(|| issuers.first())
        .map_or_else(|| "(no issuer in signature)".to_string(), KeyHandle::to_hex)
}

fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// A secret key that makes detached signatures (`mirror arch
/// --signing-key`, for databases the mirror regenerates).
pub struct SigningKey {
    keypair: openpgp::crypto::KeyPair,
    fingerprint: String,
}

impl SigningKey {
    /// Read an unencrypted secret key (armored or binary) from `path`.
    pub fn from_file(path: &Path) -> anyhow::Result<SigningKey> {
        use anyhow::Context as _;
        let cert = Cert::from_file(path)
            .with_context(|| format!("{}: expected an OpenPGP secret key", path.display()))?;
        let p = policy();
        let key = cert
            .keys()
            .with_policy(&p, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .with_context(|| {
                format!(
                    "{}: no usable secret signing key in it (is it a public key?)",
                    path.display()
                )
            })?;
        let fingerprint = key.key().fingerprint().to_hex();
        let keypair = key.key().clone().into_keypair().map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot use the secret key (encrypted keys are not supported): {e}",
                path.display()
            )
        })?;
        Ok(SigningKey {
            keypair,
            fingerprint,
        })
    }

    /// The signing (sub)key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A binary detached signature over `data` (SHA-512).
    pub fn sign_detached(&self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        use openpgp::serialize::stream::{Message, Signer};
        use std::io::Write as _;
        let mut out = Vec::new();
        {
            let message = Message::new(&mut out);
            let mut signer = Signer::new(message, self.keypair.clone())?
                .hash_algo(HashAlgorithm::SHA512)?
                .detached()
                .build()?;
            signer.write_all(data)?;
            signer.finalize()?;
        }
        Ok(out)
    }
}

/// The download engine checks OpenPGP detached signatures with a keyring.
impl crate::fetch::SignatureCheck for Keyring {
    fn check(&self, file: &Path, signature: &[u8], what: &str) -> anyhow::Result<()> {
        let data = std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        verify_detached(self, data, signature, what)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_release_key_is_embedded() {
        let k = Keyring::rust_release();
        assert_eq!(
            k.fingerprints(),
            ["108F66205EAEB0AAA8DD5E1C85AB96E6FA1BE5FE"]
        );
    }

    #[test]
    fn garbage_keyring_is_an_error_naming_it() {
        let err = Keyring::from_bytes(b"not a key", "keys.asc").unwrap_err();
        assert!(err.to_string().contains("keys.asc"), "{err}");
    }

    #[test]
    fn merge_keeps_one_cert_per_fingerprint() {
        let mut k = Keyring::rust_release();
        k.merge(Keyring::rust_release());
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn garbage_signature_is_unparseable() {
        let err =
            verify_detached(&Keyring::rust_release(), &b"data"[..], b"junk", "f.asc").unwrap_err();
        assert!(matches!(err, SignatureError::Unparseable { .. }), "{err}");
        assert_eq!(err.what(), "f.asc");
    }
}
