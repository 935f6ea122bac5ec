//! [`McpHandler`]: rmcp's `ServerHandler` over the call pipeline. It does no policy of its
//! own: it builds a [`CallContext`] (caller, cancellation, peer) for each request and
//! hands the request to the [`Pipeline`].
#![expect(
    deprecated,
    reason = "logging, sampling and resources/subscribe are deprecated by SEP-2577 for 2026-07-28 but are how clients of 2025-x revisions use them"
)]

use std::sync::Arc;

use rampart_core::{CallContext, Caller, CompletionRef, LogLevel, Pipeline, Principal, TaskSupport, Transport};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, CompleteRequestParams,
        CompleteResult, CreateTaskResult, CustomRequest, CustomResult, ErrorCode, GetPromptRequestParams,
        GetPromptResponse, GetTaskParams, GetTaskResult, InitializeRequestParams, InitializeResult, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSink},
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    BoundSession, SessionOwners,
    peer::{LogThreshold, RmcpPeer},
    session::{List, ListWatch, watch_lists},
    tasks::{Started, TaskSettings, Tasks},
    wire::{call_error, call_result, from_json, retype},
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
/// per-session state (the log level, the session's id) is not shared.
#[derive(Clone)]
pub struct McpHandler {
    pipeline: Arc<Pipeline>,
    info: Arc<ServerConfig>,
    tools: Arc<ToolCache>,
    transport: Transport,
    threshold: LogThreshold,
    stdio_principal: Principal,
    owners: Arc<SessionOwners>,
    session: Arc<SessionTracker>,
    tasks: Arc<Tasks>,
    /// Cancelled when the server begins to shut down: ends `subscriptions/listen` streams.
    stopping: CancellationToken,
}

/// One session's id, known once the session's handshake completed on this handler; when
/// the handler is dropped (DELETE, idle timeout, stdio EOF) the session has ended: its
/// binding is released, its `list_changed` task stops, and toolboxes release what they
/// kept for it.
///
/// Only a handler that ran the handshake (`initialize` then `notifications/initialized`)
/// tracks a session: a stateless request's handler, which lives for one request, must
/// not end a session whose id it was merely sent.
struct SessionTracker {
    pipeline: Arc<Pipeline>,
    owners: Arc<SessionOwners>,
    handshake: std::sync::atomic::AtomicBool,
    id: std::sync::OnceLock<String>,
    ended: CancellationToken,
}

impl SessionTracker {
    fn new(pipeline: Arc<Pipeline>, owners: Arc<SessionOwners>) -> Self {
        Self {
            pipeline,
            owners,
            handshake: Default::default(),
            id: Default::default(),
            ended: CancellationToken::new(),
        }
    }
}

impl Drop for SessionTracker {
    fn drop(&mut self) {
        self.ended.cancel();
        let Some(id) = self.id.take() else { return };
        self.owners.release(&id);
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
        let owners = Arc::new(SessionOwners::default());
        let session = Arc::new(SessionTracker::new(pipeline.clone(), owners.clone()));
        Self {
            pipeline,
            info: Arc::new(server_info(&identity)),
            tools: Arc::default(),
            transport,
            threshold: LogThreshold::new(),
            stdio_principal: Principal::local_operator(),
            owners,
            session,
            tasks: Arc::new(Tasks::new(TaskSettings::default())),
            stopping: CancellationToken::new(),
        }
    }

    /// Sets how tool calls run as tasks are kept (the tasks extension, SEP-2663).
    pub fn with_task_settings(mut self, settings: TaskSettings) -> Self {
        self.tasks = Arc::new(Tasks::new(settings));
        self
    }

    /// The server is shutting down: cancels every tool call running as a task (each ends
    /// as cancelled and is recorded while the server drains) and ends every
    /// `subscriptions/listen` stream with its final result, so that draining waits for
    /// neither.
    pub fn begin_shutdown(&self) {
        self.tasks.cancel_all();
        self.stopping.cancel();
    }

    /// Sets who the caller is on stdio (default: the local operator, role `admin`).
    pub fn with_stdio_principal(mut self, principal: Principal) -> Self {
        self.stdio_principal = principal;
        self
    }

