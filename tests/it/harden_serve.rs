//! `mirror serve` against slow clients under a low open-file limit, roots
//! it must not serve, and TLS files it must warn about or refuse. The
//! server runs as its own process, as in production; the slow-client tests
//! lower both its soft and hard open-file limits with `prlimit` (the server
//! raises the soft one to the hard one at start).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Stalled connections the tests hold, above the 256 descriptors the
/// server may open.
const STALLED: usize = 300;

/// The open-file limit (soft and hard) the server runs under.
const NOFILE: &str = "--nofile=256:256";

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

/// A root with a small and a 64 MiB file.
fn tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small\n").unwrap();
    std::fs::write(root.path().join("dist/big.bin"), vec![7u8; 64 << 20]).unwrap();
    root
}

/// A copy of `file` in `dir` with `mode`.
fn copy_with_mode(file: &Path, dir: &Path, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(file.file_name().unwrap());
    std::fs::copy(file, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    to
}

/// A `mirror serve` child; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// `[prlimit --nofile=256:256] mirror --root ROOT serve --port 0 ARGS…`.
    fn start(root: &Path, low_fd_limit: bool, args: &[&str]) -> Server {
        let mirror = env!("CARGO_BIN_EXE_mirror");
        let mut cmd = if low_fd_limit {
            let prlimit = crate::rustup::require_client("prlimit")
                .expect("prlimit (util-linux) runs the server under a low open-file limit");
            let mut c = Command::new(prlimit);
            c.arg(NOFILE).arg(mirror);
            c
        } else {
            Command::new(mirror)
        };
        let mut child = cmd
            .arg("--root")
            .arg(root)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mirror serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        // "serving ROOT on http(s)://127.0.0.1:PORT/ (Ctrl-C stops)"
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("mirror serve: {line}");
            }
        });
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connections that send `opening` and stall, reopened as the server
/// closes them (as a slow-loris client does) until [`Stallers::stop`].
/// They come from 127.0.0.2, another host as the server sees it.
struct Stallers {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<TcpStream>>>,
}

impl Stallers {
    fn start(addr: SocketAddr, opening: &'static [u8]) -> Stallers {
        let running = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = Arc::clone(&running);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let open = || -> Option<TcpStream> {
                let tcp = rt.block_on(async {
                    let socket = tokio::net::TcpSocket::new_v4().ok()?;
                    socket.bind("127.0.0.2:0".parse().unwrap()).ok()?;
                    tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
                        .await
                        .ok()?
                        .ok()
                })?;
                let mut s = tcp.into_std().ok()?;
                s.set_nonblocking(false).ok()?;
                let _ = s.write_all(opening);
                s.set_nonblocking(true).ok()?;
                Some(s)
            };
            let mut held: Vec<Option<TcpStream>> = (0..STALLED).map(|_| open()).collect();
            let _ = ready_tx.send(());
            while flag.load(Ordering::Relaxed) {
                for slot in held.iter_mut() {
                    let closed = match slot {
                        Some(s) => {
                            let mut buf = [0u8; 512];
                            !matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                        }
                        None => true,
                    };
                    if closed {
                        *slot = open();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            held.into_iter().flatten().collect()
        });
        ready_rx.recv().unwrap();
        Stallers {
            running,
            thread: Some(thread),
        }
    }

    /// Stop reopening; the connections still open.
    fn stop(mut self) -> Vec<TcpStream> {
        self.running.store(false, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Stallers {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// `GET /health` on a fresh plain-http connection: answered 200?
fn health(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200") && out.ends_with(b"ok\n")
}

/// Each connection is closed by the server: a read ends (EOF or reset)
/// rather than waiting for data that never comes.
fn assert_all_closed(stalled: Vec<TcpStream>) {
    assert!(!stalled.is_empty());
    for mut s in stalled {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                // Whatever the server said before closing (a TLS alert).
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a stalled connection was left open: {e}"),
            }
        }
    }
}

/// The server's descriptors stay below its limit while 300 connections
/// that send half a request line stall: every `/health` is answered, and
/// the stalled ones are closed after `--header-timeout`.
#[test]
fn half_sent_requests_under_a_low_fd_limit_do_not_stop_health() {
    let root = tree();
    let server = Server::start(root.path(), true, &["--header-timeout", "2"]);
    let stallers = Stallers::start(server.addr, b"GET /dist/small.txt HTTP/1.1\r\nHost: ");
    for i in 0..10 {
        assert!(
            health(server.addr),
            "/health #{i} was not answered while clients stalled"
        );
    }
    assert_all_closed(stallers.stop());
    assert!(health(server.addr));
}

/// The same with TLS handshakes that stall after a partial record
/// header: every `/health` over https is answered, the handshakes are closed
/// after `--tls-handshake-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_under_a_low_fd_limit_do_not_stop_health() {
    let root = tree();
    let keys = tempfile::tempdir().unwrap();
    let key = copy_with_mode(&tls_dir().join("test-key.pem"), keys.path(), 0o600);
    let cert = tls_dir().join("test-cert.pem");
    let server = Server::start(
        root.path(),
        true,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-handshake-timeout",
            "2",
        ],
    );
    let addr = server.addr;
    let stallers = tokio::task::spawn_blocking(move || {
        Stallers::start(addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    })
    .await
    .unwrap();
    let ca = std::fs::read(tls_dir().join("test-ca.pem")).unwrap();
    let url = format!("https://{}/health", server.addr);
    for i in 0..10 {
        // A fresh connection each time.
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let answer = match client.get(&url).send().await {
            Ok(res) => res.text().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            answer.as_deref(),
            Ok("ok\n"),
            "/health #{i} over https while handshakes stalled"
        );
    }
    let stalled = tokio::task::spawn_blocking(move || stallers.stop())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || assert_all_closed(stalled))
        .await
        .unwrap();
}

/// A client that asks for 64 MiB and reads none of it is dropped after
/// `--send-timeout`: what it then reads ends short of the file.
#[test]
fn a_client_that_never_reads_is_dropped_after_the_send_timeout() {
    let root = tree();
    let server = Server::start(root.path(), true, &["--send-timeout", "1"]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /dist/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Not reading: the server's writes block once the socket buffers fill.
    std::thread::sleep(Duration::from_secs(6));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was left open after {got} bytes: {e}"),
        }
    }
    assert!(
        got < 64 << 20,
        "the whole file was sent to a client that read none of it for 6 s"
    );
    assert!(health(server.addr));
}

