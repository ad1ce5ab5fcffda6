//! `mirror import`: check a trip (signature, every volume, its place in
//! the sequence) before anything is unpacked, then import each archive.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::volumes::{self, HashWriter, Piece, Stream};
use super::{ecosystems, TripManifest, Trips, WorkDir, TRIPS_FILE};
use crate::report::Reporter;
use crate::store;
use crate::verify::digest::{Hasher, Sha256Digest};
use crate::verify::openpgp::{verify_detached, Keyring};

/// How `mirror import` reads trips.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The directory holding the trip (or one of its files).
    pub dir: PathBuf,
    /// Certificates whose signatures are accepted (with `[import] trust`).
    pub trust: Vec<PathBuf>,
}

/// A trip found: its manifest as signed, and the signature.
struct Found {
    json: Vec<u8>,
    signature: Option<Vec<u8>>,
    from: PathBuf,
}

/// `mirror import`: every trip in the directory, in sequence order.
pub fn import(
    global: &dyn super::ecosystems::Commands,
    opts: &ImportOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    let settings = global.settings()?;
    let root = std::path::absolute(&settings.root)?;
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let _lock = store::TreeLock::acquire_for_chain(&root)?;
    let mut trust = opts.trust.clone();
    trust.extend(settings.config.import.trust.iter().map(|p| root.join(p)));
    let keyring = if trust.is_empty() {
        None
    } else {
        let mut k = Keyring::new();
        for p in &trust {
            k.merge(Keyring::from_file(p).with_context(|| format!("--trust {}", p.display()))?);
        }
        Some(k)
    };
    let dir = if opts.dir.is_file() {
        opts.dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        opts.dir.clone()
    };
    let files = list_files(&dir)?;
    let mut found: BTreeMap<(String, u64), Found> = BTreeMap::new();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("trip-") && name.ends_with(".json")) {
            continue;
        }
        let json = read_bounded(path, volumes::MAX_MANIFEST)?;
        let m = TripManifest::from_json(&json)
            .with_context(|| format!("{}: not a trip manifest", path.display()))?;
        let asc = path.with_file_name(format!("{name}.asc"));
        let signature = if asc.exists() {
            Some(read_bounded(&asc, 4 * volumes::MAX_SIGNATURE)?)
        } else {
            None
        };
        found.insert(
            (m.site.clone(), m.seq),
            Found {
                json,
                signature,
                from: path.clone(),
            },
        );
    }
    // A trip whose manifest file was lost: the copy in its volumes.
    for path in &files {
        let Ok(Some(h)) = volumes::read_header(path) else {
            continue;
        };
        let Ok(m) = TripManifest::from_json(&h.manifest) else {
            continue;
        };
        match found.entry((m.site.clone(), m.seq)) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Found {
                    json: h.manifest,
                    signature: h.signature,
                    from: path.clone(),
                });
            }
            // The manifest file without its `.asc`: the signature every
            // volume carries over the same manifest.
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let f = e.get_mut();
                if f.signature.is_none() && f.json == h.manifest {
                    f.signature = h.signature;
                }
            }
        }
    }
    if found.is_empty() {
        bail!(
            "{}: no trip found (expected trip-<site>-<seq>.json or its volumes)",
            dir.display()
        );
    }
    for f in found.values() {
        import_one(global, &root, &files, f, keyring.as_ref(), reporter)?;
    }
    Ok(())
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        if e.file_type().is_ok_and(|t| t.is_file()) {
            files.push(e.path());
        }
    }
    files.sort();
    Ok(files)
}

fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut v = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut v)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if v.len() > max {
        bail!(
            "{}: larger than {max} bytes, not a trip manifest",
            path.display()
        );
    }
    Ok(v)
}

/// Where one volume of the trip is, or why it is not usable.
enum Status {
    Present(Stream),
    Missing,
    Damaged(String),
}

