//! `mirror serve --auth-file`: every path but `/health` needs a
//! credential of the file (bcrypt, as `htpasswd -B` writes it), sent as
//! basic auth or as cargo's token; real cargo with a token against
//! `"auth-required": true`.

use std::path::Path;
use std::process::Command;

use crate::cargo_client::{cargo, ok, project, write};
use crate::crates_serve::{crates_tree, request, Raw};
use crate::rustup::require_client;
use crate::serve_ops::hangup;
use crate::support::serve_process::ServeProcess;

const USER: &str = "ann";
const PASSWORD: &str = "s3cret pass";

/// `htpasswd -B -b -c FILE NAME PASSWORD`.
fn htpasswd(file: &Path, name: &str, password: &str) -> bool {
    let Some(htpasswd) = require_client("htpasswd") else {
        return false;
    };
    let out = Command::new(htpasswd)
        .args(["-B", "-b", "-c"])
        .arg(file)
        .args([name, password])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
    )
}

fn get(server: &ServeProcess, target: &str, auth: Option<&str>) -> Raw {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    request(server.addr, "GET", target, &headers)
}

fn metric(server: &ServeProcess, auth: &str, name: &str) -> u64 {
    let text = get(server, "/metrics", Some(auth)).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name}: {text}"))
        .parse()
        .unwrap()
}

#[test]
fn every_path_but_health_needs_a_credential_of_the_auth_file() {
    let t = crates_tree();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    if !htpasswd(&file, USER, PASSWORD) {
        return;
    }
    std::fs::create_dir_all(t.root.join("dist")).unwrap();
    std::fs::write(t.root.join("dist/small.txt"), b"small\n").unwrap();
    let server = ServeProcess::start(&t.root, &["--auth-file", file.to_str().unwrap()]);

    assert_eq!(get(&server, "/health", None).status, 200);
    for path in [
        "/",
        "/stats",
        "/metrics",
        "/dist/small.txt",
        "/dist/missing",
        "/index/config.json",
        "/index/le/af/leaf",
        "/crates/leaf/leaf-1.0.0.crate",
        "/git/crates.io-index/info/refs?service=git-upload-pack",
    ] {
        for auth in [
            None,
            Some(basic(USER, "wrong").as_str()),
            Some(basic("bob", PASSWORD).as_str()),
            Some("ann:wrong"),
            Some("Bearer ann:wrong"),
            Some("Basic !!notbase64"),
        ] {
            let r = get(&server, path, auth);
            assert_eq!(r.status, 401, "{path} with {auth:?}: {}", r.head);
            assert_eq!(
                r.header("www-authenticate"),
                Some("basic realm=\"mirror\", charset=\"utf-8\""),
                "{path}"
            );
            assert!(!r.text().contains("small"), "{path}");
        }
    }
    let good = basic(USER, PASSWORD);
    let token = format!("{USER}:{PASSWORD}");
    let bearer = format!("Bearer {token}");
    for auth in [&good, &token, &bearer] {
        let r = get(&server, "/dist/small.txt", Some(auth));
        assert_eq!(r.status, 200, "{auth}: {}", r.head);
        assert_eq!(r.body, b"small\n");
    }
    // The landing page shows the cargo configuration that sends the token.
    let page = get(&server, "/", Some(&good)).text();
    for want in [
        "[registries.mirror]",
        "[source.crates-io]\nreplace-with = \"mirror\"",
        "global-credential-providers = [\"cargo:token\"]",
        "export CARGO_REGISTRIES_MIRROR_TOKEN=",
    ] {
        assert!(page.contains(want), "the page lacks {want:?}: {page}");
    }
    let config = get(&server, "/index/config.json", Some(&token));
    assert_eq!(config.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&config.body).unwrap();
    assert_eq!(v["auth-required"], true, "{v}");
    let refs = get(
        &server,
        "/git/crates.io-index/info/refs?service=git-upload-pack",
        Some(&good),
    );
    assert_eq!(refs.status, 200, "{}", refs.head);

    // Each distinct credential is checked once.
    let checks = metric(&server, &good, "mirror_auth_checks_total");
    for _ in 0..20 {
        assert_eq!(get(&server, "/dist/small.txt", Some(&good)).status, 200);
        assert_eq!(
            get(&server, "/dist/small.txt", Some("ann:wrong")).status,
            401
        );
    }
    assert_eq!(metric(&server, &good, "mirror_auth_checks_total"), checks);
}

