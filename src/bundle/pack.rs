//! Writing bundles; see the module docs of [`crate::bundle`].

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::gz::{Mode, MultiGzWriter};
use super::manifest::{Manifest, Member, Range, MANIFEST_NAME};
use super::{check_member_path, is_compressed_name, join_member, BundleError};
use crate::report::{Outcome, Reporter};
use crate::store::{remove_abandoned, temp_sibling, META_DIR};
use crate::verify::digest::Hasher;

/// Members smaller than this never switch the compression mode: they go
/// into whatever gzip member is open (a `.sig` between two packages should
/// not cost two gzip members).
const SMALL: u64 = 64 * 1024;

/// Buffer between the gzip layer and the archive file.
const OUT_BUF: usize = 1 << 20;

/// What [`pack`] writes besides the members.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// The ecosystem recorded in the manifest (`rustup`, `crates`, …).
    pub ecosystem: String,
    /// The increment the bundle carries, if it is one.
    pub range: Option<Range>,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone)]
pub struct PackSummary {
    /// The manifest written as the first member.
    pub manifest: Manifest,
    /// Total size of the members' content.
    pub bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// How many gzip members the archive consists of.
    pub gzip_members: u64,
}

/// A member as stat'ed and hashed before writing.
struct Prepared {
    member: Member,
    mtime: Option<SystemTime>,
}

