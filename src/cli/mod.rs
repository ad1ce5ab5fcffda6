//! Command-line types (clap) and one thin `run` per subcommand. Parsing
//! only: values are resolved into [`crate::settings::Settings`] before any
//! work starts.
//!
//! The doc comments on these types are the `--help` text clap prints, so
//! they are written for a terminal: URLs, `NAME[@VERSION]` and `<name>`
//! stay as the user should read them, not as rustdoc markup.
#![allow(
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags
)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod arch;
pub mod crates;
pub mod generate;
pub mod hex;
pub mod publish;
pub mod rustup;
pub mod serve;
pub mod toolchain;
pub mod trip;

/// Carry Rust toolchains, rustup, crates, Hex and Arch Linux repositories
/// across an air gap.
#[derive(Debug, Parser)]
#[command(name = "mirror", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Mirror root: the directory holding rustup/, dist/, crates/ and the
    /// other trees
    /// [default: the working directory]
    #[arg(long, global = true, env = "MIRROR_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Parallel download jobs [default: 8]
    #[arg(
        short = 'j',
        long = "num-jobs",
        global = true,
        env = "MIRROR_JOBS",
        value_name = "N"
    )]
    pub jobs: Option<usize>,

    /// Keep going after a failed download; the run still exits non-zero
    /// and lists every failure
    #[arg(long, global = true)]
    pub keep_going: bool,

    /// Trust files already present (size check only) instead of re-hashing
    #[arg(long, global = true)]
    pub assume_ok: bool,

    /// Seconds to wait for a connection or for the next bytes [default: 30]
    #[arg(long, global = true, env = "MIRROR_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Retries of a failed request (network errors, 5xx, 429) [default: 4]
    #[arg(long, global = true, env = "MIRROR_RETRIES", value_name = "N")]
    pub retries: Option<u32>,

    /// Abandon (and retry, or try the next mirror) a transfer slower than
    /// this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]
    #[arg(
        long,
        global = true,
        env = "MIRROR_LOW_SPEED_LIMIT",
        value_name = "BYTES"
    )]
    pub low_speed_limit: Option<u64>,

    /// Raise the ceiling of downloads whose size is not known in advance
    /// (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body
    /// past its ceiling is refused. Accepts K, M, G suffixes
    #[arg(
        long,
        global = true,
        env = "MIRROR_MAX_FILE_SIZE",
        value_name = "SIZE",
        value_parser = crate::limit::parse_size
    )]
    pub max_file_size: Option<u64>,

    /// More output: one line per file
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress or status output; errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl From<&GlobalArgs> for crate::settings::Flags {
    fn from(g: &GlobalArgs) -> Self {
        crate::settings::Flags {
            root: g.root.clone(),
            jobs: g.jobs,
            keep_going: g.keep_going,
            assume_ok: g.assume_ok,
            timeout: g.timeout,
            retries: g.retries,
            low_speed_limit: g.low_speed_limit,
            max_file_size: g.max_file_size,
            verbose: g.verbose,
            quiet: g.quiet,
            section_options,
        }
    }
}

/// The long options of subcommand `name` that are not global: what its
/// `mirror.toml` section may set.
fn section_options(name: &str) -> Option<Vec<String>> {
    use clap::CommandFactory as _;
    let cli = Cli::command();
    let sub = cli.find_subcommand(name)?;
    Some(
        sub.get_arguments()
            .filter(|a| !a.is_global_set())
            .filter_map(|a| a.get_long())
            .map(str::to_string)
            .collect(),
    )
}

/// The subcommands.
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror Rust toolchains (dist channel manifests and their files)
    Toolchain(toolchain::ToolchainArgs),
    /// Mirror rustup-init for chosen versions and targets
    Rustup(rustup::RustupArgs),
    /// Mirror the crates.io index and crate files
    Crate(crates::CrateArgs),
    /// Mirror the Hex repository (Erlang/Elixir packages), verified
    Hex(hex::HexArgs),
    /// Mirror Arch Linux pacman repositories, verified
    Arch(arch::ArchArgs),
    /// Serve mirrored trees over HTTP
    Serve(serve::ServeArgs),
    /// Publish the tree to S3-compatible object storage
    Publish(publish::PublishArgs),
    /// Generate the man page or shell completions
    Generate(generate::GenerateArgs),
    /// Carry every ecosystem configured in mirror.toml in one trip: signed, sequenced volumes
    Export(trip::ExportArgs),
    /// Check a trip (signature, volumes, sequence), then import every ecosystem it carries
    Import(trip::ImportArgs),
    /// Make a site key for signing trips; prints its certificate for the far side
    Keygen(trip::KeygenArgs),
    /// Per ecosystem what the tree holds and its marks; the trips exported and imported
    Status(trip::StatusArgs),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Toolchain(args) => toolchain::run(&cli.global, args),
        Command::Rustup(args) => rustup::run(&cli.global, args),
        Command::Crate(args) => crates::run(&cli.global, args),
        Command::Hex(args) => hex::run(&cli.global, args),
        Command::Arch(args) => arch::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Publish(args) => publish::run(&cli.global, args),
        Command::Generate(args) => generate::run(args),
        Command::Export(args) => trip::run_export(&cli.global, args),
        Command::Import(args) => trip::run_import(&cli.global, args),
        Command::Keygen(args) => trip::run_keygen(args),
        Command::Status(args) => trip::run_status(&cli.global, args),
    }
}

/// How a run changes the remembered selection (`crate`, `hex`, `arch`):
/// the selection arguments given add to it, these drop.
#[derive(Debug, Clone, Args)]
pub struct SelectionEditArgs {
    /// Drop NAME from the remembered selection; its files are deleted here and, by the next archive, on the far side (repeatable)
    #[arg(long, value_name = "NAME")]
    pub remove: Vec<String>,

    /// The selection given replaces the remembered one instead of adding to it
    #[arg(long)]
    pub replace_selection: bool,
}

impl SelectionEditArgs {
    /// Refuse a drop in a run without `op`, the operation that applies it.
    pub fn require(&self, has_op: bool, op: &str) -> anyhow::Result<()> {
        crate::eco::selection::require_op(
            self.replace_selection || !self.remove.is_empty(),
            has_op,
            op,
        )
    }
}

/// Split repeated option values at commas and whitespace (`-s a,b -s c`).
pub fn split_values(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Read a list file (`--package-file` and the like): one name per line,
/// `#` starts a comment, blank lines are skipped.
pub fn read_list_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read list file {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
