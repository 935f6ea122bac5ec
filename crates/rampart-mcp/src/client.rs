//! An MCP client for the `rampart` CLI and the gateway: connect to any MCP server over
//! streamable HTTP or a child process on stdio, list tools, call one (with progress and
//! cancellation), send any other client request, and hear the server's notifications
//! ([`ServerNotice`]) and requests (sampling, elicitation, roots: [`ClientEvents`]).
#![expect(
    deprecated,
    reason = "logging notifications are deprecated by SEP-2577 for 2026-07-28 but are how servers of 2025-x revisions log"
)]

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rampart_core::PeerError;
use rmcp::{
    ClientHandler, ErrorData, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CancelledNotificationParam, ClientConfig, ClientRequest, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, GetMeta, ListRootsResult,
        LoggingMessageNotificationParam, ProgressNotificationParam, RequestParamsMeta,
        ResourceUpdatedNotificationParam,
    },
    service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::wire::from_json;

/// What a child started with [`ConnectOptions::clean_env`] inherits of our environment
/// (besides `LC_*`): what finding programs and a home directory needs, no credentials.
pub const SAFE_INHERITED_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME"];

/// How long an HTTP server has to answer `initialize` (connection included).
const HTTP_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// An rmcp server in this process, a new instance per connection.
    InProcess(InProcessServer),
}

/// An rmcp server (any [`rmcp::ServerHandler`], e.g. one written with `#[tool_router]`)
/// run inside this process: each connection makes a new instance and speaks MCP to it
/// over an in-memory pipe, as it would over stdio — same messages, same capabilities,
/// progress, logs, sampling and elicitation — without a process.
#[derive(Clone)]
pub struct InProcessServer {
    name: String,
    start: Arc<dyn Fn(tokio::io::DuplexStream) + Send + Sync>,
}

impl std::fmt::Debug for InProcessServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessServer").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Bytes buffered each way between an in-process server and its client.
const IN_PROCESS_PIPE_BYTES: usize = 256 * 1024;

impl InProcessServer {
    /// The server `name` (for messages), whose instances `new_server` makes. Each runs
    /// on the Tokio runtime until its client goes away.
    pub fn new<S, F>(name: &str, new_server: F) -> Self
    where
        S: rmcp::ServerHandler,
        F: Fn() -> S + Send + Sync + 'static,
    {
        let label = name.to_owned();
        let start = move |pipe: tokio::io::DuplexStream| {
            let server = new_server();
            let label = label.clone();
            tokio::spawn(async move {
                match server.serve(pipe).await {
                    Ok(running) => drop(running.waiting().await),
                    Err(error) => tracing::warn!(server = %label, %error, "in-process MCP server did not start"),
                }
            });
        };
        Self { name: name.to_owned(), start: Arc::new(start) }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
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
    /// The server answered with a JSON-RPC error object.
    #[error("{message} (JSON-RPC error {code})")]
    Rpc {
        /// JSON-RPC error code, e.g. -32602.
        code: i32,
        /// The server's message.
        message: String,
    },
    /// The call was cancelled by our side; the server was sent `notifications/cancelled`.
    #[error("cancelled")]
    Cancelled,
    /// Bad input on our side (e.g. an empty command).
    #[error("{0}")]
    Usage(String),
}

impl From<ServiceError> for ClientError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::McpError(error) => Self::Rpc { code: error.code.0, message: error.message.to_string() },
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// How a client started with [`McpClient::connect_with`] behaves, besides its target.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// `clientInfo.name` in the handshake (default `rampart-cli`).
    pub client_name: Option<String>,
    /// Extra HTTP headers on every request (HTTP targets), e.g. an upstream's API key.
    pub headers: Vec<(String, String)>,
    /// Extra environment variables of the child (stdio targets).
    pub env: Vec<(String, String)>,
    /// The server is known to speak only the legacy HTTP+SSE transport (HTTP targets):
    /// skip the streamable HTTP attempt.
    pub legacy_sse: bool,
    /// Start the child with only [`SAFE_INHERITED_ENV`] of our environment (plus `env`)
    /// instead of all of it, so that our own secrets never reach it.
    pub clean_env: bool,
    /// Working directory of the child (stdio targets).
    pub cwd: Option<PathBuf>,
    /// Each line the child writes on stderr (stdio targets); overrides `show_stderr`.
    pub stderr_lines: Option<Arc<dyn Fn(String) + Send + Sync>>,
    /// Where notifications and server-to-client requests go; without it notifications
    /// queue for [`McpClient::next_notice`] and requests are refused. Declaring it also
    /// declares the `sampling` and `elicitation` client capabilities.
    pub events: Option<Arc<dyn ClientEvents>>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("client_name", &self.client_name)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("env", &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}

/// Receives what a server sends on its own: notifications that no call of ours routes
/// (list changes, logs, resource updates), and requests to the client (MCP
/// `sampling/createMessage`, `elicitation/create`, `roots/list`).
#[async_trait]
pub trait ClientEvents: Send + Sync + 'static {
    /// A notification.
    fn notice(&self, notice: ServerNotice);

