//! Access control (`mirror serve --auth-file FILE`).
//!
//! The file holds one credential a line, `NAME:HASH`, the hash a bcrypt
//! hash as `htpasswd -B` writes it (`$2y$`, `$2b$` or `$2a$`); empty lines
//! and lines starting with `#` are skipped. Anything else is an error
//! naming the line. The file is read at start and again on SIGHUP (a file
//! that no longer reads keeps the credentials in force and says why).
//!
//! A client proves itself with an `Authorization` header: `Basic
//! base64(NAME:PASSWORD)` (curl, pacman, rustup and git with the
//! credentials in the URL or a netrc), or the token `NAME:PASSWORD`
//! bare (as cargo sends a registry token) or after `Bearer `. Every path
//! but `/health` needs one; without it, or with a wrong one, the answer is
//! `401` with `WWW-Authenticate: Basic realm="mirror"`. `/metrics` is
//! protected too: Prometheus sends basic auth (`basic_auth:` in its scrape
//! config).
//!
//! bcrypt is slow on purpose (a few ms at `htpasswd -B`'s cost 5, ~0.25 s
//! at cost 12), so:
//!
//! - each distinct header is checked once and the verdict kept, keyed by
//!   the SHA-256 of the header (never the password itself): up to
//!   [`GOOD_ENTRIES`] accepted and, apart, [`BAD_ENTRIES`] refused ones
//!   (least recently used forgotten first), so a flood of wrong
//!   credentials cannot push out the good ones;
//! - a check runs on the blocking pool, never on an event loop, at most
//!   one per core at once;
//! - checks (not answers from the kept verdicts) are charged to the
//!   client's address: [`CHECK_BURST`] at once, then [`CHECK_RATE`] a
//!   second (IPv6 by /64); past that the answer is `429` with
//!   `Retry-After`, so guessing passwords costs the guesser time, not the
//!   server CPU;
//! - an unknown name is checked against a dummy hash of the file's
//!   highest cost, so the time taken does not tell which names exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use base64::Engine as _;
use clru::CLruCache;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::cache::limits::{Limits as BudgetLimits, MissBudget};
use super::ops::Metrics;

/// Accepted credentials whose verdict is kept.
pub const GOOD_ENTRIES: usize = 1024;
/// Refused credentials whose verdict is kept.
pub const BAD_ENTRIES: usize = 256;
/// Checks a client may start at once.
pub const CHECK_BURST: u32 = 20;
/// Checks a client may start per second after its burst.
pub const CHECK_RATE: f64 = 2.0;
/// Longest `Authorization` header looked at; longer ones are refused
/// unchecked.
const MAX_HEADER: usize = 1024;
/// Largest auth file read.
const MAX_FILE: u64 = 4 << 20;

/// Errors reading the auth file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// It cannot be read.
    #[error("cannot read the auth file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `NAME:BCRYPT-HASH`.
    #[error("{}:{line}: expected NAME:HASH with a bcrypt hash as `htpasswd -B` writes it ($2y$…), found {found}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// Its line number.
        line: usize,
        /// What is wrong with it (never the hash itself).
        found: String,
    },
    /// It holds no credential.
    #[error("the auth file {} holds no credential (expected lines NAME:HASH, as `htpasswd -B` writes them)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Credentials: name → bcrypt hash.
#[derive(Debug, Default)]
struct Users {
    hashes: HashMap<String, String>,
    dummy: String,
}

/// Parse an auth file's text.
fn parse(path: &Path, text: &str) -> Result<HashMap<String, String>, AuthFileError> {
    let mut hashes = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let err = |found: &str| AuthFileError::Line {
            path: path.to_owned(),
            line: i + 1,
            found: found.to_owned(),
        };
        let Some((name, hash)) = line.split_once(':') else {
            return Err(err("no ':'"));
        };
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return Err(err("an empty name or one with control characters"));
        }
        let is_bcrypt = ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p))
            && hash.len() == 60
            && hash[4..6].bytes().all(|b| b.is_ascii_digit())
            && hash.as_bytes()[6] == b'$';
        if !is_bcrypt {
            let kind = match hash.get(..3) {
                Some("$1$") => "an MD5 hash ($1$)",
                Some("$5$") | Some("$6$") => "a SHA-crypt hash",
                _ if hash.starts_with("$apr1$") => "an Apache MD5 hash ($apr1$; use htpasswd -B)",
                _ if hash.starts_with("{SHA}") => "a SHA-1 hash ({SHA}; use htpasswd -B)",
                _ => "something that is not a bcrypt hash",
            };
            return Err(err(&format!(
                "{kind} for {:?}",
                crate::output::escape(name)
            )));
        }
        hashes.insert(name.to_owned(), hash.to_owned());
    }
    if hashes.is_empty() {
        return Err(AuthFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(hashes)
}

fn read(path: &Path) -> Result<Users, AuthFileError> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
        .map_err(|source| AuthFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    let hashes = parse(path, &text)?;
    let cost = hashes
        .values()
        .filter_map(|h| h[4..6].parse::<u32>().ok())
        .max()
        .unwrap_or(bcrypt::DEFAULT_COST)
        .clamp(4, 31);
    let dummy = bcrypt::hash("not a password of anyone", cost).unwrap_or_default();
    Ok(Users { hashes, dummy })
}

/// The credentials and what was learnt checking them.
pub struct Auth {
    path: PathBuf,
    users: RwLock<Arc<Users>>,
    good: Mutex<CLruCache<[u8; 32], Arc<str>>>,
    bad: Mutex<CLruCache<[u8; 32], ()>>,
    budget: MissBudget,
    slots: Semaphore,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("path", &self.path).finish()
    }
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credential or a wrong one: `401`.
    Unauthorized,
    /// Too many checks from this client: `429` after this long.
    Limited(Duration),
}

