//! (in progress — placeholder API so the crate compiles; replaced by the serve module)
#![allow(missing_docs, unused_variables)]
use std::path::PathBuf;
pub trait Rewrite: Send + Sync {
    fn rewrite(&self, segments: &[&str]) -> Option<Vec<String>>;
}
pub struct ServeOptions {
    pub root: PathBuf,
    pub bind: std::net::IpAddr,
    pub port: u16,
    pub rewrites: Vec<std::sync::Arc<dyn Rewrite>>,
}
pub fn run_blocking(
    opts: ServeOptions,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    anyhow::bail!("serve: in progress")
}
