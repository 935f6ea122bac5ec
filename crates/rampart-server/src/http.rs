//! The axum router and its middleware.
//!
//! What runs, outermost first, and why:
//! 1. [`front`], for every request: the response is counted in flight (see below), the
//!    request gets its span and `x-request-id` (every log line of a request carries its
//!    id, including refusals below), and the Host/Origin guard refuses DNS-rebinding
//!    attempts before anything else runs, public paths included;
//! 2. public routes `/`, `/healthz`, `/readyz` (no authentication, for probes);
//! 3. at `/mcp`, [`mcp_gate`], one step after another in one middleware:
//!    - authentication: credentials become the [`Caller`](rampart_core::Caller) that the
//!      MCP handler and the pipeline use;
//!    - session binding: a session belongs to the principal that opened it; another
//!      principal naming it is answered as for an unknown session, and recorded
//!      (`sessions.rs`);
//!    - JSON-RPC validation of POST bodies (time to receive, size, JSON, batch, version),
//!      after authentication so that unauthenticated bodies are never read;
//!    - the MCP streamable HTTP service (rmcp), which enforces `Accept` (406) and
//!      sessions, run with the caller known to rmcp's synchronous `get_tool` hook
//!      ([`rampart_mcp::with_caller`]);
//!    - a POST's event stream gathered into one write when it ends within a few
//!      milliseconds (`coalesce.rs`: one TCP segment per quick call instead of three);
//!
//!    the other authenticated routes (legacy HTTP+SSE, `/metrics`, WebSocket) take the
//!    same steps as separate middleware (`auth::authenticate`, `jsonrpc::validate`).
//!
//! The steps are folded into two middleware rather than one each because every
//! `from_fn` layer boxes and moves the request's future and clones its state on every
//! request: six layers cost more CPU per call than the checks they ran (bench/README.md,
//! "Against a bare rmcp server").
//!
//! With `server.console`, the web console's routes (`/console/…`, see `console`) sit
//! beside the protected ones, behind the same front, with their own gate: a sign-in
//! session cookie instead of an `Authorization` header, checked by the same credentials.
//!
//! Every answer these layers give themselves is built in `refusal.rs`.
//!
//! [`ResponsesInFlight`] counts responses not yet fully sent, so that shutdown closes
//! sessions only once every answer has reached its client.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    Json, Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, Method, StatusCode, header};
use rampart_core::Pipeline;
use rampart_mcp::{HttpOptions, McpHandler, SessionCount, streamable_http_service};
use rampart_store::Store;
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    SecurityGuard, auth::Credentials, guard::OriginGuard, jsonrpc::BodyLimits, refusal::HttpRefusal,
    sessions::SessionBinding,
};

/// What the router needs.
#[derive(Clone)]
pub struct AppState {
    /// Credentials checked on every non-public path.
    pub credentials: Arc<Credentials>,
    /// The store, for `/readyz`.
    pub store: Store,
    /// The pipeline, for the toolboxes' readiness.
    pub pipeline: Arc<Pipeline>,
    /// The MCP handler mounted at `/mcp`.
    pub handler: McpHandler,
    /// Streamable HTTP settings.
    pub http: HttpOptions,
    /// `limits.body_read_timeout_secs`.
    pub body_read_timeout: std::time::Duration,
    /// Authorization, audit, limits and metrics.
    pub guard: Arc<SecurityGuard>,
    /// Serve `/metrics` here, behind authentication (no separate metrics address).
    pub metrics_on_main: bool,
    /// `server.allowed_hosts`.
    pub allowed_hosts: Vec<String>,
    /// `server.allowed_origins`.
    pub allowed_origins: Vec<String>,
    /// Counts responses still being sent, for shutdown.
    pub responses: ResponsesInFlight,
    /// The legacy HTTP+SSE transport's paths (stream, messages), when it is served.
    pub legacy_sse: Option<(String, String)>,
    /// Serve MCP over WebSocket at `/ws`.
    pub websocket: bool,
    /// Serve the web console at `/console` (`server.console`).
    pub console: bool,
    /// The listener serves TLS (the console's cookies are then `Secure`).
    pub tls: bool,
    /// `[audit] file`, when the audit log is a JSON-lines file (the console's Audit page).
    pub audit_file: Option<std::path::PathBuf>,
    /// The configured audit checkpoints and their public key (the console's Audit page).
    pub audit_checkpoints: crate::CheckpointFiles,
}

