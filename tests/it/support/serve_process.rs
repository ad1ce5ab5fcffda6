//! `mirror serve` as a child process, as in production: `--port 0`, the
//! bound address read from its stderr; killed on drop. What it logs is
//! kept (and echoed), for tests that look for a line or for a panic.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running `mirror serve`.
pub struct ServeProcess {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// `mirror --root ROOT serve --port 0 ARGS…` (no retry delays).
    pub fn start(root: &Path, args: &[&str]) -> ServeProcess {
        ServeProcess::spawn(ServeProcess::command(root, args))
    }

    /// The command [`ServeProcess::start`] runs, to add to (environment)
    /// before [`ServeProcess::spawn`].
    pub fn command(root: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
        ServeProcess::add_args(&mut cmd, root, args);
        cmd
    }

    /// `WRAPPER… mirror --root ROOT serve --port 0 ARGS…`: the server run
    /// by another program (`prlimit …`, `setpriv …`) given the binary at
    /// `bin`.
    pub fn wrapped(wrapper: &[&OsStr], bin: &Path, root: &Path, args: &[&str]) -> Command {
        let (program, rest) = wrapper.split_first().expect("a wrapper program");
        let mut cmd = Command::new(program);
        cmd.args(rest).arg(bin);
        ServeProcess::add_args(&mut cmd, root, args);
        cmd
    }

    fn add_args(cmd: &mut Command, root: &Path, args: &[&str]) {
        cmd.arg("--root")
            .arg(root)
            .args(["serve", "--port", "0"])
            .args(args)
            .env("MIRROR_RETRY_DELAY_MS", "0");
    }

    /// Start `cmd` (from [`ServeProcess::command`] or
    /// [`ServeProcess::wrapped`]) and wait for the address it announces
    /// ("serving ROOT on http(s)://ADDR/ (Ctrl-C stops)").
    pub fn spawn(mut cmd: Command) -> ServeProcess {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("run mirror serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut before = Vec::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mirror serve announced no address: {before:#?}");
            }
            let addr = line
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse().ok());
            match addr {
                Some(addr) if line.starts_with("serving ") => break addr,
                _ => before.push(line),
            }
        };
        // Keep draining stderr (the cache logs there) so it never blocks.
        let log = Arc::new(Mutex::new(before));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("mirror serve: {line}");
                sink.lock().unwrap().push(line);
            }
        });
        ServeProcess { child, addr, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The lines it logged after its address, so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