    /// The same server with fresh per-session state.
    pub fn for_new_session(&self) -> Self {
        let session = Arc::new(SessionTracker::new(self.pipeline.clone(), self.owners.clone()));
        Self { threshold: LogThreshold::new(), session, ..self.clone() }
    }

    /// The owners of this server's sessions, which the HTTP layer binds and checks.
    pub fn session_owners(&self) -> Arc<SessionOwners> {
        self.owners.clone()
    }

    /// The caller of a request: on stdio the local operator; on HTTP the [`Caller`] that
    /// authentication stored in the request's extensions (anonymous with no roles if
    /// none), in the session the HTTP layer bound to it ([`BoundSession`]) — never one
    /// named by a header it did not check.
    fn caller(&self, extensions: &rmcp::model::Extensions) -> Caller {
        if self.transport == Transport::Stdio {
            // One stdio process is one session: toolbox state (exec scratch) persists
            // across its calls and is released at EOF.
            let mut caller = Caller::local(self.stdio_principal.clone());
            caller.session = Some("stdio".into());
            return caller;
        }
        let parts = extensions.get::<http::request::Parts>();
        let mut caller = parts.and_then(|p| p.extensions.get::<Caller>().cloned()).unwrap_or(Caller {
            principal: Principal::anonymous(Vec::new()),
            transport: Transport::StreamableHttp,
            session: None,
            remote_addr: None,
        });
        caller.session = parts.and_then(|p| p.extensions.get::<BoundSession>()).map(|bound| bound.0.clone());
        caller
    }

    fn call_context(&self, context: &RequestContext<RoleServer>) -> CallContext {
        let peer = RmcpPeer { peer: context.peer.clone(), threshold: self.threshold.clone() };
        CallContext::new(self.caller(&context.extensions), Arc::new(peer), self.pipeline.guard().clone())
            .with_request_id(context.id.to_string())
            .with_cancellation(context.ct.clone())
            .with_progress_token(context.meta.get_progress_token().and_then(|t| serde_json::to_value(t).ok()))
    }
}

impl McpHandler {
    /// Admits a `tasks/*` request through the pipeline: only the task's creator gets an
    /// answer; anyone else is told the task does not exist, and the attempt is recorded.
    async fn task_request(
        &self,
        context: &RequestContext<RoleServer>,
        method: &'static str,
        task: &str,
    ) -> Result<(), ErrorData> {
        let owner = self.tasks.owner(task);
        self.pipeline
            .task_request(&self.call_context(context), method, task, owner.as_deref())
            .await
            .map_err(call_error)
    }

    /// `tools/call` within its span (see [`crate::trace::request_span`]).
    async fn call_tool_in_span(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        call_context: CallContext,
    ) -> Result<CallToolResponse, ErrorData> {
        let task_support = self.pipeline.task_support(&call_context.caller, &request.name);
        // Most tools never run as tasks: the client's capabilities (a copy) only for those that may.
        let capabilities = if task_support == TaskSupport::Forbidden { None } else { context.client_capabilities() };
        let follows_tasks = capabilities.as_ref().is_some_and(ClientCapabilities::supports_tasks);
        match task_support {
            TaskSupport::Required if !follows_tasks => {
                return Err(ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_tasks().build(),
                ));
            }
            TaskSupport::Optional | TaskSupport::Required if follows_tasks => {
                let started = self
                    .tasks
                    .run(
                        self.pipeline.clone(),
                        request.name.to_string(),
                        request.arguments.clone(),
                        call_context.clone(),
                        capabilities,
                    )
                    .await;
                match started {
                    Some(Started::Task(task)) => return Ok(CallToolResponse::Task(CreateTaskResult::new(task))),
                    Some(Started::Answered(result)) => return Ok(result.into()),
                    None => {}
                }
            }
            _ => {}
        }
        let output =
            self.pipeline.call_tool(&request.name, request.arguments, &call_context).await.map_err(call_error)?;
        Ok(call_result(output)?.into())
    }
}

/// The wire form (rmcp's `Tool`) of the tools asked about, for the catalog generation
/// they were built in.
#[derive(Default)]
struct ToolCache(std::sync::Mutex<(u64, std::collections::HashMap<String, Tool>)>);

