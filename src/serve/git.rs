//! The crates index over git's smart HTTP protocol (cargo's default git
//! client, libgit2, speaks nothing else), by running `git upload-pack`.
//!
//! ```text
//! GET  /git/crates.io-index/info/refs?service=git-upload-pack
//!      -> 001e# service=git-upload-pack\n 0000  + `git upload-pack --stateless-rpc --advertise-refs`
//!         (application/x-git-upload-pack-advertisement)
//! POST /git/crates.io-index/git-upload-pack   (body may be Content-Encoding: gzip)
//!      -> the body streamed (gunzipped on the way) into `git upload-pack --stateless-rpc`,
//!         its stdout streamed back
//!         (application/x-git-upload-pack-result)
//! ```
//!
//! # The served view
//!
//! git runs on the index itself (its git directory), read-only: nothing
//! is written, in the tree or anywhere else, so a read-only tree is served
//! as well. Only `HEAD` and `master` are advertised
//! (`uploadpack.hideRefs=refs/` then `!refs/heads/master`), and a `want`
//! of any other commit (`origin_master`, `working`, `mark`) is refused
//! ("not our ref"): wants of unadvertised objects are off whatever the
//! index's configuration says.
//!
//! cargo fetches `+HEAD:refs/remotes/origin/HEAD`, and upload-pack
//! advertises `HEAD` as whatever it names, so an index is served over git
//! only while its `HEAD` names `refs/heads/master` (as `mirror crate init`
//! leaves it; a tree made by romt has `HEAD` on `working`). Otherwise the
//! git routes answer `503` saying how to set it, and log it; the sparse
//! index is served either way.
//!
//! Only protocol v0/v1 is spoken (what libgit2 speaks; the git CLI falls
//! back to it): `Git-Protocol: version=2` is not passed on, because a v2
//! upload-pack grants a `want` of any object in the object store, and
//! that would reach the other branches.
//!
//! git runs without a shell, in the environment of [`crate::gitenv`] (no
//! user or system configuration, no `GIT_*` variables of ours), with
//! `safe.directory` set to exactly the index's git directory.
//!
//! # Limits
//!
//! At most [`GitLimits::max_processes`] git processes run at once (both
//! routes count); a request finding them all busy waits up to
//! [`GitLimits::queue_wait`] for one, then gets `503` with `Retry-After`.
//! The request body must arrive within [`GitLimits::body_deadline`] and the
//! whole exchange end within [`GitLimits::timeout`]; git (with the
//! `pack-objects` it started: it runs in a process group of its own) is
//! killed when either passes, and at once when the client goes away (the
//! response body is dropped). A git process keeps its slot until it is
//! reaped, so the cap holds for processes, not requests.
//!
//! A missing `git` binary answers `503` with a message that says so, and
//! is logged.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::io::ReaderStream;

use super::crates::{CratesState, IndexError};
use super::status_response;

/// What the git routes share: the index and the running upload-packs.
pub(crate) struct GitState {
    /// The crates index (also read by the sparse routes).
    index: Arc<CratesState>,
    /// The running `git upload-pack` processes.
    gate: GitGate,
}

/// The git smart HTTP routes of the index at `/git/crates.io-index`, to
/// merge into the main router. The repository's own files (refs of every
/// branch, config) are not served: only smart HTTP, only master.
pub(crate) fn routes(
    index: Arc<CratesState>,
    limits: &GitLimits,
    metrics: &super::ops::Metrics,
) -> axum::Router {
    use axum::routing::{any, get, post};
    let dir = crate::eco::crates::layout::INDEX_DIR;
    let state = Arc::new(GitState {
        index,
        gate: GitGate::new(limits, metrics),
    });
    axum::Router::new()
        .route(&format!("/{dir}/info/refs"), get(info_refs))
        .route(&format!("/{dir}/git-upload-pack"), post(upload_pack_post))
        .route(&format!("/{dir}"), any(not_found))
        .route(&format!("/{dir}/{{*rest}}"), any(not_found))
        .with_state(state)
}

async fn not_found() -> Response {
    status_response(StatusCode::NOT_FOUND)
}

