//! [`UpstreamToolbox`]: one MCP server (a child process on stdio, or a URL) served as a
//! toolbox. A supervisor keeps a primary session for listing (restarted with
//! exponential backoff when it dies); calls go to one upstream session per principal, or
//! to the primary one when the upstream is stateless. What the upstream sends back —
//! progress, logs, sampling and elicitation requests, list changes, resource updates —
//! is carried to the calling session.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;
use rampart_core::{
    CallContext, CatalogChanges, ClientPeer, CompletionRef, Content, LogLevel, PeerError, PromptArgument, PromptOutput,
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, ServiceStatus, ToolAnnotations, ToolError,
    ToolOutput, ToolSpec, Toolbox,
};
use rampart_mcp::{ClientError, ClientEvents, ClientTarget, ConnectOptions, McpClient, ServerNotice};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Start, ToolFilter, UpstreamConfig},
    oauth::TokenCache,
    pin::{self, Pin, PinStore},
};

/// Longest wait for an upstream's handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest pause between restarts.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An upstream that stayed up this long starts its backoff afresh when it dies.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How often the supervisor looks whether the primary session is still there.
const LIVENESS_POLL: Duration = Duration::from_millis(200);
/// Every this many liveness polls (5 s), the primary session is pinged.
const PING_EVERY_POLLS: u32 = 25;
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// A principal's upstream session (for stdio, its process) unused this long is closed;
/// its next call opens a new one.
const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// Latencies kept for p50/p99.
const LATENCIES_KEPT: usize = 1024;

/// An upstream MCP server as a toolbox (named `upstream:NAME`).
pub struct UpstreamToolbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UpstreamToolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamToolbox").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

struct Inner {
    name: String,
    toolbox_name: String,
    prefix: String,
    config: UpstreamConfig,
    target: ClientTarget,
    options: ConnectOptions,
    filter: ToolFilter,
    pins: Option<Arc<dyn PinStore>>,
    changes: Mutex<Option<CatalogChanges>>,
    view: ArcSwap<View>,
    state: Mutex<State>,
    primary: ArcSwapOption<Conn>,
    sessions: tokio::sync::Mutex<HashMap<String, Arc<Conn>>>,
    stats: Mutex<Stats>,
    started: AtomicBool,
    eager_waited: AtomicBool,
    /// The URL upstream answered only over the legacy HTTP+SSE transport.
    legacy_sse: AtomicBool,
    /// `oauth.client_secret`, expanded.
    oauth_secret: Option<String>,
    tokens: TokenCache,
    ready: tokio::sync::Notify,
    restart: tokio::sync::Notify,
    shutdown: CancellationToken,
}

/// What the upstream serves now, as Rampart serves it.
#[derive(Default)]
struct View {
    tools: Vec<ToolSpec>,
    /// Served tool name → upstream tool name.
    tool_names: HashMap<String, String>,
    /// Pinned tools whose definition changed: hidden until approved.
    hidden: Vec<ChangedTool>,
    resources: Vec<ResourceSpec>,
    templates: Vec<ResourceTemplateSpec>,
    prompts: Vec<PromptSpec>,
    prompt_names: HashMap<String, String>,
}

/// A pinned tool whose definition is not the pinned one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedTool {
    /// The upstream's tool name.
    pub tool: String,
    /// The name it is served under once approved.
    pub served_as: String,
    /// Unified diff, pinned → now.
    pub diff: String,
    #[serde(skip)]
    pin: Pin,
}

/// The upstream's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started yet.
    Idle,
    /// Connecting.
    Starting,
    /// Answering.
    Ready,
    /// Failed or exited; the next attempt is scheduled.
    BackingOff,
    /// Removed from the configuration or the server is stopping.
    Stopped,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::BackingOff => "backing off",
            Self::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone)]
struct State {
    phase: Phase,
    since: jiff::Timestamp,
    last_error: Option<String>,
    pid: Option<u32>,
    attempts: u32,
}

#[derive(Default)]
struct Stats {
    calls: u64,
    errors: u64,
    latencies_ms: VecDeque<f64>,
}

/// What `rampart upstream list` shows of one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Its name in `[upstreams.NAME]`.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The command line or URL (never a header or environment value).
    pub target: String,
    /// The prefix of its served names.
    pub prefix: String,
    /// Lifecycle phase.
    pub state: Phase,
    /// Since when (RFC 3339).
    pub since: String,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Process ids of its children (stdio): the primary session's, then one per
    /// principal's session.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// Tools served.
    pub tools: usize,
    /// Tools hidden because their definition changed.
    pub changed_tools: usize,
    /// Upstream sessions open for callers (besides the primary).
    pub sessions: usize,
    /// Calls made through it since start.
    pub calls: u64,
    /// Calls that failed (transport errors and `isError` results).
    pub errors: u64,
    /// Median call latency, ms (last 1,024 calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile call latency, ms (last 1,024 calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// One upstream session and the calls in flight on it.