    /// A request from the server; returns the result object.
    ///
    /// # Errors
    /// [`PeerError`]: sent back to the server as a JSON-RPC error.
    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError>;
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
    /// `notifications/resources/updated` for this URI.
    ResourceUpdated(String),
}

/// Progress tokens of calls in flight and where their notifications go; progress that
/// arrives before its call registered (the token is known only once the request is sent)
/// waits in `early`, a few at most.
#[derive(Default)]
struct ProgressRoutes {
    /// Each call's route, and how many notifications went through it.
    routes: HashMap<String, (tokio::sync::mpsc::UnboundedSender<Value>, Arc<std::sync::atomic::AtomicU64>)>,
    early: Vec<(String, Value)>,
}

const EARLY_PROGRESS_KEPT: usize = 64;

/// The client side of the connection: who we are, and where notifications go.
struct Handler {
    info: ClientConfig,
    notices: tokio::sync::mpsc::UnboundedSender<ServerNotice>,
    events: Option<Arc<dyn ClientEvents>>,
    progress: Arc<Mutex<ProgressRoutes>>,
}

impl Handler {
    fn send(&self, notice: ServerNotice) {
        match &self.events {
            Some(events) => events.notice(notice),
            // Nobody listening is fine: notices are for whoever asked.
            None => drop(self.notices.send(notice)),
        }
    }

    async fn relay<P: Serialize, R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ErrorData> {
        let Some(events) = &self.events else {
            return Err(ErrorData::new(rmcp::model::ErrorCode::METHOD_NOT_FOUND, method.to_owned(), None));
        };
        let params = serde_json::to_value(params).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        match events.request(method, params).await {
            Ok(result) => from_json(result),
            Err(PeerError::Unsupported) => Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!("{method} is not available: the calling client does not support it"),
                None,
            )),
            Err(PeerError::Refused(message)) => Err(ErrorData::internal_error(message, None)),
            Err(PeerError::Transport(message)) => Err(ErrorData::internal_error(message, None)),
        }
    }
}

fn token_key(token: &Value) -> String {
    token.to_string()
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
        let params = serde_json::to_value(params).unwrap_or(Value::Null);
        let key = token_key(&params["progressToken"]);
        {
            let mut progress = self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((route, relayed)) = progress.routes.get(&key) {
                let _ = route.send(params);
                relayed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            if self.events.is_some() {
                if progress.early.len() >= EARLY_PROGRESS_KEPT {
                    progress.early.remove(0);
                }
                progress.early.push((key, params.clone()));
            }
        }
        self.send(ServerNotice::Progress(params));
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::Log(serde_json::to_value(params).unwrap_or(Value::Null)));
    }

    async fn on_resource_updated(&self, params: ResourceUpdatedNotificationParam, _: NotificationContext<RoleClient>) {
        self.send(ServerNotice::ResourceUpdated(params.uri.to_string()));
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.relay("sampling/createMessage", &params).await
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.relay("elicitation/create", &params).await
    }

    async fn list_roots(&self, _: RequestContext<RoleClient>) -> Result<ListRootsResult, ErrorData> {
        Err(ErrorData::new(rmcp::model::ErrorCode::METHOD_NOT_FOUND, "roots/list is not offered", None))
    }
}