/// The number of HTTP responses the server has started and not finished sending (body
/// fully written, or dropped when the client went away).
///
/// `GET` requests are not counted: on `/mcp` they are the standalone SSE streams, which
/// stay open until the session closes, so waiting for them would wait for the grace period
/// every time. A `POST` that carries a tool call is counted from its arrival until the
/// last byte of its answer (rmcp's per-request SSE stream ends after the response), which
/// is what shutdown must wait for: a call that finished in the pipeline has not yet been
/// answered until its response is written.
#[derive(Clone, Debug, Default)]
pub struct ResponsesInFlight(Arc<AtomicUsize>);

impl ResponsesInFlight {
    /// Responses currently in flight.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn enter(&self) -> ResponseGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        ResponseGuard(self.0.clone())
    }
}

/// Decrements [`ResponsesInFlight`] when dropped (with the response body).
struct ResponseGuard(Arc<AtomicUsize>);

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its [`ResponseGuard`] until hyper has sent or dropped it.
struct TrackedBody {
    body: axum::body::Body,
    _guard: ResponseGuard,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Builds the whole HTTP application, and the source of `/metrics` for a separate
/// metrics listener.
pub fn router(state: AppState) -> (Router, MetricsSource) {
    let origin = OriginGuard::new(&state.allowed_hosts, &state.allowed_origins);
    let (mcp, sessions) = streamable_http_service(state.handler.clone(), state.http.clone());
    let body_limits = BodyLimits {
        max_bytes: state.http.max_body_bytes,
        read_timeout: state.body_read_timeout,
        guard: state.guard.clone(),
    };
    let binding = SessionBinding {
        owners: state.handler.session_owners(),
        live: sessions.clone(),
        guard: state.guard.clone(),
        sessions: state.http.sessions,
    };
    let legacy = state.legacy_sse.as_ref().map(|(sse_path, messages_path)| {
        let options = rampart_mcp::SseOptions { shutdown: state.http.shutdown.clone(), ..Default::default() };
        let sessions = rampart_mcp::LegacySse::new(state.handler.clone(), options);
        (sessions, sse_path.clone(), messages_path.clone())
    });
    let scrape = MetricsSource {
        guard: state.guard.clone(),
        sessions,
        legacy: legacy.as_ref().map(|(sessions, ..)| sessions.clone()),
    };
    let gate = Arc::new(McpGate { credentials: state.credentials.clone(), binding, body_limits: body_limits.clone() });
    let mcp = Router::new().nest_service("/mcp", mcp).layer(middleware::from_fn_with_state(gate, mcp_gate));
    let mut protected = Router::new();
    if let Some((sessions, sse_path, messages_path)) = legacy {
        protected = protected.merge(legacy_router(&state, sessions, &sse_path, &messages_path, body_limits));
    }
    if state.metrics_on_main {
        protected = protected.route("/metrics", get(metrics).with_state(scrape.clone()));
    }
    let protected =
        protected.layer(middleware::from_fn_with_state(state.credentials.clone(), crate::auth::authenticate));
    let mut transports = vec!["streamable_http"];
    if state.legacy_sse.is_some() {
        transports.push("http_sse");
    }
    let mut websocket: Router = Router::new();
    if state.websocket {
        transports.push("websocket");
        let route = crate::websocket::WebSocketRoute {
            handler: state.handler.clone(),
            shutdown: state.http.shutdown.clone(),
            max_message_bytes: state.http.max_body_bytes,
        };
        websocket = Router::new()
            .route("/ws", get(crate::websocket::upgrade))
            .with_state(route)
            .layer(middleware::from_fn_with_state(state.credentials.clone(), crate::auth::authenticate))
            .layer(middleware::from_fn(crate::websocket::token_from_subprotocol));
    }
    let console = if state.console {
        crate::console::router(crate::console::ConsoleParts {
            credentials: state.credentials.clone(),
            guard: state.guard.clone(),
            pipeline: state.pipeline.clone(),
            store: state.store.clone(),
            tls: state.tls,
            transports: transports.clone(),
            audit_file: state.audit_file.clone(),
            audit_checkpoints: state.audit_checkpoints.clone(),
        })
    } else {
        Router::new()
    };
    let app = Router::new()
        .route("/", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(ready).with_state((state.store.clone(), state.pipeline.clone(), transports)))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata).with_state(state.credentials.clone()))
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(resource_metadata).with_state(state.credentials.clone()),
        )
        .merge(mcp)
        .merge(protected)
        .merge(websocket)
        .merge(console)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::new(Front { origin, responses: state.responses.clone() }), front));
    (app, scrape)
}

