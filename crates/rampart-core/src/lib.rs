//! Rampart's domain: what a tool is, what a call returns, who is calling, and the one
//! call pipeline every tool call goes through.
//!
//! This crate does no IO and knows nothing of MCP's wire format or of rmcp: transports
//! (`rampart-mcp`) translate to and from these types, toolboxes (`rampart-tools`, user
//! crates, the gateway) implement [`Toolbox`], and the server (`rampart-server`) builds one
//! [`Pipeline`] that every transport calls into.
//!
//! - What a tool is and returns: [`ToolSpec`], [`ToolOutput`], [`ToolError`]; tools
//!   declared as functions with typed arguments and results: [`ToolRouter`],
//!   [`Structured`], [`NoArguments`].
//! - Who calls: [`Caller`] and its [`Principal`]; what they attempt: [`Request`] (a tool,
//!   resource, prompt or typed scope) with [`Access`]; who decides: the [`Guard`]
//!   (policy, limits, audit), asked by the pipeline and by a tool through
//!   [`CallContext::authorize`].
//! - What a running tool reaches: [`CallContext`] (cancellation, progress, logs,
//!   server-to-client requests through a [`ClientPeer`]).
//! - What is served: the [`Catalog`], collected from every toolbox and swapped whole; a
//!   toolbox tells it of changes through [`CatalogChanges`].

mod caller;
mod catalog;
mod content;
mod context;
mod guard;
mod pipeline;
mod prompt;
mod request;
mod resource;
mod router;
mod tool;

pub use caller::{Caller, Principal, PrincipalKind, Transport};
pub use catalog::{Catalog, CatalogChanges, DuplicateName};
pub use content::{Content, ResourceContents};
pub use context::{CallContext, ClientPeer, LogLevel, NullPeer, PeerError};
#[cfg(any(test, feature = "test-support"))]
pub use guard::OpenGuard;
pub use guard::{Admission, CallRecord, Decision, Denied, Guard, Outcome, Refusal};
pub use pipeline::{CallError, CatalogUpdate, Pipeline, PipelineBuilder};
pub use prompt::{PromptArgument, PromptMessage, PromptOutput, PromptRole, PromptSpec};
pub use request::{Access, Request};
pub use resource::{ResourceSpec, ResourceTemplateSpec};
pub use router::{IntoToolOutput, NoArguments, Routes, Structured, ToolFn, ToolRouter, pretty};
pub use tool::{
    CompletionRef, ServiceStatus, TaskSupport, ToolAnnotations, ToolError, ToolOutput, ToolSpec, Toolbox,
    input_schema_for, output_schema_for, parse_arguments,
};

/// The `tracing` target of the spans made for distributed tracing: the pipeline's span
/// of a call, the tool's run within it, and the toolboxes' spans around what they call
/// (an upstream MCP server, a database, an HTTP API). Only an OpenTelemetry layer
/// (`[telemetry]`) enables this target; the log layer leaves it out, so without one these
/// spans are disabled where they are made and cost nothing (no field is formatted).
pub const TRACE_TARGET: &str = "rampart::trace";

/// Rampart's version, as reported by `system_about`, `/healthz` and the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
