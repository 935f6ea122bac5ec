//! An MCP client for the `rampart` CLI (and later the shell and gateway): connect to any
//! MCP server over streamable HTTP or a child process on stdio, list tools, call one, and
//! hear the server's notifications ([`ServerNotice`]).
#![expect(
    deprecated,
    reason = "logging notifications are deprecated by SEP-2577 for 2026-07-28 but are how servers of 2025-x revisions log"
)]

use std::collections::HashMap;

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, ClientConfig, LoggingMessageNotificationParam, ProgressNotificationParam},
    service::{NotificationContext, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::wire::from_json;

/// Where the server is.
#[derive(Debug, Clone)]
pub enum ClientTarget {
    /// A streamable HTTP endpoint, e.g. `http://127.0.0.1:8080/mcp`, with an optional
    /// bearer token (sent as `Authorization: Bearer …`).
    Http {
        /// Endpoint URL.
        url: String,
        /// Bearer token.
        token: Option<String>,
    },
    /// A server started as a child process speaking MCP on stdio.
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
        /// Show the child's stderr (its logs) on ours.
        show_stderr: bool,
    },
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the handshake failed.
    #[error("cannot connect to {target}: {detail}")]
    Connect {
        /// URL or command.
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// The server answered with a JSON-RPC error or the connection broke.
    #[error("{0}")]
    Protocol(String),
    /// Bad input on our side (e.g. an empty command).
    #[error("{0}")]
    Usage(String),
}

/// One tool as `tools/list` described it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Title, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    pub description: String,
    /// The whole tool object as the server sent it.
    pub raw: Value,
}

/// A notification from the server, as the client hears it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerNotice {
    /// `notifications/tools/list_changed`.
    ToolListChanged,
    /// `notifications/resources/list_changed`.
    ResourceListChanged,
    /// `notifications/prompts/list_changed`.
    PromptListChanged,
    /// `notifications/progress`: its params as JSON (`progressToken`, `progress`,
    /// `total`, `message`).
    Progress(Value),
    /// `notifications/message`: its params as JSON (`level`, `logger`, `data`).
    Log(Value),
}

/// The client side of the connection: who we are, and where notifications go.
struct Handler {
    info: ClientConfig,
    notices: tokio::sync::mpsc::UnboundedSender<ServerNotice>,
}

impl Handler {
    fn send(&self, notice: ServerNotice) {
        // Nobody listening is fine: notices are for whoever asked.
        let _ = self.notices.send(notice);
    }
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::ToolListChanged);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::ResourceListChanged);
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::PromptListChanged);
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::Progress(serde_json::to_value(params).unwrap_or(Value::Null)));
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::Log(serde_json::to_value(params).unwrap_or(Value::Null)));
    }
}

/// A connected MCP client.
pub struct McpClient {
    service: RunningService<RoleClient, Handler>,
    notices: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<ServerNotice>>,
}

impl McpClient {
    /// Connects and performs the initialize handshake.
    ///
    /// # Errors
    /// [`ClientError::Connect`] (unreachable, 401, not an MCP server, command not found).
    pub async fn connect(target: &ClientTarget) -> Result<Self, ClientError> {
        let info: ClientConfig = from_json(json!({
            "protocolVersion": rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE,
            "capabilities": {},
            "clientInfo": { "name": "rampart-cli", "version": rampart_core::VERSION },
        }))
        .map_err(|e| ClientError::Usage(e.message.to_string()))?;
        let (sender, notices) = tokio::sync::mpsc::unbounded_channel();
        let handler = Handler { info, notices: sender };
        let describe = describe(target);
        let connect_error = |detail: String| ClientError::Connect { target: describe.clone(), detail };
        let service = match target {
            ClientTarget::Http { url, token } => {
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = token {
                    config = config.auth_header(token.clone());
                }
                config = config.custom_headers(HashMap::new());
                let transport = StreamableHttpClientTransport::from_config(config);
                handler.serve(transport).await.map_err(|e| connect_error(e.to_string()))?
            }
            ClientTarget::Stdio { command, show_stderr } => {
                let (program, args) =
                    command.split_first().ok_or_else(|| ClientError::Usage("--stdio needs a command".into()))?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                let stderr = if *show_stderr { std::process::Stdio::inherit() } else { std::process::Stdio::null() };
                let (transport, _) =
                    TokioChildProcess::builder(cmd).stderr(stderr).spawn().map_err(|e| connect_error(e.to_string()))?;
                handler.serve(transport).await.map_err(|e| connect_error(e.to_string()))?
            }
        };
        Ok(Self { service, notices: tokio::sync::Mutex::new(notices) })
    }

    /// `serverInfo` from the handshake, as JSON.
    pub fn server_info(&self) -> Value {
        self.service.peer_info().and_then(|info| serde_json::to_value(info).ok()).unwrap_or(Value::Null)
    }

    /// All tools (following pagination).
    ///
    /// # Errors
    /// [`ClientError::Protocol`].
    pub async fn list_tools(&self) -> Result<Vec<ToolInfo>, ClientError> {
        let tools = self.service.list_all_tools().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(tools
            .into_iter()
            .map(|tool| {
                let raw = serde_json::to_value(&tool).unwrap_or(Value::Null);
                ToolInfo {
                    name: tool.name.to_string(),
                    title: tool.title.clone(),
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    raw,
                }
            })
            .collect())
    }

    /// Calls `tool`; returns the `CallToolResult` as JSON (`content`, `structuredContent`,
    /// `isError`).
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for JSON-RPC errors (e.g. unknown tool).
    pub async fn call_tool(&self, tool: &str, arguments: Map<String, Value>) -> Result<Value, ClientError> {
        let params: CallToolRequestParams = from_json(json!({ "name": tool, "arguments": arguments }))
            .map_err(|e| ClientError::Usage(e.message.to_string()))?;
        let result = self.service.call_tool(params).await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        serde_json::to_value(result).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// The next notification the server sent, waiting at most `wait`; `None` when none
    /// came in time (or the connection closed). Notices queue up until read.
    pub async fn next_notice(&self, wait: std::time::Duration) -> Option<ServerNotice> {
        let mut notices = self.notices.lock().await;
        tokio::time::timeout(wait, notices.recv()).await.ok().flatten()
    }

    /// Closes the connection (DELETE of the session, or the child's stdin).
    pub async fn close(self) {
        if let Err(error) = self.service.cancel().await {
            tracing::debug!(%error, "client close");
        }
    }
}

fn describe(target: &ClientTarget) -> String {
    match target {
        ClientTarget::Http { url, .. } => url.clone(),
        ClientTarget::Stdio { command, .. } => command.join(" "),
    }
}
