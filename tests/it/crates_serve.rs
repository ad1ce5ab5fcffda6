//! `mirror serve` for crates: the three crate file path forms, hostile
//! paths, the sparse index read from the `master` tree (config.json,
//! ETag/304, 404, case, a moving master), and the git index over smart HTTP
//! (advertisement, and a real `git clone` over protocol v0 and v2).
//!
//! The served tree is what `mirror crate` leaves: the fixture index cloned
//! to `git/crates.io-index` with `master` published and named by HEAD, a
//! `working` branch that holds an unpublished crate, and the crate files
//! under `crates/<lowerprefix>/<name>/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use mirror::serve::{spawn, RunningServer, ServeOptions};

use crate::support::crates::{git, CratesFixture};
use crate::support::upstream::Upstream;

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A served mirror root with a crates index and crate files.
pub struct CratesTree {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub server: RunningServer,
}

impl CratesTree {
    /// The served index repository.
    pub fn index(&self) -> PathBuf {
        self.root.join("git/crates.io-index")
    }

    /// `git rev-parse REV` in the served index.
    pub fn rev(&self, rev: &str) -> String {
        git(&self.index(), &["rev-parse", rev]).trim().to_string()
    }
}

/// Start a server on an empty root, then build the tree under it (the git
/// index's `config.json` must name the server's port): crates `leaf 1.0.0`,
/// `leaf 1.1.0`, `app 0.1.0` (depends on `leaf ^1`), `Mixed_Case 0.1.0`, `ab
/// 0.1.0`, `abc 0.1.0` on `master`, whose `config.json` has `dl` =
/// `http://ADDR/crates` (cargo appends `/{crate}/{version}/download`).
/// `working` is one commit ahead with the crate `unpublished`; HEAD names
/// `master` (as `mirror crate init` leaves it; git serves only that).
pub fn crates_tree() -> CratesTree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), SECRET).unwrap();
    let server = spawn(ServeOptions::local(&root)).unwrap();

    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.publish("Mixed_Case", "0.1.0", &[]);
    fx.publish("ab", "0.1.0", &[]);
    fx.publish("abc", "0.1.0", &[]);
    fx.commit("Add crates");
    for p in fx.published() {
        let dest = root
            .join("crates")
            .join(mirror::eco::crates::layout::crate_rel_path(
                &p.name, &p.version,
            ));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, &p.bytes).unwrap();
    }

    let index = root.join("git/crates.io-index");
    std::fs::create_dir_all(index.parent().unwrap()).unwrap();
    git(
        &root,
        &["clone", "-q", &fx.index_url(), "git/crates.io-index"],
    );
    std::fs::write(
        index.join("config.json"),
        format!(
            "{{\n  \"dl\": \"{}\",\n  \"api\": \"{}\"\n}}\n",
            server.url("/crates"),
            server.url("")
        ),
    )
    .unwrap();
    git(
        &index,
        &["commit", "-q", "-am", "Point config.json at the mirror"],
    );
    git(&index, &["checkout", "-q", "-b", "working"]);
    std::fs::create_dir_all(index.join("un/pu")).unwrap();
    std::fs::write(index.join("un/pu/unpublished"), "{}\n").unwrap();
    git(&index, &["add", "-A"]);
    git(&index, &["commit", "-q", "-m", "Not yet published"]);
    git(&index, &["checkout", "-q", "master"]);
    CratesTree { tmp, root, server }
}

