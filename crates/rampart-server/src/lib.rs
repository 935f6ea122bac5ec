//! Rampart's composition root: turns a validated [`rampart_config::Config`] into a running
//! server. It builds the one [`rampart_core::Pipeline`] from the enabled toolboxes, wires
//! authentication, and serves it over stdio or streamable HTTP (axum), with graceful
//! shutdown on SIGINT/SIGTERM.

mod auth;
mod error;
mod guard;
mod http;
mod jsonrpc;
mod run;
mod setup;

pub use error::ServerError;
pub use http::{AppState, router};
pub use run::{Running, serve, start_http};
pub use setup::{Built, KNOWN_TOOLBOXES, build};