/// `GET {sse_path}` and `POST {messages_path}` (with or without a trailing `/`, as SDKs
/// of that era wrote it), their bodies checked like those of `/mcp`.
fn legacy_router(
    state: &AppState,
    sessions: rampart_mcp::LegacySse,
    sse_path: &str,
    messages_path: &str,
    body_limits: BodyLimits,
) -> Router {
    let routes = crate::legacy_sse::LegacyRoutes {
        sessions,
        messages_path: messages_path.to_owned(),
        guard: state.guard.clone(),
        max_body_bytes: state.http.max_body_bytes,
    };
    let messages = messages_path.trim_end_matches('/');
    Router::new()
        .route(sse_path, get(crate::legacy_sse::open))
        .route(messages, axum::routing::post(crate::legacy_sse::message))
        .route(&format!("{messages}/"), axum::routing::post(crate::legacy_sse::message))
        .layer(middleware::from_fn_with_state(body_limits, crate::jsonrpc::validate))
        .with_state(routes)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": rampart_core::VERSION }))
}

/// Readiness: one entry per backing service (the store, and whatever the toolboxes
/// report: SQL databases, gateway upstreams). A down service makes the status `degraded`
/// and the response 503; the server keeps serving what it can.
async fn ready(State((store, pipeline, transports)): State<(Store, Arc<Pipeline>, Vec<&'static str>)>) -> Response {
    let (ready, services) = readiness(&store, &pipeline).await;
    let body = json!({
        "status": if ready { "ok" } else { "degraded" },
        "version": rampart_core::VERSION,
        "services": services,
        "transports": transports,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Whether every backing service answers, and each one's status (`{"store": {"status":
/// "ok", "backend": …}, NAME: {"status", "detail"}}`), each asked for at most 3 s.
pub(crate) async fn readiness(store: &Store, pipeline: &Pipeline) -> (bool, Value) {
    let limit = std::time::Duration::from_secs(3);
    let store_status = match tokio::time::timeout(limit, store.ping()).await {
        Ok(Ok(())) => json!({ "status": "ok", "backend": format!("{:?}", store.backend()).to_lowercase() }),
        Ok(Err(error)) => json!({ "status": "unavailable", "error": error.to_string() }),
        Err(_) => json!({ "status": "unavailable", "error": "no answer within 3 s" }),
    };
    let mut degraded = store_status["status"] != "ok";
    let mut services = serde_json::Map::new();
    services.insert("store".into(), store_status);
    match tokio::time::timeout(limit, pipeline.readiness()).await {
        Ok(statuses) => {
            for service in statuses {
                degraded |= !service.ok;
                let status = if service.ok { "ok" } else { "unavailable" };
                services.insert(service.name, json!({ "status": status, "detail": service.detail }));
            }
        }
        Err(_) => {
            degraded = true;
            services.insert("toolboxes".into(), json!({ "status": "unavailable", "error": "no answer within 3 s" }));
        }
    }
    (!degraded, Value::Object(services))
}

/// RFC 9728 protected resource metadata, when `[auth.jwt]` is configured (public).
async fn resource_metadata(State(credentials): State<Arc<Credentials>>) -> Response {
    match credentials.jwt() {
        Some(jwt) => Json(jwt.metadata()).into_response(),
        None => not_found().await,
    }
}

/// What `/metrics` reads.
#[derive(Clone)]
pub struct MetricsSource {
    guard: Arc<SecurityGuard>,
    sessions: SessionCount,
    /// Legacy HTTP+SSE sessions, counted with the streamable HTTP ones.
    legacy: Option<rampart_mcp::LegacySse>,
}

async fn metrics(State(source): State<MetricsSource>) -> Response {
    let queue = source.guard.audit().map_or(0, |audit| audit.queue_depth());
    let sessions = source.sessions.get().await + source.legacy.as_ref().map_or(0, rampart_mcp::LegacySse::count);
    let text = source.guard.metrics().render(sessions, queue);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// The separate metrics listener's router (`--metrics-listen`): `/metrics` only.
pub fn metrics_router(source: MetricsSource) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(source)
}

async fn not_found() -> Response {
    HttpRefusal::NotFound.into_response()
}

/// The Host/Origin guard's refusal of `request`, if it refuses it.
fn origin_refusal(guard: &OriginGuard, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    let origin = text(header::ORIGIN);
    let refusal = guard.check(host, origin).err()?;
    tracing::warn!(reason = %refusal.message(), "request refused (DNS-rebinding protection)");
    Some(HttpRefusal::Forbidden { message: refusal.message() }.into_response())
}

/// A request id unique to this process's lifetime and across processes: a random 64-bit
/// prefix drawn once, then a counter (32 hex digits, like a W3C trace id). Ids correlate
/// logs and answers; they are not secrets, so no random draw (a `getrandom` system call)
/// per request.
fn next_request_id() -> String {
    static PREFIX: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:016x}{n:016x}", *PREFIX)
}

/// The name of each HTTP request's span (with its request id), in the log.
const REQUEST_SPAN_NAME: &str = "http";

/// Whether `metadata` is the HTTP request's span as made while spans are exported (with
/// `otel.kind`: the trace's HTTP server span), not as made for the log alone (probes,
/// or no exporter): what the exporting layer lets through besides
/// [`rampart_core::TRACE_TARGET`].
pub fn is_traced_request_span(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.target() == module_path!()
        && metadata.name() == REQUEST_SPAN_NAME
        && metadata.fields().field("otel.kind").is_some()
}

/// While spans are exported ([`rampart_mcp::trace::exporting`]): the request's span as
/// the server span `METHOD PATH`, the child of the caller's `traceparent` header when it
/// sent one, and handed to the MCP handler in the request's extensions as the parent of
/// its request's span.
fn traced_request_span(id: &str, request: &mut Request) -> tracing::Span {
    let (method, path) = (request.method(), request.uri().path());
    let span = tracing::info_span!(
        REQUEST_SPAN_NAME,
        request_id = %id,
        method = %method,
        path = %path,
        otel.name = %format_args!("{method} {path}"),
        otel.kind = "server",
    );
    let traceparent = request.headers().get(rampart_mcp::trace::TRACEPARENT).and_then(|value| value.to_str().ok());
    if let Some(parent) = traceparent.and_then(rampart_mcp::trace::parent_from_traceparent) {
        let _ = span.set_parent(parent);
    }
    request.extensions_mut().insert(rampart_mcp::trace::HttpSpan(span.clone()));
    span
}

/// What [`front`] needs.
struct Front {
    origin: OriginGuard,
    responses: ResponsesInFlight,
}

/// The front of every request (the module's step 1): counted in flight unless a `GET`,
/// its span and `x-request-id`, the Host/Origin guard.
async fn front(State(front): State<Arc<Front>>, mut request: Request, next: Next) -> Response {
    let in_flight = (request.method() != Method::GET).then(|| front.responses.enter());
    let id = next_request_id();
    // Probes (a load balancer's, every few seconds) and scrapes are not traced.
    let traced =
        rampart_mcp::trace::exporting() && !matches!(request.uri().path(), "/" | "/healthz" | "/readyz" | "/metrics");
    let span = if traced {
        traced_request_span(&id, &mut request)
    } else {
        tracing::info_span!(REQUEST_SPAN_NAME, request_id = %id, method = %request.method(), path = %request.uri().path())
    };
    let refused = span.in_scope(|| origin_refusal(&front.origin, &request));
    let mut response = match refused {
        Some(refusal) => refusal,
        None => next.run(request).instrument(span).await,
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    match in_flight {
        Some(guard) => response.map(|body| axum::body::Body::new(TrackedBody { body, _guard: guard })),
        None => response,
    }
}

/// What [`mcp_gate`] needs.
struct McpGate {
    credentials: Arc<Credentials>,
    binding: SessionBinding,
    body_limits: BodyLimits,
}

/// `/mcp`'s steps (the module's step 3), each of which may answer instead of the
/// transport: authentication, session binding, the body's JSON-RPC check; then the
/// transport with the caller known, and the session binding settled by its answer.
async fn mcp_gate(State(gate): State<Arc<McpGate>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match crate::auth::caller(&gate.credentials, &parts).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    parts.extensions.insert(caller.clone());
    let mut request = Request::from_parts(parts, body);
    let bound = match crate::sessions::bind(&gate.binding, &caller, &mut request).await {
        Ok(bound) => bound,
        Err(refusal) => return refusal,
    };
    let request = match crate::jsonrpc::read_checked(&gate.body_limits, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let post = request.method() == Method::POST;
    let response = rampart_mcp::with_caller(caller, next.run(request)).await;
    crate::sessions::settle(&gate.binding, bound, response.status(), response.headers()).await;
    if post { crate::coalesce::gather(response, crate::coalesce::WINDOW).await } else { response }
}
