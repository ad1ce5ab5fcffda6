//! Generate the OpenPGP test keys checked in under `fixtures/keys/`.
//!
//! ```text
//! cargo run --example gen_test_keys -- fixtures/keys
//! ```
//!
//! Writes, into the given directory:
//! - `test-signing.key.asc` / `test-signing.pub.asc`: the key tests sign
//!   fixtures with and put in the test keyring;
//! - `other.key.asc` / `other.pub.asc`: a key that is never in the test
//!   keyring, for "unknown key" tests.
//!
//! Both are v4 ed25519 certificates with a signing subkey, created at a
//! fixed date in the past and never expiring, so signatures made now verify
//! for ever. These keys are public test material: never trust them.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::serialize::SerializeInto;
use openpgp::Profile;

/// 2020-01-01T00:00:00Z.
const CREATED: u64 = 1_577_836_800;

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fixtures/keys"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    generate(
        &dir,
        "test-signing",
        "mirror test signing key <test-signing@mirror.invalid>",
    )?;
    generate(
        &dir,
        "other",
        "mirror other test key <other@mirror.invalid>",
    )?;
    Ok(())
}

fn generate(dir: &Path, name: &str, user_id: &str) -> Result<()> {
    let (cert, _revocation) = CertBuilder::new()
        .set_profile(Profile::RFC4880)?
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(UNIX_EPOCH + Duration::from_secs(CREATED))
        .set_validity_period(None)
        .add_userid(user_id)
        .add_signing_subkey()
        .generate()
        .with_context(|| format!("generating {name}"))?;

    let secret = cert.as_tsk().armored().to_vec()?;
    let public = cert.armored().to_vec()?;
    for (file, bytes) in [
        (format!("{name}.key.asc"), secret),
        (format!("{name}.pub.asc"), public),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("{}  {}", cert.fingerprint().to_hex(), path.display());
    }
    Ok(())
}
