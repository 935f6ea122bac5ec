//! Running the server: bind, banner, serve, reload, and graceful shutdown.
//!
//! Shutdown (SIGINT/SIGTERM): stop accepting connections, let tool calls in flight finish
//! and their answers be sent, for up to `server.shutdown_grace_secs`, then close MCP
//! sessions and SSE streams, and return (the binary exits 0).
//!
//! Reload (SIGHUP): the local operator calls the `admin_config_reload` tool through the
//! pipeline, like `rampart config reload` does over MCP: authorized and recorded.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rampart_audit::AuditLog;
use rampart_config::{Config, LoadOptions, TransportKind};
use rampart_core::{CallContext, Caller, Pipeline, Transport};
use rampart_mcp::{HttpOptions, McpHandler, serve_stdio};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    AppState, Built, Cluster, ClusterEvent, ResponsesInFlight, ServerError, ToolboxFactory, build, listener,
    metrics_router, router,
};

/// A running HTTP server.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// The metrics listener's address, when separate.
    pub metrics_addr: Option<SocketAddr>,
    /// Cancel to start a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Completes when the server has stopped.
    pub task: JoinHandle<()>,
}

/// Binds and serves HTTP in the background.
///
/// # Errors
/// [`ServerError::Unauthenticated`] for a non-loopback address without credentials,
/// [`ServerError::Bind`].
pub async fn start_http(config: &Config, built: &Built) -> Result<Running, ServerError> {
    let address = config.server.listen;
    if !address.ip().is_loopback() && built.credentials.anonymous_is_privileged() && !config.server.insecure_no_auth {
        return Err(ServerError::Unauthenticated(address));
    }
    if !address.ip().is_loopback() && config.server.insecure_no_auth {
        tracing::warn!(%address, "--insecure-no-auth on a non-loopback address: anyone who can reach it is admin");
    }
    let listener = TcpListener::bind(address).await.map_err(|source| ServerError::Bind { address, source })?;
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let sessions_closed = CancellationToken::new();
    let state = AppState {
        credentials: built.credentials.clone(),
        store: built.store.clone(),
        pipeline: built.pipeline.clone(),
        handler: built.handler.clone(),
        body_read_timeout: Duration::from_secs(config.limits.body_read_timeout_secs.max(1)),
        http: HttpOptions {
            sessions: !config.server.stateless,
            max_body_bytes: config.server.max_body_bytes,
            session_idle_timeout: Duration::from_secs(config.server.session_idle_secs),
            shutdown: sessions_closed.clone(),
        },
        allowed_hosts: config.server.allowed_hosts.clone(),
        allowed_origins: config.server.allowed_origins.clone(),
        guard: built.guard.clone(),
        metrics_on_main: config.server.metrics_listen.is_none(),
        responses: ResponsesInFlight::default(),
        legacy_sse: config
            .server
            .legacy_sse
            .then(|| (config.server.legacy_sse_path.clone(), config.server.legacy_messages_path.clone())),
        websocket: config.server.websocket,
        console: config.server.console,
        tls: config.tls.is_some(),
        audit_file: config.audit.file.clone(),
        audit_checkpoints: crate::CheckpointFiles::configured(config),
    };
    let responses = state.responses.clone();
    let (app, metrics) = router(state);
    let header_timeout = Duration::from_secs(config.limits.header_read_timeout_secs.max(1));
    let proxies =
        Arc::new(crate::proxies::TrustedProxies::parse(&config.server.trusted_proxies).map_err(ServerError::Config)?);
    let metrics_addr = match config.server.metrics_listen {
        Some(address) => {
            let metrics_listener =
                TcpListener::bind(address).await.map_err(|source| ServerError::Bind { address, source })?;
            let bound = metrics_listener.local_addr()?;
            tokio::spawn(listener::serve(
                metrics_listener,
                metrics_router(metrics),
                shutdown.clone(),
                header_timeout,
                None,
                proxies.clone(),
            ));
            Some(bound)
        }
        None => None,
    };
    let tls = match &config.tls {
        Some(tls) => Some(crate::tls::acceptor(tls).map_err(|e| ServerError::Tls(e.to_string()))?),
        None => None,
    };
    let server = listener::serve(listener, app, shutdown.clone(), header_timeout, tls, proxies);
    let drain = drain_then_close(
        built.pipeline.clone(),
        built.handler.clone(),
        responses,
        shutdown.clone(),
        sessions_closed,
        Duration::from_secs(config.server.shutdown_grace_secs),
    );
    let stopping = shutdown.clone();
    let task = tokio::spawn(async move {
        let drain = tokio::spawn(drain);
        server.await;
        if stopping.is_cancelled() {
            // Connections are gone, but calls running as tasks hold none: wait for them
            // (bounded by the grace period) so that each is recorded before the audit log
            // is drained.
            let _ = drain.await;
        } else {
            drain.abort();
        }
    });
    Ok(Running { local_addr, metrics_addr, shutdown, task })
}

