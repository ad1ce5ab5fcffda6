//! Bundles: tar.gz archives that carry an increment of a mirror tree across
//! an air gap.
//!
//! # Format
//!
//! A bundle is a tar stream, gzip-compressed. Every member is a regular file
//! whose path is relative to the mirror root, `/`-separated, and keeps the
//! tree layout (`rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init`,
//! `crates/se/rd/serde-1.0.0.crate`, …). Bundles we write start with
//! `MIRROR-BUNDLE.json` ([`manifest`]): the ecosystem, the range, and every
//! member with its size and SHA-256. Archives made by romt have no manifest
//! and are still accepted; the caller then verifies what was unpacked with
//! the ecosystem's own rules (sidecar digests, index checksums, signatures).
//!
//! The gzip layer may consist of several concatenated gzip members (RFC 1952
//! allows it; GNU tar, Python's `tarfile` and flate2's `MultiGzDecoder` read
//! them as one stream). [`pack`] uses this to store already-compressed
//! payloads (`.crate`, `.tar.xz`, `.pkg.tar.zst`, Hex tarballs, …) with
//! level-0 deflate and compress the rest normally, starting a new gzip
//! member whenever the mode changes. Packing therefore runs near disk
//! speed, and the archive is still a plain `.tar.gz`.
//!
//! Tar headers are deterministic: GNU format, mode 0644, uid/gid 0, no user
//! or group names, mtime of the source file. Paths longer than the header
//! holds use the GNU long-name extension (the tar crate writes it).
//!
//! # Packing
//!
//! [`pack`] hashes every member first (in parallel), writes the manifest,
//! then streams the members. The archive is written to a temporary sibling
//! and renamed over its destination only when complete; a member that
//! changes between hashing and writing (size or mtime) fails the pack.
//!
//! # Unpacking
//!
//! [`unpack`] treats every archive as hostile. It streams the archive
//! (never holding it in memory) and refuses, naming the archive and the
//! member:
//!
//! - any path that is absolute, holds an empty, `.` or `..` component, a
//!   backslash or a NUL, is not UTF-8, or lies under `.mirror/`;
//! - any entry that is not a regular file (symlinks, hard links, devices,
//!   FIFOs, sparse files, …); directories and pax global headers are
//!   accepted and ignored;
//! - a path seen twice, or a file where another member needs a directory;
//! - a path outside the caller's allowed prefixes;
//! - with a manifest: a member it does not list, a member it lists but the
//!   archive lacks, a size or SHA-256 that differs, a manifest that is not
//!   the first member or not valid, or one naming another ecosystem;
//! - an archive that needs more disk space or more inodes than the file
//!   system holding the staging directory has free, keeping a margin:
//!   each file counts as its size rounded up to the file system's block
//!   (a one-byte file takes a block), plus its directory entry and an
//!   inode, each directory as a block and an inode; with a manifest, all
//!   it lists is checked before the first member is written; without
//!   one, each member's header size is added up and checked before that
//!   member is written (a header may claim gigabytes its data lacks);
//! - more than a few MiB of data after the end of the tar archive (tar
//!   writers pad to a record of 10 KiB; a stream of zeros that decompresses
//!   without end is a gzip bomb, and is not read to its end);
//! - one member whose headers (with GNU long-name and pax records, which
//!   the tar reader holds in memory) take more than 1 MiB.
//!
//! A member's data is read only up to the size in its header (what
//! follows is the next header, checked as such), so neither memory nor
//! disk use depends on what an archive claims beyond these checks.
//!
//! The layout it owns:
//!
//! ```text
//! <root>/.mirror/staging/<pid>-<nanos>-<n>/<member path>   one dir per unpack
//! ```
//!
//! Every member is written under a fresh staging directory (created inside
//! the root, so renames stay on one file system and nothing is ever written
//! outside the root). Only when the whole archive has been read and checked
//! are the staged files renamed over their destinations: first everything
//! else, then the caller's `publish_last` paths (metadata that refers to the
//! rest), so a server reading the tree never sees metadata before the files
//! it names. On any error nothing is published, and the staging directory is
//! removed in every case.
//!
//! Details that follow from this:
//!
//! - The manifest must be the very first entry (a directory entry before it
//!   counts; pax global headers do not). Paths set by pax or GNU long-name
//!   headers are checked like any other.
//! - Staged files keep the archive's mtime (unless no HTTP date can carry
//!   it: before 1970 or after 9999) and are synced before publish, so a
//!   crash leaves the old or the new bytes, never a torn file.
//! - Publishing is a series of renames, checked beforehand against the
//!   existing tree (a directory where a file goes, a file where a
//!   directory goes); an I/O error midway can leave some files published,
//!   but never metadata ahead of the files it names. A directory the tree
//!   lacks is renamed into place whole, unless it holds a file published
//!   last.
//! - Staged files are made durable with one `syncfs` of the staging file
//!   system before the first rename (an `fsync` per file costs a disk
//!   flush each), and directories are created once each: unpacking
//!   200,000 small files stays near `tar x`. A symlinked directory
//!   the administrator placed inside the root is followed; a symlink at a
//!   file's own path is replaced, not followed.
//! - Without a manifest nothing is hashed: the caller checks the files
//!   with the ecosystem's rules, which it must do for romt archives anyway.