/// One HTTP/1.1 exchange over raw TCP (the path is sent as given).
pub struct Raw {
    pub status: u16,
    /// Lower-cased header block.
    pub head: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = format!("{}:", name.to_ascii_lowercase());
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&name).map(str::trim))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Raw {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

fn get(t: &CratesTree, target: &str) -> Raw {
    request(t.server.addr, "GET", target, &[])
}

fn on_disk(t: &CratesTree, rel: &str) -> Vec<u8> {
    std::fs::read(t.root.join(rel)).unwrap()
}

#[test]
fn crate_files_are_served_in_all_three_path_forms() {
    let t = crates_tree();
    let leaf = on_disk(&t, "crates/le/af/leaf/leaf-1.1.0.crate");
    for target in [
        "/crates/leaf/leaf-1.1.0.crate",
        "/crates/leaf/1.1.0/download",
        "/crates/le/af/leaf/leaf-1.1.0.crate",
    ] {
        let r = get(&t, target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, leaf, "{target}");
        assert!(r.header("etag").is_some(), "{target}");
    }
    let mixed = on_disk(&t, "crates/mi/xe/Mixed_Case/Mixed_Case-0.1.0.crate");
    for target in [
        "/crates/Mixed_Case/Mixed_Case-0.1.0.crate",
        "/crates/Mixed_Case/0.1.0/download",
        "/crates/mi/xe/Mixed_Case/Mixed_Case-0.1.0.crate",
    ] {
        let r = get(&t, target);
        assert_eq!((r.status, &r.body), (200, &mixed), "{target}");
    }
    let ab = on_disk(&t, "crates/2/ab/ab-0.1.0.crate");
    assert_eq!(get(&t, "/crates/ab/0.1.0/download").body, ab);
    assert_eq!(get(&t, "/crates/2/ab/ab-0.1.0.crate").body, ab);
    let abc = on_disk(&t, "crates/3/a/abc/abc-0.1.0.crate");
    assert_eq!(get(&t, "/crates/abc/abc-0.1.0.crate").body, abc);
    assert_eq!(get(&t, "/crates/3/a/abc/abc-0.1.0.crate").body, abc);
    // Ranges and HEAD as for every static file.
    let r = request(
        t.server.addr,
        "GET",
        "/crates/leaf/1.1.0/download",
        &[("Range", "bytes=0-9")],
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &leaf[..10]));
    let r = request(t.server.addr, "HEAD", "/crates/leaf/leaf-1.1.0.crate", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(leaf.len().to_string().as_str())
    );
    // Unknown versions and crates.
    for target in [
        "/crates/leaf/9.9.9/download",
        "/crates/nope/nope-1.0.0.crate",
        "/crates/leaf/other-1.1.0.crate",
        "/crates/xx/yy/leaf/leaf-1.1.0.crate",
        "/crates/leaf",
        "/crates/le/af/leaf",
    ] {
        assert_eq!(get(&t, target).status, 404, "{target}");
    }
}

#[test]
fn hostile_crate_paths_never_escape_the_root() {
    let t = crates_tree();
    for target in [
        "/crates/../secret.txt",
        "/crates/..%2f..%2fsecret.txt/1.0.0/download",
        "/crates/leaf/..%2f..%2f..%2fsecret.txt/download",
        "/crates/%2e%2e/%2e%2e/secret.txt",
        "/crates/leaf/1.1.0%2f..%2f..%2f..%2f..%2fsecret.txt/download",
        "/crates/..%5c..%5csecret.txt/x-1.crate",
        "/crates/leaf%00/1.1.0/download",
        "/crates/.mirror/x/download",
        "/crates/leaf/..%2e/download",
        "/index/../secret.txt",
        "/index/%2e%2e/%2e%2e/secret.txt",
        "/index/..%2f..%2fsecret.txt",
        "/crates-index/le/af/..%2f..%2f..%2fsecret.txt",
        "/git/crates.io-index/..%2f..%2f..%2fsecret.txt",
    ] {
        let r = get(&t, target);
        assert!(matches!(r.status, 400 | 404), "{target}: {}", r.status);
        assert!(!r.text().contains(SECRET), "{target} leaked the secret");
    }
}