/// After `shutdown`, waits (bounded by `grace`) for calls in flight to finish *and* for
/// their answers to be sent, then closes sessions and streams so the HTTP server can
/// finish. A call leaves the pipeline a moment before its response is written to its
/// stream; closing the session in that moment would lose the answer.
async fn drain_then_close(
    pipeline: Arc<Pipeline>,
    handler: McpHandler,
    responses: ResponsesInFlight,
    shutdown: CancellationToken,
    close: CancellationToken,
    grace: Duration,
) {
    shutdown.cancelled().await;
    // Tool calls running as tasks have no client waiting on them: they are cancelled
    // (and recorded as such) rather than waited for.
    handler.begin_shutdown();
    let in_flight = pipeline.in_flight();
    if in_flight > 0 {
        tracing::info!(in_flight, grace_s = grace.as_secs(), "waiting for tool calls in flight");
    }
    let busy = || pipeline.in_flight() > 0 || responses.count() > 0;
    if !wait_idle(busy, grace).await {
        tracing::warn!(
            in_flight = pipeline.in_flight(),
            responses = responses.count(),
            "grace period over; closing with calls or answers in flight"
        );
    }
    close.cancel();
}

/// Waits until `busy` says no, for at most `grace`; whether it did.
async fn wait_idle(busy: impl Fn() -> bool, grace: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + grace;
    while busy() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !busy()
}

/// Applies what the other replicas of the cluster publish: their revoked tokens leave this
/// replica's cache, the addresses they blocked are blocked here, their reloads run here.
fn apply_cluster_events(cluster: &Arc<Cluster>, built: &Built, stop: CancellationToken) {
    let (tokens, guard, reloader) = (built.tokens.clone(), built.guard.clone(), built.reloader.clone());
    let apply = move |event: ClusterEvent| match event {
        ClusterEvent::TokenRevoked { digest } => tokens.forget_digest(&digest),
        ClusterEvent::AuthBlocked { address, wait_ms } => guard.limits().block(address, Duration::from_millis(wait_ms)),
        ClusterEvent::Reload => {
            let reloader = reloader.clone();
            tokio::spawn(async move {
                tracing::info!("another replica reloaded its configuration: reloading");
                if let Err(error) = reloader.reload_for_cluster().await {
                    tracing::warn!(%error, "the reload another replica made does not apply here");
                }
            });
        }
    };
    drop(cluster.listen(apply, stop));
}

