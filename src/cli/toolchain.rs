//! `mirror toolchain`: maps arguments onto [`crate::eco::toolchain`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::{split_values, GlobalArgs};
use crate::eco::toolchain::{
    Format, Located, Selection, SignatureMode, Spec, Toolchain, DEFAULT_ARCHIVE, DEFAULT_URL,
};
use crate::fetch::Engine;
use crate::output::{Printer, Verbosity};
use crate::settings::Settings;
use crate::store::TreeLock;
use crate::verify::openpgp::Keyring;

/// Operations, run in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToolchainOp {
    /// Download the manifests of SPEC and their files for TARGET (then fixup)
    Download,
    /// Fetch and check the manifests of SPEC without writing anything
    FetchManifest,
    /// Verify local manifests and files (hashes, .sha256, .asc)
    Verify,
    /// Publish dateless manifests: newest per channel, stable X.Y.Z and X.Y
    Fixup,
    /// Print local manifests with what is present (--json for data)
    List,
    /// Print every target of the fetched (or local) manifests
    AllTargets,
    /// Print every component of the fetched (or local) manifests
    AllComponents,
    /// Pack what SPEC and TARGET hold that was written since the mark
    /// (--start 0: all of it) into ARCHIVE
    Pack,
    /// Unpack ARCHIVE (verified before publishing), then fixup
    Unpack,
    /// Record the current state as the mark for the next pack
    Mark,
    /// Remove what --keep and --pin do not keep (--dry-run: print it);
    /// the next pack removes it on the far side too
    Clean,
    /// download pack mark
    Export,
    /// unpack verify mark
    Import,
}

/// `mirror toolchain [OPERATION]... -s SPEC -t TARGET`
#[derive(Debug, Args)]
#[command(
    after_help = "SPEC: stable, beta, nightly, X.Y.Z, <channel>-YYYY-MM-DD, YYYY-MM-DD (nightly),\n\
and for local operations * (all) or latest.\n\
TARGET: a triple, linux, windows, darwin, all or * (every target of the manifest).\n\
Clients: RUSTUP_DIST_SERVER=http://HOST:PORT (mirror serve).\n\
Example: mirror toolchain download pack -s stable -t linux --profile minimal"
)]
pub struct ToolchainArgs {
    /// Operations to run, in order
    #[arg(value_enum, required = true, value_name = "OPERATION")]
    pub ops: Vec<ToolchainOp>,

    /// Toolchains: stable, beta, nightly, X.Y.Z, CHANNEL-YYYY-MM-DD, latest, * (repeatable, comma-separated)
    #[arg(short = 's', long = "select", value_name = "SPEC")]
    pub select: Vec<String>,

    /// Host targets: triples, linux, windows, darwin, all, * (repeatable, comma-separated)
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    pub target: Vec<String>,

    /// Extra targets for which only rust-std is fetched (repeatable, comma-separated)
    #[arg(long, value_name = "TARGET")]
    pub cross: Vec<String>,

    /// Components to add or (with !) remove: rust-src,!rust-docs
    #[arg(long, value_name = "NAMES")]
    pub components: Vec<String>,

    /// Fetch a profile's components only: minimal, default, complete
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Package formats to fetch: gz, xz (comma-separated) [default: xz]
    #[arg(long, value_name = "FORMATS")]
    pub format: Vec<String>,

    /// Upstream dist URL [default: https://static.rust-lang.org/dist]
    #[arg(long, env = "MIRROR_TOOLCHAIN_URL", value_name = "URL")]
    pub url: Option<String>,

    /// OpenPGP keyring for signatures [default: the embedded Rust release key]
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Skip signature checks
    #[arg(long, conflicts_with = "warn_signature")]
    pub no_signature: bool,

    /// Accept a missing .asc with a warning (a bad one is still an error)
    #[arg(long)]
    pub warn_signature: bool,

    /// Print list as JSON
    #[arg(long)]
    pub json: bool,

    /// pack: take the files written since START instead of since the
    /// mark: 0 for every file held, or a mark value a message named
    #[arg(long, value_name = "START")]
    pub start: Option<String>,

    /// clean: dated manifests kept per channel: stable=3,beta=1,nightly=7
    /// (a channel not named keeps all; repeatable, comma-separated)
    #[arg(long, value_name = "CHANNEL=N")]
    pub keep: Vec<String>,

    /// clean: stable releases kept whatever --keep says (repeatable, comma-separated)
    #[arg(long, value_name = "X.Y.Z")]
    pub pin: Vec<String>,

    /// clean: print what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Archive for pack and unpack
    #[arg(long, default_value = DEFAULT_ARCHIVE, value_name = "ARCHIVE")]
    pub archive: PathBuf,
}

