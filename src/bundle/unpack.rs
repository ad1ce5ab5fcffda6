//! Reading bundles safely; see the module docs of [`crate::bundle`].

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::manifest::{Manifest, ManifestError, MANIFEST_NAME};
use super::{
    check_member_path, join_member, BundleError, ChangedFile, MemberProblem, SpaceShortfall,
};
use crate::report::{Outcome, Reporter};
use crate::store::{copy_atomic, meta_path, FreeSpace, META_DIR};
use crate::verify::digest::{hash_file, hash_reader, DigestMismatch, Hasher};
use crate::verify::Sha256Digest;
use rayon::prelude::*;

/// The largest manifest read (a crates bundle of 100k files is ~20 MB).
const MAX_MANIFEST: u64 = 256 << 20;

/// Free space left untouched by an unpack, beyond what the archive needs:
/// room for the state file, logs and whatever else shares the disk.
pub(crate) const SPACE_MARGIN: u64 = 64 << 20;

/// The most data read after the end of the tar archive. Tar writers pad
/// the archive to a whole record (GNU tar and Python: 10 KiB by default;
/// a blocking factor of 2048 makes 1 MiB); more is not an archive's.
pub(crate) const MAX_TRAILING: u64 = 4 << 20;

/// The most bytes the tar reader may consume between two entries: the
/// header blocks, GNU long-name/long-link data and pax records of one
/// entry, which it reads into memory whole. Real ones hold a path of a
/// few KiB.
pub(crate) const MAX_HEADERS: u64 = 1 << 20;

/// Passes the decompressed stream to the tar reader; while a budget is
/// set (the tar reader is looking for the next entry), refuses to read
/// past it, so a long-name or pax entry claiming gigabytes cannot make
/// the tar reader hold them in memory.
struct HeaderBound<R> {
    inner: R,
    left: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for HeaderBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.left.get() else {
            return self.inner.read(buf);
        };
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the headers of one member (with long-name and pax records) take more than {MAX_HEADERS} bytes"
                ),
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left.set(Some(left - n as u64));
        Ok(n)
    }
}

/// Inodes left free by an unpack, beyond what the archive needs.
pub(crate) const INODE_MARGIN: u64 = 1024;

/// Bytes a directory entry takes besides its name (ext4: 8, padded to 4;
/// other file systems more), counted for every file and directory.
const ENTRY_OVERHEAD: u64 = 32;

/// Adds up what an archive says it needs on disk and compares it with the
/// free space and inodes measured once before the first member is
/// written. Each file counts as its size rounded up to whole blocks (a
/// file of one byte takes a block), plus its directory entry and one
/// inode; each directory as one block, its entry and one inode.
struct SpaceGuard {
    /// The staging file system; `None`: unknown, no check.
    free: Option<FreeSpace>,
    /// Files claimed.
    files: u64,
    /// Their bytes as the archive gives them.
    bytes: u64,
    /// Bytes they take on disk, directories included.
    needed: u64,
    /// Inodes they take.
    inodes: u64,
}

impl SpaceGuard {
    fn new(free: Option<FreeSpace>) -> Self {
        SpaceGuard {
            free,
            files: 0,
            bytes: 0,
            needed: 0,
            inodes: 0,
        }
    }

    fn block(&self) -> u64 {
        self.free.map_or(4096, |f| f.block.max(1))
    }

    /// Count one file of `size` bytes whose name (last component) is
    /// `name_len` bytes long.
    fn file(&mut self, size: u64, name_len: usize) {
        let block = self.block();
        let on_disk = size.div_ceil(block).saturating_mul(block);
        self.files = self.files.saturating_add(1);
        self.bytes = self.bytes.saturating_add(size);
        self.needed = self
            .needed
            .saturating_add(on_disk)
            .saturating_add(ENTRY_OVERHEAD)
            .saturating_add(name_len as u64);
        self.inodes = self.inodes.saturating_add(1);
    }

    /// Count one directory whose name is `name_len` bytes long.
    fn dir(&mut self, name_len: usize) {
        self.needed = self
            .needed
            .saturating_add(self.block())
            .saturating_add(ENTRY_OVERHEAD)
            .saturating_add(name_len as u64);
        self.inodes = self.inodes.saturating_add(1);
    }

