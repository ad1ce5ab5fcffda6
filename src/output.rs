//! Terminal output: the verbosity level, the indicatif [`Reporter`], and
//! error printing. Status and progress go to stderr; data (lists) to stdout.
//! Progress bars appear only when stderr is a terminal and `-q` was not
//! given; `NO_COLOR` is respected by indicatif's styling.
//!
//! Messages quote what upstream and bundles carry (names, paths, git's
//! own messages, a bundle's prerequisite comments and ref names), so
//! every line printed here passes through [`escape`]: no byte from
//! outside reaches the terminal as a control sequence.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Outcome, Reporter};

/// Whether a terminal would act on `c` rather than show it: C0 controls
/// other than newline and tab (ESC, CR, BEL, backspace…), DEL, C1
/// controls (CSI, OSC…), and the bidirectional embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069) that reorder what follows.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal would act on (see
/// [`is_unsafe`]) written as an escape: `\x1b` below U+0080, `\u{9b}`,
/// `\u{202e}` above. Newlines and tabs stay.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Write `line` and a newline to stderr. A stderr that is closed or
/// full (a reader that went away) loses the line; it never panics, as
/// `eprintln!` would.
fn to_stderr(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Write `line` (escaped) and a newline to stderr: for messages outside
/// a [`Printer`] (the server's log lines). See also [`log!`](crate::log).
pub fn log(line: std::fmt::Arguments<'_>) {
    to_stderr(format_args!("{}", escape(&line.to_string())));
}

/// [`log`] with `format!`'s arguments: `crate::log!("mirror serve: {e}")`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::output::log(format_args!($($arg)*))
    };
}

/// Write `line` (escaped) and a newline to stdout: for data lines that
/// quote names from upstream or a bundle (lists). A closed stdout (`|
/// head`) loses the line instead of panicking.
pub fn data(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{}", escape(&line.to_string()));
}

/// Write `value` as pretty JSON and a newline to stdout (JSON escapes
/// control characters itself); a closed stdout loses it, as [`data`].
pub fn json(value: &impl serde::Serialize) -> serde_json::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value)?;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Progress and summaries.
    Normal,
    /// Also one line per file.
    Verbose,
}

impl Verbosity {
    /// From `-q` and the count of `-v`.
    pub fn from_flags(quiet: bool, verbose: u8) -> Self {
        if quiet {
            Verbosity::Quiet
        } else if verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// Prints status lines at the chosen verbosity.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// The level.
    pub verbosity: Verbosity,
}

impl Printer {
    /// A status line (not with `-q`).
    pub fn info(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            to_stderr(format_args!("{}", escape(line)));
        }
    }

    /// A detail line (only with `-v`).
    pub fn verbose(&self, line: &str) {
        if self.verbosity == Verbosity::Verbose {
            to_stderr(format_args!("{}", escape(line)));
        }
    }

    /// A warning (always).
    pub fn warn(&self, line: &str) {
        to_stderr(format_args!("warning: {}", escape(line)));
    }

    /// The reporter for a long operation.
    pub fn reporter(&self) -> ProgressReporter {
        ProgressReporter::new(self.verbosity)
    }
}

/// A [`Reporter`] drawing one indicatif bar: items done of total, bytes
/// and rate.
pub struct ProgressReporter {
    verbosity: Verbosity,
    bar: Mutex<Option<ProgressBar>>,
    bytes: AtomicU64,
    started: Mutex<Instant>,
    last_draw: Mutex<Instant>,
    show_bar: bool,
    /// The current phase's name, for a bar drawn once the phase has items.
    phase: Mutex<String>,
    /// The current phase's total is still growing (it began with none
    /// and its plan is not complete): the bar says so instead of
    /// pretending to be nearly done.
    planning: std::sync::atomic::AtomicBool,
    /// The current phase's total bytes, when known.
    total_bytes: AtomicU64,
}

impl ProgressReporter {
    /// A reporter for this verbosity; bars only on a terminal.
    pub fn new(verbosity: Verbosity) -> Self {
        ProgressReporter {
            verbosity,
            bar: Mutex::new(None),
            bytes: AtomicU64::new(0),
            started: Mutex::new(Instant::now()),
            last_draw: Mutex::new(Instant::now()),
            show_bar: verbosity != Verbosity::Quiet && std::io::stderr().is_terminal(),
            phase: Mutex::new(String::new()),
            planning: std::sync::atomic::AtomicBool::new(false),
            total_bytes: AtomicU64::new(0),
        }
    }

