//! `mirror toolchain clean`: keep the newest N dated manifests per
//! channel and the pinned stable versions; remove the other dated
//! manifests, the files no kept manifest references, and the dateless
//! copies of removed manifests. What is removed is recorded for the next
//! archive to remove on the far side.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{manifest, Channel, Located, Toolchain, ECOSYSTEM};
use crate::eco::Version;
use crate::report::Reporter;

/// What `clean` keeps: per channel the newest N dated manifests (a
/// channel not named keeps all), and the stable releases pinned.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    pub per_channel: BTreeMap<Channel, usize>,
    pub pins: Vec<Version>,
}

impl Keep {
    /// Parse `--keep stable=3,beta=1,nightly=7` (already split on commas)
    /// and `--pin 1.80.0`.
    pub fn parse(keep: &[String], pins: &[String]) -> Result<Keep> {
        let mut out = Keep::default();
        for k in keep {
            let Some((c, n)) = k.split_once('=') else {
                bail!("--keep {k:?}: expected CHANNEL=N (stable=3,beta=1,nightly=7)");
            };
            let Some(channel) = Channel::parse(c) else {
                bail!("--keep {k:?}: expected a channel (stable, beta, nightly), found {c:?}");
            };
            let n: usize = n
                .parse()
                .with_context(|| format!("--keep {k:?}: expected a count, found {n:?}"))?;
            out.per_channel.insert(channel, n);
        }
        if out.per_channel.is_empty() {
            bail!("clean needs --keep CHANNEL=N (e.g. stable=3,beta=1,nightly=7)");
        }
        for p in pins {
            let Some(v) = Version::parse(p) else {
                bail!("--pin {p:?}: expected a stable release X.Y.Z");
            };
            out.pins.push(v);
        }
        Ok(out)
    }
}

/// The (empty) selection entry under which toolchain removals are
/// recorded until the next pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetainEntry {
    pub name: String,
}

impl crate::eco::selection::Entry for RetainEntry {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Whether an archive may remove `rel` from a toolchain mirror: a plain
/// relative path under `dist/`.
pub fn is_removable(rel: &str) -> bool {
    is_plain_under(rel, "dist/")
}

/// Whether `rel` is a plain relative path below `prefix` (no `.`, `..`,
/// empty or dot-file component, no backslash).
pub fn is_plain_under(rel: &str, prefix: &str) -> bool {
    let Some(rest) = rel.strip_prefix(prefix) else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with('.'))
        && !rel.contains('\\')
}

fn sidecars(rel: &str) -> [String; 3] {
    [
        rel.to_string(),
        format!("{rel}.sha256"),
        format!("{rel}.asc"),
    ]
}

/// Files (relative to the root, sorted) directly in `dir` (relative).
fn files_in(root: &Path, dir: &str) -> Result<Vec<String>> {
    let path = root.join(dir);
    let mut out = Vec::new();
    let entries = match fs::read_dir(&path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", path.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", path.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Dot-files are unfinished downloads or the mirror's own.
        if name.starts_with('.') || !e.file_type()?.is_file() {
            continue;
        }
        out.push(format!("{dir}/{name}"));
    }
    out.sort();
    Ok(out)
}

impl Toolchain {
    /// The dated manifests `keep` keeps and those it drops.
    fn split_kept(&self, keep: &Keep) -> Result<(Vec<Located>, Vec<Located>)> {
        let entries = self.local_entries()?;
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for channel in Channel::ALL {
            let of: Vec<&(String, Channel)> = entries.iter().filter(|e| e.1 == channel).collect();
            let n = keep.per_channel.get(&channel).copied().unwrap_or(of.len());
            let first_kept = of.len().saturating_sub(n);
            for (i, (date, c)) in of.into_iter().enumerate() {
                let l = self.load(date, *c)?;
                let pinned = channel == Channel::Stable
                    && l.manifest.release().is_some_and(|v| keep.pins.contains(&v));
                if i >= first_kept || pinned {
                    kept.push(l);
                } else {
                    dropped.push(l);
                }
            }
        }
        Ok((kept, dropped))
    }

