//! A real S3 server for the publish tests: `s3s-fs` (installed by
//! `.ci/run` from crates.io, pinned) over a temporary directory, started
//! twice on that directory: once with credentials, for `mirror publish`
//! (signed requests), and once without, as the bucket's public read
//! endpoint that cargo and the other readers use (s3s-fs answers unsigned
//! requests only when it has no credentials). Objects are written to a
//! temporary file and renamed, so both see whole objects only.
//!
//! The signed server logs every request it routes (`RUST_LOG=s3s::ops=debug`):
//! [`S3Server::requests`] counts them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key of the signed server.
pub const ACCESS_KEY: &str = "mirror-test-key";
/// Its secret.
pub const SECRET_KEY: &str = "mirror-test-secret-0123456789";

/// The two processes and their directory.
pub struct S3Server {
    pub tmp: tempfile::TempDir,
    /// The directory holding the buckets.
    pub data: PathBuf,
    signed: Child,
    public: Child,
    /// `http://127.0.0.1:PORT` of the signed server.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT` of the unsigned one.
    pub public_endpoint: String,
    /// Address of the signed server (to stop and start it).
    pub signed_addr: SocketAddr,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "s3s-fs exited ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "s3s-fs is not listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl S3Server {
    /// Start both servers with bucket `bucket`; `None` (skipped, with a
    /// message) when `s3s-fs` is not installed, a failure under `CI=true`.
    pub fn start(bucket: &str) -> Option<S3Server> {
        let bin = crate::rustup::require_client("s3s-fs")?;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join(bucket)).unwrap();
        let log = tmp.path().join("signed.log");
        let spawn = |port: u16, auth: bool, log: &Path| {
            let mut cmd = Command::new(&bin);
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
            if auth {
                cmd.args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]);
            }
            let out = std::fs::File::create(log).unwrap();
            // Only the signed server logs its routes: the readers' requests
            // are many and need no count.
            let filter = if auth { "s3s::ops=debug" } else { "error" };
            cmd.arg(&data)
                .env("RUST_LOG", filter)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start s3s-fs")
        };
        let (p1, p2) = (free_port(), free_port());
        let mut signed = spawn(p1, true, &log);
        let public_log = tmp.path().join("public.log");
        let mut public = spawn(p2, false, &public_log);
        let signed_addr: SocketAddr = format!("127.0.0.1:{p1}").parse().unwrap();
        wait_listening(signed_addr, &mut signed, &log);
        wait_listening(
            format!("127.0.0.1:{p2}").parse().unwrap(),
            &mut public,
            &public_log,
        );
        Some(S3Server {
            data,
            signed,
            public,
            endpoint: format!("http://127.0.0.1:{p1}"),
            public_endpoint: format!("http://127.0.0.1:{p2}"),
            signed_addr,
            log,
            tmp,
        })
    }

    /// Requests the signed server has routed so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("resolved route")
            .count()
    }

    /// The operations it routed so far, in order: (`PutObject`, key).
    pub fn operations(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.split("resolved route, op: ")
            .skip(1)
            .map(|chunk| {
                let line = chunk.lines().next().unwrap_or_default();
                let op = line.split(',').next().unwrap_or_default().to_owned();
                let key = line
                    .split_once("key: \"")
                    .and_then(|(_, k)| k.split_once('"'))
                    .map_or(String::new(), |(k, _)| k.to_owned());
                (op, key)
            })
            .collect()
    }

    /// Stop the signed server (the store "unreachable").
    pub fn stop_signed(&mut self) {
        let _ = self.signed.kill();
        let _ = self.signed.wait();
    }

    /// `mirror publish` with the signed server's credentials and no other
    /// `AWS_*` variable, the unsigned server as its public URL.
    pub fn publish(&self, root: &Path, to: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
        cmd.arg("publish")
            .arg("--root")
            .arg(root)
            .args(["--to", to, "--endpoint", &self.endpoint])
            .arg("--public-url")
            .arg(format!(
                "{}/{}",
                self.public_endpoint,
                to.trim_start_matches("s3://")
            ))
            .args(extra);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("HOME", self.tmp.path())
            .env("MIRROR_RETRY_DELAY_MS", "50");
        cmd
    }

    /// GET `path` (below the bucket's public URL, as given, unencoded)
    /// from the unsigned server: (status, body).
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let addr: SocketAddr = self
            .public_endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let r = crate::crates_serve::request(addr, "GET", path, &[]);
        (r.status, r.body)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        for c in [&mut self.signed, &mut self.public] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
