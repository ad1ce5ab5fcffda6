//! The on-disk tree: atomic writes, the run lock and the state file.
//!
//! ```text
//! <root>/
//!   rustup/ dist/ crates/ git/ hex/ archlinux/   served trees (laid out as
//!                                                romt lays them out; each
//!                                                ecosystem module documents its own)
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

/// Write `data` to `path` atomically: a temporary sibling of its own
/// ([`create_temp`]), fsync, rename. Parent directories are created; the
/// first write into a directory removes the temporaries killed runs left
/// there.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    replace_with(path, true, |f| f.write_all(data))
}

/// [`write_atomic`] without the fsync: for files that are cheap to fetch
/// again and many (the download engine's small bodies), where a crash may
/// leave an empty file that the next check finds wrong, never a mix.
pub fn write_replace(path: &Path, data: &[u8]) -> io::Result<()> {
    replace_with(path, false, |f| f.write_all(data))
}

/// Copy `from` to `to` atomically (a temporary sibling of its own,
/// rename), sweeping the directory as [`write_atomic`] does.
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = File::open(from)?;
    let mode = src.metadata()?.permissions();
    replace_with(to, false, |f| {
        io::copy(&mut src, f)?;
        f.set_permissions(mode.clone())
    })
}

/// Fill a new temporary sibling of `path` with `fill`, then rename it
/// over `path`; the temporary is removed on failure.
fn replace_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
        sweep_once(parent);
    }
    let (mut f, tmp) = create_temp(path)?;
    let result = (|| {
        fill(&mut f)?;
        if sync {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if sync {
        // The rename is durable only once its directory is.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        trace("write", path);
    }
    Ok(())
}

/// Make everything written so far on the file system holding `path` (a
/// file or directory) durable: one `syncfs`, which also covers the
/// renames that published it. Called once per batch, before the metadata
/// or mark that points at the batch moves, so a power loss leaves the old
/// metadata or the new with all it names, never metadata naming torn or
/// empty files. (An `fsync` per file waits for the disk once per file:
/// minutes for 200,000 small ones.)
pub fn sync_tree(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let f = File::open(path)?;
        rustix::fs::syncfs(&f)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No per-file-system sync elsewhere: the directory at least.
        File::open(path)?.sync_all()?;
    }
    trace("sync", path);
    Ok(())
}

/// `fsync` the directory `dir`, so the renames and creations in it are
/// durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The variable naming a file where each [`sync_tree`], durable
/// [`write_atomic`] and other [`trace`]d step appends a line (`sync
/// <path>`, `write <path>` for metadata, `publish <path>` for a file it
/// may name), in the order they happen: how the tests check that what
/// metadata names is made durable before the metadata is written.
pub const TRACE_SYNC_VAR: &str = "MIRROR_TRACE_SYNC";

/// Append `<event> <path>` to the [`TRACE_SYNC_VAR`] file, if set.
pub fn trace(event: &str, path: &Path) {
    let Some(file) = std::env::var_os(TRACE_SYNC_VAR) else {
        return;
    };
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(file) {
        let _ = writeln!(f, "{event} {}", path.display());
    }
}

/// A new temporary file beside `path` ([`temp_sibling`]), created
/// exclusively ([`create_new_file`]); another name is tried when one is
/// taken.
pub fn create_temp(path: &Path) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = temp_sibling(path);
        match create_new_file(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Create `path` for writing, failing when anything is there already
/// (`O_CREAT|O_EXCL`, which never follows a symlink; `O_NOFOLLOW` too,
/// where there is one), readable by all as published files are.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644);
    }
    o.open(path)
}

/// A temporary name beside `path`, unique per call:
/// `.<name>.tmp.<pid>.<n>.<random>` (a dot-file, so `mirror serve` never
/// hands it out; the pid tells a later run whether its writer is gone,
/// see [`remove_abandoned_temporaries`]). Create it with
/// [`create_new_file`] (or use [`create_temp`]).
pub fn temp_sibling(path: &Path) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Random keys from the OS per process, a new pair per call.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(epoch_nanos(SystemTime::now()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.tmp.{}.{n}.{:08x}",
        std::process::id(),
        h.finish() as u32
    ))
}

