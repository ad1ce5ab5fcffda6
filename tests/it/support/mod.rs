//! Test support: fake upstreams, fixture builders, test keys.
#![allow(dead_code)]
pub mod rustup;
pub mod upstream;
pub mod keys;