#[test]
fn guessing_passwords_is_rate_limited_per_client_and_good_credentials_still_pass() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    if !htpasswd(&file, USER, PASSWORD) {
        return;
    }
    let server = ServeProcess::start(root.path(), &["--auth-file", file.to_str().unwrap()]);
    let good = basic(USER, PASSWORD);
    assert_eq!(get(&server, "/dist/small.txt", Some(&good)).status, 200);
    let mut limited = 0;
    for i in 0..200 {
        let r = get(
            &server,
            "/dist/small.txt",
            Some(&basic(USER, &format!("guess{i}"))),
        );
        match r.status {
            401 => {}
            429 => {
                limited += 1;
                assert!(r.header("retry-after").is_some(), "{}", r.head);
            }
            s => panic!("guess {i}: {s}"),
        }
    }
    assert!(limited > 0, "200 guesses were never slowed down");
    // The credential checked before is still let through at once.
    assert_eq!(get(&server, "/dist/small.txt", Some(&good)).status, 200);
    let checks = metric(&server, &good, "mirror_auth_checks_total");
    assert!(checks < 100, "{checks} bcrypt checks for 200 guesses");
}

#[test]
fn the_auth_file_is_reread_on_sighup() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    if !htpasswd(&file, USER, PASSWORD) {
        return;
    }
    let server = ServeProcess::start(root.path(), &["--auth-file", file.to_str().unwrap()]);
    let ann = basic(USER, PASSWORD);
    let bob = basic("bob", "other");
    assert_eq!(get(&server, "/dist/small.txt", Some(&ann)).status, 200);
    assert_eq!(get(&server, "/dist/small.txt", Some(&bob)).status, 401);
    assert!(htpasswd(&file, "bob", "other"));
    hangup(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get(&server, "/dist/small.txt", Some(&bob)).status != 200 {
        assert!(std::time::Instant::now() < deadline, "bob never let in");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(get(&server, "/dist/small.txt", Some(&ann)).status, 401);
    // A broken file keeps the credentials in force.
    std::fs::write(&file, "bob:plaintext\n").unwrap();
    hangup(&server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.log().iter().any(|l| l.contains("stay in force")) {
        assert!(std::time::Instant::now() < deadline, "{:?}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(get(&server, "/dist/small.txt", Some(&bob)).status, 200);
}

#[test]
fn a_bad_auth_file_is_refused_at_start_naming_the_line() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    let file = root.path().join("auth");
    std::fs::write(&file, "# users\nann:$apr1$abc$def\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .arg("--root")
        .arg(root.path())
        .args(["serve", "--port", "0", "--auth-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2:") && err.contains("htpasswd -B"), "{err}");
}

/// A CARGO_HOME where crates-io is replaced by the registry `mirror`,
/// whose token cargo sends from `CARGO_REGISTRIES_MIRROR_TOKEN`. Without
/// `global-credential-providers`, cargo (1.95) refuses with "authenticated
/// registries require a credential-provider to be configured": for a
/// replaced crates-io it does not fall back on `cargo:token`.
fn cargo_home_with_registry(dir: &Path, index: &str) {
    write(
        &dir.join("config.toml"),
        &format!(
            "[registries.mirror]\nindex = \"{index}\"\n\n\
             [source.crates-io]\nreplace-with = \"mirror\"\n\n\
             [registry]\nglobal-credential-providers = [\"cargo:token\"]\n\n\
             [net]\nretry = 0\n\n[http]\ntimeout = 20\n"
        ),
    );
}

#[test]
fn cargo_with_a_token_fetches_from_an_auth_required_mirror_and_without_is_refused() {
    let Some(bin) = require_client("cargo") else {
        return;
    };
    let t = crates_tree();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    if !htpasswd(&file, USER, PASSWORD) {
        return;
    }
    let server = ServeProcess::start(&t.root, &["--auth-file", file.to_str().unwrap()]);
    let index = format!("sparse+{}", server.url("/index/"));

    let home = dir.path().join("home");
    let proj = dir.path().join("project");
    project(&proj);
    cargo_home_with_registry(&home, &index);

    let refused = cargo(&bin, &proj, &home, "sparse", &["generate-lockfile"]);
    assert!(
        !refused.status.success(),
        "cargo without a token got through"
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("401") || err.contains("token") || err.contains("authenticat"),
        "{err}"
    );

    let with_token = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.current_dir(&proj)
            .args(args)
            .env("CARGO_HOME", &home)
            .env("CARGO_TARGET_DIR", proj.join("target"))
            .env(
                "CARGO_REGISTRIES_MIRROR_TOKEN",
                format!("{USER}:{PASSWORD}"),
            )
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS");
        for var in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.output().unwrap()
    };
    ok(
        "cargo generate-lockfile with a token",
        with_token(&["generate-lockfile"]),
    );
    ok("cargo fetch with a token", with_token(&["fetch"]));
    ok("cargo build --offline", with_token(&["build", "--offline"]));
    let lock = std::fs::read_to_string(proj.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"leaf\"\nversion = \"1.1.0\""),
        "{lock}"
    );
}

/// The clients' credential, fit for a URL's user information.
const CLIENT: &str = "client";
const CLIENT_PASSWORD: &str = "Client-pw1";

/// `mirror serve --auth-file` (holding [`CLIENT`]) with `upstream` args;
/// the server and `http://client:…@ADDR`.
fn authed_server(root: &Path, dir: &Path, upstream: &[&str]) -> Option<(ServeProcess, String)> {
    let file = dir.join("htpasswd");
    if !htpasswd(&file, CLIENT, CLIENT_PASSWORD) {
        return None;
    }
    let mut args = vec!["--auth-file", file.to_str().unwrap()];
    args.extend_from_slice(upstream);
    let server = ServeProcess::start(root, &args);
    let base = format!("http://{CLIENT}:{CLIENT_PASSWORD}@{}", server.addr);
    Some((server, base))
}

/// rustup sends the credentials of `RUSTUP_UPDATE_ROOT`'s URL.
#[test]
fn real_rustup_self_updates_with_credentials_in_the_url() {
    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let host = crate::support::dist::host_triple();
    let real = std::fs::read(&rustup).unwrap();
    let up = crate::rustup::newer_rustup_upstream(&real, &host);
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Some((server, base)) = authed_server(
        root.path(),
        dir.path(),
        &["--upstream-rustup", &up.url("rustup")],
    ) else {
        return;
    };
    assert_eq!(
        get(&server, "/rustup/release-stable.toml", None).status,
        401
    );
    crate::rustup::self_update(&rustup, &format!("{base}/rustup"), &real);
}

/// pacman (libcurl) sends the credentials of its `Server =` URL.
#[test]
fn real_pacman_syncs_with_credentials_in_the_url() {
    let Some(clients) = crate::arch::pacman_clients() else {
        return;
    };
    let up = crate::support::upstream::Upstream::start();
    let mut pkgs = crate::arch::two_packages();
    pkgs.push(crate::support::arch::Pkg::new("epochal", "2:0.5-1"));
    let repo = crate::support::arch::publish(&up, "m", "core", &pkgs);
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Some((_server, base)) =
        authed_server(root.path(), dir.path(), &["--upstream-arch", &up.url("m")])
    else {
        return;
    };
    crate::arch::pacman_round(&clients, &base, &repo);
}

/// rebar3 (Erlang's httpc) sends the credentials of `HEX_CDN`'s URL.
#[test]
fn real_rebar3_fetches_with_credentials_in_the_url() {
    use crate::hex::{rebar3, rebar3_home, rebar_project};
    let Some(bin) = require_client("rebar3") else {
        return;
    };
    let up = crate::support::upstream::Upstream::start();
    crate::support::hex::HexRepo::sample().publish(&up);
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hex.pub.pem");
    std::fs::write(&key, crate::support::hex::test_public_key_pem()).unwrap();
    let Some((_server, base)) = authed_server(
        root.path(),
        dir.path(),
        &[
            "--upstream-hex",
            &up.url("hex"),
            "--upstream-hex-public-key",
            key.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    rebar3_home(home.path());
    let project = home.path().join("proj");
    rebar_project(&project, "alpha", "~> 1.0");
    let out = rebar3(
        &bin,
        home.path(),
        &project,
        &format!("{base}/hex"),
        &["compile"],
    );
    assert!(
        out.status.success(),
        "rebar3 compile with credentials in HEX_CDN failed"
    );
    assert!(project.join("_build/default/lib/alpha/src").is_dir());
}

/// mix (Hex's installer) sends the credentials of `HEX_MIRROR`'s URL:
/// the access log names the user on its requests (the tree holds no
/// installs, so the install itself fails on a 404, not a 401).
#[test]
fn real_mix_sends_the_credentials_in_hex_mirror() {
    let Some(mix) = require_client("mix") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("hex")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let Some((_server, base)) = authed_server(
        root.path(),
        dir.path(),
        &["--access-log", log.to_str().unwrap()],
    ) else {
        return;
    };
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(mix)
        .args(["local.hex", "--force"])
        .current_dir(&home)
        .env("HOME", &home)
        .env("MIX_HOME", home.join("mix"))
        .env("HEX_MIRROR", format!("{base}/hex"))
        .env_remove("HEX_BUILDS_URL")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "nothing to install, yet it succeeded"
    );
    let lines = crate::serve_ops::lines_of(&log, 1);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!(" - {CLIENT} [")) && l.contains("\" 404 ")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("\" 401 ")), "{lines:#?}");
}

