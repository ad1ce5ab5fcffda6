//! Hex's signed resources: the gzip + `Signed` envelope (with a key, so
//! the signature check runs on whatever the fuzzer makes), and the
//! payload messages themselves as a forged signature would let through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mirror::eco::hex::registry::{self, Names, Package, PublicKey, Versions};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let key = PublicKey::hexpm();
    let _ = registry::parse_names(data, &key, "hexpm", "fuzz");
    let _ = registry::parse_package(data, &key, "hexpm", "x", "fuzz");
    let _ = Names::decode(data);
    let _ = Versions::decode(data);
    if let Ok(p) = Package::decode(data) {
        for r in &p.releases {
            let _ = r.outer_digest();
            let _ = registry::is_valid_version(&r.version);
        }
        let _ = registry::is_valid_name(&p.name);
    }
});