impl ToolCache {
    /// Tool `name` as rmcp's type, for a caller already known to see it.
    fn get(&self, pipeline: &Pipeline, caller: &Caller, name: &str) -> Option<Tool> {
        let generation = pipeline.generation();
        {
            let cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.0 == generation
                && let Some(tool) = cache.1.get(name)
            {
                return Some(tool.clone());
            }
        }
        let tool: Tool = retype(&pipeline.tool_spec(caller, name)?).ok()?;
        let mut cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.0 != generation {
            *cache = (generation, Default::default());
        }
        cache.1.insert(name.to_owned(), tool.clone());
        Some(tool)
    }
}

/// What `initialize` and `server/discover` answer: the protocol version, the
/// capabilities (the tasks extension among them) and the server's identity.
fn server_info(identity: &ServerIdentity) -> ServerConfig {
    let mut info = json!({
        "protocolVersion": rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE,
        "capabilities": {
            "tools": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": true },
            "logging": {},
            "completions": {},
            "extensions": { "io.modelcontextprotocol/tasks": {} },
        },
        "serverInfo": { "name": identity.name, "title": "Rampart", "version": identity.version },
    });
    if let Some(instructions) = &identity.instructions {
        info["instructions"] = json!(instructions);
    }
    from_json(info).unwrap_or_else(|_| ServerConfig::default())
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
    /// Built once per server ([`ServerIdentity`] and the capabilities are fixed): rmcp asks
    /// for it on every request of a stateless client and every `tasks/*` request.
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }

    /// The session handshake: marks this handler as a session's (see `SessionTracker`).
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.session.handshake.store(true, std::sync::atomic::Ordering::SeqCst);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    /// The client is ready: this handler now serves the session its caller owns (stdio:
    /// the process), releases it when dropped, and tells the client about list changes.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let caller = self.caller(&context.extensions);
        let session = match self.transport {
            Transport::Stdio => caller.session.clone(),
            _ if self.session.handshake.load(std::sync::atomic::Ordering::SeqCst) => caller.session.clone(),
            _ => None,
        };
        let Some(session) = session else { return };
        if self.session.id.set(session).is_ok() {
            watch_lists(self.pipeline.clone(), caller, context.peer.clone(), self.session.ended.clone());
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.pipeline.list_tools(&self.call_context(&context)).await.map_err(call_error)?;
        from_json(complete(json!({ "tools": tools })))
    }

    /// Used by rmcp to validate SEP-2243 `Mcp-Param-*` headers against the tool's schema
    /// before the call: answers only for a tool the caller of the request being handled
    /// may see ([`crate::with_caller`]), so that a hidden tool's schema does not leak
    /// through header validation; with no known caller, nothing.
    ///
    /// rmcp asks on every `tools/call`: the wire form of each tool is built once per
    /// catalog generation (`ToolCache`), and only the caller's permission is asked each
    /// time.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        let caller = crate::current_caller()?;
        if !self.pipeline.may_see_tool(&caller, name) {
            return None;
        }
        self.tools.get(&self.pipeline, &caller, name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (span, trace_id) = crate::trace::request_span("tools/call", Some(&request.name), &context, self.transport);
        let call_context = self.call_context(&context).with_trace_id(trace_id);
        self.call_tool_in_span(request, context, call_context).instrument(span).await
    }

    /// `tasks/get` (SEP-2663): the task's state, and its result once it ended — for the
    /// principal that created it only.
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.task_request(&context, "tasks/get", &request.task_id).await?;
        self.tasks.manager().get_task(&request.task_id).map(GetTaskResult::new)
    }

    /// `tasks/update` (SEP-2663): the client's answers to the task's input requests.
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_request(&context, "tasks/update", &request.task_id).await?;
        self.tasks.manager().update_task(&request.task_id, request.input_responses)
    }

    /// `tasks/cancel` (SEP-2663): stops the task's call; the task ends as cancelled (or
    /// as it was, if it had already ended).
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_request(&context, "tasks/cancel", &request.task_id).await?;
        self.tasks.manager().cancel_task(&request.task_id)
    }

    /// `subscriptions/listen` (2026-07-28): every category Rampart serves is accepted
    /// here; whether the caller may read each resource is the pipeline's question when
    /// the stream starts ([`ServerHandler::listen`]).
    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// One `subscriptions/listen` stream: the resources it names are subscribed through
    /// the pipeline (authorized and recorded as `resources/subscribe`; one refused ends the
    /// request with its error), then list changes the caller can see and updates of
    /// those resources are sent on it until the client cancels it or the server stops.
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let accepted = subscription.accepted().clone();
        let sink = subscription.sink().clone();
        let peer = Arc::new(ListenPeer { sink: sink.clone() });
        let context = self.call_context(subscription.request_context()).with_peer(peer);
        let mut subscribed = Vec::new();
        let mut refused = None;
        for uri in accepted.resource_subscriptions.iter().flatten() {
            match self.pipeline.subscribe_resource(uri, &context).await {
                Ok(()) => subscribed.push(uri.clone()),
                Err(error) => {
                    refused = Some(call_error(error));
                    break;
                }
            }
        }
        if refused.is_none() {
            let wanted = |list: List| match list {
                List::Tools => accepted.tools_list_changed == Some(true),
                List::Resources => accepted.resources_list_changed == Some(true),
                List::Prompts => accepted.prompts_list_changed == Some(true),
            };
            let watch = ListWatch::new(self.pipeline.clone(), context.caller.clone());
            let lists = watch.relay(self.stopping.child_token(), |list| {
                let sink = sink.clone();
                async move {
                    let sent = match list {
                        _ if !wanted(list) => return true,
                        List::Tools => sink.notify_tool_list_changed().await,
                        List::Resources => sink.notify_resource_list_changed().await,
                        List::Prompts => sink.notify_prompt_list_changed().await,
                    };
                    sent.is_ok()
                }
            });
            tokio::select! {
                () = subscription.cancelled() => {}
                () = lists => {}
            }
        }
        for uri in subscribed {
            if let Err(error) = self.pipeline.unsubscribe_resource(&uri, &context).await {
                tracing::debug!(%error, %uri, "unsubscribe at the end of a listen stream failed");
            }
        }
        refused.map_or(Ok(()), Err)
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
        let (span, trace_id) = crate::trace::request_span("resources/read", None, &context, self.transport);
        let call_context = self.call_context(&context).with_trace_id(trace_id);
        let read = self.pipeline.read_resource(&request.uri, &call_context).instrument(span);
        let contents = read.await.map_err(call_error)?;
        let result: rmcp::model::ReadResourceResult = from_json(complete(json!({ "contents": contents })))?;
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.pipeline.subscribe_resource(&request.uri, &self.call_context(&context)).await.map_err(call_error)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.pipeline.unsubscribe_resource(&request.uri, &self.call_context(&context)).await.map_err(call_error)
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
        let (span, trace_id) = crate::trace::request_span("prompts/get", Some(name), &context, self.transport);
        let call_context = self.call_context(&context).with_trace_id(trace_id);
        let output =
            self.pipeline.get_prompt(name, arguments, &call_context).instrument(span).await.map_err(call_error)?;
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
        let values = self
            .pipeline
            .complete(&reference, argument, value, &self.call_context(&context))
            .await
            .map_err(call_error)?;
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

    /// rmcp hands over as a custom request both a method it does not know and a method it
    /// knows whose `params` do not match that method's schema (its message type is an
    /// untagged union): the first is -32601 Method not found, the second -32602 Invalid
    /// params (JSON-RPC 2.0 §5.1), not "method not found" for `tools/call`.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = request.method;
        if CLIENT_REQUESTS.contains(&method.as_str()) {
            let message = format!("Invalid params: the parameters of {method} do not match its MCP schema");
            return Err(ErrorData::invalid_params(message, None));
        }
        Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, format!("Method not found: {method}"), None))
    }
}

