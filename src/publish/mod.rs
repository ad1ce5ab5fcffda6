//! `mirror publish`: copy the tree to S3-compatible object storage, so any
//! HTTP front (the store itself, a CDN) serves it to cargo, rustup, pacman
//! and rebar3 with no `mirror` process.
//!
//! # What goes where
//!
//! Under `s3://BUCKET/PREFIX/`, every file of `dist/`, `rustup/`,
//! `crates/`, `hex/` and `archlinux/` at its tree path (dot-files left
//! out), and the crates index as static sparse-index files under `index/`
//! made from the `master` tree of `git/crates.io-index` ([`tree`]), with
//! `index/config.json`'s `dl` at `--public-url` +
//! `/crates/{lowerprefix}/{crate}/{crate}-{version}.crate` (a bucket has no
//! rewrites) and no `api`. Beside them, `.mirror-publish.json`, the publish
//! manifest ([`plan::Manifest`]): each key's size and SHA-256 as the store
//! holds it.
//!
//! # Order: a reader never sees a broken mirror
//!
//! 1. Files metadata points at ([`plan::Class::Immutable`], `Data`):
//!    `.crate`, toolchain files, Arch packages and their `.sig`, Hex
//!    tarballs, `rustup-init`. All of them, before any metadata.
//! 2. Metadata, in ranks, each rank complete before the next
//!    ([`plan::classify`]): index files of crates, then `index/config.json`
//!    (on a first publish cargo sees no index until it is whole); Hex
//!    `packages/*`, then `versions`, then `names`; dated channel manifests,
//!    then the dateless ones; each channel manifest `.toml`, then its
//!    `.asc`, then its `.sha256`; each Arch `<repo>.files` then its `.sig`,
//!    then `<repo>.db` (and `.db.tar.gz`), then its `.sig`; then
//!    `release-stable.toml`.
//! 3. Deletions: metadata no longer in the tree (index files of pruned
//!    crates) at the end of the publish; files (a pruned `.crate`) only at
//!    a publish at least [`plan::METADATA_MAX_AGE`] seconds after the one
//!    that saw them leave, so an index cached before it never points at a
//!    deleted file.
//!
//! **The window of a pair.** A store has no atomic multi-key write, so a
//! client reading a pair between its two uploads sees one new and one old
//! half. Uploads of a pair are back to back. Channel manifests: the
//! `.sha256` is last, so rustup, which compares it with the one it has,
//! sees "no update" until the `.toml` and `.asc` are in place; a client
//! that reads a new `.toml` with the old `.sha256` (fetched within the
//! window) reports a checksum mismatch and succeeds on retry. Arch: pacman
//! reading `<repo>.db` between the database and its `.sig` finds a
//! signature that does not match (an error where database signatures are
//! checked; a retry succeeds). Every package either half names is already
//! in the store.
//!
//! # Interrupted, incremental
//!
//! The manifest always describes bytes the store holds: it is written
//! every few seconds while uploading, after a failed upload, at the end,
//! and before deletions (listing what is being deleted). A publish killed
//! at any point leaves the previous metadata, or newer metadata whose
//! files are all there; the next publish reads the manifest and uploads
//! only keys whose size or SHA-256 differ from it. A file whose size and
//! modification time match its entry is not hashed again, an index file
//! whose git blob matches is not read: a publish with no change makes one
//! request (the manifest's GET). Files above the multipart threshold are
//! uploaded in parts, `-j` at once; an interrupted multipart upload is
//! started over (the store's lifecycle rule for incomplete uploads removes
//! its parts). One publisher per target at a time.
//!
//! # Headers
//!
//! `Content-Type` by name ([`plan::content_type`]: `.crate` and `.gz` are
//! `application/gzip`, never with a `Content-Encoding`); `Cache-Control`
//! a year and `immutable` for immutable files, [`plan::METADATA_MAX_AGE`]
//! for the rest. `ETag` and `Last-Modified` are the store's.

