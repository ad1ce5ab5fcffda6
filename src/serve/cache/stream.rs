//! Following a download in flight, as flexo does: a client of a miss that
//! takes longer than [`UpstreamOptions::follow_after`](super::UpstreamOptions::follow_after)
//! is sent the bytes already in `<dest>.partial`, then the rest as they
//! arrive, instead of waiting for the whole transfer (where a client's own
//! idle timeout, 30 s for cargo, could end it).
//!
//! Nothing unverified is ever *completely* delivered: the stream hashes
//! what it sends and holds back its last chunk until the download has
//! verified and been published and the hash of everything sent equals the
//! expected digest. On any failure (bad bytes, upstream gone, the download
//! started over from another mirror after bytes went out) the connection is
//! cut before the end of the body, which every HTTP client reports as an
//! error; the file is not stored, and the client's next attempt gets a
//! clean answer (a `502`, or the file from disk).
//!
//! Fast misses (done within `follow_after`) are answered from disk after
//! verification, so they still get a `502` with the reason when upstream
//! sends bad bytes.

use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::{CacheError, Flight};
use crate::report::Reporter;
use crate::serve::files::{content_type, CHUNK};
use crate::verify::digest::{Hasher, Sha256Digest};

/// Where a flight's download stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The file being written and the digest it must reach, once a
    /// download with a known digest started.
    pub file: Option<(PathBuf, Sha256Digest)>,
    /// Where that file is published.
    pub dest: PathBuf,
    /// Its expected size, when known.
    pub size: Option<u64>,
    /// Bytes received so far (all attempts).
    pub received: u64,
    /// Downloads started (each mirror tried counts).
    pub attempts: u64,
}

/// The sending side, owned by the flight's task; it is the engine's
/// [`Reporter`] for the download, so every chunk written is announced.
#[derive(Debug)]
pub struct FlightProgress {
    tx: watch::Sender<Progress>,
}

impl FlightProgress {
    /// A new channel.
    pub fn new() -> (FlightProgress, watch::Receiver<Progress>) {
        let (tx, rx) = watch::channel(Progress::default());
        (FlightProgress { tx }, rx)
    }

    /// A download into `partial` (to reach `digest`, `size`, published as
    /// `dest`) starts.
    pub fn start(
        &self,
        partial: PathBuf,
        dest: PathBuf,
        digest: Option<Sha256Digest>,
        size: Option<u64>,
    ) {
        self.tx.send_modify(|p| {
            p.file = digest.map(|d| (partial, d));
            p.dest = dest;
            p.size = size;
            p.attempts += 1;
        });
    }
}

impl Reporter for FlightProgress {
    fn bytes(&self, n: u64) {
        self.tx.send_modify(|p| p.received += n);
    }
}

/// A response that follows a download in flight.
pub struct Following {
    pub(super) flight: Flight,
    pub(super) progress: watch::Receiver<Progress>,
}

impl Following {
    /// Whether bytes are there to follow yet.
    pub(super) fn ready(progress: &Progress) -> bool {
        progress.file.is_some() && progress.received > 0
    }

    /// The `200` whose body follows the download; `name` picks the
    /// Content-Type.
    pub fn response(self, name: &str) -> Response {
        let p = self.progress.borrow().clone();
        let Some((partial, expected)) = p.file.clone() else {
            return CacheError::Local("no download to follow".into()).response();
        };
        let mut res = StatusCode::OK.into_response();
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
        if let Ok(v) = HeaderValue::from_str(&format!("\"sha256-{}\"", expected.to_hex())) {
            // rebar3 insists on an ETag; this one names the bytes.
            h.insert(ETAG, v);
        }
        if let Some(size) = p.size {
            h.insert(CONTENT_LENGTH, HeaderValue::from(size));
        }
        let state = State {
            flight: self.flight,
            progress: self.progress,
            partial,
            dest: p.dest.clone(),
            expected,
            attempts: p.attempts,
            file: None,
            pos: 0,
            hasher: Some(Hasher::new()),
            held: None,
            sent: 0,
            finishing: false,
        };
        *res.body_mut() = Body::from_stream(futures_util::stream::unfold(state, step));
        res
    }
}

struct State {
    flight: Flight,
    progress: watch::Receiver<Progress>,
    partial: PathBuf,
    dest: PathBuf,
    expected: Sha256Digest,
    /// The attempt whose file is being read.
    attempts: u64,
    file: Option<tokio::fs::File>,
    pos: u64,
    hasher: Option<Hasher>,
    /// The last chunk read, sent only once the next one is read or the
    /// whole verified.
    held: Option<Bytes>,
    sent: u64,
    /// The flight ended well: read to the end once more, then check.
    finishing: bool,
}

type Item = Result<Bytes, std::io::Error>;

