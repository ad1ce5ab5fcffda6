//! Hex's install lists (CSV) and their base64 signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mirror::eco::hex::installs::{self, Csv, InstallsPolicy};

fuzz_target!(|data: &[u8]| {
    for csv in Csv::ALL {
        if let Ok(list) = installs::parse(csv, data, "fuzz") {
            for a in installs::select(list, InstallsPolicy::Latest) {
                assert!(!a.path.starts_with('/') && !a.path.split('/').any(|c| c == ".." || c.is_empty()));
            }
        }
    }
    let _ = installs::verify_signature(b"x", data, &installs::elixir_key(), "fuzz");
});
