//! Request paths → validated segments.
//!
//! The raw request path (as sent on the wire, before any decoding) is split
//! on `/`, then each segment is percent-decoded exactly once and checked on
//! its own. A segment that decodes to something a file name may not hold
//! (`/`, `\`, NUL, control characters, `.` or `..`) makes the whole request
//! malformed (400). A segment that is a valid name but one we never serve
//! (dot-files such as `.git` or `.mirror`, temporary files, `NAME.partial`
//! downloads) is answered as missing (404), so a client cannot tell a hidden
//! file from an absent one.
//!
//! Rewrites produce on-disk segments that go through [`check_segment`] too.

use axum::http::StatusCode;

/// Longest raw path accepted (bytes). Real clients stay far below this.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path is malformed or tries to escape the tree (400).
    #[error("bad request path: {0}")]
    Malformed(&'static str),
    /// A name that is never served: dot-files, temporary and partial files (404).
    #[error("not found")]
    Hidden,
    /// Nothing to serve there: the root, a directory (404).
    #[error("not found")]
    NotFound,
}

impl Refusal {
    /// The HTTP status that answers this refusal.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::Hidden | Refusal::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// Split and decode a raw request path (`/a/b%20c`) into segments
/// (`["a", "b c"]`). The query string must already be removed.
///
/// `/` (no segments) and a trailing `/` are [`Refusal::NotFound`]: there are
/// no directory listings.
pub fn parse_request_path(raw: &str) -> Result<Vec<String>, Refusal> {
    if raw.len() > MAX_PATH_LEN {
        return Err(Refusal::Malformed("path too long"));
    }
    let rest = raw
        .strip_prefix('/')
        .ok_or(Refusal::Malformed("path must start with /"))?;
    if rest.is_empty() {
        return Err(Refusal::NotFound);
    }
    let raw_segments: Vec<&str> = rest.split('/').collect();
    let last = raw_segments.len() - 1;
    let mut segments = Vec::with_capacity(raw_segments.len());
    let mut trailing_slash = false;
    for (i, raw_seg) in raw_segments.into_iter().enumerate() {
        if raw_seg.is_empty() {
            if i == last {
                trailing_slash = true;
                continue;
            }
            return Err(Refusal::Malformed("empty path segment"));
        }
        let seg = decode_once(raw_seg)?;
        check_segment(&seg)?;
        segments.push(seg);
    }
    if trailing_slash {
        return Err(Refusal::NotFound);
    }
    Ok(segments)
}

/// Check one decoded segment: a plain file or directory name that we serve.
pub fn check_segment(seg: &str) -> Result<(), Refusal> {
    if seg.is_empty() {
        return Err(Refusal::Malformed("empty path segment"));
    }
    if seg == "." || seg == ".." {
        return Err(Refusal::Malformed("dot segment"));
    }
    for c in seg.chars() {
        match c {
            '/' => return Err(Refusal::Malformed("encoded slash")),
            '\\' => return Err(Refusal::Malformed("backslash")),
            '\0' => return Err(Refusal::Malformed("NUL byte")),
            c if c.is_control() => return Err(Refusal::Malformed("control character")),
            // A drive or stream prefix would make the joined path absolute.
            ':' if cfg!(windows) => return Err(Refusal::Malformed("colon")),
            _ => {}
        }
    }
    if is_hidden_name(seg) {
        return Err(Refusal::Hidden);
    }
    Ok(())
}

/// Names that exist in a tree but are never served: dot-files and
/// dot-directories (`.mirror/`, `.git/`, the store's
/// `.NAME.tmp.PID.N.RANDOM` temporaries) and the engine's `NAME.partial` downloads.
pub fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".partial")
}

/// Percent-decode one raw segment, exactly once. A `%` not followed by two
/// hex digits, or a result that is not UTF-8, is malformed.
fn decode_once(raw: &str) -> Result<String, Refusal> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(Refusal::Malformed("malformed percent-encoding"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Refusal::Malformed("path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<String> {
        parse_request_path(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    fn malformed(raw: &str) {
        assert!(
            matches!(parse_request_path(raw), Err(Refusal::Malformed(_))),
            "{raw}: {:?}",
            parse_request_path(raw)
        );
    }

    #[test]
    fn plain_paths_split_into_segments() {
        assert_eq!(
            ok("/dist/channel-rust-stable.toml"),
            ["dist", "channel-rust-stable.toml"]
        );
        assert_eq!(ok("/a"), ["a"]);
        assert_eq!(
            ok("/archlinux/core/os/x86_64/pkg-1:2.0-1-x86_64.pkg.tar.zst"),
            [
                "archlinux",
                "core",
                "os",
                "x86_64",
                "pkg-1:2.0-1-x86_64.pkg.tar.zst"
            ]
        );
        assert_eq!(
            ok("/crates/a/a-1.0.0+build.crate"),
            ["crates", "a", "a-1.0.0+build.crate"]
        );
    }

    #[test]
    fn percent_decoding_happens_exactly_once() {
        assert_eq!(ok("/a%20b"), ["a b"]);
        assert_eq!(ok("/pkg-1%3A2.0"), ["pkg-1:2.0"]);
        // `%252e` decodes to the literal text `%2e`, not to `.`.
        assert_eq!(ok("/%252e%252e/x"), ["%2e%2e", "x"]);
        assert_eq!(ok("/caf%C3%A9"), ["café"]);
    }

    #[test]
    fn traversal_and_separators_are_malformed() {
        for raw in [
            "/..",
            "/../etc/passwd",
            "/a/../../b",
            "/./a",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/.%2e/x",
            "/%2e/x",
            "/a%2fb",
            "/a%2F..%2Fb",
            "/a%5cb",
            "/a\\b",
            "/..\\x",
            "/a%00b",
            "/a\0b",
            "/a%0ab",
            "/a//b",
            "//etc/passwd",
            "/a%zz",
            "/a%2",
            "/a%",
            "/%ff%fe",
            "relative",
            "",
        ] {
            malformed(raw);
        }
    }

    #[test]
    fn hidden_names_are_not_found() {
        for raw in [
            "/.mirror/state.json",
            "/.git/config",
            "/git/crates.io-index/.git/config",
            "/%2emirror/state.json",
            "/dist/.x.toml.tmp.123",
            "/dist/rust-1.0.tar.xz.partial",
            "/dist/rust-1.0.tar.xz%2epartial",
        ] {
            assert_eq!(parse_request_path(raw), Err(Refusal::Hidden), "{raw}");
        }
    }

    #[test]
    fn root_and_directories_are_not_found() {
        assert_eq!(parse_request_path("/"), Err(Refusal::NotFound));
        assert_eq!(parse_request_path("/dist/"), Err(Refusal::NotFound));
    }

    #[test]
    fn overlong_paths_are_malformed() {
        malformed(&format!("/{}", "a".repeat(MAX_PATH_LEN)));
    }

    #[test]
    fn refusal_statuses() {
        assert_eq!(Refusal::Malformed("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(Refusal::Hidden.status(), StatusCode::NOT_FOUND);
        assert_eq!(Refusal::NotFound.status(), StatusCode::NOT_FOUND);
    }
}
