//! What clients can make the cache remember, and ask upstream.
//!
//! - [`NotFound`]: the "upstream said 404" memory. At most
//!   [`Limits::not_found_entries`] entries (least recently used dropped
//!   first), each kept for the cache TTL, each message cut to
//!   [`MAX_MESSAGE`] bytes: requests for a million names that do not exist
//!   cost a bounded few MiB, not one entry each forever.
//! - [`MissBudget`]: requests that would go upstream (a miss, a
//!   revalidation, a lookup that forces one) are charged to the client's
//!   address, a token bucket of [`Limits::miss_burst`] tokens refilled at
//!   [`Limits::miss_rate`] per second. A client with no token left gets
//!   `429 Too Many Requests` with `Retry-After`, so one client cannot spend
//!   what upstream tolerates from this server for everyone. Hits, joined
//!   transfers and answers from [`NotFound`] cost nothing. IPv6 clients are
//!   counted by /64 (one host usually holds the whole /64). The table of
//!   buckets is bounded too ([`Limits::clients`], least recently seen
//!   dropped first: a dropped client starts again with a full bucket).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clru::CLruCache;

/// The default [`Limits::not_found_entries`].
pub const DEFAULT_NOT_FOUND_ENTRIES: usize = 16_384;

/// The default [`Limits::miss_rate`] (upstream requests per second per
/// client).
pub const DEFAULT_MISS_RATE: f64 = 20.0;

/// The default [`Limits::miss_burst`]: a cold `cargo fetch` of a few
/// hundred crates fits in it.
pub const DEFAULT_MISS_BURST: u32 = 600;

/// The default [`Limits::clients`].
pub const DEFAULT_CLIENTS: usize = 4096;

/// Longest "not found" message kept (bytes).
pub const MAX_MESSAGE: usize = 400;

/// Longest key kept in [`NotFound`] (bytes); the grammar keeps real ones
/// far shorter.
const MAX_KEY: usize = 512;

/// The bounds (`mirror serve --cache-…`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Entries of the "not found" memory, at most.
    pub not_found_entries: usize,
    /// Upstream requests per second a client's budget refills with; `0`
    /// turns the budget off.
    pub miss_rate: f64,
    /// Upstream requests a client may make at once (the bucket's size).
    pub miss_burst: u32,
    /// Clients whose budgets are remembered, at most.
    pub clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            not_found_entries: DEFAULT_NOT_FOUND_ENTRIES,
            miss_rate: DEFAULT_MISS_RATE,
            miss_burst: DEFAULT_MISS_BURST,
            clients: DEFAULT_CLIENTS,
        }
    }
}

fn at_least_one(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Keys upstream answered `404` for, with when and the message; see the
/// module docs.
pub struct NotFound {
    map: Mutex<CLruCache<String, (Instant, String)>>,
    ttl: Duration,
}

impl NotFound {
    /// At most `entries` entries, each kept for `ttl`.
    pub fn new(entries: usize, ttl: Duration) -> NotFound {
        NotFound {
            map: Mutex::new(CLruCache::new(at_least_one(entries))),
            ttl,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, CLruCache<String, (Instant, String)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The message of `key` when upstream said `404` less than the TTL ago.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut map = self.map();
        match map.get(key) {
            Some((at, m)) if at.elapsed() < self.ttl => Some(m.clone()),
            Some(_) => {
                map.pop(key);
                None
            }
            None => None,
        }
    }

    /// Remember that upstream has no `key`.
    pub fn insert(&self, key: &str, message: &str) {
        if key.len() > MAX_KEY || self.ttl.is_zero() {
            return;
        }
        let message = cut(message, MAX_MESSAGE).to_string();
        self.map().put(key.to_string(), (Instant::now(), message));
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by keys and messages now (not counting the table).
    pub fn bytes(&self) -> usize {
        self.map().iter().map(|(k, (_, m))| k.len() + m.len()).sum()
    }
}

/// One client's tokens.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-client budgets of upstream requests; see the module docs.
pub struct MissBudget {
    buckets: Mutex<CLruCache<Option<IpAddr>, Bucket>>,
    rate: f64,
    burst: f64,
}

/// The address a client's budget is kept under: IPv4 as it is (IPv4
/// mapped into IPv6 too), IPv6 by its /64.
fn client_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    })
}

