//! Every answer the HTTP layer gives by itself, before a request reaches MCP, built in one
//! place: [`HttpRefusal`] → status, headers and a JSON-RPC-shaped body that MCP clients
//! parse on any status. One `match` with no catch-all, so a new refusal needs a decision.
//!
//! | refusal | status | JSON-RPC code | headers |
//! |---|---|---|---|
//! | malformed body | 400 | -32700 / -32600 | |
//! | no or bad credentials | 401 | -32000 | `WWW-Authenticate` (RFC 9110 §11.6.1) |
//! | foreign `Host`/`Origin`; missing JWT scope | 403 | -32000 | `WWW-Authenticate` for a scope (RFC 6750 §3.1) |
//! | unknown path | 404 | -32000 | |
//! | unknown session (or another principal's) | 404 | | plain text, as the MCP transport answers it |
//! | body not received in time | 408 | -32000 | `Connection: close` |
//! | body too large | 413 | -32600 | |
//! | too many failed logins | 429 | -32000 | `Retry-After` (RFC 6585 §4) |

use std::time::Duration;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// Why the HTTP layer answers a request itself.
#[derive(Debug, Clone)]
pub(crate) enum HttpRefusal {
    /// The body is not one JSON-RPC 2.0 object (`code` -32700 parse error or -32600
    /// invalid request); `id` is the request's when it could be read.
    BadRequest { code: i64, message: String, id: Value },
    /// Authentication failed; `challenge` is the `WWW-Authenticate` value.
    Unauthorized { message: String, challenge: String },
    /// A JWT without a required scope (RFC 6750 `insufficient_scope`).
    InsufficientScope { challenge: String },
    /// DNS-rebinding protection: a `Host` or `Origin` that is not allowed.
    Forbidden { message: String },
    /// No route at this path.
    NotFound,
    /// The `Mcp-Session-Id` names no session of the caller's: the answer rmcp gives an
    /// unknown session, byte for byte (MCP 2025-11-25 Streamable HTTP: "404 Not Found").
    SessionNotFound,
    /// The body did not arrive within `limits.body_read_timeout_secs`.
    BodyTimeout { seconds: u64 },
    /// The body exceeds `server.max_body_bytes`.
    BodyTooLarge { limit: usize },
    /// The address is over its failed-login quota.
    TooManyFailedLogins { retry_after: Duration },
}

/// A JSON-RPC error object as a response body, with `data.kind` naming the refusal.
fn jsonrpc(code: i64, message: &str, id: Value, kind: Option<&str>) -> Json<Value> {
    let mut error = json!({ "code": code, "message": message });
    if let Some(kind) = kind {
        error["data"] = json!({ "kind": kind });
    }
    Json(json!({ "jsonrpc": "2.0", "id": id, "error": error }))
}

fn with_header(mut response: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

impl IntoResponse for HttpRefusal {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest { code, message, id } => {
                (StatusCode::BAD_REQUEST, jsonrpc(code, &message, id, None)).into_response()
            }
            Self::Unauthorized { message, challenge } => {
                let body = jsonrpc(-32000, &message, Value::Null, Some("unauthorized"));
                with_header((StatusCode::UNAUTHORIZED, body).into_response(), header::WWW_AUTHENTICATE, &challenge)
            }
            Self::InsufficientScope { challenge } => {
                let message = "insufficient_scope: the token lacks a required scope";
                let body = jsonrpc(-32000, message, Value::Null, Some("unauthorized"));
                with_header((StatusCode::FORBIDDEN, body).into_response(), header::WWW_AUTHENTICATE, &challenge)
            }
            Self::Forbidden { message } => {
                (StatusCode::FORBIDDEN, jsonrpc(-32000, &message, Value::Null, Some("forbidden"))).into_response()
            }
            Self::NotFound => {
                let message = "no such path; the MCP endpoint is /mcp";
                (StatusCode::NOT_FOUND, jsonrpc(-32000, message, Value::Null, Some("not_found"))).into_response()
            }
            Self::SessionNotFound => (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response(),
            Self::BodyTimeout { seconds } => {
                let message = format!(
                    "the request body did not arrive within {seconds} s (limits.body_read_timeout_secs); send it at once"
                );
                let body = jsonrpc(-32000, &message, Value::Null, Some("request_timeout"));
                with_header((StatusCode::REQUEST_TIMEOUT, body).into_response(), header::CONNECTION, "close")
            }
            Self::BodyTooLarge { limit } => {
                let message = format!("Invalid Request: the body exceeds {limit} bytes (server.max_body_bytes)");
                (StatusCode::PAYLOAD_TOO_LARGE, jsonrpc(-32600, &message, Value::Null, None)).into_response()
            }
            Self::TooManyFailedLogins { retry_after } => {
                let seconds = retry_after.as_secs().max(1);
                let message = format!("too many failed authentications from this address; retry in {seconds} s");
                let body = jsonrpc(-32000, &message, Value::Null, Some("rate_limited"));
                let response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
                with_header(response, header::RETRY_AFTER, &seconds.to_string())
            }
        }
    }
}