struct Conn {
    client: McpClient,
    events: Arc<ConnEvents>,
    /// A request failed below JSON-RPC (the connection broke, the session is gone):
    /// the session is replaced on next use.
    broken: AtomicBool,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.broken.load(Ordering::Relaxed) || self.client.is_closed()
    }

    /// Notes that `error` broke the session, if it did.
    fn check(&self, error: &ClientError) {
        if matches!(error, ClientError::Protocol(_) | ClientError::Connect { .. }) {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// Subscribed sessions of one URI on one upstream session.
type Subscribers = Vec<(String, Arc<dyn ClientPeer>)>;

/// Routes what an upstream session sends by itself.
struct ConnEvents {
    upstream: Weak<Inner>,
    /// Shared by every principal (stateless upstream): logs and requests go to a caller
    /// only when exactly one call is in flight, so nothing reaches the wrong session.
    shared: bool,
    calls: Mutex<Vec<(u64, CallContext)>>,
    /// The latest call's context: on a principal's own session, a log the upstream sends
    /// between calls goes to the session that called last (requests never do).
    last: Mutex<Option<CallContext>>,
    last_used: Mutex<Instant>,
    next_call: std::sync::atomic::AtomicU64,
    subscriptions: Mutex<HashMap<String, Subscribers>>,
}

impl ConnEvents {
    /// The call in flight a message of the upstream belongs to: the latest one on a
    /// principal's own session, the only one on a shared session.
    fn call_in_flight(&self) -> Option<CallContext> {
        let calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (self.shared, calls.len()) {
            (_, 0) => None,
            (true, 1) | (false, _) => calls.last().map(|(_, context)| context.clone()),
            (true, _) => None,
        }
    }

    /// Where a log of the upstream goes: the call in flight, else (a principal's own
    /// session) the session that called last.
    fn log_target(&self) -> Option<CallContext> {
        self.call_in_flight().or_else(|| {
            if self.shared {
                return None;
            }
            self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        })
    }

    /// Time since the last call entered.
    fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed()
    }

    fn enter(self: &Arc<Self>, context: &CallContext) -> InFlight {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        if !self.shared {
            *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(context.clone());
        }
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, context.clone()));
        InFlight { events: self.clone(), id }
    }
}

/// A call registered on its upstream session until it ends.
struct InFlight {
    events: Arc<ConnEvents>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut calls = self.events.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        calls.retain(|(id, _)| *id != self.id);
    }
}

#[async_trait]
impl ClientEvents for ConnEvents {
    fn notice(&self, notice: ServerNotice) {
        let Some(upstream) = self.upstream.upgrade() else { return };
        match notice {
            ServerNotice::ToolListChanged | ServerNotice::ResourceListChanged | ServerNotice::PromptListChanged => {
                tokio::spawn(async move { upstream.refresh_and_tell().await });
            }
            ServerNotice::Log(params) => {
                let level: LogLevel = serde_json::from_value(params["level"].clone()).unwrap_or(LogLevel::Info);
                let logger = params["logger"].as_str().map(str::to_owned);
                let data = params.get("data").cloned().unwrap_or(Value::Null);
                match self.log_target() {
                    Some(context) => {
                        tokio::spawn(async move { context.log(level, logger.as_deref(), data).await });
                    }
                    None => tracing::info!(upstream = %upstream.name, ?level, logger, %data, "upstream log"),
                }
            }
            ServerNotice::ResourceUpdated(uri) => {
                let peers: Vec<Arc<dyn ClientPeer>> = {
                    let subscriptions = self.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    subscriptions
                        .get(&uri)
                        .map(|s| s.iter().map(|(_, peer)| peer.clone()).collect())
                        .unwrap_or_default()
                };
                tokio::spawn(async move {
                    for peer in peers {
                        peer.notify_resource_updated(&uri).await;
                    }
                });
            }
            ServerNotice::Progress(params) => {
                tracing::debug!(upstream = %upstream.name, %params, "progress for no call in flight");
            }
        }
    }

    /// Sampling and elicitation reach a person's client only on behalf of a call they
    /// made and are waiting for: outside one, the upstream is refused.
    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        match self.call_in_flight() {
            Some(context) => context.request(method, params).await,
            None => Err(PeerError::Unsupported),
        }
    }
}