/// The pid of a [`temp_sibling`] name (`.<name>.tmp.<pid>[.<n>.<random>]`,
/// the older `.<name>.tmp.<pid>` included).
fn temp_writer(name: &str) -> Option<u32> {
    let (_, rest) = name.strip_prefix('.')?.rsplit_once(".tmp.")?;
    let mut parts = rest.split('.');
    let pid = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) => Some(pid),
        (Some(n), Some(r), None)
            if n.bytes().all(|b| b.is_ascii_digit())
                && !n.is_empty()
                && !r.is_empty()
                && r.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(pid)
        }
        _ => None,
    }
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

/// Remove the temporary siblings ([`temp_sibling`]:
/// `.<name>.tmp.<pid>.<n>.<random>`, or the older `.<name>.tmp.<pid>`) in
/// `dir` whose process no longer exists: what runs that were killed
/// between writing a file and renaming it left. Only where `/proc` tells
/// which processes exist.
pub fn remove_abandoned_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
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

/// The marker an offline command leaves in a directory whose metadata it
/// made for a partial mirror (an Arch repository's regenerated database,
/// a Hex selection's `names` and `versions`): `mirror serve`'s cache
/// serves such metadata as it is and never replaces it from upstream. A
/// dot-file: never served, never packed.
pub const PARTIAL_MARK: &str = ".mirror-partial";