mod gz;
pub mod manifest;
mod pack;
mod unpack;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use manifest::{Manifest, Member, Range, MANIFEST_NAME};
pub use pack::{pack, pack_and_report, pack_removing, PackOptions, PackSummary};
pub use unpack::{published_digest, unpack, StagedCheck, UnpackOptions, UnpackSummary};

use crate::store::META_DIR;
use crate::verify::digest::DigestMismatch;
use crate::verify::Sha256Digest;

/// Everything that can go wrong while packing or unpacking a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A member of an archive is unacceptable (hostile, unlisted, wrong size…).
    #[error("{}: member {member:?}: {problem}", archive.display())]
    Member {
        /// The archive.
        archive: PathBuf,
        /// The member's path as found in the archive (lossy UTF-8).
        member: String,
        /// What is wrong with it.
        problem: MemberProblem,
    },
    /// The manifest of an archive is unacceptable.
    #[error("{}: {problem}", archive.display())]
    Manifest {
        /// The archive.
        archive: PathBuf,
        /// What is wrong with it.
        problem: manifest::ManifestError,
    },
    /// The manifest names another ecosystem than the caller expects.
    #[error("{}: bundle is for ecosystem {found:?}, expected {expected:?}", archive.display())]
    WrongEcosystem {
        /// The archive.
        archive: PathBuf,
        /// The ecosystem the caller unpacks.
        expected: String,
        /// The ecosystem in the manifest.
        found: String,
    },
    /// A member's content does not hash to what the manifest says.
    #[error(transparent)]
    Digest(#[from] DigestMismatch),
    /// A file to pack is not acceptable.
    #[error("cannot pack {member:?}: {problem}")]
    PackMember {
        /// The member path given.
        member: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The ecosystem's own check of the staged files failed (e.g. a
    /// romt archive whose file does not match its `.sha256`).
    #[error("{}: contents failed verification; nothing was published:\n  {}", archive.display(), message.replace('\n', "\n  "))]
    Rejected {
        /// The archive.
        archive: PathBuf,
        /// What the check found.
        message: String,
    },
    /// The file system holding the staging directory has too little free
    /// space, or too few free inodes, for what the archive says it holds.
    #[error(
        "{}: not enough disk space to unpack: {what} {short}, but {} {}; nothing was written",
        archive.display(), dir.display(), short.free_text()
    )]
    NoSpace {
        /// The archive.
        archive: PathBuf,
        /// Where the claim comes from ("the manifest lists", "the member headers up to … claim").
        what: String,
        /// What it needs and what is free.
        short: Box<SpaceShortfall>,
        /// The staging directory.
        dir: PathBuf,
    },
    /// The decompressed stream goes on after the end of the tar archive
    /// for longer than any tar writer pads it (a gzip bomb of zeros).
    #[error(
        "{}: more than {} bytes of data after the end of the tar archive; refusing to read on",
        archive.display(), unpack::MAX_TRAILING
    )]
    TrailingData {
        /// The archive.
        archive: PathBuf,
    },
    /// Versioned files (a `.crate`, a toolchain tarball, a package) are
    /// published already with other bytes than the archive carries.
    #[error("{}", changed_text(archive, files))]
    Changed {
        /// The archive.
        archive: PathBuf,
        /// Every such file, by path.
        files: Vec<ChangedFile>,
    },
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A versioned file published with other bytes than an archive carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Its path in the tree.
    pub path: String,
    /// The digest of the published file.
    pub published: Sha256Digest,
    /// The digest of the file in the archive.
    pub archive: Sha256Digest,
}

