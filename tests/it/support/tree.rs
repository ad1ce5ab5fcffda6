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
/// one it refuses is not entered), keyed by its `/`-separated path
/// relative to `dir`, with its bytes. A missing `dir` is an empty tree; a
/// file that vanishes while it is read is left out.
pub fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    fn walk(
        dir: &Path,
        prefix: &str,
        keep: &dyn Fn(&str) -> bool,
        out: &mut BTreeMap<String, Vec<u8>>,
    ) {
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
                Ok(_) => {
                    if let Ok(bytes) = std::fs::read(e.path()) {
                        out.insert(rel, bytes);
                    }
                }
                Err(_) => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &keep, &mut out);
    out
}
