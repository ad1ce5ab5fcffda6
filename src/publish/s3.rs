//! The object store a publish writes to: an `s3://BUCKET/PREFIX` target
//! opened with `object_store` (request signing, retries with backoff,
//! multipart uploads), credentials from the environment or the shared
//! credentials file, and errors that name the endpoint and the key.
//!
//! Credentials, in order: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN` (read by `object_store`, with its other `AWS_*`
//! variables), else the profile `AWS_PROFILE` (default `default`) of the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//! `~/.aws/credentials`), parsed here since `object_store` does not, else
//! whatever `object_store` finds (instance metadata). Never `mirror.toml`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};

/// Where to publish, as parsed from `--to s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl Target {
    /// Parse `s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> Result<Target> {
        let Some(rest) = text.strip_prefix("s3://") else {
            bail!("--to must be s3://BUCKET[/PREFIX], found {text:?}");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.bytes().all(ok) {
            bail!(
                "--to: {bucket:?} is not a bucket name (3 to 63 characters: lower-case letters, \
                 digits, '-', '.')"
            );
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|p| p == "." || p == ".." || (p.is_empty() && !prefix.is_empty()))
        {
            bail!("--to: the prefix {prefix:?} has an empty, '.' or '..' part");
        }
        Ok(Target {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The store key of a tree-relative key.
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }
}

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The target.
    pub target: Target,
    /// `--endpoint` (else `AWS_ENDPOINT`, else AWS).
    pub endpoint: Option<String>,
    /// `--region` (else `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// `--virtual-hosted`: `BUCKET.HOST` instead of `HOST/BUCKET`.
    pub virtual_hosted: bool,
    /// Retries of a failed request.
    pub retries: u32,
    /// First backoff delay.
    pub retry_delay: Duration,
    /// Connection and read timeout.
    pub timeout: Duration,
}

/// The opened store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<AmazonS3>,
    /// What to call the store in messages: `ENDPOINT/BUCKET`.
    pub name: String,
    /// The target.
    pub target: Target,
    /// The endpoint URL requests go to.
    pub endpoint: String,
}

