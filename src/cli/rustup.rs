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
    /// Pack SPEC and TARGET into ARCHIVE
    Pack,
    /// Unpack ARCHIVE (each file checked against its .sha256 before it is
    /// published), then fixup what it held
    Unpack,
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

    let writes = args
        .ops
        .iter()
        .any(|op| !matches!(op, RustupOp::List | RustupOp::AllTargets | RustupOp::Verify));
    let _lock = if writes {
        Some(TreeLock::acquire(&settings.root)?)
    } else {
        None
    };
    let mut engine = None;
    let reporter = printer.reporter();

    for op in &args.ops {
        match op {
            RustupOp::Download => {
                let engine = match &mut engine {
                    Some(e) => e,
                    None => engine.insert(Engine::new(settings.fetch.clone())?),
                };
                let versions = rustup.resolve_download_specs(engine, &specs, &reporter)?;
                rustup.download(engine, &versions, &targets, &reporter)?;
            }
            RustupOp::Verify => {
                let versions = rustup.resolve_local_specs(&specs)?;
                rustup.verify(&versions, &local_targets(&targets), &reporter)?;
            }
            RustupOp::Fixup => {
                let versions = rustup.resolve_local_specs(&specs)?;
                rustup.fixup(&versions, &reporter)?;
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
                    &reporter,
                )?;
            }
            RustupOp::Unpack => {
                // Every file was checked against its `.sha256` before it was
                // published (the staged check): hashing it again adds nothing.
                let (versions, unpacked_targets) = rustup.unpack(&args.archive, &reporter)?;
                rustup.fixup(&versions, &reporter)?;
                // Later operations in the chain act on what was unpacked.
                specs = versions.into_iter().map(Spec::Version).collect();
                targets = unpacked_targets;
            }
        }
    }
    Ok(())
}
