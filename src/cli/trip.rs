//! `mirror export`, `mirror import`, `mirror keygen`: maps arguments onto
//! [`crate::trip`].

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::{split_values, GlobalArgs};
use crate::output::Printer;
use crate::settings::Settings;

/// `mirror export --out DIR`
#[derive(Debug, Args)]
#[command(
    after_help = "Every ecosystem with a section in mirror.toml ([crate], [toolchain], [rustup], \
[hex], [arch], whose keys are that subcommand's long options) is downloaded and packed from its \
mark; the trip is written; then every mark moves.\n\
Example: mirror keygen --out site.key > site.asc; mirror export --out /media/usb \
--volume-size 700M --parity 2 --sign-key site.key"
)]
pub struct ExportArgs {
    /// Directory the trip is written to
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Only these ecosystems: crate, toolchain, rustup, hex, arch (comma-separated)
    #[arg(long, value_name = "LIST")]
    pub only: Vec<String>,

    /// At most this many bytes per volume: 700M, 4G, or fat32, dvd, bd25 [default: one volume]
    #[arg(long, value_name = "SIZE", value_parser = crate::trip::parse_volume_size)]
    pub volume_size: Option<u64>,

    /// Parity volumes: any N missing or damaged volumes are rebuilt on import
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub parity: u16,

    /// Sign the trip with this unencrypted OpenPGP secret key (armored or binary)
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Carry everything held, not only what is new since the marks (seeds a new far side)
    #[arg(long)]
    pub full: bool,
}

/// `mirror import DIR`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Require a signature by this certificate (armored or binary; repeatable; with `[import] trust` in mirror.toml)
    #[arg(long, value_name = "CERT")]
    pub trust: Vec<PathBuf>,

    /// The directory holding the trip's manifest and volumes
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `mirror keygen --out FILE`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where the secret key goes (must not exist; readable by its owner only)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// The key's user ID
    #[arg(long, default_value = "mirror site key", value_name = "NAME")]
    pub user_id: String,
}

fn printer(global: &GlobalArgs) -> Result<Printer> {
    let settings = Settings::resolve(global)?;
    Ok(Printer {
        verbosity: settings.verbosity,
    })
}

/// Run `mirror export`.
pub fn run_export(global: &GlobalArgs, args: ExportArgs) -> Result<()> {
    let printer = printer(global)?;
    let opts = crate::trip::ExportOptions {
        out: std::path::absolute(&args.out)?,
        only: split_values(&args.only),
        volume_size: args.volume_size.unwrap_or(u64::MAX >> 1),
        parity: usize::from(args.parity),
        sign_key: args.sign_key,
        full: args.full,
    };
    let path = crate::trip::export(&Under(global), &opts, &printer.reporter())?;
    crate::output::data(format_args!("{}", path.display()));
    Ok(())
}

/// Run `mirror import`.
pub fn run_import(global: &GlobalArgs, args: ImportArgs) -> Result<()> {
    let printer = printer(global)?;
    let opts = crate::trip::ImportOptions {
        dir: std::path::absolute(&args.dir)?,
        trust: args
            .trust
            .iter()
            .map(std::path::absolute)
            .collect::<std::io::Result<_>>()?,
    };
    crate::trip::import(&Under(global), &opts, &printer.reporter())
}

/// Run `mirror keygen`.
pub fn run_keygen(args: KeygenArgs) -> Result<()> {
    let cert = crate::trip::keygen(&args.out, &args.user_id)?;
    crate::output::data(format_args!(
        "{}",
        String::from_utf8_lossy(&cert).trim_end()
    ));
    Ok(())
}

/// `mirror status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Run `mirror status`.
pub fn run_status(global: &GlobalArgs, args: StatusArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let s = crate::trip::status::status(&settings.root, &settings.config)?;
    if args.json {
        crate::output::data(format_args!("{}", serde_json::to_string_pretty(&s)?));
    } else {
        crate::output::data(format_args!(
            "{}",
            crate::trip::status::render(&s).trim_end()
        ));
    }
    Ok(())
}

/// A trip's subcommands run under these global flags.
struct Under<'a>(&'a GlobalArgs);

impl crate::trip::ecosystems::Commands for Under<'_> {
    fn settings(&self) -> Result<Settings> {
        Settings::resolve(self.0)
    }

    fn run(&self, argv: &[String]) -> Result<()> {
        use clap::Parser as _;
        let mut cli = super::Cli::try_parse_from(
            std::iter::once("mirror").chain(argv.iter().map(String::as_str)),
        )
        .map_err(|e| {
            let shown = e.render().to_string();
            anyhow::anyhow!(
                "mirror.toml [{}]: {}",
                argv.first().map_or("", String::as_str),
                shown.lines().next().unwrap_or("invalid options")
            )
        })?;
        cli.global = self.0.clone();
        super::run(cli)
    }
}
