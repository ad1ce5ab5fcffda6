//! `mirror serve`: maps arguments onto [`crate::serve`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::GlobalArgs;
use crate::eco::hex::registry::PublicKey;
use crate::output::Printer;
use crate::serve::cache::{CratesUpstream, DistUpstream, HexUpstream, UpstreamOptions};
use crate::serve::limits::{self, Limits};
use crate::settings::Settings;
use crate::verify::openpgp::Keyring;

/// `mirror serve [--bind ADDR] [--port PORT] [--root DIR] [--base-url URL]
/// [--upstream-crates URL] [--upstream-arch URL]... [--upstream-hex URL]
/// [--upstream-dist URL] [--upstream-rustup URL] [--cache-ttl SECONDS]
/// [--git-max-processes N] [--git-timeout SECONDS] [--force-root]
/// [--max-connections N] [--header-timeout SECONDS] …`
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

    /// Public URL of this server, written into the sparse index's
    /// config.json (`dl`, `api`) [default: http://HOST from the request,
    /// else http://BIND:PORT]
    #[arg(long, env = "MIRROR_BASE_URL", value_name = "URL", value_parser = parse_base_url)]
    pub base_url: Option<String>,

    /// Serve https with this PEM certificate chain (needs --tls-key)
    #[arg(
        long,
        env = "MIRROR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(
        long,
        env = "MIRROR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// Serve the root even if it is `/`, a home directory, or a directory
    /// holding no mirror tree (none of dist/, rustup/, crates/,
    /// git/crates.io-index/, hex/, archlinux/, .mirror/), which are refused
    /// otherwise: everything under the root is served
    #[arg(long)]
    pub force_root: bool,

    /// Write a line per request here (`-`: standard output): client,
    /// user, time, request, status, bytes, referer, user agent, duration
    /// and cache outcome; reopened on SIGHUP. Lines the writer cannot keep
    /// up with are dropped and counted, never waited for
    #[arg(
        long,
        env = "MIRROR_ACCESS_LOG",
        value_name = "FILE|-",
        help_heading = "Operations"
    )]
    pub access_log: Option<String>,

    /// Format of --access-log: the combined log format followed by the
    /// duration (s) and cache outcome, or one JSON object a line
    #[arg(long, value_enum, default_value_t = crate::serve::ops::LogFormat::Combined, help_heading = "Operations")]
    pub log_format: crate::serve::ops::LogFormat,

    /// Require credentials: one a line, NAME:HASH with a bcrypt hash as
    /// `htpasswd -B` writes it, reread on SIGHUP. Clients send basic auth
    /// or the token NAME:PASSWORD (cargo); every path but /health answers
    /// 401 without one
    #[arg(
        long,
        env = "MIRROR_AUTH_FILE",
        value_name = "FILE",
        help_heading = "Operations"
    )]
    pub auth_file: Option<std::path::PathBuf>,

    /// Connections open at once; at the cap, one that has not sent a
    /// request yet (the oldest), else the longest idle, else one not
    /// taking its response is closed for the new one [default: (open-file
    /// limit − 128) / 2, at most 8192; the soft open-file limit is first
    /// raised to the hard one]
    #[arg(long, env = "MIRROR_MAX_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub max_connections: Option<u64>,

    /// TLS handshakes in progress at once; past it the oldest is closed
    /// [default: 256, or the connection cap if lower]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "tls_cert", help_heading = "Limits")]
    pub max_tls_handshakes: Option<u64>,

    /// Seconds a client has to send a request's whole header (the first
    /// from connecting, a later one from its first byte)
    #[arg(long, value_name = "SECONDS", default_value_t = limits::DEFAULT_HEADER_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub header_timeout: u64,

    /// Seconds a request body may go without a byte from the client
    #[arg(long, value_name = "SECONDS", default_value_t = limits::DEFAULT_BODY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub body_timeout: u64,

    /// Seconds a client may take none of a response ready for it
    #[arg(long, value_name = "SECONDS", default_value_t = limits::DEFAULT_SEND_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub send_timeout: u64,

    /// Seconds a connection is kept open with no request in flight
    #[arg(long, env = "MIRROR_KEEPALIVE_TIMEOUT", value_name = "SECONDS", default_value_t = limits::DEFAULT_KEEPALIVE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub keepalive_timeout: u64,

    /// Seconds a client has to complete its TLS handshake
    #[arg(long, value_name = "SECONDS", default_value_t = limits::DEFAULT_TLS_HANDSHAKE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub tls_handshake_timeout: u64,

    /// Fetch crates the tree lacks from this sparse
    /// index (e.g. https://index.crates.io/), verify them against its
    /// cksum and keep them
    #[arg(long, env = "MIRROR_UPSTREAM_CRATES", value_name = "URL", value_parser = parse_upstream_url, help_heading = "Pull-through cache")]
    pub upstream_crates: Option<String>,

    /// Download template of --upstream-crates: {crate}, {version},
    /// {prefix}, {lowerprefix}, {sha256-checksum}
    #[arg(
        long,
        env = "MIRROR_UPSTREAM_CRATES_DL",
        value_name = "TEMPLATE",
        default_value = crate::eco::crates::DEFAULT_CRATES_URL,
        requires = "upstream_crates",
        help_heading = "Pull-through cache"
    )]
    pub upstream_crates_dl: String,

    /// Fetch Arch Linux databases and packages the tree
    /// lacks from this mirror (repeatable: tried in order; a base, or a
    /// template with $repo and $arch), packages verified against the
    /// database's %SHA256SUM%
    #[arg(long = "upstream-arch", value_name = "URL", value_parser = parse_arch_url, help_heading = "Pull-through cache")]
    pub upstream_arch: Vec<String>,

    /// Fetch Hex resources the tree lacks from this
    /// repository (e.g. https://repo.hex.pm), signed files checked with
    /// --upstream-hex-public-key, tarballs against their outer checksum
    #[arg(long, env = "MIRROR_UPSTREAM_HEX", value_name = "URL", value_parser = parse_base_url, help_heading = "Pull-through cache")]
    pub upstream_hex: Option<String>,

    /// PEM public key of --upstream-hex [default: the embedded hexpm key]
    #[arg(
        long,
        value_name = "FILE",
        requires = "upstream_hex",
        help_heading = "Pull-through cache"
    )]
    pub upstream_hex_public_key: Option<std::path::PathBuf>,

    /// Repository name every signed payload of --upstream-hex must carry
    #[arg(
        long,
        value_name = "NAME",
        default_value = crate::eco::hex::DEFAULT_REPO_NAME,
        requires = "upstream_hex",
        help_heading = "Pull-through cache"
    )]
    pub upstream_hex_repo_name: String,

    /// Fetch toolchain manifests and component files
    /// the tree lacks from this dist server (e.g.
    /// https://static.rust-lang.org/dist), manifests checked against their
    /// .asc, files against the manifest's hash
    #[arg(long, env = "MIRROR_UPSTREAM_DIST", value_name = "URL", value_parser = parse_base_url, help_heading = "Pull-through cache")]
    pub upstream_dist: Option<String>,

    /// OpenPGP keyring for --upstream-dist manifests [default: the
    /// embedded Rust release key]
    #[arg(
        long,
        value_name = "FILE",
        requires = "upstream_dist",
        help_heading = "Pull-through cache"
    )]
    pub upstream_dist_keyring: Option<std::path::PathBuf>,

    /// Fetch rustup-init binaries and
    /// release-stable.toml the tree lacks from this server (e.g.
    /// https://static.rust-lang.org/rustup), binaries checked against its
    /// .sha256 files
    #[arg(long, env = "MIRROR_UPSTREAM_RUSTUP", value_name = "URL", value_parser = parse_base_url, help_heading = "Pull-through cache")]
    pub upstream_rustup: Option<String>,

    /// How long (seconds) metadata pulled from an upstream (index files,
    /// databases, manifests) is served before it is revalidated with a
    /// conditional request
    #[arg(
        long,
        env = "MIRROR_CACHE_TTL",
        value_name = "SECONDS",
        default_value_t = 300,
        help_heading = "Pull-through cache"
    )]
    pub cache_ttl: u64,

    /// How long (seconds) a client of a file being pulled waits for the
    /// verified file before it follows the download as it arrives (cut
    /// short if the bytes then fail to verify)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 5,
        help_heading = "Pull-through cache"
    )]
    pub cache_follow_after: u64,

    /// Most `git upload-pack` processes serving the git index at once;
    /// further git requests wait up to 10 s (at most half of --git-timeout)
    /// for one to end, then get 503 with Retry-After
    #[arg(
        long,
        env = "MIRROR_GIT_MAX_PROCESSES",
        value_name = "N",
        default_value_t = crate::serve::git::DEFAULT_MAX_PROCESSES as u32,
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Git index"
    )]
    pub git_max_processes: u32,

    /// Longest git request (seconds): git is killed when the exchange
    /// lasts longer, when its request body takes longer than 30 s (or
    /// this, if shorter) to arrive, and when the client goes away
    #[arg(
        long,
        env = "MIRROR_GIT_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = crate::serve::git::DEFAULT_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Git index"
    )]
    pub git_timeout: u64,

    /// Upstream requests (misses, revalidations) each client address may
    /// start per second once its burst is spent; more get 429 with
    /// Retry-After (IPv6 counted by /64; 0: no limit)
    #[arg(
        long,
        value_name = "PER_SECOND",
        default_value_t = crate::serve::cache::limits::DEFAULT_MISS_RATE,
        value_parser = parse_rate,
        help_heading = "Pull-through cache"
    )]
    pub cache_miss_rate: f64,

    /// Upstream requests each client address may start at once before
    /// --cache-miss-rate applies
    #[arg(
        long,
        value_name = "REQUESTS",
        default_value_t = crate::serve::cache::limits::DEFAULT_MISS_BURST,
        help_heading = "Pull-through cache"
    )]
    pub cache_miss_burst: u32,

    /// Paths upstream answered 404 for that are remembered (for
    /// --cache-ttl), at most; the least recently asked are forgotten first
    #[arg(
        long,
        value_name = "ENTRIES",
        default_value_t = crate::serve::cache::limits::DEFAULT_NOT_FOUND_ENTRIES,
        help_heading = "Pull-through cache"
    )]
    pub cache_not_found_entries: usize,
}

