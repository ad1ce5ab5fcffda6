//! `mirror serve`: maps arguments onto [`crate::serve`].

use std::net::IpAddr;

use anyhow::Result;
use clap::Args;

use crate::cli::GlobalArgs;
use crate::output::Printer;
use crate::settings::Settings;

/// `mirror serve [--bind ADDR] [--port PORT] [--root DIR]`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(
        long,
        default_value = "127.0.0.1",
        env = "MIRROR_BIND",
        value_name = "ADDR"
    )]
    pub bind: IpAddr,

    /// Port to listen on
    #[arg(long, default_value_t = 8000, env = "MIRROR_PORT", value_name = "PORT")]
    pub port: u16,
}

/// Run `mirror serve` until interrupted.
pub fn run(global: &GlobalArgs, args: ServeArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let root = settings.root.clone();
    let opts = crate::serve::ServeOptions {
        root: root.clone(),
        bind: args.bind,
        port: args.port,
        rewrites: Vec::new(),
    };
    crate::serve::run_blocking(opts, move |addr| {
        printer.info(&format!(
            "serving {} on http://{addr}/ (Ctrl-C stops)",
            root.display()
        ));
    })
}