pub mod plan;
pub mod s3;
pub mod tree;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::output::{human_bytes, Printer};
use plan::{classify, content_type, upload_order, Entry, Manifest, Plan, MANIFEST_KEY};
use s3::{attributes, Store, StoreOptions};
use tree::{Local, Source};

/// The largest publish manifest read (a full crates.io mirror's is about
/// 40M).
const MAX_MANIFEST_BYTES: u64 = 512 << 20;

/// How often the manifest is written while uploading.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// What a publish needs.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The mirror root.
    pub root: PathBuf,
    /// The store.
    pub store: StoreOptions,
    /// Where readers reach the prefix (for `config.json`'s `dl`); default
    /// from the endpoint and addressing style.
    pub public_url: Option<String>,
    /// Uploads at once.
    pub jobs: usize,
    /// Files larger than this go in parts.
    pub multipart_threshold: u64,
    /// Size of each part.
    pub part_size: usize,
    /// Seconds after which a file that left the tree is deleted (at the
    /// first publish past it) [`plan::METADATA_MAX_AGE`] unless testing.
    pub retire_after: u64,
    /// Output.
    pub printer: Printer,
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Keys uploaded.
    pub uploaded: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Keys the store already held as they are.
    pub unchanged: usize,
    /// Keys deleted.
    pub deleted: usize,
    /// Keys left for a later publish to delete.
    pub retired: usize,
}

/// The URL readers reach the prefix at when `--public-url` is not given.
pub fn default_public_url(store: &Store, virtual_hosted: bool) -> String {
    let endpoint = store.endpoint.trim_end_matches('/');
    let base = if virtual_hosted {
        match endpoint.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{}.{host}", store.target.bucket),
            None => format!("{}/{}", endpoint, store.target.bucket),
        }
    } else {
        format!("{endpoint}/{}", store.target.bucket)
    };
    if store.target.prefix.is_empty() {
        base
    } else {
        format!("{base}/{}", store.target.prefix)
    }
}

/// Publish the tree.
pub fn publish(opts: &PublishOptions) -> Result<PublishSummary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.jobs.clamp(1, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(opts))
}

async fn run(opts: &PublishOptions) -> Result<PublishSummary> {
    let store = Store::open(&opts.store)?;
    let public_url = opts
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(&store, opts.store.virtual_hosted));
    let old = read_manifest(&store).await?;
    let root = opts.root.clone();
    let old_for_tree = old.clone();
    let local =
        tokio::task::spawn_blocking(move || tree::collect(&root, &old_for_tree, &public_url))
            .await
            .context("reading the tree")??;
    for s in &local.skipped {
        opts.printer
            .verbose(&format!("left out (not a regular file, or not UTF-8): {s}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let plan = plan::plan(&old, &local.entries, now, opts.retire_after);
    let upload_bytes: u64 = plan
        .uploads
        .iter()
        .filter_map(|k| local.entries.get(k))
        .map(|e| e.size)
        .sum();
    opts.printer.info(&format!(
        "publishing {} to {}: {} to upload ({}), {} unchanged, {} to delete",
        opts.root.display(),
        store.name,
        plan.uploads.len(),
        human_bytes(upload_bytes),
        local.entries.len() - plan.uploads.len(),
        plan.delete_metadata.len() + plan.delete_files.len(),
    ));
    let mut summary = PublishSummary {
        unchanged: local.entries.len() - plan.uploads.len(),
        retired: plan.done.retired.len(),
        ..PublishSummary::default()
    };
    let mut run = Run {
        store: &store,
        opts,
        local: Arc::new(local),
        current: old.clone(),
        written: old,
        last_checkpoint: Instant::now(),
        write_took: Duration::ZERO,
    };
    let (uploaded, bytes) = run.uploads(&plan).await?;
    summary.uploaded = uploaded;
    summary.bytes = bytes;
    summary.deleted = run.deletions(&plan).await?;
    if run.written != plan.done {
        run.write(&plan.done).await?;
    }
    opts.printer.info(&format!(
        "published: {} uploaded ({}), {} unchanged, {} deleted, {} left to delete at a later publish",
        summary.uploaded,
        human_bytes(summary.bytes),
        summary.unchanged,
        summary.deleted,
        summary.retired,
    ));
    Ok(summary)
}

/// The store's manifest, empty when there is none.
async fn read_manifest(store: &Store) -> Result<Manifest> {
    let Some(bytes) = store.get(MANIFEST_KEY, MAX_MANIFEST_BYTES).await? else {
        return Ok(Manifest {
            format: plan::MANIFEST_FORMAT,
            ..Manifest::default()
        });
    };
    let where_ = || format!("{}/{}", store.name, store.target.key(MANIFEST_KEY));
    let m: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("the publish manifest {} is not readable", where_()))?;
    if m.format != plan::MANIFEST_FORMAT {
        bail!(
            "the publish manifest {} has format {}, this mirror reads format {}",
            where_(),
            m.format,
            plan::MANIFEST_FORMAT
        );
    }
    Ok(m)
}

/// One publish in progress.
struct Run<'a> {
    store: &'a Store,
    opts: &'a PublishOptions,
    local: Arc<Local>,
    /// What the store holds now, as far as this run knows.
    current: Manifest,
    /// The manifest last written.
    written: Manifest,
    last_checkpoint: Instant,
    /// How long the last manifest write took: checkpoints are spaced to
    /// at least ten times that, so a large manifest does not slow uploads.
    write_took: Duration,
}

