//! `mirror arch`: maps arguments onto [`crate::eco::arch`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::{split_values, GlobalArgs};
use crate::eco::arch::{
    is_valid_repo_name, url_template, Arch, RepoSource, SelectionEntry, DEFAULT_ARCH,
    DEFAULT_ARCHIVE, DEFAULT_KEYRING, DEFAULT_REPOS, DEFAULT_RETAIN, DEFAULT_URL,
};
use crate::fetch::Engine;
use crate::output::{Printer, Verbosity};
use crate::settings::Settings;
use crate::store::TreeLock;
use crate::verify::openpgp::Keyring;

/// Operations, run in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchOp {
    /// Fetch the databases, every package they list (verified), then
    /// publish the databases
    Download,
    /// Check every local package against its database and the keyring
    Verify,
    /// Print the mirrored packages (repo, name, version)
    List,
    /// Record the current state as the mark for the next pack
    Mark,
    /// Remove package versions beyond --num-versions-retain
    Clean,
    /// Pack the packages added since the mark, plus the databases, into ARCHIVE
    Pack,
    /// Unpack ARCHIVE, verifying everything before publishing
    Unpack,
    /// download clean mark
    Update,
    /// download pack mark
    Export,
    /// unpack verify mark
    Import,
}

/// `mirror arch [OPERATION]...`
#[derive(Debug, Args)]
#[command(
    after_help = "URLs may contain $repo and $arch; a URL without $repo gets \
/$repo/os/$arch appended.\n\
Example: mirror arch update --repo core --url https://geo.mirror.pkgbuild.com/$repo/os/$arch"
)]
pub struct ArchArgs {
    /// Operations to run, in order
    #[arg(value_enum, required = true, value_name = "OPERATION")]
    pub ops: Vec<ArchOp>,

    /// Mirror URL (repeatable: later ones are fallbacks)
    /// [default: https://geo.mirror.pkgbuild.com/$repo/os/$arch]
    #[arg(long = "url", env = "MIRROR_ARCH_URL", value_name = "URL")]
    pub urls: Vec<String>,

    /// Repositories from the mirror URLs (repeatable, comma-separated)
    /// [default: core,extra]
    #[arg(long = "repo", value_name = "REPO")]
    pub repos: Vec<String>,

    /// A repository from its own URL (repeatable)
    #[arg(long = "custom-repo", value_name = "NAME=URL")]
    pub custom_repos: Vec<String>,

    /// Architecture
    #[arg(long, default_value = DEFAULT_ARCH, value_name = "ARCH")]
    pub arch: String,

