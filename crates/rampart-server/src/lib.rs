//! Rampart's composition root: turns a validated [`rampart_config::Config`] into a running
//! server. It builds the one [`rampart_core::Pipeline`] from the enabled toolboxes, wires
//! authentication, and serves it over stdio, streamable HTTP (axum; also WebSocket and the
//! legacy HTTP+SSE transport) or D-Bus, with graceful shutdown on SIGINT/SIGTERM.
//!
//! - [`validate`]: everything checkable before serving (`rampart config check`); returns
//!   what is configured but unused.
//! - [`build`] → [`Built`]: store, policy, audit log, [`SecurityGuard`], [`TokenService`],
//!   the toolboxes (built-in, `[upstreams.NAME]`, and a program's [`ToolboxFactory`]s), the
//!   pipeline, the [`Reloader`].
//! - [`serve`]: build, then serve until SIGINT/SIGTERM (HTTP) or the end of stdin; SIGHUP
//!   reloads. [`start_http`] → [`Running`] for tests.
//! - [`router`]/[`AppState`]: the axum router and its layers; [`LocalAdmin`]: the pipeline
//!   `rampart token …` calls through; [`StoreSink`]: the audit sink over the store;
//!   [`verify_audit_log`]: the audit log checked against its chains, stored columns and
//!   signed checkpoints (`rampart audit verify` and the console's Audit page).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use rampart_config::{LoadOptions, load};
//!
//! let options = LoadOptions { dotenv: true, ..LoadOptions::default() };
//! let loaded = load(options.clone())?;
//! for warning in rampart_server::validate(&loaded.config, &[])? {
//!     eprintln!("warning: {warning}");
//! }
//! // Serves until SIGINT/SIGTERM (HTTP) or the end of stdin (stdio); SIGHUP reloads.
//! rampart_server::serve(loaded.config, options, Vec::new()).await?;
//! # Ok(()) }
//! ```

mod admin;
mod audit_store;
mod audit_verify;
mod auth;
mod cluster;
mod coalesce;
mod console;
mod dbus;
mod error;
mod guard;
mod http;
mod jsonrpc;
mod jwt;
mod legacy_sse;
mod limits;
mod listener;
mod metrics;
mod proxies;
mod refusal;
mod registry;
mod reload;
mod run;
mod security;
mod sessions;
mod setup;
mod tls;
mod tokens;
mod upstreams;
mod websocket;

pub use audit_store::{ColumnMismatch, RowProblem, StoreSink, check_columns, push_row, record_from_row};
pub use audit_verify::{
    AuditSource, AuditVerification, AuditVerifyError, ChainVerified, CheckpointCheck, CheckpointFiles, VerifyProblem,
    audit_chains, verify_audit_log,
};
pub use auth::Credentials;
pub use cluster::{Cluster, Event as ClusterEvent, Verdict};
pub use error::ServerError;
pub use http::{AppState, MetricsSource, ResponsesInFlight, is_traced_request_span, metrics_router, router};
pub use jwt::{JwtConfigError, JwtVerifier};
pub use limits::Limits;
pub use metrics::Metrics;
pub use registry::ToolboxFactory;
pub use reload::{ReloadError, ReloadReport, Reloader};
pub use run::{Running, serve, start_http};
pub use security::{GuardState, SecurityGuard};
pub use setup::{Built, LocalAdmin, build, build_policy, open_store, stdio_principal, validate};
pub use tls::{ClientIdentity, TlsError};
pub use tokens::{CreatedToken, TokenError, TokenInfo, TokenService, parse_duration};