/// A stdio child's process group, ended with the client: the child's own children too
/// (an `npx` wrapper's node, a shell's background job), which closing its stdin would
/// not stop. SIGTERM, synchronously, so it happens even while the runtime shuts down.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// Sends `notifications/cancelled` for a request unless disarmed: a call abandoned by
/// dropping its future (a timeout, a caller that went away) is cancelled upstream too.
struct CancelOnDrop {
    peer: Option<rmcp::service::Peer<RoleClient>>,
    id: rmcp::model::RequestId,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.peer = None;
    }

    /// Sends the cancellation now and waits until it is handed to the transport (a
    /// caller about to exit must not lose it).
    async fn send(mut self) {
        let Some(peer) = self.peer.take() else { return };
        let param: Result<CancelledNotificationParam, _> =
            from_json(json!({ "requestId": self.id, "reason": "cancelled by the caller" }));
        if let Ok(param) = param
            && let Err(error) = peer.notify_cancelled(param).await
        {
            tracing::debug!(%error, "cancellation not delivered");
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else { return };
        let param: Result<CancelledNotificationParam, _> =
            from_json(json!({ "requestId": self.id, "reason": "cancelled by the caller" }));
        let Ok(param) = param else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = peer.notify_cancelled(param).await {
                    tracing::debug!(%error, "cancellation not delivered");
                }
            });
        }
    }
}

/// Removes a call's progress route when the call ends, however it ends.
struct RouteGuard {
    progress: Arc<Mutex<ProgressRoutes>>,
    key: String,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut progress = self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        progress.routes.remove(&self.key);
    }
}

