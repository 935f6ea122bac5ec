//! End-to-end tests: the real `rampart` binary, driven by real MCP clients (rmcp through
//! `rampart_mcp::McpClient`, the official Python SDK, the MCP Inspector CLI) and by raw
//! HTTP for malformed input. One test binary for the crate, as builds are slow.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod support;

mod audit_checkpoints;
mod bad_input;
mod business_apis;
mod chat;
mod cli;
mod cluster;
mod console;
mod dbus;
mod exec;
mod fs;
mod gateway;
mod http;
mod jwt;
mod legacy_sse;
mod limits;
mod live_catalog;
mod one_way_in;
mod real_clients;
mod rendered;
mod replicas;
mod security;
mod shell;
mod shutdown;
mod sql;
mod stdio;
mod tasks;
mod telemetry;
mod tls;
mod websocket;
