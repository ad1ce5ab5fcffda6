//! `mirror`: carry package ecosystems across an air gap.
//!
//! Each ecosystem under [`eco`] *plans* what to fetch; the shared engine in
//! [`fetch`] *executes* (parallel jobs, streaming SHA-256, resume, retries,
//! atomic publish); [`bundle`] *carries* increments as tar.gz bundles;
//! [`serve`] *serves* every tree over HTTP.

pub mod bundle;
pub mod cli;
pub mod eco;
pub mod fetch;
pub mod gitenv;
pub mod http;
pub mod limit;
pub mod output;
pub mod publish;
pub mod report;
pub mod serve;
pub mod settings;
pub mod store;
pub mod suggest;
pub mod trip;
pub mod verify;
