//! Arch databases: compression sniffing, tar, and every desc file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mirror::eco::arch::db::entries(data, "fuzz");
});
