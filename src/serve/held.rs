//! What a tree holds, for the landing page ([`super::info`]): toolchains
//! by channel and date with their targets and the richest profile held
//! complete, rustup versions, the crate count and whether the crates
//! mirror is partial, Hex packages, Arch repositories with their package
//! counts and last sync. Read from the tree's files (nothing is verified:
//! this only says what is there); costs are bounded by [`MAX_MANIFESTS`]
//! per channel.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use crate::eco::toolchain::manifest::{Channel, Format, Manifest};

/// Dated manifests of one channel read, newest first.
pub const MAX_MANIFESTS: usize = 8;

/// Profiles from the richest down.
const PROFILES: [&str; 3] = ["complete", "default", "minimal"];

/// One toolchain held.
#[derive(Debug, Clone)]
pub struct HeldToolchain {
    /// `stable`, `beta`, `nightly`.
    pub channel: String,
    /// Its date.
    pub date: String,
    /// `1.80.0` …
    pub version: String,
    /// Targets whose `rustc` is held (installable as a host).
    pub hosts: Vec<String>,
    /// Targets whose `rust-std` only is held (cross-compilation).
    pub cross: Vec<String>,
    /// The richest profile held complete for every host target.
    pub profile: Option<String>,
    /// Components of the `default` profile missing for some host target.
    pub missing_default: Vec<String>,
    /// `dist/channel-rust-<channel>.toml` is this manifest: `rustup
    /// toolchain install <channel>` finds it.
    pub current: bool,
}

impl HeldToolchain {
    /// What `rustup toolchain install` takes for it.
    pub fn install_name(&self) -> String {
        if self.current {
            self.channel.clone()
        } else {
            format!("{}-{}", self.channel, self.date)
        }
    }
}

/// The rustup versions held.
#[derive(Debug, Clone, Default)]
pub struct HeldRustup {
    /// `release-stable.toml`'s version.
    pub stable: Option<String>,
    /// Versions under `archive/`, newest first, each with its targets.
    pub versions: Vec<(String, Vec<String>)>,
    /// Targets of `dist/<target>/rustup-init`.
    pub dist_targets: Vec<String>,
}

/// An Arch repository held.
#[derive(Debug, Clone)]
pub struct HeldRepo {
    /// `core` …
    pub repo: String,
    /// `x86_64` …
    pub arch: String,
    /// Package files.
    pub packages: u64,
    /// When the database was last written.
    pub synced: Option<SystemTime>,
}

/// Everything held.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Toolchains, newest first per channel.
    pub toolchains: Vec<HeldToolchain>,
    /// rustup, when `rustup/` is there.
    pub rustup: Option<HeldRustup>,
    /// `.crate` files, and whether the mirror is partial; `None`: no
    /// `crates/`.
    pub crates: Option<(u64, bool)>,
    /// Whether the git index is there (the sparse index is served from it).
    pub crates_index: bool,
    /// Hex package names and tarballs; `None`: no `hex/`.
    pub hex: Option<(u64, u64)>,
    /// Arch repositories.
    pub arch: Vec<HeldRepo>,
}

/// Read what `root` holds.
pub fn read(root: &Path) -> Held {
    Held {
        toolchains: toolchains(&root.join("dist")),
        rustup: root.join("rustup").is_dir().then(|| rustup(root)),
        crates: root.join("crates").is_dir().then(|| {
            let partial = root
                .join("crates")
                .join(crate::eco::crates::PARTIAL_MARKER)
                .is_file();
            (
                count_files(&root.join("crates"), &|n| n.ends_with(".crate")),
                partial,
            )
        }),
        crates_index: root.join("git/crates.io-index").is_dir(),
        hex: root.join("hex").is_dir().then(|| {
            let any = |_: &str| true;
            (
                count_files(&root.join("hex/packages"), &any),
                count_files(&root.join("hex/tarballs"), &|n| n.ends_with(".tar")),
            )
        }),
        arch: arch(&root.join("archlinux")),
    }
}

fn visible_dirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !super::path::is_hidden_name(n))
        .collect();
    out.sort();
    out
}

/// Files below `dir` whose name passes `keep` (hidden ones skipped).
fn count_files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> u64 {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if super::path::is_hidden_name(&name) {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => n += count_files(&e.path(), keep),
            Ok(t) if t.is_file() && keep(&name) => n += 1,
            _ => {}
        }
    }
    n
}

