//! The HTTP server both services run, in place of `axum::serve`, which sets no timer (so no
//! client is ever timed out), bounds no connections and retries a failed accept at once. Here:
//!
//! - a connection has [`HttpTuning::header_read_timeout_ms`] to send a request's head, and
//!   the same to send the next one on a kept-alive connection (hyper's header-read timer
//!   starts whenever the connection waits for a head), so slow and idle clients are closed;
//! - at most [`HttpTuning::max_connections`] are open: the next is accepted once one closes;
//! - an accept that fails for want of resources (too many open files, no buffers) is tried
//!   again after a wait that doubles up to a second, as mini-redis does, instead of spinning;
//! - a request head larger than [`HttpTuning::max_header_bytes`] is refused (431).
//!
//! On shutdown it stops accepting and lets the requests under way finish, as `axum::serve`
//! with graceful shutdown does.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// The longest wait before accepting again after a failed accept.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How the HTTP server defends itself (the settings section `http`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpTuning {
    /// How long a client may take to send a request's head, and how long a kept-alive
    /// connection may wait for the next one.
    pub header_read_timeout_ms: u64,
    /// Connections open at once; more wait in the listen backlog. Each costs its buffers
    /// (about 20 kB), which the allocator keeps after a flood: 256 keeps a flood of 10,000
    /// slow clients within 2× the idle memory (BENCHMARKS.md), and is far more than a load
    /// balancer or `wrk -c50` opens.
    pub max_connections: usize,
    /// The largest request head (request line and headers).
    pub max_header_bytes: usize,
}

impl Default for HttpTuning {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            max_connections: 256,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the requests under
/// way.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tuning: &HttpTuning,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(tuning.header_read_timeout_ms.max(1)))
        .max_buf_size(tuning.max_header_bytes.max(8 * 1024));
    let permits = Arc::new(Semaphore::new(tuning.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(error) if is_per_connection(&error) => {
                debug!(%error, "a connection failed before it was accepted");
                continue;
            }
            Err(error) => {
                if backoff.is_zero() {
                    warn!(%error, "cannot accept connections; trying again with backoff");
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(1), ACCEPT_BACKOFF_MAX);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection.await {
                debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one connection that failed before it was accepted: accepting goes on at once.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
