//! Trips: every configured ecosystem carried in one signed, sequenced
//! set of volumes (`mirror export`, `mirror import`).
//!
//! A trip is a manifest `trip-<site>-<seq>.json` (and its signature
//! `.asc` when signed) and volumes `trip-<site>-<seq>.vNNN` (data) and
//! `.pNNN` (parity). The data volumes are a byte-split of the ecosystems'
//! archives, one after another, each archive as its own `pack` makes it;
//! every volume starts with a copy of the manifest and its signature
//! ([`volumes`]). The site id is made once per online tree; the sequence
//! number counts its trips, and each manifest names the previous one's
//! SHA-256, so that the far side refuses a trip whose predecessor it has
//! not imported.

pub mod ecosystems;
pub mod status;
pub mod volumes;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::bundle::Range;
use crate::store;
use crate::verify::digest::{hash_file, Sha256Digest};
use volumes::{Piece, Shards, Stream};

/// The manifest format this program writes and reads.
pub const FORMAT: u32 = 1;
/// The state file (under `.mirror/`) holding the site id and the trips.
pub const TRIPS_FILE: &str = "trips.json";

/// A trip's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripManifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The online tree that made it.
    pub site: String,
    /// Its number among the site's trips, from 1.
    pub seq: u64,
    /// The SHA-256 of trip `seq - 1`'s manifest (none for trip 1).
    #[serde(default)]
    pub previous: Option<Sha256Digest>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The program that made it.
    pub tool: String,
    /// Whether it carries everything held (`--full`).
    #[serde(default)]
    pub full: bool,
    /// The archives, in stream order.
    pub ecosystems: Vec<TripArchive>,
    /// Data bytes per volume (the last may hold fewer); parity works on
    /// shards of this size.
    pub shard_bytes: u64,
    /// The data volumes, in stream order.
    pub volumes: Vec<Volume>,
    /// The parity volumes (Reed–Solomon over the data volumes' shards).
    #[serde(default)]
    pub parity: Vec<Volume>,
}

/// One ecosystem's archive in a trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripArchive {
    /// User-facing name (`crate` …).
    pub name: String,
    /// The ecosystem its archive names.
    pub ecosystem: String,
    /// The range it carries (marks), as its archive states it.
    #[serde(default)]
    pub range: Option<Range>,
    /// Files it carries.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// The archive's size.
    pub archive_bytes: u64,
    /// The archive's SHA-256.
    pub sha256: Sha256Digest,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Its file name.
    pub file: String,
    /// Bytes of data it carries (after its header).
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: Sha256Digest,
}

impl TripManifest {
    /// The manifest's file name.
    pub fn file_name(&self) -> String {
        format!("trip-{}-{}.json", self.site, self.seq)
    }

    /// Parse and check a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<TripManifest> {
        let m: TripManifest =
            serde_json::from_slice(bytes).context("not a trip manifest this mirror reads")?;
        if m.format != FORMAT {
            bail!(
                "trip manifest format {}: this mirror reads format {FORMAT}",
                m.format
            );
        }
        if !valid_site(&m.site) || m.seq == 0 {
            bail!("trip manifest names site {:?} trip {}: expected a site id and a trip number from 1", m.site, m.seq);
        }
        let prefix = format!("trip-{}-{}.", m.site, m.seq);
        for v in m.volumes.iter().chain(&m.parity) {
            if !v.file.starts_with(&prefix)
                || v.file.contains(['/', '\\'])
                || v.bytes > m.shard_bytes
            {
                bail!("trip manifest lists volume {:?}: expected a file {prefix}… of at most {} bytes", v.file, m.shard_bytes);
            }
        }
        for e in &m.ecosystems {
            ecosystems::by_name(&e.name)?;
        }
        if m.volumes.is_empty() || !m.shard_bytes.is_multiple_of(2) {
            bail!("trip manifest lists no data volume or an odd shard size");
        }
        // A byte-split: every data volume but the last is full, and parity
        // volumes are whole shards (so a rebuild reads no more than a
        // parity file present holds).
        let last = m.volumes.len() - 1;
        for (i, v) in m.volumes.iter().enumerate() {
            if (i < last && v.bytes != m.shard_bytes) || v.bytes == 0 {
                bail!(
                    "trip manifest lists volume {:?} of {} bytes: expected {} (a byte-split)",
                    v.file,
                    v.bytes,
                    m.shard_bytes
                );
            }
        }
        if let Some(p) = m.parity.iter().find(|p| p.bytes != m.shard_bytes) {
            bail!(
                "trip manifest lists parity volume {:?} of {} bytes: expected {}",
                p.file,
                p.bytes,
                m.shard_bytes
            );
        }
        if m.volumes.len() + m.parity.len() > 32768 {
            bail!(
                "trip manifest lists {} volumes: at most 32768 expected",
                m.volumes.len() + m.parity.len()
            );
        }
        let data: u64 = m.volumes.iter().map(|v| v.bytes).sum();
        let archives: u64 = m.ecosystems.iter().map(|e| e.archive_bytes).sum();
        if data != archives {
            bail!("trip manifest: its volumes carry {data} bytes, its archives {archives}");
        }
        Ok(m)
    }

    /// The manifest as written (and signed).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        v.push(b'\n');
        v
    }
}

