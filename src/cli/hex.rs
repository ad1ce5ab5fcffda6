//! `mirror hex`: maps arguments onto [`crate::eco::hex`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::{split_values, GlobalArgs};
use crate::eco::hex::installs::{self, InstallsPolicy};
use crate::eco::hex::lock;
use crate::eco::hex::registry::{PublicKey, SigningKey};
use crate::eco::hex::{
    Hex, Selection, SelectionEntry, VersionPolicy, DEFAULT_ARCHIVE, DEFAULT_REPO_NAME, DEFAULT_URL,
};
use crate::fetch::Engine;
use crate::output::{Printer, Verbosity};
use crate::settings::Settings;
use crate::store::TreeLock;

/// Operations, run in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HexOp {
    /// Fetch names, versions, changed packages/<name> and new tarballs
    Download,
    /// Check every signature and tarball checksum in the tree
    Verify,
    /// Print the mirrored packages (from the signed names; -v: updated_at)
    List,
    /// Record the current state as the mark for the next pack
    Mark,
    /// Pack what changed since the mark, plus names and versions, into ARCHIVE
    Pack,
    /// Unpack ARCHIVE, verifying everything before publishing
    Unpack,
    /// download mark
    Update,
    /// download pack mark
    Export,
    /// unpack verify mark
    Import,
}

/// `mirror hex [OPERATION]...`
#[derive(Debug, Args)]
#[command(
    after_help = "Selection: every package by default, or --package NAME / \
--package-file FILE with --versions latest|all|N, and/or the exact versions pinned by \
--rebar-lock FILE / --mix-lock FILE; --with-deps adds dependencies. Hex itself \
(installs/, for `mix local.hex`) comes too: --installs latest|all|none.\n\
Example: mirror hex download pack --package cowboy --versions latest --with-deps"
)]
pub struct HexArgs {
    /// Operations to run, in order
    #[arg(value_enum, required = true, value_name = "OPERATION")]
    pub ops: Vec<HexOp>,

    /// Upstream repository URL [default: https://repo.hex.pm]
    #[arg(long, env = "MIRROR_HEX_URL", value_name = "URL")]
    pub url: Option<String>,

    /// Repository name every signed payload must carry
    #[arg(long, default_value = DEFAULT_REPO_NAME, value_name = "NAME")]
    pub repo_name: String,

    /// PEM public key of the repository [default: the embedded hexpm key]
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// PEM RSA private key of the site: a partial mirror's names, versions
    /// and packages/<name> then list only what it holds, signed with it
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// Mirror only these packages (repeatable, comma-separated)
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,

    /// Mirror the packages listed in FILE (one per line, # comments)
    #[arg(long, value_name = "FILE")]
    pub package_file: Option<PathBuf>,

    /// Mirror the Hex packages pinned in a rebar.lock (exact versions)
    #[arg(long, value_name = "FILE")]
    pub rebar_lock: Option<PathBuf>,

    /// Mirror the Hex packages pinned in a mix.lock (exact versions)
    #[arg(long, value_name = "FILE")]
    pub mix_lock: Option<PathBuf>,

    /// Versions of each selected package: latest, all or N (the newest N)
    #[arg(long, default_value = "all", value_name = "WHICH")]
    pub versions: String,

    /// Also mirror the dependencies of the selected releases, transitively
    #[arg(long)]
    pub with_deps: bool,

    #[command(flatten)]
    pub selection_edit: crate::cli::SelectionEditArgs,

    /// list: print every release held (package and version) as JSON
    #[arg(long)]
    pub json: bool,

    /// Hex itself for `mix local.hex` (installs/): none, latest (the
    /// archive each Elixir/OTP version installs) or all
    #[arg(long, default_value = "latest", value_name = "WHICH")]
    pub installs: String,

    /// PEM public key the install lists are signed with [default: the
    /// embedded Elixir key, as Mix has it]
    #[arg(long, value_name = "FILE")]
    pub installs_public_key: Option<PathBuf>,

    /// pack: take the files changed since START instead of since the
    /// mark: 0 for every file held, or a mark value a message named
    #[arg(long, value_name = "START")]
    pub start: Option<String>,

    /// Archive for pack and unpack
    #[arg(long, default_value = DEFAULT_ARCHIVE, value_name = "ARCHIVE")]
    pub archive: PathBuf,
}

