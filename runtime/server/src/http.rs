//! Serving connections: hyper's HTTP/1 with a timer, on plain TCP or on TLS
//! alike. A connection that does not send a whole request head within
//! `server.header_timeout` — a client that connects and stays silent, a
//! slow-loris one, a keep-alive connection left idle — is closed, so silent
//! clients cannot hold the server's descriptors for ever.

use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// Accepts connections on `listener` for ever and serves `app` on each in
/// its own task.
pub(crate) async fn serve<L: Listener>(mut listener: L, app: axum::Router, header_timeout: std::time::Duration) {
    loop {
        let (io, _peer) = listener.accept().await;
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
