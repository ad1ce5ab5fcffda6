//! The git index endpoint and every git child against other local users,
//! stalled clients and hostile git configuration:
//!
//! - another user (`nobody`) plants the temporary paths the server once
//!   used for its per-request repositories (`$TMPDIR/mirror-serve-git-
//!   <pid>-<n>`: a repository borrowing refs from the planter's own through
//!   `commondir`, a `config` symlink into the tree, symlinks to the tree's
//!   directories); real git and cargo clients still get the tree's own
//!   `master` and nothing in the tree or the temporary directory changes.
//!   The server runs as a third user owning the tree, then on a tree it
//!   cannot write (owned by root);
//! - only `HEAD` and `master` are advertised, hidden commits are "not our
//!   ref", and an index whose `HEAD` names another branch is refused;
//! - stalled upload-pack requests: the number of git processes stays at
//!   the cap, extra requests get `503`, and every git is reaped after the
//!   deadline and when clients go away;
//! - a hostile `~/.gitconfig`, XDG configuration and `GIT_*` variables
//!   change nothing for `mirror crate` and `mirror serve`.
//!
//! Switching users needs root and `setpriv`: CI runs as root; elsewhere
//! those tests skip, but under `CI=true` they fail.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cargo_client::{mirror_crate, round};
use crate::crates_serve::{crates_tree, request};
use crate::rustup::require_client;
use crate::support::crates::{git, CratesFixture};
use crate::support::upstream::Upstream;

/// The user `mirror serve` runs as in the tests that switch users (no
/// account needed), and the other local user.
const SERVER_UID: u32 = 64_901;
const NOBODY: u32 = 65_534;

/// Whether this process can run programs as other users; `false` skips
/// (and fails under `CI=true`).
fn can_switch_users(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let setpriv = Path::new("/usr/bin/setpriv").exists() || which("setpriv");
    if root && setpriv {
        return true;
    }
    let why = if root {
        "setpriv is not installed"
    } else {
        "not running as root"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs to switch users, but {why} (required under CI=true)"
    );
    eprintln!(
        "\n!!! SKIPPED {test}: {why}; run as root with setpriv to test other local users !!!\n"
    );
    false
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// `cmd` run as `uid` (group `uid`, no supplementary groups).
fn as_user(uid: u32, program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"])
        .arg(program);
    cmd
}

/// `bin`, or a link to (else a copy of) it beside `near` when a directory
/// above it is closed to other users.
fn reachable_by_all(bin: &Path, near: &Path) -> PathBuf {
    let open = bin
        .ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0));
    if open {
        return bin.to_path_buf();
    }
    let dest = near.parent().unwrap_or(near).join("mirror-bin");
    if !dest.exists() && std::fs::hard_link(bin, &dest).is_err() {
        std::fs::copy(bin, &dest).unwrap();
    }
    dest
}

/// A temporary directory other users can enter (in /tmp, mode 0755).
fn shared_workdir() -> tempfile::TempDir {
    let work = tempfile::Builder::new()
        .prefix("mirror-harden-git")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    work
}

fn chown_r(path: &Path, uid: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_r(&e.unwrap().path(), uid);
        }
    }
}

/// A `mirror serve` process and what it logged.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `mirror serve --port 0 --root ROOT ARGS`, as `uid` when given, with
    /// `env` added to its environment.
    fn start(root: &Path, uid: Option<u32>, env: &[(&str, &str)], args: &[&str]) -> Server {
        let bin = Path::new(env!("CARGO_BIN_EXE_mirror"));
        let mut cmd = match uid {
            Some(uid) => as_user(uid, &reachable_by_all(bin, root)),
            None => Command::new(bin),
        };
        cmd.args(["serve", "--port", "0", "--root"])
            .arg(root)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start mirror serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr: SocketAddr = loop {
            let line = lines
                .next()
                .expect("mirror serve printed its address")
                .unwrap();
            // "serving ROOT on http://ADDR/ (Ctrl-C stops)"
            if let Some(rest) = line.split("http://").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
            assert!(!line.contains("error"), "mirror serve: {line}");
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Server { child, addr, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The server's `git` children (running or not yet reaped).
    fn git_children(&self) -> usize {
        git_children(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes named `git` whose parent is `pid`, zombies included.
fn git_children(pid: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if comm == "git" && ppid == Some(pid.to_string().as_str()) {
            n += 1;
        }
    }
    n
}

/// A git client: no system configuration, no prompts, no proxies.
fn client() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "safe.directory=*", "-c", "protocol.version=0"]);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `git ls-remote URL`: ref name → commit.
fn ls_remote(url: &str) -> Result<BTreeMap<String, String>, String> {
    let out = client().args(["ls-remote", url]).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, name)| (name.to_string(), id.to_string()))
        .collect())
}

