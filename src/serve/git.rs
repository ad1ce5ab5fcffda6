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
//! cargo fetches `+HEAD:refs/remotes/origin/HEAD`, so HEAD must name the
//! published branch, `master`, whatever the index's own HEAD names (`mirror
//! crate` works on other branches). Each request therefore runs git on a
//! small view made in the temporary directory: `HEAD` → `refs/heads/master`,
//! `refs/heads/master` = the index's `master` commit (read with gix), and
//! `objects/info/alternates` naming the index's object directory. Only
//! `master` is advertised (not `origin_master`, `working`, `mark`), and the
//! index itself is never written. The view is removed when git exits.
//!
//! Only protocol v0/v1 is spoken (what libgit2 speaks; the git CLI falls
//! back to it): `Git-Protocol: version=2` is not passed on, because a v2
//! upload-pack grants a `want` of any object in the object store, and
//! through `alternates` that would reach the other branches.
//!
//! git runs without a shell, with `safe.directory` set to the view (which
//! the server owns). A missing `git` binary answers `503` with a message
//! that says so, and is logged.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::io::ReaderStream;

use super::crates::{CratesState, IndexError};
use super::status_response;

/// Largest upload-pack request body passed to git (after decompression; a
/// longer one is cut, so git fails). A negotiation lists wants and haves:
/// kilobytes, rarely megabytes.
pub const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// The pkt-line that starts a smart HTTP advertisement for upload-pack.
const SERVICE_LINE: &[u8] = b"001e# service=git-upload-pack\n0000";

/// GET `.../info/refs?service=git-upload-pack`.
pub(crate) async fn info_refs(State(state): State<Arc<CratesState>>, req: Request) -> Response {
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
    let view = match View::create(&state).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut cmd = command(&view);
    cmd.arg("--advertise-refs").arg(&view.dir);
    cmd.stdin(Stdio::null());
    let out = match cmd.output().await {
        Ok(out) => out,
        Err(e) => return spawn_failed(e),
    };
    drop(view);
    if !out.status.success() {
        crate::output::log(format_args!(
            "mirror serve: git upload-pack --advertise-refs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return status_response(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let mut body = Vec::with_capacity(SERVICE_LINE.len() + out.stdout.len());
    body.extend_from_slice(SERVICE_LINE);
    body.extend_from_slice(&out.stdout);
    git_response(
        "application/x-git-upload-pack-advertisement",
        Body::from(body),
    )
}

/// POST `.../git-upload-pack`.
pub(crate) async fn upload_pack(State(state): State<Arc<CratesState>>, req: Request) -> Response {
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
    let view = match View::create(&state).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut cmd = command(&view);
    cmd.arg(&view.dir);
    cmd.stdin(Stdio::piped());
    cmd.stdout(Stdio::piped());
    cmd.stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return spawn_failed(e),
    };
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return status_response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    tokio::spawn(async move {
        if let Err(e) = feed(body, gzip, &mut stdin).await {
            // git sees a cut request and fails; its stderr is logged below.
            crate::output::log(format_args!("mirror serve: git-upload-pack request: {e}"));
        }
        let _ = stdin.shutdown().await;
    });
    // Reap git, log a failure, and remove the view only after git exits.
    tokio::spawn(async move {
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        match child.wait().await {
            Ok(status) if !status.success() => crate::output::log(format_args!(
                "mirror serve: git upload-pack failed ({status}): {}",
                String::from_utf8_lossy(&err).trim()
            )),
            Err(e) => crate::output::log(format_args!(
                "mirror serve: waiting for git upload-pack: {e}"
            )),
            Ok(_) => {}
        }
        drop(view);
    });
    git_response(
        "application/x-git-upload-pack-result",
        Body::from_stream(ReaderStream::new(stdout)),
    )
}

/// `git upload-pack --stateless-rpc` on the view, no shell, a clean
/// environment for git's repository discovery.
fn command(view: &View) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-c")
        .arg(format!("safe.directory={}", view.dir.display()))
        .arg("upload-pack")
        .arg("--stateless-rpc");
    for var in [
        "GIT_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_PROTOCOL",
    ] {
        cmd.env_remove(var);
    }
    cmd.stderr(Stdio::piped());
    cmd
}

/// Stream the request body into git's stdin, gunzipping on the way when
/// `gzip`; at most [`MAX_REQUEST`] bytes (after decompression) are passed.
async fn feed(
    body: Body,
    gzip: bool,
    stdin: &mut tokio::process::ChildStdin,
) -> Result<(), String> {
    use futures_util::StreamExt;
    use std::io::Write;
    let mut frames = body.into_data_stream();
    let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    let mut total = 0usize;
    let mut pass = |chunk: Vec<u8>| -> Result<Vec<u8>, String> {
        total += chunk.len();
        if total > MAX_REQUEST {
            return Err(format!("request body over {MAX_REQUEST} bytes, cut"));
        }
        Ok(chunk)
    };
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| format!("reading the request body: {e}"))?;
        let chunk = match decoder.as_mut() {
            Some(d) => {
                d.write_all(&frame)
                    .map_err(|e| format!("bad gzip request body: {e}"))?;
                std::mem::take(d.get_mut())
            }
            None => frame.to_vec(),
        };
        let chunk = pass(chunk)?;
        stdin
            .write_all(&chunk)
            .await
            .map_err(|e| format!("writing to git upload-pack: {e}"))?;
    }
    if let Some(d) = decoder {
        let rest = d
            .finish()
            .map_err(|e| format!("bad gzip request body: {e}"))?;
        let rest = pass(rest)?;
        stdin
            .write_all(&rest)
            .await
            .map_err(|e| format!("writing to git upload-pack: {e}"))?;
    }
    Ok(())
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

/// A throw-away bare repository whose HEAD is `master` and whose objects
/// are the index's (through `alternates`). Removed on drop.
struct View {
    dir: PathBuf,
}

impl View {
    async fn create(state: &Arc<CratesState>) -> Result<View, Response> {
        let st = Arc::clone(state);
        let made = tokio::task::spawn_blocking(move || -> Result<View, IndexError> {
            let (master, objects) =
                st.with_repo(|repo| {
                    let master = st.master(repo)?;
                    let objects = std::fs::canonicalize(repo.common_dir().join("objects"))
                        .map_err(|e| IndexError::Broken {
                            path: st.index_dir.clone(),
                            message: format!("no object directory: {e}"),
                        })?;
                    Ok((master, objects))
                })?;
            View::write(&master.to_string(), &objects).map_err(|e| IndexError::Broken {
                path: st.index_dir.clone(),
                message: format!("cannot create the git view in the temporary directory: {e}"),
            })
        })
        .await;
        match made {
            Ok(Ok(view)) => Ok(view),
            Ok(Err(e)) => Err(e.response()),
            Err(e) => {
                crate::output::log(format_args!("mirror serve: git view task failed: {e}"));
                Err(status_response(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
    }

    fn write(master: &str, objects: &Path) -> std::io::Result<View> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mirror-serve-git-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let view = View { dir };
        let d = &view.dir;
        std::fs::create_dir_all(d.join("refs/heads"))?;
        std::fs::create_dir_all(d.join("objects/info"))?;
        std::fs::write(d.join("HEAD"), "ref: refs/heads/master\n")?;
        std::fs::write(
            d.join("config"),
            "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
        )?;
        std::fs::write(d.join("refs/heads/master"), format!("{master}\n"))?;
        std::fs::write(
            d.join("objects/info/alternates"),
            format!("{}\n", objects.display()),
        )?;
        Ok(view)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
