//! Test support: fake upstreams, fixture builders, test keys.
#![allow(dead_code)]
