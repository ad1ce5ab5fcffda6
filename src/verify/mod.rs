//! Verification: SHA-256 digests ([`digest`]) and OpenPGP detached
//! signatures ([`openpgp`]).

pub mod digest;
pub mod openpgp;

pub use digest::Sha256Digest;