    /// `Err` when what was counted and the margins do not fit.
    fn check(&self) -> Result<(), SpaceShortfall> {
        let Some(free) = self.free else {
            return Ok(());
        };
        let bytes_short = self
            .needed
            .checked_add(SPACE_MARGIN)
            .is_none_or(|total| total > free.bytes);
        let inodes_short = free.inodes.is_some_and(|avail| {
            self.inodes
                .checked_add(INODE_MARGIN)
                .is_none_or(|total| total > avail)
        });
        if bytes_short || inodes_short {
            return Err(SpaceShortfall {
                files: self.files,
                bytes: self.bytes,
                needed: self.needed,
                inodes: self.inodes,
                block: self.block(),
                free: free.bytes,
                free_inodes: free.inodes,
            });
        }
        Ok(())
    }
}

/// The length of the last component of a `/`-separated path.
fn name_len(path: &str) -> usize {
    path.rsplit('/').next().map_or(0, str::len)
}

/// What [`unpack`] accepts and how it publishes.
#[derive(Clone, Default)]
pub struct UnpackOptions {
    /// Path prefixes members must start with, e.g. `["rustup/archive/"]`;
    /// a member outside all of them is an error naming it. Empty: any
    /// plain relative path outside `.mirror/` is accepted.
    pub allowed_prefixes: Vec<String>,
    /// When set, a manifest naming another ecosystem is refused (archives
    /// without a manifest are accepted).
    pub expect_ecosystem: Option<String>,
    /// Members published after all others, in the order of these rules
    /// (then archive order). A rule ending in `/` matches the paths under
    /// it; a rule `*SUFFIX` (no `/`) matches file names ending in SUFFIX
    /// in any directory (`*.db`); another rule with no `/` matches a file
    /// name in any directory; any other rule matches one path exactly.
    pub publish_last: Vec<String>,
    /// The ecosystem's own check, run on the staged files (staging
    /// directory, member paths) after every entry passed the archive
    /// rules and before anything is published. This is what verifies
    /// archives without a manifest (romt's).
    pub check_staged: Option<StagedCheck>,
    /// Which member paths are versioned files (a `.crate`, a toolchain
    /// tarball, a package): once published their bytes never change. A
    /// member whose destination holds other bytes refuses the whole
    /// archive before anything is published; one holding the same bytes
    /// is left as it is. `None`: no member is versioned.
    pub versioned: Option<fn(&str) -> bool>,
    /// When set, the range the archive's manifest must carry (the inner
    /// `None`: no manifest, or one without a range): what the caller
    /// decided on from [`read_manifest_of`] is what gets published, even
    /// if the file was replaced in between. Anything else refuses the
    /// archive before a member is written.
    pub expect_range: Option<Option<super::Range>>,
}

/// See [`UnpackOptions::check_staged`]: `Err` carries the message shown.
/// A closure, so that a check can carry its configuration (a keyring, a
/// signature policy); a plain `fn` works too: `Arc::new(check)`.
pub type StagedCheck = Arc<dyn Fn(&Path, &[String]) -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for UnpackOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnpackOptions")
            .field("allowed_prefixes", &self.allowed_prefixes)
            .field("expect_ecosystem", &self.expect_ecosystem)
            .field("publish_last", &self.publish_last)
            .field(
                "check_staged",
                &self.check_staged.as_ref().map(|_| "<check>"),
            )
            .field("versioned", &self.versioned.map(|_| "<rule>"))
            .field("expect_range", &self.expect_range)
            .finish()
    }
}

/// What [`unpack`] published.
#[derive(Debug, Clone)]
pub struct UnpackSummary {
    /// The manifest, if the archive had one (romt archives do not).
    pub manifest: Option<Manifest>,
    /// Every file published, relative to the root, in archive order.
    pub files: Vec<String>,
    /// Total size of the files published.
    pub bytes: u64,
}

