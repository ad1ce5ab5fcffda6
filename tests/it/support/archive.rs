//! Hand-made tar.gz archives, hostile ones included: names go into the
//! header as they are, any entry type, headers that claim other sizes than
//! their data.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use mirror::bundle::{Manifest, Member};
use mirror::verify::Sha256Digest;

/// One raw tar entry: the name bytes go into the header as they are (a
/// GNU long-name entry carries names too long for the header).
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: u8,
    pub data: Vec<u8>,
    pub link: &'static [u8],
    /// The size the header claims, when not the data's (the data is
    /// written as it is: a short one ends the archive early).
    pub claim: Option<u64>,
}

/// A regular file.
pub fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: b'0',
        data: data.to_vec(),
        link: b"",
        claim: None,
    }
}

/// An entry of type `kind` with no data, linking to `link`.
pub fn raw(name: &[u8], kind: u8, link: &'static [u8]) -> Raw {
    Raw {
        name: name.to_vec(),
        kind,
        data: Vec::new(),
        link,
        claim: None,
    }
}

/// The tar stream of `entries` (not compressed), with its end marker.
pub fn tar(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if e.name.len() >= 100 || e.name.contains(&0) {
            let mut h = tar::Header::new_gnu();
            let n = b"././@LongLink";
            h.as_old_mut().name[..n.len()].copy_from_slice(n);
            h.set_entry_type(tar::EntryType::GNULongName);
            h.set_mode(0o644);
            let mut data = e.name.clone();
            data.push(0);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        let n = e.name.len().min(99);
        h.as_old_mut().name[..n].copy_from_slice(&e.name[..n]);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(tar::EntryType::new(e.kind));
        if e.kind == b'S' {
            h.as_gnu_mut().unwrap().set_real_size(e.data.len() as u64);
        }
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_size(e.claim.unwrap_or(e.data.len() as u64));
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// `bytes` gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The tar.gz of `entries`.
pub fn tar_gz(entries: &[Raw]) -> Vec<u8> {
    gz(&tar(entries))
}

/// A `MIRROR-BUNDLE.json` for `ecosystem` listing `entries` with their
/// sizes and digests.
pub fn manifest_for(ecosystem: &str, entries: &[(&str, &[u8])]) -> Vec<u8> {
    manifest_claiming(
        ecosystem,
        &entries
            .iter()
            .map(|(p, d)| (*p, d.len() as u64, Sha256Digest::of(d)))
            .collect::<Vec<_>>(),
    )
}

/// A `MIRROR-BUNDLE.json` for `ecosystem` listing each (path, size,
/// digest) as given, true or not.
pub fn manifest_claiming(ecosystem: &str, entries: &[(&str, u64, Sha256Digest)]) -> Vec<u8> {
    let members = entries
        .iter()
        .map(|(p, size, sha256)| Member {
            path: p.to_string(),
            size: *size,
            sha256: *sha256,
        })
        .collect();
    Manifest::new(ecosystem, None, members).to_json()
}
