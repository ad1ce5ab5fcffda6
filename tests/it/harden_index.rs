//! Hostile names in the crates index: tree entries that are no index path
//! (a newline that would add `git fast-import` commands, `..`, a `/`
//! inside a name, control characters, non-ASCII letters, a name outside
//! its prefix directory) from a git upstream and from a bundle never reach
//! `master`; non-ASCII names in every crates route and in a sparse
//! upstream's dependencies are refused, never a panic; the far side's
//! `config.json` is its own whatever upstream publishes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::crates_sparse::{ok, run};
use crate::support::crates::{self, CratesFixture};
use crate::support::serve_process::ServeProcess;
use crate::support::sparse::{dep, publish_line, SparseUpstream};
use crate::support::upstream::Upstream;

fn index(root: &Path) -> std::path::PathBuf {
    root.join("git/crates.io-index")
}

/// Every path of `spec`'s tree in a mirror's index, as git lists it
/// (quoted when odd).
fn listing(root: &Path, spec: &str) -> Vec<String> {
    let mut out: Vec<String> = crates::git(&index(root), &["ls-tree", "-r", "--name-only", spec])
        .lines()
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

fn show(root: &Path, spec: &str) -> String {
    crates::git(&index(root), &["show", spec])
}

/// `git` in `dir` with `input` on stdin; stdout, trimmed.
fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn blob(dir: &Path, data: &[u8]) -> String {
    git_stdin(dir, &["hash-object", "-w", "--stdin"], data)
}

/// A tree object written byte for byte from `entries` (mode, raw name,
/// hex id), in the order given: git's own tools refuse most of these
/// names, a hostile upstream does not ask them.
fn raw_tree(dir: &Path, entries: &[(String, Vec<u8>, String)]) -> String {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        for i in (0..id.len()).step_by(2) {
            data.push(u8::from_str_radix(&id[i..i + 2], 16).unwrap());
        }
    }
    git_stdin(
        dir,
        &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
        &data,
    )
}

/// The top-level entries of `HEAD`'s tree in `dir`.
fn top_entries(dir: &Path) -> Vec<(String, Vec<u8>, String)> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["ls-tree", "-z", "HEAD"])
        .output()
        .unwrap();
    out.stdout
        .split(|&b| b == 0)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let tab = r.iter().position(|&b| b == b'\t').unwrap();
            let meta = String::from_utf8_lossy(&r[..tab]).into_owned();
            let mut parts = meta.split(' ');
            let mode = parts.next().unwrap().trim_start_matches('0').to_string();
            let id = parts.nth(1).unwrap().to_string();
            (mode, r[tab + 1..].to_vec(), id)
        })
        .collect()
}

/// What the injected fast-import commands would write.
const EVIL_CONFIG: &str =
    "{\"dl\":\"http://evil.invalid/{crate}\",\"api\":\"http://evil.invalid/\"}";

/// Commit on top of the fixture's `master` a tree that is its own plus
/// hostile entries; returns the commit.
fn hostile_commit(fx: &CratesFixture<'_>) -> String {
    let dir = fx.path();
    let junk = blob(&dir, b"junk\n");
    let leaf_line = blob(
        &dir,
        fx.read(&crates::index_path("leaf")).unwrap().as_bytes(),
    );
    let mut top = top_entries(&dir);
    // A name whose newlines, written unquoted into a fast-import stream,
    // are commands: config.json replaced, a stray file added.
    let injection = format!(
        "zz\nM 100644 inline config.json\ndata {}\n{EVIL_CONFIG}\nM 100644 inline stray\ndata 5\nevil\n",
        EVIL_CONFIG.len()
    );
    let b = |s: &str| s.as_bytes().to_vec();
    let file = |name: Vec<u8>| ("100644".to_string(), name, junk.clone());
    // A directory shaped like a prefix whose files are no crate files:
    // a non-ASCII name, an upper-case one, one outside its prefix, a
    // valid file under a name with a slash.
    let inner = raw_tree(
        &dir,
        &[
            file(b("WRONG")),
            ("100644".into(), b("xxxx"), leaf_line.clone()),
            file("zzzz\u{e9}".as_bytes().to_vec()),
            ("100644".into(), b("zzzz/x"), leaf_line.clone()),
        ],
    );
    let zz = raw_tree(&dir, &[("40000".into(), b("zz"), inner)]);
    top.extend([
        file(b("..")),
        file(b("README.md")),
        file(b("ctl\u{1b}[31m")),
        file(b("le/af")),
        ("40000".into(), b("zz"), zz),
        file(b(&injection)),
        file("\u{e9}t\u{e9}".as_bytes().to_vec()),
    ]);
    let tree = raw_tree(&dir, &top);
    let commit = fx.git(&["commit-tree", &tree, "-p", "HEAD", "-m", "Hostile names"]);
    fx.git(&["update-ref", "refs/heads/master", commit.trim()]);
    commit.trim().to_string()
}

