//! The client side of MCP over WebSocket (`ws://…/ws`, subprotocol `mcp`, one JSON-RPC
//! message per text frame), as Rampart serves it at `/ws`: a `(Sink, Stream)` pair of
//! messages that rmcp's client service runs on.

use futures::{Sink, SinkExt, Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::{HeaderName, HeaderValue},
};

/// Why the WebSocket could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    /// The handshake or a frame failed.
    #[error("{0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A message could not be written as JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Opens `url` offering the `mcp` subprotocol, with the bearer `token` and `headers`.
///
/// # Errors
/// A bad URL or header, or the handshake's failure (in words: refused, HTTP status, no
/// `mcp` subprotocol).
pub(crate) async fn connect(
    url: &str,
    token: Option<&str>,
    headers: &[(String, String)],
) -> Result<
    (
        impl Sink<ClientJsonRpcMessage, Error = WsError> + Send + Unpin + 'static,
        impl Stream<Item = ServerJsonRpcMessage> + Send + Unpin + 'static,
    ),
    String,
> {
    if url.starts_with("wss://") {
        return Err("wss:// is not supported by this client yet: connect to https://…/mcp instead".into());
    }
    let mut request = url.into_client_request().map_err(|e| format!("{url} is not a WebSocket URL: {e}"))?;
    let request_headers = request.headers_mut();
    request_headers.insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("the token: {e}"))?;
        request_headers.insert("authorization", value);
    }
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header name '{name}': {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header '{name}': {e}"))?;
        request_headers.insert(name, value);
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.map_err(|error| match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => match response.status().as_u16() {
            401 => "the server wants valid credentials (HTTP 401): pass --token or set RAMPART_TOKEN".to_owned(),
            403 => "the server refused the connection (HTTP 403): check its allowed hosts and origins".to_owned(),
            status => format!("the server refused the WebSocket upgrade (HTTP {status})"),
        },
        tokio_tungstenite::tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused: is a server listening at {url}? (`rampart serve` starts one)")
        }
        other => other.to_string(),
    })?;
    if response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()) != Some("mcp") {
        return Err(format!("{url} does not speak MCP over WebSocket (no `mcp` subprotocol)"));
    }
    let (sink, stream) = socket.split();
    let sink = Box::pin(sink.sink_map_err(WsError::from).with(|message: ClientJsonRpcMessage| async move {
        Ok::<_, WsError>(Message::Text(serde_json::to_string(&message)?.into()))
    }));
    let stream = Box::pin(stream.filter_map(|frame| async move {
        match frame {
            Ok(Message::Text(text)) => match serde_json::from_str::<ServerJsonRpcMessage>(text.as_str()) {
                Ok(message) => Some(message),
                Err(error) => {
                    tracing::warn!(%error, "a WebSocket frame is not a JSON-RPC message; skipped");
                    None
                }
            },
            _ => None,
        }
    }));
    Ok((sink, stream))
}