/// Stream `archive`, stage every member under
/// `<root>/.mirror/staging/<unique>/`, check it (see the module docs),
/// then publish into `root`. On error nothing is published; the staging
/// directory is removed in every case.
pub fn unpack(
    archive: &Path,
    root: &Path,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<UnpackSummary, BundleError> {
    let staging = Staging::create(root)?;
    let staged = {
        let file = File::open(archive)
            .map_err(|e| BundleError::io(format!("cannot open {}", archive.display()), e))?;
        let len = file.metadata().map(|m| m.len()).ok();
        reporter.begin("unpack", 0, len);
        let r = stage(archive, file, &staging.dir, opts, reporter);
        reporter.end();
        r?
    };
    if let Some(check) = &opts.check_staged {
        let files: Vec<String> = staged.files.iter().map(|f| f.path.clone()).collect();
        check(&staging.dir, &files).map_err(|message| BundleError::Rejected {
            archive: archive.to_path_buf(),
            message,
        })?;
    }
    publish(archive, root, &staging.dir, &staged, opts, reporter)?;
    let bytes = staged.files.iter().map(|f| f.size).sum();
    Ok(UnpackSummary {
        manifest: staged.manifest,
        files: staged.files.into_iter().map(|f| f.path).collect(),
        bytes,
    })
}

/// A fresh directory under `<root>/.mirror/staging/`, removed when dropped.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn create(root: &Path) -> Result<Staging, BundleError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let parent = meta_path(root, "staging");
        fs::create_dir_all(&parent)
            .map_err(|e| BundleError::io(format!("cannot create {}", parent.display()), e))?;
        // Staging directories of runs that were killed are not needed.
        crate::store::remove_abandoned(&parent, "");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("{}-{nanos}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(Staging { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(BundleError::io(
                        format!("cannot create {}", dir.display()),
                        e,
                    ))
                }
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct StagedFile {
    path: String,
    size: u64,
    /// Its digest, as the manifest lists it (`None`: no manifest).
    sha256: Option<Sha256Digest>,
}

struct Staged {
    manifest: Option<Manifest>,
    files: Vec<StagedFile>,
}

