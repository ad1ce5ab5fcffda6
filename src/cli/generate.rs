//! `mirror generate`: the man page and shell completions, from the clap
//! definitions. The checked-in copies under `man/` and `completions/` are
//! compared with these by a test.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::cli::Cli;

/// `mirror generate man|completions SHELL`
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to generate
    #[command(subcommand)]
    pub what: GenerateWhat,
}

/// What `generate` writes.
#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// The man page (roff), to stdout
    Man,
    /// Shell completions, to stdout
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The man page text.
pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// The completion script for a shell.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mirror", &mut out);
    out
}

/// Run `mirror generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    let bytes = match args.what {
        GenerateWhat::Man => man_page()?,
        GenerateWhat::Completions { shell } => completions(shell),
    };
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}
