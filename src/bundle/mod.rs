//! (in progress — placeholder API so the crate compiles; replaced by the bundle module)
#![allow(missing_docs, unused_variables)]
use crate::report::Reporter;
use std::path::Path;
pub struct PackOptions {
    pub ecosystem: String,
    pub range: Option<()>,
}
pub struct UnpackOptions {
    pub allowed_prefixes: Vec<String>,
    pub expect_ecosystem: Option<String>,
    pub publish_last: Vec<String>,
}
pub struct UnpackSummary {
    pub files: Vec<String>,
}
pub fn pack(
    root: &Path,
    members: &[String],
    archive: &Path,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    anyhow::bail!("bundle: in progress")
}
pub fn unpack(
    archive: &Path,
    root: &Path,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<UnpackSummary> {
    anyhow::bail!("bundle: in progress")
}