#[test]
fn sparse_index_serves_master_with_config_etag_304_and_404() {
    let t = crates_tree();
    let base = t.server.url("");
    for prefix in ["/index", "/crates-index"] {
        let r = get(&t, &format!("{prefix}/config.json"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["dl"],
            format!("{base}/crates/{{crate}}/{{crate}}-{{version}}.crate")
        );
        assert_eq!(v["api"], base);
        let etag = r.header("etag").unwrap().to_string();
        let again = request(
            t.server.addr,
            "GET",
            &format!("{prefix}/config.json"),
            &[("If-None-Match", &etag)],
        );
        assert_eq!(again.status, 304);

        // A file is the blob of the master tree, with its id as ETag.
        let r = get(&t, &format!("{prefix}/le/af/leaf"));
        assert_eq!(r.status, 200, "{prefix}");
        let blob = t.rev("master:le/af/leaf");
        assert_eq!(r.header("etag"), Some(format!("\"{blob}\"").as_str()));
        assert_eq!(r.text(), git(&t.index(), &["show", "master:le/af/leaf"]));
        assert_eq!(r.text().lines().count(), 2);
        let r = request(
            t.server.addr,
            "GET",
            &format!("{prefix}/le/af/leaf"),
            &[("If-None-Match", &format!("\"{blob}\""))],
        );
        assert_eq!((r.status, r.body.len()), (304, 0));
        let r = request(
            t.server.addr,
            "GET",
            &format!("{prefix}/le/af/leaf"),
            &[("If-None-Match", "\"0000\"")],
        );
        assert_eq!(r.status, 200);
    }
    // Every prefix length; requests are case-insensitive.
    for target in [
        "/index/2/ab",
        "/index/3/a/abc",
        "/index/ap/p/app",
        "/index/mi/xe/mixed_case",
    ] {
        let name = target.rsplit('/').next().unwrap();
        let path = target.strip_prefix("/index/").unwrap();
        let r = get(&t, target);
        if name == "app" {
            // Not a valid index path for `app` (3/a/app is).
            assert_eq!(r.status, 404, "{target}");
            continue;
        }
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            r.text(),
            git(&t.index(), &["show", &format!("master:{path}")])
        );
    }
    assert_eq!(get(&t, "/index/3/a/app").status, 200);
    assert_eq!(get(&t, "/index/MI/XE/Mixed_Case").status, 200);
    // Unknown crates, the unpublished crate on `working`, directories,
    // paths that do not match the name.
    for target in [
        "/index/no/pe/nope",
        "/index/un/pu/unpublished",
        "/index/le/af",
        "/index/le",
        "/index/",
        "/index/xx/yy/leaf",
        "/index/le/af/leaf/extra",
    ] {
        assert_eq!(get(&t, target).status, 404, "{target}");
    }
    // Nothing but GET/HEAD.
    assert_eq!(
        request(t.server.addr, "POST", "/index/le/af/leaf", &[]).status,
        405
    );
}

#[test]
fn sparse_index_follows_master_when_it_moves() {
    let t = crates_tree();
    let before = get(&t, "/index/le/af/leaf");
    // Publish on master (as `mirror crate` does), without touching HEAD.
    let index = t.index();
    git(&index, &["checkout", "-q", "master"]);
    let line = "{\"name\":\"leaf\",\"vers\":\"2.0.0\",\"deps\":[],\"cksum\":\"00\",\"features\":{},\"yanked\":false}\n";
    let mut text = std::fs::read_to_string(index.join("le/af/leaf")).unwrap();
    text.push_str(line);
    std::fs::write(index.join("le/af/leaf"), &text).unwrap();
    git(&index, &["commit", "-q", "-am", "Update leaf"]);
    let after = get(&t, "/index/le/af/leaf");
    assert_eq!(after.status, 200);
    assert_eq!(after.text(), text);
    assert_ne!(after.header("etag"), before.header("etag"));
    // Packed refs and packed objects too.
    git(&index, &["gc", "-q"]);
    assert_eq!(get(&t, "/index/le/af/leaf").text(), text);
}

#[test]
fn sparse_index_is_404_without_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let server = spawn(ServeOptions::local(tmp.path())).unwrap();
    for target in ["/index/config.json", "/index/le/af/leaf"] {
        assert_eq!(request(server.addr, "GET", target, &[]).status, 404);
    }
    let r = request(
        server.addr,
        "GET",
        "/git/crates.io-index/info/refs?service=git-upload-pack",
        &[],
    );
    assert_eq!(r.status, 404);
}

#[test]
fn config_json_uses_base_url_when_given() {
    let t = crates_tree();
    let mut opts = ServeOptions::local(&t.root);
    opts.base_url = Some("https://mirror.example/sub".into());
    let server = spawn(opts).unwrap();
    let r = request(server.addr, "GET", "/index/config.json", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["dl"],
        "https://mirror.example/sub/crates/{crate}/{crate}-{version}.crate"
    );
    assert_eq!(v["api"], "https://mirror.example/sub");
}