/// A keep-alive connection with no request is closed after
/// `--keepalive-timeout`, though the header timeout is longer.
#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout() {
    let root = tree();
    let server = Server::start(
        root.path(),
        false,
        &["--keepalive-timeout", "1", "--header-timeout", "600"],
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /dist/small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the idle connection was left open: {e}"),
        }
    }
    assert!(out.starts_with(b"HTTP/1.1 200"), "{out:?}");
    assert!(out.ends_with(b"small\n"));
}

/// Run `mirror ARGS…` with `env`; (exit success, stderr), killed (and the
/// test failed) if it runs past `limit` without printing "serving".
fn run_mirror(args: &[&OsStr], env: &[(&str, &OsStr)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("MIRROR_ROOT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
                if line.starts_with("serving") {
                    // Give warnings printed after the address a moment.
                    while let Ok(more) = rx.recv_timeout(Duration::from_millis(500)) {
                        text.push_str(&more);
                        text.push('\n');
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return (true, text);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                return (status.success(), text);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("mirror neither served nor exited: {text}");
                }
            }
        }
    }
}

/// `/`, a symlink to it, `MIRROR_ROOT=/`, the home directory and a
/// directory holding no mirror tree are refused, naming the path and
/// `--force-root`; with `--force-root` each is served.
#[test]
fn roots_that_would_expose_the_host_are_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("to-root");
    std::os::unix::fs::symlink("/", &link).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("dist")).unwrap();
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(plain.join("docs")).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let os = |s: &'static str| OsStr::new(s);
    type Case<'a> = (&'a str, Vec<&'a OsStr>, Vec<(&'a str, &'a OsStr)>);
    let cases: Vec<Case> = vec![
        ("/", vec![os("--root"), os("/")], vec![]),
        ("symlink to /", vec![os("--root"), link.as_os_str()], vec![]),
        ("MIRROR_ROOT=/", vec![], vec![("MIRROR_ROOT", os("/"))]),
        (
            "$HOME",
            vec![os("--root"), home.as_os_str()],
            vec![("HOME", home.as_os_str())],
        ),
        ("no tree", vec![os("--root"), plain.as_os_str()], vec![]),
        ("empty", vec![os("--root"), empty.as_os_str()], vec![]),
    ];
    for (name, root_args, env) in &cases {
        let mut args = root_args.clone();
        args.extend([os("serve"), os("--port"), os("0")]);
        let (served, text) = run_mirror(&args, env);
        assert!(!served, "{name}: served: {text}");
        assert!(
            text.contains("refusing to serve") && text.contains("--force-root"),
            "{name}: {text}"
        );
        let shown = match *name {
            "MIRROR_ROOT=/" | "/" => "/".to_owned(),
            _ => root_args[1].to_string_lossy().into_owned(),
        };
        assert!(text.contains(&format!("serve {shown}:")), "{name}: {text}");
        args.push(os("--force-root"));
        let (served, text) = run_mirror(&args, env);
        assert!(served, "{name} with --force-root: {text}");
    }
    // A pull-through cache may start from an empty root.
    let (served, text) = run_mirror(
        &[
            os("--root"),
            empty.as_os_str(),
            os("serve"),
            os("--port"),
            os("0"),
            os("--upstream-crates"),
            os("http://127.0.0.1:9/"),
        ],
        &[],
    );
    assert!(served, "{text}");
}