/// The methods of rmcp's `ClientRequest` union (other than its custom fallback): the
/// requests whose parameters rmcp reads into a type, named by rmcp's own constants.
const CLIENT_REQUESTS: &[&str] = {
    use rmcp::model::{
        CallToolRequestMethod, CancelTaskMethod, CompleteRequestMethod, ConstString, DiscoverRequestMethod,
        GetPromptRequestMethod, GetSkillRequestMethod, GetTaskMethod, InitializeResultMethod, ListPromptsRequestMethod,
        ListResourceTemplatesRequestMethod, ListResourcesRequestMethod, ListSkillsRequestMethod,
        ListToolsRequestMethod, PingRequestMethod, ReadResourceDirectoryRequestMethod, ReadResourceRequestMethod,
        SetLevelRequestMethod, SubscribeRequestMethod, SubscriptionsListenRequestMethod, UnsubscribeRequestMethod,
        UpdateTaskMethod,
    };
    &[
        PingRequestMethod::VALUE,
        InitializeResultMethod::VALUE,
        DiscoverRequestMethod::VALUE,
        CompleteRequestMethod::VALUE,
        SetLevelRequestMethod::VALUE,
        GetPromptRequestMethod::VALUE,
        ListPromptsRequestMethod::VALUE,
        ListResourcesRequestMethod::VALUE,
        ListResourceTemplatesRequestMethod::VALUE,
        ReadResourceRequestMethod::VALUE,
        SubscriptionsListenRequestMethod::VALUE,
        SubscribeRequestMethod::VALUE,
        UnsubscribeRequestMethod::VALUE,
        CallToolRequestMethod::VALUE,
        ListToolsRequestMethod::VALUE,
        GetTaskMethod::VALUE,
        UpdateTaskMethod::VALUE,
        CancelTaskMethod::VALUE,
        ListSkillsRequestMethod::VALUE,
        GetSkillRequestMethod::VALUE,
        ReadResourceDirectoryRequestMethod::VALUE,
    ]
};

