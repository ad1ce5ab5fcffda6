//! Channel manifests (TOML) from the dist server or a bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mirror::eco::toolchain::Manifest::parse(data, "fuzz");
});
