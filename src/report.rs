//! Progress reporting, independent of any terminal library.
//!
//! Long operations (fetching, packing, unpacking) take a `&dyn Reporter`;
//! only the CLI layer (`output.rs`) knows indicatif.

/// How one item of a long operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fetched (or written) and verified.
    Done,
    /// Already present and correct; nothing was transferred.
    Skipped,
    /// Failed; the error is reported separately.
    Failed,
}

/// Receives progress events. Every method has an empty default, so a
/// reporter implements only what it shows. Implementations must be cheap:
/// `bytes` is called for every chunk.
pub trait Reporter: Send + Sync {
    /// A phase begins: `total_items` items, `total_bytes` when known.
    fn begin(&self, _phase: &str, _total_items: u64, _total_bytes: Option<u64>) {}
    /// The current phase has `items` more items than announced (a plan
    /// that grows while it runs).
    fn grow(&self, _items: u64) {}
    /// The current phase's plan is complete: the items announced (by
    /// `begin` and `grow`) are all it will have. A phase that begins with
    /// its total known needs no `planned`.
    fn planned(&self) {}
    /// More bytes of the current phase were processed.
    fn bytes(&self, _n: u64) {}
    /// Bytes previously reported must be taken back (a restarted download).
    fn unbytes(&self, _n: u64) {}
    /// One item finished.
    fn item(&self, _name: &str, _outcome: Outcome) {}
    /// A line worth showing with `-v`.
    fn verbose(&self, _line: &str) {}
    /// A line worth showing unless `-q` (summaries).
    fn info(&self, _line: &str) {}
    /// A warning: shown even with `-q` (without the `warning: ` prefix;
    /// the reporter adds it).
    fn warn(&self, _line: &str) {}
    /// The current phase ended.
    fn end(&self) {}
}

/// A reporter that shows nothing (tests, `-q`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullReporter;

impl Reporter for NullReporter {}