/// Set or clear [`PARTIAL_MARK`] in `dir` (created when needed).
pub fn mark_partial(dir: &Path, partial: bool) -> io::Result<()> {
    let path = dir.join(PARTIAL_MARK);
    if partial {
        if !path.is_file() {
            write_atomic(
                &path,
                b"# mirror: metadata here was made for a partial mirror;\n\
                  # mirror serve --upstream-... keeps it as it is.\n",
            )?;
        }
        return Ok(());
    }
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `dir` holds [`PARTIAL_MARK`].
pub fn is_marked_partial(dir: &Path) -> bool {
    dir.join(PARTIAL_MARK).is_file()
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

/// Read the JSON state file `name` under `.mirror/` (missing: the default).
pub fn load_meta_json<T: serde::de::DeserializeOwned + Default>(
    root: &Path,
    name: &str,
) -> Result<T> {
    let path = meta_path(root, name);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| {
            format!(
                "{}: not a state file this mirror reads (move it aside to start afresh)",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write the JSON state file `name` under `.mirror/` atomically.
pub fn save_meta_json<T: Serialize>(root: &Path, name: &str, value: &T) -> Result<()> {
    let path = meta_path(root, name);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    write_atomic(&path, &serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Remove the entries of `dir` named `<prefix><pid>`, `<prefix><pid>-…`
/// or `<prefix><pid>.…` whose process no longer exists: temporary directories and files of runs
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
        let Some(pid) = rest
            .split(['-', '.'])
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        else {
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

/// The error of [`TreeLock::acquire`] when another run holds the lock.
#[derive(Debug, thiserror::Error)]
#[error(
    "another mirror run is using {} (lock {} held{})",
    root.display(),
    lock.display(),
    holder.as_ref().map(|h| format!(" by pid {h}")).unwrap_or_default()
)]
pub struct TreeLocked {
    /// The tree.
    pub root: PathBuf,
    /// Its lock file.
    pub lock: PathBuf,
    /// What the lock file says of its holder (a pid), if anything.
    pub holder: Option<String>,
}

/// An exclusive lock on a tree, held until dropped. Two runs that write the
/// same tree cannot interleave; the second fails at once with a message.
#[derive(Debug)]
pub struct TreeLock {
    _file: File,
    path: PathBuf,
    /// Set by [`TreeLock::acquire_for_chain`]: the key it registered.
    chain: Option<PathBuf>,
}

thread_local! {
    /// Lock files this thread holds for a chain of runs (`mirror export`
    /// running each ecosystem's operations): runs inside it take the
    /// lock as held.
    static CHAINS: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl TreeLock {
    /// Take the lock on `root` for a chain of runs on this thread: the
    /// [`TreeLock::acquire`]s they make while it is held succeed without
    /// locking again; other runs still fail.
    pub fn acquire_for_chain(root: &Path) -> Result<TreeLock> {
        let mut lock = TreeLock::acquire(root)?;
        let key = fs::canonicalize(&lock.path).unwrap_or_else(|_| lock.path.clone());
        CHAINS.with(|c| c.borrow_mut().push(key.clone()));
        lock.chain = Some(key);
        Ok(lock)
    }

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
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if CHAINS.with(|c| c.borrow().contains(&key)) {
            return Ok(TreeLock {
                _file: file,
                path,
                chain: None,
            });
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(TreeLocked {
                    root: root.to_path_buf(),
                    lock: path.clone(),
                    holder: (!holder.is_empty()).then(|| holder.to_string()),
                }
                .into());
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        file.set_len(0)?;
        let _ = writeln!(file, "{}", std::process::id());
        Ok(TreeLock {
            _file: file,
            path,
            chain: None,
        })
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TreeLock {
    fn drop(&mut self) {
        if let Some(key) = self.chain.take() {
            CHAINS.with(|c| c.borrow_mut().retain(|k| *k != key));
        }
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
        // The marks name what the tree holds: that first.
        sync_tree(root).with_context(|| format!("cannot write {} to disk", root.display()))?;
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

    /// Regression: every thread of a process wrote `.<name>.tmp.<pid>`,
    /// so two writes of one file at once truncated or renamed away each
    /// other's temporary (an error, or an empty file published).
    #[test]
    fn concurrent_atomic_writes_of_one_file_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sig");
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|t| vec![b'a' + t; 4096]).collect();
        std::thread::scope(|scope| {
            for body in &bodies {
                let p = &p;
                scope.spawn(move || {
                    for _ in 0..200 {
                        write_atomic(p, body).unwrap();
                        let got = fs::read(p).unwrap();
                        assert!(bodies_contains(&got), "a mixed or empty file");
                    }
                });
            }
        });
        fn bodies_contains(got: &[u8]) -> bool {
            got.len() == 4096 && got.iter().all(|b| *b == got[0])
        }
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temporaries left behind");
    }

    #[test]
    fn temporaries_are_unique_and_created_exclusively_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let names: BTreeSet<PathBuf> = (0..1000).map(|_| temp_sibling(&p)).collect();
        assert_eq!(names.len(), 1000);
        for n in &names {
            let name = n.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(".f.tmp."), "{name}");
            assert_eq!(temp_writer(name), Some(std::process::id()), "{name}");
        }
        #[cfg(unix)]
        {
            let target = dir.path().join("target");
            fs::write(&target, b"keep").unwrap();
            let link = dir.path().join("planted");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = create_new_file(&link).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&target).unwrap(), b"keep");
            // A dangling one is not followed either.
            let dangling = dir.path().join("dangling");
            std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
            assert!(create_new_file(&dangling).is_err());
            assert!(!dir.path().join("nowhere").exists());
        }
    }

    /// The unique names of killed writers are swept like the old ones;
    /// those of live writers (this process) stay.
    #[test]
    fn unique_temporaries_of_dead_writers_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = temp_sibling(&dir.path().join("b"));
        let live_name = live.file_name().unwrap().to_str().unwrap().to_string();
        // pid 2^22 + 1 is above Linux's pid_max: never alive.
        for name in [
            ".a.tmp.4194305.17.0badf00d",
            ".a.tmp.4194305",
            live_name.as_str(),
            ".c.tmp.4194305.x.y",
            ".d.tmp.4194305.1.nothex",
        ] {
            fs::write(dir.path().join(name), b"half").unwrap();
        }
        remove_abandoned_temporaries(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            live_name,
            ".c.tmp.4194305.x.y".to_string(),
            ".d.tmp.4194305.1.nothex".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
        // A pack's or an index's temporary, by prefix.
        let dir2 = tempfile::tempdir().unwrap();
        fs::write(dir2.path().join(".x.tar.gz.tmp.4194305.3.ab"), b"big").unwrap();
        remove_abandoned(dir2.path(), ".x.tar.gz.tmp.");
        assert_eq!(fs::read_dir(dir2.path()).unwrap().count(), 0);
    }

    #[test]
    fn copy_atomic_keeps_permissions_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::write(&from, b"bytes").unwrap();
        let to = dir.path().join("sub/to");
        copy_atomic(&from, &to).unwrap();
        copy_atomic(&from, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"bytes");
        assert_eq!(
            fs::metadata(&to).unwrap().permissions(),
            fs::metadata(&from).unwrap().permissions()
        );
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn a_chain_lock_lets_its_own_runs_in_and_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let chain = TreeLock::acquire_for_chain(dir.path()).unwrap();
        drop(TreeLock::acquire(dir.path()).unwrap());
        let root = dir.path().to_path_buf();
        let other = std::thread::spawn(move || TreeLock::acquire(&root).is_err());
        assert!(other.join().unwrap(), "another thread took a chain's lock");
        drop(chain);
        let _first = TreeLock::acquire(dir.path()).unwrap();
        assert!(TreeLock::acquire(dir.path()).is_err());
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