impl UpstreamToolbox {
    /// The toolbox for `[upstreams.NAME]`; nothing starts until it joins a pipeline
    /// (or, for `start = "eager"`, its tools are first asked for). Paths in the
    /// configuration are relative to `base` (the configuration file's directory).
    ///
    /// # Errors
    /// A message when `${VAR}`s cannot be expanded or the filters do not compile.
    pub fn new(
        name: &str,
        config: UpstreamConfig,
        base: Option<&Path>,
        pins: Option<Arc<dyn PinStore>>,
    ) -> Result<Self, String> {
        let (target, mut options) = config.target(base)?;
        let oauth_secret = config.oauth_secret(base)?;
        options.clean_env = true;
        let filter = config.tools.filter()?;
        let inner = Inner {
            name: name.to_owned(),
            toolbox_name: format!("upstream:{name}"),
            prefix: config.prefix_for(name),
            pins: if config.pin { pins } else { None },
            config,
            target,
            options,
            filter,
            changes: Mutex::new(None),
            view: ArcSwap::from_pointee(View::default()),
            state: Mutex::new(State {
                phase: Phase::Idle,
                since: jiff::Timestamp::now(),
                last_error: None,
                pid: None,
                attempts: 0,
            }),
            primary: ArcSwapOption::empty(),
            sessions: tokio::sync::Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            started: AtomicBool::new(false),
            eager_waited: AtomicBool::new(false),
            legacy_sse: AtomicBool::new(false),
            oauth_secret,
            tokens: TokenCache::default(),
            ready: tokio::sync::Notify::new(),
            restart: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Its name in `[upstreams.NAME]`.
    pub fn upstream_name(&self) -> &str {
        &self.inner.name
    }

    /// State, counters and latencies.
    pub async fn status(&self) -> UpstreamStatus {
        let sessions = self.inner.sessions.lock().await;
        let mut status = self.inner.status(sessions.len());
        status.pids.extend(sessions.values().filter(|conn| !conn.is_closed()).filter_map(|conn| conn.client.pid()));
        status
    }

    /// Pinned tools whose definition changed, with their diffs.
    pub fn changed_tools(&self) -> Vec<ChangedTool> {
        self.inner.view.load().hidden.clone()
    }

    /// Pins the current definition of the changed tool `tool` (upstream or served name),
    /// or of every changed tool, and serves it again. Returns what was approved.
    ///
    /// # Errors
    /// A message when no such tool is waiting for approval or the store fails.
    pub async fn approve(&self, tool: Option<&str>) -> Result<Vec<ChangedTool>, String> {
        let waiting = self.changed_tools();
        let chosen: Vec<ChangedTool> =
            waiting.into_iter().filter(|c| tool.is_none_or(|t| t == c.tool || t == c.served_as)).collect();
        if chosen.is_empty() {
            return Err(match tool {
                Some(tool) => {
                    format!("upstream '{}' has no changed tool '{tool}' waiting for approval", self.inner.name)
                }
                None => format!("upstream '{}' has no changed tool waiting for approval", self.inner.name),
            });
        }
        let Some(pins) = &self.inner.pins else { return Err("pinning is off for this upstream".into()) };
        for changed in &chosen {
            pins.save(&self.inner.name, &changed.pin).await?;
        }
        tracing::warn!(upstream = %self.inner.name, tools = ?chosen.iter().map(|c| &c.tool).collect::<Vec<_>>(), "changed tool definitions approved");
        self.inner.refresh_and_tell().await;
        Ok(chosen)
    }

    /// Closes every upstream session (the child processes with their process groups)
    /// and starts again at once.
    pub async fn restart(&self) {
        self.inner.ensure_started();
        self.inner.sessions.lock().await.clear();
        self.inner.primary.store(None);
        self.inner.restart.notify_one();
    }
}

impl Drop for UpstreamToolbox {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        self.inner.primary.store(None);
    }
}

fn backoff(attempts: u32) -> Duration {
    BACKOFF_FIRST.saturating_mul(2u32.saturating_pow(attempts.min(16))).min(BACKOFF_MAX)
}

fn upstream_error(name: &str, error: &ClientError) -> ToolError {
    match error {
        ClientError::Cancelled => ToolError::Cancelled,
        ClientError::Rpc { code: -32602, message } => ToolError::InvalidArguments(message.clone()),
        ClientError::Rpc { code: -32002, message } => ToolError::NotFound(message.clone()),
        ClientError::Rpc { message, .. } => ToolError::Failed(format!("upstream '{name}': {message}")),
        other => ToolError::Failed(format!("upstream '{name}' failed: {other}")),
    }
}

impl Inner {
    fn set_phase(&self, phase: Phase, error: Option<String>, pid: Option<u32>) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.phase != phase {
            state.since = jiff::Timestamp::now();
        }
        state.phase = phase;
        if error.is_some() {
            state.last_error = error;
        }
        state.pid = pid;
    }