/// A rate: a finite number >= 0.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "expected a number of requests per second >= 0, found {s:?}"
        )),
    }
}

/// An Arch mirror as a `$repo`/`$arch` template.
fn parse_arch_url(s: &str) -> Result<String, String> {
    crate::cli::arch::check_url(s).map_err(|e| format!("{e:#}"))?;
    Ok(crate::eco::arch::url_template(s))
}

/// An upstream base URL (http or https; `sparse+` accepted), ending in `/`.
fn parse_upstream_url(s: &str) -> Result<String, String> {
    let bare = s.strip_prefix("sparse+").unwrap_or(s);
    let url = parse_base_url(bare)?;
    Ok(format!("{url}/"))
}

/// An absolute http(s) URL, without a trailing `/`.
fn parse_base_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "expected an http:// or https:// URL with a host, found {s:?}"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "expected a URL without query or fragment, found {s:?}"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Run `mirror serve` until interrupted.
pub fn run(global: &GlobalArgs, args: ServeArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let printer = Printer {
        verbosity: settings.verbosity,
    };
    let root = settings.root.clone();
    let count = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let limits = Limits {
        max_connections: count(args.max_connections),
        max_tls_handshakes: count(args.max_tls_handshakes),
        header_timeout: Duration::from_secs(args.header_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        send_timeout: Duration::from_secs(args.send_timeout),
        keepalive_timeout: Duration::from_secs(args.keepalive_timeout),
        tls_handshake_timeout: Duration::from_secs(args.tls_handshake_timeout),
    };
    let log_queue = std::env::var("MIRROR_ACCESS_LOG_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let opts = crate::serve::ServeOptions {
        ops: crate::serve::ops::OpsOptions {
            access_log: args
                .access_log
                .as_deref()
                .map(crate::serve::ops::LogTarget::parse),
            log_format: args.log_format,
            log_queue,
            auth_file: args.auth_file,
            ..Default::default()
        },
        limits,
        force_root: args.force_root,
        root: root.clone(),
        bind: args.bind,
        port: args.port,
        rewrites: Vec::new(),
        base_url: args.base_url,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::serve::tls::TlsFiles { cert, key }),
            _ => None,
        },
        upstream: Some(UpstreamOptions {
            crates: args.upstream_crates.map(|index| CratesUpstream {
                index,
                dl: args.upstream_crates_dl,
            }),
            arch: args.upstream_arch,
            hex: match args.upstream_hex {
                Some(url) => Some(HexUpstream {
                    url,
                    key: match &args.upstream_hex_public_key {
                        Some(p) => PublicKey::from_file(p)?,
                        None => PublicKey::hexpm(),
                    },
                    repo: args.upstream_hex_repo_name,
                }),
                None => None,
            },
            dist: match args.upstream_dist {
                Some(url) => Some(DistUpstream {
                    url,
                    keyring: Arc::new(match &args.upstream_dist_keyring {
                        Some(p) => Keyring::from_file(p)
                            .with_context(|| format!("cannot load keyring {}", p.display()))?,
                        None => Keyring::rust_release(),
                    }),
                }),
                None => None,
            },
            rustup: args.upstream_rustup,
            ttl: Duration::from_secs(args.cache_ttl),
            follow_after: Duration::from_secs(args.cache_follow_after),
            http: settings.fetch.http.clone(),
            limits: crate::serve::cache::limits::Limits {
                not_found_entries: args.cache_not_found_entries,
                miss_rate: args.cache_miss_rate,
                miss_burst: args.cache_miss_burst,
                ..Default::default()
            },
        }),
        git: crate::serve::git::GitLimits {
            max_processes: args.git_max_processes as usize,
            timeout: Duration::from_secs(args.git_timeout),
        },
    };
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    crate::serve::run_blocking(opts, move |started| {
        printer.info(&format!(
            "serving {} on {scheme}://{}/ (Ctrl-C stops)",
            root.display(),
            started.addr
        ));
        printer.verbose(&format!(
            "at most {} connections (open-file limit {})",
            started.max_connections,
            started
                .fd_limit
                .map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
        ));
        for warning in &started.warnings {
            printer.warn(warning);
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn serve_args(args: &[&str]) -> Result<super::ServeArgs, clap::Error> {
        let argv = ["mirror", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(a),
            _ => unreachable!("parsed as serve"),
        }
    }

    #[test]
    fn upstream_flags_are_normalised_and_checked() {
        let a = serve_args(&[
            "--upstream-crates",
            "sparse+https://index.crates.io",
            "--upstream-arch",
            "https://m1/archlinux/",
            "--upstream-arch",
            "https://m2/$repo/os/$arch",
            "--upstream-hex",
            "https://repo.hex.pm/",
        ])
        .unwrap();
        assert_eq!(
            a.upstream_crates.as_deref(),
            Some("https://index.crates.io/")
        );
        assert_eq!(
            a.upstream_arch,
            [
                "https://m1/archlinux/$repo/os/$arch",
                "https://m2/$repo/os/$arch"
            ]
        );
        assert_eq!(a.upstream_hex.as_deref(), Some("https://repo.hex.pm"));
        assert_eq!(a.cache_ttl, 300);
        for bad in [
            &["--upstream-crates", "ftp://x/"][..],
            &["--upstream-arch", "not a url"],
            &["--upstream-crates-dl", "https://x/{crate}"],
            &["--upstream-hex-public-key", "k.pem"],
        ] {
            assert!(serve_args(bad).is_err(), "{bad:?}");
        }
    }
}