/// `leaf` 1.0.0 and 1.1.0, `app` 0.1.0; committed.
fn fixture(up: &Upstream) -> CratesFixture<'_> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add crates");
    fx
}

/// Whether `path` is `config.json` or a crate file of the index layout
/// (written out here, not taken from the code under test).
fn is_index_path(path: &str) -> bool {
    if path == "config.json" {
        return true;
    }
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    let name_ok = (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    name_ok && dir == crates::index_path(name).rsplit_once('/').unwrap().0
}

fn assert_no_hostile_entry(list: &[String], what: &str) {
    for p in list {
        assert!(is_index_path(p), "{what}: {p:?} is no index path: {list:?}");
    }
}

/// The config.json `crate config --server-url URL` writes.
fn own_config(url: &str) -> String {
    format!(
        "{{\n    \"dl\": \"{url}/crates/{{crate}}/{{crate}}-{{version}}.crate\",\n    \"api\": \"{url}/\"\n}}\n"
    )
}

const FAR_URL: &str = "http://mirror.invalid:8000";

#[test]
fn hostile_tree_names_from_upstream_and_from_a_bundle_never_reach_master() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let tmpl = fx.crates_url_template();
    let url = fx.index_url();
    let work = tempfile::tempdir().unwrap();
    let full = work.path().join("full");
    let part = work.path().join("partial");
    let filter = ["--filter", "leaf"];

    ok(&full, &["init", "--index-url", &url]);
    ok(&full, &["update", "--crates-url", &tmpl]);
    let mut init = vec!["init", "--index-url", &url];
    init.extend(filter);
    ok(&part, &init);
    let mut update = vec!["update", "--crates-url", &tmpl];
    update.extend(filter);
    ok(&part, &update);

    let clean_listing: Vec<String> = {
        let mut l: Vec<String> = fx
            .git(&["ls-tree", "-r", "--name-only", "HEAD"])
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let upstream_config = fx.read("config.json").unwrap();
    hostile_commit(&fx);

    // Online side: pull (update) and mark, full and partial.
    let full_err = ok(&full, &["update", "--crates-url", &tmpl]);
    let part_err = ok(&part, &update);
    let mut mark = vec!["mark"];
    mark.extend(filter);
    ok(&part, &mark);
    ok(&full, &["mark"]);
    for (root, want) in [
        (&part, vec!["config.json".into(), "le/af/leaf".into()]),
        (&full, clean_listing.clone()),
    ] {
        for branch in ["master", "working"] {
            let got = listing(root, branch);
            assert_no_hostile_entry(&got, branch);
            if branch == "master" {
                assert_eq!(got, want, "{}", root.display());
            }
            assert_eq!(
                show(root, &format!("{branch}:config.json")),
                upstream_config
            );
        }
    }
    // Nothing injected past the filter: the partial master is leaf only.
    assert_eq!(
        show(&part, "master:le/af/leaf"),
        fx.read("le/af/leaf").unwrap()
    );
    // And each run said what it left out.
    for err in [&full_err, &part_err] {
        assert!(err.contains("left out"), "{err}");
        assert!(err.contains("README.md"), "{err}");
    }

    // A bundle whose END is upstream's hostile commit, full and partial,
    // into the far side.
    for (near, name) in [(&part, "partial"), (&full, "full")] {
        let archive = work.path().join(format!("{name}.tar.gz"));
        let archive = archive.display().to_string();
        let mut pack = vec![
            "pack",
            "--start",
            "0",
            "--end",
            "origin_master",
            "--archive",
            &archive,
        ];
        if name == "partial" {
            pack.extend(filter);
        }
        ok(near, &pack);
        let far = work.path().join(format!("far-{name}"));
        ok(&far, &["init-import"]);
        ok(&far, &["config", "--server-url", FAR_URL]);
        let err = ok(&far, &["import", "--archive", &archive]);
        let got = listing(&far, "master");
        assert_no_hostile_entry(&got, name);
        let want = if name == "full" {
            clean_listing.clone()
        } else {
            vec!["config.json".to_string(), "le/af/leaf".to_string()]
        };
        assert_eq!(got, want, "{name}");
        assert_eq!(
            show(&far, "master:config.json"),
            own_config(FAR_URL),
            "{name}"
        );
        assert!(!far.join("stray").exists());
        assert!(err.contains("left out"), "{name}: {err}");
    }
}

#[test]
fn far_side_config_json_stays_its_own_after_upstream_mimics_it_and_changes() {
    let up = Upstream::start();
    let mut fx = fixture(&up);
    let tmpl = fx.crates_url_template();
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    ok(&near, &["init", "--index-url", &fx.index_url()]);
    ok(&far, &["init-import"]);
    ok(&far, &["config", "--server-url", FAR_URL]);
    let own = own_config(FAR_URL);
    let cycle = |n: usize| {
        let archive = work.path().join(format!("c{n}.tar.gz"));
        let archive = archive.display().to_string();
        ok(
            &near,
            &["export", "--crates-url", &tmpl, "--archive", &archive],
        );
        ok(&far, &["import", "--archive", &archive]);
    };
    cycle(1);
    assert_eq!(show(&far, "master:config.json"), own);

    // Upstream publishes the far side's exact bytes (predictable from
    // its server URL)...
    fx.set_config(&own);
    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("Mimic the far side");
    cycle(2);
    assert_eq!(show(&far, "master:config.json"), own);

    // ...then changes them: the far side keeps its own.
    let evil = own.replace("mirror.invalid", "evil.invalid");
    fx.set_config(&evil);
    fx.publish("leaf", "1.3.0", &[]);
    fx.commit("Point the far side elsewhere");
    cycle(3);
    assert_eq!(show(&far, "master:config.json"), own);
    assert_eq!(show(&far, "working:config.json"), own);
    // The new crate still arrived.
    assert!(show(&far, "master:le/af/leaf").contains("\"vers\":\"1.3.0\""));
    // The near side, which never ran config, follows upstream.
    assert_eq!(show(&near, "master:config.json"), evil);

    // A far side that ran `config` again changes only by `config`.
    ok(&far, &["config", "--server-url", "http://other.invalid:1"]);
    assert_eq!(
        show(&far, "master:config.json"),
        own_config("http://other.invalid:1")
    );
}

#[test]
fn config_json_of_a_sparse_mirror_stays_its_own_after_upstream_mimics_it() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let tmpl = fx.crates_url_template();
    ok(root, &["init", "--index-url", &sp.index_url()]);
    ok(root, &["config", "--server-url", FAR_URL]);
    let own = own_config(FAR_URL);
    let update = ["update", "--crates-url", &tmpl, "--crate", "leaf"];
    ok(root, &update);
    assert_eq!(show(root, "master:config.json"), own);
    fx.set_config(&own);
    fx.commit("Mimic the mirror");
    sp.sync(&fx);
    ok(root, &update);
    fx.set_config(&own.replace("mirror.invalid", "evil.invalid"));
    fx.commit("Point the mirror elsewhere");
    sp.sync(&fx);
    ok(root, &update);
    assert_eq!(show(root, "master:config.json"), own);
    assert_eq!(show(root, "working:config.json"), own);
}

