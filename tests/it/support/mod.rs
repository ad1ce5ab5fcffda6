//! Test support: fake upstreams, fixture builders, test keys.
#![allow(dead_code)]
pub mod arch;
pub mod crates;
pub mod dist;
pub mod hex;
pub mod keys;
pub mod rustup;
pub mod serve_process;
pub mod sparse;
pub mod upstream;
