//! Trees on disk: copy one, read one back as relative paths and bytes.

use std::collections::BTreeMap;
use std::path::Path;

/// Copy the directory `from` to `to` recursively (regular files only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file under `dir` whose name `keep` accepts (directories too:
/// one it refuses is not entered), as its `/`-separated path relative to
/// `dir`, sorted. A missing `dir` is an empty tree.
pub fn paths(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, keep: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep(&name) {
                continue;
            }
            let rel = format!("{prefix}{name}");
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), &format!("{rel}/"), keep, out),
                Ok(_) => out.push(rel),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &keep, &mut out);
    out.sort();
    out
}

/// [`paths`] with each file's bytes; a file that vanishes before it is
/// read is left out.
pub fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    paths(dir, keep)
        .into_iter()
        .filter_map(|rel| Some((rel.clone(), std::fs::read(dir.join(&rel)).ok()?)))
        .collect()
}
