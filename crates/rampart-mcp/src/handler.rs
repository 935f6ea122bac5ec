//! [`McpHandler`]: rmcp's `ServerHandler` over the call pipeline. It does no policy of its
//! own: it builds a [`CallContext`] (caller, cancellation, peer) for each request and
//! hands the request to the [`Pipeline`].
#![expect(
    deprecated,
    reason = "logging, sampling and resources/subscribe are deprecated by SEP-2577 for 2026-07-28 but are how clients of 2025-x revisions use them"
)]

use std::sync::Arc;

use rampart_core::{CallContext, Caller, CompletionRef, LogLevel, Pipeline, Principal, Transport};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::{
    peer::{LogThreshold, RmcpPeer},
    wire::{call_error, from_json, retype},
};

/// How the server introduces itself in `initialize` (`serverInfo`, `instructions`).
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// `serverInfo.name`.
    pub name: String,
    /// `serverInfo.version`.
    pub version: String,
    /// `instructions`, shown to the model by some clients.
    pub instructions: Option<String>,
}

/// rmcp `ServerHandler` for one MCP session (stdio: the process; HTTP: one session or,
/// stateless, one request). Clone it with [`McpHandler::for_new_session`] so that
/// per-session state (the log level) is not shared.
#[derive(Clone)]
pub struct McpHandler {
    pipeline: Arc<Pipeline>,
    identity: Arc<ServerIdentity>,
    transport: Transport,
    threshold: LogThreshold,
    stdio_principal: Principal,
    session: Arc<SessionTracker>,
}

/// Remembers one session's id; when the session's handler is dropped (DELETE, idle
/// timeout, stdio EOF), tells the pipeline so toolboxes release what they kept for it.
struct SessionTracker {
    pipeline: Arc<Pipeline>,
    id: std::sync::OnceLock<String>,
}

impl Drop for SessionTracker {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let pipeline = self.pipeline.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || pipeline.end_session(&id));
            }
            Err(_) => pipeline.end_session(&id),
        }
    }
}

impl McpHandler {
    /// A handler serving `pipeline` over `transport`.
    pub fn new(pipeline: Arc<Pipeline>, identity: ServerIdentity, transport: Transport) -> Self {
        let pipeline_for_tracker = pipeline.clone();
        Self {
            pipeline,
            identity: Arc::new(identity),
            transport,
            threshold: LogThreshold::new(),
            stdio_principal: Principal::local_operator(),
            session: Arc::new(SessionTracker { pipeline: pipeline_for_tracker, id: Default::default() }),
        }
    }

    /// Sets who the caller is on stdio (default: the local operator, role `admin`).
    pub fn with_stdio_principal(mut self, principal: Principal) -> Self {
        self.stdio_principal = principal;
        self
    }

    /// The same server with fresh per-session state.
    pub fn for_new_session(&self) -> Self {
        let session = Arc::new(SessionTracker { pipeline: self.pipeline.clone(), id: Default::default() });
        Self { threshold: LogThreshold::new(), session, ..self.clone() }
    }

    /// The caller of this request: on stdio the local operator; on HTTP the [`Caller`]
    /// that authentication stored in the request's extensions (anonymous if none).
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        if self.transport == Transport::Stdio {
            // One stdio process is one session: toolbox state (exec scratch) persists
            // across its calls and is released at EOF.
            let mut caller = Caller::local(self.stdio_principal.clone());
            caller.session = Some(self.session.id.get_or_init(|| "stdio".into()).clone());
            return caller;
        }
        let parts = context.extensions.get::<http::request::Parts>();
        // Authentication always stores a Caller; a request without one (a bug, or a test
        // wiring the service without middleware) gets an anonymous principal with no roles.
        let mut caller = parts.and_then(|p| p.extensions.get::<Caller>().cloned()).unwrap_or(Caller {
            principal: Principal::anonymous(Vec::new()),
            transport: Transport::StreamableHttp,
            session: None,
            remote_addr: None,
        });
        caller.session =
            parts.and_then(|p| p.headers.get("mcp-session-id")).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(id) = &caller.session {
            let _ = self.session.id.set(id.clone());
        }
        caller
    }

    fn call_context(&self, context: &RequestContext<RoleServer>) -> CallContext {
        let peer = RmcpPeer { peer: context.peer.clone(), threshold: self.threshold.clone() };
        CallContext::new(self.caller(context), Arc::new(peer))
            .with_request_id(context.id.to_string())
            .with_cancellation(context.ct.clone())
            .with_progress_token(context.meta.get_progress_token().and_then(|t| serde_json::to_value(t).ok()))
    }
}