/// Read the whole archive into `dir`, checking every entry.
fn stage(
    archive: &Path,
    file: File,
    dir: &Path,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<Staged, BundleError> {
    let read_err = |e: io::Error| BundleError::io(format!("cannot read {}", archive.display()), e);
    let member_err = |member: &[u8], problem: MemberProblem| BundleError::Member {
        archive: archive.to_path_buf(),
        member: String::from_utf8_lossy(member).into_owned(),
        problem,
    };

    let input = BufReader::with_capacity(
        1 << 20,
        Progress {
            inner: file,
            reporter,
        },
    );
    let header_budget = Rc::new(Cell::new(None));
    let mut tar = tar::Archive::new(HeaderBound {
        inner: MultiGzDecoder::new(input),
        left: Rc::clone(&header_budget),
    });
    let mut manifest: Option<Manifest> = None;
    let mut expected: HashMap<String, (u64, Sha256Digest)> = HashMap::new();
    let mut files: Vec<StagedFile> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Every directory some member needs, with the first member needing it.
    let mut dirs: HashMap<String, String> = HashMap::new();
    let mut first = true;
    let mut range_checked = false;
    let mut space = SpaceGuard::new(crate::store::free_space(dir));
    let no_space = |what: String, short: SpaceShortfall| BundleError::NoSpace {
        archive: archive.to_path_buf(),
        what,
        short: Box::new(short),
        dir: dir.to_path_buf(),
    };
    // One buffer for every member's data.
    let mut buf = vec![0u8; 256 * 1024];

    let mut entries = tar.entries().map_err(read_err)?;
    // The member read last, to say where an archive stops being one.
    let mut last: Option<String> = None;
    loop {
        // What the tar reader consumes to find the next entry (headers,
        // long names, pax records: all held in memory) is bounded.
        header_budget.set(Some(MAX_HEADERS));
        let next = entries.next();
        header_budget.set(None);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|e| {
            let at = last.as_deref().map_or_else(
                || "at the start".to_string(),
                |m| format!("after member {m:?}"),
            );
            read_err(io::Error::new(
                e.kind(),
                format!(
                    "{at}: no valid tar header ({e}); the archive is corrupt, or a \
                     member's data runs past the size its header gives"
                ),
            ))
        })?;
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        last = Some(String::from_utf8_lossy(&raw).into_owned());
        let is_first = std::mem::replace(&mut first, false);

        if etype.is_dir() {
            let trimmed = raw.strip_suffix(b"/").unwrap_or(&raw);
            check_member_path(trimmed).map_err(|p| member_err(&raw, MemberProblem::Path(p)))?;
            continue;
        }
        if etype != EntryType::Regular {
            return Err(member_err(&raw, MemberProblem::EntryType(describe(etype))));
        }
        let path = check_member_path(&raw)
            .map_err(|p| member_err(&raw, MemberProblem::Path(p)))?
            .to_string();

        if path == MANIFEST_NAME {
            if !is_first {
                return Err(member_err(&raw, MemberProblem::ManifestNotFirst));
            }
            let m = read_manifest(archive, &mut entry)?;
            if let Some(want) = &opts.expect_ecosystem {
                if &m.ecosystem != want {
                    return Err(BundleError::WrongEcosystem {
                        archive: archive.to_path_buf(),
                        expected: want.clone(),
                        found: m.ecosystem.clone(),
                    });
                }
            }
            expected = m
                .members
                .iter()
                .map(|mm| (mm.path.clone(), (mm.size, mm.sha256)))
                .collect();
            // Every member's size must equal what the manifest lists, so
            // its members bound what the archive can write.
            let mut needed_dirs: HashSet<&str> = HashSet::new();
            for mm in &m.members {
                space.file(mm.size, name_len(&mm.path));
                for (i, _) in mm.path.match_indices('/') {
                    let ancestor = &mm.path[..i];
                    if needed_dirs.insert(ancestor) {
                        space.dir(name_len(ancestor));
                    }
                }
            }
            space
                .check()
                .map_err(|e| no_space(format!("{MANIFEST_NAME} lists"), e))?;
            reporter.verbose(&format!(
                "{}: bundle of {} files for {} by {}, created {}",
                archive.display(),
                m.members.len(),
                m.ecosystem,
                m.tool,
                m.created
            ));
            check_range(archive, opts, Some(&m))?;
            manifest = Some(m);
            continue;
        }
        if manifest.is_none() && !std::mem::replace(&mut range_checked, true) {
            // No manifest: the archive carries no range.
            check_range(archive, opts, None)?;
        }

        if path == META_DIR || path.starts_with(&format!("{META_DIR}/")) {
            return Err(member_err(&raw, MemberProblem::Reserved));
        }
        if !opts.allowed_prefixes.is_empty()
            && !opts
                .allowed_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
        {
            return Err(member_err(
                &raw,
                MemberProblem::NotAllowed(opts.allowed_prefixes.clone()),
            ));
        }
        if seen.contains(&path) {
            return Err(member_err(&raw, MemberProblem::Duplicate));
        }
        if let Some(other) = dirs.get(&path) {
            return Err(member_err(&raw, MemberProblem::Conflict(other.clone())));
        }
        // Directories no earlier member needed: only these are created
        // (and, without a manifest, counted).
        let mut new_dirs = 0usize;
        for (i, _) in path.match_indices('/') {
            let ancestor = &path[..i];
            if seen.contains(ancestor) {
                return Err(member_err(
                    &raw,
                    MemberProblem::Conflict(ancestor.to_string()),
                ));
            }
            if !dirs.contains_key(ancestor) {
                dirs.insert(ancestor.to_string(), path.clone());
                new_dirs += 1;
                if manifest.is_none() {
                    space.dir(name_len(ancestor));
                }
            }
        }
        seen.insert(path.clone());

        let size = entry.size();
        let want = if manifest.is_some() {
            let &(want_size, digest) = expected
                .get(&path)
                .ok_or_else(|| member_err(&raw, MemberProblem::NotInManifest))?;
            if want_size != size {
                return Err(member_err(
                    &raw,
                    MemberProblem::SizeMismatch {
                        expected: want_size,
                        actual: size,
                    },
                ));
            }
            Some(digest)
        } else {
            space.file(size, name_len(&path));
            space
                .check()
                .map_err(|e| no_space(format!("the member headers up to {path:?} claim"), e))?;
            None
        };

        let dest = join_member(dir, &path);
        let wctx = || format!("cannot write {}", dest.display());
        if new_dirs > 0 {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| BundleError::io(wctx(), e))?;
            }
        }
        let mut out = File::create_new(&dest).map_err(|e| BundleError::io(wctx(), e))?;
        let mut hasher = want.map(|_| Hasher::new());
        let mut got = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            out.write_all(&buf[..n])
                .map_err(|e| BundleError::io(wctx(), e))?;
            got += n as u64;
        }
        if got != size {
            return Err(read_err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("member {path:?} is truncated"),
            )));
        }
        if let (Some(h), Some(expected)) = (hasher, want) {
            let actual = h.finish();
            if actual != expected {
                return Err(DigestMismatch::new(
                    format!("{} in {}", path, archive.display()),
                    expected,
                    actual,
                )
                .into());
            }
        }
        // A time the system cannot represent (a binary mtime of 2^64-1),
        // or an HTTP date cannot carry, is not kept: the file keeps the
        // time it was written.
        if let Some(mtime) = mtime_of(entry.header()) {
            let _ = out.set_modified(mtime);
        }
        drop(out);
        reporter.item(&path, Outcome::Done);
        reporter.verbose(&format!("unpack {path} ({size} bytes)"));
        files.push(StagedFile {
            path,
            size,
            sha256: want,
        });
    }

    // Read to the end so the gzip trailer (CRC, length) of the last member
    // is checked too, but no further than a tar writer pads: endless
    // zeros after the end are a gzip bomb, not padding.
    let trailing = io::copy(
        &mut tar.into_inner().take(MAX_TRAILING + 1),
        &mut io::sink(),
    )
    .map_err(read_err)?;
    if trailing > MAX_TRAILING {
        return Err(BundleError::TrailingData {
            archive: archive.to_path_buf(),
        });
    }

    if manifest.is_none() && !range_checked {
        check_range(archive, opts, None)?;
    }
    if let Some(m) = &manifest {
        let missing: Vec<&str> = m
            .members
            .iter()
            .map(|mm| mm.path.as_str())
            .filter(|p| !seen.contains(*p))
            .collect();
        if let Some(first) = missing.first() {
            return Err(member_err(
                first.as_bytes(),
                MemberProblem::MissingFromArchive {
                    others: missing.len() - 1,
                },
            ));
        }
    }
    sync_staged(dir, &files)
        .map_err(|e| BundleError::io(format!("cannot write {} to disk", dir.display()), e))?;
    Ok(Staged { manifest, files })
}

