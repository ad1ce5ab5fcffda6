//! Serving on one single-threaded event loop per core, the shape of
//! nginx's worker processes: one loop accepts, admits each new connection
//! under the connection cap ([`limits`](super::limits): at the cap an
//! older idle or stalled connection is shed, or the new one refused) and
//! hands it, round-robin, to a loop (itself included) that then does all of
//! that connection's work (`serve::conn`: TLS handshake when
//! serving https, HTTP, the timeouts). A request never wakes another
//! thread, where tokio's work-stealing runtime wakes an idle worker for new
//! work: with wrk on two cores, those wake-ups cost ~10 % of the requests
//! per second (futex calls were 11 % of the server's time).
//!
//! Stopping: [`Control::stop`] stops accepting and lets open connections
//! finish their requests; [`Control::abort`] drops them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};

use super::conn::Server;
use super::limits::{Registry, Ticket};

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const ABORTED: u8 = 2;

/// The event loops of one server.
pub struct Loops {
    state: Arc<watch::Sender<u8>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// How many loops: one per core.
fn count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One admitted connection on its way to a loop.
type Handoff = (std::net::TcpStream, SocketAddr, Ticket);

/// Serve `server` on `listener` (bound, any blocking mode) until stopped,
/// with at most `registry`'s cap of connections open.
pub(crate) fn start(
    listener: std::net::TcpListener,
    server: Arc<Server>,
    registry: Arc<Registry>,
) -> io::Result<Loops> {
    listener.set_nonblocking(true)?;
    let (state, _) = watch::channel(RUNNING);
    let state = Arc::new(state);
    let n = count();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let mut listener = Some((listener, senders, registry));
    let mut threads = Vec::with_capacity(n);
    for (k, rx) in receivers.into_iter().enumerate() {
        let acceptor = listener.take();
        let server = Arc::clone(&server);
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mirror-serve-{k}"))
            .spawn(move || -> io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    if let Some((listener, senders, registry)) = acceptor {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        let tls = server.is_tls();
                        tokio::spawn(dispatch(
                            listener,
                            senders,
                            registry,
                            tls,
                            shared.subscribe(),
                        ));
                    }
                    run_loop(rx, server, &shared).await;
                    Ok(())
                })
            });
        match thread {
            Ok(t) => threads.push(t),
            Err(e) => {
                let loops = Loops { state, threads };
                loops.control().abort();
                let _ = loops.join();
                return Err(e);
            }
        }
    }
    Ok(Loops { state, threads })
}

/// One loop: serve the connections handed to it until stopped, then let
/// them finish (until aborted).
async fn run_loop(
    mut rx: mpsc::UnboundedReceiver<Handoff>,
    server: Arc<Server>,
    state: &watch::Sender<u8>,
) {
    // Each connection holds a receiver; all dropped = all done.
    let (open_tx, open_rx) = watch::channel(());
    let mut stopping = state.subscribe();
    loop {
        let handed = tokio::select! {
            h = rx.recv() => h,
            _ = stopping.wait_for(|s| *s >= STOPPING) => break,
        };
        // The acceptor ended: nothing more will come.
        let Some((tcp, peer, ticket)) = handed else {
            let _ = stopping.wait_for(|s| *s >= STOPPING).await;
            break;
        };
        let Ok(tcp) = tokio::net::TcpStream::from_std(tcp) else {
            continue;
        };
        let server = Arc::clone(&server);
        let open = open_rx.clone();
        let mut stop = state.subscribe();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s >= STOPPING).await;
            };
            server.serve(tcp, peer, ticket, shutdown).await;
            drop(open);
        });
    }
    drop(open_rx);
    let mut aborted = state.subscribe();
    tokio::select! {
        _ = open_tx.closed() => {}
        _ = aborted.wait_for(|s| *s >= ABORTED) => {}
    }
}

impl Loops {
    /// A handle that stops or aborts the loops from anywhere.
    pub fn control(&self) -> Control {
        Control(Arc::clone(&self.state))
    }

    /// Wait for every loop to end; the first error, if any.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a server loop panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Stops or aborts [`Loops`] from anywhere.
#[derive(Clone)]
pub struct Control(Arc<watch::Sender<u8>>);

impl Control {
    /// Stop accepting; open connections finish their requests.
    pub fn stop(&self) {
        self.0.send_if_modified(|s| {
            let was = *s;
            *s = (*s).max(STOPPING);
            *s != was
        });
    }

    /// Drop open connections.
    pub fn abort(&self) {
        self.0.send_replace(ABORTED);
    }
}

/// Accept, admit and hand connections round-robin to the loops, until
/// stopped.
async fn dispatch(
    listener: tokio::net::TcpListener,
    loops: Vec<mpsc::UnboundedSender<Handoff>>,
    registry: Arc<Registry>,
    tls: bool,
    mut state: watch::Receiver<u8>,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = state.wait_for(|s| *s >= STOPPING) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(_) => {
                // Out of file descriptors and the like: back off.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(ticket) = registry.admit(peer.ip(), tls) else {
            // Every open connection is at work for a client that keeps up.
            if !tls {
                let _ = tcp.try_write(REFUSED);
            }
            continue;
        };
        // Without TCP_NODELAY a response written as headers then body
        // waits on the client's delayed ACK (Nagle): ~40 ms per small file.
        let _ = tcp.set_nodelay(true);
        // Leaves this loop's reactor; the receiving loop registers it.
        let Ok(tcp) = tcp.into_std() else { continue };
        if loops[next % loops.len()].send((tcp, peer, ticket)).is_err() {
            return;
        }
        next = next.wrapping_add(1);
    }
}

/// The answer to a connection refused at the cap.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\n\r\n\
503 too many connections, try again\n";
