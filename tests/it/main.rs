//! The one integration-test binary. `support/` holds the fake upstream and
//! fixture builders; each module here tests one area end to end.

mod support;
mod cli;
mod engine;
mod upstream_selftest;
mod rustup;
mod openpgp;
mod bundle;
mod serve;
