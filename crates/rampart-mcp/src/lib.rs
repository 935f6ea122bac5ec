//! The one crate that imports rmcp (the official MCP Rust SDK). It adapts Rampart's
//! [`rampart_core::Pipeline`] to rmcp's `ServerHandler`, exposes the stdio and streamable
//! HTTP server transports, and wraps rmcp's client for the `rampart` CLI.
//!
//! Keeping rmcp here means SDK churn touches one crate; everything else speaks
//! `rampart-core` types.

mod channel;
mod client;
mod explain;
mod handler;
mod legacy_sse;
mod legacy_sse_server;
mod peer;
mod session;
mod tasks;
mod transport;
mod websocket_client;
mod wire;

pub use channel::{ChannelSession, spawn_session};
pub use client::{
    ClientError, ClientEvents, ClientTarget, ConnectOptions, McpClient, SAFE_INHERITED_ENV, ServerNotice, ToolInfo,
};
pub use handler::{McpHandler, ServerIdentity};
pub use legacy_sse_server::{Delivery, LegacySse, SseOptions};
pub use session::{BoundSession, SessionCheck, SessionOwner, SessionOwners};
pub use tasks::TaskSettings;
pub use transport::{HttpOptions, SessionCount, serve_stdio, streamable_http_service};

use rampart_core::Caller;

tokio::task_local! {
    /// The caller of the HTTP request being handled, for rmcp's synchronous hooks.
    static CALLER: Caller;
}

/// Runs `future` (the rest of an HTTP request's handling) with `caller` as the caller that
/// rmcp's synchronous hooks see: `get_tool`, which rmcp asks for a tool's schema to check
/// SEP-2243 `Mcp-Param-*` headers before the call, answers only for tools `caller` may see.
pub async fn with_caller<F: std::future::Future>(caller: Caller, future: F) -> F::Output {
    CALLER.scope(caller, future).await
}

/// The caller set by [`with_caller`] for the task running now, if any.
pub(crate) fn current_caller() -> Option<Caller> {
    CALLER.try_with(Clone::clone).ok()
}

/// Protocol revisions Rampart negotiates, newest first (those rmcp implements).
pub fn supported_protocol_versions() -> Vec<String> {
    let mut versions: Vec<String> =
        rmcp::model::ProtocolVersion::KNOWN_VERSIONS.iter().map(|v| v.as_str().to_owned()).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions
}
