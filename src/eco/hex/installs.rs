//! `installs/`: the archives `mix local.hex` installs Hex itself from, so a
//! fresh air-gapped machine can get Hex from the mirror
//! (`HEX_MIRROR=http://host:port/hex mix local.hex`).
//!
//! ```text
//! hex/installs/
//!   hex-1.x.csv  hex-1.x.csv.signed      read by Elixir up to 1.14
//!   <elixir>/hex-<hex>.ez                  its archives
//!   hex.csv      hex.csv.signed          read by newer Elixir (HEX_BUILDS_URL)
//!   <elixir>/hex-<hex>-otp-<otp>.ez        its archives
//! ```
//!
//! CSV lines: `hex_version,sha512,elixir_version[,elixir_version...]` in
//! `hex-1.x.csv` (one archive per Elixir version named), and
//! `hex_version,sha512,elixir_version,otp_release` in `hex.csv`; the
//! SHA-512 is that of the archive. Lines are appended as Hex is released,
//! so the last line that fits a client is the one it takes.
//!
//! `<csv>.signed` is the base64 (wrapped at any width) of an RSA PKCS#1
//! v1.5 SHA-512 signature over the CSV bytes, made with **Elixir's** key,
//! not the repository's: Mix embeds that key ([`ELIXIR_PUBLIC_KEY`]) and
//! `mix local.public_keys FILE` adds others. Both files are kept
//! byte-for-byte.
//!
//! Which archives are mirrored ([`InstallsPolicy`]): by default, for every
//! Elixir version (and OTP release) a CSV names, the archive of its last
//! line: that is the archive `mix local.hex` picks for that version — and
//! for any version between it and the next one named, since a client
//! scanning from the end stops at the last line naming a version not newer
//! than its own, which is the last line naming that version.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use base64::Engine as _;

use super::registry::PublicKey;
use crate::verify::digest::Sha512Digest;

/// The public key Mix verifies the install CSVs with (Elixir's, as Mix
/// embeds it).
pub const ELIXIR_PUBLIC_KEY: &str = include_str!("keys/elixir-public-key.pem");

/// The embedded Elixir key.
pub fn elixir_key() -> PublicKey {
    PublicKey::from_pem(ELIXIR_PUBLIC_KEY, "embedded Elixir key").expect("the embedded key parses")
}

/// Which Hex archives to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallsPolicy {
    /// None (nor the CSVs).
    None,
    /// The archive each Elixir version (and OTP release) would install.
    Latest,
    /// Every archive the CSVs list.
    All,
}

impl InstallsPolicy {
    /// Parse `none`, `latest` or `all`.
    pub fn parse(s: &str) -> Result<InstallsPolicy> {
        match s {
            "none" => Ok(InstallsPolicy::None),
            "latest" => Ok(InstallsPolicy::Latest),
            "all" => Ok(InstallsPolicy::All),
            _ => bail!("invalid --installs {s:?}: expected none, latest or all"),
        }
    }
}

/// The two install lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csv {
    /// `hex-1.x.csv`: Elixir up to 1.14.
    Legacy,
    /// `hex.csv`: newer Elixir, one archive per OTP release.
    Current,
}

impl Csv {
    /// Both, in the order they are handled.
    pub const ALL: [Csv; 2] = [Csv::Legacy, Csv::Current];

    /// The file name under `installs/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Csv::Legacy => "hex-1.x.csv",
            Csv::Current => "hex.csv",
        }
    }

    /// Which list a file name under `installs/` is, if any.
    pub fn from_file_name(name: &str) -> Option<Csv> {
        Csv::ALL.into_iter().find(|c| c.file_name() == name)
    }
}

/// One archive a CSV line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Path under `installs/`, e.g. `1.14.0/hex-2.0.6.ez`.
    pub path: String,
    /// Its SHA-512.
    pub sha512: Sha512Digest,
    /// What a client chooses it by: the Elixir version (and OTP release).
    key: String,
}