/// `git rev-parse REV` in the bare index at `index` (owned by anyone).
fn rev(index: &Path, rev: &str) -> String {
    let out = client()
        .arg("--git-dir")
        .arg(index)
        .args(["rev-parse", rev])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every path under `dir` (not following symlinks) with its type, mode
/// and content (a symlink's target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let content = if meta.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.insert(p.clone(), (meta.mode(), content));
            if meta.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// What differs between two snapshots, one line per path.
fn changes(
    before: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    after: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => out.push(format!("removed {}", p.display())),
            Some(w) if w != v => out.push(format!(
                "changed {}: {:?}",
                p.display(),
                String::from_utf8_lossy(&w.1[..w.1.len().min(80)])
            )),
            Some(_) => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("created {}", p.display()));
    }
    out
}

/// A root with `rustup/release-stable.toml` and a crates tree made by
/// `mirror crate init/config/update` from `fx`, its `config.json` naming
/// `server_url`.
fn mirror_made_tree(root: &Path, fx: &CratesFixture<'_>, server_url: &str) {
    std::fs::create_dir_all(root.join("rustup")).unwrap();
    std::fs::write(
        root.join("rustup/release-stable.toml"),
        "[version]\nversion = \"1.28.2\"\n",
    )
    .unwrap();
    mirror_crate(root, &["init", "--index-url", &fx.index_url()]);
    mirror_crate(root, &["config", "--server-url", server_url]);
    mirror_crate(root, &["update", "--crates-url", &fx.crates_url_template()]);
}

fn fixture(up: &Upstream) -> CratesFixture<'_> {
    let mut fx = CratesFixture::new(up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf and app");
    fx
}