/// The next chunk of the body; `None` ends it (cleanly only after the
/// check passed: otherwise an error is yielded first, which cuts the
/// connection).
async fn step(mut s: State) -> Option<(Item, State)> {
    loop {
        // No hasher: verified and fully sent, or cut.
        s.hasher.as_ref()?;
        // A new attempt started (another mirror, a restart): follow it
        // only if nothing went out yet.
        let attempts = s.progress.borrow().attempts;
        if attempts != s.attempts {
            if s.sent > 0 || s.held.is_some() {
                return fail(s, "the download started over after bytes were sent");
            }
            s.attempts = attempts;
            s.file = None;
            s.pos = 0;
            s.hasher = Some(Hasher::new());
            let p = s.progress.borrow().clone();
            if let Some((partial, expected)) = p.file {
                s.partial = partial;
                s.dest = p.dest;
                s.expected = expected;
            }
        }
        if s.file.is_none() {
            match tokio::fs::File::open(&s.partial).await {
                Ok(f) => s.file = Some(f),
                Err(_) if s.flight.peek().is_none() => {
                    wait(&mut s).await;
                    continue;
                }
                // Published before it was opened here: read it from its
                // place (the hash check still applies).
                Err(_) if matches!(s.flight.peek(), Some(Ok(()))) => {
                    match tokio::fs::File::open(&s.dest).await {
                        Ok(f) => s.file = Some(f),
                        Err(e) => {
                            let why = format!("cannot open {}: {e}", s.dest.display());
                            return fail(s, &why);
                        }
                    }
                }
                Err(e) => {
                    let why = format!("cannot open {}: {e}", s.partial.display());
                    return fail(s, &why);
                }
            }
        }
        let mut buf = vec![0u8; CHUNK];
        let Some(file) = s.file.as_mut() else {
            continue;
        };
        let n = match read_at(file, s.pos, &mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let why = format!("cannot read {}: {e}", s.partial.display());
                return fail(s, &why);
            }
        };
        if n > 0 {
            buf.truncate(n);
            s.pos += n as u64;
            if let Some(h) = s.hasher.as_mut() {
                h.update(&buf);
            }
            if let Some(out) = s.held.replace(Bytes::from(buf)) {
                s.sent += out.len() as u64;
                return Some((Ok(out), s));
            }
            continue;
        }
        // At the end of what is written so far.
        match s.flight.peek().cloned() {
            None => wait(&mut s).await,
            Some(Err(e)) => return fail(s, &e.to_string()),
            Some(Ok(())) if !s.finishing => s.finishing = true,
            Some(Ok(())) => {
                let actual = s.hasher.take().map(Hasher::finish);
                if actual != Some(s.expected) {
                    let why = format!(
                        "the bytes followed hash to {actual:?}, expected {}",
                        s.expected
                    );
                    return fail(s, &why);
                }
                match s.held.take() {
                    Some(last) => return Some((Ok(last), s)),
                    None => return None,
                }
            }
        }
    }
}

/// Yield an error: the connection is cut before the body's end.
fn fail(mut s: State, why: &str) -> Option<(Item, State)> {
    crate::output::log(format_args!(
        "mirror serve: cutting a followed transfer short: {why}"
    ));
    s.hasher = None;
    s.held = None;
    Some((Err(std::io::Error::other(why.to_string())), s))
}

/// Wait for more bytes or the end of the flight.
async fn wait(s: &mut State) {
    tokio::select! {
        changed = s.progress.changed() => {
            if changed.is_err() {
                // The flight's task ended: its result is due.
                let _ = s.flight.clone().await;
            }
        }
        _ = s.flight.clone() => {}
    }
}

async fn read_at(file: &mut tokio::fs::File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(pos)).await?;
    file.read(buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::FutureExt;
    use futures_util::StreamExt;

    /// A finished flight with `result`, and a progress that announced a
    /// download of `partial` (published as `dest`) expected to hash to
    /// `expected`.
    async fn following(
        result: Result<(), CacheError>,
        partial: PathBuf,
        dest: PathBuf,
        expected: Sha256Digest,
    ) -> Following {
        let flight: Flight = async move { result }.boxed().shared();
        let _ = flight.clone().await;
        let (tx, progress) = FlightProgress::new();
        tx.start(partial, dest, Some(expected), None);
        tx.bytes(1);
        Following { flight, progress }
    }

    /// The body's bytes, or the error that cut it.
    async fn body(f: Following) -> Result<Vec<u8>, String> {
        let mut stream = f.response("x.crate").into_body().into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_file_published_before_it_was_opened_is_read_from_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.crate");
        let data: Vec<u8> = (0..(3 * CHUNK as u32)).map(|i| i as u8).collect();
        std::fs::write(&dest, &data).unwrap();
        let partial = dir.path().join("x.crate.partial");
        let f = following(Ok(()), partial, dest, Sha256Digest::of(&data)).await;
        assert_eq!(body(f).await.unwrap(), data);
    }

    #[tokio::test]
    async fn bytes_that_miss_the_digest_never_complete_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("x.crate.partial");
        std::fs::write(&partial, vec![7u8; 2 * CHUNK]).unwrap();
        let dest = dir.path().join("x.crate");
        let expected = Sha256Digest::of(b"other bytes");
        let f = following(Ok(()), partial.clone(), dest.clone(), expected).await;
        assert!(body(f).await.is_err());
        // A failed flight cuts the body too.
        let failed = Err(CacheError::Rejected("bad".into()));
        let f = following(failed, partial, dest, Sha256Digest::of(&[7u8; 10])).await;
        assert!(body(f).await.is_err());
    }
}