    fn state(&self) -> State {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn status(&self, sessions: usize) -> UpstreamStatus {
        let state = self.state();
        let view = self.view.load();
        let stats = self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut latencies: Vec<f64> = stats.latencies_ms.iter().copied().collect();
        latencies.sort_by(f64::total_cmp);
        let quantile = |q: f64| -> Option<f64> {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into at most 1,024 values"
            )]
            let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies.get(index).map(|ms| (ms * 1000.0).round() / 1000.0)
        };
        let (transport, target) = match &self.target {
            ClientTarget::Stdio { command, .. } => ("stdio", command.join(" ")),
            ClientTarget::Http { url, .. } => ("http", url.clone()),
        };
        UpstreamStatus {
            name: self.name.clone(),
            transport,
            target,
            prefix: self.prefix.clone(),
            state: state.phase,
            since: format!("{:.0}", state.since),
            last_error: state.last_error,
            pids: state.pid.into_iter().collect(),
            tools: view.tools.len(),
            changed_tools: view.hidden.len(),
            sessions,
            calls: stats.calls,
            errors: stats.errors,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
        }
    }

    fn ensure_started(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = supervise(weak.clone()) => {}
                () = shutdown.cancelled() => {}
            }
            if let Some(inner) = weak.upgrade() {
                inner.primary.store(None);
                inner.set_phase(Phase::Stopped, None, None);
            }
        });
    }

    async fn connect(self: &Arc<Self>, shared: bool) -> Result<Conn, String> {
        let events = Arc::new(ConnEvents {
            upstream: Arc::downgrade(self),
            shared,
            calls: Mutex::new(Vec::new()),
            last: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            next_call: 0.into(),
            subscriptions: Mutex::new(HashMap::new()),
        });
        let mut options = self.options.clone();
        options.events = Some(events.clone());
        options.legacy_sse = self.legacy_sse.load(Ordering::Relaxed);
        if let (Some(oauth), Some(secret)) = (&self.config.oauth, &self.oauth_secret) {
            let token = self.tokens.token(oauth, secret).await?;
            options.headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let name = self.name.clone();
        options.stderr_lines = Some(Arc::new(move |line: String| {
            tracing::info!(upstream = %name, "{line}");
        }));
        let connect = McpClient::connect_with(&self.target, options);
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(client)) => {
                // Later sessions go straight to the transport that worked.
                self.legacy_sse.store(client.is_legacy_sse(), Ordering::Relaxed);
                Ok(Conn { client, events, broken: AtomicBool::new(false) })
            }
            Ok(Err(error)) => {
                // A refused token is fetched anew next time.
                self.tokens.forget().await;
                Err(error.to_string())
            }
            Err(_) => Err(format!("no answer to initialize within {}s", CONNECT_TIMEOUT.as_secs())),
        }
    }

    /// Fetches the upstream's lists, applies filters, renames and pins, and installs the
    /// new view.
    async fn refresh(&self) -> Result<(), String> {
        let Some(primary) = self.primary.load_full() else { return Err("not connected".into()) };
        let client = &primary.client;
        let capabilities = client.server_info()["capabilities"].clone();
        let has = |name: &str| capabilities.get(name).is_some_and(|c| !c.is_null());
        let fetch = |method: &'static str, key: &'static str, wanted: bool| async move {
            if wanted {
                client.list_all(method, key).await.map_err(|e| format!("{method}: {e}"))
            } else {
                Ok(Vec::new())
            }
        };
        let tools = fetch("tools/list", "tools", has("tools")).await?;
        let resources = fetch("resources/list", "resources", has("resources")).await.unwrap_or_default();
        let templates =
            fetch("resources/templates/list", "resourceTemplates", has("resources")).await.unwrap_or_default();
        let prompts = fetch("prompts/list", "prompts", has("prompts")).await?;
        let view = self.build_view(tools, &resources, &templates, &prompts).await;
        self.view.store(Arc::new(view));
        Ok(())
    }

    async fn refresh_and_tell(self: &Arc<Self>) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(upstream = %self.name, %error, "upstream lists not refreshed");
            return;
        }
        let changes = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(changes) = changes {
            changes.changed().await;
        }
    }

    fn served_name(&self, upstream_name: &str) -> String {
        let base = self.config.tools.rename.get(upstream_name).map_or(upstream_name, String::as_str);
        format!("{}{base}", self.prefix)
    }

    async fn build_view(&self, tools: Vec<Value>, resources: &[Value], templates: &[Value], prompts: &[Value]) -> View {
        let mut view = View::default();
        let previous = self.view.load();
        let pins: Option<HashMap<String, Pin>> = match &self.pins {
            None => None,
            Some(store) => match store.pins(&self.name).await {
                Ok(pins) => Some(pins.into_iter().map(|pin| (pin.tool.clone(), pin)).collect()),
                Err(error) => {
                    // Fail closed: serve only what was served before.
                    tracing::error!(upstream = %self.name, %error, "pins unreadable; serving only tools already served");
                    let served: HashMap<String, Pin> = HashMap::new();
                    Some(served)
                }
            },
        };
        for tool in tools {
            let Some(upstream_name) = tool["name"].as_str().map(str::to_owned) else { continue };
            if !self.filter.serves(&upstream_name) {
                continue;
            }
            let served_as = self.served_name(&upstream_name);
            if let (Some(store), Some(pins)) = (&self.pins, &pins) {
                let fingerprint = pin::fingerprint(&tool);
                let current = Pin {
                    tool: upstream_name.clone(),
                    fingerprint: fingerprint.clone(),
                    definition: pin::pinned_part(&tool),
                    pinned_at_ms: jiff::Timestamp::now().as_millisecond(),
                };
                match pins.get(&upstream_name) {
                    None => {
                        if let Err(error) = store.save(&self.name, &current).await {
                            tracing::error!(upstream = %self.name, tool = upstream_name, %error, "tool not pinned; not served");
                            continue;
                        }
                    }
                    Some(pinned) if pinned.fingerprint == fingerprint => {}
                    Some(pinned) => {
                        let diff = pin::diff(&pinned.definition, &current.definition);
                        let known =
                            previous.hidden.iter().any(|c| c.tool == upstream_name && c.pin.fingerprint == fingerprint);
                        if !known {
                            tracing::warn!(upstream = %self.name, tool = upstream_name, "a pinned tool's definition changed: hidden until `rampart upstream approve {} {upstream_name}`\n{diff}", self.name);
                            store.changed(&self.name, &upstream_name, &diff).await;
                        }
                        view.hidden.push(ChangedTool { tool: upstream_name, served_as, diff, pin: current });
                        continue;
                    }
                }
            }
            let Some(spec) = self.tool_spec(&served_as, &upstream_name, &tool) else { continue };
            view.tool_names.insert(served_as, upstream_name);
            view.tools.push(spec);
        }
        for resource in resources {
            let (Some(uri), Some(name)) = (resource["uri"].as_str(), resource["name"].as_str()) else { continue };
            view.resources.push(ResourceSpec {
                uri: uri.to_owned(),
                name: format!("{}{name}", self.prefix),
                title: text(resource, "title"),
                description: text(resource, "description"),
                mime_type: text(resource, "mimeType"),
            });
        }
        for template in templates {
            let (Some(uri_template), Some(name)) = (template["uriTemplate"].as_str(), template["name"].as_str()) else {
                continue;
            };
            view.templates.push(ResourceTemplateSpec {
                uri_template: uri_template.to_owned(),
                name: format!("{}{name}", self.prefix),
                description: text(template, "description"),
                mime_type: text(template, "mimeType"),
            });
        }
        for prompt in prompts {
            let Some(name) = prompt["name"].as_str() else { continue };
            let served_as = format!("{}{name}", self.prefix);
            let arguments = prompt["arguments"].as_array().map(Vec::as_slice).unwrap_or_default();
            view.prompts.push(PromptSpec {
                name: served_as.clone(),
                title: text(prompt, "title"),
                description: text(prompt, "description"),
                arguments: arguments
                    .iter()
                    .filter_map(|argument| {
                        Some(PromptArgument {
                            name: argument["name"].as_str()?.to_owned(),
                            description: text(argument, "description"),
                            required: argument["required"].as_bool().unwrap_or(false),
                        })
                    })
                    .collect(),
            });
            view.prompt_names.insert(served_as, name.to_owned());
        }
        view
    }

    fn tool_spec(&self, served_as: &str, upstream_name: &str, tool: &Value) -> Option<ToolSpec> {
        let Some(Value::Object(input_schema)) = tool.get("inputSchema").cloned() else {
            tracing::warn!(upstream = %self.name, tool = upstream_name, "tool without an object inputSchema; not served");
            return None;
        };
        let description = match self.config.tools.descriptions.get(upstream_name) {
            Some(description) => description.clone(),
            None => text(tool, "description").unwrap_or_default(),
        };
        Some(ToolSpec {
            name: served_as.to_owned(),
            title: text(tool, "title"),
            description,
            input_schema,
            output_schema: tool.get("outputSchema").and_then(Value::as_object).cloned(),
            annotations: tool
                .get("annotations")
                .and_then(|a| serde_json::from_value::<ToolAnnotations>(a.clone()).ok())
                .unwrap_or_default(),
        })
    }

    /// The upstream session for this caller: the primary one for a stateless upstream,
    /// else the principal's own (opened on first use).
    async fn connection(self: &Arc<Self>, context: &CallContext) -> Result<Arc<Conn>, ToolError> {
        self.ensure_started();
        let unavailable = || {
            let state = self.state();
            let detail = match (&state.phase, &state.last_error) {
                (Phase::BackingOff, Some(error)) => {
                    format!("restarting (down since {:.0}; last error: {error})", state.since)
                }
                (Phase::BackingOff, None) => format!("restarting (down since {:.0})", state.since),
                (Phase::Starting | Phase::Idle, _) => "starting".to_owned(),
                (Phase::Stopped, _) => "stopped".to_owned(),
                (Phase::Ready, _) => "not connected".to_owned(),
            };
            ToolError::Failed(format!("upstream '{}' is unavailable: {detail}; try again shortly", self.name))
        };
        let primary = self.primary.load_full().filter(|conn| !conn.is_closed());
        if self.config.stateless {
            return primary.ok_or_else(unavailable);
        }
        // Fail fast while the upstream is down rather than start a process per caller.
        if primary.is_none() {
            return Err(unavailable());
        }
        let key = context.caller.principal.id.clone();
        let mut sessions = self.sessions.lock().await;
        if let Some(conn) = sessions.get(&key).filter(|conn| !conn.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = Arc::new(
            self.connect(false)
                .await
                .map_err(|error| ToolError::Failed(format!("upstream '{}' is unavailable: {error}", self.name)))?,
        );
        sessions.insert(key, conn.clone());
        Ok(conn)
    }

    /// Closes principals' sessions (their processes) that are broken, or idle for
    /// [`SESSION_IDLE`] with nothing in flight and no subscription.
    async fn close_idle_sessions(&self) {
        let mut sessions = self.sessions.lock().await;
        let before = sessions.len();
        sessions.retain(|_, conn| {
            let idle = conn.events.idle_for() >= SESSION_IDLE
                && conn.events.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
                && conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty();
            !(idle || conn.is_closed())
        });
        if sessions.len() < before {
            tracing::debug!(upstream = %self.name, closed = before - sessions.len(), "idle upstream sessions closed");
        }
    }

    fn record(&self, started: Instant, failed: bool) {
        let mut stats = self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stats.calls += 1;
        stats.errors += u64::from(failed);
        if stats.latencies_ms.len() == LATENCIES_KEPT {
            stats.latencies_ms.pop_front();
        }
        stats.latencies_ms.push_back(started.elapsed().as_secs_f64() * 1000.0);
    }

    async fn request(self: &Arc<Self>, context: &CallContext, method: &str, params: Value) -> Result<Value, ToolError> {
        let conn = self.connection(context).await?;
        let _in_flight = conn.events.enter(context);
        conn.client.request(method, params).await.map_err(|error| {
            conn.check(&error);
            upstream_error(&self.name, &error)
        })
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Keeps the primary session up: connect, list, wait for it to end, back off, again.
async fn supervise(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        inner.set_phase(Phase::Starting, None, None);
        let began = Instant::now();
        match inner.connect(true).await {
            Ok(conn) => {
                let pid = conn.client.pid();
                inner.primary.store(Some(Arc::new(conn)));
                match inner.refresh().await {
                    Ok(()) => {
                        inner.set_phase(Phase::Ready, None, pid);
                        tracing::info!(upstream = %inner.name, tools = inner.view.load().tools.len(), "upstream ready");
                    }
                    Err(error) => {
                        tracing::warn!(upstream = %inner.name, %error, "upstream connected but its lists failed");
                        inner.set_phase(Phase::Ready, Some(error), pid);
                    }
                }
                inner.ready.notify_waiters();
                let changes = inner.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                if let Some(changes) = changes {
                    changes.changed().await;
                }
                // Wait for the session to end (or a restart to be asked for); a URL
                // upstream that went away is noticed by a ping now and then.
                let mut polls = 0u32;
                loop {
                    let Some(conn) = inner.primary.load_full().filter(|conn| !conn.is_closed()) else { break };
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(PING_EVERY_POLLS) {
                        let ping = tokio::time::timeout(PING_TIMEOUT, conn.client.request("ping", json!({})));
                        match ping.await {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => conn.check(&error),
                            Err(_) => conn.broken.store(true, Ordering::Relaxed),
                        }
                        inner.close_idle_sessions().await;
                    }
                    drop(conn);
                    tokio::select! {
                        () = tokio::time::sleep(LIVENESS_POLL) => {}
                        () = inner.restart.notified() => break,
                    }
                }
                inner.primary.store(None);
                let message = "the upstream session ended (the process exited or the server went away)".to_owned();
                tracing::warn!(upstream = %inner.name, "{message}; restarting");
                let mut state = inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if began.elapsed() >= STABLE_AFTER {
                    state.attempts = 0;
                }
                drop(state);
                inner.set_phase(Phase::BackingOff, Some(message), None);
            }
            Err(error) => {
                tracing::warn!(upstream = %inner.name, %error, "upstream did not start");
                inner.set_phase(Phase::BackingOff, Some(error), None);
                inner.ready.notify_waiters();
            }
        }
        let delay = {
            let mut state = inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let delay = backoff(state.attempts);
            state.attempts = state.attempts.saturating_add(1);
            delay
        };
        // Holding `inner` here is fine: dropping the toolbox cancels this task.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = inner.restart.notified() => {}
        }
    }
}