/// The latest modification time kept: 9999-12-31T23:59:59Z, the last an
/// HTTP date (`Last-Modified`) can carry.
const LATEST_MTIME: u64 = 253_402_300_799;

/// The modification time a tar header gives, when it is one a served
/// file can carry (no later than [`LATEST_MTIME`]).
fn mtime_of(header: &tar::Header) -> Option<SystemTime> {
    let secs = header.mtime().ok().filter(|&s| s <= LATEST_MTIME)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Make the staged files durable before any is published, so a crash
/// leaves the old or the new bytes, never a torn file: one `syncfs` of
/// the file system holding them. (An `fsync` per file waits for the disk
/// once per file: minutes for 200,000 small ones.)
#[cfg(target_os = "linux")]
fn sync_staged(dir: &Path, _files: &[StagedFile]) -> io::Result<()> {
    crate::store::sync_tree(dir)
}

/// See the Linux version; elsewhere each file is synced.
#[cfg(not(target_os = "linux"))]
fn sync_staged(dir: &Path, files: &[StagedFile]) -> io::Result<()> {
    for f in files {
        File::open(join_member(dir, &f.path))?.sync_data()?;
    }
    Ok(())
}

/// Refuse an archive whose range is not [`UnpackOptions::expect_range`].
fn check_range(
    archive: &Path,
    opts: &UnpackOptions,
    manifest: Option<&Manifest>,
) -> Result<(), BundleError> {
    let Some(want) = &opts.expect_range else {
        return Ok(());
    };
    let found = manifest.and_then(|m| m.range.as_ref());
    if found == want.as_ref() {
        return Ok(());
    }
    let text = |r: Option<&super::Range>| match r {
        None => "none".to_string(),
        Some(r) => format!("{}..{}", r.start.as_deref().unwrap_or("0"), r.end),
    };
    Err(BundleError::Rejected {
        archive: archive.to_path_buf(),
        message: format!(
            "its range is {}, but it was {} when its order was checked: the file changed while it was read; unpack it again",
            text(found),
            text(want.as_ref())
        ),
    })
}

/// The manifest of `archive`, read from its first member (`None`: the
/// archive has none, as romt's), without reading further.
pub fn read_manifest_of(archive: &Path) -> Result<Option<Manifest>, BundleError> {
    let read_err = |e: io::Error| BundleError::io(format!("cannot read {}", archive.display()), e);
    let file = File::open(archive)
        .map_err(|e| BundleError::io(format!("cannot open {}", archive.display()), e))?;
    let header_budget = Rc::new(Cell::new(None));
    let mut tar = tar::Archive::new(HeaderBound {
        inner: MultiGzDecoder::new(BufReader::new(file)),
        left: Rc::clone(&header_budget),
    });
    let mut entries = tar.entries().map_err(read_err)?;
    loop {
        header_budget.set(Some(MAX_HEADERS));
        let next = entries.next();
        header_budget.set(None);
        let Some(entry) = next else {
            return Ok(None);
        };
        let mut entry = entry.map_err(read_err)?;
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() || etype.is_dir() {
            continue;
        }
        if etype == EntryType::Regular && &entry.path_bytes()[..] == MANIFEST_NAME.as_bytes() {
            return read_manifest(archive, &mut entry).map(Some);
        }
        return Ok(None);
    }
}

fn read_manifest(archive: &Path, entry: &mut impl Read) -> Result<Manifest, BundleError> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BundleError::io(format!("cannot read {}", archive.display()), e))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(BundleError::Manifest {
            archive: archive.to_path_buf(),
            problem: ManifestError::Parse(format!("larger than {MAX_MANIFEST} bytes")),
        });
    }
    Manifest::from_json(&bytes).map_err(|problem| BundleError::Manifest {
        archive: archive.to_path_buf(),
        problem,
    })
}

