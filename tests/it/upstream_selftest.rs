//! The fake upstream itself, spoken to over a raw `TcpStream`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::upstream::{Fault, Upstream};

/// A parsed response; `body` is what arrived before EOF or Content-Length.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

/// One connection that can carry several requests.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(up: &Upstream) -> Client {
        let addr = up.base_url().trim_start_matches("http://").to_string();
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
    }

    /// Read a response head, or `None` if the server closed first.
    fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).unwrap_or(0) == 0 {
            return None;
        }
        let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Some((status, headers))
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.try_request(method, path, headers)
            .expect("server closed without a response")
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Option<Response> {
        self.send(method, path, headers);
        let (status, headers) = self.read_head()?;
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if method != "HEAD" && status != 304 {
            let len = resp.content_length();
            // Read up to Content-Length, stopping early at EOF (CutBody).
            (&mut self.reader)
                .take(len as u64)
                .read_to_end(&mut resp.body)
                .unwrap();
        }
        Some(resp)
    }

    /// True when the server has closed the connection.
    fn is_closed(&mut self) -> bool {
        matches!(self.reader.fill_buf(), Ok([]) | Err(_))
    }
}

fn get(up: &Upstream, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(up).request("GET", path, headers)
}

const BODY: &[u8] = b"0123456789abcdefghij";

#[test]
fn serves_200_with_length_and_etag() {
    let up = Upstream::start();
    up.put("dist/file.txt", BODY);
    let r = get(&up, "/dist/file.txt?x=1", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, BODY);
    assert_eq!(r.content_length(), BODY.len());
    assert!(r.header("etag").unwrap().starts_with('"'));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(up.url("/dist/file.txt").ends_with("/dist/file.txt"));
    assert_eq!(up.url("a"), format!("{}/a", up.base_url()));
}

#[test]
fn unknown_path_is_404_and_removed_path_too() {
    let up = Upstream::start();
    assert_eq!(get(&up, "/nothing", &[]).status, 404);
    up.put("/x", "x");
    assert_eq!(get(&up, "/x", &[]).status, 200);
    up.remove("x");
    assert_eq!(get(&up, "/x", &[]).status, 404);
}

