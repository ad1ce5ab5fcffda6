//! Volumes: a byte-split of one stream (the archives of a trip, one after
//! another), each volume a file of at most the volume size that starts
//! with a copy of the signed manifest; and Reed–Solomon parity volumes
//! over them, so that any `parity` missing or damaged volumes are rebuilt.
//!
//! A volume file: `MIRROR-TRIP-VOLUME 1\n`, the manifest's length (u32,
//! big-endian) and bytes, the signature's length (u32, 0: unsigned) and
//! bytes, then its share of the stream. Parity works on shards of
//! `shard_bytes` (every data volume's share, the last padded with zeros).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::verify::digest::{Hasher, Sha256Digest};

/// The first bytes of every volume.
pub const MAGIC: &[u8] = b"MIRROR-TRIP-VOLUME 1\n";
/// The largest manifest a volume header may carry.
pub const MAX_MANIFEST: usize = 16 << 20;
/// The largest signature a volume header may carry.
pub const MAX_SIGNATURE: usize = 64 << 10;
/// Bytes parity works on at a time, per shard.
const BLOCK: usize = 1 << 20;

/// The header of a volume: its magic, the manifest and the signature.
pub fn header(manifest: &[u8], signature: Option<&[u8]>) -> Vec<u8> {
    let sig = signature.unwrap_or(&[]);
    let mut h = Vec::with_capacity(MAGIC.len() + 8 + manifest.len() + sig.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(
        &u32::try_from(manifest.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    h.extend_from_slice(manifest);
    h.extend_from_slice(&u32::try_from(sig.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.extend_from_slice(sig);
    h
}

/// What a volume's header holds.
pub struct Header {
    /// The manifest, as signed.
    pub manifest: Vec<u8>,
    /// The detached signature (binary), if signed.
    pub signature: Option<Vec<u8>>,
    /// Where the volume's data starts.
    pub data_offset: u64,
}

/// Read the header of the file at `path`. `Ok(None)`: not a volume.
pub fn read_header(path: &Path) -> Result<Option<Header>> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut magic = vec![0; MAGIC.len()];
    if read_full(&mut f, &mut magic)? < MAGIC.len() || magic != MAGIC {
        return Ok(None);
    }
    let damaged =
        |what: &str| anyhow::anyhow!("{}: damaged volume header ({what})", path.display());
    let mut len = [0u8; 4];
    let mut field = |max: usize, what: &str| -> Result<Vec<u8>> {
        if read_full(&mut f, &mut len)? < 4 {
            return Err(damaged(what));
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > max {
            return Err(damaged(&format!(
                "{what} of {n} bytes, at most {max} expected"
            )));
        }
        let mut v = vec![0; n];
        if read_full(&mut f, &mut v)? < n {
            return Err(damaged(what));
        }
        Ok(v)
    };
    let manifest = field(MAX_MANIFEST, "manifest")?;
    let signature = field(MAX_SIGNATURE, "signature")?;
    let data_offset = (MAGIC.len() + 8 + manifest.len() + signature.len()) as u64;
    Ok(Some(Header {
        manifest,
        signature: (!signature.is_empty()).then_some(signature),
        data_offset,
    }))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A run of bytes in a file: `len` bytes from `offset`.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The file.
    pub path: PathBuf,
    /// Where the bytes start.
    pub offset: u64,
    /// How many.
    pub len: u64,
}

/// A stream made of pieces of files, one after another, read at any offset.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pieces: Vec<Piece>,
}

impl Stream {
    /// A stream of `pieces`.
    pub fn new(pieces: Vec<Piece>) -> Stream {
        Stream { pieces }
    }

    /// Its pieces.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy `len` bytes from `offset` into `out` (the rest of `len` past
    /// the end is not written).
    pub fn copy_range(&self, mut offset: u64, mut len: u64, out: &mut dyn Write) -> Result<()> {
        let mut start = 0u64;
        for p in &self.pieces {
            if len == 0 {
                break;
            }
            let end = start + p.len;
            if offset < end {
                let within = offset - start;
                let n = (p.len - within).min(len);
                let mut f = File::open(&p.path)
                    .with_context(|| format!("cannot read {}", p.path.display()))?;
                f.seek(SeekFrom::Start(p.offset + within))?;
                let copied = io::copy(&mut f.take(n), out)
                    .with_context(|| format!("cannot read {}", p.path.display()))?;
                if copied < n {
                    bail!("{}: shorter than expected", p.path.display());
                }
                offset += n;
                len -= n;
            }
            start = end;
        }
        Ok(())
    }

    /// `len` bytes from `offset` as a buffer, zero-padded past the end.
    pub fn read_padded(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(len);
        self.copy_range(offset, len as u64, &mut buf)?;
        buf.resize(len, 0);
        Ok(buf)
    }

    /// The SHA-256 of `len` bytes from `offset`.
    pub fn digest(&self, offset: u64, len: u64) -> Result<Sha256Digest> {
        let mut h = HashWriter(Hasher::new());
        self.copy_range(offset, len, &mut h)?;
        Ok(h.0.finish())
    }
}

/// A writer that only hashes.
pub struct HashWriter(pub Hasher);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The shards of a trip: `data` shards of `shard_bytes` each (the last
/// zero-padded), a byte-split of one stream.
pub struct Shards {
    /// Each data shard's bytes (without the padding).
    pub data: Vec<Stream>,
    /// The shard size.
    pub shard_bytes: u64,
}

/// Encode `parity` parity shards of `shards` into `outs` (one writer each),
/// a block at a time.
pub fn encode(shards: &Shards, parity: usize, outs: &mut [&mut dyn Write]) -> Result<()> {
    if parity == 0 {
        return Ok(());
    }
    let mut offset = 0u64;
    while offset < shards.shard_bytes {
        let n = (shards.shard_bytes - offset).min(BLOCK as u64) as usize;
        let mut encoder = reed_solomon_simd::ReedSolomonEncoder::new(shards.data.len(), parity, n)
            .context("parity: cannot set up the encoder")?;
        for s in &shards.data {
            encoder
                .add_original_shard(s.read_padded(offset, n)?)
                .context("parity")?;
        }
        let result = encoder.encode().context("parity")?;
        for (out, shard) in outs.iter_mut().zip(result.recovery_iter()) {
            out.write_all(shard)?;
        }
        offset += n as u64;
    }
    Ok(())
}

/// Rebuild the data shards `missing` from the shards present: `data[i]`
/// (`None`: missing) and `parity[j]` (the same), each shard padded to
/// `shard_bytes`. Each rebuilt shard is written to its writer in `outs`
/// (the order of `missing`), `lens[i]` bytes of it.
pub fn rebuild(
    data: &[Option<Stream>],
    parity: &[Option<Stream>],
    shard_bytes: u64,
    lens: &[u64],
    missing: &[usize],
    outs: &mut [&mut dyn Write],
) -> Result<()> {
    let mut offset = 0u64;
    while offset < shard_bytes {
        let n = (shard_bytes - offset).min(BLOCK as u64) as usize;
        let mut decoder = reed_solomon_simd::ReedSolomonDecoder::new(data.len(), parity.len(), n)
            .context("parity: cannot set up the decoder")?;
        for (i, s) in data.iter().enumerate() {
            if let Some(s) = s {
                decoder
                    .add_original_shard(i, s.read_padded(offset, n)?)
                    .context("parity")?;
            }
        }
        for (j, s) in parity.iter().enumerate() {
            if let Some(s) = s {
                decoder
                    .add_recovery_shard(j, s.read_padded(offset, n)?)
                    .context("parity")?;
            }
        }
        let result = decoder.decode().context("parity: cannot rebuild")?;
        for (k, &i) in missing.iter().enumerate() {
            let shard = result
                .restored_original(i)
                .context("parity: a shard was not rebuilt")?;
            let keep = lens[i].saturating_sub(offset).min(n as u64) as usize;
            outs[k].write_all(&shard[..keep])?;
        }
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_parity_shards_rebuild_what_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..10_001u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = dir.path().join("whole");
        std::fs::write(&whole, &bytes).unwrap();
        let shard_bytes = 3000u64;
        let piece = |offset: u64, len: u64| {
            Stream::new(vec![Piece {
                path: whole.clone(),
                offset,
                len,
            }])
        };
        let lens: Vec<u64> = (0..4)
            .map(|i| (bytes.len() as u64 - i * shard_bytes).min(shard_bytes))
            .collect();
        let data: Vec<Stream> = (0..4)
            .map(|i| piece(i * shard_bytes, lens[i as usize]))
            .collect();
        let shards = Shards {
            data: data.clone(),
            shard_bytes,
        };
        let (mut p0, mut p1) = (Vec::new(), Vec::new());
        encode(&shards, 2, &mut [&mut p0, &mut p1]).unwrap();
        std::fs::write(dir.path().join("p1"), &p1).unwrap();
        let p1s = Stream::new(vec![Piece {
            path: dir.path().join("p1"),
            offset: 0,
            len: p1.len() as u64,
        }]);
        // Shards 0 and 3 lost, parity 0 lost too: 3 remain of 6, 4 needed.
        let some = [None, Some(data[1].clone()), Some(data[2].clone()), None];
        let (mut r0, mut r3) = (Vec::new(), Vec::new());
        let err = rebuild(
            &some,
            &[None, Some(p1s.clone())],
            shard_bytes,
            &lens,
            &[0, 3],
            &mut [&mut r0, &mut r3],
        );
        assert!(err.is_err());
        std::fs::write(dir.path().join("p0"), &p0).unwrap();
        let p0s = Stream::new(vec![Piece {
            path: dir.path().join("p0"),
            offset: 0,
            len: p0.len() as u64,
        }]);
        let (mut r0, mut r3) = (Vec::new(), Vec::new());
        rebuild(
            &some,
            &[Some(p0s), Some(p1s)],
            shard_bytes,
            &lens,
            &[0, 3],
            &mut [&mut r0, &mut r3],
        )
        .unwrap();
        assert_eq!(r0, &bytes[..3000]);
        assert_eq!(r3, &bytes[9000..]);
    }
}
