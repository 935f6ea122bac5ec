//! The accept loop: TCP (with `TCP_NODELAY`) → hyper HTTP/1.1 with a header-read timeout
//! (slow clients cannot hold connections open by trickling headers) → the axum app, with
//! the remote address in each request's extensions; graceful shutdown of every
//! connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::tls::ClientIdentity;
use tokio_util::sync::CancellationToken;

use crate::proxies::TrustedProxies;
use tower::ServiceExt;

/// Serves `app` on `listener` until `stop`, then waits for open connections to finish
/// (the caller bounds that wait). With `tls`, each connection is a TLS 1.3 handshake first
/// (bounded by the header-read timeout), and a verified client certificate's identity is
/// put in each request's extensions.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    proxies: Arc<TrustedProxies>,
) {
    // Each connection holds a clone of `alive`; once they are all dropped, `gone` ends.
    let (alive, mut gone) = tokio::sync::mpsc::channel::<()>(1);
    let graceful = Graceful { stop: stop.clone(), alive };
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Nagle's algorithm delays each small SSE frame by ~40 ms; MCP is latency-bound.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let Some(tls) = tls.clone() else {
            let service = request_service(app, remote, None, proxies.clone());
            spawn_connection(&graceful, TokioIo::new(stream), service, header_read_timeout, remote);
            continue;
        };
        let watcher = graceful.clone();
        let proxies = proxies.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(header_read_timeout, tls.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::info!(%error, %remote, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let identity =
                stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).map(crate::tls::identity);
            let service = request_service(app, remote, identity, proxies);
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            watcher.drive(connection, remote).await;
        });
    }
    drop(graceful);
    let _ = gone.recv().await;
}

/// Connections that finish their request in flight and close once `stop` fires.
#[derive(Clone)]
struct Graceful {
    stop: CancellationToken,
    alive: tokio::sync::mpsc::Sender<()>,
}

impl Graceful {
    /// Runs `connection` (HTTP/1.1 with upgrades, for WebSocket) to its end; when `stop`
    /// fires first, lets it finish what it is answering, then closes it. (hyper-util's
    /// `GracefulShutdown` does not take upgradeable connections.)
    async fn drive<I, S, B>(self, connection: http1::UpgradeableConnection<I, S>, remote: SocketAddr)
    where
        S: hyper::service::HttpService<Incoming, ResBody = B>,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        B: hyper::body::Body + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut connection = std::pin::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, %remote, "connection ended with an error");
        }
        drop(self.alive);
    }
}

/// The per-connection service: the app, with the client's address (the peer's, or the
/// one a trusted proxy forwarded: [`TrustedProxies`]) and the client certificate's
/// identity in each request's extensions.
fn request_service(
    app: Router,
    remote: SocketAddr,
    identity: Option<ClientIdentity>,
    proxies: Arc<TrustedProxies>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    service_fn(move |mut request: hyper::Request<Incoming>| {
        let forwarded = request.headers().get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
        let client = proxies.client(remote, forwarded);
        request.extensions_mut().insert(ConnectInfo::<SocketAddr>(client));
        if let Some(identity) = &identity {
            request.extensions_mut().insert(identity.clone());
        }
        app.clone().oneshot(request.map(Body::new))
    })
}

fn spawn_connection<S>(
    graceful: &Graceful,
    io: TokioIo<tokio::net::TcpStream>,
    service: S,
    header_read_timeout: Duration,
    remote: SocketAddr,
) where
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::spawn(graceful.clone().drive(connection, remote));
}
