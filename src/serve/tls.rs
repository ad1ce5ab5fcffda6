//! TLS for `mirror serve --tls-cert FILE --tls-key FILE` (rustls, ring).
//!
//! Some clients insist on https (`rustup-init.sh` among them). Connections
//! are served by the same loops as plain http ([`loops`](super::loops)):
//! each handshake runs on its connection's loop, counts against the
//! connection cap, and is bounded in time and in number
//! ([`limits`](super::limits)). ALPN offers h2 and http/1.1.
//!
//! The files are read at most [`MAX_PEM_FILE`] bytes each (a path such as
//! `/dev/zero` is an error, not an endless read). [`load_checked`] also
//! says, one line each, what a client or another user could hold against
//! them: a certificate outside its validity period or signed with SHA-1 or
//! MD5, a key file others may read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// The most bytes read from a certificate or key file.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// The certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or held no usable PEM item.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("cannot use {} with {}: {source}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::Error,
    },
}

fn file_error(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Read a PEM file of at most [`MAX_PEM_FILE`] bytes.
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(file_error(
            path,
            format!(
                "expected a PEM file of at most {} MiB, found more (is it the right path?)",
                MAX_PEM_FILE >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// Load the files into a server configuration.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    load_checked(files).map(|(config, _)| config)
}

/// [`load`], and what is wrong with the files though they can be used
/// (one line each).
pub fn load_checked(files: &TlsFiles) -> Result<(Arc<ServerConfig>, Vec<String>), TlsError> {
    let cert_pem = read_pem(&files.cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, format!("expected PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            &files.cert,
            "expected a PEM certificate chain, found no CERTIFICATE block",
        ));
    }
    let key_pem = read_pem(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| file_error(&files.key, format!("expected a PEM private key: {e}")))?;
    let mut warnings = Vec::new();
    for (i, cert) in certs.iter().enumerate() {
        let which = if i == 0 {
            format!("certificate {}", files.cert.display())
        } else {
            format!("certificate #{} of {}", i + 1, files.cert.display())
        };
        warnings.extend(
            check_certificate(cert, SystemTime::now())
                .into_iter()
                .map(|w| format!("{which} {w}")),
        );
    }
    warnings.extend(check_key_file(&files.key));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|source| TlsError::Config {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), warnings))
}

/// A key file's group or other read bit.
#[cfg(unix)]
fn check_key_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o044 != 0).then(|| {
        format!(
            "key {} is readable by {} (mode {:04o}): chmod 600 it",
            path.display(),
            if mode & 0o004 != 0 {
                "every user"
            } else {
                "its group"
            },
            mode & 0o7777
        )
    })
}

#[cfg(not(unix))]
fn check_key_file(_: &Path) -> Option<String> {
    None
}

/// Signature algorithms clients refuse or should: (OID, name).
const WEAK_SIGNATURES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.5", "SHA-1"),
    ("1.2.840.10045.4.1", "SHA-1"),
    ("1.2.840.10040.4.3", "SHA-1"),
    ("1.3.14.3.2.29", "SHA-1"),
    ("1.2.840.113549.1.1.4", "MD5"),
    ("1.2.840.113549.1.1.2", "MD2"),
];

/// What clients will hold against one certificate at `now`: outside its
/// validity period, a weak signature (phrases completing "certificate X …").
pub fn check_certificate(cert: &[u8], now: SystemTime) -> Vec<String> {
    let Ok(facts) = CertFacts::parse(cert) else {
        return vec!["could not be read as X.509 (validity and signature not checked)".into()];
    };
    let mut warnings = Vec::new();
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    if now > facts.not_after {
        warnings.push(format!(
            "expired on {}: clients will refuse it",
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + facts.not_after)
        ));
    }
    if now < facts.not_before {
        warnings.push(format!(
            "is not valid before {}: clients will refuse it",
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + facts.not_before)
        ));
    }
    let oid = facts.signature.to_string();
    if let Some((_, hash)) = WEAK_SIGNATURES.iter().find(|(o, _)| *o == oid) {
        warnings.push(format!(
            "is signed with {hash} ({oid}): clients refuse it or should; reissue it with SHA-256"
        ));
    }
    warnings
}

/// What [`check_certificate`] reads of a certificate.
struct CertFacts {
    not_before: Duration,
    not_after: Duration,
    signature: der::asn1::ObjectIdentifier,
}

impl CertFacts {
    /// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
    /// OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE {
    /// notBefore, notAfter }, … }, signatureAlgorithm SEQUENCE { OID, … },
    /// signatureValue }` (RFC 5280, 4.1).
    fn parse(cert: &[u8]) -> der::Result<CertFacts> {
        use der::asn1::ObjectIdentifier;
        use der::{Decode, Reader, SliceReader, Tag, TagNumber};
        fn time<'a, R: Reader<'a>>(r: &mut R) -> der::Result<Duration> {
            if r.peek_tag()? == Tag::UtcTime {
                Ok(der::asn1::UtcTime::decode(r)?.to_unix_duration())
            } else {
                Ok(der::asn1::GeneralizedTime::decode(r)?.to_unix_duration())
            }
        }
        let mut reader = SliceReader::new(cert)?;
        reader.sequence(|cert| {
            let (not_before, not_after) = cert.sequence(|tbs| {
                let version = Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber::N0,
                };
                if tbs.peek_tag()? == version {
                    tbs.tlv_bytes()?;
                }
                tbs.tlv_bytes()?; // serialNumber
                tbs.tlv_bytes()?; // signature
                tbs.tlv_bytes()?; // issuer
                let validity = tbs.sequence(|v| Ok((time(v)?, time(v)?)))?;
                while !tbs.is_finished() {
                    tbs.tlv_bytes()?;
                }
                Ok(validity)
            })?;
            let signature = cert.sequence(|alg| {
                let oid = ObjectIdentifier::decode(alg)?;
                while !alg.is_finished() {
                    alg.tlv_bytes()?;
                }
                Ok(oid)
            })?;
            cert.tlv_bytes()?; // signatureValue
            Ok(CertFacts {
                not_before,
                not_after,
                signature,
            })
        })
    }
}
