//! `mirror publish`: maps arguments onto [`crate::publish`].

use anyhow::Result;
use clap::Args;

use crate::cli::GlobalArgs;
use crate::output::Printer;
use crate::publish::s3::{StoreOptions, Target};
use crate::publish::{publish, PublishOptions};
use crate::settings::Settings;

/// `mirror publish --to s3://BUCKET/PREFIX [--endpoint URL] [--region R]
/// [--public-url URL] [--virtual-hosted]`
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Where to publish: s3://BUCKET[/PREFIX]. Credentials come from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else
    /// the AWS_PROFILE (default "default") of ~/.aws/credentials
    /// (AWS_SHARED_CREDENTIALS_FILE), never from mirror.toml
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    pub to: Target,

    /// The store's endpoint, for S3-compatible stores (MinIO, Ceph RGW,
    /// Garage, R2…); http:// is allowed [default: AWS_ENDPOINT_URL, else
    /// AWS S3]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The store's region [default: AWS_REGION, else us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Where readers reach the prefix (a CDN, the bucket's public URL),
    /// written into the crates index's config.json [default: the endpoint's
    /// URL of the prefix]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Address the bucket as BUCKET.HOST instead of HOST/BUCKET
    #[arg(long)]
    pub virtual_hosted: bool,

    /// Files larger than this are uploaded in parts (K, M, G suffixes)
    /// [default: 64M]
    #[arg(long, value_name = "SIZE", value_parser = crate::limit::parse_size)]
    pub multipart_threshold: Option<u64>,

    /// Size of each part of a multipart upload, at least 5M (K, M, G
    /// suffixes) [default: 16M]
    #[arg(long, value_name = "SIZE", value_parser = crate::limit::parse_size)]
    pub part_size: Option<u64>,

    /// Seconds a file that left the tree stays in the store, at least
    /// (deleted by the first publish after); for tests
    #[arg(long, value_name = "SECS", hide = true)]
    pub retire_after: Option<u64>,
}

/// Run `mirror publish`.
pub fn run(global: &GlobalArgs, args: PublishArgs) -> Result<()> {
    let settings = Settings::resolve(global)?;
    let part_size = args.part_size.unwrap_or(16 << 20);
    if !(5 << 20..=5 << 30).contains(&part_size) {
        anyhow::bail!("--part-size must be between 5M and 5G, found {part_size}");
    }
    let opts = PublishOptions {
        root: settings.root.clone(),
        store: StoreOptions {
            target: args.to,
            endpoint: args.endpoint,
            region: args.region,
            virtual_hosted: args.virtual_hosted,
            retries: settings.fetch.http.retries,
            retry_delay: settings.fetch.http.retry_delay,
            timeout: settings.fetch.http.timeout,
        },
        public_url: args.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        jobs: settings.fetch.jobs,
        multipart_threshold: args.multipart_threshold.unwrap_or(64 << 20),
        part_size: part_size as usize,
        retire_after: args
            .retire_after
            .unwrap_or(crate::publish::plan::METADATA_MAX_AGE),
        printer: Printer {
            verbosity: settings.verbosity,
        },
    };
    let _lock = crate::store::TreeLock::acquire(&settings.root)?;
    publish(&opts)?;
    Ok(())
}
