//! The ecosystems a trip carries: for each, its user-facing name (the
//! subcommand and the `mirror.toml` section), the id its archives and
//! marks carry, and the operation chains that export and import it. The
//! chains are those of the subcommand itself (`mirror crate export` …),
//! split so that the mark moves only once the whole trip is written.

use std::path::Path;

use anyhow::{Context, Result};

use crate::settings::{EcosystemConfig, Settings};

/// One ecosystem of a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecosystem {
    /// The subcommand and `mirror.toml` section: `crate`, `toolchain` …
    pub name: &'static str,
    /// The ecosystem its archives name (`MIRROR-BUNDLE.json`) and its
    /// marks are kept under.
    pub id: &'static str,
    /// The operations that download and pack what is new since the mark
    /// (the subcommand's `export` without its `mark`).
    pub pack_ops: &'static [&'static str],
    /// A directory under the root whose absence means the tree was never
    /// set up for this ecosystem, with the operation that sets it up
    /// online and the one that sets it up for import.
    pub setup: Option<(&'static str, &'static str, &'static str)>,
    /// The directory under the root holding what it serves.
    pub dir: &'static str,
}

/// Every ecosystem, in the order a trip carries them.
pub const ECOSYSTEMS: &[Ecosystem] = &[
    Ecosystem {
        name: "crate",
        id: crate::eco::crates::ECOSYSTEM,
        pack_ops: &["pull", "prune", "download", "pack"],
        setup: Some((crate::eco::crates::layout::INDEX_DIR, "init", "init-import")),
        dir: crate::eco::crates::layout::CRATES_DIR,
    },
    Ecosystem {
        name: "toolchain",
        id: crate::eco::toolchain::ECOSYSTEM,
        pack_ops: &["download", "pack"],
        setup: None,
        dir: "dist",
    },
    Ecosystem {
        name: "rustup",
        id: crate::eco::rustup::ECOSYSTEM,
        pack_ops: &["download", "pack"],
        setup: None,
        dir: "rustup",
    },
    Ecosystem {
        name: "hex",
        id: crate::eco::hex::ECOSYSTEM,
        pack_ops: &["download", "pack"],
        setup: None,
        dir: "hex",
    },
    Ecosystem {
        name: "arch",
        id: crate::eco::arch::ECOSYSTEM,
        pack_ops: &["download", "pack"],
        setup: None,
        dir: crate::eco::arch::TOP,
    },
];

/// The ecosystem named `name` (user-facing name or id).
pub fn by_name(name: &str) -> Result<&'static Ecosystem> {
    ECOSYSTEMS
        .iter()
        .find(|e| e.name == name || e.id == name)
        .with_context(|| {
            let names: Vec<&str> = ECOSYSTEMS.iter().map(|e| e.name).collect();
            format!(
                "unknown ecosystem {name:?}: expected one of {}",
                names.join(", ")
            )
        })
}

/// The ecosystems `mirror.toml` configures (a section each), limited to
/// `only` when given.
pub fn configured(settings: &Settings, only: &[String]) -> Result<Vec<&'static Ecosystem>> {
    let only = only
        .iter()
        .map(|n| by_name(n))
        .collect::<Result<Vec<_>>>()?;
    if let Some(e) = only
        .iter()
        .find(|e| !settings.config.ecosystems.contains_key(e.name))
    {
        anyhow::bail!(
            "--only {}: mirror.toml in {} has no [{}] section to say what to carry",
            e.name,
            settings.root.display(),
            e.name
        );
    }
    let chosen: Vec<&'static Ecosystem> = ECOSYSTEMS
        .iter()
        .filter(|e| settings.config.ecosystems.contains_key(e.name))
        .filter(|e| only.is_empty() || only.contains(e))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "no ecosystem to carry: mirror.toml in {} has no section [crate], [toolchain], [rustup], [hex] or [arch]",
            settings.root.display(),
        );
    }
    Ok(chosen)
}

/// What a trip needs from the command line it runs under (given by
/// `crate::cli`): the settings of its flags, and running a subcommand
/// with the same flags.
pub trait Commands {
    /// The settings of the global flags.
    fn settings(&self) -> Result<Settings>;
    /// Run `mirror ARGV` with the same global flags; a command line its
    /// subcommand refuses is an error naming the first problem.
    fn run(&self, argv: &[String]) -> Result<()>;
}

