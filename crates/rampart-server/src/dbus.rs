//! MCP over D-Bus (seed `004_…`; not an MCP standard transport): `rampart serve
//! --transport dbus [--bus session|system]` owns the name `org.rampart.Mcp1` and exports
//! an object at `/org/rampart/Mcp1` with interface `org.rampart.Mcp1`:
//! - method `Call(s message) -> s answer`: one JSON-RPC message in; the response to a
//!   request out (an empty string for a notification or a response);
//! - signal `Notification(s message)`, sent to the calling connection only: what the
//!   server sends on its own during its session (progress, logs, list changes, requests).
//!
//! Each D-Bus connection (unique name) is one MCP session, ended when it leaves the bus.
//! The caller is the connection's Unix user as the bus daemon vouches for it
//! (`GetConnectionUnixUser`), mapped to a principal `uid:UID` and roles by
//! `[dbus.users.UID]`; a user not listed there is refused (`org.rampart.Mcp1.Error.AccessDenied`),
//! and recorded.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rampart_config::DbusConfig;
use rampart_core::{Caller, Outcome, Principal, PrincipalKind, Transport};
use rampart_mcp::{BoundSession, Delivery, McpHandler, spawn_session};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use zbus::{fdo, message::Header, names::BusName, object_server::SignalEmitter};

use crate::SecurityGuard;

/// The well-known name, object path and interface.
pub(crate) const BUS_NAME: &str = "org.rampart.Mcp1";
/// See [`BUS_NAME`].
pub(crate) const OBJECT_PATH: &str = "/org/rampart/Mcp1";
/// How long `Call` waits for the response to a request.
const ANSWER_WITHIN: Duration = Duration::from_secs(300);
/// Server messages that may wait for a slow connection.
const QUEUE: usize = 256;

/// `org.rampart.Mcp1.Error.*`, the errors `Call` answers with.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.rampart.Mcp1.Error")]
enum McpError {
    /// The caller's Unix user is not mapped to a principal (`[dbus.users.UID]`).
    AccessDenied(String),
    /// The message is not one JSON-RPC message, or the session is busy.
    InvalidMessage(String),
    /// No response in time, or the session ended.
    Failed(String),
}

/// One connection's session.
struct Session {
    /// The connection's Unix user, as the bus daemon vouched for it.
    uid: u32,
    deliver: rampart_mcp::ChannelSession,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>,
}

struct Mcp1 {
    handler: McpHandler,
    users: HashMap<u32, Vec<String>>,
    guard: Arc<SecurityGuard>,
    shutdown: CancellationToken,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

#[zbus::interface(name = "org.rampart.Mcp1")]
impl Mcp1 {
    /// One JSON-RPC message; the response to a request, or `""`.
    async fn call(
        &self,
        message: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &zbus::Connection,
    ) -> Result<String, McpError> {
        let sender = header.sender().ok_or_else(|| McpError::Failed("no sender".into()))?.to_string();
        // A unique name is never reused on a bus: its user, asked of the bus daemon once,
        // holds for the session's life.
        let known = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&sender).map(|s| s.uid);
        let uid = match known {
            Some(uid) => uid,
            None => fdo::DBusProxy::new(connection)
                .await
                .map_err(|e| McpError::Failed(e.to_string()))?
                .get_connection_unix_user(
                    BusName::try_from(sender.as_str()).map_err(|e| McpError::Failed(e.to_string()))?,
                )
                .await
                .map_err(|e| McpError::Failed(e.to_string()))?,
        };
        let Some(roles) = self.users.get(&uid).cloned() else {
            let caller = caller_of(uid, Vec::new(), &sender);
            self.guard.metrics().refused("dbus_unmapped_user");
            let detail = format!("D-Bus caller uid {uid} is not mapped in [dbus.users]");
            self.guard.record_refusal(&caller, "dbus", Outcome::Denied, detail).await;
            return Err(McpError::AccessDenied(format!(
                "uid {uid} may not use this server: add [dbus.users.{uid}] roles = [...] to its configuration"
            )));
        };
        let session = self.session(&sender, uid, connection);
        let id = serde_json::from_str::<Value>(&message)
            .ok()
            .filter(|m| m.get("method").is_some())
            .and_then(|m| m.get("id").cloned())
            .map(|id| id.to_string());
        let answer = id.as_ref().map(|id| {
            let (sender, receiver) = oneshot::channel();
            session.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone(), sender);
            receiver
        });
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(caller_of(uid, roles, &sender));
        parts.extensions.insert(BoundSession(sender.clone()));
        match session.deliver.deliver(message.as_bytes(), parts) {
            Ok(()) => {}
            Err(Delivery::Invalid(error)) => {
                return Err(McpError::InvalidMessage(format!("not one JSON-RPC message: {error}")));
            }
            Err(Delivery::Busy) => return Err(McpError::InvalidMessage("too many messages in flight; retry".into())),
            Err(Delivery::Unknown | Delivery::Foreign) => return Err(McpError::Failed("the session ended".into())),
        }
        let Some(answer) = answer else { return Ok(String::new()) };
        match tokio::time::timeout(ANSWER_WITHIN, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(McpError::Failed("the session ended before answering".into())),
            Err(_) => Err(McpError::Failed("no answer in time".into())),
        }
    }

    /// What the server sends on its own, to the calling connection only.
    #[zbus(signal)]
    async fn notification(emitter: &SignalEmitter<'_>, message: &str) -> zbus::Result<()>;
}

