//! Settings, resolved once from (in order of precedence) command-line flags,
//! `MIRROR_*` environment variables (clap reads those for each flag), an
//! optional `mirror.toml` in the mirror root, and built-in defaults.
//!
//! `mirror.toml`:
//! ```toml
//! jobs = 8            # -j/--num-jobs, MIRROR_JOBS
//! timeout = 30        # --timeout, MIRROR_TIMEOUT (seconds)
//! retries = 4         # --retries, MIRROR_RETRIES
//! low_speed_limit = 1024  # --low-speed-limit, MIRROR_LOW_SPEED_LIMIT (bytes/s; 0 = off)
//!
//! [rustup]
//! url = "https://static.rust-lang.org/rustup"   # --url, MIRROR_RUSTUP_URL
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::fetch::FetchOptions;
use crate::http::HttpOptions;
use crate::output::Verbosity;

/// The config file's name, looked up in the mirror root.
pub const CONFIG_FILE: &str = "mirror.toml";

/// `mirror.toml` as written.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ConfigFile {
    /// Parallel jobs.
    pub jobs: Option<usize>,
    /// Timeout in seconds.
    pub timeout: Option<u64>,
    /// Retries.
    pub retries: Option<u32>,
    /// Low-speed limit in bytes per second.
    pub low_speed_limit: Option<u64>,
    /// `[import]`: what `mirror import` checks.
    #[serde(default)]
    pub import: ImportConfig,
    /// Per-ecosystem sections (`[rustup]`, `[toolchain]` …).
    #[serde(flatten)]
    pub ecosystems: BTreeMap<String, EcosystemConfig>,
}

/// `[import]` of `mirror.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Certificates whose signatures `mirror import` accepts (`--trust`).
    #[serde(default)]
    pub trust: Vec<PathBuf>,
}

/// One ecosystem's section of `mirror.toml`, named by its subcommand
/// (`[crate]`, `[toolchain]`, `[rustup]`, `[hex]`, `[arch]`). Its keys are
/// that subcommand's long options (`url`, `select`, `target`, `lockfile`
/// …): `mirror export` passes them on, and an unknown one is refused when
/// the file is read (see [`EcosystemConfig::check`]).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EcosystemConfig {
    /// Upstream base URL.
    pub url: Option<String>,
    /// Keyring file for signature checks.
    pub keyring: Option<PathBuf>,
    /// The other options, as written.
    #[serde(flatten)]
    pub options: BTreeMap<String, toml::Value>,
}

/// The long options of subcommand `section` (`None`: no such
/// subcommand), as the command line defines them.
pub type SectionOptions = fn(&str) -> Option<Vec<String>>;

/// Options a section may not set: they belong to each run (`archive`,
/// `start`…) or to `mirror.toml` itself.
const RUN_OPTIONS: &[&str] = &[
    "archive",
    "start",
    "end",
    "bundle-path",
    "json",
    "root",
    "help",
    "version",
];

impl EcosystemConfig {
    /// Refuse keys that are not long options of subcommand `section`
    /// (any key but `url` and `keyring` in a section that names none).
    fn check(&self, section: &str, options: SectionOptions) -> Result<()> {
        let known: Vec<String> = options(section)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| !RUN_OPTIONS.contains(&l.as_str()))
            .collect();
        for key in self.options.keys() {
            if !known.iter().any(|k| k == key) {
                let expected = if known.is_empty() {
                    "url, keyring".to_string()
                } else {
                    known.join(", ")
                };
                bail!("[{section}] {key}: unknown option; expected one of: {expected}");
            }
        }
        Ok(())
    }

    /// The section as command-line arguments of its subcommand: `--key
    /// value` per value (an array repeats it, `true` is the bare flag,
    /// `false` leaves it out).
    pub fn to_args(&self) -> Result<Vec<String>> {
        let mut args = Vec::new();
        if let Some(url) = &self.url {
            args.extend(["--url".to_string(), url.clone()]);
        }
        if let Some(k) = &self.keyring {
            args.extend(["--keyring".to_string(), k.display().to_string()]);
        }
        for (key, value) in &self.options {
            let values = match value {
                toml::Value::Array(a) => a.clone(),
                v => vec![v.clone()],
            };
            for v in values {
                match v {
                    toml::Value::Boolean(true) => args.push(format!("--{key}")),
                    toml::Value::Boolean(false) => {}
                    toml::Value::String(s) => args.extend([format!("--{key}"), s]),
                    toml::Value::Integer(n) => args.extend([format!("--{key}"), n.to_string()]),
                    other => bail!(
                        "{key}: expected a string, number, boolean or array of them, found {}",
                        other.type_str()
                    ),
                }
            }
        }
        Ok(args)
    }
}

/// Validated settings for a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The mirror root.
    pub root: PathBuf,
    /// Engine settings.
    pub fetch: FetchOptions,
    /// Output level.
    pub verbosity: Verbosity,
    /// The config file (empty when absent).
    pub config: ConfigFile,
}

/// The values of the flags every subcommand takes (`crate::cli` parses
/// them; clap has already read their environment variables). `None`: not
/// given, so `mirror.toml` or the default decides.
#[derive(Debug, Clone)]
pub struct Flags {
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `-j`/`--num-jobs`.
    pub jobs: Option<usize>,
    /// `--keep-going`.
    pub keep_going: bool,
    /// `--assume-ok`.
    pub assume_ok: bool,
    /// `--timeout` (seconds).
    pub timeout: Option<u64>,
    /// `--retries`.
    pub retries: Option<u32>,
    /// `--low-speed-limit` (bytes/s).
    pub low_speed_limit: Option<u64>,
    /// `--max-file-size` (bytes).
    pub max_file_size: Option<u64>,
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// What a `mirror.toml` section may set.
    pub section_options: SectionOptions,
}

