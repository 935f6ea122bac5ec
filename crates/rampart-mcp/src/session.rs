//! Sessions belong to the principal that opened them (MCP security best practices: "bind
//! session IDs to user-specific information"), and a session is told when what its
//! principal may see changes.
//!
//! - [`SessionOwners`]: every session id this server issued, bound to its [`SessionOwner`].
//!   The HTTP layer binds a session when its `initialize` response carries a new
//!   `Mcp-Session-Id`, before the client can know the id, and refuses a request naming a
//!   session of another owner exactly as it would an unknown one (404).
//! - [`BoundSession`]: what the HTTP layer puts in a request's extensions when its
//!   `Mcp-Session-Id` names a session of the caller's own. The handler takes a request's
//!   session from there only, never from the header: a client-supplied id that names no
//!   session of the caller's (a stateless request's header) is no session at all.
//! - [`watch_lists`]: a session's task that sends `notifications/*/list_changed` when the
//!   tools, resources or prompts its principal may see changed; [`ListWatch`] is the same
//!   watch for a 2026-07-28 `subscriptions/listen` stream.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::{Arc, RwLock},
};

use rampart_core::{Caller, Pipeline, Principal, PrincipalKind};
use rmcp::{RoleServer, service::Peer};
use tokio_util::sync::CancellationToken;

/// Who opened a session: a principal's id and how it authenticated. The id names the
/// credential too: `token:NAME` is one API token (names are unique and never reused;
/// rotating it keeps the token), `jwt:SUB` a subject of the one configured issuer,
/// `cert:ID` one mapped certificate identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    principal: String,
    kind: PrincipalKind,
}

impl SessionOwner {
    /// The owner `principal` would be.
    pub fn of(principal: &Principal) -> Self {
        Self { principal: principal.id.clone(), kind: principal.kind }
    }
}

/// What [`SessionOwners::check`] found for a session id and a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// The session is the caller's.
    Owned,
    /// The session belongs to another principal: answer as for an unknown session.
    Foreign,
    /// No session of that id was issued (or it ended).
    Unknown,
}

/// The sessions this server issued, each bound to its owner.
#[derive(Debug, Default)]
pub struct SessionOwners {
    owners: RwLock<HashMap<String, SessionOwner>>,
}

impl SessionOwners {
    /// Binds the new session `session` to `owner`.
    pub fn bind(&self, session: &str, owner: SessionOwner) {
        self.write().insert(session.to_owned(), owner);
    }

    /// Whether `session` is `owner`'s.
    pub fn check(&self, session: &str, owner: &SessionOwner) -> SessionCheck {
        match self.read().get(session) {
            Some(bound) if bound == owner => SessionCheck::Owned,
            Some(_) => SessionCheck::Foreign,
            None => SessionCheck::Unknown,
        }
    }

    /// Forgets `session` (it ended).
    pub fn release(&self, session: &str) {
        self.write().remove(session);
    }

    /// Keeps the sessions for which `live` holds (those the transport still has), so that
    /// sessions that ended without our hearing of it (no `initialized` notification, so no
    /// handler tracked them) do not accumulate.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.write().retain(|session, _| live(session));
    }

    /// Sessions bound now.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no session is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, SessionOwner>> {
        self.owners.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, SessionOwner>> {
        self.owners.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session a request belongs to, put in the request's extensions by the HTTP layer
/// once it checked that the `Mcp-Session-Id` names a session of the caller's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSession(pub String);

/// What a caller sees of each list, reduced to a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    tools: u64,
    resources: u64,
    prompts: u64,
}

impl Seen {
    fn now(pipeline: &Pipeline, caller: &Caller) -> Self {
        Self {
            tools: fingerprint(&pipeline.visible_tools(caller)),
            resources: fingerprint(&pipeline.visible_resources(caller)),
            prompts: fingerprint(&pipeline.visible_prompts(caller)),
        }
    }
}

fn fingerprint(items: &impl serde::Serialize) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(items).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

/// One of the lists a client may be told has changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Tools,
    Resources,
    Prompts,
}

/// What `caller` sees of each list, watched for changes from the moment it is made.
pub(crate) struct ListWatch {
    pipeline: Arc<Pipeline>,
    caller: Caller,
    changes: tokio::sync::watch::Receiver<u64>,
    seen: Seen,
}

impl ListWatch {
    pub(crate) fn new(pipeline: Arc<Pipeline>, caller: Caller) -> Self {
        let mut changes = pipeline.watch_catalog();
        changes.mark_unchanged();
        let seen = Seen::now(&pipeline, &caller);
        Self { pipeline, caller, changes, seen }
    }

    /// Until `ended`, calls `tell` with each list whose visible content changed for the
    /// caller (the catalog or the policy changed); changes the caller cannot see tell
    /// nothing. Stops when `tell` returns `false` (the client is gone).
    pub(crate) async fn relay<F, Fut>(mut self, ended: CancellationToken, mut tell: F)
    where
        F: FnMut(List) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        loop {
            tokio::select! {
                () = ended.cancelled() => return,
                changed = self.changes.changed() => if changed.is_err() { return },
            }
            let now = Seen::now(&self.pipeline, &self.caller);
            for (list, before, after) in [
                (List::Tools, self.seen.tools, now.tools),
                (List::Resources, self.seen.resources, now.resources),
                (List::Prompts, self.seen.prompts, now.prompts),
            ] {
                if before != after && !tell(list).await {
                    return;
                }
            }
            self.seen = now;
        }
    }
}

/// Until `ended`, sends the session's client `notifications/tools/list_changed` (and the
/// resources and prompts ones) whenever the pipeline's catalog or policy changed what
/// `caller` may see of that list. Changes the caller cannot see send nothing.
pub(crate) fn watch_lists(pipeline: Arc<Pipeline>, caller: Caller, peer: Peer<RoleServer>, ended: CancellationToken) {
    let watch = ListWatch::new(pipeline, caller);
    tokio::spawn(watch.relay(ended, move |list| {
        let peer = peer.clone();
        async move {
            let sent = match list {
                List::Tools => peer.notify_tool_list_changed().await,
                List::Resources => peer.notify_resource_list_changed().await,
                List::Prompts => peer.notify_prompt_list_changed().await,
            };
            if let Err(error) = &sent {
                tracing::debug!(%error, "list_changed not delivered; the session is gone");
            }
            sent.is_ok()
        }
    }));
}