fn caller_of(uid: u32, roles: Vec<String>, sender: &str) -> Caller {
    Caller {
        principal: Principal { id: format!("uid:{uid}"), kind: PrincipalKind::UnixUser, roles },
        transport: Transport::Dbus,
        session: Some(sender.to_owned()),
        remote_addr: None,
    }
}

impl Mcp1 {
    /// The session of connection `sender`, opened on its first message.
    fn session(&self, sender: &str, uid: u32, connection: &zbus::Connection) -> Arc<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(session) = sessions.get(sender) {
            return session.clone();
        }
        let all = self.sessions.clone();
        let gone = sender.to_owned();
        let mut channel = spawn_session(&self.handler, QUEUE, &self.shutdown, move || {
            all.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&gone);
        });
        let outbound = std::mem::replace(&mut channel.outbound, tokio::sync::mpsc::channel(1).1);
        let session = Arc::new(Session { uid, deliver: channel, pending: Arc::default() });
        tokio::spawn(relay(outbound, session.pending.clone(), connection.clone(), sender.to_owned()));
        sessions.insert(sender.to_owned(), session.clone());
        tracing::info!(connection = %sender, "D-Bus session opened");
        session
    }
}

/// Server messages of one session: responses to the `Call` waiting for them, anything
/// else as a `Notification` signal to that connection.
async fn relay(
    mut outbound: tokio::sync::mpsc::Receiver<impl serde::Serialize>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>,
    connection: zbus::Connection,
    sender: String,
) {
    while let Some(message) = outbound.recv().await {
        let Ok(value) = serde_json::to_value(&message) else { continue };
        let text = value.to_string();
        let is_response = value.get("method").is_none() && value.get("id").is_some();
        if is_response {
            let id = value["id"].to_string();
            let waiting = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
            if let Some(waiting) = waiting {
                let _ = waiting.send(text);
            }
            continue;
        }
        let emitted = async {
            let destination = BusName::try_from(sender.as_str())?;
            let emitter = SignalEmitter::new(&connection, OBJECT_PATH)?.set_destination(destination);
            Mcp1::notification(&emitter, &text).await
        };
        if let Err(error) = emitted.await {
            tracing::debug!(%error, connection = %sender, "D-Bus notification not sent");
        }
    }
}

/// Ends the session of each connection that leaves the bus.
async fn watch_departures(connection: zbus::Connection, sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>) {
    use futures::StreamExt;
    let Ok(proxy) = fdo::DBusProxy::new(&connection).await else { return };
    let Ok(mut changes) = proxy.receive_name_owner_changed().await else { return };
    while let Some(change) = changes.next().await {
        let Ok(args) = change.args() else { continue };
        if args.new_owner().is_none() {
            let name = args.name().to_string();
            let session = sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&name);
            if let Some(session) = session {
                session.deliver.ended.cancel();
                tracing::info!(connection = %name, "D-Bus session closed: the connection left the bus");
            }
        }
    }
}

/// Serves MCP on the configured bus until `shutdown`.
///
/// # Errors
/// The bus cannot be reached, or the name is taken.
pub(crate) async fn serve_dbus(
    config: &DbusConfig,
    handler: McpHandler,
    guard: Arc<SecurityGuard>,
    shutdown: CancellationToken,
) -> Result<(), zbus::Error> {
    let mut users = HashMap::new();
    for (uid, user) in &config.users {
        if let Ok(uid) = uid.parse::<u32>() {
            users.insert(uid, user.roles.clone());
        }
    }
    let sessions: Arc<Mutex<HashMap<String, Arc<Session>>>> = Arc::default();
    let server = Mcp1 { handler, users, guard, shutdown: shutdown.clone(), sessions: sessions.clone() };
    let builder = match config.bus {
        rampart_config::DbusBus::Session => zbus::connection::Builder::session(),
        rampart_config::DbusBus::System => zbus::connection::Builder::system(),
    };
    let connection = builder.name(BUS_NAME).serve_at(OBJECT_PATH, server).build().await?;
    let watcher = tokio::spawn(watch_departures(connection.clone(), sessions));
    shutdown.cancelled().await;
    watcher.abort();
    drop(connection);
    Ok(())
}