impl Run<'_> {
    async fn write(&mut self, m: &Manifest) -> Result<()> {
        let started = Instant::now();
        let mut body = serde_json::to_vec(m).context("serializing the publish manifest")?;
        body.push(b'\n');
        self.store
            .put(
                MANIFEST_KEY,
                Bytes::from(body),
                attributes("application/json", "no-store"),
            )
            .await?;
        self.written = m.clone();
        self.last_checkpoint = Instant::now();
        self.write_took = started.elapsed();
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<()> {
        if self.current != self.written {
            let m = self.current.clone();
            self.write(&m).await?;
        }
        Ok(())
    }

    /// Upload in groups of one [`upload_order`] phase, each group `-j` at
    /// once and complete before the next. Returns (keys, bytes).
    async fn uploads(&mut self, plan: &Plan) -> Result<(usize, u64)> {
        let mut groups: Vec<(u8, Vec<String>)> = Vec::new();
        for key in &plan.uploads {
            let phase = upload_order(key).0;
            match groups.last_mut() {
                Some((p, keys)) if *p == phase => keys.push(key.clone()),
                _ => groups.push((phase, vec![key.clone()])),
            }
        }
        let (mut count, mut bytes) = (0, 0);
        for (_, keys) in groups {
            let (local, store, opts) = (
                Arc::clone(&self.local),
                self.store.clone(),
                self.opts.clone(),
            );
            let mut results = stream::iter(keys.into_iter().map(move |key| {
                let (local, store, opts) = (Arc::clone(&local), store.clone(), opts.clone());
                async move {
                    let entry = local
                        .entries
                        .get(&key)
                        .cloned()
                        .context("a planned key has no entry")?;
                    upload(&store, &opts, &local, &key, &entry).await?;
                    Ok::<_, anyhow::Error>((key, entry))
                }
            }))
            .buffer_unordered(self.opts.jobs.max(1));
            let mut failed = None;
            while let Some(r) = results.next().await {
                match r {
                    Ok((key, entry)) => {
                        self.opts.printer.verbose(&format!("uploaded {key}"));
                        count += 1;
                        bytes += entry.size;
                        self.current.retired.remove(&key);
                        self.current.deleting.remove(&key);
                        self.current.files.insert(key, entry);
                        if self.last_checkpoint.elapsed()
                            >= CHECKPOINT_EVERY.max(self.write_took * 10)
                        {
                            if let Err(e) = self.checkpoint().await {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            drop(results);
            if let Some(e) = failed {
                // What was uploaded stays known, whatever failed.
                let _ = self.checkpoint().await;
                return Err(e);
            }
        }
        Ok((count, bytes))
    }

    /// Delete metadata, then files, with the manifest listing them first.
    async fn deletions(&mut self, plan: &Plan) -> Result<usize> {
        if plan.delete_metadata.is_empty() && plan.delete_files.is_empty() {
            return Ok(0);
        }
        let mut during = plan.done.clone();
        during.deleting = plan
            .delete_metadata
            .iter()
            .chain(&plan.delete_files)
            .cloned()
            .collect();
        self.write(&during).await?;
        let mut deleted = 0;
        for keys in [&plan.delete_metadata, &plan.delete_files] {
            self.store.delete_many(keys).await?;
            for key in keys {
                self.opts.printer.verbose(&format!("deleted {key}"));
            }
            deleted += keys.len();
        }
        Ok(deleted)
    }
}

/// Upload one key from its source, checking its bytes are the planned
/// ones (a file changed since it was hashed is an error, not a wrong
/// manifest entry).
async fn upload(
    store: &Store,
    opts: &PublishOptions,
    local: &Local,
    key: &str,
    entry: &Entry,
) -> Result<()> {
    let attrs = attributes(content_type(key), &classify(key).cache_control());
    let source = local
        .sources
        .get(key)
        .cloned()
        .context("a planned key has no source")?;
    let data = match source {
        Source::Bytes(b) => b,
        Source::Blob(id) => {
            let index = local
                .index
                .clone()
                .context("an index file without an index")?;
            let path = key
                .strip_prefix(&format!("{}/", plan::INDEX_PREFIX))
                .unwrap_or(key)
                .to_owned();
            let data = tokio::task::spawn_blocking(move || index.blob(id, &path))
                .await
                .context("reading the index")??;
            Bytes::from(data)
        }
        Source::File(path) if entry.size > opts.multipart_threshold => {
            return upload_parts(store, opts, key, entry, &path, attrs).await;
        }
        Source::File(path) => Bytes::from(
            tokio::fs::read(&path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
    };
    check_bytes(key, entry, &data)?;
    store.put(key, data, attrs).await
}

fn check_bytes(key: &str, entry: &Entry, data: &[u8]) -> Result<()> {
    let digest = crate::verify::Sha256Digest::of(data).to_hex();
    if data.len() as u64 != entry.size || digest != entry.sha256 {
        bail!(
            "{key} changed while publishing: expected {} bytes with SHA-256 {}, found {} bytes \
             with SHA-256 {digest}; publish again",
            entry.size,
            entry.sha256,
            data.len()
        );
    }
    Ok(())
}

/// A large file in parts of `--part-size`, `-j` parts at once.
async fn upload_parts(
    store: &Store,
    opts: &PublishOptions,
    key: &str,
    entry: &Entry,
    path: &std::path::Path,
    attrs: object_store::Attributes,
) -> Result<()> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut upload = store.multipart(key, opts.part_size, attrs).await?;
    let mut hasher = crate::verify::digest::Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let outcome: Result<()> = async {
        loop {
            let n = file
                .read(&mut buf)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            size += n as u64;
            upload.write(chunk, opts.jobs.clamp(1, 8)).await?;
        }
        let digest = hasher.finish().to_hex();
        if size != entry.size || digest != entry.sha256 {
            bail!(
                "{key} changed while publishing: expected {} bytes with SHA-256 {}, found {size} \
                 bytes with SHA-256 {digest}; publish again",
                entry.size,
                entry.sha256
            );
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => upload.finish().await,
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}
