//! Up-front JSON-RPC 2.0 validation of POST bodies on `/mcp`, so that malformed input gets
//! a JSON-RPC error a client can act on instead of a bare transport status:
//!
//! | input | status | JSON-RPC code |
//! |---|---|---|
//! | body over `server.max_body_bytes` | 413 | -32600 |
//! | not JSON | 400 | -32700 Parse error |
//! | a batch (array); MCP 2025-06-18 removed batching | 400 | -32600 |
//! | not an object, or `jsonrpc` is not `"2.0"` | 400 | -32600 |
//!
//! Valid bodies are passed on unchanged (JSON-RPC 2.0 §4, §5.1; MCP 2025-11-25 "Base
//! Protocol").

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The body limit, bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// A refused message: HTTP status, JSON-RPC error code and message, and the request id
/// when it could be read.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
    id: Value,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({ "jsonrpc": "2.0", "id": self.id, "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

fn refuse(status: StatusCode, code: i64, message: String, id: Value) -> Refusal {
    Refusal { status, code, message, id }
}

/// Checks one message; `Err` is the refusal.
fn check(body: &[u8]) -> Result<(), Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        refuse(
            StatusCode::BAD_REQUEST,
            -32700,
            format!("Parse error: the body is not valid JSON ({error})"),
            Value::Null,
        )
    })?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request".into(),
                Value::Null,
            ));
        }
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: expected a JSON-RPC object".into(),
                Value::Null,
            ));
        }
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(StatusCode::BAD_REQUEST, -32600, "Invalid Request: \"jsonrpc\" must be \"2.0\"".into(), id));
    }
    Ok(())
}

pub(crate) async fn validate(State(BodyLimit(limit)): State<BodyLimit>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                format!("Invalid Request: the body exceeds {limit} bytes (server.max_body_bytes)"),
                Value::Null,
            )
            .into_response();
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
            Err(refusal) => Some(refusal.status.as_u16().into()),
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
