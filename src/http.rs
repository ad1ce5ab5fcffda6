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
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            retries: 4,
            retry_delay: Duration::from_millis(500),
            low_speed_limit: 1024,
        }
    }
}

/// The `User-Agent` we send.
pub fn user_agent() -> String {
    format!("mirror/{}", env!("CARGO_PKG_VERSION"))
}

/// Build the shared client.
pub fn client(opts: &HttpOptions) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
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
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(b, 1) >= b && backoff(b, 1) < b * 2);
        assert!(backoff(b, 3) >= b * 4);
        assert!(backoff(b, 30) <= Duration::from_secs(38));
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
    }
}
