//! A generated rustup upstream: `release-stable.toml` and
//! `archive/<ver>/<triple>/rustup-init[.exe]` with `.sha256`, put on a
//! fake upstream under `rustup/`.

use sha2::{Digest, Sha256};

use super::upstream::Upstream;

/// The bytes of a fake `rustup-init` for a version and target.
pub fn init_bytes(version: &str, target: &str) -> Vec<u8> {
    let mut out = format!("#!fake rustup-init {version} {target}\n").into_bytes();
    // Some bulk, so ranges and cut bodies have room to act.
    for i in 0..4096u32 {
        out.extend_from_slice(&i.wrapping_mul(2654435761).to_le_bytes());
    }
    out
}

/// `rustup-init` or `rustup-init.exe`.
pub fn init_name(target: &str) -> &'static str {
    if target.contains("windows") {
        "rustup-init.exe"
    } else {
        "rustup-init"
    }
}

/// The upstream path of a version's binary.
pub fn init_path(version: &str, target: &str) -> String {
    format!("rustup/archive/{version}/{target}/{}", init_name(target))
}

/// Publish `versions` for `targets`; the first version is `stable`.
pub fn publish(upstream: &Upstream, versions: &[&str], targets: &[&str]) {
    for version in versions {
        for target in targets {
            let bytes = init_bytes(version, target);
            let path = init_path(version, target);
            let sum = format!("{:x}  {}\n", Sha256::digest(&bytes), init_name(target));
            upstream.put(&format!("{path}.sha256"), sum);
            upstream.put(&path, bytes);
        }
    }
    upstream.put(
        "rustup/release-stable.toml",
        format!("schema-version = '1'\nversion = '{}'\n", versions[0]),
    );
}
