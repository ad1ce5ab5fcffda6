//! crates.io: the git index and the `.crate` files it lists.

pub mod layout;