/// [`pack`] for an ecosystem's `pack` operation: adds the archive to the
/// error and reports `<ecosystem>: packed N files (SIZE) into ARCHIVE`.
pub fn pack_and_report(
    root: &Path,
    members: &[String],
    archive: &Path,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<PackSummary> {
    use anyhow::Context as _;
    let summary = pack(root, members, archive, opts, reporter)
        .with_context(|| format!("cannot pack {}", archive.display()))?;
    reporter.info(&format!(
        "{}: packed {} files ({}) into {}",
        opts.ecosystem,
        members.len(),
        crate::output::human_bytes(summary.archive_bytes),
        archive.display()
    ));
    Ok(summary)
}

/// Pack `members` (relative `/`-separated paths of files under `root`) into
/// `archive`, with `MIRROR-BUNDLE.json` first. The archive is written to a
/// temporary sibling and renamed into place only when complete; on error
/// nothing is left behind.
pub fn pack(
    root: &Path,
    members: &[String],
    archive: &Path,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> Result<PackSummary, BundleError> {
    pack_removing(root, members, &[], archive, opts, reporter)
}

/// [`pack`], the manifest also listing `removes`: files held before this
/// archive that it removes (see [`Manifest::removes`]).
pub fn pack_removing(
    root: &Path,
    members: &[String],
    removes: &[String],
    archive: &Path,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> Result<PackSummary, BundleError> {
    check_members(members)?;
    check_members(removes)?;

    // Stat first (cheap) so the hashing phase knows its total.
    let mut stats = Vec::with_capacity(members.len());
    let mut total = 0u64;
    for m in members {
        let path = join_member(root, m);
        let meta = fs::metadata(&path)
            .map_err(|e| BundleError::io(format!("cannot pack {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(BundleError::PackMember {
                member: m.clone(),
                problem: format!("{} is not a regular file", path.display()),
            });
        }
        total += meta.len();
        stats.push((meta.len(), meta.modified().ok()));
    }

    reporter.begin("hash", members.len() as u64, Some(total));
    let prepared: Result<Vec<Prepared>, BundleError> = members
        .par_iter()
        .zip(stats.par_iter())
        .map(|(m, &(size, mtime))| {
            let path = join_member(root, m);
            let ctx = || format!("cannot read {}", path.display());
            let file = File::open(&path).map_err(|e| BundleError::io(ctx(), e))?;
            let mut hasher = Hasher::new();
            let n = copy_reporting(file, &mut HashSink(&mut hasher), reporter)
                .map_err(|e| BundleError::io(ctx(), e))?;
            if n != size {
                return Err(changed(m, &path));
            }
            reporter.item(m, Outcome::Done);
            Ok(Prepared {
                member: Member {
                    path: m.clone(),
                    size,
                    sha256: hasher.finish(),
                },
                mtime,
            })
        })
        .collect();
    reporter.end();
    let prepared = prepared?;

    let mut manifest = Manifest::new(
        &opts.ecosystem,
        opts.range.clone(),
        prepared.iter().map(|p| p.member.clone()).collect(),
    );
    manifest.removes = removes.to_vec();

    if let Some(parent) = archive.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| BundleError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let tmp = temp_sibling(archive);
    // The temporary archives of killed packs (`.<name>.tmp.<pid>`), each
    // as large as a whole bundle.
    if let (Some(dir), Some(name)) = (tmp.parent(), archive.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        remove_abandoned(dir, &format!(".{}.tmp.", name.to_string_lossy()));
    }
    reporter.begin("pack", members.len() as u64 + 1, Some(total));
    let written = write_archive(root, &tmp, &manifest, &prepared, reporter);
    reporter.end();
    let gzip_members = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let archive_bytes = fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    if let Err(e) = fs::rename(&tmp, archive) {
        let _ = fs::remove_file(&tmp);
        return Err(BundleError::io(
            format!("cannot rename {} to {}", tmp.display(), archive.display()),
            e,
        ));
    }
    reporter.verbose(&format!(
        "packed {} files ({} bytes) into {} ({} bytes, {} gzip members)",
        members.len(),
        total,
        archive.display(),
        archive_bytes,
        gzip_members
    ));
    Ok(PackSummary {
        manifest,
        bytes: total,
        archive_bytes,
        gzip_members,
    })
}

/// Member paths must be plain, unique, and not ours.
fn check_members(members: &[String]) -> Result<(), BundleError> {
    let mut seen = HashSet::with_capacity(members.len());
    for m in members {
        let bad = |problem: String| BundleError::PackMember {
            member: m.clone(),
            problem,
        };
        check_member_path(m.as_bytes()).map_err(|p| bad(p.to_string()))?;
        if m == MANIFEST_NAME {
            return Err(bad(format!("{MANIFEST_NAME} is reserved for the manifest")));
        }
        if m == META_DIR || m.starts_with(&format!("{META_DIR}/")) {
            return Err(bad(format!("paths under {META_DIR}/ are never packed")));
        }
        if !seen.insert(m.as_str()) {
            return Err(bad("listed twice".to_string()));
        }
    }
    Ok(())
}

fn changed(member: &str, path: &Path) -> BundleError {
    BundleError::PackMember {
        member: member.to_string(),
        problem: format!("{} changed while it was being packed", path.display()),
    }
}

/// Write the whole archive to `tmp`; returns the number of gzip members.
fn write_archive(
    root: &Path,
    tmp: &Path,
    manifest: &Manifest,
    prepared: &[Prepared],
    reporter: &dyn Reporter,
) -> Result<u64, BundleError> {
    let wctx = || format!("cannot write {}", tmp.display());
    let file = crate::store::create_new_file(tmp).map_err(|e| BundleError::io(wctx(), e))?;
    let gz = MultiGzWriter::new(BufWriter::with_capacity(OUT_BUF, file), Mode::Deflate);
    let mut tar = tar::Builder::new(gz);

    let json = manifest.to_json();
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut header = file_header(json.len() as u64, created);
    tar.append_data(&mut header, MANIFEST_NAME, &json[..])
        .map_err(|e| BundleError::io(wctx(), e))?;
    reporter.item(MANIFEST_NAME, Outcome::Done);

    for p in prepared {
        let m = &p.member;
        let path = join_member(root, &m.path);
        let rctx = || format!("cannot read {}", path.display());
        let compressed = is_compressed_name(&m.path);
        if m.size >= SMALL {
            let mode = if compressed {
                Mode::Stored
            } else {
                Mode::Deflate
            };
            tar.get_mut()
                .set_mode(mode)
                .map_err(|e| BundleError::io(wctx(), e))?;
        }
        let file = File::open(&path).map_err(|e| BundleError::io(rctx(), e))?;
        let meta = file.metadata().map_err(|e| BundleError::io(rctx(), e))?;
        if meta.len() != m.size || meta.modified().ok() != p.mtime {
            return Err(changed(&m.path, &path));
        }
        let mtime = p
            .mtime
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = file_header(m.size, mtime);
        let mut reader = Counting {
            inner: file.take(m.size),
            count: 0,
            reporter,
        };
        tar.append_data(&mut header, &m.path, &mut reader)
            .map_err(|e| BundleError::io(format!("{} (packing {})", wctx(), path.display()), e))?;
        if reader.count != m.size {
            return Err(changed(&m.path, &path));
        }
        reporter.item(&m.path, Outcome::Done);
        reporter.verbose(&format!(
            "pack {} ({} bytes{})",
            m.path,
            m.size,
            if compressed { ", stored" } else { "" }
        ));
    }

    let gz = tar.into_inner().map_err(|e| BundleError::io(wctx(), e))?;
    let members = gz.members();
    let buf = gz.finish().map_err(|e| BundleError::io(wctx(), e))?;
    let file = buf
        .into_inner()
        .map_err(|e| BundleError::io(wctx(), e.into_error()))?;
    file.sync_all().map_err(|e| BundleError::io(wctx(), e))?;
    Ok(members)
}

/// A deterministic header for a regular file: GNU format, mode 0644,
/// uid/gid 0, no names.
fn file_header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Copy everything from `from` into `to`, reporting bytes; returns the count.
fn copy_reporting(
    mut from: impl Read,
    to: &mut impl Write,
    reporter: &dyn Reporter,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        reporter.bytes(n as u64);
        total += n as u64;
    }
}

struct HashSink<'a>(&'a mut Hasher);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that counts and reports what passes through it.
struct Counting<'a, R> {
    inner: R,
    count: u64,
    reporter: &'a dyn Reporter,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.reporter.bytes(n as u64);
        Ok(n)
    }
}