/// Listening beyond loopback without credentials or TLS says so, once.
#[test]
fn listening_beyond_loopback_without_auth_or_tls_warns() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    let open = ServeProcess::start(root.path(), &["--bind", "0.0.0.0"]);
    let local = ServeProcess::start(root.path(), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let warned = |s: &ServeProcess| {
        s.log()
            .iter()
            .filter(|l| l.contains("with neither --auth-file nor TLS"))
            .count()
    };
    while warned(&open) == 0 {
        assert!(std::time::Instant::now() < deadline, "{:?}", open.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(warned(&open), 1);
    assert_eq!(get(&local, "/health", None).status, 200);
    assert_eq!(warned(&local), 0, "{:?}", local.log());
}

/// git (smart HTTP) sends the credentials of the index URL; without them
/// it is refused.
#[test]
fn git_reads_the_index_with_credentials_in_the_url() {
    let t = crates_tree();
    let dir = tempfile::tempdir().unwrap();
    let Some((server, base)) = authed_server(&t.root, dir.path(), &[]) else {
        return;
    };
    let ls_remote = |url: &str| {
        Command::new("git")
            .args(["ls-remote", url, "master"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env_remove("GIT_DIR")
            .output()
            .unwrap()
    };
    let refused = ls_remote(&server.url("/git/crates.io-index"));
    assert!(
        !refused.status.success(),
        "git read the index without credentials"
    );
    let out = ls_remote(&format!("{base}/git/crates.io-index"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/master"));
}

/// rustup installs a toolchain with the credentials in
/// `RUSTUP_DIST_SERVER`'s URL (a minimal stable made by `toolchain
/// download` and `unpack`, as the landing page advises for it).
#[test]
fn real_rustup_installs_a_toolchain_with_credentials_in_the_url() {
    use crate::support::dist::{host_triple, publish, STABLE};
    let Some(rustup) = require_client("rustup") else {
        return;
    };
    let host = host_triple();
    let up = crate::support::upstream::Upstream::start();
    publish(&up, &STABLE, &[host.as_str()]);
    let online = tempfile::tempdir().unwrap();
    let archive = online.path().join("toolchain.tar.gz");
    let archive = archive.to_str().unwrap();
    let download = [
        "download",
        "pack",
        "-s",
        "stable",
        "-t",
        &host,
        "--profile",
        "minimal",
        "--archive",
        archive,
    ];
    crate::rustup::ok(&crate::toolchain::tc(online.path(), &up, &download));
    let offline = tempfile::tempdir().unwrap();
    let unpack = ["unpack", "--archive", archive];
    crate::rustup::ok(&crate::toolchain::tc(offline.path(), &up, &unpack));
    let dir = tempfile::tempdir().unwrap();
    let Some((_server, base)) = authed_server(offline.path(), dir.path(), &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::support::run_logged(
            Command::new(&rustup)
                .args(args)
                .env("RUSTUP_HOME", home.path().join("rustup"))
                .env("CARGO_HOME", home.path().join("cargo"))
                .env("RUSTUP_DIST_SERVER", &base)
                .env("RUSTUP_UPDATE_ROOT", format!("{base}/rustup"))
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC")
                .env_remove("CARGO"),
            &format!("rustup {args:?}"),
        )
    };
    let install = [
        "toolchain",
        "install",
        "stable",
        "--profile",
        "minimal",
        "--no-self-update",
    ];
    assert!(
        run(&install).status.success(),
        "rustup toolchain install failed"
    );
    let out = run(&["run", "stable", "rustc", "-V"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "rustc 1.99.1 (fixture)"
    );
}