fn valid_site(site: &str) -> bool {
    !site.is_empty()
        && site.len() <= 64
        && site.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What `.mirror/trips.json` remembers.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Trips {
    /// This online tree's site id (made by its first export).
    #[serde(default)]
    pub site: Option<String>,
    /// The trips exported: number → manifest SHA-256.
    #[serde(default)]
    pub exported: BTreeMap<u64, Sha256Digest>,
    /// The trips imported, per site: number → manifest SHA-256.
    #[serde(default)]
    pub imported: BTreeMap<String, BTreeMap<u64, Sha256Digest>>,
}

fn new_site_id(root: &Path) -> String {
    let seed = format!(
        "{}:{}:{}:{:?}",
        store::epoch_nanos(std::time::SystemTime::now()),
        std::process::id(),
        root.display(),
        std::collections::hash_map::RandomState::new().build_hasher_seed()
    );
    Sha256Digest::of(seed.as_bytes()).to_hex()[..12].to_string()
}

trait SeedExt {
    fn build_hasher_seed(&self) -> u64;
}

impl SeedExt for std::collections::hash_map::RandomState {
    fn build_hasher_seed(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.build_hasher();
        h.write_u8(0);
        h.finish()
    }
}

/// How `mirror export` writes a trip.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Where the trip goes.
    pub out: PathBuf,
    /// Only these ecosystems (user-facing names); empty: every configured.
    pub only: Vec<String>,
    /// At most this many bytes per volume file.
    pub volume_size: u64,
    /// Parity volumes.
    pub parity: usize,
    /// Secret key to sign with.
    pub sign_key: Option<PathBuf>,
    /// Carry everything held.
    pub full: bool,
}

/// A directory under `.mirror/` for one run's temporary files, removed
/// when dropped (and by a later run when this one was killed).
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(root: &Path) -> Result<WorkDir> {
        let meta = root.join(store::META_DIR);
        std::fs::create_dir_all(&meta)
            .with_context(|| format!("cannot create {}", meta.display()))?;
        store::remove_abandoned(&meta, "trip-work-");
        for n in 0..100 {
            let p = meta.join(format!("trip-work-{}-{n}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(WorkDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", p.display())),
            }
        }
        bail!("cannot create a work directory in {}", meta.display())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `mirror export`: pack every configured ecosystem, write the trip, then