/// A human name for a tar entry type.
fn describe(t: EntryType) -> String {
    match t {
        EntryType::Symlink => "symbolic link".into(),
        EntryType::Link => "hard link".into(),
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "FIFO".into(),
        EntryType::Continuous => "contiguous file".into(),
        EntryType::GNUSparse => "sparse file".into(),
        other => format!("tar entry of type {:?}", other.as_byte() as char),
    }
}

/// Rename every staged file over its destination, `publish_last` ones last.
fn publish<'s>(
    archive: &Path,
    root: &Path,
    dir: &Path,
    staged: &'s Staged,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<(), BundleError> {
    // Order: everything else first (archive order), then by rule, then
    // archive order.
    let mut order: Vec<(usize, usize)> = staged
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let rank = opts
                .publish_last
                .iter()
                .position(|rule| rule_matches(rule, &f.path))
                .map_or(0, |r| r + 1);
            (rank, i)
        })
        .collect();
    order.sort();

    // Versioned files already published: the same bytes are left as they
    // are, other bytes refuse the archive.
    let same = unchanged_versioned(archive, root, dir, staged, opts)?;

    // Check every destination before the first rename, so a conflict
    // with the existing tree publishes nothing; note which directories
    // the tree lacks (member directories, shallowest first).
    let mut absent: HashMap<&str, bool> = HashMap::new();
    for f in &staged.files {
        let dest = join_member(root, &f.path);
        let conflict = |why: String| BundleError::Member {
            archive: archive.to_path_buf(),
            member: f.path.clone(),
            problem: MemberProblem::Destination(why),
        };
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            return Err(conflict(format!("{} is a directory", dest.display())));
        }
        let mut lacking = false;
        for (i, _) in f.path.match_indices('/') {
            let rel = &f.path[..i];
            if let Some(&a) = absent.get(rel) {
                lacking = a;
                continue;
            }
            if !lacking {
                let p = join_member(root, rel);
                lacking = match fs::symlink_metadata(&p) {
                    Err(e) => e.kind() == io::ErrorKind::NotFound,
                    // A symlinked directory the administrator placed.
                    Ok(m) if m.is_dir() || fs::metadata(&p).is_ok_and(|m| m.is_dir()) => false,
                    Ok(_) => {
                        return Err(conflict(format!("{} is not a directory", p.display())));
                    }
                };
            }
            absent.insert(rel, lacking);
        }
    }
    // Directories holding a file published last are never moved whole.
    let mut pinned: HashSet<&str> = HashSet::new();
    for &(rank, i) in &order {
        if rank > 0 {
            let path = &staged.files[i].path;
            pinned.extend(path.match_indices('/').map(|(j, _)| &path[..j]));
        }
    }
    // A file under a directory the tree lacks (and holding nothing
    // published last) is published with that whole directory, in one
    // rename: the shallowest such directory.
    let group_of = |path: &'s str| -> Option<&'s str> {
        path.match_indices('/')
            .map(|(j, _)| &path[..j])
            .find(|rel| absent.get(rel) == Some(&true) && !pinned.contains(rel))
    };

    reporter.begin("publish", staged.files.len() as u64, None);
    // Directories made (or found) for an earlier file.
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut make_parent = |to: &Path| -> io::Result<()> {
        if let Some(parent) = to.parent() {
            if !made.contains(parent) {
                fs::create_dir_all(parent)?;
                made.insert(parent.to_path_buf());
            }
        }
        Ok(())
    };
    // Whole directories tried: whether the rename succeeded.
    let mut moved: HashMap<&str, bool> = HashMap::new();
    let mut rank_done = 0;
    for &(rank, i) in &order {
        if rank > rank_done {
            // What the files published last name (their renames, and
            // copies onto another file system) is durable first.
            crate::store::sync_tree(root).map_err(|e| {
                BundleError::io(format!("cannot write {} to disk", root.display()), e)
            })?;
            rank_done = usize::MAX;
        }
        let f = &staged.files[i];
        if same.contains(&i) {
            reporter.item(&f.path, Outcome::Skipped);
            reporter.verbose(&format!("{}: already published, the same bytes", f.path));
            continue;
        }
        let whole = group_of(&f.path).is_some_and(|group| {
            *moved.entry(group).or_insert_with(|| {
                let to = join_member(root, group);
                // The tree gained the directory meanwhile (or it lies on
                // another file system): file by file.
                make_parent(&to).is_ok() && fs::rename(join_member(dir, group), &to).is_ok()
            })
        });
        if !whole {
            let from = join_member(dir, &f.path);
            let to = join_member(root, &f.path);
            let ctx = || format!("cannot publish {}", to.display());
            make_parent(&to).map_err(|e| BundleError::io(ctx(), e))?;
            if fs::rename(&from, &to).is_err() {
                // Another file system under the root (a mount point): copy.
                copy_atomic(&from, &to).map_err(|e| BundleError::io(ctx(), e))?;
            }
        }
        let event = if rank_done == 0 { "publish" } else { "write" };
        crate::store::trace(event, &join_member(root, &f.path));
        reporter.item(&f.path, Outcome::Done);
        reporter.verbose(&format!("publish {}", f.path));
    }
    reporter.end();
    Ok(())
}

