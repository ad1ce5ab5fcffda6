//! Whole bundles of unknown origin through the real unpack: the archive
//! is read, checked, staged and published into a scratch tree, which is
//! emptied after each input.
//!
//! The first byte chooses how the rest is used: odd, as the `.tar.gz`
//! itself (the gzip layer is fuzzed); even, as a tar stream that is
//! gzip-compressed here (the tar headers, long names, pax records and
//! manifest are fuzzed directly). Bit 1 sets the rules of an ecosystem
//! (an allowed prefix, an expected ecosystem, a publish-last rule).
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use mirror::bundle::{unpack, UnpackOptions};
use mirror::report::NullReporter;

/// The scratch directory: the archive beside the tree `root`.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mirror-fuzz-unpack")
            .tempdir()
            .expect("scratch directory")
            .keep();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        rest.to_vec()
    } else {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(rest).expect("gzip into memory");
        gz.finish().expect("gzip into memory")
    };
    let opts = if mode & 2 == 2 {
        UnpackOptions {
            allowed_prefixes: vec!["a/".into(), "rustup/".into()],
            expect_ecosystem: Some("rustup".into()),
            publish_last: vec!["*.toml".into(), "a/".into()],
            check_staged: None,
            versioned: None,
            expect_range: None,
        }
    } else {
        UnpackOptions::default()
    };
    let dir = scratch();
    let archive = dir.join("bundle.tar.gz");
    let root = dir.join("root");
    std::fs::write(&archive, &bytes).expect("write the archive");
    std::fs::create_dir_all(&root).expect("create the root");
    let _ = unpack(&archive, &root, &opts, &NullReporter);
    std::fs::remove_dir_all(&root).expect("empty the root");
});