/// Run `script` with `sh -c` as `nobody`.
fn as_nobody(script: &str) {
    let out = as_user(NOBODY, Path::new("/bin/sh"))
        .args(["-c", script])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as nobody: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Another local user plants every path the per-request repositories of
/// the git endpoint once had (for the server's pid) before git clients
/// come: the served `master` stays the tree's, nothing in the tree or the
/// temporary directory changes, then the same on a tree the server cannot
/// write.
#[test]
fn another_local_user_cannot_take_over_the_git_endpoint() {
    const TEST: &str = "another_local_user_cannot_take_over_the_git_endpoint";
    if !can_switch_users(TEST) {
        return;
    }
    let cargo = require_client("cargo");
    let up = Upstream::start();
    let fx = fixture(&up);
    let work = shared_workdir();
    let root = work.path().join("root");
    // A tree to be: serve refuses a root that holds none.
    std::fs::create_dir_all(root.join(".mirror")).unwrap();
    // The shared temporary directory, sticky like /tmp.
    let shared = work.path().join("tmp");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let shared_s = shared.to_str().unwrap();

    let server = Server::start(&root, Some(SERVER_UID), &[("TMPDIR", shared_s)], &[]);
    mirror_made_tree(&root, &fx, &server.url(""));
    chown_r(&root, SERVER_UID);
    let index = root.join("git/crates.io-index");
    let master = rev(&index, "master");

    // The planter's own index: a master with a config.json sending cargo
    // elsewhere.
    let evil_src = work.path().join("evil-src");
    std::fs::create_dir_all(&evil_src).unwrap();
    git(&evil_src, &["init", "-q"]);
    std::fs::write(
        evil_src.join("config.json"),
        "{\"dl\":\"http://evil.invalid/{crate}\",\"api\":\"http://evil.invalid\"}\n",
    )
    .unwrap();
    git(&evil_src, &["add", "-A"]);
    git(&evil_src, &["commit", "-q", "-m", "evil"]);
    git(&evil_src, &["clone", "-q", "--bare", ".", "../evil.git"]);
    let evil_git = work.path().join("evil.git");
    chown_r(&evil_git, NOBODY);
    let evil_master = rev(&evil_git, "master");

    // Every view name for this pid the server would have used: a
    // repository whose refs and objects are the planter's (`commondir`),
    // whose `config` leads into the tree; or a symlink into the tree.
    let pid = server.pid();
    let mut script = String::from("set -e\n");
    for n in 0..48 {
        let d = format!("{shared_s}/mirror-serve-git-{pid}-{n}");
        match n % 3 {
            0 => script.push_str(&format!(
                "mkdir -p {d}/refs/heads {d}/objects/info\n\
                 chmod 0777 {d}/refs/heads {d}/objects/info\n\
                 echo 'ref: refs/heads/master' > {d}/HEAD; chmod 0666 {d}/HEAD\n\
                 echo {evil} > {d}/commondir\n\
                 ln -s {root}/rustup/release-stable.toml {d}/config\n\
                 chmod 0755 {d}\n",
                evil = evil_git.display(),
                root = root.display()
            )),
            1 => script.push_str(&format!("ln -s {} {d}\n", index.display())),
            _ => script.push_str(&format!("ln -s {}/rustup {d}\n", root.display())),
        }
    }
    as_nobody(&script);
    let tree_before = snapshot(&root);
    let tmp_before = snapshot(&shared);

    let mut problems = Vec::new();
    let url = server.url("/git/crates.io-index");
    let check_refs = |problems: &mut Vec<String>, what: &str| match ls_remote(&url) {
        Ok(refs) => {
            let want: BTreeMap<String, String> = [
                ("HEAD".to_string(), master.clone()),
                ("refs/heads/master".to_string(), master.clone()),
            ]
            .into();
            if refs != want {
                problems.push(format!(
                    "{what}: ls-remote {refs:?}, expected {want:?} (the planter's master is {evil_master})"
                ));
            }
        }
        Err(e) => problems.push(format!("{what}: ls-remote failed: {e}")),
    };
    check_refs(&mut problems, "server owning the tree");
    let clone = work.path().join("clone");
    let out = client()
        .arg("clone")
        .arg("-q")
        .arg(&url)
        .arg(&clone)
        .output()
        .unwrap();
    if !out.status.success() {
        problems.push(format!("clone: {}", String::from_utf8_lossy(&out.stderr)));
    } else {
        let head = git(&clone, &["rev-parse", "HEAD"]);
        if head.trim() != master {
            problems.push(format!("clone: HEAD {head}, expected {master}"));
        }
    }
    if let (Some(cargo), true) = (&cargo, problems.is_empty()) {
        // cargo (libgit2) takes `dl` from the served config.json.
        let _ = round(cargo, work.path(), "cargo-git", "git", &url);
    }
    let tree_changes = changes(&tree_before, &snapshot(&root));
    if !tree_changes.is_empty() {
        problems.push(format!("the tree changed: {tree_changes:#?}"));
    }
    let tmp_changes = changes(&tmp_before, &snapshot(&shared));
    if !tmp_changes.is_empty() {
        problems.push(format!("the temporary directory changed: {tmp_changes:#?}"));
    }

    // The same tree owned by root: read-only for the server, owned by
    // another user (safe.directory names exactly the index).
    chown_r(&root, 0);
    let tree_before = snapshot(&root);
    check_refs(&mut problems, "read-only tree owned by root");
    let clone = work.path().join("clone-ro");
    let out = client()
        .arg("clone")
        .arg("-q")
        .arg(&url)
        .arg(&clone)
        .output()
        .unwrap();
    if !out.status.success() {
        problems.push(format!(
            "read-only clone: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree_changes = changes(&tree_before, &snapshot(&root));
    if !tree_changes.is_empty() {
        problems.push(format!("the read-only tree changed: {tree_changes:#?}"));
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\nserver log: {:#?}",
        server.log()
    );
}

/// Only HEAD and master are advertised; commits of the other branches
/// (`working` with a local config.json, `origin_master` pulled and not
/// yet marked) are "not our ref" over protocol v0 and v2 clients; an index
/// whose HEAD names another branch is refused with a 503 saying so.
#[test]
fn only_head_and_master_are_served() {
    let up = Upstream::start();
    let mut fx = fixture(&up);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    // A tree to be: serve refuses a root that holds none.
    std::fs::create_dir_all(root.join(".mirror")).unwrap();
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(&root)).unwrap();
    mirror_made_tree(&root, &fx, &server.url(""));
    // Ahead of master: a new upstream commit pulled (`config` marks).
    mirror_crate(
        &root,
        &["config", "--server-url", "http://elsewhere.invalid"],
    );
    fx.publish("leaf", "2.0.0", &[]);
    fx.commit("Add leaf 2.0.0");
    mirror_crate(&root, &["pull"]);
    let index = root.join("git/crates.io-index");
    let master = rev(&index, "master");
    let hidden: Vec<(&str, String)> = ["working", "origin_master", "refs/remotes/origin/master"]
        .into_iter()
        .map(|b| (b, rev(&index, b)))
        .collect();
    for (b, id) in &hidden {
        assert_ne!(id, &master, "{b} is ahead of master in this test");
    }
    let url = server.url("/git/crates.io-index");
    let refs = ls_remote(&url).unwrap();
    assert_eq!(
        refs,
        [
            ("HEAD".to_string(), master.clone()),
            ("refs/heads/master".to_string(), master.clone())
        ]
        .into(),
    );
    only_master_is_fetchable(work.path(), server.addr, &master, &hidden);

    // A tree whose HEAD names working (as romt leaves it).
    let t = crates_tree();
    git(&t.index(), &["symbolic-ref", "HEAD", "refs/heads/working"]);
    for (method, target) in [
        (
            "GET",
            "/git/crates.io-index/info/refs?service=git-upload-pack",
        ),
        ("POST", "/git/crates.io-index/git-upload-pack"),
    ] {
        let r = request(t.server.addr, method, target, &[]);
        assert_eq!(r.status, 503, "{method} {target}: {}", r.text());
        assert!(
            r.text().contains("HEAD names refs/heads/working"),
            "{}",
            r.text()
        );
        assert!(
            r.text().contains("symbolic-ref HEAD refs/heads/master"),
            "{}",
            r.text()
        );
    }
    // The sparse index is served either way.
    assert_eq!(
        request(t.server.addr, "GET", "/index/le/af/leaf", &[]).status,
        200
    );
    // `mirror crate mark` on a tree whose HEAD was moved says so, and the
    // git routes refuse it too.
    let mark = || {
        let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
            .arg("--root")
            .arg(&root)
            .args(["crate", "mark"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let err = mark();
    assert!(!err.contains("HEAD names"), "{err}");
    client()
        .arg("--git-dir")
        .arg(&index)
        .args(["symbolic-ref", "HEAD", "refs/heads/working"])
        .status()
        .unwrap();
    let err = mark();
    assert!(
        err.contains("HEAD names refs/heads/working, not master"),
        "{err}"
    );
    let r = request(
        server.addr,
        "GET",
        "/git/crates.io-index/info/refs?service=git-upload-pack",
        &[],
    );
    assert_eq!(r.status, 503, "{}", r.text());
}

/// A git client fetching from the server at `addr` gets `master` by id
/// but none of the `hidden` (branch, commit), with protocol v0 or v2; the
/// server itself answers a want of them with "not our ref".
fn only_master_is_fetchable(
    work: &Path,
    addr: SocketAddr,
    master: &str,
    hidden: &[(&str, String)],
) {
    let url = format!("http://{addr}/git/crates.io-index");
    let repo = work.join("client.git");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "--bare"]);
    for (b, id) in hidden {
        for version in ["0", "2"] {
            let out = client()
                .current_dir(&repo)
                .args([
                    "-c",
                    &format!("protocol.version={version}"),
                    "fetch",
                    "-q",
                    &url,
                    id,
                ])
                .output()
                .unwrap();
            assert!(!out.status.success(), "v{version}: fetched {b} ({id})");
        }
        // The CLI above may refuse to send the want: send it.
        let answer = post_want(addr, id);
        assert!(
            answer.contains(&format!("not our ref {id}")) && !answer.contains("PACK"),
            "{b}: {answer}"
        );
        let have = client()
            .current_dir(&repo)
            .args(["cat-file", "-e", id])
            .status()
            .unwrap();
        assert!(!have.success(), "{b} ({id}) arrived");
    }
    git(&repo, &["fetch", "-q", &url, master]);
}

/// POST a stateless-rpc upload-pack request wanting `id`; the answer.
fn post_want(addr: SocketAddr, id: &str) -> String {
    let body = format!("0032want {id}\n00000009done\n");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /git/crates.io-index/git-upload-pack HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-git-upload-pack-request\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A POST to git-upload-pack whose body never ends: headers and part of
/// the body sent, the connection held.
fn stalled_post(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /git/crates.io-index/git-upload-pack HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-git-upload-pack-request\r\nContent-Length: 1000\r\n\r\n0032want "
    )
    .unwrap();
    s.flush().unwrap();
    s
}

/// Read `s` until the response's status line: its status code and the
/// head.
fn status_of(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// Poll `cond` every 50 ms for up to `secs`, recording the most git
/// children `server` had meanwhile into `most`.
fn wait_for(server: &Server, most: &mut usize, secs: u64, cond: impl Fn(usize) -> bool) -> bool {
    let start = Instant::now();
    loop {
        let n = server.git_children();
        *most = (*most).max(n);
        if cond(n) {
            return true;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stalled upload-packs: at most `--git-max-processes` git processes,
/// extra requests get 503 with Retry-After, every git is reaped when the
/// body deadline passes and when the clients go away, and git requests
/// are served again afterwards.
#[test]
fn stalled_upload_packs_are_capped_and_reaped() {
    let t = crates_tree();
    let mut most = 0;

    // The default cap: more stalled requests than it never make more git
    // processes; they all go when their clients do.
    let server = Server::start(&t.root, None, &[], &[]);
    let cap = 8; // the documented default of --git-max-processes
    let held: Vec<TcpStream> = (0..cap + 4).map(|_| stalled_post(server.addr)).collect();
    assert!(wait_for(&server, &mut most, 30, |n| n >= cap));
    // The extra requests are waiting for a slot, not running git.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!wait_for(&server, &mut most, 1, |n| n > cap));
    assert!(most <= cap, "{most} git processes at once, cap {cap}");
    drop(held);
    assert!(
        wait_for(&server, &mut most, 60, |n| n == 0),
        "git processes left after their clients went away: {}",
        server.git_children()
    );
    assert!(most <= cap, "{most} git processes at once, cap {cap}");
    drop(server);

    let cap = 2;
    most = 0;

    // A short timeout: the body deadline and the wait for a slot follow it.
    let server = Server::start(
        &t.root,
        None,
        &[],
        &["--git-max-processes", "2", "--git-timeout", "10"],
    );
    let mut held: Vec<TcpStream> = (0..cap).map(|_| stalled_post(server.addr)).collect();
    assert!(
        wait_for(&server, &mut most, 30, |n| n == cap),
        "{cap} stalled requests did not start {cap} git processes: {}",
        server.git_children()
    );
    let mut extra: Vec<TcpStream> = (0..3).map(|_| stalled_post(server.addr)).collect();
    for s in &mut extra {
        let (status, head) = status_of(s);
        most = most.max(server.git_children());
        assert_eq!(status, 503, "{head}");
        assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    }
    assert!(
        wait_for(&server, &mut most, 60, |n| n == 0),
        "git processes left after the body deadline: {}",
        server.git_children()
    );
    held.clear();
    extra.clear();
    assert!(most <= cap, "{most} git processes at once, cap {cap}");
    drop(server);

    // Clients that go away: a deadline far off, so only their leaving
    // ends git.
    let server = Server::start(
        &t.root,
        None,
        &[],
        &["--git-max-processes", "2", "--git-timeout", "3600"],
    );
    let held: Vec<TcpStream> = (0..cap).map(|_| stalled_post(server.addr)).collect();
    assert!(wait_for(&server, &mut most, 30, |n| n == cap));
    drop(held);
    assert!(
        wait_for(&server, &mut most, 20, |n| n == 0),
        "git processes left after their clients went away: {}",
        server.git_children()
    );
    assert!(most <= cap, "{most} git processes at once, cap {cap}");
    // Served again.
    let refs = ls_remote(&server.url("/git/crates.io-index")).unwrap();
    assert_eq!(refs.get("refs/heads/master"), Some(&t.rev("master")));
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("upload-pack killed")),
        "{:?}",
        server.log()
    );
}

/// A user's `~/.gitconfig`, XDG configuration and `GIT_*` variables that
/// redirect fetches, run hooks, forbid transports or open hidden commits
/// change nothing for `mirror crate` and `mirror serve`.
#[test]
fn user_git_configuration_has_no_effect() {
    let up = Upstream::start();
    let mut fx = fixture(&up);
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let hooks = home.join("hooks");
    let marker = work.path().join("hook-ran");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in ["reference-transaction", "post-checkout", "pre-auto-gc"] {
        let p = hooks.join(hook);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho {hook} >> {}\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hostile = format!(
        "[url \"http://127.0.0.1:9/redirected/\"]\n\tinsteadOf = file://\n\
         [core]\n\thooksPath = {hooks}\n\tfsmonitor = {hooks}/post-checkout\n\
         [protocol]\n\tallow = never\n[protocol \"ext\"]\n\tallow = always\n\
         [uploadpack]\n\tallowAnySHA1InWant = true\n",
        hooks = hooks.display()
    );
    std::fs::write(home.join(".gitconfig"), &hostile).unwrap();
    std::fs::create_dir_all(home.join("xdg/git")).unwrap();
    std::fs::write(home.join("xdg/git/config"), &hostile).unwrap();
    let bogus = work.path().join("not-a-repo");
    std::fs::create_dir_all(&bogus).unwrap();
    let home_s = home.to_str().unwrap().to_string();
    let xdg = home.join("xdg").to_str().unwrap().to_string();
    let bogus_s = bogus.to_str().unwrap().to_string();
    let env: Vec<(&str, &str)> = vec![
        ("HOME", &home_s),
        ("XDG_CONFIG_HOME", &xdg),
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "url.http://127.0.0.1:9/env/.insteadOf"),
        ("GIT_CONFIG_VALUE_0", "file://"),
        ("GIT_CONFIG_KEY_1", "uploadpack.allowAnySHA1InWant"),
        ("GIT_CONFIG_VALUE_1", "true"),
        (
            "GIT_CONFIG_PARAMETERS",
            "'uploadpack.allowanysha1inwant'='true'",
        ),
        ("GIT_DIR", &bogus_s),
        ("GIT_EXEC_PATH", &bogus_s),
        ("GIT_ALLOW_PROTOCOL", "ext"),
        ("GIT_CONFIG_NOSYSTEM", "0"),
    ];

    let root = work.path().join("root");
    // A tree to be: serve refuses a root that holds none.
    std::fs::create_dir_all(root.join(".mirror")).unwrap();
    let server = Server::start(&root, None, &env, &[]);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
            .current_dir(&root)
            .arg("--root")
            .arg(&root)
            .arg("crate")
            .args(args)
            .envs(env.iter().copied())
            .env("MIRROR_RETRY_DELAY_MS", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mirror crate {args:?} under a hostile git configuration: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init", "--index-url", &fx.index_url()]);
    run(&["config", "--server-url", &server.url("")]);
    run(&["update", "--crates-url", &fx.crates_url_template()]);
    // working ahead of master.
    fx.publish("leaf", "2.0.0", &[]);
    fx.commit("Add leaf 2.0.0");
    run(&["pull"]);
    let index = root.join("git/crates.io-index");
    assert_eq!(
        rev(&index, "origin_master"),
        fx.head(),
        "the upstream fetched is the fixture's"
    );
    assert!(
        !marker.exists(),
        "hooks ran: {:?}",
        std::fs::read_to_string(&marker)
    );

    let url = server.url("/git/crates.io-index");
    let master = rev(&index, "master");
    let working = rev(&index, "working");
    assert_ne!(master, working);
    let refs = ls_remote(&url).unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");
    only_master_is_fetchable(work.path(), server.addr, &master, &[("working", working)]);
    assert!(
        !marker.exists(),
        "hooks ran: {:?}",
        std::fs::read_to_string(&marker)
    );

    // An origin that runs a command (`ext::`, allowed by the user's
    // configuration) is not fetched; neither is ssh.
    let ext = format!("ext::sh -c touch% {}", marker.display());
    git(&index, &["config", "remote.origin.url", &ext]);
    let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(&root)
        .args(["crate", "pull"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pulled from {ext}");
    assert!(err.contains("not allowed"), "{err}");
    assert!(!marker.exists(), "the ext:: command ran");
    let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(work.path().join("root2"))
        .args([
            "crate",
            "init",
            "--index-url",
            "ssh://git@github.com/rust-lang/crates.io-index",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("expected an http://, https:// or file:// URL"),
        "{err}"
    );
}
