//! The client side of the legacy HTTP+SSE transport (MCP 2024-11-05 "HTTP with SSE"),
//! for upstream servers that predate streamable HTTP: `GET` the URL for an event stream,
//! whose first `endpoint` event names where to `POST` messages; every message from the
//! server arrives as a `message` event on that stream. rmcp has no client for it; this
//! is the smallest one over reqwest and `sse-stream`, handed to rmcp as a sink and a
//! stream. Used only as a fallback (MCP 2025-03-26 "Backwards Compatibility"): after a
//! streamable HTTP `initialize` fails.

use std::time::Duration;

use futures::{Stream, StreamExt};
use rmcp::{RoleClient, service::RxJsonRpcMessage, service::TxJsonRpcMessage};
use sse_stream::SseStream;
use tokio_util::sync::PollSender;

/// Longest wait for the `endpoint` event.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages waiting to be posted, at most.
const OUTGOING_QUEUE: usize = 64;

/// Opens the event stream at `url` and waits for its `endpoint` event; returns the sink
/// rmcp writes to (each message POSTed to the endpoint) and the stream of the server's
/// messages.
///
/// # Errors
/// A message when the GET fails, is not an event stream, or names no endpoint (on the
/// same origin) in time.
pub(crate) async fn connect(
    http: reqwest::Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
) -> Result<
    (
        PollSender<TxJsonRpcMessage<RoleClient>>,
        impl Stream<Item = RxJsonRpcMessage<RoleClient>> + Send + Unpin + 'static,
    ),
    String,
> {
    let response = http
        .get(url)
        .headers(headers.clone())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let is_events = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_events {
        return Err(format!("GET {url}: not an event stream"));
    }
    let mut events = SseStream::from_bytes_stream(response.bytes_stream());
    let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
        while let Some(event) = events.next().await {
            match event {
                Ok(event) if event.event.as_deref() == Some("endpoint") => return event.data,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| format!("GET {url}: no `endpoint` event within {}s", ENDPOINT_TIMEOUT.as_secs()))?;
    let base = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let endpoint = base.join(endpoint.trim()).map_err(|e| format!("endpoint '{endpoint}': {e}"))?;
    // The endpoint must not send our headers (credentials) to another origin.
    if endpoint.origin() != base.origin() {
        return Err(format!("the server named an endpoint on another origin ({endpoint}); refused"));
    }

    let (sender, mut outgoing) = tokio::sync::mpsc::channel::<TxJsonRpcMessage<RoleClient>>(OUTGOING_QUEUE);
    tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let mut post = http.post(endpoint.clone()).headers(headers.clone());
            if let Some(traceparent) = crate::trace::traceparent_header(&message) {
                post = post.header(crate::trace::TRACEPARENT, traceparent);
            }
            let posted = post.json(&message).send().await;
            match posted {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => tracing::warn!(status = %response.status(), %endpoint, "legacy SSE POST refused"),
                Err(error) => {
                    tracing::warn!(%error, %endpoint, "legacy SSE POST failed");
                    return;
                }
            }
        }
    });
    let incoming = events.filter_map(|event| async move {
        let event = event.ok()?;
        if event.event.as_deref().is_some_and(|name| name != "message") {
            return None;
        }
        match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(event.data.as_deref()?) {
            Ok(message) => Some(message),
            Err(error) => {
                tracing::warn!(%error, "legacy SSE: a message that is not JSON-RPC was skipped");
                None
            }
        }
    });
    Ok((PollSender::new(sender), Box::pin(incoming)))
}