impl Denied {
    /// The answer.
    pub fn response(self) -> Response<Body> {
        let (status, text) = match self {
            Denied::Unauthorized => (StatusCode::UNAUTHORIZED, "401 Unauthorized\n"),
            Denied::Limited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "429 Too Many Requests: too many credentials checked, try again later\n",
            ),
        };
        let mut res = Response::new(Body::from(text));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Denied::Unauthorized => {
                h.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"mirror\", charset=\"UTF-8\""),
                );
            }
            Denied::Limited(after) => {
                h.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
            }
        }
        res
    }
}

/// Paths open without a credential.
pub fn is_open(path: &str) -> bool {
    path == "/health"
}

/// `(name, password)` from an `Authorization` value: `Basic …`, `Bearer
/// NAME:PASSWORD` or a bare `NAME:PASSWORD`.
fn credential(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or(("", value));
    let token = if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        String::from_utf8(raw).ok()?
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else {
        value.to_owned()
    };
    let (name, password) = token.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

impl Auth {
    /// Read `path` (see the module docs).
    pub fn load(path: &Path, metrics: Arc<Metrics>) -> Result<Auth, AuthFileError> {
        let users = read(path)?;
        let n = |k: usize| NonZeroUsize::new(k).unwrap_or(NonZeroUsize::MIN);
        Ok(Auth {
            path: path.to_owned(),
            users: RwLock::new(Arc::new(users)),
            good: Mutex::new(CLruCache::new(n(GOOD_ENTRIES))),
            bad: Mutex::new(CLruCache::new(n(BAD_ENTRIES))),
            budget: MissBudget::new(&BudgetLimits {
                miss_rate: CHECK_RATE,
                miss_burst: CHECK_BURST,
                ..Default::default()
            }),
            slots: Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            metrics,
        })
    }

    /// Read the file again (SIGHUP); on success forget every verdict and
    /// return how many credentials it holds. On failure the credentials
    /// in force stay.
    pub fn reload(&self) -> Result<usize, AuthFileError> {
        let users = read(&self.path)?;
        let n = users.hashes.len();
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        self.good.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.bad.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(n)
    }

    /// Whether the request may go on: the user's name, or why not.
    pub async fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<Option<Arc<str>>, Denied> {
        if is_open(path) {
            return Ok(None);
        }
        let result = self.verify(headers, client).await;
        match result {
            Ok(name) => Ok(Some(name)),
            Err(d) => {
                let counter = match d {
                    Denied::Unauthorized => &self.metrics.auth_denied,
                    Denied::Limited(_) => &self.metrics.auth_limited,
                };
                counter.fetch_add(1, Relaxed);
                Err(d)
            }
        }
    }

    async fn verify(&self, headers: &HeaderMap, client: IpAddr) -> Result<Arc<str>, Denied> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(Denied::Unauthorized);
        };
        let value = value.as_bytes();
        if value.len() > MAX_HEADER {
            return Err(Denied::Unauthorized);
        }
        let key: [u8; 32] = Sha256::digest(value).into();
        if let Some(name) = self
            .good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(name));
        }
        if self
            .bad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .is_some()
        {
            return Err(Denied::Unauthorized);
        }
        let Some((name, password)) = credential(value) else {
            return Err(Denied::Unauthorized);
        };
        self.budget
            .take(Some(client), Instant::now())
            .map_err(Denied::Limited)?;
        let users = Arc::clone(&self.users.read().unwrap_or_else(|e| e.into_inner()));
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Denied::Unauthorized)?;
        self.metrics.auth_checks.fetch_add(1, Relaxed);
        let known = users.hashes.contains_key(&name);
        let ok = tokio::task::spawn_blocking(move || {
            let hash = users.hashes.get(&name).unwrap_or(&users.dummy);
            bcrypt::verify(&password, hash).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false);
        let (name, _) = credential(value).unwrap_or_default();
        if ok {
            let name: Arc<str> = Arc::from(name);
            self.good
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(key, Arc::clone(&name));
            Ok(name)
        } else {
            self.bad
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(key, ());
            Err(Denied::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_in_three_shapes() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ann:pw:x")
        );
        assert_eq!(
            credential(basic.as_bytes()),
            Some(("ann".into(), "pw:x".into()))
        );
        assert_eq!(
            credential(b"Bearer ann:pw"),
            Some(("ann".into(), "pw".into()))
        );
        assert_eq!(credential(b"ann:pw"), Some(("ann".into(), "pw".into())));
        assert_eq!(credential(b"Bearer nocolon"), None);
        assert_eq!(credential(b"Basic !!!"), None);
    }

    #[test]
    fn the_file_must_hold_bcrypt_hashes() {
        let p = Path::new("auth");
        let h = "$2y$05$abcdefghijklmnopqrstuuJ3x2pRZy0P/3iTq1E3fMv0hm3f4q2a6";
        assert_eq!(h.len(), 60);
        let ok = parse(p, &format!("# comment\n\nann:{h}\n")).unwrap();
        assert_eq!(ok.len(), 1);
        for bad in [
            "ann".to_owned(),
            "ann:$apr1$x$y".to_owned(),
            format!(":{h}"),
            "ann:secret".to_owned(),
        ] {
            let e = parse(p, &bad).unwrap_err().to_string();
            assert!(e.contains("auth:1:"), "{e}");
            assert!(!e.contains("secret"), "the hash is not echoed: {e}");
        }
        assert!(matches!(
            parse(p, "# only\n"),
            Err(AuthFileError::Empty { .. })
        ));
    }
}
