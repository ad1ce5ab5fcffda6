//! The shape of the code: the library's modules use each other without a
//! cycle. A module may use its ancestors (it is part of them); any other
//! use is an edge, and the edges must form a DAG, so each module can be
//! read, tested and moved with what it depends on and nothing that
//! depends on it.
//!
//! The graph is read from the sources: paths through `crate::`, `super::`
//! and `self::` (also in `use` groups) and a parent's paths into a child
//! it declares with `mod`. Test modules do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`serve::crates`, `""` for the crate root) → source without
/// its test module and comments.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut segs: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_str().unwrap().to_string())
                .collect();
            if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
                segs.pop();
            }
            if segs == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(segs.join("::"), strip(&text));
        }
    }
    out
}

/// The source without `#[cfg(test)] mod tests { … }` (always last) and
/// without line comments.
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The longest prefix of `path` that names a module.
fn resolve(names: &BTreeSet<String>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| names.contains(m))
}

/// Every module `module` (with source `src`) uses.
fn uses(names: &BTreeSet<String>, module: &str, src: &str) -> BTreeSet<String> {
    let base: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let bytes = src.as_bytes();
    let mut out = BTreeSet::new();
    let mut add = |prefix: &[&str], rest: &str| {
        let mut path: Vec<&str> = prefix.to_vec();
        path.extend(rest.split("::").filter(|s| !s.is_empty()));
        if let Some(m) = resolve(names, &path) {
            out.insert(m);
        }
    };
    for head in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = src[from..].find(head).map(|i| i + from) {
            from = i + head.len();
            if i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':') {
                continue;
            }
            // `super::super::…`
            let mut prefix: Vec<&str> = match head {
                "crate::" => vec![],
                "self::" => base.clone(),
                _ => base[..base.len().saturating_sub(1)].to_vec(),
            };
            while head == "super::" && src[from..].starts_with("super::") {
                from += "super::".len();
                prefix.pop();
            }
            if src[from..].starts_with('{') {
                // A `use` group: each item at depth one.
                let mut depth = 0;
                let mut item = String::new();
                for c in src[from..].chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            if depth == 1 {
                                continue;
                            }
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 || (depth == 1 && c == ',') {
                        let head: String = item
                            .trim()
                            .chars()
                            .take_while(|c| is_ident(*c as u8) || *c == ':')
                            .collect();
                        add(&prefix, &head);
                        item.clear();
                        if depth == 0 {
                            break;
                        }
                        continue;
                    }
                    item.push(c);
                }
                continue;
            }
            let rest: String = src[from..]
                .chars()
                .take_while(|c| c.is_ascii() && (is_ident(*c as u8) || *c == ':'))
                .collect();
            add(&prefix, &rest);
        }
    }
    // A parent's paths into the children it declares (`mod files;` …
    // `files::open`).
    for line in src.lines() {
        let l = line.trim_start();
        let l = l
            .strip_prefix("pub(crate) ")
            .or(l.strip_prefix("pub "))
            .unwrap_or(l);
        let Some(child) = l.strip_prefix("mod ").and_then(|c| c.strip_suffix(';')) else {
            continue;
        };
        let needle = format!("{child}::");
        let used = src
            .match_indices(&needle)
            .any(|(i, _)| i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':'));
        if used {
            let mut path = base.clone();
            path.push(child);
            out.insert(path.join("::"));
        }
    }
    out.remove(module);
    // Uses of an ancestor do not count.
    out.retain(|m| !(m.is_empty() || module.starts_with(&format!("{m}::"))));
    out
}

/// A cycle in `edges`, if there is one (depth-first).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        v: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(v.to_string(), Mark::Open);
        path.push(v.to_string());
        for w in edges.get(v).into_iter().flatten() {
            match marks.get(w) {
                Some(Mark::Open) => {
                    let i = path.iter().position(|p| p == w).unwrap();
                    let mut c = path[i..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(w, edges, marks, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        marks.insert(v.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for v in edges.keys() {
        if !marks.contains_key(v) {
            if let Some(c) = visit(v, edges, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let modules = modules();
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    assert!(names.contains("serve::git") && names.contains("eco::crates::layout"));
    let edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(m, src)| (m.clone(), uses(&names, m, src)))
        .collect();
    // The reader sees what it must: these edges exist.
    assert!(
        edges["serve::git"].contains("serve::crates"),
        "{:?}",
        edges["serve::git"]
    );
    assert!(edges["cli"].contains("cli::crates"), "{:?}", edges["cli"]);
    if let Some(c) = cycle(&edges) {
        panic!(
            "the modules use each other in a cycle: {}; move what both need into a module below them",
            c.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let names: BTreeSet<String> = ["a", "a::x", "b", "c"].map(String::from).into();
    let a = uses(
        &names,
        "a",
        "mod x;\nuse crate::{b, c::Thing};\nfn f() { x::g() }",
    );
    assert_eq!(a, ["a::x", "b", "c"].map(String::from).into());
    let x = uses(
        &names,
        "a::x",
        "use super::super::b::T; fn g() { super::h() }",
    );
    assert_eq!(
        x,
        ["b"].map(String::from).into(),
        "the parent does not count"
    );
    let b = uses(
        &names,
        "b",
        &strip("// crate::c in a comment\nfn f() { crate::a::x::g() }"),
    );
    assert_eq!(b, ["a::x"].map(String::from).into());
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), a),
        ("a::x".to_string(), x),
        ("b".to_string(), b),
    ]
    .into();
    let c = cycle(&edges).expect("a -> b -> a::x -> b");
    assert!(
        c.contains(&"b".to_string()) && c.contains(&"a::x".to_string()),
        "{c:?}"
    );
}
