//! The one crate that imports rmcp (the official MCP Rust SDK). It adapts Rampart's
//! [`rampart_core::Pipeline`] to rmcp's `ServerHandler`, exposes the stdio and streamable
//! HTTP server transports, and wraps rmcp's client for the `rampart` CLI.
//!
//! Keeping rmcp here means SDK churn touches one crate; everything else speaks
//! `rampart-core` types.

mod client;
mod handler;
mod peer;
mod transport;
mod wire;

pub use client::{ClientError, ClientTarget, McpClient, ToolInfo};
pub use handler::{McpHandler, ServerIdentity};
pub use transport::{HttpOptions, SessionCount, serve_stdio, streamable_http_service};

/// Protocol revisions Rampart negotiates, newest first (those rmcp implements).
pub fn supported_protocol_versions() -> Vec<String> {
    let mut versions: Vec<String> =
        rmcp::model::ProtocolVersion::KNOWN_VERSIONS.iter().map(|v| v.as_str().to_owned()).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions
}