    /// What `clean` with `keep` removes (relative to the root, sorted).
    pub fn clean_plan(&self, keep: &Keep) -> Result<Vec<String>> {
        let (kept, dropped) = self.split_kept(keep)?;
        if dropped.is_empty() {
            return Ok(Vec::new());
        }
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let mut kept_bytes: Vec<&[u8]> = Vec::new();
        for l in &kept {
            needed.extend(sidecars(&l.rel()));
            kept_bytes.push(&l.bytes);
            for f in l.manifest.all_files() {
                needed.extend(sidecars(&format!("dist/{}", f.rel)));
            }
        }
        let mut remove: BTreeSet<String> = BTreeSet::new();
        let dropped_bytes: Vec<&[u8]> = dropped.iter().map(|l| &l.bytes[..]).collect();
        for l in &dropped {
            remove.extend(sidecars(&l.rel()));
            for f in l.manifest.all_files() {
                remove.extend(sidecars(&format!("dist/{}", f.rel)));
            }
        }
        // Dated directories holding no kept manifest go whole.
        let kept_dates: BTreeSet<&str> = kept.iter().map(|l| l.manifest.date.as_str()).collect();
        for date in dropped.iter().map(|l| l.manifest.date.as_str()) {
            if !kept_dates.contains(date) {
                remove.extend(files_in(&self.root, &format!("dist/{date}"))?);
            }
        }
        // Copies (dateless in `dist/`, by version in a dated directory)
        // of a dropped manifest, unless they are also a kept one's.
        let mut dirs: Vec<String> = vec!["dist".to_string()];
        dirs.extend(kept_dates.iter().map(|d| format!("dist/{d}")));
        for dir in dirs {
            for rel in files_in(&self.root, &dir)? {
                let name = rel.rsplit('/').next().unwrap_or_default();
                if !(name.starts_with("channel-rust-") && name.ends_with(".toml")) {
                    continue;
                }
                let Ok(bytes) =
                    crate::limit::read_file(&self.root.join(&rel), crate::limit::CHANNEL_MANIFEST)
                else {
                    continue;
                };
                if dropped_bytes.contains(&&bytes[..]) && !kept_bytes.contains(&&bytes[..]) {
                    remove.extend(sidecars(&rel));
                }
            }
        }
        Ok(remove
            .into_iter()
            .filter(|r| !needed.contains(r) && self.root.join(r).is_file())
            .collect())
    }