#[test]
fn head_has_headers_but_no_body() {
    let up = Upstream::start();
    up.put("/f", BODY);
    let mut c = Client::connect(&up);
    let r = c.request("HEAD", "/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), BODY.len());
    // The connection stays usable: the next response is not mixed up with a body.
    let r = c.request("GET", "/f", &[]);
    assert_eq!(r.body, BODY);
}

#[test]
fn range_gives_206_and_unsatisfiable_gives_416() {
    let up = Upstream::start();
    up.put("/f", BODY);
    let r = get(&up, "/f", &[("Range", "bytes=5-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &BODY[5..]);
    assert_eq!(r.header("content-range"), Some("bytes 5-19/20"));

    let r = get(&up, "/f", &[("Range", "bytes=2-4")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"234");

    let r = get(&up, "/f", &[("Range", "bytes=-3")]);
    assert_eq!(r.body, b"hij");

    let r = get(&up, "/f", &[("Range", "bytes=20-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */20"));

    // If-Range with a stale ETag: the whole body.
    let r = get(&up, "/f", &[("Range", "bytes=5-"), ("If-Range", "\"old\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, BODY);
}

#[test]
fn if_none_match_gives_304() {
    let up = Upstream::start();
    up.put("/f", BODY);
    let etag = get(&up, "/f", &[]).header("etag").unwrap().to_string();
    let r = get(&up, "/f", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    up.put("/f", "changed");
    let r = get(&up, "/f", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"changed");
}

#[test]
fn keep_alive_and_connection_close() {
    let up = Upstream::start();
    up.put("/f", BODY);
    let mut c = Client::connect(&up);
    for _ in 0..3 {
        assert_eq!(c.request("GET", "/f", &[]).body, BODY);
    }
    let r = c.request("GET", "/f", &[("Connection", "close")]);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn status_fault_hits_the_next_gets_then_service_resumes() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::Status(503), 2);
    up.fault("/f", Fault::Status(429), 1);
    let mut c = Client::connect(&up);
    // HEAD is not faulted and does not use up a fault.
    assert_eq!(c.request("HEAD", "/f", &[]).status, 200);
    assert_eq!(c.request("GET", "/f", &[]).status, 503);
    assert_eq!(c.request("GET", "/f", &[]).status, 503);
    assert_eq!(c.request("GET", "/f", &[]).status, 429);
    assert_eq!(c.request("GET", "/f", &[]).body, BODY);
    // A status fault works for paths that do not exist too.
    up.fault("/missing", Fault::Status(500), 1);
    assert_eq!(c.request("GET", "/missing", &[]).status, 500);
    assert_eq!(c.request("GET", "/missing", &[]).status, 404);
}

#[test]
fn reset_fault_closes_without_response() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::Reset, 1);
    let mut c = Client::connect(&up);
    assert!(c.try_request("GET", "/f", &[]).is_none());
    assert_eq!(get(&up, "/f", &[]).body, BODY);
}

#[test]
fn cut_body_fault_then_resume_with_range() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::CutBody { after: 7 }, 1);
    let mut c = Client::connect(&up);
    let r = c.request("GET", "/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), BODY.len());
    assert_eq!(r.body, &BODY[..7]);
    assert!(c.is_closed());
    let rest = get(&up, "/f", &[("Range", "bytes=7-")]);
    assert_eq!(rest.status, 206);
    assert_eq!([&r.body[..], &rest.body[..]].concat(), BODY);
}

#[test]
fn wrong_bytes_fault_keeps_the_length() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("f", Fault::WrongBytes, 1);
    let mut c = Client::connect(&up);
    let r = c.request("GET", "/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BODY.len());
    assert_ne!(r.body, BODY);
    assert_eq!(c.request("GET", "/f", &[]).body, BODY);
}

#[test]
fn retry_after_fault_is_a_429_with_the_header() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::RetryAfter { secs: 7 }, 1);
    let mut c = Client::connect(&up);
    let r = c.request("GET", "/f", &[]);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(c.request("GET", "/f", &[]).body, BODY);
}

#[test]
fn long_length_fault_claims_more_than_it_sends_then_closes() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::LongLength { extra: 5 }, 1);
    let mut c = Client::connect(&up);
    let r = c.request("GET", "/f", &[]);
    assert_eq!(r.content_length(), BODY.len() + 5);
    assert_eq!(r.body, BODY);
    assert!(c.is_closed());
}

#[test]
fn stall_fault_sends_headers_then_nothing_then_closes() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.fault("/f", Fault::Stall { ms: 300 }, 1);
    let mut c = Client::connect(&up);
    let t = Instant::now();
    let r = c.request("GET", "/f", &[]);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.content_length(), BODY.len());
    assert!(r.body.is_empty());
    assert!(c.is_closed());
}

#[test]
fn delay_applies_before_every_response() {
    let up = Upstream::start();
    up.put("/f", BODY);
    up.set_delay(Duration::from_millis(150));
    let mut c = Client::connect(&up);
    let t = Instant::now();
    c.request("GET", "/f", &[]);
    c.request("GET", "/nothing", &[]);
    assert!(t.elapsed() >= Duration::from_millis(300));
    up.set_delay(Duration::ZERO);
}

#[test]
fn request_log_records_method_path_and_headers() {
    let up = Upstream::start();
    up.put("/f", BODY);
    get(&up, "/f?v=2", &[("X-Probe", "yes")]);
    Client::connect(&up).request("HEAD", "/g", &[]);
    let all = up.requests();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].method, "GET");
    assert_eq!(all[0].path, "/f");
    assert_eq!(all[0].query.as_deref(), Some("v=2"));
    assert_eq!(all[0].header("x-probe"), Some("yes"));
    assert_eq!(all[0].header("X-PROBE"), Some("yes"));
    assert!(all[0].headers.iter().any(|(n, _)| n == "host"));
    assert_eq!(up.requests_for("f").len(), 1);
    assert_eq!(up.requests_for("/g")[0].method, "HEAD");
    assert_eq!(up.gets("/f"), 1);
    up.clear_requests();
    assert!(up.requests().is_empty());
}

#[test]
fn drop_stops_the_server() {
    let up = Upstream::start();
    up.put("/f", BODY);
    let mut c = Client::connect(&up);
    assert_eq!(c.request("GET", "/f", &[]).status, 200);
    let addr = up.base_url().trim_start_matches("http://").to_string();
    drop(up);
    assert!(c.is_closed());
    assert!(TcpStream::connect(addr).is_err());
}