/// Run `mirror toolchain`.
pub fn run(global: &GlobalArgs, args: ToolchainArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let url = settings.upstream_url("toolchain", args.url.as_deref(), DEFAULT_URL)?;
    let keyring_file = args.keyring.clone().or_else(|| {
        settings
            .config
            .ecosystems
            .get("toolchain")
            .and_then(|c| c.keyring.clone())
    });
    let keyring = match &keyring_file {
        Some(path) => Keyring::from_file(path)
            .with_context(|| format!("cannot load keyring {}", path.display()))?,
        None => Keyring::rust_release(),
    };
    let mode = if args.no_signature {
        SignatureMode::Off
    } else if args.warn_signature {
        SignatureMode::Warn
    } else {
        SignatureMode::Require
    };
    let toolchain = Toolchain::new(&settings.root, &url, keyring, mode);
    let mut specs = split_values(&args.select)
        .iter()
        .map(|s| Spec::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let targets = split_values(&args.target);
    let selection = Selection {
        targets: targets.clone(),
        cross: split_values(&args.cross),
        components: split_values(&args.components),
        profile: args.profile.clone(),
        formats: split_values(&args.format)
            .iter()
            .map(|f| Format::parse(f))
            .collect::<Result<Vec<_>>>()?,
    };

    let ops: Vec<ToolchainOp> = args
        .ops
        .iter()
        .flat_map(|op| match op {
            ToolchainOp::Export => {
                vec![ToolchainOp::Download, ToolchainOp::Pack, ToolchainOp::Mark]
            }
            ToolchainOp::Import => {
                vec![ToolchainOp::Unpack, ToolchainOp::Verify, ToolchainOp::Mark]
            }
            op => vec![*op],
        })
        .collect();
    let writes = ops.iter().any(|op| {
        matches!(
            op,
            ToolchainOp::Download
                | ToolchainOp::Fixup
                | ToolchainOp::Unpack
                | ToolchainOp::Pack
                | ToolchainOp::Mark
                | ToolchainOp::Clean
        )
    });
    let _lock = if writes {
        Some(TreeLock::acquire(&settings.root)?)
    } else {
        None
    };
    let mut engine = None;
    let reporter = printer.reporter();
    // Manifests fetched by download/fetch-manifest, for all-targets and
    // all-components later in the chain.
    let mut fetched: Vec<Located> = Vec::new();
    let get_engine = |engine: &mut Option<Engine>| -> Result<()> {
        if engine.is_none() {
            *engine = Some(Engine::new(settings.fetch.clone())?);
        }
        Ok(())
    };

    for op in &ops {
        match op {
            ToolchainOp::Download | ToolchainOp::FetchManifest => {
                get_engine(&mut engine)?;
                let engine = engine.as_ref().expect("engine");
                let manifests = toolchain.fetch_manifests(engine, &specs, &reporter)?;
                if *op == ToolchainOp::Download {
                    toolchain.download(engine, &manifests, &selection, &reporter)?;
                    crate::eco::note_download(&settings.root, "toolchain")?;
                }
                fetched = manifests.into_iter().map(|(l, _)| l).collect();
            }
            ToolchainOp::Verify => {
                let manifests = toolchain.resolve_local(&specs)?;
                toolchain.verify(&manifests, &reporter)?;
            }
            ToolchainOp::Fixup => toolchain.fixup(&reporter)?,
            ToolchainOp::List => {
                let listings = toolchain.list(&toolchain.resolve_local(&specs)?);
                if args.json {
                    crate::output::json(&listings)?;
                } else {
                    for l in listings {
                        crate::output::data(format_args!("{l}"));
                        if printer.verbosity == Verbosity::Verbose {
                            for t in &l.targets {
                                crate::output::data(format_args!("  {t}"));
                            }
                        }
                    }
                }
            }
            ToolchainOp::AllTargets | ToolchainOp::AllComponents => {
                let manifests = if fetched.is_empty() {
                    toolchain.resolve_local(&specs)?
                } else {
                    fetched.clone()
                };
                let mut names = std::collections::BTreeSet::new();
                for l in &manifests {
                    if *op == ToolchainOp::AllTargets {
                        names.extend(l.manifest.all_targets());
                    } else {
                        names.extend(l.manifest.all_components());
                    }
                }
                for n in names {
                    crate::output::data(format_args!("{n}"));
                }
            }
            ToolchainOp::Pack => {
                let manifests = toolchain.resolve_local(&specs)?;
                toolchain.pack(
                    &manifests,
                    &targets,
                    &args.archive,
                    args.start.as_deref(),
                    &reporter,
                )?;
            }
            ToolchainOp::Mark => toolchain.mark(&reporter)?,
            ToolchainOp::Clean => {
                let keep = crate::eco::toolchain::retain::Keep::parse(
                    &split_values(&args.keep),
                    &split_values(&args.pin),
                )?;
                toolchain.clean(&keep, args.dry_run, &reporter)?;
            }
            ToolchainOp::Export | ToolchainOp::Import => unreachable!("expanded above"),
            ToolchainOp::Unpack => {
                let unpacked = toolchain.unpack(&args.archive, &reporter)?;
                // Later operations in the chain act on what was unpacked.
                specs = unpacked;
            }
        }
    }
    Ok(())
}
