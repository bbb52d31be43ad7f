//! HTTPS: with `server.tls_cert` and `server.tls_key` set, the server
//! speaks TLS 1.3 and 1.2 only (rustls on ring; no plain HTTP on the same
//! port). Handshakes run beside one another, at most [`HANDSHAKES`] at once,
//! each within [`HANDSHAKE_TIMEOUT`], so a client that connects and stays
//! silent holds up no one's handshake; after it, `http.rs` closes a
//! connection that sends no request head in time, as on plain HTTP.
//!
//! 国密 TLCP (GB/T 38636) is not spoken here: a TLCP gateway terminates it
//! and forwards to this listener (docs/tls.md).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::StartError;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections whose handshake is done, waiting for the HTTP server.
const READY: usize = 64;

/// Handshakes under way at once; more connections wait to be accepted.
const HANDSHAKES: usize = 256;

fn refused(path: &Path, reason: impl Into<String>) -> StartError {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    StartError::Tls { path: shown.display().to_string(), reason: reason.into() }
}

/// The server side of TLS from a PEM certificate chain (leaf first) and its
/// PEM private key (PKCS#8, PKCS#1 or SEC1). The key is opened once, and a
/// key file that others may read or write, or that the group may write, is
/// refused, as ssh refuses one (group-readable is accepted: Debian's
/// `ssl-cert` group).
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| refused(cert, format!("is not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(refused(cert, "holds no certificate"));
    }
    // Start-up reads the key by path, as it reads the settings file.
    #[allow(clippy::disallowed_methods)]
    let mut file = std::fs::File::open(key).map_err(|e| refused(key, format!("cannot be opened ({e})")))?;
    let mode = file.metadata().map_err(|e| refused(key, format!("cannot be read ({e})")))?;
    if std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o027 != 0 {
        return Err(refused(
            key,
            "may be read or changed by others: make it readable by its owner (and group) only (chmod 600)",
        ));
    }
    let mut pem = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut pem).map_err(|e| refused(key, format!("cannot be read ({e})")))?;
    let private =
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| refused(key, format!("is not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| refused(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| refused(key, format!("does not fit the certificate ({e})")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener whose connections have finished their TLS handshake.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// Accepts TCP connections on `tcp` and shakes hands on each in its own
/// task; stops when the returned listener is dropped.
pub(crate) fn listen(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
    let local = tcp.local_addr()?;
    let (tx, ready) = mpsc::channel(READY);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
            let (stream, peer) = tokio::select! {
                () = tx.closed() => return,
                accepted = tcp.accept() => match accepted {
                    Ok(a) => a,
                    // A connection that went away before it was accepted: the next one.
                    Err(e) if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) => continue,
                    Err(e) => {
                        // Out of descriptors and the like: wait, as axum's own listener does.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    Ok(TlsListener { ready, local })
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task is gone only when the runtime is shutting down.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
