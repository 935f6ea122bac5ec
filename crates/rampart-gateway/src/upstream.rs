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
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, ServiceStatus, TaskSupport, ToolAnnotations,
    ToolError, ToolOutput, ToolSpec, Toolbox,
};
use rampart_mcp::{ClientError, ClientEvents, ClientTarget, ConnectOptions, InProcessServer, McpClient, ServerNotice};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Resolved, Start, ToolFilter, UpstreamConfig},
    oauth::TokenCache,
    pin::{self, Pin, PinStore},
};

mod session;
mod status;
mod supervise;
mod toolbox;
mod view;

use session::{Conn, ConnEvents};
pub use status::{Phase, UpstreamStatus};
use status::{State, Stats};
use supervise::supervise;
pub use view::ChangedTool;
use view::View;

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
    /// The first catalog collection asked for the tools.
    first_listed: AtomicBool,
    /// Lazy, with pinned tools served: starts on its first call.
    on_demand: AtomicBool,
    /// The URL upstream answered only over the legacy HTTP+SSE transport.
    legacy_sse: AtomicBool,
    /// `oauth.client_secret`, expanded.
    oauth_secret: Option<String>,
    tokens: TokenCache,
    ready: tokio::sync::Notify,
    restart: tokio::sync::Notify,
    shutdown: CancellationToken,
}

impl UpstreamToolbox {
    /// The toolbox for `[upstreams.NAME]`. An eager upstream starts now (so that several
    /// start side by side, and the first catalog waits for each only as long as it
    /// takes); a lazy one when it joins a pipeline or is first called. Must run inside a
    /// Tokio runtime. Paths in the configuration are relative to `base` (the
    /// configuration file's directory).
    ///
    /// # Errors
    /// A message when `${VAR}`s cannot be expanded or the filters do not compile.
    pub fn new(
        name: &str,
        config: UpstreamConfig,
        base: Option<&Path>,
        pins: Option<Arc<dyn PinStore>>,
    ) -> Result<Self, String> {
        let Resolved { target, options, oauth_secret } = config.resolve(base)?;
        let pins = if config.pin { pins } else { None };
        Self::connecting(name, format!("upstream:{name}"), config, target, options, oauth_secret, pins)
    }

    /// An rmcp server of this program mounted as the toolbox `NAME`, under the
    /// same rules as a configured upstream: `config`'s prefix (none by default here: the
    /// program's own tools keep their names), filters and session sharing apply (one
    /// instance per principal unless `stateless`), its tools join the first catalog
    /// (started at once), nothing is pinned (the code is the program's own). Must run
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// A message for a bad prefix, rename or filter.
    pub fn mounted(name: &str, server: InProcessServer, config: UpstreamConfig) -> Result<Self, String> {
        config.check_serving()?;
        let config = UpstreamConfig {
            prefix: Some(config.prefix.clone().unwrap_or_default()),
            start: Start::Eager,
            pin: false,
            ..config
        };
        let options = ConnectOptions { client_name: Some("rampart".into()), ..ConnectOptions::default() };
        Self::connecting(name, name.to_owned(), config, ClientTarget::InProcess(server), options, None, None)
    }

    fn connecting(
        name: &str,
        toolbox_name: String,
        config: UpstreamConfig,
        target: ClientTarget,
        options: ConnectOptions,
        oauth_secret: Option<String>,
        pins: Option<Arc<dyn PinStore>>,
    ) -> Result<Self, String> {
        let filter = config.tools.filter()?;
        let inner = Inner {
            name: name.to_owned(),
            toolbox_name,
            prefix: config.prefix_for(name),
            pins,
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
            first_listed: AtomicBool::new(false),
            on_demand: AtomicBool::new(false),
            legacy_sse: AtomicBool::new(false),
            oauth_secret,
            tokens: TokenCache::default(),
            ready: tokio::sync::Notify::new(),
            restart: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
        };
        let inner = Arc::new(inner);
        if inner.config.start == Start::Eager {
            inner.ensure_started();
        }
        Ok(Self { inner })
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

    /// The upstream session for this caller: the primary one for a stateless upstream,
    /// else the principal's own (opened on first use).
    async fn connection(self: &Arc<Self>, context: &CallContext) -> Result<Arc<Conn>, ToolError> {
        let first_start = self.ready.notified();
        self.ensure_started();
        // An upstream starting for the first time (on demand, or still coming up) is
        // waited for; one that is restarting answers at once.
        let state = self.state();
        if self.primary.load().is_none() && state.attempts == 0 && matches!(state.phase, Phase::Idle | Phase::Starting)
        {
            let _ = tokio::time::timeout(CONNECT_TIMEOUT, first_start).await;
        }
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