fn import_one(
    global: &dyn super::ecosystems::Commands,
    root: &Path,
    files: &[PathBuf],
    found: &Found,
    keyring: Option<&Keyring>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let m = TripManifest::from_json(&found.json)
        .with_context(|| format!("{}: not a trip manifest", found.from.display()))?;
    let label = format!("trip {} of site {}", m.seq, m.site);
    let refused = "refused; nothing was imported";

    // 1. The signature.
    match (keyring, &found.signature) {
        (Some(_), None) => bail!(
            "{label} is unsigned, but signatures are required (--trust or [import] trust): {refused}"
        ),
        (Some(k), Some(sig)) => {
            let v = verify_detached(k, &found.json[..], sig, &found.from.display().to_string())
                .map_err(|e| anyhow::anyhow!("{label}: signature not accepted: {e}: {refused}"))?;
            reporter.info(&format!(
                "{label}: signed by {}{}",
                v.cert_fingerprint,
                v.user_id.map(|u| format!(" ({u})")).unwrap_or_default()
            ));
        }
        (None, Some(_)) => reporter.warn(&format!(
            "{label} is signed, but no --trust was given: the signature is not checked"
        )),
        (None, None) => reporter.warn(&format!(
            "{label} is unsigned (give --trust CERT to require signed trips)"
        )),
    }

    // 2. Every volume, found by its manifest copy and its digest.
    let all: Vec<&super::Volume> = m.volumes.iter().chain(&m.parity).collect();
    let mut status: Vec<Status> = all.iter().map(|_| Status::Missing).collect();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let by_name = all.iter().position(|v| v.file == name);
        let header = match volumes::read_header(path) {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => {
                if let Some(i) = by_name {
                    if !matches!(status[i], Status::Present(_)) {
                        status[i] = Status::Damaged("its header is not a volume's".into());
                    }
                }
                continue;
            }
        };
        if header.manifest != found.json {
            if let Some(i) = by_name {
                if !matches!(status[i], Status::Present(_)) {
                    status[i] = Status::Damaged("the manifest it carries is not the trip's".into());
                }
            }
            continue;
        }
        let len = std::fs::metadata(path)?
            .len()
            .saturating_sub(header.data_offset);
        let stream = Stream::new(vec![Piece {
            path: path.clone(),
            offset: header.data_offset,
            len,
        }]);
        let digest = if len <= m.shard_bytes {
            Some(stream.digest(0, len)?)
        } else {
            None
        };
        let matching = all
            .iter()
            .position(|v| v.file == name && Some(v.sha256) == digest && v.bytes == len)
            .or_else(|| {
                all.iter()
                    .position(|v| Some(v.sha256) == digest && v.bytes == len)
            });
        match matching {
            Some(i) => status[i] = Status::Present(stream),
            None => {
                if let Some(i) = by_name {
                    if !matches!(status[i], Status::Present(_)) {
                        status[i] = Status::Damaged(format!(
                            "{len} bytes of data, {} expected, or a different SHA-256",
                            all[i].bytes
                        ));
                    }
                }
            }
        }
    }
    let lost: Vec<usize> = (0..all.len())
        .filter(|&i| !matches!(status[i], Status::Present(_)))
        .collect();
    let describe = |i: usize| match &status[i] {
        Status::Missing => format!("{} (missing)", all[i].file),
        Status::Damaged(why) => format!("{} (damaged: {why})", all[i].file),
        Status::Present(_) => all[i].file.clone(),
    };
    if lost.len() > m.parity.len() {
        let names: Vec<String> = lost.iter().map(|&i| describe(i)).collect();
        bail!(
            "{label}: {} volumes missing or damaged, its {} parity volumes rebuild at most {}: {}: {refused}",
            lost.len(),
            m.parity.len(),
            m.parity.len(),
            names.join(", ")
        );
    }

    // 3. Its place in the sequence.
    let digest = Sha256Digest::of(&found.json);
    let mut trips: Trips = store::load_meta_json(root, TRIPS_FILE)?;
    let imported = trips.imported.get(&m.site).cloned().unwrap_or_default();
    if let Some(d) = imported.get(&m.seq) {
        if *d == digest {
            reporter.info(&format!("{label} was imported already: nothing to do"));
            return Ok(());
        }
        bail!("{label}: a different trip {} of this site was imported here before (manifest SHA-256 {d}, this one {digest}): {refused}", m.seq);
    }
    match imported.iter().next_back() {
        None if m.seq > 1 && !m.full => bail!(
            "{label} needs trip {} first: this tree has imported no trip of site {} (a trip exported with --full seeds a new far side): {refused}",
            m.seq - 1,
            m.site
        ),
        Some((&last, _)) if m.seq < last => {
            reporter.info(&format!(
                "{label} is older than trip {last}, imported already: nothing to do"
            ));
            return Ok(());
        }
        Some((&last, _)) if m.seq > last + 1 && !m.full => bail!(
            "{label} needs trip {} first (the last imported is trip {last}): {refused}",
            last + 1
        ),
        Some((&last, d)) if m.seq == last + 1 && !m.full && m.previous.as_ref() != Some(d) => bail!(
            "{label} does not follow the trip {last} imported here (its predecessor's manifest SHA-256 is {}, this tree's trip {last} has {d}): {refused}",
            m.previous.map(|p| p.to_hex()).unwrap_or_else(|| "none".into())
        ),
        _ => {}
    }

    // 4. Rebuild what is lost, then cut the archives out of the stream.
    let work = WorkDir::create(root)?;
    let mut data: Vec<Option<Stream>> = Vec::new();
    let mut parity: Vec<Option<Stream>> = Vec::new();
    for (i, s) in status.iter().enumerate() {
        let s = match s {
            Status::Present(s) => Some(s.clone()),
            _ => None,
        };
        if i < m.volumes.len() {
            data.push(s);
        } else {
            parity.push(s);
        }
    }
    let missing: Vec<usize> = (0..m.volumes.len())
        .filter(|&i| data[i].is_none())
        .collect();
    if !missing.is_empty() {
        let paths: Vec<PathBuf> = missing
            .iter()
            .map(|i| work.0.join(format!("volume-{i}")))
            .collect();
        let lens: Vec<u64> = m.volumes.iter().map(|v| v.bytes).collect();
        super::write_work_files(&paths, |outs| {
            volumes::rebuild(&data, &parity, m.shard_bytes, &lens, &missing, outs)
        })?;
        for (&i, p) in missing.iter().zip(&paths) {
            let s = Stream::new(vec![Piece {
                path: p.clone(),
                offset: 0,
                len: m.volumes[i].bytes,
            }]);
            if s.digest(0, m.volumes[i].bytes)? != m.volumes[i].sha256 {
                bail!(
                    "{label}: {} rebuilt from parity does not match its SHA-256: {refused}",
                    m.volumes[i].file
                );
            }
            data[i] = Some(s);
        }
        let names: Vec<&str> = missing
            .iter()
            .map(|&i| m.volumes[i].file.as_str())
            .collect();
        reporter.info(&format!(
            "{label}: rebuilt {} from parity",
            names.join(", ")
        ));
    }
    let stream = Stream::new(
        data.iter()
            .flatten()
            .flat_map(|s| s.pieces().to_vec())
            .collect(),
    );
    let mut archives = Vec::new();
    let mut offset = 0u64;
    for a in &m.ecosystems {
        let path = work.0.join(format!("{}.tar.gz", a.name));
        let f = store::create_new_file(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut tee = Tee {
            file: BufWriter::new(f),
            hash: HashWriter(Hasher::new()),
        };
        stream.copy_range(offset, a.archive_bytes, &mut tee)?;
        tee.file.flush()?;
        if tee.hash.0.finish() != a.sha256 {
            bail!(
                "{label}: the {} archive does not match its SHA-256: {refused}",
                a.name
            );
        }
        offset += a.archive_bytes;
        archives.push((ecosystems::by_name(&a.name)?, path));
    }

    // 5. Each ecosystem's import.
    for (eco, path) in &archives {
        eco.import(global, root, path)?;
    }
    trips
        .imported
        .entry(m.site.clone())
        .or_default()
        .insert(m.seq, digest);
    store::save_meta_json(root, TRIPS_FILE, &trips)?;
    let carried: Vec<String> = m
        .ecosystems
        .iter()
        .map(|e| format!("{} ({} files, {} bytes)", e.name, e.files, e.bytes))
        .collect();
    reporter.info(&format!("{label} imported: {}", carried.join(", ")));
    Ok(())
}

struct Tee {
    file: BufWriter<std::fs::File>,
    hash: HashWriter,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        self.hash.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
