//! HTTP authentication: `Authorization` → [`Principal`] → a [`Caller`] in the request's
//! extensions, which the MCP handler reads.
//!
//! Schemes: `Bearer rpt_…` (API tokens in the store), `Bearer <key>` (the static key),
//! `Basic` (the configured user). Without credentials: 401, unless `auth.anonymous` (or
//! `server.insecure_no_auth`) lets the caller in as `anonymous`. Failures are 401 with
//! `WWW-Authenticate` (RFC 9110 §11.6.1), logged with the remote address and a reason —
//! never the credential — and audited.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::header;
use rampart_auth::{AuthError, Authenticator, TOKEN_PREFIX};
use rampart_config::Config;
use rampart_core::{Caller, Principal, PrincipalKind, Transport};

use crate::{
    jwt::{JwtVerifier, looks_like_jwt},
    refusal::HttpRefusal,
    security::SecurityGuard,
    tls::ClientIdentity,
    tokens::TokenService,
};

/// Everything that turns credentials into a principal.
pub struct Credentials {
    authenticator: Authenticator,
    key_principal: String,
    key_roles: Vec<String>,
    basic_roles: Vec<String>,
    tokens: Arc<TokenService>,
    /// Who unauthenticated callers are, when they are let in.
    anonymous: Option<Principal>,
    /// `server.insecure_no_auth`: credentials are not checked at all.
    insecure: bool,
    /// JWT bearer tokens, when `[auth.jwt]` is configured.
    jwt: Option<Arc<JwtVerifier>>,
    /// Client-certificate identities mapped to principals (`[tls.clients]`).
    certificates: HashMap<String, Principal>,
    guard: Arc<SecurityGuard>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("mode", &self.mode()).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from the configuration.
    pub fn new(
        config: &Config,
        authenticator: Authenticator,
        jwt: Option<Arc<JwtVerifier>>,
        tokens: Arc<TokenService>,
        guard: Arc<SecurityGuard>,
    ) -> Self {
        let insecure = config.server.insecure_no_auth;
        let default_anonymous = if insecure { "admin" } else { "public" };
        let anonymous_roles = config.auth.anonymous_roles.clone().unwrap_or_else(|| vec![default_anonymous.into()]);
        Self {
            authenticator,
            key_principal: config.auth.key_principal.clone(),
            key_roles: config.auth.key_roles.clone(),
            basic_roles: config.auth.basic.as_ref().map(|b| b.roles.clone()).unwrap_or_default(),
            tokens,
            anonymous: (insecure || config.auth.anonymous).then(|| Principal::anonymous(anonymous_roles)),
            insecure,
            jwt,
            certificates: config
                .tls
                .iter()
                .flat_map(|tls| tls.clients.iter())
                .map(|(identity, client)| {
                    let id = client.principal.clone().unwrap_or_else(|| format!("cert:{identity}"));
                    (
                        identity.clone(),
                        Principal { id, kind: PrincipalKind::ClientCertificate, roles: client.roles.clone() },
                    )
                })
                .collect(),
            guard,
        }
    }

    /// The JWT verifier, if configured (for the metadata route).
    pub fn jwt(&self) -> Option<&Arc<JwtVerifier>> {
        self.jwt.as_ref()
    }

    /// Whether anyone can authenticate without an API token: a static key, a Basic user,
    /// or JWTs from an authorization server.
    pub fn has_other_credentials(&self) -> bool {
        self.authenticator.is_enabled() || self.jwt.is_some()
    }

    /// Whether unauthenticated callers get more than the `public` role (refused on a
    /// non-loopback address without `--insecure-no-auth`).
    pub fn anonymous_is_privileged(&self) -> bool {
        self.anonymous.as_ref().is_some_and(|p| p.roles.iter().any(|r| r != "public"))
    }

    /// Whether credentials are checked at all.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// For the banner.
    pub fn mode(&self) -> String {
        if self.insecure {
            return "NONE (--insecure-no-auth): every caller is anonymous".into();
        }
        let mut mode = String::from("API tokens");
        if self.authenticator.is_enabled() {
            mode.push_str(" + ");
            mode.push_str(self.authenticator.mode());
        }
        if self.jwt.is_some() {
            mode.push_str(" + JWT (OAuth 2.1 resource server)");
        }
        if let Some(anonymous) = &self.anonymous {
            mode.push_str(&format!(" (anonymous allowed as {})", anonymous.roles.join(",")));
        }
        mode
    }

