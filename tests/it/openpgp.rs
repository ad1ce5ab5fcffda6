//! OpenPGP keyrings and detached signatures (`mirror::verify::openpgp`).

use mirror::verify::openpgp::{policy, verify_detached, verify_file, Keyring, SignatureError};
use sequoia_openpgp as openpgp;

use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;

use crate::support::keys::{sign_detached, test_keyring, TestKey};

const RUST_PRIMARY: &str = "108F66205EAEB0AAA8DD5E1C85AB96E6FA1BE5FE";
const RUST_SIGNING_SUBKEY: &str = "C13466B7E169A085188632165CB4A9347B3B09DC";
const DATA: &[u8] = b"[pkg.rustc]\nversion = \"1.99.0\"\n";

fn signing_fingerprints(keyring: &Keyring, p: &dyn openpgp::policy::Policy) -> Vec<String> {
    keyring.certs()[0]
        .keys()
        .with_policy(p, None)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .map(|k| k.key().fingerprint().to_hex())
        .collect()
}

#[test]
fn embedded_rust_key_has_the_published_fingerprints() {
    let k = Keyring::rust_release();
    assert_eq!(k.fingerprints(), [RUST_PRIMARY]);
    // The primary key can sign too; releases are signed by the subkey.
    let signing = signing_fingerprints(&k, &policy());
    assert!(
        signing.contains(&RUST_SIGNING_SUBKEY.to_string()),
        "{signing:?}"
    );
}

#[test]
fn rust_signing_subkey_needs_sha1_accepted_for_bindings() {
    // Documents why `policy()` differs from the standard one: the subkey's
    // binding signature uses SHA-1.
    let k = Keyring::rust_release();
    let standard = StandardPolicy::new();
    assert!(
        signing_fingerprints(&k, &standard).is_empty(),
        "the standard policy now accepts the Rust key: policy() may be simplified"
    );
}

#[test]
fn good_armored_signature_verifies() {
    let sig = sign_detached(TestKey::Signing, DATA, true);
    assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let ok = verify_detached(&test_keyring(), DATA, &sig, "dist/x.toml").unwrap();
    assert_eq!(ok.fingerprint, TestKey::Signing.signing_fingerprint());
    assert_eq!(ok.cert_fingerprint, TestKey::Signing.fingerprint());
    assert!(ok.user_id.unwrap().contains("mirror test signing key"));
    assert!(ok.created.is_some());
}

#[test]
fn good_binary_signature_verifies() {
    let sig = sign_detached(TestKey::Signing, DATA, false);
    assert!(!sig.starts_with(b"-----"));
    let ok = verify_detached(&test_keyring(), DATA, &sig, "core.db.sig").unwrap();
    assert_eq!(ok.cert_fingerprint, TestKey::Signing.fingerprint());
}