impl Settings {
    /// Resolve global flags against the environment and `mirror.toml`.
    pub fn resolve(flags: impl Into<Flags>) -> Result<Settings> {
        let global = flags.into();
        let root = global.root.clone().unwrap_or_else(|| PathBuf::from("."));
        let config = load_config(&root, global.section_options)?;
        let jobs = global.jobs.or(config.jobs).unwrap_or(8);
        if jobs == 0 || jobs > 256 {
            bail!("--num-jobs must be between 1 and 256, found {jobs}");
        }
        let timeout = global.timeout.or(config.timeout).unwrap_or(30);
        if timeout == 0 {
            bail!("--timeout must be at least 1 second");
        }
        let retries = global.retries.or(config.retries).unwrap_or(4);
        let retry_delay = Duration::from_millis(retry_delay_ms()?);
        Ok(Settings {
            root,
            fetch: FetchOptions {
                jobs,
                keep_going: global.keep_going,
                assume_ok: global.assume_ok,
                http: HttpOptions {
                    timeout: Duration::from_secs(timeout),
                    retries,
                    retry_delay,
                    low_speed_limit: global
                        .low_speed_limit
                        .or(config.low_speed_limit)
                        .unwrap_or(1024),
                    max_file_size: global.max_file_size,
                },
            },
            verbosity: Verbosity::from_flags(global.quiet, global.verbose),
            config,
        })
    }

    /// An ecosystem's upstream URL: the flag (or its environment variable),
    /// else `[<ecosystem>] url` in `mirror.toml`, else `default`. Trailing
    /// slashes are dropped.
    pub fn upstream_url(
        &self,
        ecosystem: &str,
        flag: Option<&str>,
        default: &str,
    ) -> Result<String> {
        let from_config = self
            .config
            .ecosystems
            .get(ecosystem)
            .and_then(|c| c.url.as_deref());
        let url = flag.or(from_config).unwrap_or(default);
        let parsed = url::Url::parse(url)
            .with_context(|| format!("invalid {ecosystem} upstream URL {url:?}"))?;
        if !matches!(parsed.scheme(), "http" | "https" | "file") {
            bail!(
                "invalid {ecosystem} upstream URL {url:?}: expected http://, https:// or file://"
            );
        }
        Ok(url.trim_end_matches('/').to_string())
    }
}

fn load_config(root: &Path, options: SectionOptions) -> Result<ConfigFile> {
    let path = root.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let config: ConfigFile = toml::from_str(&text)
                .with_context(|| format!("{}: invalid config", path.display()))?;
            for (section, eco) in &config.ecosystems {
                eco.check(section, options)
                    .with_context(|| format!("{}: invalid config", path.display()))?;
            }
            Ok(config)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The base delay of the retry backoff: `MIRROR_RETRY_DELAY_MS` (a knob
/// for tests and slow links, not a flag), else 500 ms.
fn retry_delay_ms() -> Result<u64> {
    match std::env::var("MIRROR_RETRY_DELAY_MS") {
        Err(std::env::VarError::NotPresent) => Ok(500),
        Ok(v) => v.trim().parse().map_err(|_| {
            anyhow::anyhow!("MIRROR_RETRY_DELAY_MS={v:?}: expected a number of milliseconds")
        }),
        Err(std::env::VarError::NotUnicode(v)) => {
            bail!("MIRROR_RETRY_DELAY_MS={v:?}: expected a number of milliseconds")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global(args: &[&str]) -> crate::cli::GlobalArgs {
        let mut argv = vec!["mirror"];
        argv.extend_from_slice(args);
        argv.push("generate");
        argv.push("man");
        crate::cli::Cli::parse_from(argv).global
    }

    #[test]
    fn flags_beat_config_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "jobs = 3\nretries = 1\n[rustup]\nurl = \"http://example.test/rustup/\"\n",
        )
        .unwrap();
        let s = Settings::resolve(&global(&["--root", root])).unwrap();
        assert_eq!(s.fetch.jobs, 3);
        assert_eq!(s.fetch.http.retries, 1);
        assert_eq!(s.fetch.http.timeout, Duration::from_secs(30));
        assert_eq!(
            s.upstream_url("rustup", None, "https://x").unwrap(),
            "http://example.test/rustup"
        );
        assert_eq!(
            s.upstream_url("rustup", Some("http://flag"), "https://x")
                .unwrap(),
            "http://flag"
        );
        let s = Settings::resolve(&global(&["--root", root, "-j", "5"])).unwrap();
        assert_eq!(s.fetch.jobs, 5);
    }

    #[test]
    fn sections_take_their_subcommands_long_options() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[crate]\nindex-url = \"sparse\"\ncrate = [\"a\", \"b@1\"]\n[rustup]\nselect = \"stable\"\n[import]\ntrust = [\"k.asc\"]\n",
        )
        .unwrap();
        let s = Settings::resolve(&global(&["--root", root])).unwrap();
        assert_eq!(
            s.config.ecosystems["crate"].to_args().unwrap(),
            ["--crate", "a", "--crate", "b@1", "--index-url", "sparse"]
        );
        assert_eq!(s.config.import.trust, [PathBuf::from("k.asc")]);
        for bad in ["[crate]\nselectt = \"x\"\n", "[rustup]\narchive = \"x\"\n"] {
            std::fs::write(dir.path().join(CONFIG_FILE), bad).unwrap();
            let err = Settings::resolve(&global(&["--root", root])).unwrap_err();
            assert!(format!("{err:#}").contains("unknown option"), "{err:#}");
        }
    }

    #[test]
    fn bad_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "jobz = 3\n").unwrap();
        let err =
            Settings::resolve(&global(&["--root", dir.path().to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("mirror.toml"), "{err:#}");
    }
}
