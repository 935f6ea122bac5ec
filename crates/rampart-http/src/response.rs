//! What a response becomes for the model: the status, a selection of harmless headers,
//! and the body (JSON when it is JSON, text otherwise, a note for binary), all redacted.

use std::collections::BTreeMap;

use http::HeaderMap;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::{client::Received, redact::Secrets};

/// Response headers passed to the model. Everything else — `Set-Cookie`, echoes of
/// `Authorization`, internal routing headers — is dropped.
const SELECTED_HEADERS: [&str; 18] = [
    "age",
    "allow",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-length",
    "content-type",
    "date",
    "etag",
    "expires",
    "last-modified",
    "link",
    "location",
    "retry-after",
    "vary",
    "www-authenticate",
    "x-request-id",
    "x-total-count",
];

/// Header-name prefixes passed too (rate-limit information).
const SELECTED_PREFIXES: [&str; 3] = ["x-ratelimit-", "ratelimit", "x-rate-limit-"];

/// `http_request` result.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HttpResponse {
    /// HTTP status code; anything but 2xx also sets `isError`.
    pub(crate) status: u16,
    /// Selected response headers (content type, caching, rate limits, location).
    pub(crate) headers: BTreeMap<String, String>,
    /// The body: parsed JSON when the content type is JSON, text otherwise, a note for
    /// binary content.
    pub(crate) body: Value,
    /// Whether the body was cut at the API's `max_response_bytes` (then `body` is text).
    pub(crate) truncated: bool,
}

impl HttpResponse {
    /// The model's view of `received`, with `secrets` hidden everywhere.
    pub(crate) fn new(received: &Received, secrets: &Secrets) -> Self {
        Self {
            status: received.status.as_u16(),
            headers: selected_headers(&received.headers, secrets),
            body: body(received, secrets),
            truncated: received.truncated,
        }
    }

    /// The readable rendering: a status line, the headers, and the body.
    pub(crate) fn text(&self, reason: &str, max_bytes: u64) -> String {
        let mut text = format!("HTTP {} {reason}\n", self.status);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text.push('\n');
        match &self.body {
            Value::String(body) => text.push_str(body),
            Value::Null => {}
            other => text.push_str(&serde_json::to_string_pretty(other).unwrap_or_default()),
        }
        if self.truncated {
            text.push_str(&format!("\n[body truncated at {max_bytes} bytes]"));
        }
        text
    }
}

/// The selected headers, lower-case names, values redacted.
pub(crate) fn selected_headers(headers: &HeaderMap, secrets: &Secrets) -> BTreeMap<String, String> {
    let mut selected: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if !SELECTED_HEADERS.contains(&name) && !SELECTED_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let value = secrets.redact(&String::from_utf8_lossy(value.as_bytes()));
        selected.entry(name.to_owned()).and_modify(|joined| joined.push_str(&format!(", {value}"))).or_insert(value);
    }
    selected
}

/// The media type without parameters, lower-case (`application/json`).
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

/// Whether `media_type` is JSON (`application/json`, `application/problem+json`, …).
pub(crate) fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

fn body(received: &Received, secrets: &Secrets) -> Value {
    if received.body.is_empty() {
        return Value::Null;
    }
    let media_type = media_type(&received.headers);
    let json = media_type.as_deref().is_some_and(is_json);
    if json
        && !received.truncated
        && let Ok(value) = serde_json::from_slice::<Value>(&received.body)
    {
        return secrets.redact_json(value);
    }
    match std::str::from_utf8(&received.body) {
        Ok(text) => Value::String(redact_text(text, received.truncated, secrets)),
        // A cut in the middle of a multi-byte character is still text.
        Err(error) if received.truncated && error.error_len().is_none() => {
            let text = String::from_utf8_lossy(&received.body[..error.valid_up_to()]);
            Value::String(redact_text(&text, true, secrets))
        }
        Err(_) => Value::String(format!(
            "[binary body: {} bytes of {}, not shown]",
            received.body.len(),
            media_type.as_deref().unwrap_or("unknown type")
        )),
    }
}

fn redact_text(text: &str, truncated: bool, secrets: &Secrets) -> String {
    if truncated { secrets.redact_truncated(text) } else { secrets.redact(text) }
}
