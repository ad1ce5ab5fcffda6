//! Serving one accepted connection under the [`Limits`]: its TLS
//! handshake (when serving https), then HTTP/1.1 or HTTP/2 (hyper's auto
//! builder) with the router, watched until it ends, times out, is shed for
//! a newer connection or the server stops.
//!
//! What the watching needs is reported by three wrappers as the connection
//! runs, each a few relaxed atomic operations:
//!
//! - [`Watched`], around the socket (or TLS stream): the first byte of a
//!   request's header, writes that progress, a write that cannot;
//! - [`InFlight`], held from a request's header to the end of its response
//!   body: requests in flight, when the connection went idle;
//! - [`WatchedBody`], around each response body: data handed over and not
//!   yet taken by the connection.
//!
//! A [`watchdog`] per connection wakes every [`Limits::tick`] and closes the
//! connection past a deadline of the module docs of
//! [`limits`](super::limits). The request body's timeout needs no
//! watchdog: [`TimedBody`] fails a read that waits longer than
//! [`Limits::body_timeout`], and the handler answers or gives up.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, Version};
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::limits::{self, now_ms, Activity, Limits, Ticket};
use super::ops::{self, AccessLog, Entry, Metrics, Observed};

/// What every request reports to, or is checked by: the metrics, the
/// access log, the credentials.
#[derive(Clone, Default)]
pub(crate) struct Site {
    pub metrics: Arc<Metrics>,
    pub log: Option<AccessLog>,
    pub auth: Option<Arc<super::auth::Auth>>,
}

/// What every connection of one server shares.
pub(crate) struct Server {
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    http: auto::Builder<TokioExecutor>,
    site: Arc<Site>,
}

