//! The server under abuse: a thousand idle or half-sent connections, a
//! client that never reads, oversized headers, request smuggling. It must
//! stay up and keep answering everyone else. The server runs as its own
//! process (`mirror serve`), as in production.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::serve_process::ServeProcess;

struct Served {
    _process: ServeProcess,
    addr: SocketAddr,
    _root: tempfile::TempDir,
}

/// `mirror serve --port 0` over a tree with a small and a 16 MiB file.
fn serve() -> Served {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dist")).unwrap();
    std::fs::write(root.path().join("dist/small.txt"), b"small\n").unwrap();
    std::fs::write(root.path().join("dist/big.bin"), vec![7u8; 16 << 20]).unwrap();
    let process = ServeProcess::start(root.path(), &[]);
    Served {
        addr: process.addr,
        _process: process,
        _root: root,
    }
}

/// One request on a fresh connection; returns the status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn raw_all(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_thousand_idle_and_half_sent_connections_do_not_stop_service() {
    let served = serve();
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut s = match TcpStream::connect(served.addr) {
            Ok(s) => s,
            Err(e) => panic!("connection {i} refused: {e} (raise `ulimit -n`?)"),
        };
        // Half of them send part of a request line and stop (slowloris).
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /dist/small.txt HTTP/1.1\r\nHost: ");
        }
        held.push(s);
    }
    let (status, body) = get(served.addr, "/dist/small.txt");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, b"small\n");
    let (status, _) = get(served.addr, "/health");
    assert!(status.contains("200"), "{status}");
    drop(held);
}

#[test]
fn a_client_that_never_reads_does_not_hold_up_others() {
    let served = serve();
    let mut stuck = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(served.addr).unwrap();
        s.write_all(b"GET /dist/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        stuck.push(s); // never read
    }
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        let (status, body) = get(served.addr, "/dist/small.txt");
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"small\n");
    }
    drop(stuck);
}

#[test]
fn oversized_headers_and_smuggling_attempts_are_refused_and_the_server_stays_up() {
    let served = serve();
    // 1 MiB of header.
    let mut big = b"GET /dist/small.txt HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"\r\n\r\n");
    let status = raw(served.addr, &big);
    assert!(
        status.is_empty() || status.contains("431") || status.contains("400"),
        "{status:?}"
    );

    // Content-Length and Transfer-Encoding together: refused, not split
    // into two requests.
    let smuggle = b"GET /dist/small.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 44\r\n\
Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /.mirror/state.json HTTP/1.1\r\nHost: t\r\n\r\n";
    let answer = raw_all(served.addr, smuggle);
    assert!(
        !answer.contains("\"version\""),
        "a dot-file leaked: {answer}"
    );
    let responses = answer.matches("HTTP/1.1 ").count();
    assert!(
        responses <= 1,
        "the connection was not closed after an ambiguous request: {answer}"
    );

    // Junk that is not HTTP at all.
    let status = raw(
        served.addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(!status.contains("200"), "{status:?}");

    let (status, body) = get(served.addr, "/dist/small.txt");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, b"small\n");
}