/// The staged files (indexes) that are versioned (see
/// [`UnpackOptions::versioned`]) and already published with the same
/// bytes. `Err` names every versioned file published with other bytes.
fn unchanged_versioned(
    archive: &Path,
    root: &Path,
    dir: &Path,
    staged: &Staged,
    opts: &UnpackOptions,
) -> Result<HashSet<usize>, BundleError> {
    let Some(versioned) = opts.versioned else {
        return Ok(HashSet::new());
    };
    let found: Vec<(usize, Sha256Digest, Sha256Digest)> = staged
        .files
        .par_iter()
        .enumerate()
        .filter(|(_, f)| versioned(&f.path))
        .map(|(i, f)| {
            let dest = join_member(root, &f.path);
            let Some(published) = published_digest(&dest)
                .map_err(|e| BundleError::io(format!("cannot read {}", dest.display()), e))?
            else {
                return Ok(None);
            };
            let carried = match f.sha256 {
                Some(d) => d,
                None => {
                    let from = join_member(dir, &f.path);
                    hash_file(&from)
                        .map_err(|e| BundleError::io(format!("cannot read {}", from.display()), e))?
                        .0
                }
            };
            Ok(Some((i, published, carried)))
        })
        .filter_map(Result::transpose)
        .collect::<Result<_, BundleError>>()?;
    let mut same = HashSet::new();
    let mut changed = Vec::new();
    for (i, published, carried) in found {
        if published == carried {
            same.insert(i);
        } else {
            changed.push(ChangedFile {
                path: staged.files[i].path.clone(),
                published,
                archive: carried,
            });
        }
    }
    if !changed.is_empty() {
        changed.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(BundleError::Changed {
            archive: archive.to_path_buf(),
            files: changed,
        });
    }
    Ok(same)
}

/// The digest of the regular file published at `dest`; `None` when there
/// is none (nothing, or no regular file: publishing replaces a symlink at
/// a file's own path, never follows it). Opened without following a
/// symlink and without waiting on a FIFO, so what is hashed is the file
/// whose type was checked.
pub fn published_digest(dest: &Path) -> io::Result<Option<Sha256Digest>> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match o.open(dest) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A symlink (`ELOOP` under `O_NOFOLLOW`).
        Err(_) if fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    Ok(Some(hash_reader(file)?.0))
}

fn rule_matches(rule: &str, path: &str) -> bool {
    if rule.ends_with('/') {
        path.starts_with(rule)
    } else if let Some(suffix) = rule.strip_prefix('*').filter(|s| !s.contains('/')) {
        path.rsplit('/')
            .next()
            .is_some_and(|name| name.ends_with(suffix))
    } else if !rule.contains('/') {
        path.rsplit('/').next() == Some(rule)
    } else {
        path == rule
    }
}

