//! `mirror crate`: maps arguments onto [`crate::eco::crates`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::GlobalArgs;
use crate::eco::crates::filter::CrateFilter;
use crate::eco::crates::sparse::{self, Selection, Versions};
use crate::eco::crates::{
    layout, CrateOptions, Crates, Op, BUNDLE_MEMBER, DEFAULT_ARCHIVE, DEFAULT_CRATES_URL,
    DEFAULT_INDEX_URL, DEFAULT_SERVER_URL,
};
use crate::output::Printer;
use crate::settings::Settings;
use crate::store::TreeLock;

/// Operations, run in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CrateOp {
    /// Create INDEX (origin --index-url) and the crates directory
    Init,
    /// Create INDEX for importing (origin: the unpacked origin.bundle)
    InitImport,
    /// Commit INDEX/config.json pointing at --server-url, then mark
    Config,
    /// Fetch origin into origin_master and merge it into working
    Pull,
    /// Delete crate files of versions removed across RANGE
    Prune,
    /// Download the crates added across RANGE
    Download,
    /// Move branches mark and master (served) to END
    Mark,
    /// Pack the index bundle of RANGE and its crates into ARCHIVE
    Pack,
    /// Unpack ARCHIVE: fetch its bundle, check its crates, publish them
    Unpack,
    /// Verify the crates added across RANGE against the index
    Verify,
    /// Print the crates added (and, with -, removed) across RANGE
    List,
    /// pull prune download mark
    Update,
    /// pull prune download pack mark
    Export,
    /// unpack pull prune verify mark
    Import,
}

impl From<CrateOp> for Op {
    fn from(op: CrateOp) -> Op {
        match op {
            CrateOp::Init => Op::Init,
            CrateOp::InitImport => Op::InitImport,
            CrateOp::Config => Op::Config,
            CrateOp::Pull => Op::Pull,
            CrateOp::Prune => Op::Prune,
            CrateOp::Download => Op::Download,
            CrateOp::Mark => Op::Mark,
            CrateOp::Pack => Op::Pack,
            CrateOp::Unpack => Op::Unpack,
            CrateOp::Verify => Op::Verify,
            CrateOp::List => Op::List,
            CrateOp::Update => Op::Update,
            CrateOp::Export => Op::Export,
            CrateOp::Import => Op::Import,
        }
    }
}

/// `mirror crate [OPERATION]...`
#[derive(Debug, Args)]
#[command(
    after_help = "RANGE is START..END of the index history: START defaults to `mark` \
(missing: the start of history), `0` is the start of history; END defaults to `working`.\n\
Example: mirror crate init --index-url https://github.com/rust-lang/crates.io-index, then \
mirror crate export; on the far side mirror crate init-import, mirror crate config \
--server-url http://host:8000, then mirror crate import"
)]
pub struct CrateArgs {
    /// Operations to run, in order
    #[arg(value_enum, required = true, value_name = "OPERATION")]
    pub ops: Vec<CrateOp>,

    /// The index repository, relative to the root
    #[arg(long, default_value = layout::INDEX_DIR, value_name = "INDEX")]
    pub index: PathBuf,

    /// The crate directory, relative to the root
    #[arg(long, default_value = layout::CRATES_DIR, value_name = "CRATES_ROOT")]
    pub crates: PathBuf,

    /// Upstream index for init: the git repository's http(s):// or file:// URL or path; sparse+URL for a sparse index, `sparse` for https://index.crates.io/
    #[arg(long, default_value = DEFAULT_INDEX_URL, value_name = "URL")]
    pub index_url: String,

    /// Download template: {crate}, {version}, {prefix}, {lowerprefix}, {sha256-checksum}
    #[arg(long, env = "MIRROR_CRATES_URL", default_value = DEFAULT_CRATES_URL, value_name = "URL")]
    pub crates_url: String,

    /// Start of RANGE (a ref or commit; 0 = start of history) [default: mark]
    #[arg(long, value_name = "START")]
    pub start: Option<String>,

    /// End of RANGE
    #[arg(long, default_value = "working", value_name = "END")]
    pub end: String,

    /// A START that names nothing means the start of history
    #[arg(long)]
    pub allow_missing_start: bool,