#[test]
fn git_info_refs_advertises_master_as_head() {
    let t = crates_tree();
    let r = get(&t, "/git/crates.io-index/info/refs?service=git-upload-pack");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/x-git-upload-pack-advertisement")
    );
    assert!(r.header("cache-control").is_some());
    let text = r.text();
    assert!(
        text.starts_with("001e# service=git-upload-pack\n0000"),
        "{text}"
    );
    let master = t.rev("master");
    assert_ne!(master, t.rev("working"), "working is ahead in the fixture");
    assert!(text.contains(&format!("{master} HEAD\0")), "{text}");
    assert!(text.contains("symref=HEAD:refs/heads/master"), "{text}");
    assert!(
        text.contains(&format!("{master} refs/heads/master")),
        "{text}"
    );
    assert!(
        !text.contains("working"),
        "only master is advertised: {text}"
    );
    assert!(!text.contains(&t.rev("working")), "{text}");
    assert!(text.ends_with("0000"), "{text}");

    // Only upload-pack, only smart HTTP.
    assert_eq!(
        get(
            &t,
            "/git/crates.io-index/info/refs?service=git-receive-pack"
        )
        .status,
        403
    );
    assert_eq!(get(&t, "/git/crates.io-index/info/refs").status, 403);
    assert_eq!(get(&t, "/git/crates.io-index/git-upload-pack").status, 405);
    assert_eq!(
        request(
            t.server.addr,
            "POST",
            "/git/crates.io-index/git-receive-pack",
            &[]
        )
        .status,
        404
    );
    // The repository's own files are not served (dumb HTTP, other
    // branches, config).
    for target in [
        "/git/crates.io-index",
        "/git/crates.io-index/HEAD",
        "/git/crates.io-index/config",
        "/git/crates.io-index/refs/heads/working",
        "/git/crates.io-index/objects/info/packs",
        "/git/crates.io-index/git-receive-pack",
    ] {
        assert_eq!(get(&t, target).status, 404, "{target}");
    }
}

/// Clone with the git CLI over smart HTTP, protocol v0 and v2 (gzip'd
/// request bodies come from the CLI for larger negotiations).
#[test]
fn git_clone_over_smart_http_gets_master() {
    let t = crates_tree();
    let url = t.server.url("/git/crates.io-index");
    for version in ["0", "2"] {
        let dest = t.tmp.path().join(format!("clone-v{version}"));
        let out = std::process::Command::new("git")
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &url,
            ])
            .arg(&dest)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "v{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]).trim(), t.rev("master"));
        assert_eq!(
            git(&dest, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/master"
        );
        assert!(!dest.join("un/pu/unpublished").exists());
        assert_eq!(
            std::fs::read(dest.join("le/af/leaf")).unwrap(),
            git(&t.index(), &["show", "master:le/af/leaf"]).into_bytes()
        );
        // A fetch after master moved (negotiation with haves).
        let index = t.index();
        git(&index, &["checkout", "-q", "master"]);
        std::fs::write(index.join("2/ab"), format!("{version}\n")).unwrap();
        git(&index, &["commit", "-q", "-am", "Change ab"]);
        let out = std::process::Command::new("git")
            .current_dir(&dest)
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "pull",
                "-q",
                "--ff-only",
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "v{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]).trim(), t.rev("master"));
    }
}

/// The sparse index answers from git objects: a checkout is not needed
/// and the work tree is ignored.
#[test]
fn sparse_index_ignores_the_work_tree() {
    let t = crates_tree();
    std::fs::write(t.index().join("le/af/leaf"), "edited in the work tree\n").unwrap();
    let r = get(&t, "/index/le/af/leaf");
    assert!(!r.text().contains("edited"), "{}", r.text());
}

/// A stateless-rpc upload-pack request wanting `oid`, no capabilities.
fn want_request(oid: &str) -> Vec<u8> {
    format!("0032want {oid}\n00000009done\n").into_bytes()
}