/// Waits for progress the server sent just before its result: rmcp hands each
/// notification to a task of its own but answers a response at once, so the last
/// progress of a call can arrive after its result. For a call that had progress at all,
/// the route stays open until none has come for 10 ms (100 ms at most); a call without
/// progress does not wait beyond one yield (its progress tasks get one chance to run).
async fn trailing_progress(relayed: &std::sync::atomic::AtomicU64) {
    use std::sync::atomic::Ordering;
    let mut seen = relayed.load(Ordering::Relaxed);
    if seen == 0 {
        tokio::task::yield_now().await;
        seen = relayed.load(Ordering::Relaxed);
        if seen == 0 {
            return;
        }
    }
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let now = relayed.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// A connected MCP client.
pub struct McpClient {
    service: RunningService<RoleClient, Handler>,
    notices: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<ServerNotice>>,
    progress: Arc<Mutex<ProgressRoutes>>,
    pid: Option<u32>,
    legacy_sse: bool,
    // Last: dropped after the service (its transport closes the child's stdin first).
    _group: ProcessGroup,
}

impl McpClient {
    /// Connects and performs the initialize handshake.
    ///
    /// # Errors
    /// [`ClientError::Connect`] (unreachable, 401, not an MCP server, command not found).
    pub async fn connect(target: &ClientTarget) -> Result<Self, ClientError> {
        Self::connect_with(target, ConnectOptions::default()).await
    }

    /// Connects with `options` (headers, the child's environment and stderr, where
    /// notifications and server requests go). A stdio child is the leader of its own
    /// process group, and the whole group is killed when the client is dropped or closed.
    ///
    /// # Errors
    /// [`ClientError::Connect`] (unreachable, 401, not an MCP server, command not found).
    pub async fn connect_with(target: &ClientTarget, options: ConnectOptions) -> Result<Self, ClientError> {
        // rmcp runs the session under the span current when it connects, for as long as
        // the session lives: while spans are exported, a connection made during a call
        // (the gateway's first call of a principal) must not keep that call's spans open.
        if crate::trace::exporting() && !tracing::Span::current().is_none() {
            struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
            impl<T> Drop for AbortOnDrop<T> {
                fn drop(&mut self) {
                    self.0.abort();
                }
            }
            let target = target.clone();
            let mut connect = AbortOnDrop(tokio::spawn(async move { Self::connect_here(&target, options).await }));
            return (&mut connect.0)
                .await
                .map_err(|error| ClientError::Protocol(format!("connecting failed: {error}")))?;
        }
        Self::connect_here(target, options).await
    }

    async fn connect_here(target: &ClientTarget, options: ConnectOptions) -> Result<Self, ClientError> {
        let capabilities = if options.events.is_some() {
            // Not `roots`: a gateway must not let its callers' roots redefine what an
            // upstream may touch (server-filesystem replaces its directories with them).
            json!({ "sampling": {}, "elicitation": {} })
        } else {
            json!({})
        };
        let info: ClientConfig = from_json(json!({
            "protocolVersion": rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE,
            "capabilities": capabilities,
            "clientInfo": {
                "name": options.client_name.as_deref().unwrap_or("rampart-cli"),
                "version": rampart_core::VERSION,
            },
        }))
        .map_err(|e| ClientError::Usage(e.message.to_string()))?;
        let (sender, notices) = tokio::sync::mpsc::unbounded_channel();
        let progress = Arc::new(Mutex::new(ProgressRoutes::default()));
        let handler = || Handler {
            info: info.clone(),
            notices: sender.clone(),
            events: options.events.clone(),
            progress: progress.clone(),
        };
        let describe = describe(target);
        let connect_error = |detail: String| ClientError::Connect { target: describe.clone(), detail };
        let mut pid = None;
        let mut legacy_sse = false;
        let service = match target {
            ClientTarget::Http { url, token } if url.starts_with("ws://") || url.starts_with("wss://") => {
                let pair = crate::websocket_client::connect(url, token.as_deref(), &options.headers)
                    .await
                    .map_err(&connect_error)?;
                handler().serve(pair).await.map_err(|error| connect_error(error.to_string()))?
            }
            ClientTarget::Http { url, token } => {
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = token {
                    config = config.auth_header(token.clone());
                }
                let mut headers = HashMap::new();
                for (name, value) in &options.headers {
                    let name = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| ClientError::Usage(format!("header name '{name}': {e}")))?;
                    let value = http::HeaderValue::from_str(value)
                        .map_err(|e| ClientError::Usage(format!("header '{name}': {e}")))?;
                    headers.insert(name, value);
                }
                config = config.custom_headers(headers.clone());
                let client = crate::trace::TraceHeaderClient::new().map_err(|e| connect_error(e.to_string()))?;
                let transport = StreamableHttpClientTransport::with_client(client, config);
                let streamable = if options.legacy_sse {
                    Err(("known to speak the legacy HTTP+SSE transport".to_owned(), true))
                } else {
                    // A server that accepts the connection and never answers must not
                    // hold the caller forever.
                    match tokio::time::timeout(HTTP_HANDSHAKE_TIMEOUT, handler().serve(transport)).await {
                        Ok(Ok(service)) => Ok(service),
                        Ok(Err(error)) => {
                            let failure = crate::explain::http_failure(url, &error);
                            drop(error);
                            Err(failure.explain().await)
                        }
                        Err(_) => Err((crate::explain::handshake_timeout(url, HTTP_HANDSHAKE_TIMEOUT), false)),
                    }
                };
                match streamable {
                    Ok(service) => service,
                    // A server of the 2024-11-05 era answers the POST with 4xx: try its
                    // HTTP+SSE transport (MCP 2025-03-26 "Backwards Compatibility").
                    // (A server that did not answer at all is not tried again.)
                    Err((streamable, false)) => return Err(connect_error(streamable)),
                    Err((streamable, true)) => {
                        let mut headers: reqwest::header::HeaderMap = headers.into_iter().collect();
                        if let Some(token) = token
                            && let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}"))
                        {
                            headers.insert(http::header::AUTHORIZATION, value);
                        }
                        let legacy = crate::legacy_sse::connect(reqwest::Client::new(), url, headers).await;
                        match legacy {
                            Ok(pair) => {
                                if !options.legacy_sse {
                                    tracing::info!(%url, "the server speaks the legacy HTTP+SSE transport");
                                }
                                legacy_sse = true;
                                match handler().serve(pair).await {
                                    Ok(service) => service,
                                    Err(error) => {
                                        let failure = crate::explain::http_failure(url, &error);
                                        drop(error);
                                        return Err(connect_error(failure.explain().await.0));
                                    }
                                }
                            }
                            Err(sse) => {
                                return Err(connect_error(format!("{streamable} (and as legacy HTTP+SSE: {sse})")));
                            }
                        }
                    }
                }
            }
            ClientTarget::InProcess(server) => {
                let (ours, theirs) = tokio::io::duplex(IN_PROCESS_PIPE_BYTES);
                (server.start)(theirs);
                handler().serve(ours).await.map_err(|error| connect_error(error.to_string()))?
            }
            ClientTarget::Stdio { command, show_stderr } => {
                let (program, args) =
                    command.split_first().ok_or_else(|| ClientError::Usage("--stdio needs a command".into()))?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                if options.clean_env {
                    cmd.env_clear();
                    cmd.envs(std::env::vars_os().filter(|(name, _)| {
                        name.to_str().is_some_and(|name| SAFE_INHERITED_ENV.contains(&name) || name.starts_with("LC_"))
                    }));
                }
                // The child's stdin closing makes a well-behaved server exit; this makes sure.
                cmd.kill_on_drop(true);
                cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
                if let Some(cwd) = &options.cwd {
                    cmd.current_dir(cwd);
                }
                let stderr = match (&options.stderr_lines, show_stderr) {
                    (Some(_), _) => std::process::Stdio::piped(),
                    (None, true) => std::process::Stdio::inherit(),
                    (None, false) => std::process::Stdio::null(),
                };
                let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
                wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
                let (transport, child_stderr) = TokioChildProcess::builder(wrapped)
                    .stderr(stderr)
                    .spawn()
                    .map_err(|e| connect_error(crate::explain::stdio_failure(program, &e)))?;
                pid = transport.id();
                if let (Some(lines), Some(child_stderr)) = (options.stderr_lines.clone(), child_stderr) {
                    tokio::spawn(async move {
                        let mut reader = tokio::io::BufReader::new(child_stderr).lines();
                        while let Ok(Some(line)) = reader.next_line().await {
                            lines(line);
                        }
                    });
                }
                handler()
                    .serve(transport)
                    .await
                    .map_err(|e| connect_error(crate::explain::stdio_failure(program, &e)))?
            }
        };
        Ok(Self {
            service,
            notices: tokio::sync::Mutex::new(notices),
            progress,
            pid,
            legacy_sse,
            _group: ProcessGroup(pid),
        })
    }

    /// The child's process id (stdio targets), the leader of its process group.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the server is spoken to over the legacy HTTP+SSE transport.
    pub fn is_legacy_sse(&self) -> bool {
        self.legacy_sse
    }

    /// Whether the connection is gone (the child exited, the session ended).
    pub fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }

    /// Sends any client request (`resources/read`, `prompts/get`, `completion/complete`,
    /// `resources/subscribe`, a `*/list` page…) and returns the result object.
    ///
    /// # Errors
    /// [`ClientError::Rpc`] for a JSON-RPC error, [`ClientError::Protocol`] when the
    /// connection broke, [`ClientError::Usage`] for a method that is not a client request.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let mut request: ClientRequest = from_json(json!({ "method": method, "params": params }))
            .map_err(|_| ClientError::Usage(format!("'{method}' with these params is not an MCP client request")))?;
        with_traceparent(&mut request);
        let result = self.service.peer().send_request(request).await?;
        serde_json::to_value(result).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Every item of a paginated list (`tools/list` → `tools`, `resources/list` →
    /// `resources`, `resources/templates/list` → `resourceTemplates`, `prompts/list` →
    /// `prompts`), following `nextCursor` (at most 1,000 pages).
    ///
    /// # Errors
    /// As [`McpClient::request`].
    pub async fn list_all(&self, method: &str, key: &str) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..1000 {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let mut page = self.request(method, params).await?;
            if let Some(Value::Array(page_items)) = page.get_mut(key).map(Value::take) {
                items.extend(page_items);
            }
            match page.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => return Ok(items),
            }
        }
        Err(ClientError::Protocol(format!("{method}: more than 1000 pages")))
    }

    /// Calls `tool` and returns the `CallToolResult` as JSON; its progress notifications
    /// (params as JSON) go to `progress`, and when `cancel` fires first the server is sent
    /// `notifications/cancelled` (MCP 2025-11-25 "Cancellation") and the call ends with
    /// [`ClientError::Cancelled`]. Dropping the future also cancels upstream.
    ///
    /// # Errors
    /// [`ClientError::Rpc`], [`ClientError::Protocol`], [`ClientError::Cancelled`].
    pub async fn call_tool_with(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
        cancel: &CancellationToken,
    ) -> Result<Value, ClientError> {
        let mut request: ClientRequest =
            from_json(json!({ "method": "tools/call", "params": { "name": tool, "arguments": arguments } }))
                .map_err(|e| ClientError::Usage(e.message.to_string()))?;
        with_traceparent(&mut request);
        let handle = self.service.peer().send_cancellable_request(request, PeerRequestOptions::no_options()).await?;
        let key = token_key(&serde_json::to_value(&handle.progress_token).unwrap_or(Value::Null));
        let relayed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let route_guard = progress.map(|route| {
            let mut routes = self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let early = std::mem::take(&mut routes.early);
            for (token, params) in early {
                if token == key {
                    let _ = route.send(params);
                } else {
                    routes.early.push((token, params));
                }
            }
            routes.routes.insert(key.clone(), (route, relayed.clone()));
            RouteGuard { progress: self.progress.clone(), key: key.clone() }
        });
        let cancel_on_drop = CancelOnDrop { peer: Some(handle.peer.clone()), id: handle.id.clone() };
        let result = tokio::select! {
            result = handle.await_response() => result,
            () = cancel.cancelled() => {
                cancel_on_drop.send().await;
                return Err(ClientError::Cancelled);
            }
        };
        cancel_on_drop.disarm();
        if route_guard.is_some() {
            trailing_progress(&relayed).await;
        }
        let result = result?;
        serde_json::to_value(result).map_err(|e| ClientError::Protocol(e.to_string()))
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
        let tools = self.service.list_all_tools().await?;
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
        let mut params: CallToolRequestParams = from_json(json!({ "name": tool, "arguments": arguments }))
            .map_err(|e| ClientError::Usage(e.message.to_string()))?;
        if let Some(traceparent) = crate::trace::current_traceparent() {
            params.set_traceparent(&traceparent);
        }
        let result = self.service.call_tool(params).await?;
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

/// Puts the current span's `traceparent` in the request's `_meta` (SEP-414), while spans
/// are exported: the server's spans then continue Rampart's trace.
fn with_traceparent(request: &mut ClientRequest) {
    if let Some(traceparent) = crate::trace::current_traceparent() {
        request.get_meta_mut().set_traceparent(traceparent);
    }
}

fn describe(target: &ClientTarget) -> String {
    match target {
        ClientTarget::Http { url, .. } => url.clone(),
        ClientTarget::Stdio { command, .. } => command.join(" "),
        ClientTarget::InProcess(server) => format!("in-process server '{}'", server.name),
    }
}
