//! What a running tool can reach besides its arguments: the caller, cancellation, and the
//! client peer for progress and log notifications and for server-to-client requests
//! (sampling, elicitation).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Caller, Denied, Guard, Request};

/// Syslog severities used by MCP logging (MCP 2025-11-25 "Logging", RFC 5424 §6.2.1),
/// least severe first so that `level >= minimum` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Debug detail.
    Debug,
    /// Informational.
    Info,
    /// Normal but significant.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
    /// Action must be taken.
    Alert,
    /// System unusable.
    Emergency,
}

/// Why a request to the client failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The transport cannot carry server-to-client requests (e.g. stateless HTTP, or no
    /// client at all in the CLI).
    #[error("the client connection cannot carry this request")]
    Unsupported,
    /// The client answered with a JSON-RPC error.
    #[error("the client refused: {0}")]
    Refused(String),
    /// The connection failed.
    #[error("transport error: {0}")]
    Transport(String),
}

/// The client side of the connection, as a tool sees it. Implemented by `rampart-mcp`
/// over rmcp's peer; [`NullPeer`] where there is no client.
#[async_trait]
pub trait ClientPeer: Send + Sync {
    /// Sends `notifications/progress` for `token`.
    async fn notify_progress(&self, token: &Value, progress: f64, total: Option<f64>, message: Option<String>);

    /// Sends `notifications/message` when `level` passes the client's `logging/setLevel`.
    async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value);

    /// Sends a server-to-client request such as `sampling/createMessage` or
    /// `elicitation/create` and returns the client's result object.
    ///
    /// # Errors
    /// [`PeerError`] when the transport cannot carry it or the client refuses.
    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError>;

    /// Sends `notifications/resources/updated` for `uri`, a resource the session
    /// subscribed to (MCP 2025-11-25 "Subscriptions"). Does nothing where there is no
    /// session to tell.
    async fn notify_resource_updated(&self, _uri: &str) {}
}

/// A peer that drops notifications and refuses requests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullPeer;

#[async_trait]
impl ClientPeer for NullPeer {
    async fn notify_progress(&self, _: &Value, _: f64, _: Option<f64>, _: Option<String>) {}
    async fn log(&self, _: LogLevel, _: Option<&str>, _: Value) {}
    async fn request(&self, _: &str, _: Value) -> Result<Value, PeerError> {
        Err(PeerError::Unsupported)
    }
}

/// The context of one call: who calls, its cancellation, and the client peer.
#[derive(Clone)]
pub struct CallContext {
    /// Who is calling.
    pub caller: Caller,
    /// The JSON-RPC request id, for logs and audit.
    pub request_id: Option<String>,
    /// The task this call runs as (the tasks extension, SEP-2663), for audit; `None`
    /// for a call answered in its own response.
    pub task: Option<String>,
    /// The distributed trace the call is part of (32 lower-case hex digits, W3C Trace
    /// Context), for audit: set by the transport when spans are exported, from the span it
    /// made for the request (which continues a caller's `traceparent`, or starts a trace).
    pub trace_id: Option<String>,
    /// Cancelled when the client sends `notifications/cancelled` or disconnects.
    pub cancellation: CancellationToken,
    progress_token: Option<Value>,
    peer: Arc<dyn ClientPeer>,
    guard: Arc<dyn Guard>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("caller", &self.caller)
            .field("request_id", &self.request_id)
            .field("task", &self.task)
            .field("trace_id", &self.trace_id)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// A context for `caller` talking through `peer`, whose permissions `guard` decides
    /// (the pipeline puts its own guard in the context it hands a toolbox).
    pub fn new(caller: Caller, peer: Arc<dyn ClientPeer>, guard: Arc<dyn Guard>) -> Self {
        Self {
            caller,
            request_id: None,
            task: None,
            trace_id: None,
            cancellation: CancellationToken::new(),
            progress_token: None,
            peer,
            guard,
        }
    }

    /// A context with no client (the local CLI, tests).
    pub fn detached(caller: Caller, guard: Arc<dyn Guard>) -> Self {
        Self::new(caller, Arc::new(NullPeer), guard)
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the id of the trace the call is part of (see [`CallContext::trace_id`]).
    pub fn with_trace_id(mut self, id: Option<String>) -> Self {
        self.trace_id = id;
        self
    }

    /// Marks this call as running as task `id`.
    pub fn with_task(mut self, id: impl Into<String>) -> Self {
        self.task = Some(id.into());
        self
    }

    /// Replaces the client peer (a task routes the call's requests through
    /// `tasks/get` and `tasks/update` instead of the request's stream).
    pub fn with_peer(mut self, peer: Arc<dyn ClientPeer>) -> Self {
        self.peer = peer;
        self
    }

    /// Sets the cancellation token.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancellation = token;
        self
    }

    /// Sets the request's `_meta.progressToken`.
    pub fn with_progress_token(mut self, token: Option<Value>) -> Self {
        self.progress_token = token;
        self
    }

    /// Sets the guard that [`CallContext::authorize`] asks (the pipeline does this).
    pub fn with_guard(mut self, guard: Arc<dyn Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// Asks the policy whether the caller may make `request`. Toolboxes call this before
    /// every access to a typed scope (path, command, database, API), e.g.
    /// `context.authorize(&Request::fs(path, Access::Read))?`.
    ///
    /// # Errors
    /// [`Denied`] naming the missing permission; return it as
    /// [`crate::ToolError::Denied`].
    pub fn authorize(&self, request: &Request<'_>) -> Result<(), Denied> {
        self.guard.authorize(&self.caller, request)
    }

    /// Reports progress when the client asked for it (a `progressToken` in `_meta`);
    /// otherwise does nothing.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(token) = &self.progress_token {
            self.peer.notify_progress(token, progress, total, message).await;
        }
    }

    /// Sends a log notification to the client (filtered by its `logging/setLevel`).
    pub async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        self.peer.log(level, logger, data).await;
    }

    /// Sends a server-to-client request (sampling, elicitation, roots).
    ///
    /// # Errors
    /// [`PeerError`].
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        self.peer.request(method, params).await
    }

    /// The request's `_meta.progressToken`, when the client asked for progress.
    pub fn progress_token(&self) -> Option<&Value> {
        self.progress_token.as_ref()
    }

    /// The client peer, for a toolbox that must reach the session later (an upstream's
    /// `resources/updated` for a subscription made in this call).
    pub fn peer(&self) -> Arc<dyn ClientPeer> {
        self.peer.clone()
    }

    /// Whether the client has cancelled this call.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }
}
