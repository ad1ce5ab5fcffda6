//! `MIRROR-BUNDLE.json` from a bundle of unknown origin.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = mirror::bundle::Manifest::from_json(data) {
        let _ = m.validate();
    }
});
