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
//!
//! Valid bodies are passed on unchanged (JSON-RPC 2.0 §4, §5.1; MCP 2025-11-25 "Base
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
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(-32600, "Invalid Request: \"jsonrpc\" must be \"2.0\"", id));
    }
    Ok(())
}

pub(crate) async fn validate(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limits.read_timeout, to_bytes(body, limits.max_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            limits.guard.metrics().refused("body_too_large");
            return HttpRefusal::BodyTooLarge { limit: limits.max_bytes }.into_response();
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
            return HttpRefusal::BodyTimeout { seconds }.into_response();
        }
    };
    if let Err(refusal) = check(&bytes) {
        return refusal.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
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
