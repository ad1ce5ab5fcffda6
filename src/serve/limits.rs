//! What the server allows one client: how long each phase of a connection
//! may take, how many connections may be open at once, and which one goes
//! when that cap is reached. `serve::conn` enforces it on every
//! connection, plain http and https alike.
//!
//! # Timeouts
//!
//! | phase | limit | flag | default |
//! |---|---|---|---|
//! | TLS handshake, from accept | [`Limits::tls_handshake_timeout`] | `--tls-handshake-timeout` | 10 s |
//! | first request's header, from accept (or the handshake's end) | [`Limits::header_timeout`] | `--header-timeout` | 20 s |
//! | a later request's header (HTTP/1), from its first byte | [`Limits::header_timeout`] | `--header-timeout` | 20 s |
//! | no request in flight (keep-alive) | [`Limits::keepalive_timeout`] | `--keepalive-timeout` | 75 s |
//! | request body: no bytes from the client | [`Limits::body_timeout`] | `--body-timeout` | 60 s |
//! | response: the client takes none of what is ready for it | [`Limits::send_timeout`] | `--send-timeout` | 60 s |
//!
//! A header deadline is a deadline for the whole header, so a client
//! trickling a byte at a time gains nothing. The body and send timeouts
//! are idle timeouts: a slow client that keeps moving is served. Time the
//! server itself spends (a handler at work, an upstream being fetched) is
//! never counted against the client. The timeouts are checked every
//! quarter of the shortest one (at least 50 ms, at most 5 s), so a
//! connection may outlive its deadline by that much.
//!
//! HTTP/2 connections get the same timeouts (the header deadline for the
//! first request only: HTTP/2 frames cannot tell a header from a ping), at
//! most [`H2_MAX_STREAMS`] streams and [`H2_MAX_HEADER_LIST`] bytes of
//! header each, and a ping every [`H2_PING_INTERVAL`] that must be answered
//! within [`H2_PING_TIMEOUT`].
//!
//! # The connection cap
//!
//! At start `mirror serve` raises its soft open-file limit to the hard one
//! ([`raise_fd_limit`]), as nginx's `worker_rlimit_nofile` does, and
//! derives the cap from it ([`default_max_connections`]): half of what
//! remains after [`FD_RESERVE`] descriptors for everything else (files
//! being sent, `git` children, upstream connections, the cache's
//! temporaries), as each connection may hold a file open besides its
//! socket; at most [`MAX_CONNECTIONS_CEILING`]. `--max-connections` sets it.
//! So the server never runs out of descriptors because of its clients, and
//! an accept never fails for want of one.
//!
//! # Who goes when the cap is reached
//!
//! A new connection is always let in if someone can make room; at the cap,
//! one open connection is shed, chosen in this order:
//!
//! 1. one that has not yet completed its first request (still in its TLS
//!    handshake or its header), oldest first: these are what a slow-loris
//!    attack holds, and a real client sends its request at once;
//! 2. one idle between requests (keep-alive), the longest idle first: its
//!    client only has to connect again;
//! 3. one whose client has stopped taking its response, the oldest first.
//!
//! Within a class, connections from the address (IPv6: the /64) holding
//! the most open connections go first, so one client flooding the server sheds its own
//! connections rather than others'.
//!
//! A connection at work on a request for a client that keeps up is never
//! shed; when every open connection is such, the new one is refused (plain
//! http answers it `503` first). In-progress TLS handshakes are also
//! capped on their own ([`Limits::max_tls_handshakes`],
//! `--max-tls-handshakes`, default 256 or the cap if lower): past that, the
//! oldest handshake is shed for the new one. An attacker holding the cap
//! with stalled connections thus sheds its own connections first, and
//! `/health` (any request) on a new connection from another address is
//! answered; clients sharing the attacker's address (one NAT) may be shed
//! along with it.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Default [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default [`Limits::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Limits::send_timeout`].
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Limits::keepalive_timeout`].
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default [`Limits::tls_handshake_timeout`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Descriptors kept out of the connection cap for everything else.
pub const FD_RESERVE: u64 = 128;
/// The default connection cap never exceeds this, however high the
/// open-file limit (each connection costs memory too).
pub const MAX_CONNECTIONS_CEILING: usize = 8192;
/// The default cap never goes below this, however low the limit.
pub const MIN_CONNECTIONS: usize = 16;
/// The default cap on in-progress TLS handshakes, when below the cap.
pub const DEFAULT_MAX_TLS_HANDSHAKES: usize = 256;

/// HTTP/2: streams open at once per connection.
pub const H2_MAX_STREAMS: u32 = 128;
/// HTTP/2: bytes of header (decoded) per request.
pub const H2_MAX_HEADER_LIST: u32 = 64 << 10;
/// HTTP/2: how often an idle connection is pinged.
pub const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// HTTP/2: how long a ping may go unanswered.
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The limits of one server; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (`None`: [`default_max_connections`] of
    /// the open-file limit when the server starts).
    pub max_connections: Option<usize>,
    /// TLS handshakes in progress at once (`None`: the lesser of
    /// [`DEFAULT_MAX_TLS_HANDSHAKES`] and the connection cap).
    pub max_tls_handshakes: Option<usize>,
    /// A request's header, whole.
    pub header_timeout: Duration,
    /// A request body's silence.
    pub body_timeout: Duration,
    /// A client's not taking its response.
    pub send_timeout: Duration,
    /// A connection with no request in flight.
    pub keepalive_timeout: Duration,
    /// A TLS handshake, whole.
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: None,
            max_tls_handshakes: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Limits {
    /// The connection cap in force: the configured one, else derived from
    /// the open-file limit as it is now.
    pub fn connections(&self) -> usize {
        self.max_connections
            .unwrap_or_else(|| default_max_connections(fd_limit()))
            .max(1)
    }

    /// The cap on TLS handshakes in progress, given the connection cap.
    pub fn tls_handshakes(&self, connections: usize) -> usize {
        self.max_tls_handshakes
            .unwrap_or(DEFAULT_MAX_TLS_HANDSHAKES.min(connections))
            .max(1)
    }

    /// How often the timeouts are checked: a quarter of the shortest.
    pub(crate) fn tick(&self) -> Duration {
        let shortest = self
            .header_timeout
            .min(self.send_timeout)
            .min(self.keepalive_timeout);
        (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}

/// The soft open-file limit of this process (`None`: unlimited or unknown).
pub fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raise the soft open-file limit to the hard one; the soft limit then in
/// force (unchanged when raising fails or there is no hard limit).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
        if hard > soft {
            let raised = rustix::process::Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Some(hard);
            }
        }
    }
    limit.current
}

/// The connection cap for an open-file limit: half of what is left after
/// [`FD_RESERVE`], within [`MIN_CONNECTIONS`]..=[`MAX_CONNECTIONS_CEILING`].
pub fn default_max_connections(fd_limit: Option<u64>) -> usize {
    let Some(n) = fd_limit else {
        return MAX_CONNECTIONS_CEILING;
    };
    let half = n.saturating_sub(FD_RESERVE) / 2;
    usize::try_from(half)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS_CEILING)
}

/// Milliseconds since the first call (never 0, so 0 can mean "unset").
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// What one connection is doing, as its parts report it (all relaxed
/// atomics: these are hints for the watchdog and the shedding, read
/// without a lock).
#[derive(Debug)]
pub(crate) struct Activity {
    /// The client's address (IPv6: its /64, see [`client_of`]).
    pub peer: IpAddr,
    /// When the connection was accepted, then when its TLS handshake ended.
    pub started: AtomicU64,
    /// In its TLS handshake.
    pub handshaking: AtomicBool,
    /// Requests received (headers complete).
    pub requests: AtomicU64,
    /// Requests whose response has not been sent whole.
    pub in_flight: AtomicUsize,
    /// When `in_flight` last dropped to 0.
    pub idle_since: AtomicU64,
    /// When the first byte came after `in_flight` dropped to 0 (HTTP/1:
    /// the next header began); 0: none since.
    pub header_at: AtomicU64,
    /// Spoke HTTP/2.
    pub h2: AtomicBool,
    /// Writes to the socket that made progress.
    pub writes: AtomicU64,
    /// The last write to the socket could not proceed.
    pub write_blocked: AtomicBool,
    /// Response bodies holding data the connection has not taken yet.
    pub waiting: AtomicUsize,
    /// Times a response body was asked for more.
    pub taken: AtomicU64,
    /// Marked by the watchdog: the client is not taking its response.
    pub stalled: AtomicBool,
    /// Told to close (shed for a new connection).
    shed: Notify,
}

impl Activity {
    fn new(peer: IpAddr, tls: bool) -> Activity {
        let now = now_ms();
        Activity {
            peer: client_of(peer),
            started: AtomicU64::new(now),
            handshaking: AtomicBool::new(tls),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            header_at: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            taken: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            shed: Notify::new(),
        }
    }

    /// Resolves once this connection has been shed.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }

    /// (class, since) in shedding order (lowest first); `None`: at work
    /// for a client that keeps up, never shed.
    fn shed_rank(&self) -> Option<(u8, u64)> {
        let idle = self.in_flight.load(Relaxed) == 0;
        if self.handshaking.load(Relaxed) || (idle && self.requests.load(Relaxed) == 0) {
            Some((0, self.started.load(Relaxed)))
        } else if idle {
            Some((1, self.idle_since.load(Relaxed)))
        } else if self.stalled.load(Relaxed) {
            Some((2, self.started.load(Relaxed)))
        } else {
            None
        }
    }
}

/// The open connections of one server, for the cap and the shedding.
#[derive(Debug)]
pub(crate) struct Registry {
    cap: usize,
    max_handshakes: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    conns: HashMap<u64, Arc<Activity>>,
    handshakes: usize,
}

impl Registry {
    /// A registry for `limits`, the cap fixed now.
    pub fn new(limits: &Limits) -> Registry {
        let cap = limits.connections();
        Registry {
            cap,
            max_handshakes: limits.tls_handshakes(cap),
            open: Mutex::new(Open::default()),
        }
    }

    /// The connection cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Let a new connection from `peer` in (starting with a TLS handshake
    /// if `tls`), shedding one if at the cap; `None`: every open connection
    /// is at work, refuse the new one.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, tls: bool) -> Option<Ticket> {
        let mut open = self.lock();
        if open.conns.len() >= self.cap {
            let victim = pick(&open.conns, false)?;
            shed(&mut open, victim);
        }
        if tls && open.handshakes >= self.max_handshakes {
            if let Some(victim) = pick(&open.conns, true) {
                shed(&mut open, victim);
            }
        }
        let id = open.next;
        open.next += 1;
        let activity = Arc::new(Activity::new(peer, tls));
        open.conns.insert(id, Arc::clone(&activity));
        if tls {
            open.handshakes += 1;
        }
        Some(Ticket {
            registry: Arc::clone(self),
            id,
            activity,
        })
    }
}

/// Who a peer address stands for: itself for IPv4, its /64 for IPv6 (one
/// host commonly holds a whole /64).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// The connection to shed: the lowest [`Activity::shed_rank`] class, then
/// from the address with the most connections, then the oldest
/// (`handshakes`: among TLS handshakes only).
fn pick(conns: &HashMap<u64, Arc<Activity>>, handshakes: bool) -> Option<u64> {
    let mut per_peer: HashMap<IpAddr, usize> = HashMap::new();
    for a in conns.values() {
        *per_peer.entry(a.peer).or_default() += 1;
    }
    conns
        .iter()
        .filter(|(_, a)| !handshakes || a.handshaking.load(Relaxed))
        .filter_map(|(id, a)| {
            let (class, since) = a.shed_rank()?;
            let crowd = per_peer.get(&a.peer).copied().unwrap_or(0);
            Some(((class, Reverse(crowd), since), *id))
        })
        .min()
        .map(|(_, id)| id)
}

fn shed(open: &mut Open, id: u64) {
    if let Some(a) = open.conns.remove(&id) {
        if a.handshaking.swap(false, Relaxed) {
            open.handshakes -= 1;
        }
        a.shed.notify_one();
    }
}

/// One admitted connection; dropping it leaves the registry.
#[derive(Debug)]
pub(crate) struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    /// What the connection is doing.
    pub activity: Arc<Activity>,
}

impl Ticket {
    /// The TLS handshake is done: the header's clock starts.
    pub fn handshake_done(&self) {
        let mut open = self.registry.lock();
        if self.activity.handshaking.swap(false, Relaxed) {
            open.handshakes -= 1;
        }
        let now = now_ms();
        self.activity.started.store(now, Relaxed);
        self.activity.idle_since.store(now, Relaxed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if open.conns.remove(&self.id).is_some() && self.activity.handshaking.swap(false, Relaxed) {
            open.handshakes -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn registry(cap: usize, handshakes: usize) -> Arc<Registry> {
        Arc::new(Registry::new(&Limits {
            max_connections: Some(cap),
            max_tls_handshakes: Some(handshakes),
            ..Limits::default()
        }))
    }

    fn busy(t: &Ticket) {
        t.activity.requests.fetch_add(1, Relaxed);
        t.activity.in_flight.fetch_add(1, Relaxed);
    }

    #[test]
    fn the_cap_follows_the_fd_limit_within_bounds() {
        assert_eq!(default_max_connections(Some(256)), 64);
        assert_eq!(default_max_connections(Some(1024)), 448);
        assert_eq!(default_max_connections(Some(64)), MIN_CONNECTIONS);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            MAX_CONNECTIONS_CEILING
        );
        assert_eq!(default_max_connections(None), MAX_CONNECTIONS_CEILING);
    }

    #[test]
    fn at_the_cap_a_connection_without_a_request_goes_first_oldest_first() {
        let r = registry(3, 3);
        let a = r.admit(LOCAL, false).unwrap();
        busy(&a);
        std::thread::sleep(Duration::from_millis(3));
        let b = r.admit(LOCAL, false).unwrap(); // no request yet
        std::thread::sleep(Duration::from_millis(3));
        let c = r.admit(LOCAL, false).unwrap(); // no request yet, younger
        let d = r.admit(LOCAL, false).unwrap();
        assert_eq!(r.lock().conns.len(), 3);
        let open: Vec<u64> = r.lock().conns.keys().copied().collect();
        assert!(!open.contains(&b.id), "the oldest waiting one was shed");
        assert!(open.contains(&a.id) && open.contains(&c.id) && open.contains(&d.id));
        drop(b);
        assert_eq!(r.lock().conns.len(), 3);
    }

    #[test]
    fn idle_goes_before_stalled_and_busy_ones_stay() {
        let r = registry(2, 2);
        let busy_one = r.admit(LOCAL, false).unwrap();
        busy(&busy_one);
        let idle = r.admit(LOCAL, false).unwrap();
        idle.activity.requests.fetch_add(1, Relaxed);
        let _new = r.admit(LOCAL, false).unwrap();
        assert!(!r.lock().conns.contains_key(&idle.id));
        busy(&_new);
        // Both at work: the next one is refused…
        assert!(r.admit(LOCAL, false).is_none());
        // …unless one has stopped taking its response.
        busy_one.activity.stalled.store(true, Relaxed);
        assert!(r.admit(LOCAL, false).is_some());
        assert!(!r.lock().conns.contains_key(&busy_one.id));
    }

    #[test]
    fn the_address_holding_most_connections_sheds_first() {
        let r = registry(3, 3);
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        let theirs = r.admit(other, false).unwrap(); // the oldest
        let _a = r.admit(LOCAL, false).unwrap();
        let _b = r.admit(LOCAL, false).unwrap();
        let c = r.admit(LOCAL, false).unwrap();
        assert!(r.lock().conns.contains_key(&theirs.id));
        assert!(r.lock().conns.contains_key(&c.id));
        assert_eq!(r.lock().conns.len(), 3);
    }

    #[test]
    fn handshakes_have_their_own_cap() {
        let r = registry(10, 2);
        let h1 = r.admit(LOCAL, true).unwrap();
        let h2 = r.admit(LOCAL, true).unwrap();
        let h3 = r.admit(LOCAL, true).unwrap();
        assert_eq!(r.lock().handshakes, 2);
        assert!(!r.lock().conns.contains_key(&h1.id));
        h2.handshake_done();
        assert_eq!(r.lock().handshakes, 1);
        drop((h1, h2, h3));
        assert_eq!(r.lock().handshakes, 0);
        assert!(r.lock().conns.is_empty());
    }
}
