//! Plain-http serving on one single-threaded event loop per core, the
//! shape of nginx's worker processes: one loop accepts and hands each new
//! connection, round-robin, to a loop (itself included) that then does all
//! of that connection's work. A request never wakes another thread, where
//! tokio's work-stealing runtime wakes an idle worker for new work: with
//! wrk on two cores, those wake-ups cost ~10 % of the requests per second
//! (futex calls were 11 % of the server's time).
//!
//! Stopping: [`Control::stop`] stops accepting and lets open connections
//! finish; [`Control::abort`] drops them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::{mpsc, watch};

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

/// Serve `router` on `listener` (bound, any blocking mode) until stopped.
pub fn start(listener: std::net::TcpListener, router: Router) -> io::Result<Loops> {
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (state, _) = watch::channel(RUNNING);
    let state = Arc::new(state);
    let n = count();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let mut listener = Some((listener, senders));
    let mut threads = Vec::with_capacity(n);
    for (k, rx) in receivers.into_iter().enumerate() {
        let acceptor = listener.take();
        let router = router.clone();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mirror-serve-{k}"))
            .spawn(move || -> io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    if let Some((listener, senders)) = acceptor {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        tokio::spawn(dispatch(listener, senders, shared.subscribe()));
                    }
                    let mut stopping = shared.subscribe();
                    let mut aborted = shared.subscribe();
                    let serve = axum::serve(Handoff { rx, local }, super::with_peer(router))
                        .with_graceful_shutdown(async move {
                            let _ = stopping.wait_for(|s| *s >= STOPPING).await;
                        });
                    tokio::select! {
                        r = serve => r,
                        _ = aborted.wait_for(|s| *s >= ABORTED) => Ok(()),
                    }
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

/// Accept and hand connections round-robin to the loops, until stopped.
async fn dispatch(
    listener: tokio::net::TcpListener,
    loops: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    mut state: watch::Receiver<u8>,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = state.wait_for(|s| *s >= STOPPING) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of file descriptors and the like: back off.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without TCP_NODELAY a response written as headers then body
        // waits on the client's delayed ACK (Nagle): ~40 ms per small file.
        let _ = tcp.set_nodelay(true);
        // Leaves this loop's reactor; the receiving loop registers it.
        let Ok(tcp) = tcp.into_std() else { continue };
        if loops[next % loops.len()].send(tcp).is_err() {
            return;
        }
        next = next.wrapping_add(1);
    }
}

/// One loop's listener: the connections [`dispatch`] hands it.
pub(crate) struct Handoff {
    rx: mpsc::UnboundedReceiver<std::net::TcpStream>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handoff {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(tcp) = self.rx.recv().await else {
                // The acceptor ended: nothing more will come.
                return std::future::pending().await;
            };
            let Ok(tcp) = tokio::net::TcpStream::from_std(tcp) else {
                continue;
            };
            let Ok(peer) = tcp.peer_addr() else { continue };
            return (tcp, peer);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
