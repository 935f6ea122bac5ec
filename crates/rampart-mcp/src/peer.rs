//! [`ClientPeer`] over rmcp's server-side peer: progress and log notifications, and
//! server-to-client requests (sampling, elicitation, roots).
#![expect(
    deprecated,
    reason = "logging notifications are deprecated by SEP-2577 for 2026-07-28 but serve clients of 2025-x revisions"
)]

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use async_trait::async_trait;
use rampart_core::{ClientPeer, LogLevel, PeerError};
use rmcp::{
    RoleServer,
    model::{
        ClientCapabilities, LoggingMessageNotificationParam, ProgressNotificationParam,
        ResourceUpdatedNotificationParam, ServerRequest,
    },
    service::{Peer, ServiceError},
};
use serde_json::{Value, json};

use crate::wire::from_json;

/// The minimum level a client asked for with `logging/setLevel`, shared by one session.
#[derive(Debug, Clone)]
pub(crate) struct LogThreshold(Arc<AtomicU8>);

impl LogThreshold {
    /// Until the client says otherwise, send `info` and above.
    pub(crate) fn new() -> Self {
        Self(Arc::new(AtomicU8::new(LogLevel::Info as u8)))
    }

    pub(crate) fn set(&self, level: LogLevel) {
        self.0.store(level as u8, Ordering::Relaxed);
    }

    fn allows(&self, level: LogLevel) -> bool {
        level as u8 >= self.0.load(Ordering::Relaxed)
    }
}

/// Whether `capabilities` (none known: nothing declared) declare what server-to-client
/// request `method` needs (MCP "Capability Negotiation": `roots`, `sampling`,
/// `elicitation`); `None` for a method that needs no capability.
pub(crate) fn declares(capabilities: Option<&ClientCapabilities>, method: &str) -> Option<bool> {
    let declared = |field: fn(&ClientCapabilities) -> bool| capabilities.is_some_and(field);
    match method {
        "roots/list" => Some(declared(|caps| caps.roots.is_some())),
        "sampling/createMessage" => Some(declared(|caps| caps.sampling.is_some())),
        "elicitation/create" => Some(declared(|caps| caps.elicitation.is_some())),
        _ => None,
    }
}

pub(crate) struct RmcpPeer {
    pub(crate) peer: Peer<RoleServer>,
    pub(crate) threshold: LogThreshold,
}

#[async_trait]
impl ClientPeer for RmcpPeer {
    async fn notify_progress(&self, token: &Value, progress: f64, total: Option<f64>, message: Option<String>) {
        let mut param = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            param["total"] = json!(total);
        }
        if let Some(message) = message {
            param["message"] = json!(message);
        }
        let Ok(param) = from_json::<ProgressNotificationParam>(param) else { return };
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(%error, "progress notification not delivered");
        }
    }

    async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        if !self.threshold.allows(level) {
            return;
        }
        let mut param = json!({ "level": level, "data": data });
        if let Some(logger) = logger {
            param["logger"] = json!(logger);
        }
        let Ok(param) = from_json::<LoggingMessageNotificationParam>(param) else { return };
        if let Err(error) = self.peer.notify_logging_message(param).await {
            tracing::debug!(%error, "log notification not delivered");
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        // A client answers only what it declared (MCP "Capability Negotiation"); some
        // (rmcp's) answer `roots/list` with [] without declaring `roots`, which would read
        // as "no roots at all".
        let info = self.peer.peer_info();
        if declares(info.as_ref().map(|info| &info.capabilities), method) == Some(false) {
            return Err(PeerError::Unsupported);
        }
        let request: ServerRequest = from_json(json!({ "method": method, "params": params }))
            .map_err(|_| PeerError::Refused(format!("'{method}' is not a server-to-client request")))?;
        let result = self.peer.send_request(request).await.map_err(|error| match error {
            ServiceError::McpError(error) => PeerError::Refused(error.message.to_string()),
            other => PeerError::Transport(other.to_string()),
        })?;
        serde_json::to_value(result).map_err(|error| PeerError::Transport(error.to_string()))
    }

    async fn notify_resource_updated(&self, uri: &str) {
        let Ok(param) = from_json::<ResourceUpdatedNotificationParam>(json!({ "uri": uri })) else { return };
        if let Err(error) = self.peer.notify_resource_updated(param).await {
            tracing::debug!(%error, "resource update notification not delivered");
        }
    }
}
