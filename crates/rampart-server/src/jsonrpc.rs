//! Up-front JSON-RPC 2.0 validation of POST bodies on `/mcp`, so that malformed input gets
//! a JSON-RPC error a client can act on instead of a bare transport status:
//!
//! | input | status | JSON-RPC code |
//! |---|---|---|
//! | body not received within `limits.body_read_timeout_secs` | 408 | -32000 |
//! | body over `server.max_body_bytes` | 413 | -32600 |
//! | not JSON | 400 | -32700 Parse error |
//! | a batch (array); MCP 2025-06-18 removed batching | 400 | -32600 |
//! | not an object, or `jsonrpc` is not `"2.0"` | 400 | -32600 |
//! | not one of request, notification, response (see below) | 400 | -32600 |
//! | `params` an array, or `params._meta` not an object | 400 | -32602 |
//!
//! The envelope is checked whole, so that nothing rmcp cannot read reaches it (rmcp answers
//! such a body with a plain-text 415): a request has a string `method`, an `id` that is a
//! string or an integer (MCP: not null; rmcp: within `i64`) and, if any, object `params`
//! (`null` counts as none);
//! a notification is the same without `id`; a response has such an `id` and exactly one
//! of `result` and `error`, an error being an object with an integer `code` (`i32`) and a
//! string `message`. The refusal echoes the `id` when it is usable, else `null`.
//!
//! Valid bodies are passed on unchanged (JSON-RPC 2.0 §4, §5, §5.1; MCP 2025-11-25 "Base
//! Protocol").

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::Method;
use rampart_core::{Caller, Outcome};
use serde_json::Value;

use crate::{SecurityGuard, refusal::HttpRefusal};

/// How much of a body, and how fast.
#[derive(Debug, Clone)]
pub(crate) struct BodyLimits {
    /// Largest body, bytes (`server.max_body_bytes`).
    pub(crate) max_bytes: usize,
    /// Time to receive it once the headers are in (`limits.body_read_timeout_secs`).
    pub(crate) read_timeout: Duration,
    /// Counts and records refusals.
    pub(crate) guard: Arc<SecurityGuard>,
}

fn refuse(code: i64, message: impl Into<String>, id: Value) -> HttpRefusal {
    HttpRefusal::BadRequest { code, message: message.into(), id }
}

/// Checks one message; `Err` is the refusal.
fn check(body: &[u8]) -> Result<(), HttpRefusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| refuse(-32700, format!("Parse error: the body is not valid JSON ({error})"), Value::Null))?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(refuse(
                -32600,
                "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request",
                Value::Null,
            ));
        }
        _ => return Err(refuse(-32600, "Invalid Request: expected a JSON-RPC object", Value::Null)),
    };
    let id = object.get("id").filter(|id| is_id(id)).cloned().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(-32600, "Invalid Request: \"jsonrpc\" must be \"2.0\"", id));
    }
    envelope(&object).map_err(|(code, message)| refuse(code, message, id))
}

/// A usable `id`: a string or an integer (MCP forbids `null`; rmcp reads an `i64`).
fn is_id(id: &Value) -> bool {
    id.is_string() || id.is_i64()
}

/// Checks that `object` is a request, a notification or a response; `Err` is the
/// JSON-RPC code and message.
fn envelope(object: &serde_json::Map<String, Value>) -> Result<(), (i64, &'static str)> {
    if object.get("id").is_some_and(|id| !is_id(id)) {
        return Err((-32600, "Invalid Request: \"id\" must be a string or an integer"));
    }
    match (object.get("method"), object.get("result"), object.get("error")) {
        (Some(method), None, None) => request(method, object.get("params")),
        (None, Some(_), None) if object.contains_key("id") => Ok(()),
        (None, None, Some(error)) if object.contains_key("id") => match error {
            Value::Object(error)
                if error.get("code").and_then(Value::as_i64).is_some_and(|code| i32::try_from(code).is_ok())
                    && error.get("message").is_some_and(Value::is_string) =>
            {
                Ok(())
            }
            _ => Err((
                -32600,
                "Invalid Request: \"error\" must be an object with an integer \"code\" and a string \"message\"",
            )),
        },
        (None, Some(_), None) | (None, None, Some(_)) => Err((-32600, "Invalid Request: a response needs an \"id\"")),
        (None, None, None) => Err((
            -32600,
            "Invalid Request: expected a \"method\" (request, notification) or a \"result\" or \"error\" (response)",
        )),
        _ => Err((-32600, "Invalid Request: \"method\", \"result\" and \"error\" exclude each other")),
    }
}

/// The `method` and `params` of a request or notification.
fn request(method: &Value, params: Option<&Value>) -> Result<(), (i64, &'static str)> {
    if !method.is_string() {
        return Err((-32600, "Invalid Request: \"method\" must be a string"));
    }
    match params {
        // rmcp reads `null` as no parameters, and some clients send it.
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(params)) => match params.get("_meta") {
            Some(meta) if !meta.is_object() => Err((-32602, "Invalid params: \"_meta\" must be an object")),
            _ => Ok(()),
        },
        Some(Value::Array(_)) => Err((-32602, "Invalid params: MCP parameters are an object, not an array")),
        Some(_) => Err((-32600, "Invalid Request: \"params\" must be an object")),
    }
}

/// The middleware form of [`read_checked`], for the legacy HTTP+SSE messages endpoint
/// (`/mcp`'s gate in `http.rs` calls [`read_checked`] itself).
pub(crate) async fn validate(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    match read_checked(&limits, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// A `POST`'s body received within the limits and checked (the table above), as a request
/// carrying it whole; other methods pass unread. `Err` is the answer refusing it.
pub(crate) async fn read_checked(limits: &BodyLimits, request: Request) -> Result<Request, Response> {
    if request.method() != Method::POST {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limits.read_timeout, to_bytes(body, limits.max_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            limits.guard.metrics().refused("body_too_large");
            return Err(HttpRefusal::BodyTooLarge { limit: limits.max_bytes }.into_response());
        }
        Err(_) => {
            // A client holding a connection (and a concurrency slot) open by dribbling
            // its body: cut off, counted and recorded like the other limits.
            let seconds = limits.read_timeout.as_secs();
            limits.guard.metrics().refused("body_read_timeout");
            if let Some(caller) = parts.extensions.get::<Caller>() {
                tracing::warn!(principal = %caller.principal, seconds, "request body not received in time");
                let detail =
                    format!("the request body did not arrive within {seconds} s (limits.body_read_timeout_secs)");
                limits.guard.record_refusal(caller, "request", Outcome::Refused, detail).await;
            }
            return Err(HttpRefusal::BodyTimeout { seconds }.into_response());
        }
    };
    if let Err(refusal) = check(&bytes) {
        return Err(refusal.into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<i64> {
        match check(body.as_bytes()) {
            Ok(()) => None,
            Err(refusal) => Some(refusal.into_response().status().as_u16().into()),
        }
    }

    #[test]
    fn validation_table() {
        let cases = [
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, None),
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, None),
            ("{bad json", Some(400)),
            ("", Some(400)),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, Some(400)),
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, Some(400)),
            (r#"{"id":1,"method":"ping"}"#, Some(400)),
            ("42", Some(400)),
        ];
        for (body, expected) in cases {
            assert_eq!(code(body), expected, "{body}");
        }
    }
}

#[cfg(test)]
mod props;