/// An expired, a not-yet-valid and a SHA-1 certificate, and a key others
/// can read, are each warned about at start; a key file that never ends
/// is refused at once.
#[test]
fn tls_files_are_checked_at_start() {
    let root = tree();
    let keys = tempfile::tempdir().unwrap();
    let open_key = keys.path().join("open");
    let closed_key = keys.path().join("closed");
    std::fs::create_dir_all(&open_key).unwrap();
    std::fs::create_dir_all(&closed_key).unwrap();
    let open_key = copy_with_mode(&tls_dir().join("warn-key.pem"), &open_key, 0o644);
    let closed_key = copy_with_mode(&tls_dir().join("warn-key.pem"), &closed_key, 0o600);
    let serve = |cert: &str, key: &Path| {
        let cert = tls_dir().join(cert);
        let args: Vec<&OsStr> = vec![
            "--root".as_ref(),
            root.path().as_os_str(),
            "serve".as_ref(),
            "--port".as_ref(),
            "0".as_ref(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ];
        run_mirror(&args, &[])
    };
    let warnings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("warning:"))
            .map(str::to_owned)
            .collect()
    };
    for (cert, expected) in [
        ("expired-cert.pem", "expired on"),
        ("future-cert.pem", "not valid before"),
        ("sha1-cert.pem", "SHA-1"),
    ] {
        let (served, text) = serve(cert, &closed_key);
        assert!(served, "{cert}: {text}");
        let w = warnings(&text);
        assert!(
            w.len() == 1 && w[0].contains(cert) && w[0].contains(expected),
            "{cert}: {text}"
        );
    }
    let (served, text) = serve("expired-cert.pem", &open_key);
    assert!(served, "{text}");
    assert!(
        warnings(&text)
            .iter()
            .any(|w| w.contains("readable by every user") && w.contains("chmod 600")),
        "{text}"
    );
    // A key path that never ends is refused, not read forever.
    let (served, text) = serve("expired-cert.pem", Path::new("/dev/zero"));
    assert!(!served, "{text}");
    assert!(
        text.contains("/dev/zero") && text.contains("at most 1 MiB"),
        "{text}"
    );
}

/// An HTTP/2 client that never opens its flow-control window is served
/// headers, then dropped after `--send-timeout`: its body read ends in an
/// error rather than waiting for ever.
#[tokio::test]
async fn an_http2_client_that_grants_no_window_is_dropped_after_the_send_timeout() {
    let root = tree();
    let server = Server::start(root.path(), false, &["--send-timeout", "1"]);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(0)
        .build()
        .unwrap();
    let res = client
        .get(format!("http://{}/dist/big.bin", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(60), res.bytes()).await;
    match body {
        Ok(Err(_)) => {}
        Ok(Ok(b)) => panic!("{} bytes came through a window of 0", b.len()),
        Err(_) => panic!("the stalled HTTP/2 stream was left open"),
    }
}

/// A request body that stops coming fails after `--body-timeout`: the
/// git upload-pack request below promises 1000 bytes and sends 10, and
/// its exchange still ends (git sees a cut request) instead of holding
/// the connection and a git process for ever.
#[test]
fn a_request_body_that_stops_coming_ends_after_the_body_timeout() {
    let t = crate::crates_serve::crates_tree();
    let server = Server::start(&t.root, false, &["--body-timeout", "1"]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(
        b"POST /git/crates.io-index/git-upload-pack HTTP/1.1\r\nHost: t\r\n\
Content-Type: application/x-git-upload-pack-request\r\nContent-Length: 1000\r\n\r\n0032want ",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // The chunked response's end.
                if out.ends_with(b"0\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the exchange was left open: {e}: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}
