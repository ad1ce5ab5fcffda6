//! A fake sparse upstream built from a [`CratesFixture`]'s index: every
//! file of its work tree (`config.json`, `<prefix>/<name>`) is put on the
//! [`Upstream`] under `index/`, which answers with an ETag and `304` to a
//! matching `If-None-Match`. [`SparseUpstream::sync`] after each fixture
//! change publishes it (files gone from the index are removed).
//!
//! ```text
//! let sp = SparseUpstream::new(&up);
//! sp.sync(&fx);                       // index/config.json, index/le/af/leaf, …
//! sp.index_url();                     // sparse+http://127.0.0.1:P/index/
//! publish_line(&up, &fx, "app", "0.1.0", r#"[{"name":"leaf",…}]"#);  // any deps JSON
//! ```

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::crates::{crate_file, index_path, CratesFixture};
use super::upstream::Upstream;

/// The upstream path below which the index is served.
pub const INDEX_PREFIX: &str = "index";

/// The index of a fixture, served sparsely.
pub struct SparseUpstream<'a> {
    upstream: &'a Upstream,
    served: RefCell<BTreeSet<String>>,
}

impl<'a> SparseUpstream<'a> {
    /// Nothing served yet.
    pub fn new(upstream: &'a Upstream) -> SparseUpstream<'a> {
        SparseUpstream {
            upstream,
            served: RefCell::new(BTreeSet::new()),
        }
    }

    /// `sparse+http://127.0.0.1:P/index/`.
    pub fn index_url(&self) -> String {
        format!("sparse+{}/", self.upstream.url(INDEX_PREFIX))
    }

    /// Serve the fixture's work tree as it is now.
    pub fn sync(&self, fx: &CratesFixture<'_>) {
        let mut now = BTreeSet::new();
        walk(&fx.path(), &fx.path(), &mut |rel, bytes| {
            self.upstream
                .put(&format!("{INDEX_PREFIX}/{rel}"), bytes.to_vec());
            now.insert(rel.to_string());
        });
        for gone in self.served.borrow().difference(&now) {
            self.upstream.remove(&format!("{INDEX_PREFIX}/{gone}"));
        }
        *self.served.borrow_mut() = now;
    }
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str, &[u8])) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, f);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            f(&rel, &std::fs::read(&p).unwrap());
        }
    }
}

/// Publish a real crate whose index line carries `deps_json` (a JSON array
/// of dependency objects, written as given): the `.crate` goes on the
/// upstream, the line is appended to the fixture's index (not committed).
/// The crate's own manifest has no dependencies (only the index line
/// matters to resolution). Returns the cksum.
pub fn publish_line(
    up: &Upstream,
    fx: &CratesFixture<'_>,
    name: &str,
    version: &str,
    deps_json: &str,
) -> String {
    let bytes = crate_file(name, version, &[]);
    let cksum: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    up.put(&CratesFixture::crate_upstream_path(name, version), bytes);
    let rel = index_path(name);
    let mut text = fx.read(&rel).unwrap_or_default();
    text.push_str(&format!(
        "{{\"name\":\"{name}\",\"vers\":\"{version}\",\"deps\":{deps_json},\"cksum\":\"{cksum}\",\
         \"features\":{{}},\"yanked\":false,\"v\":1}}\n"
    ));
    fx.write(&rel, &text);
    cksum
}

/// One dependency object for [`publish_line`].
pub fn dep(name: &str, req: &str, kind: &str, optional: bool, target: Option<&str>) -> String {
    let target = target.map_or("null".to_string(), |t| format!("\"{t}\""));
    format!(
        "{{\"name\":\"{name}\",\"req\":\"{req}\",\"features\":[],\"optional\":{optional},\
         \"default_features\":true,\"target\":{target},\"kind\":\"{kind}\"}}"
    )
}