fn toolchains(dist: &Path) -> Vec<HeldToolchain> {
    let dates: Vec<String> = visible_dirs(dist)
        .into_iter()
        .filter(|d| crate::eco::toolchain::manifest::is_date(d))
        .rev()
        .collect();
    let mut out = Vec::new();
    for channel in Channel::ALL {
        let current = read_manifest(&dist.join(channel.manifest_name())).map(|m| m.date);
        let mut seen = 0;
        for date in &dates {
            if seen >= MAX_MANIFESTS {
                break;
            }
            let Some(m) = read_manifest(&dist.join(date).join(channel.manifest_name())) else {
                continue;
            };
            seen += 1;
            out.push(held_toolchain(
                dist,
                &m,
                channel,
                current.as_deref() == Some(date),
            ));
        }
    }
    out
}

fn read_manifest(path: &Path) -> Option<Manifest> {
    let bytes = crate::limit::read_file(path, crate::limit::CHANNEL_MANIFEST).ok()?;
    Manifest::parse(&bytes, &path.display().to_string()).ok()
}

fn held_toolchain(dist: &Path, m: &Manifest, channel: Channel, current: bool) -> HeldToolchain {
    let present = |pkg: &str, target: &str| {
        m.pkgs
            .get(pkg)
            .and_then(|p| p.targets.get(target))
            .is_some_and(|t| {
                [Format::Xz, Format::Gz]
                    .iter()
                    .any(|&f| t.artifact(f).is_some_and(|a| dist.join(&a.rel).is_file()))
            })
    };
    let available = |pkg: &str, target: &str| {
        m.pkgs
            .get(pkg)
            .and_then(|p| p.targets.get(target))
            .is_some_and(|t| t.available)
    };
    let targets: BTreeSet<String> = m.all_targets().into_iter().filter(|t| t != "*").collect();
    let hosts: Vec<String> = targets
        .iter()
        .filter(|t| present("rustc", t))
        .cloned()
        .collect();
    let cross: Vec<String> = targets
        .iter()
        .filter(|t| !hosts.contains(t) && present("rust-std", t))
        .cloned()
        .collect();
    // A profile's components (available for the target, or for all
    // targets) not held for some host.
    let missing = |profile: &str| -> Option<Vec<String>> {
        let components = m.profiles.get(profile)?;
        let mut out = BTreeSet::new();
        for t in &hosts {
            for c in components {
                let c = m.renames.get(c).map_or(c.as_str(), String::as_str);
                let held = if available(c, t) {
                    present(c, t)
                } else if available(c, "*") {
                    present(c, "*")
                } else {
                    true
                };
                if !held {
                    out.insert(c.to_owned());
                }
            }
        }
        Some(out.into_iter().collect())
    };
    // The richest profile held complete for every host.
    let profile = PROFILES
        .iter()
        .find(|p| !hosts.is_empty() && missing(p).is_some_and(|m| m.is_empty()))
        .map(|p| (*p).to_owned());
    let missing_default = missing("default").unwrap_or_default();
    let version = m
        .pkgs
        .get("rust")
        .map(|p| {
            p.version
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned()
        })
        .unwrap_or_else(|| "?".to_owned());
    HeldToolchain {
        channel: channel.to_string(),
        date: m.date.clone(),
        version,
        hosts,
        cross,
        profile,
        missing_default,
        current,
    }
}

fn rustup(root: &Path) -> HeldRustup {
    let r = crate::eco::rustup::Rustup::new(root, crate::eco::rustup::DEFAULT_URL);
    let versions = r
        .local_versions()
        .unwrap_or_default()
        .into_iter()
        .take(MAX_MANIFESTS)
        .map(|v| (v.to_string(), r.local_targets(v).unwrap_or_default()))
        .collect();
    HeldRustup {
        stable: r.local_stable().ok().flatten().map(|v| v.to_string()),
        versions,
        dist_targets: visible_dirs(&root.join("rustup/dist"))
            .into_iter()
            .filter(|t| {
                root.join("rustup/dist")
                    .join(t)
                    .join("rustup-init")
                    .is_file()
                    || root
                        .join("rustup/dist")
                        .join(t)
                        .join("rustup-init.exe")
                        .is_file()
            })
            .collect(),
    }
}

fn arch(top: &Path) -> Vec<HeldRepo> {
    let mut out = Vec::new();
    for repo in visible_dirs(top) {
        for arch in visible_dirs(&top.join(&repo).join("os")) {
            let dir = top.join(&repo).join("os").join(&arch);
            let db = dir.join(format!("{repo}.db"));
            let Ok(meta) = std::fs::metadata(&db) else {
                continue;
            };
            let packages = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.contains(".pkg.tar")
                        && !n.ends_with(".sig")
                        && !super::path::is_hidden_name(&n)
                })
                .count() as u64;
            out.push(HeldRepo {
                repo: repo.clone(),
                arch,
                packages,
                synced: meta.modified().ok(),
            });
        }
    }
    out
}