/// Reports the compressed bytes read from the archive.
struct Progress<'a> {
    inner: File,
    reporter: &'a dyn Reporter,
}

impl Read for Progress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(bytes: u64, inodes: Option<u64>) -> Option<FreeSpace> {
        Some(FreeSpace {
            bytes,
            inodes,
            block: 4096,
        })
    }

    #[test]
    fn space_guard_rounds_files_to_blocks_and_keeps_a_margin() {
        let mut g = SpaceGuard::new(fs(SPACE_MARGIN + 3 * 4096 + 2 * 40, None));
        g.file(1, 8);
        g.file(4096, 8);
        assert_eq!(g.check(), Ok(()));
        assert_eq!((g.files, g.bytes, g.needed), (2, 4097, 2 * 4096 + 80));
        g.file(4097, 8);
        let short = g.check().unwrap_err();
        assert_eq!((short.files, short.bytes), (3, 8194));
        assert_eq!(short.needed, 4 * 4096 + 120);
        let g = SpaceGuard::new(fs(10, None));
        assert!(g.check().is_err(), "the margin alone does not fit");
        let mut g = SpaceGuard::new(fs(u64::MAX, None));
        g.file(u64::MAX, 1);
        g.file(u64::MAX, 1);
        assert!(g.check().is_err(), "sums saturate, never wrap");
        let mut g = SpaceGuard::new(None);
        g.file(u64::MAX, 1);
        assert_eq!(g.check(), Ok(()), "unknown free space: no check");
    }

    #[test]
    fn space_guard_counts_inodes_of_files_and_directories() {
        let mut g = SpaceGuard::new(fs(u64::MAX / 2, Some(INODE_MARGIN + 3)));
        g.dir(1);
        g.file(0, 1);
        g.file(0, 1);
        assert_eq!(g.check(), Ok(()));
        g.file(0, 1);
        let short = g.check().unwrap_err();
        assert_eq!(
            (short.inodes, short.free_inodes),
            (4, Some(INODE_MARGIN + 3))
        );
        let mut g = SpaceGuard::new(fs(u64::MAX / 2, None));
        for _ in 0..100_000 {
            g.file(0, 1);
        }
        assert_eq!(g.check(), Ok(()), "no inode limit: not counted against");
    }

    #[test]
    fn unrepresentable_mtimes_are_dropped() {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(u64::MAX);
        assert_eq!(h.mtime().unwrap(), u64::MAX);
        assert_eq!(mtime_of(&h), None);
        h.set_mtime(LATEST_MTIME + 1);
        assert_eq!(mtime_of(&h), None, "past what an HTTP date carries");
        h.set_mtime(LATEST_MTIME);
        assert!(httpdate::fmt_http_date(mtime_of(&h).unwrap()).starts_with("Fri, 31 Dec 9999"));
        h.set_mtime(1_700_000_000);
        assert_eq!(
            mtime_of(&h),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn published_digest_reads_regular_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"published").unwrap();
        assert_eq!(
            published_digest(&file).unwrap(),
            Some(Sha256Digest::of(b"published"))
        );
        assert_eq!(published_digest(&tmp.path().join("absent")).unwrap(), None);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(published_digest(&link).unwrap(), None, "never followed");
        let fifo = tmp.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        assert_eq!(published_digest(&fifo).unwrap(), None, "no wait on a FIFO");
        assert_eq!(published_digest(tmp.path()).unwrap(), None);
    }

    #[test]
    fn publish_last_rules() {
        assert!(rule_matches("rustup/dist/", "rustup/dist/x/rustup-init"));
        assert!(!rule_matches("rustup/dist/", "rustup/distx"));
        assert!(rule_matches(
            "release-stable.toml",
            "rustup/release-stable.toml"
        ));
        assert!(rule_matches("release-stable.toml", "release-stable.toml"));
        assert!(rule_matches("hex/names", "hex/names"));
        assert!(!rule_matches("hex/names", "hex/names2"));
        assert!(rule_matches("*.db", "archlinux/core/os/x86_64/core.db"));
        assert!(!rule_matches(
            "*.db",
            "archlinux/core/os/x86_64/core.db.sig"
        ));
        assert!(!rule_matches("*.db", "a.db/b"));
        assert!(!rule_matches("hex/names", "x/hex/names"));
    }
}