/// Builds everything from `config` (loaded with `options`, which a reload reads again)
/// with the toolboxes `added` by the embedding program, prints the banner, and serves
/// until SIGINT/SIGTERM (HTTP) or until stdin closes (stdio); SIGHUP reloads the
/// configuration.
///
/// # Errors
/// [`ServerError`] for bad configuration or a failed bind.
pub async fn serve(config: Config, options: LoadOptions, added: Vec<ToolboxFactory>) -> Result<(), ServerError> {
    let transport = match config.server.transport {
        TransportKind::Http => Transport::StreamableHttp,
        TransportKind::Stdio => Transport::Stdio,
        TransportKind::Dbus => Transport::Dbus,
    };
    let built = build(&config, transport, options, added).await?;
    // A stdio client's first message is answered while the audit log reads its chain's
    // head (the store opens then: cold start); no call runs before it has. The other
    // transports serve once it has.
    if config.server.transport != TransportKind::Stdio {
        built.audit_ready().await?;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    if let Some(cluster) = &built.cluster {
        apply_cluster_events(cluster, &built, shutdown.clone());
    }
    tokio::spawn(reload_on_hangup(built.pipeline.clone(), local_operator(&config)));
    // Set when the audit log refuses its chain after stdio began serving: the server stops.
    let mut refused = None;
    match config.server.transport {
        TransportKind::Stdio => {
            banner(&config, &built, "stdio (MCP on stdin/stdout)");
            tokio::select! {
                served = serve_stdio(built.handler.clone(), shutdown) => served?,
                Err(error) = built.audit_ready() => refused = Some(error),
            }
        }
        TransportKind::Dbus => {
            let bus = format!("{:?}", config.dbus.bus).to_lowercase();
            banner(
                &config,
                &built,
                &format!("D-Bus: {} at {} on the {bus} bus", crate::dbus::BUS_NAME, crate::dbus::OBJECT_PATH),
            );
            crate::dbus::serve_dbus(&config.dbus, built.handler.clone(), built.guard.clone(), shutdown)
                .await
                .map_err(|error| ServerError::Dbus(error.to_string()))?;
        }
        TransportKind::Http => {
            let running = start_http(&config, &built).await?;
            let mode = if config.server.stateless { "stateless" } else { "sessions; 2026-07-28 clients stateless" };
            let scheme = if config.tls.is_some() { "https" } else { "http" };
            let mtls = match &config.tls {
                Some(tls) if tls.client_ca.is_some() => ", TLS 1.3, client certificates required",
                Some(_) => ", TLS 1.3",
                None => "",
            };
            banner(
                &config,
                &built,
                &format!("streamable HTTP at {scheme}://{}/mcp ({mode}{mtls})", running.local_addr),
            );
            if config.server.legacy_sse {
                eprintln!(
                    "  legacy:    HTTP+SSE at {scheme}://{}{} (2024-11-05 clients; messages to {})",
                    running.local_addr, config.server.legacy_sse_path, config.server.legacy_messages_path
                );
            }
            if config.server.websocket {
                let ws = if config.tls.is_some() { "wss" } else { "ws" };
                eprintln!("  websocket: {ws}://{}/ws (subprotocol mcp)", running.local_addr);
            }
            if config.server.console {
                eprintln!("  console:   {scheme}://{}/console (sign in with an API token)", running.local_addr);
            }
            match running.metrics_addr {
                Some(address) => eprintln!("  metrics:   http://{address}/metrics (no authentication)"),
                None => eprintln!("  metrics:   http://{}/metrics (authenticated)", running.local_addr),
            }
            bootstrap_admin_token(&built, local_operator(&config)).await;
            shutdown.cancelled().await;
            tracing::info!("shutting down");
            running.shutdown.cancel();
            let grace = Duration::from_secs(config.server.shutdown_grace_secs + 2);
            if tokio::time::timeout(grace, running.task).await.is_err() {
                tracing::warn!("connections still open after the grace period; exiting");
            }
        }
    }
    // Calls running as tasks outlive the transport that started them (stdio at EOF,
    // D-Bus at shutdown; HTTP's drain did this already): cancel them and let each be
    // recorded before the audit log drains.
    built.handler.begin_shutdown();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    if !wait_idle(|| built.pipeline.in_flight() > 0, grace).await {
        tracing::warn!(in_flight = built.pipeline.in_flight(), "grace period over; exiting with calls in flight");
    }
    if let Some(audit) = built.guard.audit() {
        // A refused chain takes no record: what is queued goes to this log at once.
        let grace = if refused.is_some() { Duration::ZERO } else { AuditLog::DEFAULT_DRAIN_GRACE };
        match audit.drain(grace).await {
            Ok(0) => tracing::debug!("audit log drained"),
            Ok(lost) => tracing::error!(lost, "audit records not stored at shutdown (each is in this log)"),
            Err(error) => tracing::error!(%error, "audit log not drained at shutdown"),
        }
    }
    built.store.close().await;
    if let Some(error) = refused {
        return Err(error);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The local operator (`[stdio]`) running a command on the server itself: a signal, the
/// first run.
fn local_operator(config: &Config) -> Caller {
    Caller::cli(crate::stdio_principal(config))
}

/// Calls an `admin` tool as `caller` through the pipeline.
async fn call_admin(
    pipeline: &Pipeline,
    caller: &Caller,
    tool: &str,
    arguments: serde_json::Value,
) -> Result<rampart_core::ToolOutput, String> {
    let context = CallContext::detached(caller.clone(), pipeline.guard().clone());
    let arguments = arguments.as_object().cloned();
    match pipeline.call_tool(tool, arguments, &context).await {
        Ok(output) if !output.is_error => Ok(output),
        Ok(output) => Err(output.to_text()),
        Err(rampart_core::CallError::UnknownTool(_)) => Err(format!(
            "the local operator '{}' may not call {tool}: give [stdio] roles the admin role, or use \
             `rampart token create` as an operator who has it",
            caller.principal
        )),
        Err(error) => Err(error.to_string()),
    }
}

/// First run: with no static key, no Basic user and no active API token, nobody could
/// authenticate. The local operator (whoever started the server, `[stdio]`) creates an
/// `admin` token through the pipeline (`admin_token_create`, recorded like any call), and
/// it is shown once; a token whose record cannot be written is not shown.
async fn bootstrap_admin_token(built: &Built, operator: Caller) {
    if built.credentials.is_insecure() || built.credentials.has_other_credentials() {
        return;
    }
    match built.tokens.active_count().await {
        Ok(0) => {}
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "cannot count API tokens; no first-run admin token created");
            return;
        }
    }
    let name = match built.tokens.list().await {
        Ok(tokens) if tokens.iter().any(|t| t.name == "admin") => {
            format!("admin-{}", jiff::Timestamp::now().as_second())
        }
        _ => "admin".to_owned(),
    };
    let arguments = serde_json::json!({"name": name, "roles": ["admin"]});
    let created = call_admin(&built.pipeline, &operator, "admin_token_create", arguments).await;
    let token = created.as_ref().ok().and_then(|output| output.structured_content.as_ref()?["token"].as_str());
    match (token, &created) {
        (Some(token), _) => {
            eprintln!();
            eprintln!("  First run: created API token '{name}' with role admin. It is shown only now:");
            eprintln!();
            eprintln!("    {token}");
            eprintln!();
            eprintln!("  Send it as `Authorization: Bearer <token>`. Make narrower tokens with");
            eprintln!("  `rampart token create --name NAME --role reader`, and revoke this one when done.");
            eprintln!();
        }
        (None, Err(error)) => {
            tracing::error!(%error, principal = %operator.principal, "cannot create the first-run admin token")
        }
        (None, Ok(_)) => tracing::error!("the first-run admin token was created but its secret is missing"),
    }
}

/// On SIGHUP, the local operator reloads the configuration through the pipeline.
async fn reload_on_hangup(pipeline: Arc<Pipeline>, operator: Caller) {
    #[cfg(unix)]
    {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; reload with `rampart config reload`");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            match call_admin(&pipeline, &operator, "admin_config_reload", serde_json::json!({})).await {
                Ok(output) => {
                    tracing::info!(result = %output.to_text(), "SIGHUP reload applied");
                }
                Err(error) => tracing::error!(%error, "SIGHUP reload refused; the running configuration stays"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (pipeline, operator);
}

fn banner(config: &Config, built: &Built, transport: &str) {
    let tools: Vec<String> = built.pipeline.all_tools().into_iter().map(|t| t.name).collect();
    let auth = match config.server.transport {
        TransportKind::Stdio => {
            format!("stdio caller '{}' (roles {})", config.stdio.principal, config.stdio.roles.join(","))
        }
        TransportKind::Http => built.credentials.mode(),
        TransportKind::Dbus => {
            let users: Vec<String> =
                config.dbus.users.iter().map(|(uid, user)| format!("uid {uid} ({})", user.roles.join(","))).collect();
            if users.is_empty() {
                "the bus's Unix user of each connection; none allowed ([dbus.users.UID] roles = [...])".to_owned()
            } else {
                format!("the bus's Unix user of each connection: {}", users.join(", "))
            }
        }
    };
    let commit = if config.audit.synchronous { "synchronous" } else { "asynchronous" };
    let fail = format!("{:?}", config.audit.on_failure).to_lowercase();
    let audit = match (&built.guard.audit(), &config.audit.file) {
        (None, _) => "off".to_owned(),
        (Some(_), Some(file)) => format!("{} (fail {fail}, {commit} commit)", file.display()),
        (Some(_), None) => format!("store (fail {fail}, {commit} commit)"),
    };
    // One write: stderr is unbuffered, and line by line the banner took ~20 system calls
    // of a stdio cold start.
    let banner = format!(
        "rampart {}\n  transport: {transport}\n  auth:      {auth}\n  store:     {}\n  audit:     {audit}\n  \
         toolboxes: {}\n  tools:     {}\n",
        rampart_core::VERSION,
        built.store.display_url(),
        built.pipeline.toolbox_names().join(", "),
        tools.join(", ")
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), banner.as_bytes());
}

async fn forward_signals(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                let _ = interrupt.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    shutdown.cancel();
}