/// Whether `s` can stand as a version in a path: letters, digits, `.`,
/// `-`, `+`, `_`; not empty, not starting with `.`.
fn is_safe_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// Every archive `text` (the bytes of `csv`) lists, in line order.
/// `what` names the file or URL in errors.
pub fn parse(csv: Csv, text: &[u8], what: &str) -> Result<Vec<Archive>> {
    let text = std::str::from_utf8(text).with_context(|| format!("{what}: not UTF-8 text"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |why: String| {
            anyhow::anyhow!(
                "{what} line {}: {why}, in {:?}",
                n + 1,
                line.chars().take(200).collect::<String>()
            )
        };
        let expected = match csv {
            Csv::Legacy => "hex_version,sha512,elixir_version...",
            Csv::Current => "hex_version,sha512,elixir_version,otp_release",
        };
        if fields.len() < 3 || (csv == Csv::Current && fields.len() < 4) {
            return Err(bad(format!("expected {expected}")));
        }
        for v in fields.iter().skip(2).chain([&fields[0]]) {
            if !is_safe_version(v) {
                return Err(bad(format!("invalid version {v:?}")));
            }
        }
        let hex = fields[0];
        let sha512: Sha512Digest = fields[1]
            .to_ascii_lowercase()
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        match csv {
            Csv::Legacy => {
                for elixir in &fields[2..] {
                    out.push(Archive {
                        path: format!("{elixir}/hex-{hex}.ez"),
                        sha512,
                        key: elixir.to_string(),
                    });
                }
            }
            Csv::Current => {
                let (elixir, otp) = (fields[2], fields[3]);
                out.push(Archive {
                    path: format!("{elixir}/hex-{hex}-otp-{otp}.ez"),
                    sha512,
                    key: format!("{elixir} otp {otp}"),
                });
            }
        }
    }
    Ok(out)
}

/// Check `signed` (base64, line breaks allowed) as the signature of `csv`
/// by `key`. `what` names the CSV in errors.
pub fn verify_signature(csv: &[u8], signed: &[u8], key: &PublicKey, what: &str) -> Result<()> {
    let text: Vec<u8> = signed
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .with_context(|| format!("{what}.signed: expected a base64 signature"))?;
    if !key.verify(csv, &signature) {
        bail!(
            "{what}: signature in {what}.signed does not verify with {}",
            key.origin()
        );
    }
    Ok(())
}

/// Check a list's signature, then parse it: the archives it names.
pub fn open(
    csv: Csv,
    text: &[u8],
    signed: &[u8],
    key: &PublicKey,
    what: &str,
) -> Result<Vec<Archive>> {
    verify_signature(text, signed, key, what)?;
    parse(csv, text, what)
}

/// The archives to mirror under `policy`, each path once (the last line
/// wins, as it does for a client).
pub fn select(archives: Vec<Archive>, policy: InstallsPolicy) -> Vec<Archive> {
    let chosen: Vec<Archive> = match policy {
        InstallsPolicy::None => return Vec::new(),
        InstallsPolicy::All => archives,
        InstallsPolicy::Latest => {
            let mut last: BTreeMap<String, Archive> = BTreeMap::new();
            for a in archives {
                last.insert(a.key.clone(), a);
            }
            last.into_values().collect()
        }
    };
    let mut by_path: BTreeMap<String, Archive> = BTreeMap::new();
    for a in chosen {
        by_path.insert(a.path.clone(), a);
    }
    by_path.into_values().collect()
}

/// The SHA-512 every listed archive must have, by path (the last line
/// wins).
pub fn digests(archives: &[Archive]) -> BTreeMap<&str, Sha512Digest> {
    archives
        .iter()
        .map(|a| (a.path.as_str(), a.sha512))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        std::iter::repeat_n(c, 128).collect()
    }

    #[test]
    fn legacy_lines_name_one_archive_per_elixir_version() {
        let text = format!("1.0.0,{},1.0.0\n2.0.0,{},1.5.0,1.0.0\n", sha('a'), sha('b'));
        let all = parse(Csv::Legacy, text.as_bytes(), "x").unwrap();
        let paths: Vec<&str> = all.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "1.0.0/hex-1.0.0.ez",
                "1.5.0/hex-2.0.0.ez",
                "1.0.0/hex-2.0.0.ez"
            ]
        );
        let latest = select(all.clone(), InstallsPolicy::Latest);
        let paths: Vec<&str> = latest.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["1.0.0/hex-2.0.0.ez", "1.5.0/hex-2.0.0.ez"]);
        assert_eq!(select(all.clone(), InstallsPolicy::All).len(), 3);
        assert!(select(all, InstallsPolicy::None).is_empty());
    }

    #[test]
    fn current_lines_name_elixir_and_otp() {
        let text = format!(
            "2.1.0,{},1.16.0,26\n2.2.0,{},1.16.0,26\n2.2.0,{},1.16.0,25\n",
            sha('a'),
            sha('b'),
            sha('c')
        );
        let latest = select(
            parse(Csv::Current, text.as_bytes(), "x").unwrap(),
            InstallsPolicy::Latest,
        );
        let paths: Vec<&str> = latest.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            ["1.16.0/hex-2.2.0-otp-25.ez", "1.16.0/hex-2.2.0-otp-26.ez"]
        );
    }

    #[test]
    fn hostile_lines_are_refused_with_file_and_line() {
        for (csv, text) in [
            (Csv::Legacy, format!("1.0.0,{},../../etc\n", sha('a'))),
            (Csv::Legacy, format!("1.0.0/x,{},1.0.0\n", sha('a'))),
            (Csv::Legacy, "1.0.0,abc,1.0.0\n".to_string()),
            (Csv::Legacy, format!("1.0.0,{}\n", sha('a'))),
            (Csv::Current, format!("1.0.0,{},1.15.0\n", sha('a'))),
            (Csv::Current, format!("1.0.0,{},1.15.0,.\n", sha('a'))),
        ] {
            let e = parse(csv, format!("\n{text}").as_bytes(), "up/hex.csv")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("up/hex.csv line 2: "), "{e}");
        }
    }
}
