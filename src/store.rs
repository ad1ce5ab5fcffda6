//! The on-disk tree: atomic writes, the run lock and the state file.
//!
//! ```text
//! <root>/
//!   rustup/ dist/ crates/ git/ hex/ archlinux/   served trees (see DESIGN.md)
//!   .mirror/
//!     lock          held (flock) for the whole of a run that writes
//!     state.json    {"version": 1, "marks": {"<ecosystem>": {...}}}
//!     staging/      unpack stages bundles here before publishing
//! ```
//!
//! Nothing is written in place: every file goes to a temporary sibling and
//! is renamed over its destination, so readers (and `mirror serve`) see the
//! old bytes or the new, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The directory under the root that holds our own bookkeeping.
pub const META_DIR: &str = ".mirror";

/// Write `data` to `path` atomically: a temporary sibling, fsync, rename.
/// Parent directories are created; the first write into a directory
/// removes the temporaries killed runs left there.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
        sweep_once(parent);
    }
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copy `from` to `to` atomically (temporary sibling, rename), sweeping
/// the directory as [`write_atomic`] does.
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let tmp = temp_sibling(to);
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
        sweep_once(parent);
    }
    let result = fs::copy(from, &tmp).and_then(|_| fs::rename(&tmp, to));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A temporary name beside `path`: `.<name>.tmp.<pid>` (a dot-file, so
/// `mirror serve` never hands it out).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// How many swept directories [`sweep_once`] remembers.
const SWEPT_MAX: usize = 4096;

/// [`remove_abandoned_temporaries`] of `dir`, once per directory in this
/// process: the first atomic write into a directory pays one listing. The
/// set of directories swept is forgotten past [`SWEPT_MAX`] entries, so a
/// long-lived process (`mirror serve` filling a tree) stays bounded and at
/// worst lists a directory again.
fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first = {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.len() >= SWEPT_MAX {
            swept.clear();
        }
        swept.insert(dir.to_path_buf())
    };
    if first {
        remove_abandoned_temporaries(dir);
    }
}

/// Remove the temporary siblings ([`temp_sibling`]: `.<name>.tmp.<pid>`)
/// in `dir` whose process no longer exists: what runs that were killed
/// between writing a file and renaming it left. Only where `/proc` tells
/// which processes exist.
pub fn remove_abandoned_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(".tmp."))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if is_dead(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is known not to exist (never for ours; never
/// where `/proc` cannot tell).
fn is_dead(pid: u32) -> bool {
    pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// What an unprivileged process may still create on one file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes (available blocks × fragment size).
    pub bytes: u64,
    /// Inodes (files and directories) it may still create; `None` where
    /// the file system sets no limit (btrfs reports none).
    pub inodes: Option<u64>,
    /// The unit space is allocated in (the fragment size): a file of one
    /// byte takes one of these.
    pub block: u64,
}

/// Free space and inodes on the file system holding `path` (`statvfs`);
/// `None` where that is unknown (the call failed).
pub fn free_space(path: &Path) -> Option<FreeSpace> {
    let st = rustix::fs::statvfs(path).ok()?;
    let block = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Some(FreeSpace {
        bytes: st.f_bavail.saturating_mul(block),
        inodes: (st.f_files > 0).then_some(st.f_favail),
        block: block.clamp(512, 1 << 20),
    })
}

/// The path of `<root>/.mirror/<name>`.
pub fn meta_path(root: &Path, name: &str) -> PathBuf {
    root.join(META_DIR).join(name)
}

/// Remove the entries of `dir` named `<prefix><pid>` or `<prefix><pid>-…`
/// whose process no longer exists: temporary directories and files of runs
/// that were killed. Only where `/proc` tells which processes exist;
/// elsewhere nothing is removed.
pub fn remove_abandoned(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if is_dead(pid) {
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(entry.path()),
                _ => fs::remove_file(entry.path()),
            };
        }
    }
}

/// An exclusive lock on a tree, held until dropped. Two runs that write the
/// same tree cannot interleave; the second fails at once with a message.
#[derive(Debug)]
pub struct TreeLock {
    _file: File,
    path: PathBuf,
}

impl TreeLock {
    /// Take the lock on `root`, failing (not waiting) if another run has it.
    pub fn acquire(root: &Path) -> Result<TreeLock> {
        let dir = root.join(META_DIR);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                bail!(
                    "another mirror run is using {} (lock {} held{})",
                    root.display(),
                    path.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" by pid {holder}")
                    }
                );
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        file.set_len(0)?;
        let _ = writeln!(file, "{}", std::process::id());
        Ok(TreeLock { _file: file, path })
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The state file's current format version.
pub const STATE_VERSION: u32 = 1;

/// `.mirror/state.json`: marks per ecosystem (what the last `pack` or
/// `mark` covered), versioned so a newer layout is refused, not misread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; see [`STATE_VERSION`].
    pub version: u32,
    /// Per ecosystem: mark name -> value (a commit, a date, a version).
    #[serde(default)]
    pub marks: BTreeMap<String, BTreeMap<String, String>>,
}