/// Marks a result object `resultType: "complete"` (SEP-2322, required for 2026-07-28 peers;
/// rmcp strips it again for older peers).
fn complete(mut result: Value) -> Value {
    result["resultType"] = json!("complete");
    result
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let mut info = json!({
            "protocolVersion": rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE,
            "capabilities": {
                "tools": { "listChanged": false },
                "resources": { "subscribe": true, "listChanged": false },
                "prompts": { "listChanged": false },
                "logging": {},
                "completions": {},
            },
            "serverInfo": { "name": self.identity.name, "title": "Rampart", "version": self.identity.version },
        });
        if let Some(instructions) = &self.identity.instructions {
            info["instructions"] = json!(instructions);
        }
        from_json(info).unwrap_or_else(|_| ServerConfig::default())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.pipeline.list_tools(&self.call_context(&context)).await.map_err(call_error)?;
        from_json(complete(json!({ "tools": tools })))
    }

    /// Used by rmcp only to validate SEP-2243 `Mcp-Param-*` headers against the tool's
    /// schema; visibility is enforced by the pipeline on the call itself.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.pipeline.tool_spec(name).and_then(|spec| retype(spec).ok())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call_context = self.call_context(&context);
        let output =
            self.pipeline.call_tool(&request.name, request.arguments, &call_context).await.map_err(call_error)?;
        let mut result: CallToolResult = if output.is_error {
            CallToolResult::error(retype(&output.content)?)
        } else {
            CallToolResult::success(retype(&output.content)?)
        };
        result.structured_content = output.structured_content;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self.pipeline.list_resources(&self.call_context(&context)).await.map_err(call_error)?;
        from_json(complete(json!({ "resources": resources })))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let templates =
            self.pipeline.list_resource_templates(&self.call_context(&context)).await.map_err(call_error)?;
        from_json(complete(json!({ "resourceTemplates": templates })))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let contents =
            self.pipeline.read_resource(&request.uri, &self.call_context(&context)).await.map_err(call_error)?;
        let result: rmcp::model::ReadResourceResult = from_json(complete(json!({ "contents": contents })))?;
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Subscribing needs the resource to exist and be visible to the caller.
        self.pipeline.read_resource(&request.uri, &self.call_context(&context)).await.map_err(call_error)?;
        tracing::debug!(uri = %request.uri, "resource subscribed");
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tracing::debug!(uri = %request.uri, "resource unsubscribed");
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = self.pipeline.list_prompts(&self.call_context(&context)).await.map_err(call_error)?;
        from_json(complete(json!({ "prompts": prompts })))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let request = to_json(&request);
        let name = request["name"].as_str().unwrap_or_default();
        let arguments = request["arguments"].as_object().cloned().unwrap_or_else(Map::new);
        let output =
            self.pipeline.get_prompt(name, arguments, &self.call_context(&context)).await.map_err(call_error)?;
        let result: rmcp::model::GetPromptResult = from_json(complete(to_json(&output)))?;
        Ok(result.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let request = to_json(&request);
        let reference = match request["ref"]["type"].as_str() {
            Some("ref/prompt") => CompletionRef::Prompt(request["ref"]["name"].as_str().unwrap_or_default().into()),
            Some("ref/resource") => {
                CompletionRef::ResourceTemplate(request["ref"]["uri"].as_str().unwrap_or_default().into())
            }
            _ => return Err(ErrorData::invalid_params("unknown completion reference type", None)),
        };
        let argument = request["argument"]["name"].as_str().unwrap_or_default();
        let value = request["argument"]["value"].as_str().unwrap_or_default();
        let values = self.pipeline.complete(&reference, argument, value, &self.call_context(&context));
        from_json(complete(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } })))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let level: LogLevel = from_json_level(&to_json(&request)["level"])?;
        self.threshold.set(level);
        Ok(())
    }
}

fn from_json_level(value: &Value) -> Result<LogLevel, ErrorData> {
    serde_json::from_value(value.clone())
        .map_err(|_| ErrorData::invalid_params(format!("unknown log level {value}"), None))
}
