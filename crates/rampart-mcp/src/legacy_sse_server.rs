//! The server side of the legacy HTTP+SSE transport (MCP 2024-11-05 "HTTP with SSE"),
//! for clients that still only speak it: `GET /sse` opens an event stream whose first
//! event, `endpoint`, names where to POST (`/messages?session_id=…`); every server
//! message then arrives on the stream as a `message` event. rmcp no longer implements
//! it; each stream here is an ordinary rmcp session over a pair of channels.
//!
//! Security (the HTTP layer authenticates both requests before they get here):
//! - the session id is 122 random bits (UUID v4), lives as long as its stream, and is
//!   bound to the principal that opened the stream: a POST by another principal is
//!   refused ([`Delivery::Foreign`]) exactly like an unknown id, and recorded by the caller;
//! - every POSTed message carries the POST's own request parts (with its authenticated
//!   `Caller`) to the handler, as on streamable HTTP;
//! - a slow reader cannot make the server buffer without bound: at most
//!   [`SseOptions::queue`] messages wait for it, then its session is closed.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{Stream, StreamExt};
use rampart_core::Caller;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{BoundSession, McpHandler, SessionOwner, channel::spawn_session};

/// Settings of the legacy transport.
#[derive(Debug, Clone)]
pub struct SseOptions {
    /// Server messages that may wait for a slow reader before its session is closed.
    pub queue: usize,
    /// Interval of the `: keep-alive` comments that keep proxies from closing the stream.
    pub keep_alive: Duration,
    /// Closes every session (server shutdown).
    pub shutdown: CancellationToken,
}

impl Default for SseOptions {
    fn default() -> Self {
        Self { queue: 256, keep_alive: Duration::from_secs(15), shutdown: CancellationToken::new() }
    }
}

struct Entry {
    owner: SessionOwner,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
}

/// The open legacy sessions of one server.
#[derive(Clone)]
pub struct LegacySse {
    handler: McpHandler,
    options: SseOptions,
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Why a POSTed message was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No open session has this id.
    Unknown,
    /// The session belongs to another principal (answer as for [`Delivery::Unknown`]).
    Foreign,
    /// The body is not one JSON-RPC message rmcp can read.
    Invalid(String),
    /// The session's inbound queue is full: try again later.
    Busy,
}

impl LegacySse {
    /// Sessions served by (fresh copies of) `handler`.
    pub fn new(handler: McpHandler, options: SseOptions) -> Self {
        Self { handler, options, sessions: Arc::default() }
    }

    /// Open sessions.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `caller` and returns its event stream (already framed as
    /// `text/event-stream` bytes): the `endpoint` event (`{messages_path}?session_id=ID`),
    /// then the server's messages, with keep-alive comments. The session ends when the
    /// stream is dropped (the client went away), when the server ends it, or at shutdown.
    pub fn open(
        &self,
        caller: &Caller,
        messages_path: &str,
    ) -> impl Stream<Item = Result<String, Infallible>> + Send + use<> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sessions = self.sessions.clone();
        let session_id = id.clone();
        let session = spawn_session(&self.handler, self.options.queue, &self.options.shutdown, move || {
            sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&session_id);
        });
        let entry = Entry { owner: SessionOwner::of(&caller.principal), to_server: session.inbound };
        self.lock().insert(id.clone(), entry);
        let endpoint = format!("event: endpoint\ndata: {messages_path}?session_id={id}\n\n");
        let closer = Closer { sessions: self.sessions.clone(), id, ended: session.ended.clone() };
        events(endpoint, session.outbound, session.ended, self.options.keep_alive, closer)
    }

    /// Delivers one POSTed message to the session `id`, as `owner`; `parts` (the POST's
    /// request, with its authenticated `Caller`) go with it to the handler.
    ///
    /// # Errors
    /// [`Delivery`]: unknown or foreign session, unreadable body, full queue.
    pub fn deliver(
        &self,
        id: &str,
        owner: &SessionOwner,
        mut parts: http::request::Parts,
        body: &[u8],
    ) -> Result<(), Delivery> {
        let to_server = {
            let sessions = self.lock();
            let entry = sessions.get(id).ok_or(Delivery::Unknown)?;
            if entry.owner != *owner {
                return Err(Delivery::Foreign);
            }
            entry.to_server.clone()
        };
        parts.extensions.insert(BoundSession(id.to_owned()));
        crate::channel::deliver(&to_server, body, parts)
    }
}

/// Ends the session when its stream is dropped.
struct Closer {
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
    id: String,
    ended: CancellationToken,
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.ended.cancel();
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.id);
    }
}

/// The stream's events: `endpoint` first, then each message, keep-alives in between;
/// ends when the session does.
fn events(
    endpoint: String,
    from_server: mpsc::Receiver<ServerJsonRpcMessage>,
    ended: CancellationToken,
    keep_alive: Duration,
    closer: Closer,
) -> impl Stream<Item = Result<String, Infallible>> + Send {
    let state = (Some(endpoint), from_server, ended, closer);
    futures::stream::unfold(state, move |(endpoint, mut from_server, ended, closer)| async move {
        if let Some(endpoint) = endpoint {
            return Some((Ok(endpoint), (None, from_server, ended, closer)));
        }
        let event = tokio::select! {
            message = from_server.recv() => match message {
                Some(message) => match serde_json::to_string(&message) {
                    Ok(json) => format!("event: message\ndata: {json}\n\n"),
                    Err(error) => {
                        tracing::warn!(%error, "a server message could not be written");
                        String::new()
                    }
                },
                None => return None,
            },
            () = tokio::time::sleep(keep_alive) => ": keep-alive\n\n".to_owned(),
            () = ended.cancelled() => return None,
        };
        Some((Ok(event), (None, from_server, ended, closer)))
    })
    .boxed()
}
