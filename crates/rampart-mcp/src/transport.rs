//! Server transports: stdio (MCP "stdio" transport) and streamable HTTP (MCP "Streamable
//! HTTP", session-based for 2025-x revisions, stateless for 2026-07-28).

use std::{sync::Arc, time::Duration};

use rmcp::{
    ServiceExt,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

use crate::McpHandler;

/// Serves MCP over stdin/stdout until the client closes stdin or `shutdown` fires.
///
/// # Errors
/// An IO error when the initialize handshake fails.
pub async fn serve_stdio(handler: McpHandler, shutdown: CancellationToken) -> std::io::Result<()> {
    let running = match pipes() {
        Some(pipes) => handler.serve_with_ct(pipes, shutdown).await,
        None => handler.serve_with_ct(rmcp::transport::stdio(), shutdown).await,
    }
    .map_err(|error| std::io::Error::other(format!("stdio handshake failed: {error}")))?;
    let reason = running.waiting().await.map_err(std::io::Error::other)?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}

/// stdin and stdout as non-blocking pipes driven by the reactor, when both are pipes (as
/// when an MCP client starts the server). `tokio::io::stdin/stdout` read and write on the
/// blocking thread pool instead: every message then crosses threads, which cost ~35 µs of
/// CPU and several context switches per call (bench/README.md, gateway overhead). Nothing
/// else in the process writes to stdout in stdio mode, so the non-blocking flag (shared by
/// the file descriptions) surprises no one. `None` (a terminal, a file): the portable way.
fn pipes() -> Option<(tokio::net::unix::pipe::Receiver, tokio::net::unix::pipe::Sender)> {
    use std::os::{fd::AsFd, unix::fs::FileTypeExt};
    // Both or neither: a lone non-blocking stdin would break the portable way.
    let fifo = |fd: std::os::fd::BorrowedFd<'_>| -> Option<std::fs::File> {
        let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        file.metadata().ok()?.file_type().is_fifo().then_some(file)
    };
    let stdin = fifo(std::io::stdin().as_fd())?;
    let stdout = fifo(std::io::stdout().as_fd())?;
    let receiver = tokio::net::unix::pipe::Receiver::from_file(stdin).ok()?;
    let sender = tokio::net::unix::pipe::Sender::from_file(stdout).ok()?;
    Some((receiver, sender))
}

/// Streamable HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `false`: no `Mcp-Session-Id`, every request served on its own (load balancers).
    /// Requests that negotiate 2026-07-28 are always stateless.
    pub sessions: bool,
    /// Largest accepted POST body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Idle time after which a session is closed.
    pub session_idle_timeout: Duration,
    /// Fired on shutdown: open SSE streams and sessions end.
    pub shutdown: CancellationToken,
}

/// The streamable HTTP endpoint as a tower `Service`, ready to be mounted at `/mcp`.
///
/// Each new session (or, stateless, each request) gets a fresh handler from
/// [`McpHandler::for_new_session`]. rmcp's own Host/Origin checks are off: the server's
/// middleware validates both before any request reaches this service (one rule, one
/// place, tested there).
pub fn streamable_http_service(
    handler: McpHandler,
    options: HttpOptions,
) -> (StreamableHttpService<McpHandler, LocalSessionManager>, SessionCount) {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(options.session_idle_timeout);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(options.sessions)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(options.shutdown);
    let sessions = Arc::new(sessions);
    let count = SessionCount(sessions.clone());
    (StreamableHttpService::new(move || Ok(handler.for_new_session()), sessions, config), count)
}

/// The number of open MCP sessions, for metrics.
#[derive(Clone)]
pub struct SessionCount(Arc<LocalSessionManager>);

impl std::fmt::Debug for SessionCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCount")
    }
}

impl SessionCount {
    /// Open sessions now.
    pub async fn get(&self) -> usize {
        self.0.sessions.read().await.len()
    }

    /// The ids of the open sessions.
    pub async fn ids(&self) -> std::collections::HashSet<String> {
        self.0.sessions.read().await.keys().map(|id| id.to_string()).collect()
    }
}
