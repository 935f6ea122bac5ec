//! The legacy HTTP+SSE transport's two routes (MCP 2024-11-05 "HTTP with SSE"),
//! `GET server.legacy_sse_path` (`/sse`) and `POST server.legacy_messages_path`
//! (`/messages?session_id=…`), mounted behind the same layers as `/mcp`: Host/Origin
//! guard, authentication with failed-login throttling, JSON-RPC body validation and
//! limits; the sessions themselves are `rampart_mcp::LegacySse`.
//!
//! A POST naming a session of another principal is recorded (method `session`, denied)
//! and answered 404, as for a session that does not exist.

use std::sync::Arc;

use axum::{
    body::{Body, to_bytes},
    extract::{Query, Request, State},
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};
use rampart_core::{Caller, Transport};
use rampart_mcp::{Delivery, LegacySse, SessionOwner};

use crate::{SecurityGuard, refusal::HttpRefusal};

/// What the two routes share.
#[derive(Clone)]
pub(crate) struct LegacyRoutes {
    pub(crate) sessions: LegacySse,
    /// Named in each stream's `endpoint` event.
    pub(crate) messages_path: String,
    pub(crate) guard: Arc<SecurityGuard>,
    pub(crate) max_body_bytes: usize,
}

#[derive(serde::Deserialize)]
pub(crate) struct SessionQuery {
    session_id: Option<String>,
}

/// `GET /sse`: a new session for the authenticated caller, as an event stream.
pub(crate) async fn open(State(routes): State<LegacyRoutes>, request: Request) -> Response {
    let Some(mut caller) = request.extensions().get::<Caller>().cloned() else {
        return HttpRefusal::SessionNotFound.into_response();
    };
    caller.transport = Transport::HttpSse;
    let stream = routes.sessions.open(&caller, &routes.messages_path);
    tracing::info!(principal = %caller.principal, sessions = routes.sessions.count(), "legacy SSE stream opened");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        // Reverse proxies (nginx) would otherwise hold the events back.
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `POST /messages?session_id=ID`: one JSON-RPC message for the caller's own session;
/// 202 Accepted, its answer comes on the stream.
pub(crate) async fn message(
    State(routes): State<LegacyRoutes>,
    Query(query): Query<SessionQuery>,
    request: Request,
) -> Response {
    let Some(id) = query.session_id.filter(|id| !id.is_empty()) else {
        return HttpRefusal::BadRequest {
            code: -32600,
            message: "session_id is missing: POST to the endpoint the SSE stream named".into(),
            id: serde_json::Value::Null,
        }
        .into_response();
    };
    let (mut parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get_mut::<Caller>() else {
        return HttpRefusal::SessionNotFound.into_response();
    };
    caller.transport = Transport::HttpSse;
    caller.session = Some(id.clone());
    let caller = caller.clone();
    // The JSON-RPC layer has read and checked the body already; this only collects it.
    let Ok(body) = to_bytes(body, routes.max_body_bytes).await else {
        return HttpRefusal::BodyTooLarge { limit: routes.max_body_bytes }.into_response();
    };
    match routes.sessions.deliver(&id, &SessionOwner::of(&caller.principal), parts, &body) {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(Delivery::Unknown) => HttpRefusal::SessionNotFound.into_response(),
        Err(Delivery::Foreign) => {
            crate::sessions::refuse_foreign(&routes.guard, &caller, &id, "POST", "legacy SSE ").await;
            HttpRefusal::SessionNotFound.into_response()
        }
        Err(Delivery::Invalid(error)) => HttpRefusal::BadRequest {
            code: -32600,
            message: format!("Invalid Request: {error}"),
            id: serde_json::Value::Null,
        }
        .into_response(),
        Err(Delivery::Busy) => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "the session is busy; retry")
                .into_response()
        }
    }
}