impl Server {
    /// Serve `router` under `limits`, over TLS when `tls` is given.
    pub fn new(
        router: Router,
        limits: Limits,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        site: Site,
    ) -> Server {
        let mut http = auto::Builder::new(TokioExecutor::new());
        // The header deadline and keep-alive are the watchdog's: hyper's
        // own header timer would also cut idle keep-alive at the same
        // deadline.
        http.http1().header_read_timeout(None).max_headers(100);
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits::H2_MAX_STREAMS)
            .max_header_list_size(limits::H2_MAX_HEADER_LIST)
            .keep_alive_interval(limits::H2_PING_INTERVAL)
            .keep_alive_timeout(limits::H2_PING_TIMEOUT);
        Server {
            router,
            limits,
            tls: tls.map(TlsAcceptor::from),
            http,
            site: Arc::new(site),
        }
    }

    /// Whether connections start with a TLS handshake.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve one connection to its end. When `shutdown` resolves, the
    /// connection finishes the requests in flight and closes.
    pub async fn serve(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        ticket: Ticket,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let _open = self.site.metrics.open_connection();
        let Some(acceptor) = &self.tls else {
            return self.drive(tcp, peer, &ticket.activity, shutdown).await;
        };
        let handshake =
            tokio::time::timeout(self.limits.tls_handshake_timeout, acceptor.accept(tcp));
        let tls = tokio::select! {
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                // Failed or too slow.
                _ => return,
            },
            _ = ticket.activity.shed() => return,
            _ = &mut shutdown => return,
        };
        ticket.handshake_done();
        self.drive(tls, peer, &ticket.activity, shutdown).await
    }

    async fn drive<I>(
        &self,
        io: I,
        peer: SocketAddr,
        activity: &Arc<Activity>,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(Watched {
            io,
            activity: Arc::clone(activity),
        });
        let service = Service {
            router: self.router.clone(),
            activity: Arc::clone(activity),
            peer,
            body_timeout: self.limits.body_timeout,
            site: Arc::clone(&self.site),
        };
        let mut conn = std::pin::pin!(self.http.serve_connection(io, service));
        let mut watchdog = std::pin::pin!(watchdog(activity, &self.limits));
        let mut draining = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = &mut watchdog => return,
                _ = activity.shed() => return,
                _ = &mut shutdown, if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves when the connection is past one of its deadlines.
async fn watchdog(a: &Activity, limits: &Limits) {
    let tick = limits.tick();
    let mut progress = a.writes.load(Relaxed) + a.taken.load(Relaxed);
    let mut stalled_since: Option<u64> = None;
    let mut flushed_at = 0;
    loop {
        tokio::time::sleep(tick).await;
        let now = now_ms();
        let seen = a.writes.load(Relaxed) + a.taken.load(Relaxed);
        let moved = seen != progress;
        progress = seen;
        // The client takes none of what is ready for it.
        let holding = a.waiting.load(Relaxed) > 0 || a.write_blocked.load(Relaxed);
        if holding && !moved {
            let since = *stalled_since.get_or_insert(now);
            a.stalled.store(true, Relaxed);
            if past(since, limits.send_timeout, now) {
                return;
            }
        } else if stalled_since.take().is_some() {
            a.stalled.store(false, Relaxed);
        }
        if a.in_flight.load(Relaxed) > 0 {
            continue;
        }
        let h2 = a.h2.load(Relaxed);
        if moved && !h2 {
            // The last response is still leaving (HTTP/2's pings would
            // count here too, so only HTTP/1's writes do).
            flushed_at = now;
        }
        let header_at = a.header_at.load(Relaxed);
        let expired = if a.requests.load(Relaxed) == 0 {
            past(a.started.load(Relaxed), limits.header_timeout, now)
        } else if !h2 && header_at != 0 {
            past(header_at, limits.header_timeout, now)
        } else {
            let idle = a.idle_since.load(Relaxed).max(flushed_at);
            past(idle, limits.keepalive_timeout, now)
        };
        if expired {
            return;
        }
    }
}

fn past(since_ms: u64, limit: Duration, now_ms: u64) -> bool {
    now_ms.saturating_sub(since_ms) >= u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
}

/// The socket (or TLS stream), reporting to the connection's [`Activity`].
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.activity.writes.fetch_add(1, Relaxed);
                self.activity.write_blocked.store(false, Relaxed);
            }
            Poll::Pending => self.activity.write_blocked.store(true, Relaxed),
            _ => {}
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let a = &self.activity;
            if a.in_flight.load(Relaxed) == 0 && a.header_at.load(Relaxed) == 0 {
                a.header_at.store(now_ms(), Relaxed);
            }
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        if r.is_pending() {
            self.activity.write_blocked.store(true, Relaxed);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router as hyper's service, each request counted in flight.
#[derive(Clone)]
struct Service {
    router: Router,
    activity: Arc<Activity>,
    peer: SocketAddr,
    body_timeout: Duration,
    site: Arc<Site>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<WatchedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<WatchedBody>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let in_flight = InFlight::start(&self.activity, req.version() == Version::HTTP_2);
        let started = std::time::Instant::now();
        let mut req = req.map(|body| TimedBody::new(body, self.body_timeout));
        // As axum's `into_make_service_with_connect_info` would.
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let site = Arc::clone(&self.site);
        let eco = ops::ecosystem(req.uri().path());
        let log = site.log.as_ref().map(|log| {
            let h = req.headers();
            let entry = Entry {
                at: std::time::SystemTime::now(),
                client: self.peer.ip(),
                user: None,
                method: req.method().clone(),
                uri: req.uri().clone(),
                version: req.version(),
                status: 0,
                bytes: 0,
                took: Duration::ZERO,
                outcome: ops::CacheOutcome::None,
                referer: h.get(axum::http::header::REFERER).cloned(),
                agent: h.get(axum::http::header::USER_AGENT).cloned(),
            };
            (log.clone(), Box::new(entry))
        });
        let mut observed = Observed {
            started,
            eco,
            status: 0,
            bytes: 0,
            log,
            metrics: Arc::clone(&site.metrics),
        };
        let mut router = self.router.clone();
        let peer = self.peer.ip();
        Box::pin(async move {
            if let Some(auth) = &site.auth {
                match auth.check(req.uri().path(), req.headers(), peer).await {
                    Ok(user) => {
                        if let Some((_, entry)) = &mut observed.log {
                            entry.user = user;
                        }
                    }
                    Err(denied) => {
                        let res = denied.response();
                        observed.status = res.status().as_u16();
                        return Ok(res.map(|body| WatchedBody::new(body, in_flight, observed)));
                    }
                }
            }
            let answer = tower_service::Service::call(&mut router, req);
            let res = if let Some((_, entry)) = &mut observed.log {
                let (res, outcome) = ops::with_outcome(answer).await;
                entry.outcome = outcome;
                res
            } else {
                answer.await
            };
            let res = res.unwrap_or_else(|never| match never {});
            observed.status = res.status().as_u16();
            Ok(res.map(|body| WatchedBody::new(body, in_flight, observed)))
        })
    }
}

