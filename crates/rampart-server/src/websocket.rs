//! MCP over WebSocket at `/ws`: subprotocol `mcp`, one JSON-RPC message per text frame,
//! one MCP session per connection (the transport seed `004_…` plans; not part of the MCP
//! specification, which has no WebSocket transport).
//!
//! The upgrade request passes the same layers as `/mcp` — Host/Origin guard (a browser's
//! cross-site `Origin` is refused before the upgrade), authentication with failed-login
//! throttling — and, for browsers, which cannot set `Authorization` on a WebSocket, a
//! bearer token may come as an extra subprotocol `bearer.TOKEN` (never echoed back).
//! After the upgrade: frames above `server.max_body_bytes` close the connection; pings
//! every 30 s; a peer that does not read its messages (the session's queue full, or a
//! write stalled for 10 s) is disconnected rather than buffered for.

use std::time::Duration;

use axum::{
    extract::{
        Request, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, close_code},
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use rampart_core::{Caller, Transport};
use rampart_mcp::{BoundSession, Delivery, McpHandler, spawn_session};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The subprotocol a client must offer.
const SUBPROTOCOL: &str = "mcp";
/// The prefix of a browser's token subprotocol.
const TOKEN_PROTOCOL: &str = "bearer.";
const PING_EVERY: Duration = Duration::from_secs(30);
const WRITE_STALL: Duration = Duration::from_secs(10);
/// Server messages waiting for a slow reader, at most.
const QUEUE: usize = 256;

/// What the `/ws` route needs.
#[derive(Clone)]
pub(crate) struct WebSocketRoute {
    pub(crate) handler: McpHandler,
    pub(crate) shutdown: CancellationToken,
    pub(crate) max_message_bytes: usize,
}

/// Before authentication: a `bearer.TOKEN` subprotocol becomes `Authorization: Bearer
/// TOKEN` when the request has no `Authorization` of its own.
pub(crate) async fn token_from_subprotocol(mut request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::AUTHORIZATION) {
        let token = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .find_map(|protocol| protocol.strip_prefix(TOKEN_PROTOCOL))
            .map(str::to_owned);
        if let Some(token) = token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }
    next.run(request).await
}

/// `GET /ws` with `Upgrade: websocket`: an MCP session for the authenticated caller.
pub(crate) async fn upgrade(
    State(route): State<WebSocketRoute>,
    upgrade: WebSocketUpgrade,
    request: Request,
) -> Response {
    let Some(mut caller) = request.extensions().get::<Caller>().cloned() else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let upgrade = upgrade.protocols([SUBPROTOCOL]);
    if upgrade.selected_protocol().is_none() {
        return (StatusCode::BAD_REQUEST, format!("offer the WebSocket subprotocol \"{SUBPROTOCOL}\"")).into_response();
    }
    let id = uuid::Uuid::new_v4().to_string();
    caller.transport = Transport::WebSocket;
    caller.session = Some(id.clone());
    tracing::info!(principal = %caller.principal, session = %id, "WebSocket session opened");
    upgrade
        .max_message_size(route.max_message_bytes)
        .max_frame_size(route.max_message_bytes)
        .on_upgrade(move |socket| serve(socket, route, caller, id))
}

/// Relays frames to the session and back until either side ends.
async fn serve(socket: WebSocket, route: WebSocketRoute, caller: Caller, id: String) {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.extensions.insert(caller);
    parts.extensions.insert(BoundSession(id.clone()));
    let mut session = spawn_session(&route.handler, QUEUE, &route.shutdown, || {});
    let (mut sink, mut frames) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close = |code, reason: &'static str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(Message::Text(text))) => match session.deliver(text.as_bytes(), parts.clone()) {
                    Ok(()) => {}
                    Err(Delivery::Busy) => {
                        let _ = sink.send(close(close_code::AGAIN, "too many messages in flight")).await;
                        break;
                    }
                    Err(Delivery::Unknown | Delivery::Foreign) => break,
                    Err(Delivery::Invalid(error)) => {
                        let refusal = json!({ "jsonrpc": "2.0", "id": null, "error": {
                            "code": -32700, "message": format!("Parse error: not one JSON-RPC message ({error})") } });
                        if sink.send(Message::Text(refusal.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    let _ = sink.send(close(close_code::UNSUPPORTED, "JSON-RPC messages are text frames")).await;
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(error)) => {
                    // Includes a frame over the size limit.
                    tracing::debug!(session = %id, %error, "WebSocket read failed");
                    let _ = sink.send(close(close_code::SIZE, "message refused")).await;
                    break;
                }
            },
            message = session.outbound.recv() => {
                let Some(message) = message else { break };
                let Ok(text) = serde_json::to_string(&message) else { continue };
                match tokio::time::timeout(WRITE_STALL, sink.send(Message::Text(text.into()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            () = session.ended.cancelled() => {
                let _ = sink.send(close(close_code::AWAY, "session ended")).await;
                break;
            }
        }
    }
    session.ended.cancel();
    tracing::info!(session = %id, "WebSocket session closed");
}