impl State {
    /// Read the state of `root`; an absent file is an empty state.
    pub fn load(root: &Path) -> Result<State> {
        let path = meta_path(root, "state.json");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    ..State::default()
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let state: State = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a valid state file", path.display()))?;
        if state.version > STATE_VERSION {
            bail!(
                "{}: state format version {} is newer than this mirror understands ({}); upgrade mirror",
                path.display(),
                state.version,
                STATE_VERSION
            );
        }
        Ok(state)
    }

    /// Write the state of `root` atomically.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = meta_path(root, "state.json");
        let mut state = self.clone();
        state.version = STATE_VERSION;
        let mut text = serde_json::to_vec_pretty(&state)?;
        text.push(b'\n');
        write_atomic(&path, &text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// A mark of an ecosystem.
    pub fn mark(&self, ecosystem: &str, name: &str) -> Option<&str> {
        self.marks.get(ecosystem)?.get(name).map(String::as_str)
    }

    /// Set a mark of an ecosystem.
    pub fn set_mark(&mut self, ecosystem: &str, name: &str, value: &str) {
        self.marks
            .entry(ecosystem.to_string())
            .or_default()
            .insert(name.to_string(), value.to_string());
    }

    /// Set the time mark (`mark`) of an ecosystem whose increments are
    /// "files written since": now, in nanoseconds since the epoch.
    /// Returns the value set.
    pub fn set_time_mark(&mut self, ecosystem: &str) -> String {
        let now = epoch_nanos(SystemTime::now()).to_string();
        self.set_mark(ecosystem, "mark", &now);
        now
    }

    /// The time mark of an ecosystem: its value and its nanoseconds since
    /// the epoch (0 when unset, so every file counts as new). Compare with
    /// [`epoch_nanos`] of a file's mtime.
    pub fn time_mark(&self, ecosystem: &str) -> Result<(Option<String>, u128)> {
        match self.mark(ecosystem, "mark") {
            Some(m) => {
                let nanos = m.parse().with_context(|| {
                    format!("invalid {ecosystem} mark {m:?} in .mirror/state.json: expected nanoseconds since the epoch")
                })?;
                Ok((Some(m.to_string()), nanos))
            }
            None => Ok((None, 0)),
        }
    }
}

/// Nanoseconds since the epoch (0 for earlier times).
pub fn epoch_nanos(t: SystemTime) -> u128 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn abandoned_directories_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mine = format!("x-{}-1", std::process::id());
        // pid 2^22 + 1 is above Linux's pid_max: never alive.
        for name in [mine.as_str(), "x-4194305-7", "y-4194305-7", "x-notapid"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        fs::write(dir.path().join("x-4194305"), b"a file").unwrap();
        remove_abandoned(dir.path(), "x-");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![mine, "x-notapid".to_string(), "y-4194305-7".to_string()];
        want.sort();
        assert_eq!(left, want);
    }

    /// Regression: a run killed between writing a file's temporary and
    /// renaming it left `.<name>.tmp.<pid>` for good, in served
    /// directories and `.mirror/` alike.
    #[test]
    fn killed_runs_left_temporaries_of_atomic_writes_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mine = format!(".b.tmp.{}", std::process::id());
        // pid 2^22 + 1 is above Linux's pid_max: never alive.
        for name in [".a.tmp.4194305", mine.as_str(), ".c.tmp.x", "d.tmp.4194305"] {
            fs::write(dir.path().join(name), b"half").unwrap();
        }
        write_atomic(&dir.path().join("e"), b"whole").unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![mine, ".c.tmp.x".into(), "d.tmp.4194305".into(), "e".into()];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn second_lock_on_a_tree_fails_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let first = TreeLock::acquire(dir.path()).unwrap();
        let err = TreeLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another mirror run"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        TreeLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn state_round_trips_and_refuses_newer_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path()).unwrap();
        assert_eq!(s.version, STATE_VERSION);
        s.set_mark("crates", "mark", "abc123");
        s.save(dir.path()).unwrap();
        assert_eq!(
            State::load(dir.path()).unwrap().mark("crates", "mark"),
            Some("abc123")
        );
        write_atomic(
            &meta_path(dir.path(), "state.json"),
            br#"{"version": 99, "marks": {}}"#,
        )
        .unwrap();
        let err = State::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn time_marks_are_nanoseconds_and_bad_ones_are_named() {
        let mut s = State::default();
        assert_eq!(s.time_mark("arch").unwrap(), (None, 0));
        let set = s.set_time_mark("arch");
        let (value, nanos) = s.time_mark("arch").unwrap();
        assert_eq!(value.as_deref(), Some(set.as_str()));
        assert!(nanos > 0 && nanos <= epoch_nanos(SystemTime::now()));
        s.set_mark("arch", "mark", "yesterday");
        let err = s.time_mark("arch").unwrap_err().to_string();
        assert!(err.contains("invalid arch mark \"yesterday\""), "{err}");
    }
}
