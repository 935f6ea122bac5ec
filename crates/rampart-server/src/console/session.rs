//! The console's sign-in sessions: kept in this process's memory (a restart signs
//! everyone out; behind a load balancer a session is sticky like an MCP session), each
//! holding the credential it was opened with, so that every request re-authenticates it
//! through the same [`Credentials`](crate::auth::Credentials) as `/mcp`: a revoked or
//! expired token ends its console sessions at their next request.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::{OsRng, RngCore};

/// A session closes after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// And after this long whatever happens.
pub(crate) const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// At most this many sessions at once; opening one more closes the least recently used.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
struct Session {
    /// The `Authorization` value it signed in with (never shown, never logged).
    authorization: String,
    /// Its CSRF token: every change it asks must carry it.
    csrf: String,
    opened: Instant,
    last_seen: Instant,
}

/// What a request of a live session gets.
pub(crate) struct Open {
    pub(crate) authorization: String,
    pub(crate) csrf: String,
}

/// The sessions, by id (the cookie's value: 256 random bits).
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 256 bits from the operating system's generator, base64url (43 characters).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    /// Opens a session for `authorization`; returns its id.
    pub(crate) fn open(&self, authorization: String) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session { authorization, csrf: random_token(), opened: now, last_seen: now };
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| live(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(id, _)| id.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session);
        id
    }

    /// The session `id`, if it is open (and now seen).
    pub(crate) fn get(&self, id: &str) -> Option<Open> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = map.get_mut(id)?;
        if !live(session, now) {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(Open { authorization: session.authorization.clone(), csrf: session.csrf.clone() })
    }

    /// Closes the session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    /// Sessions open now.
    pub(crate) fn count(&self) -> usize {
        let now = Instant::now();
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().filter(|s| live(s, now)).count()
    }
}

fn live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE && now.duration_since(session.opened) < ABSOLUTE
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn sessions_open_get_close() {
        let sessions = Sessions::default();
        let id = sessions.open("Bearer x".into());
        assert_eq!(id.len(), 43);
        let open = sessions.get(&id).expect("open");
        assert_eq!(open.authorization, "Bearer x");
        assert_eq!(open.csrf.len(), 43);
        assert!(sessions.get("other").is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
        assert_ne!(random_token(), random_token());
    }
}