impl MissBudget {
    /// Budgets as `limits` says.
    pub fn new(limits: &Limits) -> MissBudget {
        MissBudget {
            buckets: Mutex::new(CLruCache::new(at_least_one(limits.clients))),
            rate: limits.miss_rate,
            burst: f64::from(limits.miss_burst.max(1)),
        }
    }

    /// Take one token of `client` (`None`: an address not known, all such
    /// share one budget) at `now`; when there is none, how long until
    /// there is.
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Ok(());
        }
        let key = client_key(client);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = match buckets.get_mut(&key) {
            Some(b) => b,
            None => {
                buckets.put(
                    key,
                    Bucket {
                        tokens: self.burst,
                        at: now,
                    },
                );
                buckets.get_mut(&key).expect("just put")
            }
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Clients whose budgets are held now.
    pub fn clients(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_memory_stays_within_its_entries_and_bytes() {
        let nf = NotFound::new(1000, Duration::from_secs(3600));
        let long = "m".repeat(10_000);
        for i in 0..200_000 {
            nf.insert(&format!("crates-index/3/a/a{i}"), &long);
        }
        assert_eq!(nf.len(), 1000);
        assert!(
            nf.bytes() <= 1000 * (MAX_KEY + MAX_MESSAGE),
            "{}",
            nf.bytes()
        );
        // The newest are kept, the oldest dropped.
        assert!(nf.get("crates-index/3/a/a199999").is_some());
        assert!(nf.get("crates-index/3/a/a0").is_none());
        // Oversized keys are not kept at all.
        nf.insert(&"k".repeat(MAX_KEY + 1), "x");
        assert_eq!(nf.len(), 1000);
    }

    #[test]
    fn not_found_entries_expire_with_the_ttl() {
        let nf = NotFound::new(10, Duration::from_millis(1));
        nf.insert("a", "gone");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(nf.get("a"), None);
        assert!(nf.is_empty());
        let never = NotFound::new(10, Duration::ZERO);
        never.insert("a", "gone");
        assert!(never.is_empty());
    }

    #[test]
    fn messages_are_cut_on_character_boundaries() {
        let nf = NotFound::new(10, Duration::from_secs(60));
        nf.insert("k", &"é".repeat(MAX_MESSAGE));
        let m = nf.get("k").unwrap();
        assert!(m.len() <= MAX_MESSAGE && m.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let limits = Limits {
            miss_rate: 10.0,
            miss_burst: 5,
            clients: 100,
            ..Limits::default()
        };
        let b = MissBudget::new(&limits);
        let t0 = Instant::now();
        let (one, two): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..5 {
            b.take(Some(one), t0).unwrap();
        }
        let wait = b.take(Some(one), t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another client still has its own budget.
        for _ in 0..5 {
            b.take(Some(two), t0).unwrap();
        }
        // Refilled at the rate.
        b.take(Some(one), t0 + Duration::from_millis(100)).unwrap();
        assert!(b.take(Some(one), t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_64_and_the_table_is_bounded() {
        let limits = Limits {
            miss_rate: 1.0,
            miss_burst: 1,
            clients: 50,
            ..Limits::default()
        };
        let b = MissBudget::new(&limits);
        let t0 = Instant::now();
        b.take(Some("2001:db8::1".parse().unwrap()), t0).unwrap();
        assert!(b
            .take(Some("2001:db8::ffff:2".parse().unwrap()), t0)
            .is_err());
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = b.take(Some(ip), t0);
        }
        assert_eq!(b.clients(), 50);
    }

    #[test]
    fn a_zero_rate_turns_the_budget_off() {
        let b = MissBudget::new(&Limits {
            miss_rate: 0.0,
            ..Limits::default()
        });
        for _ in 0..10_000 {
            b.take(None, Instant::now()).unwrap();
        }
        assert_eq!(b.clients(), 0);
    }
}
