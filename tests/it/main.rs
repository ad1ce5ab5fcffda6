//! The one integration-test binary. `support/` holds the fake upstream and
//! fixture builders; each module here tests one area end to end.

mod arch;
mod bundle;
mod cargo_client;
mod cli;
mod crates;
mod crates_partial;
mod crates_serve;
mod crates_sparse;
mod engine;
mod faults;
mod harden_bombs;
mod harden_cache;
mod harden_durable;
mod harden_git;
mod harden_index;
mod harden_output;
mod harden_serve;
mod harden_unpack;
mod hex;
mod hostile;
mod openpgp;
mod rustup;
mod serve;
mod serve_cache;
mod serve_cache_arch;
mod serve_cache_dist;
mod serve_cache_hex;
mod serve_cache_rustup;
mod serve_info;
mod serve_load;
mod serve_tls;
mod support;
mod toolchain;
mod trips;
mod upstream_selftest;