    /// OpenPGP certificates packages must be signed with
    /// [default: /usr/share/keyrings/archlinux.gpg]
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Mirror only these packages and their dependencies (repeatable,
    /// comma-separated); the databases then list only what the mirror holds
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,

    /// Mirror the packages listed in FILE (one per line, # comments)
    #[arg(long, value_name = "FILE")]
    pub package_file: Option<PathBuf>,

    #[command(flatten)]
    pub selection_edit: crate::cli::SelectionEditArgs,

    /// list: print every package held as JSON
    #[arg(long)]
    pub json: bool,

    /// Sign the databases a partial mirror regenerates with this OpenPGP
    /// secret key (unencrypted); without it they are published unsigned
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// Versions of each package clean keeps (0: all)
    #[arg(long, default_value_t = DEFAULT_RETAIN, value_name = "N")]
    pub num_versions_retain: usize,

    /// pack: take the files changed since START instead of since the
    /// mark: 0 for every file held, or a mark value a message named
    #[arg(long, value_name = "START")]
    pub start: Option<String>,

    /// Archive for pack and unpack
    #[arg(long, default_value = DEFAULT_ARCHIVE, value_name = "ARCHIVE")]
    pub archive: PathBuf,
}

/// Run `mirror arch`.
pub fn run(global: &GlobalArgs, args: ArchArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let mut ops = Vec::new();
    for op in &args.ops {
        match op {
            ArchOp::Update => ops.extend([ArchOp::Download, ArchOp::Clean, ArchOp::Mark]),
            ArchOp::Export => ops.extend([ArchOp::Download, ArchOp::Pack, ArchOp::Mark]),
            ArchOp::Import => ops.extend([ArchOp::Unpack, ArchOp::Verify, ArchOp::Mark]),
            op => ops.push(*op),
        }
    }
    if !crate::eco::arch::is_valid_repo_name(&args.arch) {
        bail!(
            "invalid --arch {:?}: expected a name like x86_64",
            args.arch
        );
    }

    let mut repos = Vec::new();
    let needs_remote = ops.contains(&ArchOp::Download);
    if needs_remote {
        let urls: Vec<String> = if args.urls.is_empty() {
            vec![settings.upstream_url("arch", None, DEFAULT_URL)?]
        } else {
            args.urls.clone()
        };
        let urls = urls
            .iter()
            .map(|u| check_url(u).map(|()| url_template(u)))
            .collect::<Result<Vec<_>>>()?;
        let mut names = split_values(&args.repos);
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        if names.is_empty() && args.custom_repos.is_empty() {
            names = DEFAULT_REPOS.iter().map(|s| s.to_string()).collect();
        }
        for name in names {
            if !is_valid_repo_name(&name) {
                bail!("invalid --repo {name:?}: expected a repository name like core");
            }
            repos.push(RepoSource {
                name,
                urls: urls.clone(),
            });
        }
        for custom in &args.custom_repos {
            let Some((name, url)) = custom.split_once('=') else {
                bail!("invalid --custom-repo {custom:?}: expected NAME=URL");
            };
            if !is_valid_repo_name(name) {
                bail!("invalid --custom-repo {custom:?}: {name:?} is not a repository name");
            }
            check_url(url)?;
            if repos.iter().any(|r: &RepoSource| r.name == name) {
                bail!("repository {name:?} is given twice (--repo and --custom-repo, or twice)");
            }
            repos.push(RepoSource {
                name: name.to_string(),
                urls: vec![url.trim_end_matches('/').to_string()],
            });
        }
    }
    let needs_keyring = ops
        .iter()
        .any(|op| matches!(op, ArchOp::Download | ArchOp::Verify | ArchOp::Unpack));
    let keyring = if needs_keyring {
        load_keyring(args.keyring.as_deref())?
    } else {
        None
    };
    let mut packages = split_values(&args.packages);
    if let Some(file) = &args.package_file {
        packages.extend(crate::cli::read_list_file(file)?);
    }
    if let Some(bad) = packages
        .iter()
        .find(|p| !crate::eco::arch::db::is_valid_pkgname(p))
    {
        bail!("invalid package name {bad:?}: expected letters, digits and @._+-");
    }
    let change = crate::eco::selection::Change {
        add: packages
            .iter()
            .map(|name| SelectionEntry { name: name.clone() })
            .collect(),
        remove: args.selection_edit.remove.clone(),
        replace: args.selection_edit.replace_selection,
    };
    let arch = Arch::new(
        &settings.root,
        &args.arch,
        repos,
        keyring,
        args.num_versions_retain,
    )
    .with_signing_key(match &args.signing_key {
        Some(path) => Some(std::sync::Arc::new(
            crate::verify::openpgp::SigningKey::from_file(path)?,
        )),
        None => None,
    });

    let writes = ops
        .iter()
        .any(|op| !matches!(op, ArchOp::List | ArchOp::Verify));
    let _lock = if writes {
        Some(TreeLock::acquire(&settings.root)?)
    } else {
        None
    };
    args.selection_edit
        .require(ops.contains(&ArchOp::Download), "download")?;
    // The selection: what is remembered, grown by what is given.
    let (arch, entries, dropped) = if ops.contains(&ArchOp::Download) {
        let (entries, dropped) = crate::eco::selection::remember(
            &settings.root,
            crate::eco::arch::ECOSYSTEM,
            &change,
            arch.holds_a_subset()?,
            "package",
            &printer.reporter(),
        )?;
        (
            arch.with_packages(entries.iter().map(|e| e.name.clone()).collect()),
            entries,
            dropped,
        )
    } else {
        (arch, Vec::new(), Default::default())
    };
    let mut engine = None;
    let reporter = printer.reporter();
    for op in ops {
        match op {
            ArchOp::Download => {
                let engine = match &mut engine {
                    Some(e) => e,
                    None => engine.insert(Engine::new(settings.fetch.clone())?),
                };
                arch.download(engine, &reporter)?;
                crate::eco::selection::save(&settings.root, crate::eco::arch::ECOSYSTEM, &entries)?;
                // What the selection dropped that no database lists now.
                let files = arch.unlisted_files_of(&dropped)?;
                crate::eco::selection::drop_files::<SelectionEntry>(
                    &settings.root,
                    crate::eco::arch::ECOSYSTEM,
                    &files,
                    &reporter,
                )?;
            }
            ArchOp::Verify => {
                arch.verify(&reporter)?;
            }
            ArchOp::List if args.json => {
                let held: Vec<serde_json::Value> = arch
                    .list()?
                    .into_iter()
                    .map(|(repo, a, p)| {
                        serde_json::json!({
                            "repo": repo,
                            "arch": a,
                            "name": p.name,
                            "version": p.version,
                            "filename": p.filename,
                        })
                    })
                    .collect();
                crate::output::json(&held)?;
            }
            ArchOp::List => {
                for (repo, a, p) in arch.list()? {
                    if printer.verbosity == Verbosity::Verbose {
                        crate::output::data(format_args!(
                            "{repo}/{a}\t{}\t{}\t{}",
                            p.name, p.version, p.filename
                        ));
                    } else {
                        crate::output::data(format_args!("{repo}\t{}\t{}", p.name, p.version));
                    }
                }
            }
            ArchOp::Mark => arch.mark(&reporter)?,
            ArchOp::Clean => {
                arch.clean(&reporter)?;
            }
            ArchOp::Pack => {
                arch.pack(&args.archive, args.start.as_deref(), &reporter)?;
            }
            ArchOp::Unpack => {
                arch.unpack(&args.archive, &reporter)?;
            }
            ArchOp::Update | ArchOp::Export | ArchOp::Import => unreachable!("expanded above"),
        }
    }
    Ok(())
}

/// A mirror URL (`$repo`/`$arch` allowed) must be http(s); also checks
/// `mirror serve --upstream-arch`.
pub(crate) fn check_url(url: &str) -> Result<()> {
    let probe = url.replace("$repo", "repo").replace("$arch", "arch");
    let parsed =
        url::Url::parse(&probe).with_context(|| format!("invalid arch mirror URL {url:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("invalid arch mirror URL {url:?}: expected http:// or https://");
    }
    Ok(())
}

fn load_keyring(flag: Option<&Path>) -> Result<Option<Keyring>> {
    match flag {
        Some(p) => Ok(Some(Keyring::from_file(p)?)),
        None if Path::new(DEFAULT_KEYRING).is_file() => {
            Ok(Some(Keyring::from_file(Path::new(DEFAULT_KEYRING))?))
        }
        None => Ok(None),
    }
}
