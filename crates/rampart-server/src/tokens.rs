//! API tokens: creation, listing, revocation, rotation and authentication over the store.
//! The same service backs `rampart token …` (layer 2) and the `admin_token_*` tools
//! (layer 1).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jiff::Timestamp;
use rampart_auth::{AuthError, check_token_format, generate_id, generate_token, token_digest};
use rampart_core::{Principal, PrincipalKind};
use rampart_policy::Policy;
use rampart_store::{Store, StoreError, TokenRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How often `last_used_at` is written for one token, at most.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// How long a verified token is trusted without a database lookup. A revocation made in
/// this process applies at once, and so does one made elsewhere (the CLI, another
/// replica) in a cluster (`[cluster]`, an event); without one, within this time.
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// A token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Names are 1–64 characters of letters, digits, `.`, `_`, `-`.
    #[error("invalid token name '{0}': use 1-64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    /// A token needs at least one role.
    #[error("a token needs at least one role (--role reader, writer, admin or a configured role)")]
    NoRole,
    /// Roles the policy does not define.
    #[error("unknown role(s): {0} (defined: {1})")]
    UnknownRole(String, String),
    /// No token with that id or name.
    #[error("no token with id or name '{0}'")]
    NotFound(String),
    /// The token is revoked already.
    #[error("token '{0}' is revoked")]
    Revoked(String),
    /// Unparseable duration.
    #[error("invalid duration '{0}': use a number and a unit, e.g. 90m, 12h, 30d, 8w")]
    Duration(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// First characters of the token, to recognise it.
    pub prefix: String,
    /// Roles.
    pub roles: Vec<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, if it expires.
    pub expires_at: Option<String>,
    /// RFC 3339, if ever used.
    pub last_used_at: Option<String>,
    /// RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

/// A new (or rotated) token: the secret is shown once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CreatedToken {
    /// The token. It is not stored and cannot be shown again.
    pub token: String,
    /// Its description.
    #[serde(flatten)]
    pub info: TokenInfo,
}

fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

fn info(row: &TokenRow, now: i64) -> TokenInfo {
    let status = if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    TokenInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: format!("{}…", row.display_prefix),
        roles: row.roles.clone(),
        status: status.into(),
        created_at: rfc3339(row.created_at),
        expires_at: row.expires_at.map(rfc3339),
        last_used_at: row.last_used_at.map(rfc3339),
        revoked_at: row.revoked_at.map(rfc3339),
    }
}

/// Parses `90m`, `12h`, `30d`, `8w` (also `s`).
///
/// # Errors
/// [`TokenError::Duration`].
pub fn parse_duration(text: &str) -> Result<Duration, TokenError> {
    let text = text.trim();
    let bad = || TokenError::Duration(text.to_owned());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    number.checked_mul(seconds).filter(|s| *s > 0).map(Duration::from_secs).ok_or_else(bad)
}

/// A token verified against the store: (principal, expiry ms, when verified).
type Verified = (Principal, Option<i64>, std::time::Instant);

/// Token operations.
pub struct TokenService {
    store: Store,
    policy: arc_swap::ArcSwap<Policy>,
    touched: Mutex<HashMap<String, i64>>,
    /// Recently verified tokens, by digest.
    verified: Mutex<HashMap<String, Verified>>,
    /// Where revocations are told to the other replicas.
    cluster: Option<Arc<crate::Cluster>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("store", &self.store.display_url()).finish_non_exhaustive()
    }
}

impl TokenService {
    /// Tokens in `store`, roles checked against `policy`.
    pub fn new(store: Store, policy: Arc<Policy>) -> Self {
        Self {
            store,
            policy: arc_swap::ArcSwap::new(policy),
            touched: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            cluster: None,
        }
    }

    /// Tells `cluster`'s other replicas of each revocation and rotation, so that their
    /// caches forget the token at once.
    #[must_use]
    pub fn with_cluster(mut self, cluster: Option<Arc<crate::Cluster>>) -> Self {
        self.cluster = cluster;
        self
    }

    /// Forgets the token whose secret has `digest` (revoked or rotated elsewhere): its
    /// next use is looked up in the store.
    pub fn forget_digest(&self, digest: &str) {
        self.forget(digest);
    }

    /// Forgets `digest` here (again: a request may have cached it while the store was
    /// being written) and everywhere else.
    async fn forget_everywhere(&self, digest: &str) {
        self.forget(digest);
        if let Some(cluster) = &self.cluster {
            cluster.publish(crate::ClusterEvent::TokenRevoked { digest: digest.to_owned() }).await;
        }
    }

    /// Checks the roles of new tokens against `policy` from now on (a reload).
    pub fn replace_policy(&self, policy: Arc<Policy>) {
        self.policy.store(policy);
    }

