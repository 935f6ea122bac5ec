//! Authentication: from an HTTP `Authorization` header to a [`Principal`].
//!
//! Supported schemes: a static bearer key (RFC 6750 §2.1) and HTTP Basic (RFC 7617) with
//! an argon2 password hash. Secrets are compared in constant time (over SHA-256 digests,
//! so lengths do not leak either), and nothing here logs a secret.
//!
//! - [`Authenticator`]: the configured key and Basic user; [`Authenticator::authenticate`]
//!   turns an `Authorization` value into a [`Principal`] or an [`AuthError`], and
//!   [`Authenticator::challenge`] is the 401's `WWW-Authenticate`.
//! - [`hash_password`]: the argon2id PHC string for `auth.basic.password_hash`.
//! - API tokens, without IO ([`generate_token`] → [`NewToken`], [`check_token_format`],
//!   [`token_digest`]): `rpt_` + 256 random bits in base62 + a CRC32 checksum, 53
//!   characters ([`TOKEN_LEN`]); only their SHA-256 digest is stored. Looking a digest up
//!   is the server's job (`rampart-server`'s token service over `rampart-store`).

mod token;

use std::sync::Mutex;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::Engine;
use rampart_core::{Principal, PrincipalKind};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
pub use token::{
    NewToken, TOKEN_LEN, TOKEN_PREFIX, TokenFormatError, check_token_format, generate_id, generate_token,
    looks_like_token, token_digest,
};

/// Why a request was not authenticated. The `reason` is for logs and metrics, never the
/// secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing credentials")]
    Missing,
    /// A scheme this server does not accept, or a malformed header.
    #[error("malformed or unsupported credentials")]
    Malformed,
    /// Wrong key, user or password; an unknown, revoked, expired or badly signed token.
    #[error("invalid credentials")]
    Invalid,
    /// A valid token without a required scope (RFC 6750 §3.1: 403 `insufficient_scope`).
    #[error("insufficient scope")]
    InsufficientScope,
}

impl AuthError {
    /// A short machine-readable reason: `missing`, `malformed`, `invalid`,
    /// `insufficient_scope`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

/// A Basic password hash that is not a valid argon2 PHC string.
#[derive(Debug, thiserror::Error)]
#[error("auth.basic.password_hash is not an argon2 PHC string ($argon2id$...): {0}")]
pub struct BadPasswordHash(String);

struct BasicCredential {
    user: String,
    hash: String,
    /// Digest of the last `user:password` that verified, so that argon2 (deliberately
    /// slow) runs once per credential rather than once per request.
    verified: Mutex<Option<[u8; 32]>>,
}

/// Checks credentials against the configured key and Basic user.
pub struct Authenticator {
    key_digest: Option<[u8; 32]>,
    basic: Option<BasicCredential>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("key", &self.key_digest.map(|_| "***"))
            .field("basic_user", &self.basic.as_ref().map(|b| &b.user))
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Authenticator {
    /// An authenticator for a static key and/or a Basic user with an argon2 hash.
    ///
    /// # Errors
    /// [`BadPasswordHash`] when the hash does not parse.
    pub fn new(key: Option<&str>, basic: Option<(&str, &str)>) -> Result<Self, BadPasswordHash> {
        let basic = match basic {
            Some((user, hash)) => {
                PasswordHash::new(hash).map_err(|e| BadPasswordHash(e.to_string()))?;
                Some(BasicCredential { user: user.into(), hash: hash.into(), verified: Mutex::new(None) })
            }
            None => None,
        };
        Ok(Self { key_digest: key.map(|k| digest(k.as_bytes())), basic })
    }

    /// Whether any credential is configured (if not, HTTP is unauthenticated).
    pub fn is_enabled(&self) -> bool {
        self.key_digest.is_some() || self.basic.is_some()
    }

    /// A description for the start-up banner: `bearer key`, `basic`, `bearer key + basic`,
    /// or `none`.
    pub fn mode(&self) -> &'static str {
        match (self.key_digest.is_some(), self.basic.is_some()) {
            (true, true) => "bearer key + basic",
            (true, false) => "bearer key",
            (false, true) => "basic",
            (false, false) => "none",
        }
    }

    /// The `WWW-Authenticate` value for a 401 (RFC 9110 §11.6.1).
    pub fn challenge(&self) -> String {
        let mut schemes = Vec::new();
        if self.key_digest.is_some() || self.basic.is_none() {
            schemes.push(r#"Bearer realm="rampart""#);
        }
        if self.basic.is_some() {
            schemes.push(r#"Basic realm="rampart", charset="UTF-8""#);
        }
        schemes.join(", ")
    }

    /// Authenticates an `Authorization` header value.
    ///
    /// # Errors
    /// [`AuthError`] saying whether credentials were missing, malformed or wrong.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?.trim();
        let (scheme, value) = header.split_once(' ').ok_or(AuthError::Malformed)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            self.check_key(value)
        } else if scheme.eq_ignore_ascii_case("basic") {
            self.check_basic(value)
        } else {
            Err(AuthError::Malformed)
        }
    }

    fn check_key(&self, presented: &str) -> Result<Principal, AuthError> {
        let expected = self.key_digest.ok_or(AuthError::Invalid)?;
        if bool::from(digest(presented.as_bytes()).ct_eq(&expected)) {
            Ok(Principal { id: "static-key".into(), kind: PrincipalKind::StaticKey, roles: vec!["admin".into()] })
        } else {
            Err(AuthError::Invalid)
        }
    }

    fn check_basic(&self, encoded: &str) -> Result<Principal, AuthError> {
        let basic = self.basic.as_ref().ok_or(AuthError::Invalid)?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| AuthError::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (user, password) = decoded.split_once(':').ok_or(AuthError::Malformed)?;
        let presented = digest(decoded.as_bytes());
        let user_ok = bool::from(digest(user.as_bytes()).ct_eq(&digest(basic.user.as_bytes())));
        let cached = basic.verified.lock().ok().and_then(|g| *g).is_some_and(|d| bool::from(d.ct_eq(&presented)));
        let password_ok = cached || verify_password(&basic.hash, password);
        if user_ok && password_ok {
            if !cached && let Ok(mut guard) = basic.verified.lock() {
                *guard = Some(presented);
            }
            Ok(Principal {
                id: format!("basic:{}", basic.user),
                kind: PrincipalKind::Basic,
                roles: vec!["admin".into()],
            })
        } else {
            Err(AuthError::Invalid)
        }
    }
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Hashes a password with argon2id and a random salt, as a PHC string for
/// `auth.basic.password_hash`.
///
/// # Errors
/// When argon2 fails (it does not for ordinary passwords).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
