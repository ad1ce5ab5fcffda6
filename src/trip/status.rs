//! `mirror status`: per ecosystem what the tree holds and its marks, and
//! the trips exported and imported.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{ecosystems::ECOSYSTEMS, Trips, TRIPS_FILE};
use crate::store;
use crate::verify::digest::Sha256Digest;

/// What `mirror status --json` prints.
#[derive(Debug, Serialize)]
pub struct Status {
    /// This tree's site id, once it exported a trip.
    pub site: Option<String>,
    /// Per ecosystem held (user-facing name → what).
    pub ecosystems: BTreeMap<String, Held>,
    /// Trips exported: number → manifest SHA-256.
    pub exported: BTreeMap<u64, Sha256Digest>,
    /// Trips imported per site: number → manifest SHA-256.
    pub imported: BTreeMap<String, BTreeMap<u64, Sha256Digest>>,
}

/// One ecosystem's holdings.
#[derive(Debug, Serialize)]
pub struct Held {
    /// Whether `mirror.toml` has its section.
    pub configured: bool,
    /// Files under its directory.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Its marks (`mark`, `packed`, `imported`, …).
    pub marks: BTreeMap<String, String>,
}

/// The status of `root`.
pub fn status(root: &Path, config: &crate::settings::ConfigFile) -> Result<Status> {
    let state = store::State::load(root)?;
    let trips: Trips = store::load_meta_json(root, TRIPS_FILE)?;
    let mut ecosystems = BTreeMap::new();
    for e in ECOSYSTEMS {
        let (files, bytes) = count(&root.join(e.dir));
        let marks = state.marks.get(e.id).cloned().unwrap_or_default();
        let configured = config.ecosystems.contains_key(e.name);
        if files == 0 && marks.is_empty() && !configured {
            continue;
        }
        ecosystems.insert(
            e.name.to_string(),
            Held {
                configured,
                files,
                bytes,
                marks,
            },
        );
    }
    Ok(Status {
        site: trips.site,
        ecosystems,
        exported: trips.exported,
        imported: trips.imported,
    })
}

/// Files and bytes under `dir` (symlinks not followed; dot-files, the
/// temporaries, left out).
fn count(dir: &Path) -> (u64, u64) {
    let mut stack = vec![dir.to_path_buf()];
    let (mut files, mut bytes) = (0, 0);
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                files += 1;
                bytes += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}

/// The status as lines for a terminal.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    if let Some(site) = &s.site {
        out.push_str(&format!("site {site}\n"));
    }
    for (name, h) in &s.ecosystems {
        let marks: Vec<String> = h.marks.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!(
            "{name}: {} files, {} bytes{}{}\n",
            h.files,
            h.bytes,
            if h.configured {
                ""
            } else {
                " (not in mirror.toml)"
            },
            if marks.is_empty() {
                String::new()
            } else {
                format!("; {}", marks.join(", "))
            }
        ));
    }
    if let Some((n, _)) = s.exported.iter().next_back() {
        out.push_str(&format!(
            "trips exported: {} (last: {n})\n",
            s.exported.len()
        ));
    }
    for (site, t) in &s.imported {
        if let Some((n, _)) = t.iter().next_back() {
            out.push_str(&format!(
                "trips imported from site {site}: {} (last: {n})\n",
                t.len()
            ));
        }
    }
    out
}