async fn post_upload_pack(t: &CratesTree, body: Vec<u8>, gzip: bool) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(t.server.url("/git/crates.io-index/git-upload-pack"))
        .header("Content-Type", "application/x-git-upload-pack-request");
    if gzip {
        req = req.header("Content-Encoding", "gzip");
    }
    let res = req.body(body).send().await.unwrap();
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, res.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_pack_streams_a_pack_for_plain_and_gzip_requests() {
    let t = tokio::task::spawn_blocking(crates_tree).await.unwrap();
    let master = t.rev("master");
    let plain = want_request(&master);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gzipped = gz.finish().unwrap();
    for (body, gzip) in [(plain.clone(), false), (gzipped, true)] {
        let (status, ctype, out) = post_upload_pack(&t, body, gzip).await;
        assert_eq!(
            status,
            200,
            "gzip={gzip}: {}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(ctype, "application/x-git-upload-pack-result");
        assert!(
            out.starts_with(b"0008NAK\nPACK"),
            "gzip={gzip}: {:?}",
            &out[..out.len().min(40)]
        );
        // The pack holds master's commit: index it in a scratch repository.
        let scratch = t.tmp.path().join(format!("scratch-{gzip}"));
        std::fs::create_dir_all(&scratch).unwrap();
        git(&scratch, &["init", "-q", "--bare"]);
        std::fs::write(scratch.join("got.pack"), &out[8..]).unwrap();
        git(&scratch, &["index-pack", "got.pack"]);
        let objects = git(&scratch, &["verify-pack", "-v", "got.idx"]);
        assert!(objects.contains(&master), "{objects}");
    }
    // A commit only on `working` is not served.
    let working = t.rev("working");
    let (_, _, out) = post_upload_pack(&t, want_request(&working), false).await;
    assert!(
        !out.windows(4).any(|w| w == b"PACK"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A broken gzip body never reaches git as a request.
    let (_, _, out) = post_upload_pack(&t, b"not gzip".to_vec(), true).await;
    assert!(!out.windows(4).any(|w| w == b"PACK"));
}

/// Without `git` on PATH the git routes answer 503 saying so (and the
/// sparse index keeps working); run through the binary to own its PATH.
#[test]
fn missing_git_is_a_clear_503() {
    use std::io::BufRead;
    let t = crates_tree();
    let empty = t.tmp.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args(["serve", "--port", "0", "--root"])
        .arg(&t.root)
        .env("PATH", &empty)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        // "serving ROOT on http://ADDR/ (Ctrl-C stops)"
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    let r = request(
        addr,
        "GET",
        "/git/crates.io-index/info/refs?service=git-upload-pack",
        &[],
    );
    let sparse = request(addr, "GET", "/index/le/af/leaf", &[]);
    child.kill().unwrap();
    let _ = child.wait();
    let logged: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("git binary was not found"),
        "{}",
        r.text()
    );
    assert!(
        logged
            .iter()
            .any(|l| l.contains("git binary was not found")),
        "{logged:?}"
    );
    assert_eq!(sparse.status, 200);
}

/// git upload-pack v2 grants a want of any object in the store (the
/// index's, every branch's), so v2 must not be spoken, or a client could
/// fetch `working` (local config, unverified crates) by commit id.
#[test]
fn git_clients_cannot_fetch_other_branches_by_id() {
    let t = crates_tree();
    let url = t.server.url("/git/crates.io-index");
    let working = t.rev("working");
    let client = t.tmp.path().join("client.git");
    std::fs::create_dir_all(&client).unwrap();
    git(&client, &["init", "-q", "--bare"]);
    for version in ["0", "2"] {
        let out = std::process::Command::new("git")
            .current_dir(&client)
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "fetch",
                "-q",
                &url,
                &working,
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "v{version}: fetched {working}");
        let have = std::process::Command::new("git")
            .current_dir(&client)
            .args(["cat-file", "-e", &working])
            .status()
            .unwrap();
        assert!(!have.success(), "v{version}: {working} arrived");
    }
    // master by id is fine.
    git(&client, &["fetch", "-q", &url, &t.rev("master")]);
}