impl Ecosystem {
    /// Run operations `ops` of this ecosystem's subcommand with the
    /// options of its `mirror.toml` section and `extra`.
    fn run(&self, global: &dyn Commands, ops: &[&str], extra: &[String]) -> Result<()> {
        let settings = global.settings()?;
        let section = settings
            .config
            .ecosystems
            .get(self.name)
            .cloned()
            .unwrap_or_else(EcosystemConfig::default);
        let argv = self.command_line(&section, ops, extra)?;
        global
            .run(&argv)
            .with_context(|| format!("{}: `{}` failed", self.name, ops.join(" ")))
    }

    /// The command line of operations `ops` with `section`'s options.
    /// The command line (after `mirror`) of operations `ops` with
    /// `section`'s options.
    fn command_line(
        &self,
        section: &EcosystemConfig,
        ops: &[&str],
        extra: &[String],
    ) -> Result<Vec<String>> {
        let mut argv: Vec<String> = vec![self.name.into()];
        argv.extend(ops.iter().map(|o| o.to_string()));
        argv.extend(extra.iter().cloned());
        argv.extend(section.to_args()?);
        Ok(argv)
    }

    fn needs_setup(&self, root: &Path) -> Option<(&'static str, &'static str)> {
        self.setup
            .filter(|(dir, _, _)| !root.join(dir).exists())
            .map(|(_, online, far)| (online, far))
    }

    /// Download and pack what is new since the mark (`full`: everything
    /// held) into `archive`; the mark stays.
    pub fn pack(
        &self,
        global: &dyn Commands,
        root: &Path,
        archive: &Path,
        full: bool,
    ) -> Result<()> {
        let mut ops: Vec<&str> = Vec::new();
        if let Some((online, _)) = self.needs_setup(root) {
            ops.push(online);
        }
        ops.extend(self.pack_ops);
        let mut extra = vec!["--archive".to_string(), archive.display().to_string()];
        if full {
            extra.extend(["--start".to_string(), "0".to_string()]);
        }
        self.run(global, &ops, &extra)
    }

    /// Move the mark: the next pack starts where the last one ended.
    pub fn mark(&self, global: &dyn Commands) -> Result<()> {
        self.run(global, &["mark"], &[])
    }

    /// Import `archive` (the subcommand's `import`), setting up a fresh
    /// tree first.
    pub fn import(&self, global: &dyn Commands, root: &Path, archive: &Path) -> Result<()> {
        let mut ops: Vec<&str> = Vec::new();
        if let Some((_, far)) = self.needs_setup(root) {
            ops.push(far);
        }
        ops.push("import");
        let extra = vec!["--archive".to_string(), archive.display().to_string()];
        self.run(global, &ops, &extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chain a trip runs is one its subcommand takes.
    #[test]
    fn every_chain_parses() {
        let archive = vec!["--archive".to_string(), "a.tar.gz".to_string()];
        let mut full = archive.clone();
        full.extend(["--start".to_string(), "0".to_string()]);
        let nothing = Vec::new();
        for e in ECOSYSTEMS {
            let none = EcosystemConfig::default();
            let mut chains: Vec<(Vec<&str>, &Vec<String>)> = vec![
                (e.pack_ops.to_vec(), &full),
                (vec!["mark"], &nothing),
                (vec!["import"], &archive),
            ];
            if let Some((_, online, far)) = e.setup {
                chains.push((vec![online], &nothing));
                chains.push((vec![far, "import"], &archive));
            }
            for (ops, extra) in chains {
                let mut argv = vec!["mirror".to_string()];
                argv.extend(e.command_line(&none, &ops, extra).unwrap());
                let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv);
                assert!(cli.is_ok(), "{} {ops:?}: {}", e.name, cli.unwrap_err());
            }
            assert_eq!(by_name(e.name).unwrap(), e);
            assert_eq!(by_name(e.id).unwrap(), e);
        }
        assert!(by_name("npm").is_err());
    }
}