#[test]
fn an_index_from_before_the_record_keeps_the_config_json_config_wrote() {
    let up = Upstream::start();
    let mut fx = fixture(&up);
    let tmpl = fx.crates_url_template();
    let work = tempfile::tempdir().unwrap();
    let online = work.path().join("online");
    let far = work.path().join("far");
    ok(&online, &["init", "--index-url", &fx.index_url()]);
    ok(&online, &["config", "--server-url", FAR_URL]);
    ok(&online, &["update", "--crates-url", &tmpl]);
    ok(&far, &["init-import"]);
    let archive = work.path().join("a.tar.gz").display().to_string();
    ok(&online, &["pack", "--start", "0", "--archive", &archive]);
    ok(&far, &["import", "--archive", &archive]);
    // As an index written before refs/mirror/config existed.
    for root in [&online, &far] {
        crates::git(&index(root), &["update-ref", "-d", "refs/mirror/config"]);
    }
    let far_before = show(&far, "master:config.json");
    let evil = own_config("http://evil.invalid");
    fx.set_config(&evil);
    fx.publish("leaf", "1.2.0", &[]);
    fx.commit("Change config.json");
    let err = ok(&online, &["update", "--crates-url", &tmpl]);
    assert!(err.contains("recorded as this mirror's own"), "{err}");
    assert_eq!(show(&online, "master:config.json"), own_config(FAR_URL));
    let archive = work.path().join("b.tar.gz").display().to_string();
    ok(
        &online,
        &[
            "pack",
            "--start",
            "0",
            "--end",
            "origin_master",
            "--archive",
            &archive,
        ],
    );
    ok(&far, &["import", "--archive", &archive]);
    assert_eq!(show(&far, "master:config.json"), far_before);
    assert!(show(&far, "master:le/af/leaf").contains("1.2.0"));
}

