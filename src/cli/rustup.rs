//! `mirror rustup`: maps arguments onto [`crate::eco::rustup`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::{split_values, GlobalArgs};
use crate::eco::rustup::{Rustup, Spec, ALL_KNOWN_TARGETS, DEFAULT_ARCHIVE, DEFAULT_URL};
use crate::fetch::Engine;
use crate::output::{Printer, Verbosity};
use crate::settings::Settings;
use crate::store::TreeLock;

/// Operations, run in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RustupOp {
    /// Download rustup-init for SPEC and TARGET (then fixup)
    Download,
    /// Verify local files against their .sha256
    Verify,
    /// Publish the newest version: rustup/dist/ and release-stable.toml
    Fixup,
    /// Print local versions (with -v, their targets)
    List,
    /// Print every known target
    AllTargets,
    /// Pack what SPEC and TARGET hold that was written since the mark
    /// (--start 0: all of it) into ARCHIVE
    Pack,
    /// Unpack ARCHIVE (each file checked against its .sha256 before it is
    /// published), then fixup what it held
    Unpack,
    /// Record the current state as the mark for the next pack
    Mark,
    /// Remove the versions --keep and --pin do not keep (--dry-run: print
    /// them); the next pack removes them on the far side too
    Clean,
    /// download pack mark
    Export,
    /// unpack verify mark
    Import,
}

/// `mirror rustup [OPERATION]... -s SPEC -t TARGET`
#[derive(Debug, Args)]
#[command(
    after_help = "SPEC: stable, X.Y.Z, and for local operations * (all) or latest.\n\
TARGET: a triple, linux, windows, darwin, all (every known target) or * (all local).\n\
Example: mirror rustup download pack -s stable -t linux"
)]
pub struct RustupArgs {
    /// Operations to run, in order
    #[arg(value_enum, required = true, value_name = "OPERATION")]
    pub ops: Vec<RustupOp>,

    /// Versions: stable, X.Y.Z, latest, * (repeatable, comma-separated)
    #[arg(short = 's', long = "select", value_name = "SPEC")]
    pub select: Vec<String>,

    /// Targets: triples, linux, windows, darwin, all, * (repeatable, comma-separated)
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    pub target: Vec<String>,

    /// Upstream base URL [default: https://static.rust-lang.org/rustup]
    #[arg(long, env = "MIRROR_RUSTUP_URL", value_name = "URL")]
    pub url: Option<String>,

    /// pack: take the files written since START instead of since the
    /// mark: 0 for every file held, or a mark value a message named
    #[arg(long, value_name = "START")]
    pub start: Option<String>,

    /// clean: how many of the newest versions to keep
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,

    /// clean: versions kept whatever --keep says (repeatable, comma-separated)
    #[arg(long, value_name = "X.Y.Z")]
    pub pin: Vec<String>,

    /// clean: print what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print list as JSON
    #[arg(long)]
    pub json: bool,

    /// Archive for pack and unpack
    #[arg(long, default_value = DEFAULT_ARCHIVE, value_name = "ARCHIVE")]
    pub archive: PathBuf,
}

/// Run `mirror rustup`.
pub fn run(global: &GlobalArgs, args: RustupArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let url = settings.upstream_url("rustup", args.url.as_deref(), DEFAULT_URL)?;
    let rustup = Rustup::new(&settings.root, &url);
    let mut specs = split_values(&args.select)
        .iter()
        .map(|s| Spec::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let mut targets = split_values(&args.target);
    let local_targets = |t: &Vec<String>| {
        if t.is_empty() {
            vec!["*".to_string()]
        } else {
            t.clone()
        }
    };

    let ops: Vec<RustupOp> = args
        .ops
        .iter()
        .flat_map(|op| match op {
            RustupOp::Export => vec![RustupOp::Download, RustupOp::Pack, RustupOp::Mark],
            RustupOp::Import => vec![RustupOp::Unpack, RustupOp::Verify, RustupOp::Mark],
            op => vec![*op],
        })
        .collect();
    let writes = ops
        .iter()
        .any(|op| !matches!(op, RustupOp::List | RustupOp::AllTargets | RustupOp::Verify));
    let _lock = if writes {
        Some(TreeLock::acquire(&settings.root)?)
    } else {
        None
    };
    let mut engine = None;
    let reporter = printer.reporter();

    for op in &ops {
        match op {
            RustupOp::Download => {
                let engine = match &mut engine {
                    Some(e) => e,
                    None => engine.insert(Engine::new(settings.fetch.clone())?),
                };
                let versions = rustup.resolve_download_specs(engine, &specs, &reporter)?;
                rustup.download(engine, &versions, &targets, &reporter)?;
                crate::eco::note_download(&settings.root, "rustup")?;
            }
            RustupOp::Verify => {
                let versions = rustup.resolve_local_specs(&specs)?;
                rustup.verify(&versions, &local_targets(&targets), &reporter)?;
            }
            RustupOp::Fixup => {
                let versions = rustup.resolve_local_specs(&specs)?;
                rustup.fixup(&versions, &reporter)?;
            }
            RustupOp::List if args.json => {
                let mut listing = Vec::new();
                for version in rustup.resolve_local_specs(&specs)? {
                    listing.push(serde_json::json!({
                        "version": version.to_string(),
                        "targets": rustup.local_targets(version)?,
                    }));
                }
                crate::output::json(&listing)?;
            }
            RustupOp::List => {
                for version in rustup.resolve_local_specs(&specs)? {
                    crate::output::data(format_args!("{version}"));
                    if printer.verbosity == Verbosity::Verbose {
                        for t in rustup.local_targets(version)? {
                            crate::output::data(format_args!("  {t}"));
                        }
                    }
                }
            }
            RustupOp::AllTargets => {
                for t in ALL_KNOWN_TARGETS {
                    crate::output::data(format_args!("{t}"));
                }
            }
            RustupOp::Pack => {
                let versions = rustup.resolve_local_specs(&specs)?;
                rustup.pack(
                    &versions,
                    &local_targets(&targets),
                    &args.archive,
                    args.start.as_deref(),
                    &reporter,
                )?;
            }
            RustupOp::Mark => rustup.mark(&reporter)?,
            RustupOp::Clean => {
                let Some(keep) = args.keep else {
                    anyhow::bail!(
                        "rustup clean needs --keep N (how many of the newest versions to keep)"
                    );
                };
                let pins = split_values(&args.pin)
                    .iter()
                    .map(|p| {
                        crate::eco::Version::parse(p)
                            .ok_or_else(|| anyhow::anyhow!("--pin {p:?}: expected a version X.Y.Z"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                rustup.clean(keep, &pins, args.dry_run, &reporter)?;
            }
            RustupOp::Export | RustupOp::Import => unreachable!("expanded above"),
            RustupOp::Unpack => {
                // Every file was checked against its `.sha256` before it was
                // published (the staged check): hashing it again adds nothing.
                // Unpack runs the fixup of what it published.
                let (versions, unpacked_targets) = rustup.unpack(&args.archive, &reporter)?;
                if versions.is_empty() {
                    // Nothing new (or imported already).
                    continue;
                }
                // Later operations in the chain act on what was unpacked.
                specs = versions.into_iter().map(Spec::Version).collect();
                targets = unpacked_targets;
            }
        }
    }
    Ok(())
}