impl Store {
    /// Open the store (no request is made).
    pub fn open(opts: &StoreOptions) -> Result<Store> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&opts.target.bucket);
        let region = opts
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        b = b.with_region(&region);
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        let mut allow_http = false;
        if let Some(e) = &endpoint {
            let url =
                url::Url::parse(e).with_context(|| format!("--endpoint {e:?} is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("--endpoint must be an http:// or https:// URL, found {e:?}");
            }
            b = b.with_endpoint(e.trim_end_matches('/'));
            allow_http = url.scheme() == "http";
        }
        b = b.with_virtual_hosted_style_request(opts.virtual_hosted);
        let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        if !env_keys {
            if let Some(c) = shared_credentials()? {
                b = b
                    .with_access_key_id(c.access_key_id)
                    .with_secret_access_key(c.secret_access_key);
                if let Some(t) = c.session_token {
                    b = b.with_token(t);
                }
            }
        }
        b = b
            .with_retry(RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: opts.retry_delay,
                    max_backoff: Duration::from_secs(15),
                    base: 2.0,
                },
                max_retries: opts.retries as usize,
                retry_timeout: Duration::from_secs(180),
            })
            .with_client_options(
                // Replaces the builder's client options: allow_http is one.
                object_store::ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(opts.timeout)
                    .with_timeout(opts.timeout.max(Duration::from_secs(60)) * 5),
            );
        let endpoint_name = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let inner = b.build().with_context(|| {
            format!(
                "cannot set up the object store {endpoint_name} (bucket {})",
                opts.target.bucket
            )
        })?;
        Ok(Store {
            inner: Arc::new(inner),
            name: format!(
                "{}/{}",
                endpoint_name.trim_end_matches('/'),
                opts.target.bucket
            ),
            target: opts.target.clone(),
            endpoint: endpoint_name,
        })
    }

    fn path(&self, rel: &str) -> Result<StorePath> {
        let key = self.target.key(rel);
        StorePath::parse(&key).with_context(|| format!("{key:?} cannot be an object key"))
    }

    fn context(&self, what: &str, rel: &str) -> String {
        format!("{what} {}/{} failed", self.name, self.target.key(rel))
    }

    /// The object at `rel`, or `None` when there is none; one larger than
    /// `max` bytes is an error, refused before it is read.
    pub async fn get(&self, rel: &str, max: u64) -> Result<Option<Bytes>> {
        let path = self.path(rel)?;
        match self.inner.get(&path).await {
            Ok(r) if r.meta.size > max => bail!(
                "{}/{} is {} bytes, more than the {max} expected",
                self.name,
                self.target.key(rel),
                r.meta.size
            ),
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| store_error(e, self.context("GET", rel)))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e, self.context("GET", rel))),
        }
    }

    /// Put `bytes` at `rel` in one request.
    pub async fn put(&self, rel: &str, bytes: Bytes, attrs: Attributes) -> Result<()> {
        let path = self.path(rel)?;
        let opts = PutOptions {
            attributes: attrs,
            ..PutOptions::default()
        };
        self.inner
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
            .map_err(|e| store_error(e, self.context("PUT", rel)))?;
        Ok(())
    }

    /// Start a multipart upload of `rel` in parts of `part` bytes.
    pub async fn multipart(&self, rel: &str, part: usize, attrs: Attributes) -> Result<Multipart> {
        let path = self.path(rel)?;
        let opts = PutMultipartOptions {
            attributes: attrs,
            ..PutMultipartOptions::default()
        };
        let upload = self
            .inner
            .put_multipart_opts(&path, opts)
            .await
            .map_err(|e| store_error(e, self.context("starting the multipart upload of", rel)))?;
        Ok(Multipart {
            writer: WriteMultipart::new_with_chunk_size(upload, part),
            what: self.context("the multipart upload of", rel),
        })
    }

    /// Delete `rels` (no error for a key already gone), in batched
    /// requests (`DeleteObjects`, up to 1000 keys each).
    pub async fn delete_many(&self, rels: &[String]) -> Result<()> {
        use futures_util::StreamExt as _;
        if rels.is_empty() {
            return Ok(());
        }
        let paths = rels
            .iter()
            .map(|r| self.path(r))
            .collect::<Result<Vec<_>>>()?;
        let input = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut out = self.inner.delete_stream(input);
        while let Some(r) = out.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(store_error(
                        e,
                        format!(
                            "DELETE of {} keys in {}/{} (the first {}) failed",
                            rels.len(),
                            self.name,
                            self.target.prefix,
                            rels.first().map_or("", String::as_str)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An error of the store as one readable cause under `what`: the
/// library nests the same message several times, so each cause already
/// said by the one above is left out.
fn store_error(e: object_store::Error, what: String) -> anyhow::Error {
    let mut said: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = next {
        let text = err.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
        next = err.source();
    }
    anyhow::anyhow!("{}", said.join(": ")).context(what)
}

/// Headers of an object.
pub fn attributes(content_type: &str, cache_control: &str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, content_type.to_owned().into());
    a.insert(Attribute::CacheControl, cache_control.to_owned().into());
    a
}

/// A multipart upload in progress.
pub struct Multipart {
    writer: WriteMultipart,
    what: String,
}

impl Multipart {
    /// Queue `buf`, waiting while `parallel` parts are in flight.
    pub async fn write(&mut self, buf: &[u8], parallel: usize) -> Result<()> {
        self.writer
            .wait_for_capacity(parallel)
            .await
            .map_err(|e| store_error(e, self.what.clone()))?;
        self.writer.write(buf);
        Ok(())
    }

    /// Complete the upload.
    pub async fn finish(self) -> Result<()> {
        let what = self.what;
        self.writer
            .finish()
            .await
            .map_err(|e| store_error(e, what))?;
        Ok(())
    }

    /// Give the upload up (its parts are deleted).
    pub async fn abort(self) {
        let _ = self.writer.abort().await;
    }
}

/// Keys from the shared credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCredentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`.
    pub session_token: Option<String>,
}

/// The shared credentials file's profile, if the file exists and has it.
fn shared_credentials() -> Result<Option<SharedCredentials>> {
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".aws/credentials"),
            None => return Ok(None),
        },
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    parse_credentials(&text, &profile)
        .with_context(|| format!("in the credentials file {}", path.display()))
}

/// The keys of `profile` in an INI-style credentials file: `[profile]`
/// sections of `key = value` lines, `#` and `;` comments.
pub fn parse_credentials(text: &str, profile: &str) -> Result<Option<SharedCredentials>> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(SharedCredentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        })),
        (None, None) => Ok(None),
        _ => {
            bail!("profile [{profile}] has only one of aws_access_key_id and aws_secret_access_key")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("s3://my-bucket/a/b/").unwrap();
        assert_eq!((t.bucket.as_str(), t.prefix.as_str()), ("my-bucket", "a/b"));
        assert_eq!(t.key("index/config.json"), "a/b/index/config.json");
        assert_eq!(Target::parse("s3://bkt").unwrap().key("x"), "x");
        for bad in [
            "http://b/x",
            "s3://",
            "s3://B_UP",
            "s3://bkt/a/../b",
            "s3://bkt/a//b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_file_profiles() {
        let text = "# c\n[default]\naws_access_key_id = A\naws_secret_access_key=S\n\n\
                    [other]\naws_access_key_id=B\naws_secret_access_key = T\naws_session_token = X\n";
        let d = parse_credentials(text, "default").unwrap().unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret_access_key.as_str()),
            ("A", "S")
        );
        let o = parse_credentials(text, "other").unwrap().unwrap();
        assert_eq!(o.session_token.as_deref(), Some("X"));
        assert_eq!(parse_credentials(text, "none").unwrap(), None);
        assert!(parse_credentials("[default]\naws_access_key_id=A\n", "default").is_err());
    }
}