/// move every mark. Returns the manifest's path.
pub fn export(
    global: &dyn ecosystems::Commands,
    opts: &ExportOptions,
    reporter: &dyn crate::report::Reporter,
) -> Result<PathBuf> {
    let settings = global.settings()?;
    let root = std::path::absolute(&settings.root)?;
    let chosen = ecosystems::configured(&settings, &opts.only)?;
    // Held from the first pack to the last mark: no other run moves a
    // mark in between.
    let _lock = store::TreeLock::acquire_for_chain(&root)?;
    let mut trips: Trips = store::load_meta_json(&root, TRIPS_FILE)?;
    let site = match &trips.site {
        Some(s) => s.clone(),
        None => {
            let s = new_site_id(&root);
            trips.site = Some(s.clone());
            store::save_meta_json(&root, TRIPS_FILE, &trips)?;
            s
        }
    };
    let (seq, previous) = match trips.exported.iter().next_back() {
        Some((n, d)) => (n + 1, Some(*d)),
        None => (1, None),
    };
    let signer = opts
        .sign_key
        .as_deref()
        .map(crate::verify::openpgp::SigningKey::from_file)
        .transpose()?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;

    let work = WorkDir::create(&root)?;
    let mut archives = Vec::new();
    let mut pieces = Vec::new();
    for eco in &chosen {
        let path = work.0.join(format!("{}.tar.gz", eco.name));
        eco.pack(global, &root, &path, opts.full)?;
        let (sha256, archive_bytes) =
            hash_file(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = crate::bundle::read_manifest_of(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .with_context(|| format!("{}: the archive packed has no manifest", eco.name))?;
        archives.push(TripArchive {
            name: eco.name.to_string(),
            ecosystem: eco.id.to_string(),
            range: manifest.range.clone(),
            files: manifest.members.len() as u64,
            bytes: manifest.members.iter().map(|m| m.size).sum(),
            archive_bytes,
            sha256,
        });
        pieces.push(Piece {
            path,
            offset: 0,
            len: archive_bytes,
        });
    }
    let stream = Stream::new(pieces);
    let total = stream.len();

    let prefix = format!("trip-{site}-{seq}");
    let mut manifest = TripManifest {
        format: FORMAT,
        site: site.clone(),
        seq,
        previous,
        created: crate::bundle::manifest::rfc3339(
            u64::try_from(store::epoch_nanos(std::time::SystemTime::now()) / 1_000_000_000)
                .unwrap_or(0),
        ),
        tool: format!("mirror {}", env!("CARGO_PKG_VERSION")),
        full: opts.full,
        ecosystems: archives,
        shard_bytes: 0,
        volumes: Vec::new(),
        parity: Vec::new(),
    };
    // The header of every volume holds the manifest, which lists every
    // volume: find the shard size whose header fits.
    let zero = Sha256Digest([0; 32]);
    let mut reserve = 256u64;
    let shard_bytes = loop {
        if reserve >= opts.volume_size {
            bail!(
                "--volume-size {}: too small for the trip's manifest in each volume (it needs more than {reserve} bytes)",
                opts.volume_size
            );
        }
        let shard = (opts.volume_size - reserve) & !1;
        if shard == 0 {
            reserve *= 2;
            continue;
        }
        let count = total.div_ceil(shard).max(1);
        let mut m = manifest.clone();
        m.shard_bytes = shard;
        m.volumes = (0..count)
            .map(|i| Volume {
                file: format!("{prefix}.v{:03}", i + 1),
                bytes: shard,
                sha256: zero,
            })
            .collect();
        m.parity = (0..opts.parity)
            .map(|i| Volume {
                file: format!("{prefix}.p{:03}", i + 1),
                bytes: shard,
                sha256: zero,
            })
            .collect();
        let json = m.to_json();
        let sig_len = match &signer {
            Some(s) => s.sign_detached(&json)?.len() + 64,
            None => 0,
        };
        let need = (volumes::header(&json, None).len() + sig_len) as u64;
        if need <= reserve {
            break shard;
        }
        reserve = need;
    };
    // No shard larger than the stream (parity works on whole shards).
    let shard_bytes = shard_bytes.min(total.max(1).next_multiple_of(2));
    let count = total.div_ceil(shard_bytes).max(1);
    manifest.shard_bytes = shard_bytes;
    let data: Vec<Stream> = (0..count)
        .map(|i| {
            let offset = i * shard_bytes;
            let len = total.saturating_sub(offset).min(shard_bytes);
            let mut pieces = Vec::new();
            let mut at = 0u64;
            for p in stream_pieces(&stream) {
                let (s, e) = (at, at + p.len);
                let (a, b) = (offset.max(s), (offset + len).min(e));
                if a < b {
                    pieces.push(Piece {
                        path: p.path.clone(),
                        offset: p.offset + (a - s),
                        len: b - a,
                    });
                }
                at = e;
            }
            Stream::new(pieces)
        })
        .collect();
    for (i, d) in data.iter().enumerate() {
        manifest.volumes.push(Volume {
            file: format!("{prefix}.v{:03}", i + 1),
            bytes: d.len(),
            sha256: d.digest(0, d.len())?,
        });
    }
    // Parity shards, into work files first (their digests go into the
    // manifest every volume carries).
    let parity_paths: Vec<PathBuf> = (0..opts.parity)
        .map(|i| work.0.join(format!("parity-{i}")))
        .collect();
    write_work_files(&parity_paths, |outs| {
        volumes::encode(
            &Shards {
                data: data.clone(),
                shard_bytes,
            },
            opts.parity,
            outs,
        )
    })?;
    let mut parity_streams = Vec::new();
    for (i, p) in parity_paths.iter().enumerate() {
        let (sha256, bytes) = hash_file(p)?;
        manifest.parity.push(Volume {
            file: format!("{prefix}.p{:03}", i + 1),
            bytes,
            sha256,
        });
        parity_streams.push(Stream::new(vec![Piece {
            path: p.clone(),
            offset: 0,
            len: bytes,
        }]));
    }

    let json = manifest.to_json();
    let signature = signer
        .as_ref()
        .map(|s| s.sign_detached(&json))
        .transpose()?;
    let head = volumes::header(&json, signature.as_deref());
    for (v, s) in manifest
        .volumes
        .iter()
        .zip(&data)
        .chain(manifest.parity.iter().zip(&parity_streams))
    {
        let path = opts.out.join(&v.file);
        write_volume(&path, &head, s)?;
        reporter.info(&format!(
            "wrote {} ({} bytes)",
            path.display(),
            head.len() as u64 + v.bytes
        ));
    }
    if let Some(sig) = &signature {
        store::write_atomic(&opts.out.join(format!("{prefix}.json.asc")), &armor(sig)?)?;
    }
    let manifest_path = opts.out.join(manifest.file_name());
    store::write_atomic(&manifest_path, &json)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    store::sync_dir(&opts.out)?;

    // Written and durable: the trip is recorded, then the marks move (a
    // run killed in between leaves marks behind: the next trip carries
    // that range again, which the far side takes as an overlap).
    trips.exported.insert(seq, Sha256Digest::of(&json));
    store::save_meta_json(&root, TRIPS_FILE, &trips)?;
    for eco in &chosen {
        eco.mark(global)?;
    }
    let carried: Vec<String> = manifest
        .ecosystems
        .iter()
        .map(|e| format!("{} {} files", e.name, e.files))
        .collect();
    reporter.info(&format!(
        "trip {seq} of site {site}: {} in {} volumes{}{} ({})",
        carried.join(", "),
        manifest.volumes.len(),
        if opts.parity > 0 {
            format!(" + {} parity", opts.parity)
        } else {
            String::new()
        },
        if signature.is_some() { ", signed" } else { "" },
        manifest_path.display()
    ));
    Ok(manifest_path)
}

fn stream_pieces(s: &Stream) -> Vec<Piece> {
    s.pieces().to_vec()
}

/// `--volume-size`: a size as [`crate::limit::parse_size`] reads it, or a
/// preset: `fat32` (4 GiB − 1, the largest file FAT32 holds), `dvd` (4.7
/// GB), `bd25` (25 GB).
pub fn parse_volume_size(text: &str) -> Result<u64, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "fat32" => Ok((4 << 30) - 1),
        "dvd" => Ok(4_700_000_000),
        "bd25" => Ok(25_000_000_000),
        _ => crate::limit::parse_size(text)
            .map_err(|e| format!("{e}, or a preset: fat32, dvd, bd25")),
    }
}

