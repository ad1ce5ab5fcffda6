//! Lock files users point selections at (rebar.lock, mix.lock).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mirror::eco::hex::lock::parse_rebar_lock(text);
        let _ = mirror::eco::hex::lock::parse_mix_lock(text, "hexpm");
    }
});
