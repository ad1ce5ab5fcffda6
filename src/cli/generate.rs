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
    /// The man pages (roff): `mirror(1)` to stdout, or with --dir one
    /// page per subcommand (`mirror-crate(1)` and so on) into DIR
    Man {
        /// Write every page into this directory instead
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Shell completions, to stdout
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The man page text of `mirror(1)`.
pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(man_command()).render(&mut out)?;
    Ok(roff_ascii(out))
}

/// Write every character outside ASCII as groff's `\[u2026]`-style escape:
/// groff reads its input as Latin-1 and warns of (and garbles) UTF-8.
fn roff_ascii(page: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&page);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out.into_bytes()
}

/// The command the pages describe: `help` is not a page of its own.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every man page: `mirror.1` and one per (nested) subcommand, named as
/// the pages refer to each other (`mirror-crate.1`), by file name.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut page = Vec::new();
        man.render(&mut page)?;
        out.push((man.get_filename(), roff_ascii(page)));
        Ok(())
    }
    let mut out = Vec::new();
    walk(man_command(), &mut out)?;
    out.sort();
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
        GenerateWhat::Man { dir: None } => man_page()?,
        GenerateWhat::Man { dir: Some(dir) } => {
            use anyhow::Context;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, page) in man_pages()? {
                let path = dir.join(&name);
                std::fs::write(&path, page)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            return Ok(());
        }
        GenerateWhat::Completions { shell } => completions(shell),
    };
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}
