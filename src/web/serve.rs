//! The accept loop: hyper driven directly, because `axum::serve` runs it without a timer, and
//! without one hyper has no header read timeout. The shared layer's request timeout starts only once a
//! request's head is in, so a client that sends half a header line (or nothing) and waits
//! would hold its connection, and a task, forever; enough of them exhaust the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client may take to send a request head, and how many connections may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Once the listener closes, how long open connections get to finish their requests;
    /// then they are dropped.
    pub finish_within: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every open connection
/// finish its request in flight. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    // HTTP/1 only, as `axum::serve` spoke it (axum is built without HTTP/2). hyper's own
    // HTTP/1 builder rather than hyper-util's automatic one: that one first sniffs the
    // protocol version, with no timer, so a client that sent nothing would never reach the
    // header read timeout. This one starts the timer as soon as it waits for a head, on a
    // fresh connection and between keep-alive requests.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // A permit per open connection: past the cap, connections wait in the listen backlog
    // instead of each costing a task and buffers.
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.finish_within, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = limits.finish_within.as_secs(),
            "requests still running at the shutdown deadline are cut off"
        );
    }
}

/// A failed accept. A connection the peer reset before it was accepted is nothing; anything
/// else (out of file descriptors, most often) is logged, and accepting pauses for a moment
/// instead of spinning on the same error.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
