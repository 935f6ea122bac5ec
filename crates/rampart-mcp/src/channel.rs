//! A server session over a pair of channels, for the transports Rampart frames itself
//! (the legacy HTTP+SSE transport, WebSocket, D-Bus): the transport feeds client
//! messages in and writes out what comes back; this runs the rmcp session between them.
//!
//! The outbound queue is bounded and never waited on: a peer that stops reading while
//! the server has [`ChannelSession`]'s `queue` messages for it ends its session, instead
//! of growing the server's memory.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::{Sink, Stream};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::McpHandler;

/// The two ends a transport holds, and the session's end.
pub struct ChannelSession {
    /// Client messages in (bounded; a full queue means the session is busy).
    pub inbound: mpsc::Sender<ClientJsonRpcMessage>,
    /// Server messages out, in order; closed when the session ends.
    pub outbound: mpsc::Receiver<ServerJsonRpcMessage>,
    /// Cancelled when the session ends (either side); cancel it to end the session.
    pub ended: CancellationToken,
}

impl ChannelSession {
    /// Parses `body` as one JSON-RPC message and queues it for the session with `parts`
    /// (carrying the authenticated `Caller`).
    ///
    /// # Errors
    /// [`crate::Delivery::Invalid`] for a body rmcp cannot read, [`crate::Delivery::Busy`]
    /// when the inbound queue is full, [`crate::Delivery::Unknown`] once the session ended.
    pub fn deliver(&self, body: &[u8], parts: http::request::Parts) -> Result<(), crate::Delivery> {
        deliver(&self.inbound, body, parts)
    }
}

/// See [`ChannelSession::deliver`].
pub(crate) fn deliver(
    inbound: &mpsc::Sender<ClientJsonRpcMessage>,
    body: &[u8],
    parts: http::request::Parts,
) -> Result<(), crate::Delivery> {
    let mut message: ClientJsonRpcMessage =
        serde_json::from_slice(body).map_err(|error| crate::Delivery::Invalid(error.to_string()))?;
    attach_parts(&mut message, parts);
    inbound.try_send(message).map_err(|error| match error {
        mpsc::error::TrySendError::Full(_) => crate::Delivery::Busy,
        mpsc::error::TrySendError::Closed(_) => crate::Delivery::Unknown,
    })
}

/// Starts a session of a fresh copy of `handler`, ended by `shutdown` too; `on_end` runs
/// once it has ended. At most `queue` server messages wait for the peer.
pub fn spawn_session(
    handler: &McpHandler,
    queue: usize,
    shutdown: &CancellationToken,
    on_end: impl FnOnce() + Send + 'static,
) -> ChannelSession {
    let (inbound, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (to_client, outbound) = mpsc::channel::<ServerJsonRpcMessage>(queue.max(1));
    let ended = shutdown.child_token();
    let transport = (QueueSink { queue: to_client }, Inbound { queue: from_client });
    let handler = handler.for_new_session();
    let service_ended = ended.clone();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, service_ended.clone()).await {
            Ok(running) => {
                let reason = running.waiting().await;
                tracing::debug!(?reason, "channel session ended");
            }
            Err(error) => tracing::debug!(%error, "channel session handshake failed"),
        }
        service_ended.cancel();
        on_end();
    });
    ChannelSession { inbound, outbound, ended }
}

/// Attaches a transport request's parts (carrying the authenticated `Caller`) to a client
/// message, as rmcp's streamable HTTP server does: the handler reads the caller there.
fn attach_parts(message: &mut ClientJsonRpcMessage, parts: http::request::Parts) {
    match message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
}

/// Client messages as the rmcp service reads them.
struct Inbound {
    queue: mpsc::Receiver<ClientJsonRpcMessage>,
}

impl Stream for Inbound {
    type Item = ClientJsonRpcMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_recv(cx)
    }
}

/// Server messages to the peer: never waits; a full queue (a peer that does not keep
/// up) is an error, which ends the session.
struct QueueSink {
    queue: mpsc::Sender<ServerJsonRpcMessage>,
}

/// The peer stopped keeping up, or went away.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerGone {
    /// Its queue is full.
    #[error("the peer is too slow: its queue is full, the session is closed")]
    TooSlow,
    /// It is gone.
    #[error("the peer is gone")]
    Gone,
}

impl Sink<ServerJsonRpcMessage> for QueueSink {
    type Error = PeerGone;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: ServerJsonRpcMessage) -> Result<(), Self::Error> {
        self.queue.try_send(message).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => PeerGone::TooSlow,
            mpsc::error::TrySendError::Closed(_) => PeerGone::Gone,
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}