    /// Remove what [`Toolchain::clean_plan`] lists (`dry_run`: only print
    /// it), record it for the next archive, drop emptied dated
    /// directories, and publish the dateless copies again from what is
    /// kept. Returns what was (or would be) removed.
    pub fn clean(
        &self,
        keep: &Keep,
        dry_run: bool,
        reporter: &dyn Reporter,
    ) -> Result<Vec<String>> {
        let plan = self.clean_plan(keep)?;
        if dry_run {
            for p in &plan {
                crate::output::data(format_args!("would remove {p}"));
            }
            reporter.info(&format!(
                "toolchain: clean would remove {} files",
                plan.len()
            ));
            return Ok(plan);
        }
        crate::eco::selection::remove_recorded::<RetainEntry>(&self.root, ECOSYSTEM, &plan)?;
        for date in plan
            .iter()
            .filter_map(|p| p.split('/').nth(1))
            .filter(|d| manifest::is_date(d))
            .collect::<BTreeSet<_>>()
        {
            // Only an emptied directory goes; anything else stays.
            let _ = fs::remove_dir(self.root.join("dist").join(date));
        }
        reporter.info(&format!(
            "toolchain: clean removed {} files (the next archive removes them on the far side)",
            plan.len()
        ));
        if self.local_entries()?.is_empty() {
            return Ok(plan);
        }
        self.fixup(reporter)?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removable_paths() {
        assert!(is_removable(
            "dist/2026-01-01/rustc-1.0.0-x86_64-unknown-linux-gnu.tar.xz"
        ));
        assert!(is_removable("dist/channel-rust-1.80.toml"));
        assert!(!is_removable("dist/../etc/passwd"));
        assert!(!is_removable("dist/"));
        assert!(!is_removable("rustup/dist/x"));
        assert!(!is_removable("/dist/x"));
        assert!(!is_removable("dist/.mirror/x"));
    }

    #[test]
    fn keep_parse() {
        let k = Keep::parse(&["stable=3".into(), "nightly=7".into()], &["1.80.0".into()]).unwrap();
        assert_eq!(k.per_channel.get(&Channel::Stable), Some(&3));
        assert!(Keep::parse(&["lts=1".into()], &[]).is_err());
        assert!(Keep::parse(&["stable=x".into()], &[]).is_err());
        assert!(Keep::parse(&["stable=1".into()], &["1.80".into()]).is_err());
    }

    /// A manifest of `channel` (`version`) of `date` naming `files`
    /// (relative to `dist/`).
    fn manifest(root: &Path, channel: &str, version: &str, date: &str, files: &[&str]) -> Vec<u8> {
        let mut toml = format!(
            "manifest-version = \"2\"\ndate = \"{date}\"\n\n[pkg.rust]\nversion = \"{version} (x {date})\"\n\n"
        );
        for (i, f) in files.iter().enumerate() {
            toml.push_str(&format!(
                "[pkg.rust.target.t{i}]\navailable = true\nxz_url = \"https://static.rust-lang.org/dist/{f}\"\nxz_hash = \"{}\"\n\n",
                "0".repeat(64)
            ));
            let path = root.join("dist").join(f);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"x").unwrap();
            fs::write(root.join(format!("dist/{f}.sha256")), b"x").unwrap();
        }
        let dir = root.join("dist").join(date);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("channel-rust-{channel}.toml")), &toml).unwrap();
        toml.into_bytes()
    }

    #[test]
    fn files_a_kept_manifest_names_stay_and_copies_of_dropped_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let d = "2026-01-01";
        let night = manifest(
            root,
            "nightly",
            "1.1.0-nightly",
            d,
            &["2026-01-01/a.tar.xz", "2026-01-01/b.tar.xz"],
        );
        // The stable of the same day names the nightly's `a` too.
        manifest(
            root,
            "stable",
            "1.0.0",
            d,
            &["2026-01-01/a.tar.xz", "2026-01-01/c.tar.xz"],
        );
        fs::write(root.join("dist/channel-rust-nightly.toml"), &night).unwrap();
        let tc = Toolchain::new(
            root,
            "http://u/dist",
            crate::verify::openpgp::Keyring::new(),
            super::super::SignatureMode::Off,
        );
        let keep = Keep::parse(&["nightly=0".into()], &[]).unwrap();
        let plan = tc.clean_plan(&keep).unwrap();
        assert_eq!(
            plan,
            [
                "dist/2026-01-01/b.tar.xz",
                "dist/2026-01-01/b.tar.xz.sha256",
                "dist/2026-01-01/channel-rust-nightly.toml",
                "dist/channel-rust-nightly.toml",
            ]
        );
        tc.clean(&keep, false, &crate::report::NullReporter)
            .unwrap();
        assert!(root.join("dist/2026-01-01/a.tar.xz").is_file());
        assert!(root
            .join("dist/2026-01-01/channel-rust-stable.toml")
            .is_file());
        // The dateless stable follows the kept one.
        assert_eq!(
            fs::read(root.join("dist/channel-rust-stable.toml")).unwrap(),
            fs::read(root.join("dist/2026-01-01/channel-rust-stable.toml")).unwrap()
        );
        // Nothing is dropped when every manifest is kept.
        assert!(tc.clean_plan(&keep).unwrap().is_empty());
    }
}