fn changed_text(archive: &Path, files: &[ChangedFile]) -> String {
    let mut s = format!(
        "{}: {} published versioned file{} would be replaced by other bytes; \
         nothing was published:",
        archive.display(),
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    for f in files {
        s.push_str(&format!(
            "\n  - {}: published sha256 {}, the archive's sha256 {}",
            f.path, f.published, f.archive
        ));
    }
    s.push_str(
        "\nA published versioned file never changes: the archive was altered, or built \
         from an upstream that replaced a published file. The published files are kept. \
         Check where the archive comes from; if a published file is the wrong one, \
         remove it, then unpack again.",
    );
    s
}

impl BundleError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        BundleError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What an archive needs on disk beside what the file system has free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceShortfall {
    /// Files claimed.
    pub files: u64,
    /// Their bytes, as the archive gives them.
    pub bytes: u64,
    /// Bytes they take on disk: block-rounded, with directories.
    pub needed: u64,
    /// Inodes they take (files and directories).
    pub inodes: u64,
    /// The allocation unit of the file system.
    pub block: u64,
    /// Bytes free.
    pub free: u64,
    /// Inodes free (`None`: no limit).
    pub free_inodes: Option<u64>,
}

impl SpaceShortfall {
    fn free_text(&self) -> String {
        let inodes = self
            .free_inodes
            .map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        format!(
            "has only {} bytes and {inodes} inodes free (and {} bytes and {} inodes are kept spare)",
            self.free,
            unpack::SPACE_MARGIN,
            unpack::INODE_MARGIN
        )
    }
}

impl fmt::Display for SpaceShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes in {} files; on disk they take {} bytes (each file rounded up to \
             blocks of {} bytes, with directory entries) and {} inodes (files and directories)",
            self.bytes, self.files, self.needed, self.block, self.inodes
        )
    }
}

/// What is wrong with one member of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberProblem {
    /// The path is not a plain relative path.
    Path(PathProblem),
    /// The entry is not a regular file (the tar type is named).
    EntryType(String),
    /// The path occurs twice.
    Duplicate,
    /// The path is a file where another member needs a directory, or
    /// the reverse.
    Conflict(String),
    /// The path lies outside every allowed prefix.
    NotAllowed(Vec<String>),
    /// The path lies under `.mirror/` (our own bookkeeping).
    Reserved,
    /// The manifest does not list it.
    NotInManifest,
    /// The manifest lists it but the archive lacks it (and `others` more).
    MissingFromArchive {
        /// How many other listed members are missing too.
        others: usize,
    },
    /// The size differs from the manifest.
    SizeMismatch {
        /// Size in the manifest.
        expected: u64,
        /// Size in the archive.
        actual: u64,
    },
    /// `MIRROR-BUNDLE.json` found after other members.
    ManifestNotFirst,
    /// The destination in the tree cannot be replaced by a file.
    Destination(String),
}

impl fmt::Display for MemberProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberProblem::Path(p) => write!(f, "{p}"),
            MemberProblem::EntryType(t) => {
                write!(f, "is a {t}; only regular files are accepted")
            }
            MemberProblem::Duplicate => f.write_str("occurs twice in the archive"),
            MemberProblem::Conflict(other) => {
                write!(f, "conflicts with member {other:?} (file and directory)")
            }
            MemberProblem::NotAllowed(prefixes) => write!(
                f,
                "lies outside the paths this bundle may hold ({})",
                prefixes.join(", ")
            ),
            MemberProblem::Reserved => {
                write!(f, "lies under {META_DIR}/, which bundles may not write")
            }
            MemberProblem::NotInManifest => {
                write!(f, "is not listed in {MANIFEST_NAME}")
            }
            MemberProblem::MissingFromArchive { others } => {
                write!(
                    f,
                    "is listed in {MANIFEST_NAME} but missing from the archive"
                )?;
                if *others > 0 {
                    write!(f, " (and {others} more)")?;
                }
                Ok(())
            }
            MemberProblem::SizeMismatch { expected, actual } => write!(
                f,
                "size mismatch\n  expected size: {expected}\n  actual size:   {actual}"
            ),
            MemberProblem::ManifestNotFirst => {
                write!(f, "{MANIFEST_NAME} must be the first member")
            }
            MemberProblem::Destination(why) => write!(f, "cannot publish: {why}"),
        }
    }
}

