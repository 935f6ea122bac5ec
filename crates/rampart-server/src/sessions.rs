//! Sessions belong to the principal that opened them. This layer sits after
//! authentication, in front of the MCP transport at `/mcp`:
//!
//! - a response that opens a session (`initialize`, carrying a new `Mcp-Session-Id`) binds
//!   the session to the caller before the client learns its id;
//! - a request naming a session of the caller's own is marked ([`BoundSession`]) so the
//!   MCP handler serves it in that session;
//! - a request naming another principal's session is recorded (method `session`, denied)
//!   and handled exactly as if it named a session that does not exist: the transport gives
//!   it the answer it gives an unknown session (404), and a stateless request's header is
//!   no session at all;
//! - `DELETE` of a session that is not the caller's is 404 (MCP 2025-11-25 Streamable
//!   HTTP: a session id that is not valid gets 404 Not Found).
//!
//! [`bind`] runs before the transport and [`settle`] after it, both in `/mcp`'s gate
//! (`http.rs`).

use std::sync::Arc;

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rampart_core::{Caller, Outcome};
use rampart_mcp::{BoundSession, SessionCheck, SessionCount, SessionOwner, SessionOwners};

use crate::{SecurityGuard, refusal::HttpRefusal};

const SESSION_HEADER: &str = "mcp-session-id";

/// What the layer needs.
#[derive(Clone)]
pub(crate) struct SessionBinding {
    pub(crate) owners: Arc<SessionOwners>,
    pub(crate) live: SessionCount,
    pub(crate) guard: Arc<SecurityGuard>,
    /// Whether the transport issues sessions at all (`server.stateless = false`).
    pub(crate) sessions: bool,
}

/// What [`bind`] learnt about a request, for [`settle`] once it has been answered.
pub(crate) struct Bound {
    owner: SessionOwner,
    /// The session the request named, if any, and whether it is the caller's.
    named: Option<(String, SessionCheck)>,
    is_delete: bool,
}

/// Before `request` (from `caller`) goes to the transport: marks a session of the
/// caller's own ([`BoundSession`]), records a use of another principal's and makes the
/// request name a session nobody has, or refuses a `DELETE` of a session that is not the
/// caller's (404).
pub(crate) async fn bind(binding: &SessionBinding, caller: &Caller, request: &mut Request) -> Result<Bound, Response> {
    let owner = SessionOwner::of(&caller.principal);
    let named = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let named = named.map(|id| {
        let check = binding.owners.check(&id, &owner);
        (id, check)
    });
    match &named {
        Some((id, SessionCheck::Owned)) => {
            request.extensions_mut().insert(BoundSession(id.clone()));
        }
        Some((id, SessionCheck::Foreign)) => {
            let method = request.method().as_str().to_owned();
            refuse_foreign(&binding.guard, caller, id, &method, "").await;
            // From here on the request names a session nobody has.
            let unknown = format!("unknown-{}", uuid::Uuid::new_v4());
            if let Ok(value) = HeaderValue::from_str(&unknown) {
                request.headers_mut().insert(SESSION_HEADER, value);
            }
        }
        _ => {}
    }
    let is_delete = request.method() == Method::DELETE;
    let owned = matches!(named, Some((_, SessionCheck::Owned)));
    if is_delete && binding.sessions && named.is_some() && !owned {
        return Err(HttpRefusal::SessionNotFound.into_response());
    }
    Ok(Bound { owner, named, is_delete })
}

/// After the transport answered `status` with `headers`: a session the answer opened
/// (`initialize`) is bound to its caller before the client learns its id; a session the
/// caller deleted is released.
pub(crate) async fn settle(binding: &SessionBinding, bound: Bound, status: StatusCode, headers: &HeaderMap) {
    match bound.named {
        None => {
            let opened = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
            if let Some(session) = opened {
                binding.owners.bind(session, bound.owner);
                prune(binding).await;
            }
        }
        Some((id, SessionCheck::Owned)) if bound.is_delete && status.is_success() => {
            binding.owners.release(&id);
        }
        _ => {}
    }
}

/// Records and counts a use of another principal's session (`request`: what was tried,
/// e.g. `POST`; `kind`: which sessions, e.g. `"legacy SSE "`, or `""` for `/mcp`'s), on
/// any transport that has sessions.
pub(crate) async fn refuse_foreign(guard: &SecurityGuard, caller: &Caller, session: &str, request: &str, kind: &str) {
    tracing::warn!(principal = %caller.principal, %request, "request for another principal's session refused");
    guard.metrics().refused("foreign_session");
    let mut caller = caller.clone();
    caller.session = Some(session.to_owned());
    let detail = format!("{request} for a {kind}session that belongs to another principal");
    guard.record_refusal(&caller, "session", Outcome::Denied, detail).await;
}

/// Drops the bindings of sessions the transport no longer has, once they outnumber the
/// open sessions by far (sessions that never completed their handshake are not tracked
/// by a handler, which would release them).
async fn prune(binding: &SessionBinding) {
    let bound = binding.owners.len();
    if bound < 1024 || bound < 2 * binding.live.get().await {
        return;
    }
    let live = binding.live.ids().await;
    binding.owners.retain(|session| live.contains(session));
}