/// One request, from its header to the end of its response body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: &Arc<Activity>, h2: bool) -> InFlight {
        a.requests.fetch_add(1, Relaxed);
        a.in_flight.fetch_add(1, Relaxed);
        a.header_at.store(0, Relaxed);
        if h2 {
            a.h2.store(true, Relaxed);
        }
        InFlight(Arc::clone(a))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.idle_since.store(now_ms(), Relaxed);
        }
    }
}

/// A response body, reporting whether the connection takes what it gives.
pub(crate) struct WatchedBody {
    inner: Body,
    /// Data was handed over (or the response is ready) and the connection
    /// has not asked for more since.
    waiting: bool,
    in_flight: InFlight,
    /// Counted and logged when dropped.
    observed: Observed,
}

impl WatchedBody {
    fn new(inner: Body, in_flight: InFlight, observed: Observed) -> WatchedBody {
        // A response ready and not asked for is waiting on the client too
        // (HTTP/2 asks only once the client's window allows).
        in_flight.0.waiting.fetch_add(1, Relaxed);
        WatchedBody {
            inner,
            waiting: true,
            in_flight,
            observed,
        }
    }
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let a = &this.in_flight.0;
        a.taken.fetch_add(1, Relaxed);
        if this.waiting {
            this.waiting = false;
            a.waiting.fetch_sub(1, Relaxed);
        }
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &r {
            if let Some(data) = frame.data_ref() {
                this.observed.bytes += data.len() as u64;
            }
            this.waiting = true;
            a.waiting.fetch_add(1, Relaxed);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        if self.waiting {
            self.in_flight.0.waiting.fetch_sub(1, Relaxed);
        }
    }
}

/// A request body whose reads fail after [`Limits::body_timeout`] without
/// a byte from the client.
pub(crate) struct TimedBody<B = Incoming> {
    inner: B,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl<B> TimedBody<B> {
    fn new(inner: B, timeout: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            timeout,
            timer: None,
            armed: false,
        }
    }
}

/// A request body's client went silent.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body for {} s", .0.as_secs_f32())]
pub struct BodyTimeout(Duration);

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(r.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = tokio::time::Instant::now() + this.timeout;
        let timer = match &mut this.timer {
            Some(timer) => {
                if !this.armed {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        this.armed = true;
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body whose client sends `first`, then nothing.
    struct Silent(Option<Bytes>);

    impl http_body::Body for Silent {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.0.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_silent_request_body_fails_after_the_body_timeout() {
        use http_body::Body as _;
        let timeout = Duration::from_millis(50);
        let mut body = TimedBody::new(Silent(Some(Bytes::from_static(b"abc"))), timeout);
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert_eq!(first.unwrap().unwrap().into_data().unwrap(), "abc");
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let err = next.unwrap().unwrap_err();
        assert!(err.is::<BodyTimeout>(), "{err}");
        assert!(err.to_string().contains("0.05 s"), "{err}");
    }
}