    /// The `WWW-Authenticate` value of a 401 (RFC 9110 §11.6.1; with JWTs, RFC 9728 §5.1
    /// `resource_metadata`) or of a 403 `insufficient_scope` (RFC 6750 §3.1).
    fn challenge(&self, error: AuthError) -> String {
        let mut bearer = String::from(r#"Bearer realm="rampart""#);
        if let Some(jwt) = &self.jwt {
            bearer.push_str(&format!(r#", resource_metadata="{}""#, jwt.metadata_url()));
            if error == AuthError::InsufficientScope {
                bearer
                    .push_str(&format!(r#", error="insufficient_scope", scope="{}""#, jwt.required_scopes().join(" ")));
            } else if error == AuthError::Invalid {
                bearer.push_str(r#", error="invalid_token""#);
            }
        }
        let basic = self.authenticator.challenge();
        match basic.find("Basic") {
            Some(start) => format!("{bearer}, {}", &basic[start..]),
            None => bearer,
        }
    }

    /// Authenticates an `Authorization` header value.
    ///
    /// # Errors
    /// [`AuthError`].
    /// Without an `Authorization` header, a verified TLS client certificate whose
    /// identity (CN or SAN) is in `[tls.clients]` authenticates the request.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        certificate: Option<&ClientIdentity>,
    ) -> Result<Principal, AuthError> {
        if self.insecure {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        }
        let Some(header) = authorization else {
            let mapped = certificate.and_then(|c| c.0.iter().find_map(|name| self.certificates.get(name)));
            return mapped.cloned().or_else(|| self.anonymous.clone()).ok_or(AuthError::Missing);
        };
        let bearer = header.trim().split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
        if let Some((_, token)) = bearer {
            let token = token.trim();
            if token.starts_with(TOKEN_PREFIX) {
                return self.tokens.authenticate(token).await;
            }
            if let Some(jwt) = &self.jwt
                && looks_like_jwt(token)
            {
                return jwt.verify(token).await;
            }
        }
        let principal = self.authenticator.authenticate(Some(header))?;
        Ok(match principal.kind {
            PrincipalKind::StaticKey => {
                Principal { id: self.key_principal.clone(), roles: self.key_roles.clone(), ..principal }
            }
            PrincipalKind::Basic => Principal { roles: self.basic_roles.clone(), ..principal },
            _ => principal,
        })
    }
}

/// Why [`Credentials::check`] let nobody in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refused {
    /// The address is over its failed-login quota: it may try again after this long.
    Throttled(std::time::Duration),
    /// The credentials failed (logged, counted, counted against the address and audited).
    Failed(AuthError),
}

impl Credentials {
    /// [`Credentials::authenticate`] with everything a failure entails, for every way in
    /// (`/mcp` and the other HTTP transports, the console's sign-in): an address over its
    /// failed-login quota is refused before anything is checked; a failure is logged with
    /// the address and a reason (never the credential), counted, counted against the
    /// address (which may throttle it now) and audited as `auth_failed` on `transport`'s
    /// `path`.
    ///
    /// # Errors
    /// [`Refused`].
    pub(crate) async fn check(
        &self,
        authorization: Option<&str>,
        certificate: Option<&ClientIdentity>,
        remote: Option<SocketAddr>,
        path: &str,
        transport: Transport,
    ) -> Result<Principal, Refused> {
        let limits = self.guard.limits();
        if let Some(wait) = remote.and_then(|r| limits.auth_blocked(r.ip())) {
            self.guard.metrics().auth_failure("throttled");
            return Err(Refused::Throttled(wait));
        }
        let error = match self.authenticate(authorization, certificate).await {
            Ok(principal) => return Ok(principal),
            Err(error) => error,
        };
        tracing::warn!(remote = ?remote, reason = error.reason(), %path, "authentication failed");
        self.guard.metrics().auth_failure(error.reason());
        if let Some(remote) = remote
            && let Some(wait) = limits.auth_failed(remote.ip()).await
        {
            return Err(Refused::Throttled(wait));
        }
        self.guard.record_auth_failure(transport, remote.map(|r| r.to_string()), error.reason(), path).await;
        Err(Refused::Failed(error))
    }
}

/// 429 with `Retry-After` (RFC 6585 §4) for an address over its failed-login quota.
fn throttled(credentials: &Credentials, wait: std::time::Duration) -> Response {
    credentials.guard.metrics().rate_limited();
    HttpRefusal::TooManyFailedLogins { retry_after: wait }.into_response()
}

/// The middleware form of [`caller`], for the HTTP transports other than `/mcp` (whose
/// gate in `http.rs` calls [`caller`] itself).
pub(crate) async fn authenticate(
    State(credentials): State<Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match caller(&credentials, &parts).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => refusal,
    }
}

/// The caller of an HTTP request (over streamable HTTP, from its address), or the
/// answer refusing it: 401 with `WWW-Authenticate`, 403 for insufficient scope, 429 for
/// an address over its failed-login quota ([`Credentials::check`]).
pub(crate) async fn caller(credentials: &Credentials, request: &http::request::Parts) -> Result<Caller, Response> {
    let remote = request.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let header = request.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let certificate = request.extensions.get::<ClientIdentity>();
    let path = request.uri.path();
    let checked = credentials.check(header, certificate, remote, path, Transport::StreamableHttp).await;
    let principal = match checked {
        Ok(principal) => principal,
        Err(Refused::Throttled(wait)) => return Err(throttled(credentials, wait)),
        Err(Refused::Failed(error)) => {
            let challenge = credentials.challenge(error);
            let refusal = if error == AuthError::InsufficientScope {
                HttpRefusal::InsufficientScope { challenge }
            } else {
                let message = format!("{error}: send Authorization: Bearer <API token> (rampart token create)");
                HttpRefusal::Unauthorized { message, challenge }
            };
            return Err(refusal.into_response());
        }
    };
    Ok(Caller {
        principal,
        transport: Transport::StreamableHttp,
        session: None,
        remote_addr: remote.map(|r| r.to_string()),
    })
}
