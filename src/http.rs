//! The HTTP client every download goes through, and the rules for retrying.
//!
//! One `reqwest::Client` (rustls, HTTP/2 by ALPN where the upstream offers
//! it) is shared by all jobs so connections are reused.
//!
//! Retry classification (why each):
//! - connect errors, timeouts, resets, bodies cut short: transient network
//!   trouble; the next attempt resumes where the last one stopped.
//! - 5xx: the server (or a proxy in front of it) failed, not our request.
//! - 429 and 408: the server asks us to come back later.
//! - anything else (404, 403, 416 …) and a digest mismatch are answers, not
//!   accidents: retrying would only repeat them.
//!
//! A 429 or 503 may say when to come back (`Retry-After`, in seconds or as
//! an HTTP date): the next attempt then waits that long instead of the
//! backoff (never less than the backoff), at most [`MAX_RETRY_AFTER`], so
//! a server asking for an hour cannot stall a run; after the last attempt
//! nobody waits at all.

use std::time::Duration;

use reqwest::StatusCode;

/// Client settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connect timeout, and the longest wait for any read (not the whole
    /// transfer: a large file on a slow link must still finish).
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Base delay of the exponential backoff (tests set it to zero).
    pub retry_delay: Duration,
    /// A transfer slower than this many bytes per second, averaged over
    /// `timeout`, is abandoned as failed (retried, resumed; for Arch, the
    /// next mirror is tried). 0: no limit.
    pub low_speed_limit: u64,
    /// `--max-file-size`: raises the ceiling of every download streamed
    /// to disk whose size the plan does not know (see [`crate::limit`]).
    pub max_file_size: Option<u64>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            retries: 4,
            retry_delay: Duration::from_millis(500),
            low_speed_limit: 1024,
            max_file_size: None,
        }
    }
}

/// The `User-Agent` we send.
pub fn user_agent() -> String {
    format!("mirror/{}", env!("CARGO_PKG_VERSION"))
}

/// Build the shared client.
///
/// It trusts what reqwest's `rustls-tls-native-roots` would (the webpki
/// roots and the system's), but reads the system's certificates on the
/// first https handshake rather than here: that read costs ~4 ms of every
/// run, before the first request, and a run against a plain-http upstream
/// (a mirror on the LAN) never needs it.
pub fn client(opts: &HttpOptions) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_keepalive(Duration::from_secs(30))
        .use_preconfigured_tls(tls::config()?)
        .build()?)
}

/// The client's TLS configuration.
mod tls {
    use std::sync::{Arc, OnceLock};

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
    use tokio_rustls::rustls;

    /// TLS 1.2 and 1.3 with ring, ALPN `h2` then `http/1.1`, server
    /// certificates checked against [`LazyRoots`].
    pub fn config() -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LazyRoots {
                provider,
                verifier: OnceLock::new(),
            }))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// rustls' standard WebPKI verifier, built on first use from the
    /// webpki roots plus the system's (unreadable or malformed system
    /// certificates are skipped, as reqwest does). Handshake signatures
    /// need no roots and are checked at once.
    #[derive(Debug)]
    struct LazyRoots {
        provider: Arc<CryptoProvider>,
        verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
    }

    impl LazyRoots {
        fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
            self.verifier
                .get_or_init(|| {
                    let mut roots = RootCertStore::empty();
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                    for cert in rustls_native_certs::load_native_certs().certs {
                        let _ = roots.add(cert);
                    }
                    WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        Arc::clone(&self.provider),
                    )
                    .build()
                    .map_err(|e| e.to_string())
                })
                .as_ref()
                .map_err(|e| rustls::Error::General(format!("no trusted roots: {e}")))
        }
    }

    impl ServerCertVerifier for LazyRoots {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            self.verifier()?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

/// Whether a response status is worth another attempt.
pub fn status_is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Whether a transport error is worth another attempt.
pub fn error_is_retryable(err: &reqwest::Error) -> bool {
    if let Some(status) = err.status() {
        return status_is_retryable(status);
    }
    // Builder errors and redirect loops are our fault or the server's
    // configuration; everything else is the network.
    !(err.is_builder() || err.is_redirect())
}

/// The longest wait a `Retry-After` header can impose before one attempt.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The wait a `Retry-After` value asks for (delta-seconds or an HTTP date,
/// relative to `now`), capped at [`MAX_RETRY_AFTER`]; `None` if it is
/// neither. A date in the past asks for no wait.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait before retry `attempt` (1-based): the backoff, or what the
/// server asked for with `Retry-After` when that is longer (it is capped
/// already, see [`parse_retry_after`]).
pub fn retry_wait(base: Duration, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = backoff(base, attempt);
    retry_after.map_or(backoff, |asked| asked.max(backoff))
}

/// Delay before attempt `attempt` (1-based): base × 2^(attempt-1), capped
/// at 30 s, with up to 25 % jitter so parallel jobs do not retry in step.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10));
    let capped = exp.min(Duration::from_secs(30));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = capped.mul_f64(f64::from(nanos % 1000) / 4000.0);
    capped + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(status_is_retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 416] {
            assert!(
                !status_is_retryable(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_is_capped() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(20));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(20)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(20));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn retry_wait_takes_the_longer_of_backoff_and_retry_after() {
        let s = Duration::from_secs(1);
        assert_eq!(retry_wait(Duration::ZERO, 1, Some(s)), s);
        assert_eq!(retry_wait(Duration::ZERO, 1, None), Duration::ZERO);
        assert!(retry_wait(s * 4, 1, Some(s)) >= s * 4);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(b, 1) >= b && backoff(b, 1) < b * 2);
        assert!(backoff(b, 3) >= b * 4);
        assert!(backoff(b, 30) <= Duration::from_secs(38));
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
    }
}
