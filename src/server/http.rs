//! The accept loop: hyper's HTTP/1 connections with the limits
//! `axum::serve` has no knobs for. Each connection must deliver a request's
//! head within `header_timeout` of being ready for one (hyper starts that
//! clock when the connection opens and again after each response, so it
//! bounds a client that trickles headers and an idle keep-alive connection
//! alike); at most `max_connections` are open at once (beyond that, new
//! clients wait in the listen backlog until a slot frees). On shutdown the
//! listener closes, idle connections close at once, and requests in flight
//! finish before `serve` returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::Config;

/// How long and how many: the server's limits on client connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request's head (request line and headers) must arrive within this
    /// of the connection being ready for it; an idle keep-alive connection
    /// is closed after it too.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Limits {
    /// The most connections `max_connections` may ask for (the config
    /// refuses more).
    pub const MAX_CONNECTIONS: usize = crate::config::MAX_HTTP_CONNECTIONS;

    pub fn of(config: &Config) -> Limits {
        Limits {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then let open
/// requests finish. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots_total = limits.max_connections.clamp(1, Limits::MAX_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(slots_total));
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        // A slot before accepting: over the cap, clients queue in the kernel.
        let slot = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the slot semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop_requested(stopping) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection hands its slot back when it ends: all back, all done.
    let _ = slots.acquire_many(slots_total as u32).await;
    Ok(())
}

async fn stop_requested(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// A failed accept: a connection reset before we took it is nothing; out of
/// file descriptors (or similar) is worth a log line and a pause, so the
/// loop does not spin while connections close.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(500)).await;
}
