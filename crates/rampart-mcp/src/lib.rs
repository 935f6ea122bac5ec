//! The one crate that imports rmcp (the official MCP Rust SDK). It adapts Rampart's
//! [`rampart_core::Pipeline`] to rmcp's `ServerHandler`, exposes the stdio and streamable
//! HTTP server transports, and wraps rmcp's client for the `rampart` CLI.
//!
//! Keeping rmcp here means SDK churn touches one crate; everything else speaks
//! `rampart-core` types.
//!
//! The server side:
//!
//! - [`McpHandler`]: rmcp's `ServerHandler` over one [`rampart_core::Pipeline`]; every
//!   request becomes a [`rampart_core::CallContext`] and a pipeline call, and a
//!   [`rampart_core::CallError`] becomes a JSON-RPC error in one place. [`ServerIdentity`]
//!   is its `serverInfo`, [`TaskSettings`] how tool calls run as tasks (SEP-2663).
//! - Transports: [`serve_stdio`] (MCP "stdio"), [`streamable_http_service`] (MCP
//!   "Streamable HTTP", a tower service to mount at `/mcp`, with [`HttpOptions`]),
//!   [`LegacySse`] (the HTTP+SSE transport of MCP 2024-11-05) and [`spawn_session`] for
//!   transports the server frames itself (WebSocket, D-Bus).
//! - Sessions: [`SessionOwners`] binds each session id to the principal that opened it;
//!   [`BoundSession`], put in a request's extensions by the HTTP layer, is the only source
//!   of a request's session id.
//!
//! Tracing: [`trace`] continues a caller's W3C trace (`traceparent` in `_meta` or an HTTP
//! header) in each request's span, and passes the current one on to what Rampart calls.
//!
//! The client side: [`McpClient`] connects to any MCP server ([`ClientTarget`]: a URL, a
//! command run as a child in its own process group, or an rmcp server in this process,
//! [`InProcessServer`]) and calls it; [`ConnectOptions`] sets headers, the child's
//! environment ([`SAFE_INHERITED_ENV`] only, when asked) and where the server's own
//! notifications and requests go ([`ClientEvents`], or queued as [`ServerNotice`]s). The
//! `rampart` command's client and the gateway both use it.
//!
//! Serving a pipeline on stdio (building one, with its guard, is `rampart-server`'s job):
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use rampart_core::{Pipeline, Transport};
//! use rampart_mcp::{McpHandler, ServerIdentity, serve_stdio};
//! use tokio_util::sync::CancellationToken;
//!
//! async fn serve(pipeline: Arc<Pipeline>) -> std::io::Result<()> {
//!     let identity = ServerIdentity { name: "my-tools".into(), version: "0.1.0".into(), instructions: None };
//!     let handler = McpHandler::new(pipeline, identity, Transport::Stdio);
//!     // Returns when the client closes stdin, or when the token is cancelled.
//!     serve_stdio(handler, CancellationToken::new()).await
//! }
//! ```
//!
//! Calling a tool on a running server, e.g. from a toolbox's end-to-end test:
//!
//! ```no_run
//! use rampart_mcp::{ClientTarget, McpClient};
//!
//! # async fn example() -> Result<(), rampart_mcp::ClientError> {
//! let target = ClientTarget::Http {
//!     url: "http://127.0.0.1:8080/mcp".into(),
//!     token: std::env::var("RAMPART_TOKEN").ok(), // sent as `Authorization: Bearer …`
//! };
//! let client = McpClient::connect(&target).await?;
//! for tool in client.list_tools().await? {
//!     println!("{}: {}", tool.name, tool.description);
//! }
//! let mut arguments = serde_json::Map::new();
//! arguments.insert("timezone".into(), "Europe/Paris".into());
//! // The `CallToolResult` as JSON: `content`, `structuredContent`, `isError`.
//! let result = client.call_tool("get_current_time", arguments).await?;
//! println!("{}", result["structuredContent"]);
//! client.close().await;
//! # Ok(()) }
//! ```

mod channel;
mod client;
mod explain;
mod handler;
mod legacy_sse;
mod legacy_sse_server;
mod peer;
mod session;
mod tasks;
pub mod trace;
mod transport;
mod websocket_client;
mod wire;

pub use channel::{ChannelSession, spawn_session};
pub use client::{
    ClientError, ClientEvents, ClientTarget, ConnectOptions, InProcessServer, McpClient, SAFE_INHERITED_ENV,
    ServerNotice, ToolInfo,
};
pub use handler::{McpHandler, ServerIdentity};
pub use legacy_sse_server::{Delivery, LegacySse, SseOptions};
/// The rmcp version Rampart speaks MCP with, for programs that mount their own rmcp servers
/// in-process ([`InProcessServer`]).
pub use rmcp;
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