    fn check_roles(&self, roles: &[String]) -> Result<(), TokenError> {
        if roles.is_empty() {
            return Err(TokenError::NoRole);
        }
        let policy = self.policy.load();
        let unknown = policy.unknown_roles(roles);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(TokenError::UnknownRole(unknown.join(", "), policy.role_names().collect::<Vec<_>>().join(", ")))
        }
    }

    /// Creates a token.
    ///
    /// # Errors
    /// [`TokenError`]: bad name, no or unknown role, name taken (store conflict).
    pub async fn create(
        &self,
        name: &str,
        roles: Vec<String>,
        expires_in: Option<Duration>,
    ) -> Result<CreatedToken, TokenError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(TokenError::InvalidName(name.to_owned()));
        }
        self.check_roles(&roles)?;
        let now = now_ms();
        let new = generate_token();
        let expires_at = expires_in.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        let row = TokenRow {
            id: generate_id("tok_"),
            name: name.to_owned(),
            digest: new.digest.clone(),
            display_prefix: new.display_prefix.clone(),
            roles,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_token(&row).await?;
        Ok(CreatedToken { token: new.secret, info: info(&row, now) })
    }

    /// All tokens, oldest first.
    ///
    /// # Errors
    /// [`TokenError::Store`].
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let now = now_ms();
        Ok(self.store.tokens().await?.iter().map(|row| info(row, now)).collect())
    }

    async fn find(&self, key: &str) -> Result<TokenRow, TokenError> {
        self.store.token(key).await?.ok_or_else(|| TokenError::NotFound(key.to_owned()))
    }

    /// Revokes the token with this id or name.
    ///
    /// # Errors
    /// [`TokenError::NotFound`], [`TokenError::Revoked`].
    pub async fn revoke(&self, key: &str) -> Result<TokenInfo, TokenError> {
        let row = self.find(key).await?;
        self.forget(&row.digest);
        if !self.store.revoke_token(&row.id, now_ms()).await? {
            return Err(TokenError::Revoked(key.to_owned()));
        }
        self.forget_everywhere(&row.digest).await;
        Ok(info(&self.find(&row.id).await?, now_ms()))
    }

    /// Replaces the secret of the token with this id or name; the old one stops working.
    ///
    /// # Errors
    /// [`TokenError::NotFound`], [`TokenError::Revoked`].
    pub async fn rotate(&self, key: &str) -> Result<CreatedToken, TokenError> {
        let row = self.find(key).await?;
        self.forget(&row.digest);
        let new = generate_token();
        if !self.store.rotate_token(&row.id, &new.digest, &new.display_prefix).await? {
            return Err(TokenError::Revoked(key.to_owned()));
        }
        self.forget_everywhere(&row.digest).await;
        Ok(CreatedToken { token: new.secret, info: info(&self.find(&row.id).await?, now_ms()) })
    }

    /// Number of active tokens.
    ///
    /// # Errors
    /// [`TokenError::Store`].
    pub async fn active_count(&self) -> Result<i64, TokenError> {
        Ok(self.store.count_active_tokens(now_ms()).await?)
    }

    /// Authenticates a presented `rpt_…` token: format and checksum first (no lookup for
    /// garbage), then the digest in the store, then revocation and expiry.
    ///
    /// # Errors
    /// [`AuthError::Malformed`] for a bad shape or checksum, [`AuthError::Invalid`] for an
    /// unknown, revoked or expired token; a store failure is logged and is `Invalid`.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        check_token_format(presented).map_err(|_| AuthError::Malformed)?;
        let digest = token_digest(presented);
        if let Some(principal) = self.recently_verified(&digest) {
            return Ok(principal);
        }
        let row = match self.store.token_by_digest(&digest).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(AuthError::Invalid),
            Err(error) => {
                tracing::error!(%error, "token lookup failed");
                return Err(AuthError::Invalid);
            }
        };
        let now = now_ms();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Invalid);
        }
        self.touch(&row.id, now).await;
        let principal =
            Principal { id: format!("token:{}", row.name), kind: PrincipalKind::ApiToken, roles: row.roles };
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() > 10_000 {
                verified.retain(|_, entry| entry.2.elapsed() < VERIFIED_TTL);
            }
            verified.insert(digest, (principal.clone(), row.expires_at, std::time::Instant::now()));
        }
        Ok(principal)
    }

    /// A principal verified less than [`VERIFIED_TTL`] ago and not expired since.
    fn recently_verified(&self, digest: &str) -> Option<Principal> {
        let verified = self.verified.lock().ok()?;
        let (principal, expires_at, at) = verified.get(digest)?;
        let fresh = at.elapsed() < VERIFIED_TTL && expires_at.is_none_or(|e| e > now_ms());
        fresh.then(|| principal.clone())
    }

    fn forget(&self, digest: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.remove(digest);
        }
    }

    /// Writes `last_used_at`, at most once a minute per token.
    async fn touch(&self, id: &str, now: i64) {
        let due = {
            let Ok(mut touched) = self.touched.lock() else { return };
            let due = touched.get(id).is_none_or(|last| now - last >= TOUCH_INTERVAL_MS);
            if due {
                touched.insert(id.to_owned(), now);
            }
            due
        };
        if due && let Err(error) = self.store.touch_token(id, now).await {
            tracing::warn!(%error, "cannot record token use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_table() {
        let cases = [("90m", Some(5_400)), ("12h", Some(43_200)), ("30d", Some(2_592_000)), ("1w", Some(604_800))];
        for (text, seconds) in cases {
            assert_eq!(parse_duration(text).ok().map(|d| d.as_secs()), seconds, "{text}");
        }
        for bad in ["", "30", "d", "0d", "-1d", "3y", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