    /// The bar's style: while the plan grows, the count is a lower bound
    /// and no ETA is shown; once it is complete, the ETA.
    fn style(&self) -> ProgressStyle {
        let template = if self.planning.load(Ordering::Relaxed) {
            "{prefix:>10} [{bar:30}] {pos}/{len}+ files (planning)  {msg}  ({elapsed})"
        } else {
            "{prefix:>10} [{bar:30}] {pos}/{len} files  {msg}  ({elapsed}, eta {eta})"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Draw the bar for `total_items`, or lengthen the one drawn.
    fn add_items(&self, total_items: u64) {
        if !self.show_bar || total_items == 0 {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = &*slot {
            match bar.length() {
                Some(_) => bar.inc_length(total_items),
                // The phase's spinner becomes its bar.
                None => {
                    bar.set_length(total_items);
                    bar.set_style(self.style());
                }
            }
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total_items), ProgressDrawTarget::stderr());
        bar.set_style(self.style());
        bar.set_prefix(self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        *slot = Some(bar);
    }

    /// A phase that begins without items (planning, a git bundle) shows a
    /// spinner with its name and time, until items arrive or it ends.
    fn spinner(&self) {
        if !self.show_bar {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} {spinner} {msg}  ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        *slot = Some(bar);
    }

    fn println(&self, line: &str) {
        let line = escape(line);
        match &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(bar) => bar.println(line),
            None => to_stderr(format_args!("{line}")),
        }
    }

    fn bytes_message(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self
            .started
            .lock()
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0)
            .max(0.001);
        let rate = HumanBytes((bytes as f64 / secs) as u64);
        match self.total_bytes.load(Ordering::Relaxed) {
            0 => format!("{} ({rate}/s)", HumanBytes(bytes)),
            total => format!("{} of {} ({rate}/s)", HumanBytes(bytes), HumanBytes(total)),
        }
    }
}

impl Reporter for ProgressReporter {
    fn begin(&self, phase: &str, total_items: u64, total_bytes: Option<u64>) {
        self.bytes.store(0, Ordering::Relaxed);
        self.total_bytes
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
        self.planning.store(total_items == 0, Ordering::Relaxed);
        if let Ok(mut s) = self.started.lock() {
            *s = Instant::now();
        }
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
        if total_items == 0 {
            self.spinner();
        } else {
            self.add_items(total_items);
        }
    }

    fn grow(&self, items: u64) {
        self.add_items(items);
    }

    fn planned(&self) {
        self.planning.store(false, Ordering::Relaxed);
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.set_style(self.style());
        }
    }

    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if !self.show_bar {
            return;
        }
        let mut last = self.last_draw.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_millis(100) {
            *last = Instant::now();
            if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
                bar.set_message(self.bytes_message());
            }
        }
    }

    fn unbytes(&self, n: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    fn item(&self, name: &str, outcome: Outcome) {
        if self.verbosity == Verbosity::Verbose {
            let tag = match outcome {
                Outcome::Done => "[done]",
                Outcome::Skipped => "[skip]",
                Outcome::Failed => "[fail]",
            };
            self.println(&format!("{tag} {name}"));
        }
        if outcome != Outcome::Skipped {
            if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
                bar.inc(1);
            }
        }
    }

    fn verbose(&self, line: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.println(line);
        }
    }

    fn info(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.println(line);
        }
    }

    fn warn(&self, line: &str) {
        self.println(&format!("warning: {line}"));
    }

    fn end(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// `20889000` → `19.92 MiB`.
pub fn human_bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

/// Print an error with its cause chain, and a hint where one is known.
pub fn print_error(err: &anyhow::Error) {
    to_stderr(format_args!("error: {}", escape(&err.to_string())));
    let mut causes = err.chain().skip(1).peekable();
    if causes.peek().is_some() {
        to_stderr(format_args!("\nCaused by:"));
        for cause in causes {
            to_stderr(format_args!(
                "    {}",
                escape(&cause.to_string()).replace('\n', "\n    ")
            ));
        }
    }
    if let Some(hint) = hint_for(err) {
        to_stderr(format_args!("\nhint: {hint}"));
    }
}

fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    let failed = err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::fetch::FetchFailed>());
    if let Some(failed) = failed {
        if failed.failures.iter().any(|(_, e)| e.is_retryable()) {
            return Some("run again to resume; files already verified are not fetched twice");
        }
        return None;
    }
    if err
        .chain()
        .any(|e| e.downcast_ref::<crate::store::TreeLocked>().is_some())
    {
        Some("wait for the other run to finish; the lock is released when it exits")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_known_by_its_type_under_any_context() {
        let dir = tempfile::tempdir().unwrap();
        let _held = crate::store::TreeLock::acquire(dir.path()).unwrap();
        let err = crate::store::TreeLock::acquire(dir.path())
            .unwrap_err()
            .context("cannot update the index");
        assert!(hint_for(&err).unwrap().contains("wait for the other run"));
        let other = anyhow::anyhow!("a message that mentions another mirror run");
        assert_eq!(hint_for(&other), None, "a message is not the type");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain text\n\tindented"), "plain text\n\tindented");
        assert!(matches!(escape("a/b-1.0"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\x1b[31mred\x1b]0;title\x07"),
            "a\\x1b[31mred\\x1b]0;title\\x07"
        );
        assert_eq!(escape("cr\rdel\x7fnul\0"), "cr\\x0ddel\\x7fnul\\x00");
        assert_eq!(escape("csi\u{9b}31m\u{85}"), "csi\\u{9b}31m\\u{85}");
        assert_eq!(
            escape("txt.\u{202e}exe \u{2066}x\u{2069} \u{202a}"),
            "txt.\\u{202e}exe \\u{2066}x\\u{2069} \\u{202a}"
        );
        // Printable characters beyond ASCII stay.
        assert_eq!(escape("café ü \u{a0}"), "café ü \u{a0}");
    }
}