/// Why a path is not a plain relative path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// Empty path.
    #[error("empty path")]
    Empty,
    /// Starts with `/`.
    #[error("absolute path")]
    Absolute,
    /// Contains a backslash.
    #[error("path contains a backslash")]
    Backslash,
    /// Contains a NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
    /// Not UTF-8.
    #[error("path is not UTF-8")]
    NotUtf8,
    /// An empty component (`a//b`, trailing `/`).
    #[error("path has an empty component")]
    EmptyComponent,
    /// A `.` or `..` component.
    #[error("path has a {0:?} component")]
    DotComponent(&'static str),
}

/// Check that `path` is a plain relative path: UTF-8, `/`-separated, every
/// component a non-empty name other than `.` and `..`, no backslash or NUL.
pub fn check_member_path(path: &[u8]) -> Result<&str, PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.contains(&0) {
        return Err(PathProblem::Nul);
    }
    if path.contains(&b'\\') {
        return Err(PathProblem::Backslash);
    }
    if path[0] == b'/' {
        return Err(PathProblem::Absolute);
    }
    let path = std::str::from_utf8(path).map_err(|_| PathProblem::NotUtf8)?;
    for c in path.split('/') {
        match c {
            "" => return Err(PathProblem::EmptyComponent),
            "." => return Err(PathProblem::DotComponent(".")),
            ".." => return Err(PathProblem::DotComponent("..")),
            _ => {}
        }
    }
    Ok(path)
}

/// `base` joined with a member path checked by [`check_member_path`].
fn join_member(base: &Path, member: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    p.extend(member.split('/'));
    p
}

/// Whether `ext` names an already-compressed format (by file name).
fn is_compressed_name(path: &str) -> bool {
    const EXTS: &[&str] = &[
        ".crate", ".gz", ".tgz", ".xz", ".txz", ".zst", ".bz2", ".tbz", ".lz", ".lzma", ".lz4",
        ".zip", ".ez", ".7z", ".br", ".jar", ".whl", ".deb", ".rpm", ".png", ".jpg",
        // Hex tarballs: an uncompressed tar around `contents.tar.gz`.
        ".tar",
    ];
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    EXTS.iter().any(|e| lower.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_pass() {
        for p in [
            "a",
            "a/b",
            "rustup/archive/1.28.2/x/rustup-init",
            "x/1:2.0-1.pkg",
            ".hidden/a",
            "a..b",
        ] {
            assert_eq!(check_member_path(p.as_bytes()), Ok(p));
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let cases: &[(&[u8], PathProblem)] = &[
            (b"", PathProblem::Empty),
            (b"/etc/passwd", PathProblem::Absolute),
            (b"a/../../b", PathProblem::DotComponent("..")),
            (b"..", PathProblem::DotComponent("..")),
            (b"./a", PathProblem::DotComponent(".")),
            (b"a//b", PathProblem::EmptyComponent),
            (b"a/", PathProblem::EmptyComponent),
            (b"a\\..\\b", PathProblem::Backslash),
            (b"a\0b", PathProblem::Nul),
            (b"a/\xff", PathProblem::NotUtf8),
        ];
        for (p, want) in cases {
            assert_eq!(check_member_path(p).unwrap_err(), *want, "{p:?}");
        }
    }

    #[test]
    fn compressed_names() {
        for p in [
            "crates/se/rd/serde-1.0.0.crate",
            "dist/x.tar.xz",
            "a/b.pkg.tar.zst",
            "hex/tarballs/a-1.0.0.tar",
            "a/hex-2.0.ez",
        ] {
            assert!(is_compressed_name(p), "{p}");
        }
        for p in [
            "rustup/release-stable.toml",
            "a/rustup-init",
            "a.sha256",
            "a.sig",
            "hex/names",
        ] {
            assert!(!is_compressed_name(p), "{p}");
        }
    }
}
