//! Index files from upstream (git blobs or sparse responses): any bytes
//! must give entries or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for path in ["1/a", "2/ab", "3/a/abc", "se/rd/serde", "../x"] {
        if let Ok(lines) = mirror::eco::crates::index::parse_lines(data, path, "fuzz") {
            for (_, e) in lines {
                let _ = e.rel_path();
            }
        }
        let _ = mirror::eco::crates::index::parse_file(data, path, "");
    }
});