/// Run `mirror hex`.
pub fn run(global: &GlobalArgs, args: HexArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let url = settings.upstream_url("hex", args.url.as_deref(), DEFAULT_URL)?;
    let key = match &args.public_key {
        Some(p) => PublicKey::from_file(p)?,
        None => PublicKey::hexpm(),
    };
    let mut packages = split_values(&args.packages);
    if let Some(file) = &args.package_file {
        packages.extend(crate::cli::read_list_file(file)?);
    }
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read lock file {}", p.display()))
    };
    let mut locked = Vec::new();
    if let Some(p) = &args.rebar_lock {
        locked.extend(lock::parse_rebar_lock(&read(p)?));
    }
    if let Some(p) = &args.mix_lock {
        locked.extend(lock::parse_mix_lock(&read(p)?, &args.repo_name));
    }
    let versions = VersionPolicy::parse(&args.versions)?;
    let mut add: Vec<SelectionEntry> = packages
        .iter()
        .map(|name| SelectionEntry {
            name: name.clone(),
            locked: None,
            versions,
            with_deps: args.with_deps,
        })
        .collect();
    add.extend(locked.iter().map(|(name, v)| SelectionEntry {
        name: name.clone(),
        locked: Some(v.clone()),
        versions,
        with_deps: args.with_deps,
    }));
    let change = crate::eco::selection::Change {
        add,
        remove: args.selection_edit.remove.clone(),
        replace: args.selection_edit.replace_selection,
    };
    let installs_key = match &args.installs_public_key {
        Some(p) => PublicKey::from_file(p)?,
        None => installs::elixir_key(),
    };
    let mut hex = Hex::new(&settings.root, &url, &args.repo_name, key)
        .with_installs(InstallsPolicy::parse(&args.installs)?, installs_key);
    if let Some(p) = &args.signing_key {
        hex = hex.with_signing_key(SigningKey::from_file(p)?);
    }

    let mut ops = Vec::new();
    for op in &args.ops {
        match op {
            HexOp::Update => ops.extend([HexOp::Download, HexOp::Mark]),
            HexOp::Export => ops.extend([HexOp::Download, HexOp::Pack, HexOp::Mark]),
            HexOp::Import => ops.extend([HexOp::Unpack, HexOp::Verify, HexOp::Mark]),
            op => ops.push(*op),
        }
    }
    let writes = ops
        .iter()
        .any(|op| !matches!(op, HexOp::List | HexOp::Verify));
    let _lock = if writes {
        Some(TreeLock::acquire(&settings.root)?)
    } else {
        None
    };
    args.selection_edit
        .require(ops.contains(&HexOp::Download), "download")?;
    // The selection: what is remembered, grown by what is given.
    let (selection, entries, dropped) = if ops.contains(&HexOp::Download) {
        let partial = hex.holds_a_subset()?;
        let (entries, dropped) = crate::eco::selection::remember(
            &settings.root,
            crate::eco::hex::ECOSYSTEM,
            &change,
            partial,
            "package",
            &printer.reporter(),
        )?;
        (
            Selection::from_entries(&entries, versions, args.with_deps),
            entries,
            dropped,
        )
    } else {
        (Selection::default(), Vec::new(), Default::default())
    };
    let mut engine = None;
    let reporter = printer.reporter();
    for op in ops {
        match op {
            HexOp::Download => {
                let engine = match &mut engine {
                    Some(e) => e,
                    None => engine.insert(Engine::new(settings.fetch.clone())?),
                };
                let summary = hex.download(engine, &selection, &reporter)?;
                crate::eco::note_download(&settings.root, "hex")?;
                crate::eco::selection::save(&settings.root, crate::eco::hex::ECOSYSTEM, &entries)?;
                // What the selection dropped, unless another entry still
                // reaches it.
                let gone: std::collections::BTreeSet<String> = dropped
                    .iter()
                    .filter(|n| !summary.packages.contains(*n))
                    .cloned()
                    .collect();
                let files = hex.files_of(&gone)?;
                crate::eco::selection::drop_files::<SelectionEntry>(
                    &settings.root,
                    crate::eco::hex::ECOSYSTEM,
                    &files,
                    &reporter,
                )?;
                if !files.is_empty() {
                    hex.resign_held()?;
                }
            }
            HexOp::Verify => {
                hex.verify(&reporter)?;
            }
            HexOp::List if args.json => {
                let held: Vec<serde_json::Value> = hex
                    .held_releases()?
                    .into_iter()
                    .map(|(name, version)| serde_json::json!({"name": name, "version": version}))
                    .collect();
                crate::output::json(&held)?;
            }
            HexOp::List => {
                for (name, updated) in hex.list()? {
                    match (printer.verbosity, updated) {
                        (Verbosity::Verbose, Some(t)) => {
                            crate::output::data(format_args!("{name}\t{t}"))
                        }
                        _ => crate::output::data(format_args!("{name}")),
                    }
                }
            }
            HexOp::Mark => hex.mark(&reporter)?,
            HexOp::Pack => {
                hex.pack(&args.archive, args.start.as_deref(), &reporter)?;
            }
            HexOp::Unpack => {
                hex.unpack(&args.archive, &reporter)?;
            }
            HexOp::Update | HexOp::Export | HexOp::Import => unreachable!("expanded above"),
        }
    }
    Ok(())
}