fn write_volume(path: &Path, head: &[u8], data: &Stream) -> Result<()> {
    let (file, tmp) =
        store::create_temp(path).with_context(|| format!("cannot create {}", path.display()))?;
    let result = (|| -> Result<()> {
        let mut w = BufWriter::new(file);
        w.write_all(head)?;
        data.copy_range(0, data.len(), &mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

fn armor(sig: &[u8]) -> Result<Vec<u8>> {
    use sequoia_openpgp::armor::{Kind, Writer};
    let mut w = Writer::new(Vec::new(), Kind::Signature)?;
    w.write_all(sig)?;
    Ok(w.finalize()?)
}

/// `mirror keygen`: a new site key. Writes the secret key to `out`
/// (created exclusively, readable by its owner only) and returns the
/// armored certificate for the far side's `--trust`.
pub fn keygen(out: &Path, user_id: &str) -> Result<Vec<u8>> {
    use sequoia_openpgp::cert::{CertBuilder, CipherSuite};
    use sequoia_openpgp::serialize::SerializeInto as _;
    let (cert, _revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid(user_id)
        .add_signing_subkey()
        .generate()
        .context("cannot generate a key")?;
    let secret = cert.as_tsk().armored().to_vec()?;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
    f.write_all(&secret)?;
    f.sync_all()?;
    let public = cert.armored().to_vec()?;
    Ok(public)
}

/// Create `paths` as new work files (exclusively), let `fill` write them
/// (one writer each, in order), and flush them.
pub(crate) fn write_work_files(
    paths: &[PathBuf],
    fill: impl FnOnce(&mut [&mut dyn Write]) -> Result<()>,
) -> Result<()> {
    let mut files = paths
        .iter()
        .map(|p| {
            store::create_new_file(p)
                .map(BufWriter::new)
                .with_context(|| format!("cannot create {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    {
        let mut outs: Vec<&mut dyn Write> = files.iter_mut().map(|f| f as &mut dyn Write).collect();
        fill(&mut outs)?;
    }
    for f in files {
        f.into_inner().map_err(|e| e.into_error())?;
    }
    Ok(())
}

pub mod import;
pub use import::{import, ImportOptions};

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> TripManifest {
        let v = |f: &str, bytes| Volume {
            file: format!("trip-abc-2.{f}"),
            bytes,
            sha256: Sha256Digest([1; 32]),
        };
        TripManifest {
            format: FORMAT,
            site: "abc".into(),
            seq: 2,
            previous: Some(Sha256Digest([2; 32])),
            created: "2026-01-01T00:00:00Z".into(),
            tool: "mirror".into(),
            full: false,
            ecosystems: vec![TripArchive {
                name: "crate".into(),
                ecosystem: "crates".into(),
                range: None,
                files: 1,
                bytes: 1,
                archive_bytes: 150,
                sha256: Sha256Digest([3; 32]),
            }],
            shard_bytes: 100,
            volumes: vec![v("v001", 100), v("v002", 50)],
            parity: vec![v("p001", 100)],
        }
    }

    #[test]
    fn manifests_round_trip_and_hostile_ones_are_refused() {
        let m = manifest();
        assert_eq!(TripManifest::from_json(&m.to_json()).unwrap(), m);
        type Edit = Box<dyn Fn(&mut TripManifest)>;
        let bad: Vec<(&str, Edit)> = vec![
            ("format", Box::new(|m| m.format = 2)),
            ("site", Box::new(|m| m.site = "../x".into())),
            (
                "volume",
                Box::new(|m| m.volumes[0].file = "../../etc/passwd".into()),
            ),
            (
                "volume",
                Box::new(|m| m.volumes[0].file = "trip-abc-2.v/x".into()),
            ),
            ("byte-split", Box::new(|m| m.volumes[0].bytes = 60)),
            ("p001", Box::new(|m| m.parity[0].bytes = 1 << 40)),
            ("parity volume", Box::new(|m| m.parity[0].bytes = 60)),
            ("volume", Box::new(|m| m.volumes[1].bytes = 1 << 40)),
            ("carry", Box::new(|m| m.ecosystems[0].archive_bytes = 10)),
            (
                "unknown ecosystem",
                Box::new(|m| m.ecosystems[0].name = "npm".into()),
            ),
        ];
        for (want, edit) in bad {
            let mut m = manifest();
            edit(&mut m);
            let err = format!("{:#}", TripManifest::from_json(&m.to_json()).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn volume_sizes_take_units_and_presets() {
        assert_eq!(parse_volume_size("700M"), Ok(700 << 20));
        assert_eq!(parse_volume_size("fat32"), Ok((4 << 30) - 1));
        assert_eq!(parse_volume_size("DVD"), Ok(4_700_000_000));
        assert!(parse_volume_size("floppy").unwrap_err().contains("fat32"));
    }
}
