//! The environment every `git` child of `mirror` runs in, in one place
//! (`mirror crate` writing and fetching the index, `mirror serve` running
//! `git upload-pack`).
//!
//! git reads configuration and environment variables that change what it
//! does: which transports it speaks (`protocol.allow`, `ext::` URLs),
//! which URL it really fetches (`url.<base>.insteadOf`), programs it runs
//! (`core.fsmonitor`, `core.sshCommand`, hooks, askpass helpers), which
//! repository it works on (`GIT_DIR`, `GIT_COMMON_DIR`, discovery up the
//! directory tree) and what it reads (`GIT_CONFIG_PARAMETERS`, replace
//! refs). None of that comes from the user running `mirror` or from the
//! system:
//!
//! - every `GIT_*` variable of our environment is dropped, and
//!   `XDG_CONFIG_HOME` and `SSH_ASKPASS` with them;
//! - system and global configuration are not read (`GIT_CONFIG_NOSYSTEM`,
//!   `GIT_CONFIG_GLOBAL=/dev/null`), and `HOME` names a directory that does
//!   not exist, so nothing is read from the user's home (`~/.gitconfig`,
//!   `~/.config/git/`, curl's `~/.netrc`);
//! - only the transports `mirror` uses are allowed ([`ALLOWED_PROTOCOLS`]:
//!   `file` covers local paths and bundles);
//! - git never asks for credentials (`GIT_TERMINAL_PROMPT=0`, an empty
//!   `GIT_ASKPASS` so no askpass program runs);
//! - replace refs are ignored, hooks and fsmonitor are off.
//!
//! For a command in a repository ([`command_in`]), `safe.directory` is
//! exactly that repository (its canonical path) and git does not look for a
//! repository above it (`GIT_CEILING_DIRECTORIES`), so a directory that is
//! not (yet) a repository never makes git work on one around it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The transports git may use, as `GIT_ALLOW_PROTOCOL` lists them: local
/// paths and bundles (`file`), and http(s) upstreams. `ssh`, `git://` and
/// `ext::` are refused.
pub const ALLOWED_PROTOCOLS: &str = "file:http:https";

/// `HOME` of every git child: an absolute path that does not exist (and
/// that only root could create).
const NO_HOME: &str = "/nonexistent";

/// Variables dropped besides every `GIT_*`: where git would find the
/// user's configuration, and an askpass program.
const DROPPED: [&str; 2] = ["XDG_CONFIG_HOME", "SSH_ASKPASS"];

/// `git` with the environment described in the module docs, no repository
/// chosen: the caller names one (e.g. `upload-pack DIR`).
pub fn command() -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"GIT_") {
            cmd.env_remove(&name);
        }
    }
    for name in DROPPED {
        cmd.env_remove(name);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", NO_HOME)
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
        ]);
    cmd
}

/// `git` working in the repository at `dir` (a bare repository or a work
/// tree): run there, `safe.directory` set to exactly `dir`, and no
/// repository looked for above it.
pub fn command_in(dir: &Path) -> Command {
    let real = canonical(dir);
    let mut cmd = command();
    cmd.current_dir(dir).arg("-c").arg(safe_directory(&real));
    if let Some(parent) = real.parent() {
        cmd.env("GIT_CEILING_DIRECTORIES", parent);
    }
    cmd
}

/// The `-c` value trusting exactly `dir`, which git compares with the
/// canonical path of the repository it opens.
pub fn safe_directory(dir: &Path) -> String {
    format!("safe.directory={}", dir.display())
}

/// `dir` with symlinks resolved (what git compares `safe.directory`
/// with), or as given when it cannot be resolved (it does not exist yet).
pub fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(cmd: &Command) -> Vec<(String, Option<String>)> {
        cmd.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn user_configuration_and_git_variables_are_not_passed() {
        let cmd = command_in(Path::new("/"));
        let env = env_of(&cmd);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("GIT_CONFIG_NOSYSTEM"), Some(Some("1".into())));
        assert_eq!(get("GIT_CONFIG_GLOBAL"), Some(Some("/dev/null".into())));
        assert_eq!(
            get("GIT_ALLOW_PROTOCOL"),
            Some(Some(ALLOWED_PROTOCOLS.into()))
        );
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some(Some("0".into())));
        assert_eq!(get("HOME"), Some(Some(NO_HOME.into())));
        assert_eq!(get("XDG_CONFIG_HOME"), Some(None));
        // Every GIT_* of ours is either set by us or removed.
        for (name, _) in std::env::vars() {
            if name.starts_with("GIT_") {
                assert!(get(&name).is_some(), "{name} passed through");
            }
        }
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"safe.directory=/".to_string()), "{args:?}");
    }
}