    /// Archive for pack and unpack
    #[arg(long, default_value = DEFAULT_ARCHIVE, value_name = "ARCHIVE")]
    pub archive: PathBuf,

    /// The index bundle for pack, unpack and init-import [default: INDEX/origin.bundle]
    #[arg(long, value_name = "BUNDLE_PATH")]
    pub bundle_path: Option<PathBuf>,

    /// Base URL config writes into config.json (dl, api)
    #[arg(long, default_value = DEFAULT_SERVER_URL, value_name = "URL")]
    pub server_url: String,

    /// Only crates matching NAME[@VERSION] (globs; repeatable; with a git upstream, added to the patterns remembered)
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Read filters from a file (one or more per line, # comments)
    #[arg(long, value_name = "FILE")]
    pub filter_file: Vec<PathBuf>,

    /// Record crates that downloaded or verified (NAME@VERSION per line)
    #[arg(long, value_name = "FILE")]
    pub good_crates: Option<PathBuf>,

    /// Record crates that failed (NAME@VERSION per line)
    #[arg(long, value_name = "FILE")]
    pub bad_crates: Option<PathBuf>,

    #[command(flatten)]
    pub selection_edit: crate::cli::SelectionEditArgs,

    /// Sparse upstream: mirror exactly the crates.io packages locked in this Cargo.lock (repeatable; added to the selection remembered)
    #[arg(long, value_name = "FILE")]
    pub lockfile: Vec<PathBuf>,

    /// Sparse upstream: mirror NAME, the versions matching REQ [default: *] (repeatable; added to the selection remembered)
    #[arg(long = "crate", value_name = "NAME[@REQ]")]
    pub crate_: Vec<String>,

    /// Sparse upstream: read NAME[@REQ] from a file (one or more per line, # comments)
    #[arg(long, value_name = "FILE")]
    pub crate_file: Vec<PathBuf>,

    /// Sparse upstream: how many versions each --crate given selects: latest, all or N (newest N); remembered with it
    #[arg(long, default_value = "latest", value_name = "latest|all|N")]
    pub versions: Versions,

    /// Sparse upstream: follow dependencies of these kinds (normal, build, dev) from each --crate given, optional and target-specific ones included; remembered with it
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub with_deps: Vec<String>,

    /// list: print what the mirror holds (every version master lists whose .crate is present) as JSON
    #[arg(long)]
    pub json: bool,
}

/// Run `mirror crate`.
pub fn run(global: &GlobalArgs, args: CrateArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let root = std::path::absolute(&settings.root)?;
    let under_root = |p: &Path| root.join(p);
    let mut filter = CrateFilter::default();
    for f in &args.filter {
        filter.add(f);
    }
    for f in &args.filter_file {
        filter.add_file(f)?;
    }
    let index = under_root(&args.index);
    let bundle_path = match &args.bundle_path {
        Some(p) => std::path::absolute(p)?,
        None if args.index == Path::new(layout::INDEX_DIR) => root.join(BUNDLE_MEMBER),
        None => index.join("origin.bundle"),
    };
    let selection = Selection::from_args(
        &args.lockfile,
        &args.crate_,
        &args.crate_file,
        args.versions,
        &args.with_deps,
        sparse::sparse_base(&args.index_url).as_deref(),
    )?;
    let opts = CrateOptions {
        crates: under_root(&args.crates),
        index,
        root: root.clone(),
        index_url: args.index_url,
        crates_url: args.crates_url,
        start: args.start,
        end: args.end,
        allow_missing_start: args.allow_missing_start,
        archive: std::path::absolute(&args.archive)?,
        bundle_path,
        server_url: args.server_url,
        filter,
        good_crates: args.good_crates,
        bad_crates: args.bad_crates,
        selection,
        remove: args.selection_edit.remove,
        replace_selection: args.selection_edit.replace_selection,
        json: args.json,
    };
    let ops: Vec<Op> = args.ops.iter().map(|&o| o.into()).collect();
    let writes = ops.iter().any(|o| !matches!(o, Op::List | Op::Verify));
    std::fs::create_dir_all(&root)?;
    let _lock = if writes {
        Some(TreeLock::acquire(&root)?)
    } else {
        None
    };
    let reporter = printer.reporter();
    Crates::new(opts, settings.fetch.clone()).run(&ops, &reporter)
}