#[async_trait]
impl Toolbox for UpstreamToolbox {
    #[expect(clippy::misnamed_getters, reason = "the toolbox's name is `upstream:NAME`, not the upstream's NAME")]
    fn name(&self) -> &str {
        &self.inner.toolbox_name
    }

    async fn tools(&self) -> Vec<ToolSpec> {
        let inner = &self.inner;
        // The first catalog of an eager upstream waits for it (once: later collections
        // serve what is there).
        if inner.config.start == Start::Eager && !inner.eager_waited.swap(true, Ordering::AcqRel) {
            let ready = inner.ready.notified();
            inner.ensure_started();
            if inner.state().phase != Phase::Ready {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, ready).await;
            }
        }
        inner.view.load().tools.clone()
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let inner = &self.inner;
        let Some(upstream_name) = inner.view.load().tool_names.get(tool).cloned() else {
            return Err(ToolError::NotFound(format!("tool '{tool}'")));
        };
        let started = Instant::now();
        let conn = match inner.connection(context).await {
            Ok(conn) => conn,
            Err(error) => {
                inner.record(started, true);
                return Err(error);
            }
        };
        let _in_flight = conn.events.enter(context);
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let progress = context.progress_token().map(|_| progress_tx);
        let call = conn.client.call_tool_with(&upstream_name, arguments, progress, &context.cancellation);
        let call = async {
            match inner.config.timeout_secs {
                Some(secs) => tokio::time::timeout(Duration::from_secs(secs), call).await.map_err(|_| secs),
                None => Ok(call.await),
            }
        };
        tokio::pin!(call);
        let result = loop {
            tokio::select! {
                biased;
                Some(params) = progress_rx.recv() => relay_progress(context, &params).await,
                result = &mut call => break result,
            }
        };
        // Progress the upstream sent just before its result may still be on its way
        // through the client's handler: let it land, and relay it before the result.
        tokio::task::yield_now().await;
        while let Ok(params) = progress_rx.try_recv() {
            relay_progress(context, &params).await;
        }
        let result = match result {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => {
                conn.check(&error);
                inner.record(started, !matches!(error, ClientError::Cancelled));
                return Err(upstream_error(&inner.name, &error));
            }
            Err(secs) => {
                inner.record(started, true);
                return Err(ToolError::Failed(format!("upstream '{}' did not answer within {secs}s", inner.name)));
            }
        };
        let output = output_from(&result).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent a result Rampart cannot read: {error}", inner.name))
        });
        inner.record(started, output.as_ref().map_or(true, |output| output.is_error));
        output
    }

    async fn resources(&self) -> Vec<ResourceSpec> {
        self.inner.view.load().resources.clone()
    }

    async fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        self.inner.view.load().templates.clone()
    }

    async fn read_resource(
        &self,
        uri: &str,
        context: &CallContext,
    ) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        let result = self.inner.request(context, "resources/read", json!({ "uri": uri })).await?;
        let contents = serde_json::from_value(result["contents"].clone()).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent contents Rampart cannot read: {error}", self.inner.name))
        })?;
        Ok(Some(contents))
    }

    async fn prompts(&self) -> Vec<PromptSpec> {
        self.inner.view.load().prompts.clone()
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, ToolError> {
        let Some(upstream_name) = self.inner.view.load().prompt_names.get(name).cloned() else {
            return Err(ToolError::NotFound(format!("prompt '{name}'")));
        };
        let params = json!({ "name": upstream_name, "arguments": arguments });
        let result = self.inner.request(context, "prompts/get", params).await?;
        serde_json::from_value(result).map_err(|error| {
            ToolError::Failed(format!("upstream '{}' sent a prompt Rampart cannot read: {error}", self.inner.name))
        })
    }

    async fn complete(
        &self,
        reference: &CompletionRef,
        argument: &str,
        value: &str,
        context: &CallContext,
    ) -> Vec<String> {
        let reference = match reference {
            CompletionRef::Prompt(name) => match self.inner.view.load().prompt_names.get(name) {
                Some(upstream_name) => json!({ "type": "ref/prompt", "name": upstream_name }),
                None => return Vec::new(),
            },
            CompletionRef::ResourceTemplate(uri) => json!({ "type": "ref/resource", "uri": uri }),
        };
        let params = json!({ "ref": reference, "argument": { "name": argument, "value": value } });
        match self.inner.request(context, "completion/complete", params).await {
            Ok(result) => result["completion"]["values"]
                .as_array()
                .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            Err(error) => {
                tracing::debug!(upstream = %self.inner.name, %error, "completion failed");
                Vec::new()
            }
        }
    }

    async fn subscribe(&self, uri: &str, context: &CallContext) -> Result<(), ToolError> {
        let inner = &self.inner;
        let conn = inner.connection(context).await?;
        let session = context.caller.session.clone().unwrap_or_default();
        let first = {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let subscribers = subscriptions.entry(uri.to_owned()).or_default();
            subscribers.retain(|(existing, _)| *existing != session);
            subscribers.push((session, context.peer()));
            subscribers.len() == 1
        };
        if first {
            let _in_flight = conn.events.enter(context);
            conn.client
                .request("resources/subscribe", json!({ "uri": uri }))
                .await
                .map_err(|error| upstream_error(&inner.name, &error))?;
        }
        Ok(())
    }

    async fn unsubscribe(&self, uri: &str, context: &CallContext) {
        let inner = &self.inner;
        let Ok(conn) = inner.connection(context).await else { return };
        let session = context.caller.session.clone().unwrap_or_default();
        let last = {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(subscribers) = subscriptions.get_mut(uri) else { return };
            subscribers.retain(|(existing, _)| *existing != session);
            let last = subscribers.is_empty();
            if last {
                subscriptions.remove(uri);
            }
            last
        };
        if last && let Err(error) = conn.client.request("resources/unsubscribe", json!({ "uri": uri })).await {
            tracing::debug!(upstream = %inner.name, %error, "upstream unsubscribe failed");
        }
    }

    async fn readiness(&self) -> Vec<ServiceStatus> {
        let status = self.inner.status(0);
        let ok = status.state == Phase::Ready;
        let detail = match (&status.state, &status.last_error) {
            (Phase::Ready, _) => format!("{} tools", status.tools),
            (phase, Some(error)) => format!("{phase} since {}: {error}", status.since),
            (phase, None) => format!("{phase} since {}", status.since),
        };
        vec![ServiceStatus { name: self.inner.toolbox_name.clone(), ok, detail: Some(detail) }]
    }

    fn session_closed(&self, session: &str) {
        let inner = &self.inner;
        let mut conns: Vec<Arc<Conn>> = inner.primary.load_full().into_iter().collect();
        if let Ok(sessions) = inner.sessions.try_lock() {
            conns.extend(sessions.values().cloned());
        }
        for conn in conns {
            let mut subscriptions = conn.events.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for subscribers in subscriptions.values_mut() {
                subscribers.retain(|(existing, _)| existing != session);
            }
            subscriptions.retain(|_, subscribers| !subscribers.is_empty());
        }
    }

    fn watch(&self, changes: CatalogChanges) {
        *self.inner.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(changes);
        self.inner.ensure_started();
    }
}

/// Sends the caller a progress notification the upstream sent (params as JSON) under the
/// caller's own progress token.
async fn relay_progress(context: &CallContext, params: &Value) {
    let Some(progress) = params["progress"].as_f64() else { return };
    let message = params["message"].as_str().map(str::to_owned);
    context.progress(progress, params["total"].as_f64(), message).await;
}

/// A `CallToolResult` (JSON) as a [`ToolOutput`].
fn output_from(result: &Value) -> Result<ToolOutput, serde_json::Error> {
    let content: Vec<Content> = match result.get("content") {
        Some(content) => serde_json::from_value(content.clone())?,
        None => Vec::new(),
    };
    Ok(ToolOutput {
        content,
        structured_content: result.get("structuredContent").filter(|v| !v.is_null()).cloned(),
        is_error: result["isError"].as_bool().unwrap_or(false),
    })
}