/// Largest upload-pack request body passed to git (after decompression; a
/// longer one is cut, so git fails). A negotiation lists wants and haves:
/// kilobytes, rarely megabytes.
pub const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Default of [`GitLimits::max_processes`] (`--git-max-processes`).
pub const DEFAULT_MAX_PROCESSES: usize = 8;

/// Default of [`GitLimits::timeout`] (`--git-timeout`): a whole clone of
/// crates.io's index (a few hundred MB) on a slow link fits in it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest time for receiving a request body (when [`GitLimits::timeout`]
/// is not shorter): cargo's negotiations are a few kilobytes.
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Longest wait for a free git slot (when half of [`GitLimits::timeout`]
/// is not shorter).
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How much of git's stderr is kept for the log (the rest is read and
/// dropped).
const MAX_STDERR: u64 = 64 * 1024;

/// Largest advertisement read from git: two refs take a few hundred bytes.
const MAX_ADVERTISEMENT: u64 = 1024 * 1024;

/// The pkt-line that starts a smart HTTP advertisement for upload-pack.
const SERVICE_LINE: &[u8] = b"001e# service=git-upload-pack\n0000";

/// How many `git upload-pack` processes run at once and for how long
/// (see the module docs).
#[derive(Debug, Clone)]
pub struct GitLimits {
    /// Most git processes at once (`--git-max-processes`), at least 1.
    pub max_processes: usize,
    /// Longest exchange, request body included (`--git-timeout`).
    pub timeout: Duration,
}

impl Default for GitLimits {
    fn default() -> Self {
        GitLimits {
            max_processes: DEFAULT_MAX_PROCESSES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl GitLimits {
    /// The time the request body has to arrive: [`BODY_DEADLINE`], or the
    /// timeout when shorter.
    pub fn body_deadline(&self) -> Duration {
        BODY_DEADLINE.min(self.timeout)
    }

    /// The longest wait for a free slot: [`QUEUE_WAIT`], or half the
    /// timeout when shorter.
    pub fn queue_wait(&self) -> Duration {
        QUEUE_WAIT.min(self.timeout / 2)
    }
}

/// The git processes of one server: a slot per running process.
pub(crate) struct GitGate {
    limits: GitLimits,
    slots: Arc<Semaphore>,
    /// When "all slots busy" was last logged (once a minute at most).
    busy_logged: Mutex<Option<Instant>>,
}

impl GitGate {
    pub(crate) fn new(limits: &GitLimits, metrics: &super::ops::Metrics) -> Self {
        let limits = GitLimits {
            max_processes: limits.max_processes.max(1),
            timeout: limits.timeout.max(Duration::from_secs(1)),
        };
        let slots = Arc::new(Semaphore::new(limits.max_processes));
        metrics.watch_git(&slots, limits.max_processes);
        GitGate {
            slots,
            limits,
            busy_logged: Mutex::new(None),
        }
    }

    /// A slot for one git process, waiting up to [`GitLimits::queue_wait`];
    /// `503` with `Retry-After` when none came free.
    async fn enter(&self) -> Result<OwnedSemaphorePermit, Response> {
        let wait = self.limits.queue_wait();
        if let Ok(Ok(permit)) =
            tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await
        {
            return Ok(permit);
        }
        let n = self.limits.max_processes;
        {
            let mut last = self.busy_logged.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last = Some(Instant::now());
                crate::log!(
                    "mirror serve: all {n} git slots busy for {}s, git requests answered 503 \
                     (--git-max-processes raises the limit)",
                    wait.as_secs()
                );
            }
        }
        let retry = wait.as_secs().max(1);
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{n} git requests are being served, the most at once; retry in {retry}s\n"),
        );
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry));
        Err(r)
    }
}

