//! HTTP authentication: `Authorization` → [`Principal`] → a [`Caller`] in the request's
//! extensions, which the MCP handler reads.
//!
//! Schemes: `Bearer rpt_…` (API tokens in the store), `Bearer <key>` (the static key),
//! `Basic` (the configured user). Without credentials: 401, unless `auth.anonymous` (or
//! `server.insecure_no_auth`) lets the caller in as `anonymous`. Failures are 401 with
//! `WWW-Authenticate` (RFC 9110 §11.6.1), logged with the remote address and a reason —
//! never the credential — and audited.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use rampart_auth::{AuthError, Authenticator, TOKEN_PREFIX};
use rampart_config::Config;
use rampart_core::{Caller, Principal, PrincipalKind, Transport};

use crate::{http::error_body, security::SecurityGuard, tokens::TokenService};

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
            guard,
        }
    }

    /// Whether a static key or Basic user is configured (besides tokens).
    pub fn has_static_credentials(&self) -> bool {
        self.authenticator.is_enabled()
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
        if let Some(anonymous) = &self.anonymous {
            mode.push_str(&format!(" (anonymous allowed as {})", anonymous.roles.join(",")));
        }
        mode
    }

    fn challenge(&self) -> String {
        let challenge = self.authenticator.challenge();
        if challenge.contains("Bearer") { challenge } else { format!(r#"Bearer realm="rampart", {challenge}"#) }
    }

    /// Authenticates an `Authorization` header value.
    ///
    /// # Errors
    /// [`AuthError`].
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        if self.insecure {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        }
        let Some(header) = authorization else {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        };
        let bearer = header.trim().split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
        if let Some((_, token)) = bearer
            && token.trim().starts_with(TOKEN_PREFIX)
        {
            return self.tokens.authenticate(token.trim()).await;
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

/// 429 with `Retry-After` (RFC 6585 §4) for an address over its failed-login quota.
fn throttled(credentials: &Credentials, wait: std::time::Duration) -> Response {
    credentials.guard.metrics().rate_limited();
    let seconds = wait.as_secs().max(1);
    let message = format!("too many failed authentications from this address; retry in {seconds} s");
    let mut response = (StatusCode::TOO_MANY_REQUESTS, error_body("rate_limited", &message)).into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub(crate) async fn authenticate(
    State(credentials): State<Arc<Credentials>>,
    mut request: Request,
    next: Next,
) -> Response {
    let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let limits = credentials.guard.limits();
    if let Some(wait) = remote.and_then(|r| limits.auth_blocked(r.ip())) {
        credentials.guard.metrics().auth_failure("throttled");
        return throttled(&credentials, wait);
    }
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let principal = match credentials.authenticate(header.as_deref()).await {
        Ok(principal) => principal,
        Err(error) => {
            let path = request.uri().path().to_owned();
            tracing::warn!(remote = ?remote, reason = error.reason(), %path, "authentication failed");
            credentials.guard.metrics().auth_failure(error.reason());
            if let Some(wait) = remote.and_then(|r| limits.auth_failed(r.ip())) {
                return throttled(&credentials, wait);
            }
            credentials.guard.record_auth_failure(remote.map(|r| r.to_string()), error.reason(), &path).await;
            let message = format!("{error}: send Authorization: Bearer <API token> (rampart token create)");
            let mut response = (StatusCode::UNAUTHORIZED, error_body("unauthorized", &message)).into_response();
            if let Ok(value) = HeaderValue::from_str(&credentials.challenge()) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
    };
    request.extensions_mut().insert(Caller {
        principal,
        transport: Transport::StreamableHttp,
        session: None,
        remote_addr: remote.map(|r| r.to_string()),
    });
    next.run(request).await
}
