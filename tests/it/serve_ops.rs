//! `mirror serve` for its administrator: the access log (`--access-log`,
//! `--log-format`, SIGHUP) and Prometheus `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::crates_serve::{request, Raw};
use crate::support::rustup::{init_bytes, init_path, publish};
use crate::support::serve_process::ServeProcess;
use crate::support::upstream::Upstream;

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A tree holding `dist/small.txt`.
fn tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small file\n").unwrap();
    root
}

/// The lines of `path` once it holds at least `n` (waiting up to 20 s).
pub(crate) fn lines_of(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n || Instant::now() > deadline {
            assert!(
                lines.len() >= n,
                "expected {n} lines in {path:?}: {lines:#?}"
            );
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGHUP to the server (logrotate's signal).
pub(crate) fn hangup(server: &ServeProcess) {
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
}

fn get(server: &ServeProcess, target: &str, headers: &[(&str, &str)]) -> Raw {
    request(server.addr, "GET", target, headers)
}

#[test]
fn access_log_has_a_combined_line_for_hits_misses_404s_and_ranges() {
    let up = Upstream::start();
    publish(&up, &["1.28.2"], &[TARGET]);
    let root = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("access.log");
    let server = ServeProcess::start(
        root.path(),
        &[
            "--upstream-rustup",
            &up.url("rustup"),
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    let path = format!("/{}", init_path("1.28.2", TARGET));
    let len = init_bytes("1.28.2", TARGET).len();
    let hostile = "evil\" \"forged\\ \u{ff}";
    assert_eq!(
        get(&server, &path, &[("User-Agent", "rustup/1.28.2")]).status,
        200
    );
    assert_eq!(get(&server, &path, &[("Referer", "http://r/")]).status, 200);
    assert_eq!(
        get(
            &server,
            &path,
            &[("Range", "bytes=0-9"), ("User-Agent", hostile)]
        )
        .status,
        206
    );
    assert_eq!(get(&server, "/dist/nothing.txt", &[]).status, 404);
    assert_eq!(
        get(&server, "/rustup/archive/9.9.9/x/rustup-init", &[]).status,
        404
    );

    let lines = lines_of(&log, 5);
    let addr = server.addr;
    let re_time = |l: &str| {
        // 127.0.0.1 - - [03/Dec/2026:19:02:26 +0000] "…
        let open = l.find('[').unwrap();
        let close = l.find(']').unwrap();
        let t = &l[open + 1..close];
        assert_eq!(t.len(), 26, "{l}");
        assert!(t.ends_with(" +0000"), "{l}");
    };
    for l in &lines {
        assert!(l.starts_with("127.0.0.1 - - ["), "{l}");
        re_time(l);
    }
    let fields = |l: &str| -> Vec<String> { l.rsplit(' ').map(str::to_owned).collect() };
    // Outcome and duration close each line.
    let miss = &lines[0];
    assert!(
        miss.contains(&format!(
            "\"GET {path} HTTP/1.1\" 200 {len} \"-\" \"rustup/1.28.2\" "
        )),
        "{miss}"
    );
    assert_eq!(fields(miss)[0], "miss", "{miss}");
    assert!(fields(miss)[1].parse::<f64>().is_ok(), "{miss}");
    let hit = &lines[1];
    assert!(
        hit.contains(&format!("\" 200 {len} \"http://r/\" \"-\" ")),
        "{hit}"
    );
    assert_eq!(fields(hit)[0], "hit", "{hit}");
    let range = &lines[2];
    assert!(range.contains("\" 206 10 \"-\" "), "{range}");
    assert!(
        range.contains("\"evil\\x22 \\x22forged\\x5C \\xC3\\xBF\""),
        "the user agent's quotes, backslash and non-ASCII are escaped: {range}"
    );
    assert_eq!(range.matches('"').count(), 6, "{range}");
    let not_found = &lines[3];
    assert!(
        not_found.contains("\"GET /dist/nothing.txt HTTP/1.1\" 404 "),
        "{not_found}"
    );
    assert_eq!(
        fields(not_found)[0],
        "-",
        "no upstream for /dist: {not_found}"
    );
    let upstream_404 = &lines[4];
    assert!(upstream_404.contains("\" 404 "), "{upstream_404}");
    assert_eq!(fields(upstream_404)[0], "miss", "{upstream_404}");
    drop(server);
    let _ = addr;
}

#[test]
fn json_access_log_is_reopened_on_sighup() {
    let root = tree();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("access.json");
    let server = ServeProcess::start(
        root.path(),
        &[
            "--access-log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ],
    );
    assert_eq!(get(&server, "/dist/small.txt?x=1", &[]).status, 200);
    let first = lines_of(&log, 1);
    let v: serde_json::Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/dist/small.txt?x=1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], 11);
    assert_eq!(v["client"], "127.0.0.1");
    assert_eq!(v["cache"], "-");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert!(v["duration"].as_f64().unwrap() >= 0.0);
    assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");

    // logrotate: rename, then SIGHUP.
    let rotated = logs.path().join("access.json.1");
    std::fs::rename(&log, &rotated).unwrap();
    hangup(&server);
    // The writer reopens before its next line; requests until one lands
    // in the new file (the signal is asynchronous).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.exists() {
        assert!(Instant::now() < deadline, "the log was not reopened");
        assert_eq!(get(&server, "/dist/nothing", &[]).status, 404);
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = lines_of(&log, 1);
    let v: serde_json::Value = serde_json::from_str(&after[0]).unwrap();
    assert_eq!(v["status"], 404);
    assert_eq!(get(&server, "/health", &[]).status, 200, "still serving");
    assert_eq!(
        lines_of(&rotated, 1).len(),
        std::fs::read_to_string(&rotated).unwrap().lines().count()
    );
}

#[test]
fn an_access_log_nobody_reads_drops_lines_instead_of_stalling() {
    let root = tree();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("log.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // A reader that opens the pipe and never reads: once the pipe's
    // buffer is full, every write blocks.
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::File::open(reader_path).unwrap());
    let mut cmd = ServeProcess::command(root.path(), &["--access-log", fifo.to_str().unwrap()]);
    cmd.env("MIRROR_ACCESS_LOG_QUEUE", "4");
    let server = ServeProcess::spawn(cmd);
    let _held = reader.join().unwrap();
    let long = format!("/dist/small.txt?{}", "q".repeat(2000));
    for _ in 0..300 {
        assert_eq!(get(&server, &long, &[]).status, 200);
    }
    let metrics = get(&server, "/metrics", &[]).text();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mirror_access_log_dropped_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(dropped > 0, "{metrics}");
}

/// A python3 that has `prometheus_client` (Debian's
/// python3-prometheus-client), if any.
fn python_with_prometheus() -> Option<PathBuf> {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import prometheus_client.parser"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(PathBuf::from(python));
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "python3 with prometheus_client (python3-prometheus-client) is required in CI"
    );
    eprintln!("\n!!! SKIPPED: python3-prometheus-client not installed !!!\n");
    None
}

/// `(name, labels, value)` of every sample, as prometheus_client parses
/// `text`.
fn parse_metrics(python: &Path, text: &str) -> Vec<(String, serde_json::Value, f64)> {
    use std::io::Write as _;
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value, fam.type])
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, serde_json::Value, f64, String)> =
        serde_json::from_slice(&out.stdout).unwrap();
    v.into_iter().map(|(n, l, v, _)| (n, l, v)).collect()
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_was_served() {
    let Some(python) = python_with_prometheus() else {
        return;
    };
    let up = Upstream::start();
    publish(&up, &["1.28.2"], &[TARGET]);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small file\n").unwrap();
    let server = ServeProcess::start(root.path(), &["--upstream-rustup", &up.url("rustup")]);
    for _ in 0..3 {
        assert_eq!(get(&server, "/dist/small.txt", &[]).status, 200);
    }
    assert_eq!(get(&server, "/dist/missing", &[]).status, 404);
    let path = format!("/{}", init_path("1.28.2", TARGET));
    assert_eq!(get(&server, &path, &[]).status, 200);
    assert_eq!(get(&server, &path, &[]).status, 200);
    let r = get(&server, "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    let samples = parse_metrics(&python, &r.text());
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {samples:#?}"))
            .2
    };
    assert_eq!(
        value(
            "mirror_http_requests_total",
            &[("ecosystem", "toolchain"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "mirror_http_requests_total",
            &[("ecosystem", "toolchain"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "mirror_http_requests_total",
            &[("ecosystem", "rustup"), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "mirror_http_response_bytes_total",
            &[("ecosystem", "toolchain")]
        ),
        3.0 * 11.0 + get(&server, "/dist/missing", &[]).body.len() as f64
    );
    assert_eq!(
        value(
            "mirror_http_request_duration_seconds_count",
            &[("ecosystem", "toolchain")]
        ),
        4.0
    );
    assert_eq!(
        value(
            "mirror_http_request_duration_seconds_bucket",
            &[("ecosystem", "toolchain"), ("le", "+Inf")]
        ),
        4.0
    );
    assert_eq!(value("mirror_cache_misses_total", &[]), 1.0);
    assert_eq!(value("mirror_cache_hits_total", &[]), 1.0);
    assert_eq!(value("mirror_cache_joins_total", &[]), 0.0);
    assert!(value("mirror_cache_upstream_bytes_total", &[]) > 0.0);
    assert_eq!(value("mirror_git_upload_packs_running", &[]), 0.0);
    // The scrape's own connection is open.
    assert!(value("mirror_http_open_connections", &[]) >= 1.0);
    assert_eq!(value("mirror_access_log_dropped_total", &[]), 0.0);
    // `/stats` stays.
    assert_eq!(get(&server, "/stats", &[]).status, 200);
}

/// A tree holding: stable 1.99.1 with the minimal profile only for the
/// host (and rust-std for wasm32), rustup 1.28.2, three crates of a
/// partial mirror, two Hex packages, an Arch `core` with two packages,
/// and unfinished or hidden files that must never be listed.
fn held_tree() -> tempfile::TempDir {
    use crate::support::dist::{publish as publish_dist, STABLE};
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let up = Upstream::start();
    let host = TARGET;
    let cross = "wasm32-unknown-unknown";
    publish_dist(&up, &STABLE, &[host, cross]);
    let copy = |path: &str| {
        let bytes = up
            .get(path)
            .unwrap_or_else(|| panic!("fixture lacks {path}"));
        let dest = r.join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    };
    copy(&STABLE.manifest_path());
    copy("dist/channel-rust-stable.toml");
    for (pkg, t) in [
        ("rustc", host),
        ("cargo", host),
        ("rust-std", host),
        ("rust-std", cross),
    ] {
        copy(&STABLE.file_path(pkg, t, "xz"));
    }
    let dated = r.join("dist").join(STABLE.date);
    std::fs::write(
        dated.join("rust-docs-1.99.1-x86_64-unknown-linux-gnu.tar.xz.partial"),
        b"x",
    )
    .unwrap();
    std::fs::write(dated.join(".rustc.tmp.1.2.abc"), b"x").unwrap();
    std::fs::write(dated.join(".mirror-partial"), b"x").unwrap();

    publish(&up, &["1.28.2"], &[TARGET]);
    copy(&init_path("1.28.2", TARGET));
    let dist_init = r.join(format!("rustup/dist/{TARGET}/rustup-init"));
    std::fs::create_dir_all(dist_init.parent().unwrap()).unwrap();
    std::fs::write(dist_init, init_bytes("1.28.2", TARGET)).unwrap();
    copy("rustup/release-stable.toml");

    for (name, v) in [("serde", "1.0.0"), ("serde", "1.0.1"), ("leaf", "1.1.0")] {
        let p = r
            .join("crates")
            .join(mirror::eco::crates::layout::crate_rel_path(name, v));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"crate").unwrap();
    }
    std::fs::write(r.join("crates/PARTIAL"), b"").unwrap();
    std::fs::create_dir_all(r.join("hex/packages")).unwrap();
    std::fs::create_dir_all(r.join("hex/tarballs")).unwrap();
    for name in ["alpha", "beta"] {
        std::fs::write(r.join("hex/packages").join(name), b"x").unwrap();
        std::fs::write(
            r.join("hex/tarballs").join(format!("{name}-1.0.0.tar")),
            b"x",
        )
        .unwrap();
    }
    let core = r.join("archlinux/core/os/x86_64");
    std::fs::create_dir_all(&core).unwrap();
    for f in [
        "core.db",
        "hello-1.0-1-x86_64.pkg.tar.zst",
        "hello-1.0-1-x86_64.pkg.tar.zst.sig",
        "world-2.0-1-x86_64.pkg.tar.zst",
    ] {
        std::fs::write(core.join(f), b"x").unwrap();
    }
    root
}

/// Headless Chromium's DOM of `url`, and a screenshot of it in `shot`
/// (kept in `$MIRROR_KEEP_SCREENSHOT` when set, to look at).
pub(crate) fn chromium_dom(url: &str, shot: &Path) -> Option<String> {
    let chromium = crate::rustup::require_client("chromium")?;
    let profile = tempfile::tempdir().unwrap();
    let browse = |extra: &str| {
        crate::support::run_logged(
            Command::new(&chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1100,1600",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(extra)
                .arg(url),
            "chromium",
        )
    };
    let out = browse("--dump-dom");
    assert!(out.status.success(), "chromium failed");
    let shot_out = browse(&format!("--screenshot={}", shot.display()));
    assert!(shot_out.status.success(), "chromium screenshot failed");
    let png = std::fs::read(shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    if let Some(dir) = std::env::var_os("MIRROR_KEEP_SCREENSHOT") {
        let name = shot.file_name().unwrap();
        std::fs::copy(shot, Path::new(&dir).join(name)).unwrap();
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn landing_page_lists_what_is_held_and_advises_the_profile_held() {
    let root = held_tree();
    let server = ServeProcess::start(root.path(), &[]);
    let base = format!("http://{}", server.addr);
    let shots = tempfile::tempdir().unwrap();
    let Some(dom) = chromium_dom(&server.url("/"), &shots.path().join("landing.png")) else {
        return;
    };
    // chromium's DOM escapes `&` and friends in text; the commands have none.
    for want in [
        format!("<title>mirror at {base}</title>"),
        "<style>".to_string(),
        // The toolchain held, its version, profile and targets.
        "<code>stable</code>".to_string(),
        "1.99.1".to_string(),
        "<td>minimal</td>".to_string(),
        format!("<span class=\"tag\">{TARGET}</span>"),
        "<span class=\"tag\">wasm32-unknown-unknown</span>".to_string(),
        // Advice that works for a minimal-only tree.
        format!(
            "export RUSTUP_DIST_SERVER={base}\nrustup toolchain install stable --profile minimal"
        ),
        "Only the <b>minimal</b> profile is held".to_string(),
        "the default profile also needs rust-docs, which".to_string(),
        // rustup-init against the mirror.
        format!("curl -fO {base}/rustup/dist/{TARGET}/rustup-init"),
        format!("RUSTUP_DIST_SERVER={base} RUSTUP_UPDATE_ROOT={base}/rustup \\"),
        "./rustup-init -y --profile minimal --default-toolchain stable".to_string(),
        "<td>1.28.2 <span class=\"tag\">current</span></td>".to_string(),
        // Crates, Hex, Arch.
        "3 crate files held".to_string(),
        "<b>partial</b>".to_string(),
        format!("registry = \"sparse+{base}/index/\""),
        "2 packages, 2 release tarballs held".to_string(),
        "<a href=\"/archlinux/core/os/x86_64/\">core</a></td><td>x86_64</td><td class=\"n\">2</td>"
            .to_string(),
        format!("Server = {base}/archlinux/$repo/os/$arch"),
        "<a href=\"/dist/\">/dist/</a>".to_string(),
    ] {
        assert!(dom.contains(&want), "the page lacks {want:?}:\n{dom}");
    }
    assert!(
        !dom.contains("rustup toolchain install stable\n")
            && !dom.contains("rustup toolchain install stable<"),
        "plain install advised for a minimal-only tree:\n{dom}"
    );
}

#[test]
fn browsable_trees_are_listed_without_hidden_or_unfinished_files() {
    let root = held_tree();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("dist/escape")).unwrap();
    let server = ServeProcess::start(root.path(), &[]);

    let r = get(&server, "/dist", &[]);
    assert_eq!(r.status, 301, "{}", r.head);
    assert_eq!(r.header("location"), Some("/dist/"));
    let r = get(&server, "/dist/", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.text().contains("href=\"2026-10-15/\""), "{}", r.text());
    assert!(
        r.text().contains("href=\"channel-rust-stable.toml\""),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains("escape"),
        "a symlink out of the root is listed: {}",
        r.text()
    );
    assert_eq!(get(&server, "/dist/escape/", &[]).status, 404);
    let head = request(server.addr, "HEAD", "/dist/", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let dated = get(&server, "/dist/2026-10-15/", &[]).text();
    assert!(
        dated.contains("rustc-1.99.1-x86_64-unknown-linux-gnu.tar.xz"),
        "{dated}"
    );
    assert!(dated.contains("href=\"../\""), "{dated}");
    for hidden in [".partial", ".tmp", "mirror-partial"] {
        assert!(!dated.contains(hidden), "{hidden} listed: {dated}");
    }
    let arch = get(&server, "/archlinux/core/os/x86_64/", &[]).text();
    assert!(arch.contains("world-2.0-1-x86_64.pkg.tar.zst"), "{arch}");
    assert!(get(&server, "/rustup/", &[])
        .text()
        .contains("href=\"archive/\""));
    // Not browsable, hidden, or not there.
    for (path, status) in [
        ("/crates/", 404),
        ("/hex/", 404),
        ("/dist/2026-10-15/.mirror-partial/", 404),
        ("/dist/nothing/", 404),
        ("/dist/%2e%2e/", 400),
    ] {
        assert_eq!(get(&server, path, &[]).status, status, "{path}");
    }
    // As a browser shows it.
    let shots = tempfile::tempdir().unwrap();
    let Some(dom) = chromium_dom(
        &server.url("/dist/2026-10-15/"),
        &shots.path().join("listing.png"),
    ) else {
        return;
    };
    assert!(dom.contains("<h1>Index of /dist/2026-10-15/</h1>"), "{dom}");
    assert!(
        dom.contains("cargo-1.99.1-x86_64-unknown-linux-gnu.tar.xz"),
        "{dom}"
    );
}

/// A client that goes away before its answer is logged as 499, as nginx
/// logs it.
#[test]
fn a_client_gone_before_its_answer_is_logged_as_499() {
    use std::io::Write as _;
    let up = Upstream::start();
    publish(&up, &["1.28.2"], &[TARGET]);
    up.set_delay(Duration::from_secs(3));
    let root = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("access.log");
    let server = ServeProcess::start(
        root.path(),
        &[
            "--upstream-rustup",
            &up.url("rustup"),
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    let path = format!("/{}", init_path("1.28.2", TARGET));
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    let lines = lines_of(&log, 1);
    assert!(lines[0].contains("\" 499 0 "), "{lines:#?}");
}