/// GET `.../info/refs?service=git-upload-pack`.
async fn info_refs(State(state): State<Arc<GitState>>, req: Request) -> Response {
    let service = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="));
    match service {
        Some("git-upload-pack") => {}
        Some(_) => return text(StatusCode::FORBIDDEN, "only git-upload-pack is served\n"),
        None => {
            return text(
                StatusCode::FORBIDDEN,
                "only git's smart HTTP protocol is served (info/refs?service=git-upload-pack)\n",
            )
        }
    }
    let git_dir = match served_git_dir(&state.index).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let permit = match state.gate.enter().await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let timeout = state.gate.limits.timeout;
    // A task of its own: git is reaped, and its slot freed, even when the
    // client goes away.
    let task = tokio::spawn(async move {
        let r = advertise(&git_dir, timeout).await;
        drop(permit);
        r
    });
    match task.await {
        Ok(r) => r,
        Err(e) => {
            crate::log!("mirror serve: git advertisement task failed: {e}");
            status_response(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// `git upload-pack --advertise-refs` on `git_dir`, killed after `timeout`.
async fn advertise(git_dir: &Path, timeout: Duration) -> Response {
    let mut cmd = upload_pack(git_dir);
    cmd.arg("--advertise-refs").arg(git_dir);
    cmd.stdin(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return spawn_failed(e),
    };
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return status_response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_ADVERTISEMENT);
        let (read, ()) = tokio::join!(stdout.read_to_end(&mut out), drain(stderr, &mut err));
        (read, child.wait().await, out, err)
    };
    let (read, status, out, err) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            crate::log!(
                "mirror serve: git upload-pack --advertise-refs killed after {}s",
                timeout.as_secs()
            );
            return status_response(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    match (read, status) {
        (Ok(_), Ok(status)) if status.success() => {}
        (_, status) => {
            crate::log!(
                "mirror serve: git upload-pack --advertise-refs failed ({}): {}",
                status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                escaped(&err)
            );
            return status_response(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    let mut body = Vec::with_capacity(SERVICE_LINE.len() + out.len());
    body.extend_from_slice(SERVICE_LINE);
    body.extend_from_slice(&out);
    git_response(
        "application/x-git-upload-pack-advertisement",
        Body::from(body),
    )
}

/// POST `.../git-upload-pack`.
async fn upload_pack_post(State(state): State<Arc<GitState>>, req: Request) -> Response {
    let gzip = match req.headers().get(CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") => true,
        Some(Ok(v)) if v.eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported Content-Encoding (expected gzip or none)\n",
            )
        }
    };
    let body = req.into_body();
    let git_dir = match served_git_dir(&state.index).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let permit = match state.gate.enter().await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut cmd = upload_pack(&git_dir);
    cmd.arg(&git_dir);
    cmd.stdin(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return spawn_failed(e),
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return status_response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let (gone_tx, gone_rx) = oneshot::channel();
    let exchange = Exchange {
        child,
        stdin,
        stderr,
        body,
        gzip,
        gone: gone_rx,
        limits: state.gate.limits.clone(),
    };
    tokio::spawn(async move {
        exchange.supervise().await;
        drop(permit);
    });
    git_response(
        "application/x-git-upload-pack-result",
        Body::from_stream(Output {
            inner: ReaderStream::new(stdout),
            gone: Some(gone_tx),
        }),
    )
}

/// One running `git upload-pack` and what it is fed.
struct Exchange {
    child: Child,
    stdin: tokio::process::ChildStdin,
    stderr: tokio::process::ChildStderr,
    body: Body,
    gzip: bool,
    /// A value: the client went away before the response ended. Closed
    /// unsent: the response was read to its end.
    gone: oneshot::Receiver<()>,
    limits: GitLimits,
}

impl Exchange {
    /// Feed git the request body, reap it, and kill it (with its process
    /// group) when the body is late or bad, the exchange runs past its
    /// deadline or the client goes away. Logs what went wrong.
    async fn supervise(self) {
        let Exchange {
            mut child,
            mut stdin,
            stderr,
            body,
            gzip,
            mut gone,
            limits,
        } = self;
        let pid = child.id();
        let body_deadline = limits.body_deadline();
        let feed = tokio::time::timeout(body_deadline, async move {
            let r = feed(body, gzip, &mut stdin).await;
            // EOF for git, also after an error (git then fails).
            let _ = stdin.shutdown().await;
            r
        });
        let wait = async {
            let mut err = Vec::new();
            drain(stderr, &mut err).await;
            (child.wait().await, err)
        };
        let deadline = tokio::time::sleep(limits.timeout);
        tokio::pin!(feed, wait, deadline);
        let (mut fed, mut gone_seen) = (false, false);
        let mut killed: Option<String> = None;
        let kill = |why: String, killed: &mut Option<String>| {
            if killed.is_none() {
                kill_group(pid);
                *killed = Some(why);
            }
        };
        let (status, err) = loop {
            tokio::select! {
                done = &mut wait => break done,
                r = &mut feed, if !fed => {
                    fed = true;
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => kill(e, &mut killed),
                        Err(_) => kill(
                            format!("request body not received within {}s", body_deadline.as_secs()),
                            &mut killed,
                        ),
                    }
                }
                () = &mut deadline, if killed.is_none() => kill(
                    format!("exchange not done within {}s (--git-timeout)", limits.timeout.as_secs()),
                    &mut killed,
                ),
                r = &mut gone, if !gone_seen => {
                    gone_seen = true;
                    if r.is_ok() {
                        kill("the client went away".to_string(), &mut killed);
                    }
                }
            }
        };
        match (killed, status) {
            (Some(why), _) => crate::log!("mirror serve: git upload-pack killed: {why}"),
            (None, Ok(status)) if !status.success() => crate::log!(
                "mirror serve: git upload-pack failed ({status}): {}",
                escaped(&err)
            ),
            (None, Err(e)) => crate::log!("mirror serve: waiting for git upload-pack: {e}"),
            (None, Ok(_)) => {}
        }
    }
}

/// git's stdout as the response body; dropping it before its end (the
/// client went away) tells the [`Exchange`] to kill git.
struct Output {
    inner: ReaderStream<ChildStdout>,
    gone: Option<oneshot::Sender<()>>,
}

impl Stream for Output {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            // Read to its end: close the channel unsent.
            self.gone = None;
        }
        next
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(gone) = self.gone.take() {
            let _ = gone.send(());
        }
    }
}

/// The index's git directory (canonical), once it is known to have a
/// `master` and a `HEAD` naming it. `404` without an index or `master`,
/// `503` (logged) when `HEAD` names anything else.
async fn served_git_dir(state: &Arc<CratesState>) -> Result<PathBuf, Response> {
    let st = Arc::clone(state);
    let found = tokio::task::spawn_blocking(move || {
        st.with_repo(|repo| {
            st.master(repo)?;
            let head = repo.head_name().map_err(|e| IndexError::Broken {
                path: st.index_dir.clone(),
                message: format!("cannot read HEAD: {e}"),
            })?;
            let git_dir =
                std::fs::canonicalize(repo.git_dir()).map_err(|e| IndexError::Broken {
                    path: st.index_dir.clone(),
                    message: format!("cannot resolve its git directory: {e}"),
                })?;
            Ok(match head {
                Some(name) if name.as_bstr() == "refs/heads/master" => Ok(git_dir),
                Some(name) => Err((git_dir, name.as_bstr().to_string())),
                None => Err((git_dir, "a commit (detached)".to_string())),
            })
        })
    })
    .await;
    match found {
        Ok(Ok(Ok(git_dir))) => Ok(git_dir),
        Ok(Ok(Err((git_dir, head)))) => {
            let msg = format!(
                "the crates index {} is not served over git: its HEAD names {}, not \
                 refs/heads/master, and cargo fetches HEAD (`git -C {} symbolic-ref HEAD \
                 refs/heads/master` sets it; the sparse index at /index/ is served either way)",
                git_dir.display(),
                head.escape_debug(),
                git_dir.display()
            );
            crate::log!("mirror serve: {msg}");
            Err(text(StatusCode::SERVICE_UNAVAILABLE, &format!("{msg}\n")))
        }
        Ok(Err(e)) => Err(e.response()),
        Err(e) => {
            crate::log!("mirror serve: git index task failed: {e}");
            Err(status_response(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// `git upload-pack --strict --stateless-rpc` on `git_dir` (the caller
/// adds `--advertise-refs` and the directory): only `HEAD` and `master`
/// advertised, no unadvertised wants, `safe.directory` exactly `git_dir`,
/// in a process group of its own, killed when dropped; stdout and stderr
/// piped.
fn upload_pack(git_dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = crate::gitenv::command();
    cmd.arg("-c")
        .arg(crate::gitenv::safe_directory(git_dir))
        .args([
            "-c",
            "uploadpack.hideRefs=refs/",
            "-c",
            "uploadpack.hideRefs=!refs/heads/master",
            "-c",
            "uploadpack.allowTipSHA1InWant=false",
            "-c",
            "uploadpack.allowReachableSHA1InWant=false",
            "-c",
            "uploadpack.allowAnySHA1InWant=false",
            "upload-pack",
            "--strict",
            "--stateless-rpc",
        ])
        .process_group(0);
    let mut cmd = Command::from(cmd);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// SIGKILL the process group git leads (git and the `pack-objects` it
/// started). Only called before git is reaped, so the group is ours.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// Read `from` to its end, keeping the first [`MAX_STDERR`] bytes.
async fn drain(mut from: impl AsyncRead + Unpin, into: &mut Vec<u8>) {
    let _ = (&mut from).take(MAX_STDERR).read_to_end(into).await;
    let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
}

/// git's stderr for the log, control characters escaped.
fn escaped(err: &[u8]) -> String {
    String::from_utf8_lossy(err)
        .trim()
        .escape_debug()
        .to_string()
}

/// Stream the request body into git's stdin, gunzipping on the way when
/// `gzip`; at most [`MAX_REQUEST`] bytes (after decompression) are passed,
/// and a gzip body is inflated a kilobyte at a time, so one frame cannot
/// inflate past the limit in memory.
async fn feed(
    body: Body,
    gzip: bool,
    stdin: &mut tokio::process::ChildStdin,
) -> Result<(), String> {
    use futures_util::StreamExt;
    use std::io::Write;
    /// Compressed bytes inflated at once: deflate expands at most ~1032×.
    const STEP: usize = 1024;
    let mut frames = body.into_data_stream();
    let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    let mut total = 0usize;
    let mut pass = |chunk: &[u8]| -> Result<(), String> {
        total += chunk.len();
        if total > MAX_REQUEST {
            return Err(format!("request body over {MAX_REQUEST} bytes, cut"));
        }
        Ok(())
    };
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| format!("reading the request body: {e}"))?;
        let Some(d) = decoder.as_mut() else {
            pass(&frame)?;
            write(stdin, &frame).await?;
            continue;
        };
        for step in frame.chunks(STEP) {
            d.write_all(step)
                .map_err(|e| format!("bad gzip request body: {e}"))?;
            let out = std::mem::take(d.get_mut());
            pass(&out)?;
            write(stdin, &out).await?;
        }
    }
    if let Some(d) = decoder {
        let rest = d
            .finish()
            .map_err(|e| format!("bad gzip request body: {e}"))?;
        pass(&rest)?;
        write(stdin, &rest).await?;
    }
    Ok(())
}

async fn write(stdin: &mut tokio::process::ChildStdin, data: &[u8]) -> Result<(), String> {
    stdin
        .write_all(data)
        .await
        .map_err(|e| format!("writing to git upload-pack: {e}"))
}

fn spawn_failed(e: std::io::Error) -> Response {
    let msg = if e.kind() == std::io::ErrorKind::NotFound {
        "the git binary was not found on PATH: serving the crates index over git \
         smart HTTP runs `git upload-pack`; install git (the sparse index at /index/ \
         works without it)"
            .to_string()
    } else {
        format!("cannot run git upload-pack: {e}")
    };
    crate::output::log(format_args!("mirror serve: {msg}"));
    text(StatusCode::SERVICE_UNAVAILABLE, &format!("{msg}\n"))
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        msg.to_owned(),
    )
        .into_response()
}

fn git_response(content_type: &'static str, body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_timeout() {
        let l = GitLimits::default();
        assert_eq!(l.body_deadline(), BODY_DEADLINE);
        assert_eq!(l.queue_wait(), QUEUE_WAIT);
        let short = GitLimits {
            max_processes: 1,
            timeout: Duration::from_secs(4),
        };
        assert_eq!(short.body_deadline(), Duration::from_secs(4));
        assert_eq!(short.queue_wait(), Duration::from_secs(2));
    }
}