#[test]
fn non_ascii_dependency_of_a_sparse_upstream_is_skipped_not_a_panic() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    let deps = format!(
        "[{},{},{}]",
        dep("leaf", "^1", "normal", false, None),
        dep("\u{e9}a", "^1", "normal", false, None),
        dep("renamed", "^1", "normal", false, None)
            .replace("\"kind\"", "\"package\":\"ab\u{e9}c\",\"kind\""),
    );
    publish_line(&up, &fx, "app", "0.1.0", &deps);
    fx.commit("A dependency no crate name can be");
    let sp = SparseUpstream::new(&up);
    sp.sync(&fx);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    ok(root, &["init", "--index-url", &sp.index_url()]);
    let out = run(
        root,
        &[
            "update",
            "--crates-url",
            &fx.crates_url_template(),
            "--crate",
            "app",
            "--with-deps",
            "normal",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not a crate name"), "{stderr}");
    assert!(stderr.contains("2 versions selected"), "{stderr}");
    assert!(show(root, "master:le/af/leaf").contains("1.0.0"));
}

/// The status of `GET target` (the path sent as given, not normalised by
/// a client library) from the server at `addr`.
fn status(addr: SocketAddr, target: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: no answer: {head:?}"))
}

#[test]
fn non_ascii_names_in_every_crates_route_are_4xx_and_never_a_panic() {
    let up = Upstream::start();
    let fx = fixture(&up);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    ok(root, &["init", "--index-url", &fx.index_url()]);
    ok(root, &["update", "--crates-url", &fx.crates_url_template()]);
    let mut cmd = ServeProcess::command(root, &[]);
    cmd.env("RUST_BACKTRACE", "1");
    let server = ServeProcess::spawn(cmd);
    let status = |target: &str| status(server.addr, target);
    assert_eq!(status("/crates/leaf/leaf-1.0.0.crate"), 200);
    let e = "%C3%A9";
    let targets = [
        format!("/crates/3/{e}a/{e}a-1.0.0.crate"),
        format!("/crates/3/{e}/{e}a/{e}a-1.0.0.crate"),
        format!("/crates/{e}a/{e}a-1.0.0.crate"),
        format!("/crates/{e}a/1.0.0/download"),
        format!("/crates/le/af/le{e}/le{e}-1.0.0.crate"),
        format!("/crates/a{e}/bc/a{e}bc/a{e}bc-1.0.0.crate"),
        format!("/crates/l{e}/af/l{e}af/l{e}af-1.0.0.crate"),
        format!("/crates/le/af/leaf/leaf-1.0.0{e}.crate"),
        format!("/crates/leaf/1.0.{e}/download"),
        format!("/crates/{e}{e}/{e}{e}/{e}{e}-1.0.0.crate"),
        format!("/index/3/{e}/{e}a"),
        format!("/index/3/{e}a"),
        format!("/index/le/af/le{e}"),
        format!("/index/l{e}/af/l{e}af"),
        format!("/index/{e}{e}/{e}{e}/{e}{e}{e}{e}"),
        format!("/index/config.json{e}"),
        format!("/index/{e}/config.json"),
        format!("/crates-index/3/{e}/{e}a"),
    ];
    for t in &targets {
        let got = status(t);
        assert!((400..500).contains(&got), "{t}: {got}");
    }
    // Still up, and no request panicked.
    assert_eq!(status("/index/config.json"), 200);
    assert_eq!(status("/index/le/af/leaf"), 200);
    let stderr = server.log().join("\n");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}