fn from_json_level(value: &Value) -> Result<LogLevel, ErrorData> {
    serde_json::from_value(value.clone())
        .map_err(|_| ErrorData::invalid_params(format!("unknown log level {value}"), None))
}

/// The client as a resource subscription made by a `subscriptions/listen` stream sees
/// it: resource updates go on that stream; nothing else is sent there.
struct ListenPeer {
    sink: SubscriptionSink,
}

#[async_trait::async_trait]
impl rampart_core::ClientPeer for ListenPeer {
    async fn notify_progress(&self, _: &Value, _: f64, _: Option<f64>, _: Option<String>) {}

    async fn log(&self, _: LogLevel, _: Option<&str>, _: Value) {}

    async fn request(&self, _: &str, _: Value) -> Result<Value, rampart_core::PeerError> {
        Err(rampart_core::PeerError::Unsupported)
    }

    async fn notify_resource_updated(&self, uri: &str) {
        if let Err(error) = self.sink.notify_resource_updated(uri).await {
            tracing::debug!(%error, uri, "resource update not delivered on the listen stream");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use rampart_core::{OpenGuard, PrincipalKind, ToolError, ToolOutput, ToolSpec, Toolbox};

    use super::*;

    /// One tool whose description the test changes.
    struct Changing(Mutex<&'static str>);

    #[async_trait::async_trait]
    impl Toolbox for Changing {
        fn name(&self) -> &str {
            "changing"
        }

        async fn tools(&self) -> Vec<ToolSpec> {
            let description = *self.0.lock().unwrap();
            vec![ToolSpec::with_schema("changing", description, Map::new())]
        }

        async fn call_tool(&self, _: &str, _: Map<String, Value>, _: &CallContext) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput::text("ok"))
        }
    }

    /// The cached wire form follows the catalog: a tool whose definition changed is
    /// answered with the new one after the change, never the cached old one.
    #[tokio::test]
    async fn the_tool_cache_follows_catalog_changes() {
        let toolbox = Arc::new(Changing(Mutex::new("first")));
        let pipeline = Pipeline::builder(Arc::new(OpenGuard)).toolbox(toolbox.clone()).build().await.unwrap();
        let caller = Caller::local(Principal { id: "token:t".into(), kind: PrincipalKind::ApiToken, roles: vec![] });
        let cache = ToolCache::default();
        let description = |cache: &ToolCache| cache.get(&pipeline, &caller, "changing").unwrap().description.unwrap();
        assert_eq!(description(&cache), "first");
        assert_eq!(description(&cache), "first", "from the cache");
        *toolbox.0.lock().unwrap() = "second";
        pipeline.refresh().await.unwrap();
        assert_eq!(description(&cache), "second", "a new catalog generation rebuilds it");
        assert!(cache.get(&pipeline, &caller, "no_such_tool").is_none());
    }
}