#[test]
fn tampered_data_fails_as_bad_signature_naming_the_file() {
    let sig = sign_detached(TestKey::Signing, DATA, true);
    let mut tampered = DATA.to_vec();
    tampered[3] ^= 1;
    let what = "http://127.0.0.1/dist/channel-rust-stable.toml";
    let err = verify_detached(&test_keyring(), &tampered[..], &sig, what).unwrap_err();
    assert!(matches!(err, SignatureError::Bad { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(what), "{msg}");
    assert!(msg.contains("bad"), "{msg}");
    assert!(
        msg.contains(&TestKey::Signing.signing_fingerprint()),
        "{msg}"
    );
    assert_eq!(err.what(), what);
}

#[test]
fn signature_by_another_key_fails_as_unknown_key() {
    let sig = sign_detached(TestKey::Other, DATA, false);
    let err = verify_detached(&test_keyring(), DATA, &sig, "x.sig").unwrap_err();
    match &err {
        SignatureError::UnknownKey { what, issuer } => {
            assert_eq!(what, "x.sig");
            assert_eq!(issuer, &TestKey::Other.signing_fingerprint());
        }
        other => panic!("expected unknown key, got {other:?}"),
    }
    assert!(err.to_string().contains("unknown key"), "{err}");
}

#[test]
fn rust_key_does_not_accept_test_signatures() {
    let sig = sign_detached(TestKey::Signing, DATA, true);
    let err = verify_detached(&Keyring::rust_release(), DATA, &sig, "x.asc").unwrap_err();
    assert!(matches!(err, SignatureError::UnknownKey { .. }), "{err:?}");
}

#[test]
fn garbage_signature_fails_as_unparseable() {
    for garbage in [
        &b"this is not a signature"[..],
        b"",
        b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
    ] {
        let err = verify_detached(&test_keyring(), DATA, garbage, "g.asc").unwrap_err();
        assert!(
            matches!(err, SignatureError::Unparseable { .. }),
            "{garbage:?}: {err:?}"
        );
        assert!(err.to_string().contains("g.asc"), "{err}");
    }
}

#[test]
fn a_public_key_is_not_a_signature() {
    let key = std::fs::read(TestKey::Signing.public_path()).unwrap();
    let err = verify_detached(&test_keyring(), DATA, &key, "k.asc").unwrap_err();
    assert!(matches!(err, SignatureError::Unparseable { .. }), "{err:?}");
}

#[test]
fn merged_keyring_accepts_either_key() {
    let mut k = Keyring::rust_release();
    k.merge(TestKey::Signing.keyring());
    k.merge(TestKey::Other.keyring());
    k.merge(TestKey::Other.keyring());
    assert_eq!(k.len(), 3);
    assert!(k.fingerprints().contains(&RUST_PRIMARY.to_string()));
    for key in [TestKey::Signing, TestKey::Other] {
        let sig = sign_detached(key, DATA, true);
        let ok = verify_detached(&k, DATA, &sig, "m").unwrap();
        assert_eq!(ok.cert_fingerprint, key.fingerprint());
    }
}

#[test]
fn keyring_file_may_be_binary_with_many_certs_and_secrets_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = TestKey::Signing.secret_cert().as_tsk().to_vec().unwrap();
    bytes.extend(TestKey::Other.secret_cert().to_vec().unwrap());
    let path = dir.path().join("keys.gpg");
    std::fs::write(&path, bytes).unwrap();
    let k = Keyring::from_file(&path).unwrap();
    assert_eq!(
        k.fingerprints(),
        [TestKey::Signing.fingerprint(), TestKey::Other.fingerprint()]
    );
    assert!(k.certs().iter().all(|c| !c.is_tsk()));
}

#[test]
fn keyring_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.asc");
    let err = Keyring::from_file(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.asc"), "{err}");

    let junk = dir.path().join("junk.asc");
    std::fs::write(&junk, "no keys here").unwrap();
    let err = Keyring::from_file(&junk).unwrap_err();
    assert!(err.to_string().contains("junk.asc"), "{err}");
}

#[test]
fn verify_file_streams_from_disk_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rustc-1.99.0.tar.xz");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let sig = sign_detached(TestKey::Signing, &data, true);
    verify_file(&test_keyring(), &path, &sig).unwrap();

    std::fs::write(&path, &data[1..]).unwrap();
    let err = verify_file(&test_keyring(), &path, &sig).unwrap_err();
    assert!(matches!(err, SignatureError::Bad { .. }), "{err:?}");
    assert!(err.to_string().contains("rustc-1.99.0.tar.xz"), "{err}");

    let err = verify_file(&test_keyring(), &dir.path().join("gone"), &sig).unwrap_err();
    assert!(matches!(err, SignatureError::Read { .. }), "{err:?}");
}

#[test]
fn unreadable_data_is_a_read_error_not_a_bad_signature() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let sig = sign_detached(TestKey::Signing, DATA, true);
    let err = verify_detached(&test_keyring(), Failing, &sig, "f").unwrap_err();
    assert!(matches!(err, SignatureError::Read { .. }), "{err:?}");
}
